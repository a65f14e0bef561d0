//! Durations (`250ms`, `1.5s`, `-2s`) and duration ranges (`1ms..10ms`) as exact nanoseconds.
//!
//! This module owns the text forms of time. It works on one scalar's text and returns an
//! [`ErrorKind`] without a position; the caller adds the position. Arithmetic is exact
//! (see `quantity::scale_decimal`), so `0.1s` is exactly 100,000,000 ns on every machine.

use super::error::{ErrorKind, shorten};
use super::model::{RangeNs, SignedRangeNs};
use super::quantity::{DECIMAL_SCALE_MAX, DecimalError, scale_decimal};

/// What an unparseable duration is reported as expecting.
pub(crate) const EXPECTED_DURATION: &str = "a duration like 250ms";
/// What an unparseable signed duration is reported as expecting.
pub(crate) const EXPECTED_SIGNED_DURATION: &str = "a duration like -2s or 250ms";
/// What an unparseable range is reported as expecting.
pub(crate) const EXPECTED_RANGE: &str = "a duration or a range like 1ms..10ms";
/// What an unparseable signed range is reported as expecting.
pub(crate) const EXPECTED_SIGNED_RANGE: &str = "a duration or a range like -2s..2s";

/// Longest duration, in nanoseconds: `i64::MAX` (about 292 years), so that every duration
/// also fits a signed offset and adding two of them cannot overflow a `u64`.
pub const DURATION_NS_MAX: u64 = i64::MAX as u64;

/// Units, two-letter suffixes first so that `ms` is not read as `m` followed by junk.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];
const _: () = assert!(86_400_000_000_000 <= DECIMAL_SCALE_MAX);

/// A parse failure before it is given its final wording.
enum Failure {
    /// Not a duration at all.
    Syntax,
    /// A duration, but not one that can be used here.
    Kind(ErrorKind),
}

/// Parses a non-negative duration such as `250ms`, `3s`, `1.5s` or `2m`.
///
/// Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`. A unit is always required, even
/// for zero (`0s`).
pub(crate) fn parse_duration_ns(text: &str) -> Result<u64, ErrorKind> {
    let (negative, magnitude_ns) =
        parse_signed(text).map_err(|failure| finish(failure, text, EXPECTED_DURATION))?;
    if negative && magnitude_ns != 0 {
        return Err(ErrorKind::NegativeDuration { text: shorten(text) });
    }
    Ok(magnitude_ns)
}

/// Parses a duration that may be negative (`-2s`, `+2s`, `2s`).
pub(crate) fn parse_signed_duration_ns(text: &str) -> Result<i64, ErrorKind> {
    let (negative, magnitude_ns) =
        parse_signed(text).map_err(|failure| finish(failure, text, EXPECTED_SIGNED_DURATION))?;
    // `DURATION_NS_MAX` is `i64::MAX`, so the magnitude always fits.
    let magnitude_ns = i64::try_from(magnitude_ns).map_err(|_| too_large(text))?;
    Ok(if negative { -magnitude_ns } else { magnitude_ns })
}

/// Parses `A..B` (A before B) or a single duration `A` (the range `A..=A`).
pub(crate) fn parse_range_ns(text: &str) -> Result<RangeNs, ErrorKind> {
    let Some((start, end)) = text.split_once("..") else {
        let duration_ns = parse_duration_ns(text).map_err(|kind| retarget(kind, text, EXPECTED_RANGE))?;
        return Ok(RangeNs { min_ns: duration_ns, max_ns: duration_ns });
    };
    let end_ns =
        |part: &str| parse_duration_ns(part.trim()).map_err(|kind| retarget(kind, text, EXPECTED_RANGE));
    let min_ns = end_ns(start)?;
    let max_ns = end_ns(end)?;
    check_order(text, min_ns.cmp(&max_ns))?;
    Ok(RangeNs { min_ns, max_ns })
}

/// Parses a signed `A..B` or a single signed duration.
pub(crate) fn parse_signed_range_ns(text: &str) -> Result<SignedRangeNs, ErrorKind> {
    let Some((start, end)) = text.split_once("..") else {
        let duration_ns =
            parse_signed_duration_ns(text).map_err(|kind| retarget(kind, text, EXPECTED_SIGNED_RANGE))?;
        return Ok(SignedRangeNs { min_ns: duration_ns, max_ns: duration_ns });
    };
    let end_ns = |part: &str| {
        parse_signed_duration_ns(part.trim()).map_err(|kind| retarget(kind, text, EXPECTED_SIGNED_RANGE))
    };
    let min_ns = end_ns(start)?;
    let max_ns = end_ns(end)?;
    check_order(text, min_ns.cmp(&max_ns))?;
    Ok(SignedRangeNs { min_ns, max_ns })
}

fn check_order(text: &str, order: std::cmp::Ordering) -> Result<(), ErrorKind> {
    match order {
        std::cmp::Ordering::Less => Ok(()),
        std::cmp::Ordering::Equal => Err(ErrorKind::EmptyRange { text: shorten(text) }),
        std::cmp::Ordering::Greater => Err(ErrorKind::InvertedRange { text: shorten(text) }),
    }
}

/// Reports a malformed end of a range as a malformed range, quoting the whole range.
fn retarget(kind: ErrorKind, text: &str, expected: &'static str) -> ErrorKind {
    match kind {
        ErrorKind::WrongType { .. } => {
            ErrorKind::WrongType { expected, found: format!("{:?}", shorten(text)) }
        }
        other => other,
    }
}

fn finish(failure: Failure, text: &str, expected: &'static str) -> ErrorKind {
    match failure {
        Failure::Syntax => ErrorKind::WrongType { expected, found: format!("{:?}", shorten(text)) },
        Failure::Kind(kind) => kind,
    }
}

fn too_large(text: &str) -> ErrorKind {
    ErrorKind::DurationTooLarge { text: shorten(text) }
}

/// Reads `[+-]DIGITS[.DIGITS]UNIT` into a sign and a magnitude in nanoseconds.
fn parse_signed(text: &str) -> Result<(bool, u64), Failure> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (number, unit_ns) = UNITS
        .iter()
        .find_map(|&(suffix, unit_ns)| unsigned.strip_suffix(suffix).map(|number| (number, unit_ns)))
        .ok_or(Failure::Syntax)?;
    let total_ns = scale_decimal(number, unit_ns).map_err(|error| match error {
        DecimalError::Malformed => Failure::Syntax,
        DecimalError::NotWhole => Failure::Kind(ErrorKind::SubNanosecond { text: shorten(text) }),
        DecimalError::TooLarge => Failure::Kind(too_large(text)),
    })?;
    match u64::try_from(total_ns) {
        Ok(total_ns) if total_ns <= DURATION_NS_MAX => Ok((negative, total_ns)),
        _ => Err(Failure::Kind(too_large(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND_NS: u64 = 1_000_000_000;

    /// Goal: every unit and decimal form gives exact nanoseconds. Method: table.
    #[test]
    fn durations() {
        for (text, expected_ns) in [
            ("10ns", 10),
            ("500us", 500_000),
            ("500µs", 500_000),
            ("250ms", 250_000_000),
            ("3s", 3 * SECOND_NS),
            ("2m", 120 * SECOND_NS),
            ("1h", 3600 * SECOND_NS),
            ("1d", 86_400 * SECOND_NS),
            ("1.5s", 1_500_000_000),
            ("0.1s", 100_000_000),
            ("0.000000001s", 1),
            ("1.50000000000000000000000000000s", 1_500_000_000),
            ("0s", 0),
            ("-0s", 0),
            ("007ms", 7_000_000),
        ] {
            assert_eq!(parse_duration_ns(text).ok(), Some(expected_ns), "{text}");
        }
    }

    /// Goal: malformed and out-of-range durations name the problem. Method: table.
    #[test]
    fn duration_errors() {
        let wrong = |found: &str| ErrorKind::WrongType { expected: EXPECTED_DURATION, found: found.into() };
        for (text, expected) in [
            ("ten", wrong("\"ten\"")),
            ("10", wrong("\"10\"")),
            ("s", wrong("\"s\"")),
            (".5s", wrong("\".5s\"")),
            ("5.s", wrong("\"5.s\"")),
            ("1 s", wrong("\"1 s\"")),
            ("1.2.3s", wrong("\"1.2.3s\"")),
            ("10parsecs", wrong("\"10parsecs\"")),
            ("-2s", ErrorKind::NegativeDuration { text: "-2s".into() }),
            ("1.5ns", ErrorKind::SubNanosecond { text: "1.5ns".into() }),
            ("300y", wrong("\"300y\"")),
            ("9223372036854775808ns", ErrorKind::DurationTooLarge { text: "9223372036854775808ns".into() }),
            (
                "9999999999999999999999999999999h",
                ErrorKind::DurationTooLarge { text: "9999999999999999999999999999999h".into() },
            ),
        ] {
            assert_eq!(parse_duration_ns(text), Err(expected), "{text}");
        }
        assert_eq!(parse_duration_ns("9223372036854775807ns"), Ok(DURATION_NS_MAX));
    }

    /// Goal: signed durations keep their sign. Method: table.
    #[test]
    fn signed_durations() {
        assert_eq!(parse_signed_duration_ns("-2s"), Ok(-2 * SECOND_NS as i64));
        assert_eq!(parse_signed_duration_ns("+2s"), Ok(2 * SECOND_NS as i64));
        assert_eq!(parse_signed_duration_ns("1.5ms"), Ok(1_500_000));
        assert_eq!(
            parse_signed_duration_ns("--2s"),
            Err(ErrorKind::WrongType { expected: EXPECTED_SIGNED_DURATION, found: "\"--2s\"".into() })
        );
    }

    /// Goal: ranges are ordered and a single duration is a fixed range. Method: table.
    #[test]
    fn ranges() {
        assert_eq!(parse_range_ns("1ms..10ms"), Ok(RangeNs { min_ns: 1_000_000, max_ns: 10_000_000 }));
        assert_eq!(parse_range_ns("1ms .. 1.5ms"), Ok(RangeNs { min_ns: 1_000_000, max_ns: 1_500_000 }));
        assert_eq!(parse_range_ns("5ms"), Ok(RangeNs { min_ns: 5_000_000, max_ns: 5_000_000 }));
        assert_eq!(parse_range_ns("5s..1s"), Err(ErrorKind::InvertedRange { text: "5s..1s".into() }));
        assert_eq!(parse_range_ns("1s..1s"), Err(ErrorKind::EmptyRange { text: "1s..1s".into() }));
        assert_eq!(
            parse_range_ns("1s..x"),
            Err(ErrorKind::WrongType { expected: EXPECTED_RANGE, found: "\"1s..x\"".into() })
        );
        assert_eq!(
            parse_range_ns("1s...2s"),
            Err(ErrorKind::WrongType { expected: EXPECTED_RANGE, found: "\"1s...2s\"".into() })
        );
        assert_eq!(parse_range_ns("-1s..2s"), Err(ErrorKind::NegativeDuration { text: "-1s".into() }));
        assert_eq!(
            parse_signed_range_ns("-2s..2s"),
            Ok(SignedRangeNs { min_ns: -2 * SECOND_NS as i64, max_ns: 2 * SECOND_NS as i64 })
        );
        assert_eq!(
            parse_signed_range_ns("2s..-2s"),
            Err(ErrorKind::InvertedRange { text: "2s..-2s".into() })
        );
    }
}

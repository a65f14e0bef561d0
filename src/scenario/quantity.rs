//! The other scalar forms: whole numbers, booleans, probabilities, rates (`50/s`) and
//! bandwidths (`10mbps`).
//!
//! Like `duration`, this module reads one scalar's text and returns an [`ErrorKind`] without
//! a position. It must not know which key a value belongs to beyond the name it quotes.

use super::RATE_PER_SECOND_MAX;
use super::error::{ErrorKind, shorten};
use super::model::Rate;

/// What an unparseable probability is reported as expecting.
pub(crate) const EXPECTED_PROBABILITY: &str = "a probability like 0.05";
/// What an unparseable boolean is reported as expecting.
pub(crate) const EXPECTED_BOOL: &str = "true or false";
/// What an unparseable whole number is reported as expecting.
pub(crate) const EXPECTED_WHOLE: &str = "a whole number like 7";
/// What an unparseable rate is reported as expecting.
pub(crate) const EXPECTED_RATE: &str = "a rate like 50/s";
/// What an unparseable bandwidth is reported as expecting.
pub(crate) const EXPECTED_BANDWIDTH: &str = "a bandwidth like 10mbps";

const SECOND_NS: u64 = 1_000_000_000;

fn wrong(expected: &'static str, text: &str) -> ErrorKind {
    ErrorKind::WrongType { expected, found: format!("{:?}", shorten(text)) }
}

/// Parses a whole number in `minimum..=maximum`; `what` names it in the range error.
pub(crate) fn parse_whole(
    text: &str,
    what: &'static str,
    minimum: u64,
    maximum: u64,
) -> Result<u64, ErrorKind> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(wrong(EXPECTED_WHOLE, text));
    }
    // A number too long for u64 is out of range, not malformed.
    match digits.parse::<u64>() {
        Ok(value) if (minimum..=maximum).contains(&value) => Ok(value),
        _ => Err(ErrorKind::OutOfRange { what, text: shorten(text), minimum, maximum }),
    }
}

/// Parses `true` or `false` (also `True`, `TRUE`, `False`, `FALSE`, as YAML 1.2 does).
pub(crate) fn parse_bool(text: &str) -> Result<bool, ErrorKind> {
    match text {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        _ => Err(wrong(EXPECTED_BOOL, text)),
    }
}

/// Parses a decimal number in [0, 1]; `key` names it in the range error.
pub(crate) fn parse_probability(text: &str, key: &'static str) -> Result<f64, ErrorKind> {
    if !is_decimal(text) {
        return Err(wrong(EXPECTED_PROBABILITY, text));
    }
    let value: f64 = text.parse().map_err(|_| wrong(EXPECTED_PROBABILITY, text))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(ErrorKind::ProbabilityOutOfRange { key, text: shorten(text) });
    }
    // Adding zero turns -0.0 into 0.0, so `-0` reads back as plain zero.
    Ok(value + 0.0)
}

/// `[+-]DIGITS[.DIGITS][e[+-]DIGITS]` or `[+-].DIGITS...`: what YAML calls a float, without
/// `.inf` and `.nan`, which Rust's parser would otherwise accept as `inf` and `NaN`.
fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let mantissa_ok = digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !exponent.is_empty() && digits(exponent)
    });
    mantissa_ok && exponent_ok
}

/// Parses `N/s`, `N/ms` or `N/m` (N ≥ 1 operations per period), at most
/// [`RATE_PER_SECOND_MAX`] per second.
pub(crate) fn parse_rate(text: &str) -> Result<Rate, ErrorKind> {
    let (count, unit) = text.split_once('/').ok_or_else(|| wrong(EXPECTED_RATE, text))?;
    let period_ns = match unit.trim() {
        "ms" => SECOND_NS / 1_000,
        "s" => SECOND_NS,
        "m" => 60 * SECOND_NS,
        _ => return Err(wrong(EXPECTED_RATE, text)),
    };
    let count = count.trim();
    if count.is_empty() || !count.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(wrong(EXPECTED_RATE, text));
    }
    let too_high = || ErrorKind::RateTooHigh { text: shorten(text), maximum: RATE_PER_SECOND_MAX };
    let operations_count: u64 = count.parse().map_err(|_| too_high())?;
    if operations_count == 0 {
        return Err(ErrorKind::ZeroRate { text: shorten(text) });
    }
    // operations / period <= maximum / second, cross-multiplied in u128 to stay exact.
    if u128::from(operations_count) * u128::from(SECOND_NS)
        > u128::from(RATE_PER_SECOND_MAX) * u128::from(period_ns)
    {
        return Err(too_high());
    }
    Ok(Rate { operations_count, period_ns })
}

/// Parses a bandwidth such as `10mbps`, `1.5gbps`, `64kbps` or `9600bps` into bits per
/// second (decimal prefixes, case-insensitive): a whole number of bits, at least 1.
pub(crate) fn parse_bandwidth(text: &str) -> Result<u64, ErrorKind> {
    let lower = text.to_ascii_lowercase();
    let (number, scale) = [("gbps", 1_000_000_000u128), ("mbps", 1_000_000), ("kbps", 1_000), ("bps", 1)]
        .iter()
        .find_map(|&(suffix, scale)| lower.strip_suffix(suffix).map(|number| (number, scale)))
        .ok_or_else(|| wrong(EXPECTED_BANDWIDTH, text))?;
    let out_of_range = || ErrorKind::BandwidthOutOfRange { text: shorten(text) };
    match scale_decimal(number, scale) {
        Ok(bits) => u64::try_from(bits).ok().filter(|&bits| bits >= 1).ok_or_else(out_of_range),
        Err(DecimalError::TooLarge) => Err(out_of_range()),
        Err(DecimalError::Malformed | DecimalError::NotWhole) => Err(wrong(EXPECTED_BANDWIDTH, text)),
    }
}

/// Why a decimal could not be scaled to a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// Not `DIGITS[.DIGITS]`.
    Malformed,
    /// The result would have a fractional part (`1.5ns`).
    NotWhole,
    /// More whole digits than [`DECIMAL_DIGITS_MAX`].
    TooLarge,
}

/// Longest run of significant digits read before or after the decimal point. With a scale
/// of at most [`DECIMAL_SCALE_MAX`], 10^24 · 10^14 < 2^128, so the arithmetic cannot overflow;
/// more fraction digits could never give a whole result at such a scale.
const DECIMAL_DIGITS_MAX: usize = 24;
/// Largest `scale` for [`scale_decimal`]: more than a day in nanoseconds.
pub(crate) const DECIMAL_SCALE_MAX: u128 = 100_000_000_000_000;

/// `DIGITS[.DIGITS]` times `scale` (at most [`DECIMAL_SCALE_MAX`]), exactly: no floating
/// point, so `0.1` times 10^9 is exactly 100,000,000 on every machine.
pub(crate) fn scale_decimal(number: &str, scale: u128) -> Result<u128, DecimalError> {
    debug_assert!(scale <= DECIMAL_SCALE_MAX);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let is_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty()
        || !is_digits(whole)
        || !is_digits(fraction)
        || (number.contains('.') && fraction.is_empty())
    {
        return Err(DecimalError::Malformed);
    }
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    if whole.len() > DECIMAL_DIGITS_MAX {
        return Err(DecimalError::TooLarge);
    }
    if fraction.len() > DECIMAL_DIGITS_MAX {
        return Err(DecimalError::NotWhole);
    }
    // Empty parts (all zeros, trimmed) are zero.
    let whole_value: u128 = whole.parse().unwrap_or(0);
    let fraction_value: u128 = fraction.parse().unwrap_or(0);
    let fraction_scale = 10u128.pow(fraction.len() as u32);
    let fraction_scaled = fraction_value * scale;
    if !fraction_scaled.is_multiple_of(fraction_scale) {
        return Err(DecimalError::NotWhole);
    }
    Ok(whole_value * scale + fraction_scaled / fraction_scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: probabilities accept decimal forms only, within [0, 1]. Method: table.
    #[test]
    fn probabilities() {
        for (text, value) in [("0", 0.0), ("1", 1.0), ("0.05", 0.05), (".5", 0.5), ("5e-1", 0.5), ("-0", 0.0)]
        {
            assert_eq!(parse_probability(text, "loss"), Ok(value), "{text}");
        }
        assert!(parse_probability("-0", "loss").unwrap().is_sign_positive());
        for text in ["1.5", "-0.1", "2", "1e3"] {
            let expected = ErrorKind::ProbabilityOutOfRange { key: "loss", text: text.into() };
            assert_eq!(parse_probability(text, "loss"), Err(expected), "{text}");
        }
        for text in ["nan", "inf", ".inf", "", ".", "half", "5%", "0.5.5", "1e"] {
            let expected = wrong(EXPECTED_PROBABILITY, text);
            assert_eq!(parse_probability(text, "loss"), Err(expected), "{text}");
        }
    }

    /// Goal: whole numbers reject signs, decimals and overflow with the right kind. Method: table.
    #[test]
    fn whole_numbers() {
        assert_eq!(parse_whole("7", "seed", 0, u64::MAX), Ok(7));
        assert_eq!(parse_whole("+7", "seed", 0, u64::MAX), Ok(7));
        assert_eq!(parse_whole("-1", "seed", 0, u64::MAX), Err(wrong(EXPECTED_WHOLE, "-1")));
        assert_eq!(parse_whole("1e8", "seed", 0, u64::MAX), Err(wrong(EXPECTED_WHOLE, "1e8")));
        let overflow = "18446744073709551616";
        assert_eq!(
            parse_whole(overflow, "seed", 0, u64::MAX),
            Err(ErrorKind::OutOfRange { what: "seed", text: overflow.into(), minimum: 0, maximum: u64::MAX })
        );
    }

    /// Goal: rates keep count and period exactly and are bounded. Method: table.
    #[test]
    fn rates() {
        assert_eq!(parse_rate("50/s"), Ok(Rate { operations_count: 50, period_ns: SECOND_NS }));
        assert_eq!(parse_rate("3/ms"), Ok(Rate { operations_count: 3, period_ns: 1_000_000 }));
        assert_eq!(parse_rate("600/m"), Ok(Rate { operations_count: 600, period_ns: 60 * SECOND_NS }));
        assert_eq!(parse_rate("50/h"), Err(wrong(EXPECTED_RATE, "50/h")));
        assert_eq!(parse_rate("fast"), Err(wrong(EXPECTED_RATE, "fast")));
        assert_eq!(parse_rate("1.5/s"), Err(wrong(EXPECTED_RATE, "1.5/s")));
        assert_eq!(
            parse_rate("101/ms"),
            Err(ErrorKind::RateTooHigh { text: "101/ms".into(), maximum: RATE_PER_SECOND_MAX })
        );
        assert_eq!(parse_rate("100/ms").map(|rate| rate.operations_count), Ok(100));
        assert_eq!(parse_rate("0/s"), Err(ErrorKind::ZeroRate { text: "0/s".into() }));
    }

    /// Goal: bandwidths convert to bits per second. Method: table.
    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("10mbps"), Ok(10_000_000));
        assert_eq!(parse_bandwidth("10Mbps"), Ok(10_000_000));
        assert_eq!(parse_bandwidth("1.5gbps"), Ok(1_500_000_000));
        assert_eq!(parse_bandwidth("64kbps"), Ok(64_000));
        assert_eq!(parse_bandwidth("9600bps"), Ok(9600));
        assert_eq!(parse_bandwidth("10 mb"), Err(wrong(EXPECTED_BANDWIDTH, "10 mb")));
        assert_eq!(parse_bandwidth("0.0bps"), Err(ErrorKind::BandwidthOutOfRange { text: "0.0bps".into() }));
        let huge = "99999999999999999999gbps";
        assert_eq!(parse_bandwidth(huge), Err(ErrorKind::BandwidthOutOfRange { text: huge.into() }));
        assert_eq!(parse_bandwidth("1.5bps"), Err(wrong(EXPECTED_BANDWIDTH, "1.5bps")));
    }

    /// Goal: decimals scale exactly or say why not. Method: table.
    #[test]
    fn decimals() {
        assert_eq!(scale_decimal("0.1", 1_000_000_000), Ok(100_000_000));
        assert_eq!(scale_decimal("007.50", 10), Ok(75));
        assert_eq!(scale_decimal("0", 10), Ok(0));
        assert_eq!(scale_decimal("1.05", 10), Err(DecimalError::NotWhole));
        assert_eq!(
            scale_decimal(&format!("0.{}1", "0".repeat(30)), DECIMAL_SCALE_MAX),
            Err(DecimalError::NotWhole)
        );
        assert_eq!(scale_decimal(&"9".repeat(25), 1), Err(DecimalError::TooLarge));
        assert_eq!(
            scale_decimal(&"9".repeat(24), DECIMAL_SCALE_MAX),
            Ok(DECIMAL_SCALE_MAX * (10u128.pow(24) - 1))
        );
        for malformed in ["", ".", ".5", "5.", "1.2.3", "1e3", "-1", " 1"] {
            assert_eq!(scale_decimal(malformed, 10), Err(DecimalError::Malformed), "{malformed:?}");
        }
    }
}

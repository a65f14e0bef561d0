//! Scenario errors: a position ([`Span`]) kept apart from what is wrong ([`ErrorKind`]).
//!
//! This module owns the wording of every message a scenario file can produce, and the "did
//! you mean" hint for misspelt keys and names. It must not decide what is valid; the parser
//! and validator do that.

use std::fmt;

use thiserror::Error;

/// A 1-based position in a scenario file: the first character of the offending value (for
/// an unknown key, of the key). Columns count characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub column: u32,
}

impl Span {
    /// The start of the file.
    pub const START: Span = Span { line: 1, column: 1 };

    /// The position of byte `offset` of `text` (a character boundary, or the end).
    pub(crate) fn at_byte(text: &str, offset: usize) -> Span {
        let before = text.get(..offset).unwrap_or(text);
        let line = before.bytes().filter(|&byte| byte == b'\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        Span {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.line, self.column)
    }
}

/// Why a scenario file was rejected, with where.
///
/// Renders as `FILE:LINE:COLUMN: message`, or `FILE: message` for the errors that have no
/// position (a file that cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file label given to [`parse`](super::parse()), or the path given to
    /// [`load`](super::load()).
    pub file: String,
    /// Position of the offending value; `None` only for [`ErrorKind::Read`].
    pub span: Option<Span>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.span {
            Some(span) => write!(formatter, "{}:{}: {}", self.file, span, self.kind),
            None => write!(formatter, "{}: {}", self.file, self.kind),
        }
    }
}

impl std::error::Error for ScenarioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
    }
}

/// An error kind with its position, before the file label is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) span: Span,
    pub(crate) kind: ErrorKind,
}

impl Located {
    pub(crate) fn new(span: Span, kind: ErrorKind) -> Located {
        Located { span, kind }
    }

    pub(crate) fn into_error(self, file: &str) -> ScenarioError {
        ScenarioError { file: file.to_owned(), span: Some(self.span), kind: self.kind }
    }
}

/// What is wrong with a scenario file. Texts quoted from the file are shortened to
/// [`QUOTED_CHARS_MAX`] characters so that a hostile value cannot blow up a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read (missing, unreadable, a directory).
    #[error("cannot read: {message}")]
    Read {
        /// The operating system's explanation.
        message: String,
    },
    /// The file is larger than [`FILE_BYTES_MAX`](super::FILE_BYTES_MAX).
    #[error("file is {length_bytes} bytes, more than the maximum {maximum_bytes}")]
    FileTooLarge {
        /// Size of the file (or the bytes read before giving up).
        length_bytes: u64,
        /// The budget.
        maximum_bytes: u64,
    },
    /// The file is not UTF-8; the span is the first invalid byte.
    #[error("file is not valid utf-8")]
    NotUtf8,
    /// The YAML parser rejected the text.
    #[error("invalid yaml: {message}")]
    Syntax {
        /// The parser's explanation.
        message: String,
    },
    /// Sequences and mappings nest deeper than [`DEPTH_MAX`](super::DEPTH_MAX).
    #[error("yaml nested deeper than {depth_max} levels")]
    TooDeep {
        /// The limit.
        depth_max: usize,
    },
    /// One scalar is longer than [`SCALAR_BYTES_MAX`](super::SCALAR_BYTES_MAX).
    #[error("scalar is {length_bytes} bytes, more than the maximum {maximum_bytes}")]
    ScalarTooLong {
        /// Length of the scalar.
        length_bytes: usize,
        /// The limit.
        maximum_bytes: usize,
    },
    /// One scalar or flow collection is too long to scan within
    /// [`LOOKAHEAD_CHARS_MAX`](super::LOOKAHEAD_CHARS_MAX); the span is its start.
    #[error("yaml value longer than {chars_max} characters: split it, or write long lists in block style")]
    ValueTooLong {
        /// The limit.
        chars_max: usize,
    },
    /// The document holds more than [`YAML_VALUES_MAX`](super::YAML_VALUES_MAX) values.
    #[error("more than {values_max} yaml values")]
    TooManyValues {
        /// The limit.
        values_max: usize,
    },
    /// Aliases (`*name`) are refused, which rules out "billion laughs" expansion.
    #[error("yaml aliases are not supported")]
    Alias,
    /// Tags (`!foo`, `!!str`) are refused rather than silently ignored.
    #[error("yaml tags are not supported, found `{tag}`")]
    Tag {
        /// The tag as written.
        tag: String,
    },
    /// A second document (`---`) follows the first.
    #[error("expected one yaml document, found a second one")]
    MultipleDocuments,
    /// The file holds no document at all.
    #[error("empty file: expected a mapping with `name`, `duration` and `nodes`")]
    Empty,
    /// A mapping key is a sequence or mapping.
    #[error("mapping keys must be plain text")]
    ComplexKey,
    /// A key appears twice in one mapping; the span is the second one.
    #[error("duplicate key `{key}`")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A key this mapping does not have.
    #[error("unknown key `{key}`{}", hint(*.suggestion, .expected))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The closest known key, when it is close enough to be a typo.
        suggestion: Option<&'static str>,
        /// Every key this mapping accepts.
        expected: &'static [&'static str],
    },
    /// A known key that does not belong in this kind of item (`keys` in a `put` item).
    #[error("key `{key}` does not apply to {item}")]
    KeyNotApplicable {
        /// The key.
        key: &'static str,
        /// The kind of item, with its article ("a `put` item").
        item: &'static str,
    },
    /// A required key is absent; the span is the enclosing mapping.
    #[error("missing required key `{key}`")]
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// An item needs exactly one of several keys and has none.
    #[error("{item} needs one of {keys}")]
    NeedsOneOf {
        /// The kind of item ("fault").
        item: &'static str,
        /// The keys, already formatted.
        keys: &'static str,
    },
    /// An item has two keys that exclude each other; the span is the second.
    #[error("{item} has both `{first}` and `{second}`")]
    Conflict {
        /// The kind of item.
        item: &'static str,
        /// The key that came first.
        first: &'static str,
        /// The key that came second.
        second: &'static str,
    },
    /// A value of the wrong shape or syntax.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What would have been accepted.
        expected: &'static str,
        /// What was there: a quoted text, `null`, `a mapping` or `a list`.
        found: String,
    },
    /// A word that is not one of a fixed set (`topology: fullmesh`).
    #[error("unknown {what} `{name}`{}", hint(*.suggestion, .expected))]
    UnknownName {
        /// What the word names ("topology").
        what: &'static str,
        /// The word as written.
        name: String,
        /// The closest accepted word, when close enough to be a typo.
        suggestion: Option<&'static str>,
        /// Every accepted word.
        expected: &'static [&'static str],
    },
    /// A negative duration where only non-negative ones make sense.
    #[error("duration {text} must not be negative")]
    NegativeDuration {
        /// The duration as written.
        text: String,
    },
    /// A duration with digits below one nanosecond (`1.5ns`).
    #[error("duration {text} is finer than a nanosecond")]
    SubNanosecond {
        /// The duration as written.
        text: String,
    },
    /// A duration longer than about 292 years (does not fit `i64` nanoseconds).
    #[error("duration {text} is too large")]
    DurationTooLarge {
        /// The duration as written.
        text: String,
    },
    /// A duration below a minimum (`every: 0s`).
    #[error("`{key}` {text} is shorter than the minimum {minimum}")]
    DurationTooShort {
        /// The key.
        key: &'static str,
        /// The duration as written.
        text: String,
        /// The minimum, formatted.
        minimum: &'static str,
    },
    /// A range whose start is after its end (`5s..1s`).
    #[error("range {text} is inverted: its start is after its end")]
    InvertedRange {
        /// The range as written.
        text: String,
    },
    /// A range whose ends are equal (`1s..1s`).
    #[error("range {text} is empty: write a single duration for a fixed value")]
    EmptyRange {
        /// The range as written.
        text: String,
    },
    /// A probability outside [0, 1].
    #[error("`{key}` must be a probability in [0, 1], found {text}")]
    ProbabilityOutOfRange {
        /// The key.
        key: &'static str,
        /// The number as written.
        text: String,
    },
    /// A whole number outside its allowed range.
    #[error("{what} {text} is outside {minimum}..={maximum}")]
    OutOfRange {
        /// What the number counts ("node count", "`keys`").
        what: &'static str,
        /// The number as written.
        text: String,
        /// Smallest allowed value.
        minimum: u64,
        /// Largest allowed value.
        maximum: u64,
    },
    /// A rate above [`RATE_PER_SECOND_MAX`](super::RATE_PER_SECOND_MAX).
    #[error("rate {text} is more than {maximum} per second")]
    RateTooHigh {
        /// The rate as written.
        text: String,
        /// The limit per second.
        maximum: u64,
    },
    /// A rate of zero operations (`0/s`).
    #[error("rate {text} is zero: use at least 1 operation per period")]
    ZeroRate {
        /// The rate as written.
        text: String,
    },
    /// A bandwidth of zero, or one that does not fit 64 bits.
    #[error("bandwidth {text} must be at least 1bps and at most 2^64-1 bits per second")]
    BandwidthOutOfRange {
        /// The bandwidth as written.
        text: String,
    },
    /// The `nodes` list is empty.
    #[error("`nodes` is empty: declare at least one node")]
    NoNodes,
    /// A node name outside `[A-Za-z0-9_-]{1,64}`.
    #[error("invalid node name {name:?}: use 1 to 64 characters from A-Z, a-z, 0-9, `_` and `-`")]
    InvalidNodeName {
        /// The name as written.
        name: String,
    },
    /// The node name `all`, which would be ambiguous in `heal: all` and `nodes: all`.
    #[error("node name `all` is reserved")]
    ReservedNodeName,
    /// A node declared twice in `nodes`; the span is the second one.
    #[error("duplicate node name `{name}`")]
    DuplicateNode {
        /// The name.
        name: String,
    },
    /// A node name used in a fault, workload item or edge that `nodes` does not declare.
    #[error("node `{name}` is not declared in `nodes`")]
    UndeclaredNode {
        /// The name as written.
        name: String,
    },
    /// A node listed twice in one list (a partition, `heal`, a workload's `nodes`).
    #[error("node `{name}` is listed twice")]
    NodeListedTwice {
        /// The name.
        name: String,
    },
    /// A link, cut or edge from a node to itself.
    #[error("node `{name}` cannot be linked to itself")]
    SelfLink {
        /// The name.
        name: String,
    },
    /// An empty list where at least one item is needed (a partition group, `heal: []`).
    #[error("{what} is empty")]
    EmptyList {
        /// What the list is.
        what: &'static str,
    },
    /// A time at or after the end of the run (`at` of a fault or workload item).
    #[error("`{key}` {text} is not before `duration` {duration}")]
    NotBeforeEnd {
        /// The key.
        key: &'static str,
        /// The time as written.
        text: String,
        /// The run's `duration` as written.
        duration: String,
    },
    /// An end time after the end of the run (`until`).
    #[error("`{key}` {text} is after `duration` {duration}")]
    AfterEnd {
        /// The key.
        key: &'static str,
        /// The time as written.
        text: String,
        /// The run's `duration` as written.
        duration: String,
    },
    /// A window whose `until` is not after its `from`.
    #[error("`until` {until} is not after `from` {from}")]
    UntilNotAfterFrom {
        /// `from` as written.
        from: String,
        /// `until` as written.
        until: String,
    },
    /// A `crash` of a node that an earlier fault already crashed.
    #[error("crash of `{name}`, which is already crashed since {since}")]
    AlreadyCrashed {
        /// The node.
        name: String,
        /// `at` of the earlier crash, as written.
        since: String,
    },
    /// A `restart` of a node that is not crashed at that time.
    #[error("restart of `{name}`, which is not crashed at {at}")]
    NotCrashed {
        /// The node.
        name: String,
        /// `at` of the restart, as written.
        at: String,
    },
    /// A `break` fault on a link that is not a stream: datagram links have no connections,
    /// and QUIC's connections end by QUIC's rules (idle timeout, crash), not by `break`.
    #[error(
        "`break` needs a stream link: `network.transport: stream`, or `transport: stream` for this pair in \
         `network.links`"
    )]
    BreakNeedsStream,
    /// A pair listed twice in `network.links`; the span is the second one.
    #[error("the link between `{first}` and `{second}` is listed twice in `network.links`")]
    DuplicateLink {
        /// One node, as named in `nodes`.
        first: String,
        /// The other node.
        second: String,
    },
    /// `until` or `for` on a fault kind that cannot last (`heal`, `restart`, `break`).
    #[error(
        "a `{kind}` fault cannot last: `{key}` applies to partition, cut, link, isolate, crash, clock_jump, \
         corrupt, clog, pause and disk_fault"
    )]
    CannotLast {
        /// The fault kind.
        kind: &'static str,
        /// `until` or `for`.
        key: &'static str,
    },
    /// A `clog` or `pause` fault without `for` or `until`.
    #[error(
        "a `{kind}` fault needs an end: write `for: 2s` or `from`/`until`; what it holds is handed over then"
    )]
    NeedsEnd {
        /// The fault kind.
        kind: &'static str,
    },
    /// A time-bounded fault that ends after the run.
    #[error("the fault ends at {end} (`for` {text}), after `duration` {duration}")]
    EndsAfterRun {
        /// `for` as written.
        text: String,
        /// The end, formatted.
        end: String,
        /// The run's `duration` as written.
        duration: String,
    },
}

/// Longest text quoted from the file inside a message, in characters.
pub const QUOTED_CHARS_MAX: usize = 64;

/// `text`, cut to [`QUOTED_CHARS_MAX`] characters with `...` appended when it was longer.
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS_MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// The tail of an unknown-key or unknown-name message.
fn hint(suggestion: Option<&'static str>, expected: &[&'static str]) -> String {
    match suggestion {
        Some(suggestion) => format!(", did you mean `{suggestion}`?"),
        None => format!(", expected {}", one_of(expected)),
    }
}

/// `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b` or `c` ``.
fn one_of(words: &[&'static str]) -> String {
    let quoted: Vec<String> = words.iter().map(|word| format!("`{word}`")).collect();
    match quoted.as_slice() {
        [] => String::from("nothing"),
        [only] => only.clone(),
        [first, second] => format!("{first} or {second}"),
        [rest @ .., last] => format!("one of {} or {last}", rest.join(", ")),
    }
}

/// Longest word we compare for a "did you mean" hint; longer ones are not typos of a key.
const SUGGESTION_CHARS_MAX: usize = 64;

/// The candidate closest to `word` when it is close enough to be a typo: an edit distance of
/// at most 2, and less than a third of the word (so `at` never suggests `to`).
pub(crate) fn suggest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    if word.chars().count() > SUGGESTION_CHARS_MAX {
        return None;
    }
    let mut best: Option<(usize, &'static str)> = None;
    for &candidate in candidates {
        let distance = levenshtein(word, candidate);
        let allowed = (candidate.chars().count() / 3).clamp(1, 2);
        if distance <= allowed && best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Edit distance between two words, by characters: insertions, deletions, substitutions
/// and swaps of two adjacent characters (`crahs` is one edit from `crash`).
fn levenshtein(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    // Three rows of the classic table: two rows back (for swaps), the previous, the current.
    let mut before_previous: Vec<usize> = vec![0; right.len() + 1];
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    let mut current = vec![0; right.len() + 1];
    for left_index in 0..left.len() {
        current[0] = left_index + 1;
        for right_index in 0..right.len() {
            let substitution = previous[right_index] + usize::from(left[left_index] != right[right_index]);
            let deletion = previous[right_index + 1] + 1;
            let insertion = current[right_index] + 1;
            let mut distance = substitution.min(deletion).min(insertion);
            let swapped = left_index > 0
                && right_index > 0
                && left[left_index] == right[right_index - 1]
                && left[left_index - 1] == right[right_index];
            if swapped {
                distance = distance.min(before_previous[right_index - 1] + 1);
            }
            current[right_index + 1] = distance;
        }
        std::mem::swap(&mut before_previous, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[right.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the distance is the textbook one. Method: known pairs.
    #[test]
    fn levenshtein_known_pairs() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("convergd", "converged"), 1);
        assert_eq!(levenshtein("flaw", "lawn"), 2);
        assert_eq!(levenshtein("crahs", "crash"), 1);
        assert_eq!(levenshtein("ab", "ba"), 1);
    }

    /// Goal: typos get a hint, unrelated words do not. Method: keys of `expect` and faults.
    #[test]
    fn suggestions() {
        let keys = &["converged", "within", "no_data_loss"];
        assert_eq!(suggest("convergd", keys), Some("converged"));
        assert_eq!(suggest("withn", keys), Some("within"));
        assert_eq!(suggest("no_dataloss", keys), Some("no_data_loss"));
        assert_eq!(suggest("speed", keys), None);
        assert_eq!(suggest("to", &["at"]), None);
        assert_eq!(suggest(&"x".repeat(1000), keys), None);
    }

    /// Goal: the rendered forms match the house style. Method: one of each shape.
    #[test]
    fn rendering() {
        let error = ScenarioError {
            file: String::from("a.yaml"),
            span: Some(Span { line: 3, column: 7 }),
            kind: ErrorKind::MissingKey { key: "name" },
        };
        assert_eq!(error.to_string(), "a.yaml:3:7: missing required key `name`");
        let error = ScenarioError {
            file: String::from("a.yaml"),
            span: None,
            kind: ErrorKind::Read { message: String::from("no such file") },
        };
        assert_eq!(error.to_string(), "a.yaml: cannot read: no such file");
        let kind =
            ErrorKind::UnknownKey { key: String::from("x"), suggestion: None, expected: &["a", "b", "c"] };
        assert_eq!(kind.to_string(), "unknown key `x`, expected one of `a`, `b` or `c`");
        assert_eq!(shorten(&"é".repeat(100)), format!("{}...", "é".repeat(64)));
    }
}

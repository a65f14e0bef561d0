//! A small, bounded YAML tree with positions, built from `saphyr-parser` events.
//!
//! This module owns the YAML subset ferry accepts and the budgets that keep hostile input
//! cheap: depth, scalar length and value count are checked as events arrive, so nothing is
//! built past a limit, and the scanner may not read more than [`LOOKAHEAD_CHARS_MAX`]
//! characters ahead of the last event. Aliases, tags, complex keys, duplicate keys and extra
//! documents are refused here. It must not know any scenario key; `parse` gives the tree its
//! meaning.

use std::cell::Cell;
use std::collections::BTreeSet;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::error::{ErrorKind, Located, Span, shorten};
use super::{DEPTH_MAX, LOOKAHEAD_CHARS_MAX, SCALAR_BYTES_MAX, YAML_VALUES_MAX};

/// The characters of the text, cut off once the scanner runs more than
/// [`LOOKAHEAD_CHARS_MAX`] characters ahead of the end of the last event.
///
/// The scanner buffers every token of a flow collection that could still turn out to be a
/// mapping key (`[1, 2, ...]` at the top level or after `- `) until the collection closes:
/// measured at about 170 bytes of memory per byte of input. Cutting the input there bounds
/// that buffer; the cut is always reported as an error, never parsed as a short file.
struct BoundedChars<'a> {
    chars: std::str::Chars<'a>,
    read_count: usize,
    /// Character index just past the last event, updated by [`parse_tree`].
    emitted_index: &'a Cell<usize>,
    /// Set once the input has been cut.
    cut: &'a Cell<bool>,
}

impl Iterator for BoundedChars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.cut.get() {
            return None;
        }
        if self.read_count.saturating_sub(self.emitted_index.get()) > LOOKAHEAD_CHARS_MAX {
            self.cut.set(true);
            return None;
        }
        let next = self.chars.next()?;
        self.read_count += 1;
        Some(next)
    }
}

/// One YAML value and the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) span: Span,
    pub(crate) value: Value,
}

/// The three YAML shapes. Scalars stay text: the parser decides what they mean from where
/// they are, so `value: 1` and `value: "1"` are the same string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A scalar; `plain` is false when it was quoted or a block scalar.
    Scalar {
        text: String,
        plain: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<Entry>),
}

/// One `key: value` pair of a mapping; keys are always scalars.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_span: Span,
    pub(crate) value: Node,
}

impl Node {
    /// True for `~`, `null` and an empty plain value (`key:`).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// How the value reads in an error message: a quoted, shortened text, `null`, `a list`
    /// or `a mapping`.
    pub(crate) fn describe(&self) -> String {
        match &self.value {
            _ if self.is_null() => String::from("null"),
            Value::Scalar { text, .. } => format!("{:?}", shorten(text)),
            Value::Sequence(_) => String::from("a list"),
            Value::Mapping(_) => String::from("a mapping"),
        }
    }
}

/// A collection being built.
enum Frame {
    Sequence { span: Span, items: Vec<Node> },
    Mapping { span: Span, entries: Vec<Entry>, pending_key: Option<(String, Span)>, keys: BTreeSet<String> },
}

/// Parses `text` into one tree, refusing anything over the budgets.
///
/// # Errors
/// The parser's syntax errors, and every refusal listed in the module docs, each with the
/// position of the offending event.
pub(crate) fn parse_tree(text: &str) -> Result<Node, Located> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents_count = 0usize;
    let mut values_count = 0usize;
    let emitted_index = Cell::new(0);
    let cut = Cell::new(false);
    let chars = BoundedChars { chars: text.chars(), read_count: 0, emitted_index: &emitted_index, cut: &cut };
    let cut_error = || {
        let kind = ErrorKind::ValueTooLong { chars_max: LOOKAHEAD_CHARS_MAX };
        Located::new(next_value_at(text, emitted_index.get()), kind)
    };
    for item in Parser::new_from_iter(chars) {
        // Whatever the parser made of a cut input is meaningless; report the cut instead.
        if cut.get() {
            return Err(cut_error());
        }
        let (event, event_span) = item.map_err(|error| {
            let marker = error.marker();
            let span = span_at(marker.line(), marker.col());
            // The parser's own flow-nesting guard fires before we see the events.
            let kind = if error.info() == "recursion limit exceeded" {
                ErrorKind::TooDeep { depth_max: DEPTH_MAX }
            } else {
                ErrorKind::Syntax { message: error.info().to_owned() }
            };
            Located::new(span, kind)
        })?;
        emitted_index.set(emitted_index.get().max(event_span.end.index()));
        let span = span_at(event_span.start.line(), event_span.start.col());
        let completed = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                documents_count += 1;
                if documents_count > 1 {
                    return Err(Located::new(span, ErrorKind::MultipleDocuments));
                }
                None
            }
            Event::Alias(_) => return Err(Located::new(span, ErrorKind::Alias)),
            Event::Scalar(text, style, _anchor, tag) => {
                refuse_tag(tag.as_deref(), span)?;
                count_value(&mut values_count, span)?;
                if text.len() > SCALAR_BYTES_MAX {
                    let kind = ErrorKind::ScalarTooLong {
                        length_bytes: text.len(),
                        maximum_bytes: SCALAR_BYTES_MAX,
                    };
                    return Err(Located::new(span, kind));
                }
                let plain = style == ScalarStyle::Plain;
                Some(Node { span, value: Value::Scalar { text: text.into_owned(), plain } })
            }
            Event::SequenceStart(_, ref tag) | Event::MappingStart(_, ref tag) => {
                refuse_tag(tag.as_deref(), span)?;
                count_value(&mut values_count, span)?;
                if stack.len() >= DEPTH_MAX {
                    return Err(Located::new(span, ErrorKind::TooDeep { depth_max: DEPTH_MAX }));
                }
                if let Some(Frame::Mapping { pending_key: None, .. }) = stack.last() {
                    return Err(Located::new(span, ErrorKind::ComplexKey));
                }
                let frame = if matches!(event, Event::SequenceStart(..)) {
                    Frame::Sequence { span, items: Vec::new() }
                } else {
                    Frame::Mapping { span, entries: Vec::new(), pending_key: None, keys: BTreeSet::new() }
                };
                stack.push(frame);
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Sequence { span, items }) => Some(Node { span, value: Value::Sequence(items) }),
                Some(Frame::Mapping { span, entries, .. }) => {
                    Some(Node { span, value: Value::Mapping(entries) })
                }
                // The parser never ends a collection it did not start.
                None => {
                    return Err(Located::new(span, ErrorKind::Syntax { message: "unbalanced end".into() }));
                }
            },
        };
        if let Some(node) = completed {
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Sequence { items, .. }) => items.push(node),
                Some(Frame::Mapping { entries, pending_key, keys, .. }) => match pending_key.take() {
                    Some((key, key_span)) => entries.push(Entry { key, key_span, value: node }),
                    None => {
                        let Value::Scalar { text, .. } = node.value else {
                            return Err(Located::new(node.span, ErrorKind::ComplexKey));
                        };
                        if !keys.insert(text.clone()) {
                            let kind = ErrorKind::DuplicateKey { key: shorten(&text) };
                            return Err(Located::new(node.span, kind));
                        }
                        *pending_key = Some((text, node.span));
                    }
                },
            }
        }
    }
    // The parser always ends with `StreamEnd`, which the loop checks after any cut; this
    // keeps a cut input from ever passing as a short file, whatever the parser does.
    if cut.get() {
        return Err(cut_error());
    }
    root.ok_or(Located::new(Span::START, ErrorKind::Empty))
}

/// The position of the first value after character `index`: past blanks, commas,
/// comments and the indicators `:`, `-` and `?`, which is where an overlong value starts.
fn next_value_at(text: &str, index: usize) -> Span {
    let start = text.char_indices().nth(index).map_or(text.len(), |(byte_index, _)| byte_index);
    let mut offset = text.len();
    let mut in_comment = false;
    for (relative, next) in text[start..].char_indices() {
        let at = start + relative;
        let after = &text[at + next.len_utf8()..];
        let after_is_blank = after.is_empty() || after.starts_with([' ', '\t', '\r', '\n']);
        let skip = match next {
            '\n' => {
                in_comment = false;
                true
            }
            _ if in_comment => true,
            '#' => {
                in_comment = true;
                true
            }
            ' ' | '\t' | '\r' | ',' => true,
            ':' | '-' | '?' => after_is_blank,
            _ => false,
        };
        if !skip {
            offset = at;
            break;
        }
    }
    Span::at_byte(text, offset)
}

/// Counts one more value against [`YAML_VALUES_MAX`].
fn count_value(values_count: &mut usize, span: Span) -> Result<(), Located> {
    *values_count += 1;
    if *values_count > YAML_VALUES_MAX {
        return Err(Located::new(span, ErrorKind::TooManyValues { values_max: YAML_VALUES_MAX }));
    }
    Ok(())
}

fn refuse_tag(tag: Option<&saphyr_parser::Tag>, span: Span) -> Result<(), Located> {
    match tag {
        Some(tag) => {
            // Written back the way a user types it: `!!str`, `!local`, or verbatim.
            let written = match tag.handle.as_str() {
                "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
                "!" => format!("!{}", tag.suffix),
                handle => format!("!<{handle}{}>", tag.suffix),
            };
            Err(Located::new(span, ErrorKind::Tag { tag: shorten(&written) }))
        }
        None => Ok(()),
    }
}

/// Converts the parser's 1-based line and 0-based column.
fn span_at(line: usize, column_index: usize) -> Span {
    let line = u32::try_from(line).unwrap_or(u32::MAX);
    let column = u32::try_from(column_index.saturating_add(1)).unwrap_or(u32::MAX);
    Span { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(line: u32, column: u32, text: &str) -> Node {
        Node { span: Span { line, column }, value: Value::Scalar { text: text.into(), plain: true } }
    }

    /// Goal: the tree keeps every value's position, 1-based. Method: a small document.
    #[test]
    fn positions() {
        let tree = parse_tree("a: 1\nb: [x, \"y\"]\n").unwrap();
        let Value::Mapping(entries) = tree.value else { panic!("root is a mapping") };
        assert_eq!(entries[0].key, "a");
        assert_eq!(entries[0].key_span, Span { line: 1, column: 1 });
        assert_eq!(entries[0].value, scalar(1, 4, "1"));
        let Value::Sequence(items) = &entries[1].value.value else { panic!("b is a list") };
        assert_eq!(entries[1].value.span, Span { line: 2, column: 4 });
        assert_eq!(items[0], scalar(2, 5, "x"));
        assert_eq!(items[1].span, Span { line: 2, column: 8 });
        assert_eq!(items[1].value, Value::Scalar { text: "y".into(), plain: false });
    }

    /// Goal: each refused construct is reported where it starts. Method: one input each.
    #[test]
    fn refusals() {
        let error = |text: &str| parse_tree(text).unwrap_err();
        assert_eq!(error("a: 1\na: 2\n"), Located::new(Span { line: 2, column: 1 }, duplicate("a")));
        assert_eq!(error("a: &x 1\nb: *x\n"), Located::new(Span { line: 2, column: 4 }, ErrorKind::Alias));
        assert_eq!(error("a: !x 1\n").kind, ErrorKind::Tag { tag: "!x".into() });
        assert_eq!(error("? [a]\n: 1\n"), Located::new(Span { line: 1, column: 3 }, ErrorKind::ComplexKey));
        assert_eq!(error("a: 1\n---\nb: 2\n").kind, ErrorKind::MultipleDocuments);
        assert_eq!(error("# nothing\n"), Located::new(Span::START, ErrorKind::Empty));
        assert_eq!(error(""), Located::new(Span::START, ErrorKind::Empty));
    }

    fn duplicate(key: &str) -> ErrorKind {
        ErrorKind::DuplicateKey { key: key.into() }
    }

    /// Goal: null spellings are recognised, quoted ones are text. Method: each spelling.
    #[test]
    fn nulls() {
        for text in ["a:\n", "a: ~\n", "a: null\n"] {
            let Value::Mapping(entries) = parse_tree(text).unwrap().value else { panic!("mapping") };
            assert!(entries[0].value.is_null(), "{text}");
            assert_eq!(entries[0].value.describe(), "null");
        }
        let Value::Mapping(entries) = parse_tree("a: \"null\"\n").unwrap().value else { panic!("mapping") };
        assert!(!entries[0].value.is_null());
        assert_eq!(entries[0].value.describe(), "\"null\"");
    }
}

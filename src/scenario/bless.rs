//! `ferry run --bless`: writes `expect.trace_hash` into a scenario file's text, leaving
//! every other byte (comments, order, layout) as it was.
//!
//! The edit is textual, guided by the positions of the parsed tree, and checked by parsing
//! the result again: it must give the same scenario with only `trace_hash` changed.

use super::Span;
use super::yaml::{self, Node, Value};

/// Returns `text` with `expect.trace_hash` set to `hash`: the value replaced when present,
/// a `trace_hash:` line added to an `expect` section when absent, or an `expect` section
/// appended when there is none.
///
/// # Errors
/// A message when the file cannot be edited safely (a flow-style `expect` with the key
/// absent is handled; anything the parser rejects, or an edit that does not parse back to
/// the same scenario, is refused).
pub fn bless(file_label: &str, text: &str, hash: &str) -> Result<String, String> {
    let before = super::parse(file_label, text).map_err(|error| error.to_string())?;
    let tree = yaml::parse_tree(text).map_err(|error| error.into_error(file_label).to_string())?;
    let Value::Mapping(entries) = &tree.value else { return Err(format!("{file_label}: not a mapping")) };
    let edited = match entries.iter().find(|entry| entry.key == "expect") {
        None => {
            let separator = if text.ends_with('\n') || text.is_empty() { "" } else { "\n" };
            format!("{text}{separator}expect:\n  trace_hash: {hash}\n")
        }
        Some(expect) => edit_expect(text, &expect.value, expect.key_span, hash)?,
    };
    let after = super::parse(file_label, &edited)
        .map_err(|error| format!("the edited file does not parse: {error}"))?;
    let mut expected = before;
    expected.expect.trace_hash = Some(hash.to_owned());
    let same = |scenario: &super::Scenario| {
        let mut scenario = scenario.clone();
        scenario.faults.iter_mut().for_each(|fault| fault.span = Span::START);
        scenario
    };
    if same(&after) != same(&expected) {
        return Err(format!("{file_label}: could not set expect.trace_hash without changing anything else"));
    }
    Ok(edited)
}

fn edit_expect(text: &str, expect: &Node, key_span: Span, hash: &str) -> Result<String, String> {
    let entries = match &expect.value {
        Value::Mapping(entries) => entries.as_slice(),
        _ if expect.is_null() => &[],
        _ => return Err("`expect` is not a mapping".to_owned()),
    };
    if let Some(entry) = entries.iter().find(|entry| entry.key == "trace_hash") {
        let start = byte_offset(text, entry.value.span).ok_or("cannot locate expect.trace_hash")?;
        let rest = &text[start..];
        let length = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                rest[1..].find(quote).map(|end| end + 2).ok_or("unterminated quote")?
            }
            _ => rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len()),
        };
        return Ok(format!("{}{hash}{}", &text[..start], &text[start + length..]));
    }
    let value_start = byte_offset(text, expect.span).ok_or("cannot locate `expect`")?;
    if text[value_start..].starts_with('{') {
        let insert_at = value_start + 1;
        let separator = if entries.is_empty() { "" } else { ", " };
        return Ok(format!("{}trace_hash: {hash}{separator}{}", &text[..insert_at], &text[insert_at..]));
    }
    // Block style (or an empty `expect:`): a new line after the key's line, indented like
    // the first entry (two spaces deeper than `expect` when there is none).
    let indent = match entries.first() {
        Some(first) => first.key_span.column as usize - 1,
        None => key_span.column as usize + 1,
    };
    let key_line_start =
        byte_offset(text, Span { line: key_span.line, column: 1 }).ok_or("cannot locate `expect`")?;
    let line_end = text[key_line_start..].find('\n').map_or(text.len(), |end| key_line_start + end);
    let (head, tail) = text.split_at(line_end);
    let tail = if tail.is_empty() { "\n" } else { tail };
    Ok(format!("{head}\n{:indent$}trace_hash: {hash}{tail}", ""))
}

/// The byte offset of a 1-based line and character column.
fn byte_offset(text: &str, span: Span) -> Option<usize> {
    let mut offset = 0;
    for _ in 1..span.line {
        offset += text[offset..].find('\n')? + 1;
    }
    let line = &text[offset..];
    let column = line.char_indices().nth(span.column as usize - 1).map_or(line.len(), |(index, _)| index);
    Some(offset + column)
}

#[cfg(test)]
mod tests {
    use super::bless;

    const HASH: &str = "0123456789abcdef0123456789abcdef";
    const BASE: &str = "name: t # keep\nduration: 10s\nnodes: [a, b]\n";

    /// Goal: each shape of file gets exactly one edit and keeps its comments. Method: the
    /// three cases, compared byte for byte.
    #[test]
    fn writes_the_hash_in_every_shape() {
        assert_eq!(
            bless("f", BASE, HASH).as_deref(),
            Ok(format!("{BASE}expect:\n  trace_hash: {HASH}\n").as_str())
        );
        let block = format!("{BASE}expect:\n    converged: true  # c\n");
        assert_eq!(
            bless("f", &block, HASH).as_deref(),
            Ok(format!("{BASE}expect:\n    trace_hash: {HASH}\n    converged: true  # c\n").as_str())
        );
        let flow = format!("{BASE}expect: {{within: 5s}}\n");
        assert_eq!(
            bless("f", &flow, HASH).as_deref(),
            Ok(format!("{BASE}expect: {{trace_hash: {HASH}, within: 5s}}\n").as_str())
        );
        let present = format!("{BASE}expect:\n  trace_hash: \"ffffffffffffffff\" # old\n");
        assert_eq!(
            bless("f", &present, HASH).as_deref(),
            Ok(format!("{BASE}expect:\n  trace_hash: {HASH} # old\n").as_str())
        );
    }

    #[test]
    fn refuses_an_invalid_file() {
        assert!(bless("f", "name: [", HASH).is_err());
    }
}

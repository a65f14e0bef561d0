//! Untrusted text made safe to print: a peer's Close reason, a node name, a key or a file
//! name end up in terminals, log files and CI logs, where a control character could move
//! the cursor, set the terminal's title or forge another line.

/// `text` with control characters, quotes and backslashes escaped (Rust's `escape_debug`),
/// so it cannot move the cursor, clear a screen or forge another line.
#[must_use]
pub fn escape(text: &str) -> String {
    text.escape_debug().to_string()
}

/// `text` as one inert line: every control character (newlines and ESC included) and every
/// Unicode bidirectional control escaped (`\u{a}`, `\u{1b}`, `\u{202e}`); the rest
/// is unchanged, so ordinary lines read as they were written.
pub fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for character in text.chars() {
        let bidi =
            matches!(character, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
        if character.is_control() || bidi {
            line.extend(character.escape_unicode());
        } else {
            line.push(character);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_control_characters() {
        assert_eq!(escape("0..3\u{1b}[2J"), r"0..3\u{1b}[2J");
    }

    #[test]
    fn one_line_escapes_line_breaks_escapes_and_bidi_controls_only() {
        assert_eq!(
            one_line("peer a: ok\n\u{1b}]0;x\u{7}\u{202e}é"),
            r"peer a: ok\u{a}\u{1b}]0;x\u{7}\u{202e}é"
        );
    }
}

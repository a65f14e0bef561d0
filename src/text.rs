//! Untrusted text made safe to print: command-line values and file names end up in
//! terminals, CI logs and copy-pasted shell commands.

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

/// `word` as one POSIX shell word: unchanged when it holds only characters no shell
/// treats specially, single-quoted otherwise (a `'` inside becomes `'\''`), with control
/// characters escaped first so that the line stays one line.
#[must_use]
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | ',' | '='));
    if plain {
        return word.to_owned();
    }
    let printable: String = word
        .chars()
        .map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() })
        .collect();
    format!("'{}'", printable.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quote_only_when_needed() {
        assert_eq!(shell_word("scenarios/a-b_1.yaml"), "scenarios/a-b_1.yaml");
        assert_eq!(shell_word("my file.yaml"), "'my file.yaml'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("a\nb; rm"), r"'a\nb; rm'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn escape_neutralises_control_characters() {
        assert_eq!(escape("0..3\u{1b}[2J"), r"0..3\u{1b}[2J");
    }
}

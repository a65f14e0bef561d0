//! Untrusted text made safe to print: command-line values and file names end up in
//! terminals, CI logs and copy-pasted shell commands. Escaping for terminals and log
//! lines lives in the protocol crate, which every other crate depends on.

pub use ferry_protocol::text::{escape, one_line};

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
}

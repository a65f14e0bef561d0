//! One-line diagnostics on stderr for the real node and the registry.
//!
//! Owns the format of log lines (`ferry node NAME: message`) and the verbosity switch. It
//! never writes to stdout, which belongs to command answers. Messages carry text from peers
//! (names, Close reasons, discovery announcements), so every line is escaped as a whole
//! before it is written: a peer cannot end a line, move the cursor or reorder the text.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

/// How much a [`Logger`] prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Problems the node survives and notable changes: peers, recovery, retries.
    Info,
    /// Everything else: dials, rejected frames, ignored datagrams.
    Debug,
}

/// A cheap, cloneable handle that prefixes every line with the component's name.
#[derive(Debug, Clone)]
pub(crate) struct Logger {
    prefix: Arc<str>,
    level_max: Level,
}

impl Logger {
    /// A logger printing `prefix: message`, at debug level when `verbose`.
    pub(crate) fn new(prefix: impl Into<String>, verbose: bool) -> Self {
        let level_max = if verbose { Level::Debug } else { Level::Info };
        Self { prefix: Arc::from(prefix.into()), level_max }
    }

    /// True when lines at `level` are printed.
    pub(crate) fn enabled(&self, level: Level) -> bool {
        level <= self.level_max
    }

    /// Prints a notable line.
    pub(crate) fn info(&self, message: fmt::Arguments<'_>) {
        self.write(Level::Info, message);
    }

    /// Prints a line only in verbose mode.
    pub(crate) fn debug(&self, message: fmt::Arguments<'_>) {
        self.write(Level::Debug, message);
    }

    fn write(&self, level: Level, message: fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        let line = ferry_protocol::text::one_line(&format!("{}: {message}", self.prefix));
        // A closed stderr must not take the node down: logging is best effort.
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use ferry_protocol::text::one_line;

    #[test]
    fn a_line_from_a_peer_cannot_forge_another() {
        // Goal: a Close reason or a name holding a newline, ESC sequences or a bidi override
        // prints as one inert line; plain text is unchanged.
        let forged = "bye\n\u{1b}[2Kferry node a: peer connected: mallory\u{202e}";
        assert_eq!(one_line(forged), "bye\\u{a}\\u{1b}[2Kferry node a: peer connected: mallory\\u{202e}");
        assert_eq!(
            one_line("peer connected: b (127.0.0.1:7002, dialed) é"),
            "peer connected: b (127.0.0.1:7002, dialed) é"
        );
    }
}

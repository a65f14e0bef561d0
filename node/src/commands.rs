//! The stdin language of `ferry node`: reading bounded lines, parsing them into commands,
//! and answering them in order.
//!
//! Owns the text of every command and answer (`put KEY VALUE` → `ok`, `get KEY` → the value
//! or `(nil)`, ...). It knows nothing of sockets or the WAL: the runtime executes commands and
//! tells [`Answers`] when a write became durable.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};

use ferry_protocol::entry::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use thiserror::Error;

/// Longest command line accepted, newline excluded: room for the largest key and value.
pub(crate) const COMMAND_BYTES_MAX: usize = 64 * 1024;

const _: () = assert!(KEY_BYTES_MAX + VALUE_BYTES_MAX + 16 < COMMAND_BYTES_MAX);

/// Commands read but not yet answered, at most: the reader waits for answers beyond it, so a
/// fast producer cannot grow the answer queue without bound.
pub(crate) const COMMANDS_INFLIGHT_MAX: usize = 4096;

/// One command of the language. [`CommandName::ALL`] is the one list of commands: `help`
/// answers it, the unknown-command error names it, and [`parse`] accepts exactly its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandName {
    Put,
    Get,
    Delete,
    Peers,
    Ping,
    Digest,
    Help,
    Quit,
}

impl CommandName {
    /// Every command, in the order `help` lists them.
    pub(crate) const ALL: [Self; 8] =
        [Self::Put, Self::Get, Self::Delete, Self::Peers, Self::Ping, Self::Digest, Self::Help, Self::Quit];

    /// The word that starts the command's line.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::Delete => "del",
            Self::Peers => "peers",
            Self::Ping => "ping",
            Self::Digest => "digest",
            Self::Help => "help",
            Self::Quit => "quit",
        }
    }

    /// The command with its arguments, as `help` and usage errors show it.
    pub(crate) fn usage(self) -> &'static str {
        match self {
            Self::Put => "put KEY VALUE",
            Self::Get => "get KEY",
            Self::Delete => "del KEY",
            Self::Ping => "ping NAME",
            Self::Peers | Self::Digest | Self::Help | Self::Quit => self.word(),
        }
    }

    fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|name| name.word() == word)
    }
}

/// Every command's word, for the unknown-command message: `put, get, ...`.
fn command_words() -> String {
    CommandName::ALL.map(CommandName::word).join(", ")
}

/// The answer to `help`: one line listing every command with its arguments.
pub(crate) fn help_text() -> String {
    format!("commands: {}", CommandName::ALL.map(CommandName::usage).join(", "))
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `put KEY VALUE`: the value is the rest of the line and may hold spaces.
    Put { key: String, value: String },
    /// `get KEY`.
    Get { key: String },
    /// `del KEY`.
    Delete { key: String },
    /// `peers`.
    Peers,
    /// `ping NAME`: a routed ping; answered `pong NAME rtt=...` or an error.
    Ping { target: String },
    /// `digest`.
    Digest,
    /// `help`: the list of commands.
    Help,
    /// `quit`.
    Quit,
}

/// Why a command line was refused; answered as `error: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum CommandError {
    /// The first word names no command.
    #[error("unknown command {command:?} (commands: {})", command_words())]
    Unknown { command: String },
    /// A known command with the wrong arguments.
    #[error("usage: {usage}")]
    Usage { usage: &'static str },
    /// The line exceeded [`COMMAND_BYTES_MAX`].
    #[error("command longer than {COMMAND_BYTES_MAX} bytes")]
    TooLong,
    /// The line is not UTF-8.
    #[error("command is not valid utf-8")]
    NotUtf8,
}

/// Parses one line (without its newline). A blank line is `Ok(None)`: nothing to answer.
pub(crate) fn parse(line: &str) -> Result<Option<Command>, CommandError> {
    let line = line.trim_end_matches(['\r', '\n']).trim_start();
    if line.trim_end().is_empty() {
        return Ok(None);
    }
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let name =
        CommandName::from_word(word).ok_or_else(|| CommandError::Unknown { command: word.to_owned() })?;
    let usage = CommandError::Usage { usage: name.usage() };
    let single_argument = || {
        let argument = rest.trim();
        if argument.is_empty() || argument.contains(char::is_whitespace) {
            return Err(usage.clone());
        }
        Ok(argument.to_owned())
    };
    let no_arguments =
        |command: Command| if rest.trim().is_empty() { Ok(command) } else { Err(usage.clone()) };
    let command = match name {
        CommandName::Put => {
            let (key, value) = rest.trim_start().split_once(char::is_whitespace).ok_or(usage.clone())?;
            let value = value.trim_end_matches('\r');
            if value.is_empty() {
                return Err(usage);
            }
            Command::Put { key: key.to_owned(), value: value.to_owned() }
        }
        CommandName::Get => Command::Get { key: single_argument()? },
        CommandName::Delete => Command::Delete { key: single_argument()? },
        CommandName::Peers => no_arguments(Command::Peers)?,
        CommandName::Ping => Command::Ping { target: single_argument()? },
        CommandName::Digest => no_arguments(Command::Digest)?,
        CommandName::Help => no_arguments(Command::Help)?,
        CommandName::Quit => no_arguments(Command::Quit)?,
    };
    Ok(Some(command))
}

/// A line as read from the command stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// A whole line, newline removed.
    Text(String),
    /// A line that was not accepted; the reader skipped to its end.
    Refused(CommandError),
}

/// Reads the next line, at most [`COMMAND_BYTES_MAX`] bytes; `None` at end of input. A longer
/// line is skipped to its newline and reported as [`CommandError::TooLong`], so memory stays
/// bounded whatever arrives.
///
/// # Errors
/// A read error of the underlying stream.
pub(crate) fn read_line(reader: &mut impl BufRead, buffer: &mut Vec<u8>) -> io::Result<Option<Line>> {
    buffer.clear();
    let read_bytes = reader.by_ref().take(COMMAND_BYTES_MAX as u64 + 1).read_until(b'\n', buffer)?;
    if read_bytes == 0 {
        return Ok(None);
    }
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
    } else if buffer.len() > COMMAND_BYTES_MAX {
        skip_line(reader)?;
        return Ok(Some(Line::Refused(CommandError::TooLong)));
    }
    match std::str::from_utf8(buffer) {
        Ok(text) => Ok(Some(Line::Text(text.to_owned()))),
        Err(_) => Ok(Some(Line::Refused(CommandError::NotUtf8))),
    }
}

/// Consumes input up to and including the next newline.
fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        if let Some(index) = available.iter().position(|byte| *byte == b'\n') {
            reader.consume(index + 1);
            return Ok(());
        }
        let length = available.len();
        reader.consume(length);
    }
}

/// Renders a stored value as one answer line: as is when it is printable UTF-8, escaped
/// otherwise, so a value from a peer can never break the one-line-per-answer rule.
pub(crate) fn display_value(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => String::from_utf8_lossy(value).escape_debug().to_string(),
    }
}

/// One answer in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Ready(String),
    /// A routed ping to `target`, answered by its pong or failed at `deadline_ns`.
    Ping {
        target: String,
        deadline_ns: u64,
    },
    /// `ok` once this node's write `sequence` is durable.
    Durable {
        sequence: u64,
    },
}

/// Where an answer goes: stdout (or a [`NodeHandle`](crate::NodeHandle)'s channel) when
/// `None`, else the reply channel of a `--control` request.
pub(crate) type Reply = Option<SyncSender<String>>;

/// Answers in command order. A write's `ok` waits for durability, and every answer after it
/// waits behind it, so a script reading line N always reads the answer to command N.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    queue: VecDeque<(Answer, Reply)>,
    /// This node's writes up to this sequence are durable.
    durable_sequence: u64,
    /// Where the next queued answer goes: set by [`address`](Self::address) for the command
    /// being handled, taken by the answer it queues.
    addressee: Reply,
}

impl Answers {
    /// An empty queue; this node's writes up to `durable_sequence` are already durable.
    pub(crate) fn new(durable_sequence: u64) -> Self {
        Self { queue: VecDeque::new(), durable_sequence, addressee: None }
    }

    /// The next answer queued goes to `reply` (and the ones after it to stdout again).
    pub(crate) fn address(&mut self, reply: Reply) {
        self.addressee = reply;
    }

    fn queue(&mut self, answer: Answer) {
        let reply = self.addressee.take();
        self.queue.push_back((answer, reply));
    }

    /// Queues an answer that is ready now.
    pub(crate) fn push(&mut self, answer: String) {
        self.queue(Answer::Ready(answer));
    }

    /// Queues `ok` for the write with this sequence, released once it is durable.
    pub(crate) fn push_durable(&mut self, sequence: u64) {
        self.queue(Answer::Durable { sequence });
    }

    /// Queues the answer to a routed ping of `target`, due by `deadline_ns`.
    pub(crate) fn push_ping(&mut self, target: String, deadline_ns: u64) {
        self.queue(Answer::Ping { target, deadline_ns });
    }

    /// A pong from `target` arrived: the oldest ping waiting for it is answered.
    pub(crate) fn pong(&mut self, target: &str, round_trip_ns: u64) {
        let waiting = self
            .queue
            .iter_mut()
            .map(|(answer, _)| answer)
            .find(|answer| matches!(answer, Answer::Ping { target: t, .. } if t == target));
        if let Some(answer) = waiting {
            let round_trip_ms = round_trip_ns as f64 / 1e6;
            let target = ferry_protocol::text::escape(target);
            *answer = Answer::Ready(format!("pong {target} rtt={round_trip_ms:.3}ms"));
        }
    }

    /// Pings past their deadline are answered with an error.
    pub(crate) fn expire(&mut self, now_ns: u64) {
        for (answer, _) in &mut self.queue {
            if let Answer::Ping { target, deadline_ns } = answer
                && *deadline_ns <= now_ns
            {
                *answer =
                    Answer::Ready(format!("error: no pong from {}", ferry_protocol::text::escape(target)));
            }
        }
    }

    /// Every ping still waiting is answered with an error saying `why`.
    pub(crate) fn cancel_pings(&mut self, why: &str) {
        for (answer, _) in &mut self.queue {
            if let Answer::Ping { target, .. } = answer {
                let target = ferry_protocol::text::escape(target);
                *answer = Answer::Ready(format!("error: no pong from {target}: {why}"));
            }
        }
    }

    /// The earliest ping deadline, if any.
    pub(crate) fn deadline_ns(&self) -> Option<u64> {
        self.queue
            .iter()
            .filter_map(|(answer, _)| match answer {
                Answer::Ping { deadline_ns, .. } => Some(*deadline_ns),
                _ => None,
            })
            .min()
    }

    /// This node's write `sequence` (and every earlier one) is durable.
    pub(crate) fn acknowledge(&mut self, sequence: u64) {
        self.durable_sequence = self.durable_sequence.max(sequence);
    }

    /// Replaces every answer still waiting for durability with `error: REASON`.
    pub(crate) fn fail_pending(&mut self, reason: &str) {
        for (answer, _) in &mut self.queue {
            if matches!(answer, Answer::Durable { .. }) {
                *answer = Answer::Ready(format!("error: {reason}"));
            }
        }
    }

    /// The next answer and where it goes, if it is releasable.
    pub(crate) fn pop_addressed(&mut self) -> Option<(String, Reply)> {
        let durable_sequence = self.durable_sequence;
        let text = match &mut self.queue.front_mut()?.0 {
            Answer::Ready(text) => std::mem::take(text),
            Answer::Durable { sequence } if *sequence <= durable_sequence => "ok".to_owned(),
            Answer::Durable { .. } | Answer::Ping { .. } => return None,
        };
        let (_, reply) = self.queue.pop_front()?;
        Some((text, reply))
    }

    /// The next answer, if it is releasable (wherever it goes).
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<String> {
        self.pop_addressed().map(|(text, _)| text)
    }

    /// True when every answer was released.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// A counting semaphore bounding the commands in flight between a reader and the runtime.
#[derive(Debug, Clone)]
pub(crate) struct Credits {
    shared: Arc<(Mutex<usize>, Condvar)>,
}

impl Credits {
    /// `count` credits.
    pub(crate) fn new(count: usize) -> Self {
        Self { shared: Arc::new((Mutex::new(count), Condvar::new())) }
    }

    /// Waits for a credit and takes it.
    pub(crate) fn acquire(&self) {
        let (count, available) = &*self.shared;
        // A poisoned lock means a thread panicked while counting; the count is still usable.
        let mut count = count.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *count == 0 {
            count = available.wait(count).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *count -= 1;
    }

    /// Returns a credit.
    pub(crate) fn release(&self) {
        let (count, available) = &*self.shared;
        let mut count = count.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *count += 1;
        available.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Command {
        Command::Put { key: key.to_owned(), value: value.to_owned() }
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("put k v"), Ok(Some(put("k", "v"))));
        assert_eq!(parse("put k hello  world\r"), Ok(Some(put("k", "hello  world"))));
        assert_eq!(parse("  get key "), Ok(Some(Command::Get { key: "key".to_owned() })));
        assert_eq!(parse("del key"), Ok(Some(Command::Delete { key: "key".to_owned() })));
        assert_eq!(parse("peers"), Ok(Some(Command::Peers)));
        assert_eq!(parse("digest"), Ok(Some(Command::Digest)));
        assert_eq!(parse("ping b"), Ok(Some(Command::Ping { target: "b".to_owned() })));
        assert_eq!(parse("help"), Ok(Some(Command::Help)));
        assert_eq!(parse("quit"), Ok(Some(Command::Quit)));
        assert_eq!(parse("   "), Ok(None));
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn refuses_bad_lines_with_exact_errors() {
        assert_eq!(parse("frob x"), Err(CommandError::Unknown { command: "frob".to_owned() }));
        assert_eq!(parse("put k"), Err(CommandError::Usage { usage: "put KEY VALUE" }));
        assert_eq!(parse("put k "), Err(CommandError::Usage { usage: "put KEY VALUE" }));
        assert_eq!(parse("get"), Err(CommandError::Usage { usage: "get KEY" }));
        assert_eq!(parse("get a b"), Err(CommandError::Usage { usage: "get KEY" }));
        assert_eq!(parse("del"), Err(CommandError::Usage { usage: "del KEY" }));
        assert_eq!(parse("peers now"), Err(CommandError::Usage { usage: "peers" }));
        assert_eq!(parse("ping"), Err(CommandError::Usage { usage: "ping NAME" }));
        assert_eq!(parse("help me"), Err(CommandError::Usage { usage: "help" }));
        assert_eq!(
            CommandError::Unknown { command: "frob".to_owned() }.to_string(),
            "unknown command \"frob\" (commands: put, get, del, peers, ping, digest, help, quit)"
        );
        assert_eq!(
            CommandError::Unknown { command: "\u{1b}[2J".to_owned() }.to_string(),
            "unknown command \"\\u{1b}[2J\" (commands: put, get, del, peers, ping, digest, help, quit)",
            "the word is escaped"
        );
    }

    #[test]
    fn help_lists_every_command_the_parser_knows() {
        // Goal: `help`, the unknown-command error and the parser share one list. Method:
        // every listed word parses as a command (never "unknown"), and `help` names each.
        assert_eq!(
            help_text(),
            "commands: put KEY VALUE, get KEY, del KEY, peers, ping NAME, digest, help, quit"
        );
        for name in CommandName::ALL {
            assert!(!matches!(parse(name.word()), Err(CommandError::Unknown { .. })), "{name:?}");
            assert!(help_text().contains(name.usage()), "{name:?}");
        }
    }

    #[test]
    fn reads_bounded_lines() {
        // Goal: lines up to the bound pass, a longer one is refused and skipped whole, and
        // reading resumes at the next line.
        let exact = "x".repeat(COMMAND_BYTES_MAX);
        let long = "y".repeat(COMMAND_BYTES_MAX + 10);
        let input = format!("get a\n{exact}\n{long}\nget b\n\u{0}\nlast");
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(b"\n\xff\n");
        let mut reader = io::BufReader::with_capacity(1000, bytes.as_slice());
        let mut buffer = Vec::new();
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut reader, &mut buffer).expect("reading a slice cannot fail") {
            lines.push(line);
        }
        assert_eq!(
            lines,
            vec![
                Line::Text("get a".to_owned()),
                Line::Text(exact),
                Line::Refused(CommandError::TooLong),
                Line::Text("get b".to_owned()),
                Line::Text("\u{0}".to_owned()),
                Line::Text("last".to_owned()),
                Line::Refused(CommandError::NotUtf8),
            ]
        );
    }

    #[test]
    fn answers_wait_for_durability_in_order() {
        let mut answers = Answers::new(2);
        answers.push_durable(2);
        answers.push_durable(3);
        answers.push("v".to_owned());
        answers.push_durable(4);
        assert_eq!(answers.pop(), Some("ok".to_owned()));
        assert_eq!(answers.pop(), None, "sequence 3 is not durable yet");
        answers.acknowledge(3);
        assert_eq!(answers.pop(), Some("ok".to_owned()));
        assert_eq!(answers.pop(), Some("v".to_owned()));
        assert_eq!(answers.pop(), None);
        answers.fail_pending("disk failed");
        assert_eq!(answers.pop(), Some("error: disk failed".to_owned()));
        assert!(answers.is_empty());
    }

    #[test]
    fn cancelled_pings_are_answered_at_once_and_say_why() {
        let mut answers = Answers::new(0);
        answers.push_ping("b".to_owned(), 10);
        answers.push("v".to_owned());
        answers.cancel_pings("the node is shutting down");
        assert_eq!(answers.pop(), Some("error: no pong from b: the node is shutting down".to_owned()));
        assert_eq!(answers.pop(), Some("v".to_owned()));
        assert_eq!(answers.deadline_ns(), None);
    }

    #[test]
    fn ping_answers_name_the_target_escaped() {
        let mut answers = Answers::new(0);
        answers.push_ping("c".to_owned(), 10);
        answers.push_ping("\u{1b}[2J".to_owned(), 10);
        answers.pong("c", 1_500_000);
        answers.expire(10);
        assert_eq!(answers.pop(), Some("pong c rtt=1.500ms".to_owned()));
        assert_eq!(answers.pop(), Some("error: no pong from \\u{1b}[2J".to_owned()));
    }

    #[test]
    fn values_stay_on_one_line() {
        assert_eq!(display_value(b"hello world"), "hello world");
        assert_eq!(display_value(b"two\nlines"), "two\\nlines");
        assert_eq!(display_value(b"\xff"), "\u{fffd}");
    }
}

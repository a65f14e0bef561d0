//! The node's standard streams: the thread reading commands from stdin, the thread writing
//! answers to stdout, and the credits that bound the commands between them.
//!
//! Neither thread touches the protocol node: commands go to the runtime as inputs, and
//! answers come back from it in command order.

use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use crate::commands::{self, Credits, Line};
use crate::input::Input;

/// Where answers go.
#[derive(Debug)]
pub(crate) enum AnswerSink {
    /// `ferry node`'s stdout, written by a thread of its own so a slow reader of stdout
    /// never stalls the event loop.
    Stdout,
    /// A [`NodeHandle`](crate::NodeHandle)'s channel.
    Channel(Sender<String>),
}

/// An [`AnswerSink`] in use.
#[derive(Debug)]
pub(crate) enum Answerer {
    /// Lines for the stdout thread, which releases a command credit per line written, so
    /// the lines waiting for it are bounded by [`COMMANDS_INFLIGHT_MAX`](crate::commands::COMMANDS_INFLIGHT_MAX).
    Stdout {
        lines: Sender<String>,
        thread: JoinHandle<io::Result<()>>,
    },
    Channel(Sender<String>),
}

impl Answerer {
    pub(crate) fn start(sink: AnswerSink, credits: &Credits, inputs: SyncSender<Input>) -> io::Result<Self> {
        match sink {
            AnswerSink::Channel(sender) => Ok(Self::Channel(sender)),
            AnswerSink::Stdout => {
                let (lines, received) = mpsc::channel();
                let credits = credits.clone();
                let thread = std::thread::Builder::new()
                    .name("ferry-stdout".to_owned())
                    .spawn(move || write_stdout(&received, &credits, &inputs))?;
                Ok(Self::Stdout { lines, thread })
            }
        }
    }

    pub(crate) fn emit(&self, answer: String, credits: &Credits) {
        match self {
            // A stopped writer already reported its error as an input.
            Self::Stdout { lines, .. } => {
                let _ = lines.send(answer);
            }
            // A handle dropped without reading its answers does not stop the node.
            Self::Channel(sender) => {
                let _ = sender.send(answer);
                credits.release();
            }
        }
    }

    /// Waits until every answer emitted is written.
    pub(crate) fn finish(self) -> io::Result<()> {
        match self {
            Self::Stdout { lines, thread } => {
                drop(lines);
                thread.join().unwrap_or_else(|_| Err(io::Error::other("the stdout thread panicked")))
            }
            Self::Channel(_) => Ok(()),
        }
    }
}

/// The stdout thread: writes answers, flushing whenever none is waiting.
fn write_stdout(lines: &Receiver<String>, credits: &Credits, inputs: &SyncSender<Input>) -> io::Result<()> {
    let result = write_lines(lines, credits, &mut BufWriter::new(io::stdout()));
    if let Err(error) = &result {
        let _ = inputs.send(Input::StdoutFailed { error: io::Error::new(error.kind(), error.to_string()) });
    }
    result
}

fn write_lines(lines: &Receiver<String>, credits: &Credits, out: &mut impl Write) -> io::Result<()> {
    while let Ok(first) = lines.recv() {
        writeln!(out, "{first}")?;
        credits.release();
        while let Ok(line) = lines.try_recv() {
            writeln!(out, "{line}")?;
            credits.release();
        }
        out.flush()?;
    }
    out.flush()
}

/// Feeds command lines to a runtime, at most [`COMMANDS_INFLIGHT_MAX`](crate::commands::COMMANDS_INFLIGHT_MAX) unanswered.
#[derive(Debug, Clone)]
pub(crate) struct CommandSource {
    pub(crate) inputs: SyncSender<Input>,
    pub(crate) credits: Credits,
}

impl CommandSource {
    /// Sends one line; false once the runtime stopped.
    pub(crate) fn send(&self, line: Line) -> bool {
        self.credits.acquire();
        self.inputs.send(Input::Command(line)).is_ok()
    }

    /// Sends one line of text.
    pub(crate) fn send_text(&self, text: String) -> bool {
        self.send(Line::Text(text))
    }

    /// Ends the command stream.
    pub(crate) fn end(&self) {
        let _ = self.inputs.send(Input::CommandsEnded);
    }
}

/// Starts the thread reading commands from stdin.
///
/// # Errors
/// When the thread cannot start.
pub(crate) fn spawn_stdin_reader(commands: CommandSource) -> io::Result<()> {
    std::thread::Builder::new().name("ferry-stdin".to_owned()).spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buffer = Vec::new();
        // A read error ends the stream like end of input: the node shuts down cleanly.
        while let Ok(Some(line)) = commands::read_line(&mut stdin, &mut buffer) {
            if !commands.send(line) {
                return;
            }
        }
        commands.end();
    })?;
    Ok(())
}

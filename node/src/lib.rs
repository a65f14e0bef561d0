//! The real node: `ferry node` runs the sans-IO protocol node over TCP with a file-backed
//! WAL, and `ferry registry` serves the bootstrap registry.
//!
//! Code map, from the top down (imports point down only):
//! - this file: [`run_node`], [`spawn_node`] and [`NodeHandle`], [`run_registry`].
//! - `runtime`: the event loop. One thread owns the protocol `Node` and is fed through one
//!   bounded channel by every other thread (a signal handler too); it performs the node's
//!   outputs, and every stop (`quit`, end of stdin, SIGTERM/SIGINT) is its one clean shutdown.
//! - `input`: the one type every other thread sends the event loop; the I/O modules below
//!   depend on it, never on the runtime.
//! - `network`: the TCP listener, dial threads and per-connection reader/writer threads.
//! - `dialer`: whom to dial and when, with exponential backoff.
//! - `wal_file`: the data directory: its lock, its node's name, the identity key and the WAL.
//! - `commands`: the stdin language and the in-order answer queue; `stdio`: the threads
//!   reading stdin and writing stdout.
//! - [`discovery`]: UDP announces; [`registry`]: the HTTP registry and its client (both
//!   public: their formats and the registry client are usable on their own).
//! - `http`: the `--metrics` and `--control` endpoints; `readings`: what `/metrics` and
//!   `/status` serve (`Metrics`, in the Prometheus text format, and `Status`).
//! - `log`: one-line diagnostics on stderr; `admission`: per-address connection budgets.
//! - `arguments`: the command line; `error`: why a node stops, and its exit code; `json`: the
//!   bodies of HTTP answers.
//!
//! **Invariant:** a write is answered `ok` only after the protocol node reported it durable
//! (`Event::Acked`), which it does only after the WAL's `sync_data` returned.
//!
//! This crate is the only place in ferry that reads clocks, asks the OS for randomness, opens
//! sockets and files or spawns threads; the protocol crate does none of that.

#![warn(missing_docs, unreachable_pub)]

mod admission;
mod arguments;
mod commands;
mod dialer;
pub mod discovery;
mod error;
mod http;
mod input;
mod json;
mod log;
mod network;
mod quic;
mod readings;
pub mod registry;
mod runtime;
mod stdio;
pub mod transport;
mod wal_file;

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use thiserror::Error;

pub use arguments::{COMPACT_FROM_BYTES_DEFAULT, NodeArguments, RegistryArguments};
pub use error::{EXIT_CLEAN, EXIT_FAILURE, EXIT_USAGE, NodeError};

pub use discovery::DISCOVERY_ADDRESS_DEFAULT;
pub use runtime::Clock;
pub use transport::Transport;
pub use wal_file::{IDENTITY_FILE_NAME, NODE_NAME_FILE_NAME, WAL_FILE_NAME};

use self::runtime::Runtime;
use self::stdio::{AnswerSink, CommandSource};

/// Runs `ferry node` with commands from stdin and answers on stdout, until `quit`, the end
/// of stdin, or SIGTERM, SIGINT or SIGHUP; with `--no-stdin`, only until a signal. Every
/// way ends with the same clean shutdown. Returns the exit code.
///
/// # Errors
/// A [`NodeError`] when the node cannot start or stops on a disk or stdout failure, or on a
/// second signal; see [`NodeError::exit_code`].
pub fn run_node(arguments: NodeArguments) -> Result<i32, NodeError> {
    let no_stdin = arguments.no_stdin;
    let (runtime, commands) = Runtime::start(arguments, AnswerSink::Stdout)?;
    // Each signal becomes an input of the event loop, sent from the handler's own thread.
    // The handler replaces whatever the node inherited: a shell starts background jobs with
    // SIGINT ignored, and a node must still stop cleanly when a script's Ctrl-C reaches it.
    let signals = runtime.inputs();
    ctrlc::set_handler(move || {
        let _ = signals.send(input::Input::Signal);
    })
    .map_err(|error| NodeError::Resource { what: "signal handler", source: io::Error::other(error) })?;
    if !no_stdin {
        stdio::spawn_stdin_reader(commands)
            .map_err(|source| NodeError::Resource { what: "stdin reader thread", source })?;
    }
    runtime.run()
}

/// Runs `ferry registry` until the process is stopped.
///
/// # Errors
/// A [`NodeError`] when it cannot listen.
pub fn run_registry(arguments: RegistryArguments) -> Result<i32, NodeError> {
    registry::serve(&arguments)
}

/// Starts `ferry registry` on a thread of this process and returns the address it serves
/// on: for examples and tests. It serves until the process exits.
///
/// # Errors
/// A [`NodeError`] when it cannot listen.
pub fn spawn_registry(arguments: &RegistryArguments) -> Result<SocketAddr, NodeError> {
    let registry = registry::bind(arguments)?;
    let local = registry.local;
    std::thread::Builder::new()
        .name("ferry-registry-server".to_owned())
        .spawn(move || registry.serve())
        .map_err(|source| NodeError::Resource { what: "registry thread", source })?;
    Ok(local)
}

/// A node running on a thread of this process, driven with the same command lines as
/// `ferry node`'s stdin: for examples and benchmarks.
///
/// Its network threads outlive [`shutdown`](Self::shutdown) until the process exits.
#[derive(Debug)]
pub struct NodeHandle {
    commands: CommandSource,
    answers: std::sync::mpsc::Receiver<String>,
    listen_address: SocketAddr,
    thread: JoinHandle<Result<i32, NodeError>>,
}

/// Why [`NodeHandle::request_until`] gave up.
#[derive(Debug, Error)]
pub enum WaitError {
    /// The node stopped before its answer was accepted.
    #[error("node stopped")]
    Stopped,
    /// The deadline passed; `answer` is the last one.
    #[error("gave up after {deadline:?}: `{command}` still answers {answer:?}")]
    Deadline {
        /// The command sent.
        command: String,
        /// How long it was tried.
        deadline: std::time::Duration,
        /// Its last answer.
        answer: String,
    },
}

/// Starts a node on a thread of this process.
///
/// # Errors
/// A [`NodeError`] when it cannot start.
pub fn spawn_node(arguments: NodeArguments) -> Result<NodeHandle, NodeError> {
    let (sender, answers) = std::sync::mpsc::channel();
    let (runtime, commands) = Runtime::start(arguments, AnswerSink::Channel(sender))?;
    let listen_address = runtime.listen_address();
    let thread = std::thread::Builder::new()
        .name("ferry-node".to_owned())
        .spawn(move || runtime.run())
        .map_err(|source| NodeError::Resource { what: "node thread", source })?;
    Ok(NodeHandle { commands, answers, listen_address, thread })
}

impl NodeHandle {
    /// The address the node accepts peers on.
    #[must_use]
    pub fn listen_address(&self) -> SocketAddr {
        self.listen_address
    }

    /// Sends one command line without waiting for its answer. Blocks while
    /// 4096 commands are unanswered.
    pub fn send(&self, line: &str) {
        self.commands.send_text(line.to_owned());
    }

    /// The next answer line; `None` once the node stopped.
    #[must_use]
    pub fn answer(&self) -> Option<String> {
        self.answers.recv().ok()
    }

    /// Sends one command line and waits for its answer.
    #[must_use]
    pub fn request(&self, line: &str) -> Option<String> {
        self.send(line);
        self.answer()
    }

    /// Sends `line` every 50 ms until its answer satisfies `accept`, for at most `deadline`:
    /// how a program waits for the node to connect, replicate or converge. Returns the
    /// answer it accepted.
    ///
    /// # Errors
    /// [`WaitError::Stopped`] when the node stopped, [`WaitError::Deadline`] (with the last
    /// answer) when `deadline` passed first.
    pub fn request_until(
        &self,
        line: &str,
        deadline: std::time::Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String, WaitError> {
        let started = std::time::Instant::now();
        loop {
            let answer = self.request(line).ok_or(WaitError::Stopped)?;
            if accept(&answer) {
                return Ok(answer);
            }
            if started.elapsed() > deadline {
                return Err(WaitError::Deadline { command: line.to_owned(), deadline, answer });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Ends the command stream (like `quit`) and waits for the node to stop cleanly.
    ///
    /// # Errors
    /// The error the node stopped with.
    pub fn shutdown(self) -> Result<i32, NodeError> {
        self.commands.end();
        // A panic is a bug and was already reported on stderr by the panic hook.
        self.thread.join().unwrap_or(Ok(EXIT_FAILURE))
    }
}

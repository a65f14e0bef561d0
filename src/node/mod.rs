//! The real node: `ferry node` runs the sans-IO protocol node over TCP with a file-backed
//! WAL, and `ferry registry` serves the bootstrap registry.
//!
//! Code map:
//! - `runtime`: the event loop. One thread owns the protocol `Node` and is fed through one
//!   bounded channel by every other thread (a signal handler too); it performs the node's
//!   outputs, and every stop (`quit`, end of stdin, SIGTERM/SIGINT) is its one clean shutdown.
//! - `network`: the TCP listener, dial threads and per-connection reader/writer threads.
//! - `dialer`: whom to dial and when, with exponential backoff.
//! - `wal_file`: the data directory: its lock, its node's name, the identity key and the WAL.
//! - `commands`: the stdin language and the in-order answer queue; `stdio`: the threads
//!   reading stdin and writing stdout.
//! - [`discovery`]: UDP announces; [`registry`]: the HTTP registry and its client (both
//!   public: their formats and the registry client are usable on their own).
//! - `log`: one-line diagnostics on stderr.
//!
//! **Invariant:** a write is answered `ok` only after the protocol node reported it durable
//! (`Event::Acked`), which it does only after the WAL's `sync_data` returned.
//!
//! This is the only place in ferry that reads clocks, asks the OS for randomness, opens
//! sockets and files or spawns threads; the protocol crate does none of that.

mod admission;
mod commands;
mod dialer;
pub mod discovery;
mod log;
mod network;
pub mod registry;
mod runtime;
mod stdio;
mod wal_file;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::thread::JoinHandle;

use ferry_protocol::wal::WalError;
use thiserror::Error;

pub use discovery::DISCOVERY_ADDRESS_DEFAULT;
pub use runtime::Clock;
pub use wal_file::{IDENTITY_FILE_NAME, NODE_NAME_FILE_NAME, WAL_FILE_NAME};

use self::runtime::Runtime;
use self::stdio::{AnswerSink, CommandSource};

/// Exit code of a clean shutdown.
pub const EXIT_CLEAN: i32 = 0;
/// Exit code of a failure after start (a disk or stdout error).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a usage or startup error.
pub const EXIT_USAGE: i32 = 2;

/// `ferry node`: a real node on TCP, driven by one command per line on stdin.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArguments {
    /// This node's name; its node id derives from it
    #[arg(long, value_name = "NAME")]
    pub id: String,
    /// TCP address to accept peers on (port 0 picks a free port, printed on stderr)
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// A peer to dial, redialed with backoff whenever it is away (repeatable)
    #[arg(long = "connect", value_name = "ADDR")]
    pub connect: Vec<String>,
    /// Directory for the WAL and the identity key [default: ferry-node-NAME in the temp dir]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Announce this node over UDP and dial the nodes heard
    #[arg(long)]
    pub discover: bool,
    /// Broadcast address and port for announces [default: 255.255.255.255:47474]
    #[arg(long, value_name = "ADDR", requires = "discover")]
    pub discover_addr: Option<String>,
    /// Registry to register with and fetch peers from, e.g. http://127.0.0.1:7000
    #[arg(long, value_name = "URL")]
    pub bootstrap: Option<String>,
    /// Log more: dials, rejected frames, ignored announces
    #[arg(short, long)]
    pub verbose: bool,
    /// Run as a service: do not read commands from stdin, run until SIGTERM or SIGINT
    #[arg(long)]
    pub no_stdin: bool,
    /// Accept only the peers listed in FILE, one `NAME HEX-KEY` line each (the format of a
    /// data directory's known_peers); without it, peers are trusted on first use
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// Compact the WAL once its log above the last compaction holds this many bytes (and at
    /// least as many as the data): PROTOCOL.md 8.11
    #[arg(long, value_name = "BYTES", default_value_t = COMPACT_FROM_BYTES_DEFAULT)]
    pub compact_from: u64,
    /// How long a peer that went away still holds back compaction; after that it catches
    /// up by snapshot when it returns (e.g. 30m, 1h, 7d)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_forget_after)]
    pub forget_after: u64,
}

/// Default of `--compact-from`: 4 MiB, the protocol's default.
pub const COMPACT_FROM_BYTES_DEFAULT: u64 = 4 * 1024 * 1024;

/// `--forget-after` in nanoseconds.
fn parse_forget_after(text: &str) -> Result<u64, String> {
    crate::scenario::parse_duration_ns(text).map_err(|error| error.to_string())
}

impl NodeArguments {
    /// Arguments for a node named `id` listening on `listen`, with every option off.
    #[must_use]
    pub fn new(id: impl Into<String>, listen: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            listen: listen.into(),
            connect: Vec::new(),
            data: None,
            discover: false,
            discover_addr: None,
            bootstrap: None,
            verbose: false,
            no_stdin: false,
            trust: None,
            compact_from: COMPACT_FROM_BYTES_DEFAULT,
            forget_after: 3_600_000_000_000,
        }
    }
}

/// `ferry registry`: the HTTP registry nodes bootstrap from.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArguments {
    /// TCP address to serve HTTP on (port 0 picks a free port, printed on stderr)
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Log every request
    #[arg(short, long)]
    pub verbose: bool,
}

/// Why the node or the registry could not start or had to stop.
#[derive(Debug, Error)]
pub enum NodeError {
    /// `--id` is empty or too long.
    #[error("invalid node id {id:?}: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// An address flag that does not resolve.
    #[error("invalid {flag} address {address:?}: {reason}")]
    InvalidAddress {
        /// The flag.
        flag: &'static str,
        /// Its value.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}: {}", describe_io(.source))]
    Listen {
        /// The address given.
        address: String,
        /// The bind error.
        source: io::Error,
    },
    /// The data directory cannot be created, read or written.
    #[error("cannot use data directory {}: {}", .path.display(), describe_io(.source))]
    DataDirectory {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another node runs on the data directory.
    #[error("data directory {} is in use by another ferry node", .path.display())]
    DataDirectoryLocked {
        /// The directory.
        path: PathBuf,
    },
    /// The data directory belongs to a node with another name.
    #[error(
        "data directory {} belongs to node {recorded:?}, not {given:?} (each node needs a directory of its own)",
        .path.display()
    )]
    WrongNode {
        /// The directory.
        path: PathBuf,
        /// The name recorded in it.
        recorded: String,
        /// The `--id` given.
        given: String,
    },
    /// The node name file is damaged.
    #[error("node name file {} is unusable: {reason}", .path.display())]
    NodeName {
        /// The node name file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A peers file (`--trust`, or the known peers) cannot be read.
    #[error("cannot read peers file {}: {source}", .path.display())]
    PeersFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The known peers file is damaged.
    #[error("known peers file {} is damaged at line {line}: {reason}", .path.display())]
    KnownPeers {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The identity key file is damaged.
    #[error("identity key {} is unusable: {reason}", .path.display())]
    Identity {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The WAL cannot be opened or read.
    #[error("cannot read wal {}: {}", .path.display(), describe_io(.source))]
    WalRead {
        /// The WAL file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The WAL is damaged before its tail: starting could lose acknowledged writes.
    #[error("refusing to start: wal {} is corrupt: {source}", .path.display())]
    WalCorrupt {
        /// The WAL file.
        path: PathBuf,
        /// Where and how.
        source: WalError,
    },
    /// The protocol node refused its settings.
    #[error("cannot start the protocol node: {0}")]
    Protocol(ferry_protocol::NodeError),
    /// The discovery socket could not be bound.
    #[error("cannot bind discovery socket for {address}: {}", describe_io(.source))]
    Discovery {
        /// The `--discover-addr` value.
        address: String,
        /// The error.
        source: io::Error,
    },
    /// `--bootstrap` is not a usable URL.
    #[error("invalid --bootstrap url {url:?}: {reason}")]
    InvalidBootstrap {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry server could not start.
    #[error("cannot start the registry: {reason}")]
    Registry {
        /// Why.
        reason: String,
    },
    /// The OS refused randomness or a thread.
    #[error("cannot start: {what}: {}", describe_io(.source))]
    Resource {
        /// What was asked for.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A WAL write, truncate or fsync failed while running: the node stops rather than
    /// acknowledge writes it cannot make durable.
    #[error("wal {} failed: {}", .path.display(), describe_io(.source))]
    Disk {
        /// The WAL file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Answers could not be written to stdout.
    #[error("cannot write answers to stdout: {}", describe_io(.source))]
    Stdout {
        /// The error.
        source: io::Error,
    },
    /// A second signal arrived while the node was shutting down: it stopped at once.
    #[error("stopped by a second signal before shutting down cleanly")]
    Interrupted,
}

impl NodeError {
    /// The process exit code for this error: 2 for usage and startup errors, 1 for failures
    /// while running.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Disk { .. } | Self::Stdout { .. } | Self::Interrupted => EXIT_FAILURE,
            _ => EXIT_USAGE,
        }
    }
}

/// A lowercase, one-line description of an I/O error, without the OS error number.
pub(crate) fn describe_io(error: &io::Error) -> String {
    let text = error.to_string();
    let text = text.find(" (os error").map_or(text.as_str(), |index| &text[..index]);
    let mut characters = text.chars();
    characters.next().map_or_else(String::new, |first| first.to_lowercase().chain(characters).collect())
}

/// Resolves the value of an address flag to its first socket address.
pub(crate) fn resolve_address(flag: &'static str, address: &str) -> Result<SocketAddr, NodeError> {
    let invalid = |reason: String| NodeError::InvalidAddress { flag, address: address.to_owned(), reason };
    let mut resolved = address.to_socket_addrs().map_err(|error| invalid(describe_io(&error)))?;
    resolved.next().ok_or_else(|| invalid("resolves to no address".to_owned()))
}

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
        let _ = signals.send(runtime::Input::Signal);
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
    let (server, local, logger) = registry::bind(arguments)?;
    std::thread::Builder::new()
        .name("ferry-registry-server".to_owned())
        .spawn(move || registry::serve_requests(&server, &logger))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_lowercase_sentences() {
        let error = io::Error::from(io::ErrorKind::AddrInUse);
        assert_eq!(describe_io(&error), "address in use");
        #[cfg(target_os = "linux")]
        assert_eq!(describe_io(&io::Error::from_raw_os_error(98)), "address already in use");
    }

    #[test]
    fn exit_codes_split_startup_from_runtime_failures() {
        let source = || io::Error::from(io::ErrorKind::Other);
        assert_eq!(NodeError::Listen { address: "x".to_owned(), source: source() }.exit_code(), EXIT_USAGE);
        assert_eq!(NodeError::Disk { path: PathBuf::from("w"), source: source() }.exit_code(), EXIT_FAILURE);
        assert_eq!(NodeError::Interrupted.exit_code(), EXIT_FAILURE);
        let wrong = NodeError::WrongNode {
            path: PathBuf::from("d"),
            recorded: "a".to_owned(),
            given: "b".to_owned(),
        };
        assert_eq!(wrong.exit_code(), EXIT_USAGE);
    }
}

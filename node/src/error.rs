//! Why a node or a registry could not start or had to stop, and the exit codes.

use std::io;
use std::path::PathBuf;

use ferry_protocol::wal::WalError;
use thiserror::Error;

/// Exit code of a clean shutdown.
pub const EXIT_CLEAN: i32 = 0;
/// Exit code of a failure after start (a disk or stdout error).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a usage or startup error.
pub const EXIT_USAGE: i32 = 2;

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
    /// The data directory holds a WAL but no node name: whose writes they are is unknown.
    #[error(
        "data directory {} holds a wal of {wal_bytes} bytes but no node.name: if it is node {given:?}'s, \
         write {given:?} into {}, else use another directory",
        .path.display(),
        .path.join("node.name").display()
    )]
    UnnamedData {
        /// The directory.
        path: PathBuf,
        /// Bytes of its WAL.
        wal_bytes: u64,
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
    /// The `--psk-file` is unusable.
    #[error("cluster secret file {} is unusable: {reason}", .path.display())]
    Psk {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the secret).
        reason: String,
    },
    /// A registry token file (`--token-file`, `--bootstrap-token-file`) is unusable.
    #[error("registry token file {} is unusable: {reason}", .path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `--id` cannot be registered: a registry accepts only the names of
    /// `registry::validate_registry_name`.
    #[error("node id {id:?} cannot register with a registry: {reason}")]
    UnregistrableId {
        /// The id given.
        id: String,
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

//! What the event loop is fed: every other thread (network readers, dialers, the WAL's
//! sync thread, stdin, discovery, the registry client, the signal handler) speaks to it
//! only through this type, over one bounded channel, and depends on nothing above it.

use std::io;
use std::net::{SocketAddr, TcpStream};

use std::sync::mpsc::SyncSender;

use ferry_protocol::LinkId;

use crate::commands::Line;
use crate::dialer::TargetKey;
use crate::readings::{Metrics, Status};
use crate::transport::Transport;

/// Something for the event loop to handle.
#[derive(Debug)]
pub(crate) enum Input {
    /// A command line.
    Command(Line),
    /// The command stream ended: shut down once every answer is out.
    CommandsEnded,
    /// SIGTERM, SIGINT or SIGHUP arrived: shut down like `quit`; a second one stops at once.
    Signal,
    /// The listener accepted a connection.
    Accepted { stream: TcpStream, address: SocketAddr },
    /// A dial finished.
    Dialed { key: TargetKey, result: Result<(TcpStream, SocketAddr), String> },
    /// A QUIC dial's address resolved (or did not).
    Resolved { key: TargetKey, result: Result<SocketAddr, String> },
    /// A datagram arrived on the QUIC socket.
    Datagram { from: SocketAddr, bytes: Vec<u8> },
    /// Bytes arrived on a connection.
    Received { link: LinkId, bytes: Vec<u8> },
    /// A connection's reader stopped.
    Closed { link: LinkId, reason: String },
    /// The WAL's fsync for `sync_id` returned.
    Synced { sync_id: u64 },
    /// The WAL's fsync failed.
    SyncFailed { error: io::Error },
    /// Discovery or the registry heard of a peer.
    Learned { name: String, address: SocketAddr, transport: Transport, via: &'static str },
    /// A command line from `--control`, whose answer goes to `reply`.
    Control {
        /// The line.
        line: Line,
        /// Where its one answer goes.
        reply: SyncSender<String>,
    },
    /// `/metrics` asks for a reading.
    Metrics {
        /// Where the reading goes.
        reply: SyncSender<Metrics>,
    },
    /// `/status` asks for the node's state.
    Status {
        /// Where the state goes.
        reply: SyncSender<Status>,
    },
    /// Answers could not be written to stdout.
    StdoutFailed { error: io::Error },
}

//! What a [`Node`](super::Node) reports to its caller.

use std::fmt;

use bytes::Bytes;

use crate::entry::{NodeId, Operation, WalEntry};
use crate::storage::DiskRequest;

/// The caller's name for a link (a socket, a simulated peer).
pub type LinkId = u64;

/// Something the node wants done or wants known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this frame (length prefix included) on `link`.
    Send {
        /// Where.
        link: LinkId,
        /// The whole frame.
        frame: Bytes,
    },
    /// Close `link`: its byte stream is unusable (the node has already forgotten it).
    Close {
        /// Which link.
        link: LinkId,
    },
    /// Perform a disk operation; a `Sync` must be answered with
    /// [`Node::handle_synced`](super::Node::handle_synced).
    Disk(DiskRequest),
    /// Something happened.
    Event(Event),
}

/// A notable change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The WAL was read at start.
    Recovered {
        /// Entries recovered.
        entries_count: u64,
        /// Bytes of damaged tail cut off.
        truncated_bytes: u64,
    },
    /// A local write is durable: its WAL record is synced. Only now may the caller report
    /// success.
    Acked {
        /// The write.
        entry: WalEntry,
    },
    /// A handshake finished (or replaced an earlier session) on `link`.
    PeerConnected {
        /// The link.
        link: LinkId,
        /// The peer's name.
        name: String,
        /// The peer's id.
        node_id: NodeId,
    },
    /// A link went away.
    PeerDisconnected {
        /// The link.
        link: LinkId,
        /// Why.
        reason: String,
    },
    /// A handshake failed; the link stays and a later handshake may succeed.
    HandshakeFailed {
        /// The link.
        link: LinkId,
        /// Why.
        reason: String,
    },
    /// A frame was dropped as invalid (bad envelope, failed authentication, replay, ...).
    Rejected {
        /// The link.
        link: LinkId,
        /// Why.
        reason: String,
    },
    /// A routed Pong came back from `target`.
    RoutedPong {
        /// The node that answered.
        target: NodeId,
        /// Round-trip time on the node's clock.
        round_trip_ns: u64,
    },
    /// A Pong answered our Ping.
    Pong {
        /// The link.
        link: LinkId,
        /// Round-trip time on the node's clock.
        round_trip_ns: u64,
    },
}

/// Formats a write compactly: `a#3 put k=v @1000.0`.
pub(crate) struct EntryDisplay<'a>(pub(crate) &'a WalEntry);

impl fmt::Display for EntryDisplay<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = self.0;
        write!(formatter, "{}#{} ", entry.origin, entry.sequence)?;
        match &entry.operation {
            Operation::Put { key, value } => write!(
                formatter,
                "put {}={}",
                String::from_utf8_lossy(key).escape_debug(),
                String::from_utf8_lossy(value).escape_debug()
            )?,
            Operation::Delete { key } => {
                write!(formatter, "delete {}", String::from_utf8_lossy(key).escape_debug())?
            }
        }
        write!(formatter, " @{}", entry.timestamp)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Recovered { entries_count, truncated_bytes } => {
                write!(formatter, "recovered {entries_count} entries, truncated {truncated_bytes}B")
            }
            Self::Acked { entry } => write!(formatter, "acked {}", EntryDisplay(entry)),
            Self::PeerConnected { link, name, node_id } => {
                write!(formatter, "peer connected link={link} name={name} id={node_id}")
            }
            Self::PeerDisconnected { link, reason } => {
                write!(formatter, "peer disconnected link={link}: {reason}")
            }
            Self::HandshakeFailed { link, reason } => {
                write!(formatter, "handshake failed link={link}: {reason}")
            }
            Self::Rejected { link, reason } => write!(formatter, "rejected frame link={link}: {reason}"),
            Self::Pong { link, round_trip_ns } => write!(formatter, "pong link={link} rtt={round_trip_ns}ns"),
            Self::RoutedPong { target, round_trip_ns } => {
                write!(formatter, "routed pong from {target} rtt={round_trip_ns}ns")
            }
        }
    }
}

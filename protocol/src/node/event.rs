//! What a [`Node`](super::Node) reports to its caller.

use std::fmt;

use bytes::Bytes;

use crate::entry::{NodeId, Operation, Timestamp, WalEntry};
use crate::envelope::MessageType;
use crate::message::Message;
use crate::session::Receipt;
use crate::storage::DiskRequest;
use crate::store::{Conflict, ConflictReason, WriteId};

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
        /// What the frame carries, before encryption; only with
        /// [`NodeConfig::describe_sends`](super::NodeConfig::describe_sends), and only for
        /// messages the node builds itself (not the handshake's, which travel in the clear).
        message: Option<Box<SentMessage>>,
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

/// The plaintext of a sent frame, for traces and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The envelope's msg_id (an answer echoes its request's).
    pub msg_id: u32,
    /// The message.
    pub message: Message,
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
        /// The peer's static public key, authenticated by the handshake.
        static_key: [u8; crate::session::KEY_BYTES],
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
    /// A frame was dropped as invalid (bad envelope, failed authentication, replay, ...),
    /// or entries in a WalPush were refused because their origin is not a member
    /// ([`NodeConfig::member_origins`](super::NodeConfig::member_origins), PROTOCOL.md 8.12;
    /// the reason starts `refused N entries of origin O`, at most once a minute per origin).
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
    /// An entry of `origin`, received on `link`, is stamped more than the drift bound ahead
    /// of this node's clock (PROTOCOL.md 8.2): that origin's clock runs ahead, it wrote just
    /// above such a version, or the entry is forged. It is stored and applied like any other,
    /// and later writes here still beat it; reported once per origin.
    ClockAhead {
        /// The link it arrived on.
        link: LinkId,
        /// The entry's origin.
        origin: NodeId,
        /// Its timestamp.
        timestamp: Timestamp,
        /// How far ahead of our wall clock, in milliseconds.
        ahead_ms: u64,
    },
    /// Last-writer-wins chose between writes of two origins to one key (a local write or
    /// a received entry met the key's register). Not reported again when recovery replays
    /// the WAL.
    Conflict(Conflict),
    /// The node compacted its log and asked for its WAL to be rewritten (PROTOCOL.md 8.11):
    /// entries every neighbour holds were dropped, their effect kept as one entry per key.
    Compacted {
        /// Entries dropped from the log.
        entries_dropped: u64,
        /// Entries still held above the new base.
        log_entries: u64,
        /// Bytes of the rewritten WAL.
        wal_bytes: u64,
    },
    /// A snapshot received on `link` was verified against its digest and merged: the node
    /// now holds everything up to its vector (PROTOCOL.md 8.11).
    SnapshotApplied {
        /// The link it came on.
        link: LinkId,
        /// Entries (keys) in it.
        entries_count: u64,
        /// Origins whose positions it moved.
        origins_advanced: u64,
    },
    /// A snapshot received on `link` was thrown away before it changed anything.
    SnapshotRefused {
        /// The link it came on.
        link: LinkId,
        /// Why.
        reason: String,
    },
    /// What a checker needs to hold the node to its promises; only with
    /// [`NodeConfig::audit`](super::NodeConfig::audit).
    Audit(Audit),
}

/// One fact for an outside checker: which envelopes sessions accepted, when sessions began
/// and ended, which timestamps the clock refused. Emitted only with
/// [`NodeConfig::audit`](super::NodeConfig::audit), so a deployed node pays nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audit {
    /// A handshake installed a session on `link`.
    SessionEstablished {
        /// The link.
        link: LinkId,
        /// The session's name ([`Receipt::session_id`]).
        session_id: u64,
    },
    /// An application message reached the node on `link`: under a session and counter, or,
    /// if `receipt` is `None`, in plaintext.
    EnvelopeAccepted {
        /// The link.
        link: LinkId,
        /// The message's type.
        message_type: MessageType,
        /// The session and counter that authenticated it.
        receipt: Option<Receipt>,
    },
    /// The node discarded a session on `link` (a Close, a replacement, the link's end): no
    /// envelope of it may be accepted again.
    SessionEnded {
        /// The link.
        link: LinkId,
        /// The session's name.
        session_id: u64,
    },
    /// The clock refused to merge a received timestamp too far ahead of its wall clock
    /// (PROTOCOL.md 8.2); a later local write need not beat it.
    ClockRefused {
        /// The refused timestamp.
        timestamp: Timestamp,
    },
    /// The node sent a WalPush of `entries_count` entries on `link` (for cost figures).
    Pushed {
        /// The link.
        link: LinkId,
        /// Entries in the push.
        entries_count: u64,
    },
    /// The clock started again from the wall time because its last timestamp lay more than
    /// the drift bound ahead of it (PROTOCOL.md 8.2): the node's timestamps fall here, once.
    ClockRestarted {
        /// The last timestamp before.
        from: Timestamp,
        /// The first after.
        to: Timestamp,
    },
    /// The node relayed a routed message of `source` toward `target` (PROTOCOL.md 8.10): it
    /// arrived with `hops_left_received` and left with `hops_left_sent`, which must be one
    /// less, so a message caught in a routing loop dies after a bounded number of hops.
    RoutedRelayed {
        /// The node that sent the message first.
        source: NodeId,
        /// Where it is going.
        target: NodeId,
        /// The hop limit it arrived with.
        hops_left_received: u8,
        /// The hop limit it left with.
        hops_left_sent: u8,
    },
    /// The lazy outbox of `link` turned eager: the neighbour lacked entries for a pull
    /// interval that this node held (PROTOCOL.md 8.6). How often the broadcast tree mends.
    Grafted {
        /// The link.
        link: LinkId,
    },
}

impl fmt::Display for Audit {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SessionEstablished { link, session_id } => {
                write!(formatter, "audit link={link} session {session_id:016x} established")
            }
            Self::EnvelopeAccepted { link, message_type, receipt: Some(receipt) } => write!(
                formatter,
                "audit link={link} accepted {message_type:?} session {:016x} counter {}",
                receipt.session_id, receipt.counter
            ),
            Self::EnvelopeAccepted { link, message_type, receipt: None } => {
                write!(formatter, "audit link={link} accepted {message_type:?} in plaintext")
            }
            Self::SessionEnded { link, session_id } => {
                write!(formatter, "audit link={link} session {session_id:016x} ended")
            }
            Self::ClockRefused { timestamp } => {
                write!(formatter, "audit clock refused {}", HlcDisplay(*timestamp))
            }
            Self::Pushed { link, entries_count } => {
                write!(formatter, "audit link={link} pushed {entries_count} entries")
            }
            Self::ClockRestarted { from, to } => {
                write!(formatter, "audit clock restarted from {} to {}", HlcDisplay(*from), HlcDisplay(*to))
            }
            Self::RoutedRelayed { source, target, hops_left_received, hops_left_sent } => write!(
                formatter,
                "audit relayed {source} -> {target} hops_left {hops_left_received} -> {hops_left_sent}"
            ),
            Self::Grafted { link } => write!(formatter, "audit link {link} grafted"),
        }
    }
}

/// Largest part of a key shown in an event line; the rest is counted.
pub const EVENT_KEY_BYTES_SHOWN_MAX: usize = 64;

/// Untrusted bytes for one line of a log or trace: in double quotes, printable ASCII as
/// itself (`"` and `\` escaped with a backslash), any other byte as `\xNN`; at most
/// `bytes_max` bytes are shown and the rest are counted, `"abc"+97B`.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// How many to show at most.
    pub bytes_max: usize,
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.bytes[..self.bytes.len().min(self.bytes_max)];
        formatter.write_str("\"")?;
        for byte in shown {
            match byte {
                b'"' | b'\\' => write!(formatter, "\\{}", char::from(*byte))?,
                0x20..=0x7e => write!(formatter, "{}", char::from(*byte))?,
                _ => write!(formatter, "\\x{byte:02x}")?,
            }
        }
        formatter.write_str("\"")?;
        let hidden_bytes = self.bytes.len() - shown.len();
        if hidden_bytes > 0 {
            write!(formatter, "+{hidden_bytes}B")?;
        }
        Ok(())
    }
}

/// An HLC timestamp as seconds of its physical part and its logical counter: `1.203s+0`.
#[derive(Debug, Clone, Copy)]
pub struct HlcDisplay(pub Timestamp);

impl fmt::Display for HlcDisplay {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let physical_ms = self.0.physical_ms();
        write!(formatter, "{}.{:03}s+{}", physical_ms / 1000, physical_ms % 1000, self.0.logical())
    }
}

fn write_id(formatter: &mut fmt::Formatter<'_>, write: &WriteId) -> fmt::Result {
    let kind = if write.delete { "delete" } else { "put" };
    write!(formatter, "{kind} {}#{}@{}", write.origin, write.sequence, HlcDisplay(write.timestamp))
}

/// Why a conflict ended as it did, for a line: `later timestamp, replaced` (the merged write
/// won) or `equal timestamp, higher origin id, kept` (the held write won).
#[must_use]
pub fn conflict_outcome(conflict: &Conflict) -> &'static str {
    match (conflict.reason(), conflict.merged_won()) {
        (ConflictReason::LaterTimestamp, true) => "later timestamp, replaced",
        (ConflictReason::LaterTimestamp, false) => "later timestamp, kept",
        (ConflictReason::HigherOrigin, true) => "equal timestamp, higher origin id, replaced",
        (ConflictReason::HigherOrigin, false) => "equal timestamp, higher origin id, kept",
    }
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
            Operation::Seal(seal) => write!(formatter, "seal {}..={}", seal.first, seal.last)?,
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
            Self::PeerConnected { link, name, node_id, .. } => {
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
            Self::ClockAhead { link, origin, timestamp, ahead_ms } => write!(
                formatter,
                "clock-ahead link={link} origin={origin} timestamp={} ahead={ahead_ms}ms",
                HlcDisplay(*timestamp)
            ),
            Self::RoutedPong { target, round_trip_ns } => {
                write!(formatter, "routed pong from {target} rtt={round_trip_ns}ns")
            }
            Self::Conflict(conflict) => {
                let key = Escaped { bytes: &conflict.key, bytes_max: EVENT_KEY_BYTES_SHOWN_MAX };
                write!(formatter, "lww {key}: ")?;
                write_id(formatter, conflict.winner())?;
                formatter.write_str(" beats ")?;
                write_id(formatter, conflict.loser())?;
                write!(formatter, " ({})", conflict_outcome(conflict))
            }
            Self::Compacted { entries_dropped, log_entries, wal_bytes } => write!(
                formatter,
                "compacted {entries_dropped} entries, {log_entries} left in the log, wal {wal_bytes}B"
            ),
            Self::SnapshotApplied { link, entries_count, origins_advanced } => write!(
                formatter,
                "snapshot applied link={link}: {entries_count} entries, {origins_advanced} origins advanced"
            ),
            Self::SnapshotRefused { link, reason } => {
                write!(formatter, "snapshot refused link={link}: {reason}")
            }
            Self::Audit(audit) => write!(formatter, "{audit}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_quotes_escapes_and_truncates() {
        // Goal: hostile bytes cannot break a line or fake one: quotes, backslashes, control
        // characters and non-ASCII are escaped, and long input is cut and counted.
        let show = |bytes: &[u8], bytes_max| Escaped { bytes, bytes_max }.to_string();
        assert_eq!(show(b"k7", 64), r#""k7""#);
        assert_eq!(show(b"a\"b\\c", 64), r#""a\"b\\c""#);
        assert_eq!(show(b"line\nbreak\x1b[31m\xff", 64), r#""line\x0abreak\x1b[31m\xff""#);
        assert_eq!(show("é".as_bytes(), 64), r#""\xc3\xa9""#);
        assert_eq!(show(b"abcdef", 3), r#""abc"+3B"#);
        assert_eq!(show(b"", 3), r#""""#);
    }

    #[test]
    fn conflict_line_names_winner_loser_and_reason() {
        let write = |origin, sequence, physical_ms, logical, delete| WriteId {
            timestamp: Timestamp::new(physical_ms, logical),
            origin: NodeId(origin),
            sequence,
            delete,
        };
        let conflict = Conflict {
            key: Bytes::from_static(b"k7"),
            held: write(1, 5, 1201, 1, false),
            merged: write(2, 2, 1203, 0, true),
        };
        assert_eq!(
            Event::Conflict(conflict).to_string(),
            "lww \"k7\": delete 0000000000000002#2@1.203s+0 beats put 0000000000000001#5@1.201s+1 \
             (later timestamp, replaced)"
        );
        let tie = Conflict {
            key: Bytes::from_static(b"k"),
            held: write(2, 1, 5, 0, false),
            merged: write(1, 1, 5, 0, false),
        };
        assert_eq!(conflict_outcome(&tie), "equal timestamp, higher origin id, kept");
    }
}

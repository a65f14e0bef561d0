//! Per-link state: the secure connection, the stream decoder, and the outbox toward that peer.
//!
//! The outbox is not a copy of entries: it is two version vectors. `acked` is what the peer
//! reported holding (WalAck, OutboxPull); `sent` is how far we have pushed. Entries in
//! `(acked, sent]` are in flight; on a retransmission timeout `sent` falls back to `acked`
//! (go-back-N) and the same entries are pushed again from the log.

use crate::entry::{NodeId, VersionVector};
use crate::frame::FrameDecoder;
use crate::session::Connection;

/// How a link carries frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// One frame per datagram; datagrams may be lost, duplicated or reordered.
    Datagram,
    /// A byte stream (TCP); frames may be split anywhere.
    Stream,
}

/// Entries pushed to one peer and not yet acknowledged, at most.
pub const PEER_INFLIGHT_ENTRIES_MAX: u64 = 2048;

pub(crate) struct Peer {
    pub(crate) kind: LinkKind,
    pub(crate) connection: Connection,
    pub(crate) decoder: FrameDecoder,
    /// The peer's node id once a handshake finished.
    pub(crate) node_id: Option<NodeId>,
    pub(crate) name: String,
    pub(crate) acked: VersionVector,
    pub(crate) sent: VersionVector,
    pub(crate) retransmit_at_ns: Option<u64>,
    pub(crate) backoff_ns: u64,
    /// We accepted entries from this peer and owe it a WalAck once they are durable.
    pub(crate) ack_due: bool,
    pub(crate) next_pull_ns: Option<u64>,
    /// Outstanding ping: token and local send time.
    pub(crate) ping: Option<(u64, u64)>,
}

impl Peer {
    pub(crate) fn new(kind: LinkKind, connection: Connection, frame_bytes_max: u32, backoff_ns: u64) -> Self {
        Self {
            kind,
            connection,
            decoder: FrameDecoder::new(frame_bytes_max),
            node_id: None,
            name: String::new(),
            acked: VersionVector::new(),
            sent: VersionVector::new(),
            retransmit_at_ns: None,
            backoff_ns,
            ack_due: false,
            next_pull_ns: None,
            ping: None,
        }
    }

    /// Entries pushed and not acknowledged. `sent >= acked` pointwise always holds (every
    /// update of `acked` also raises `sent`), so this is a difference of totals.
    pub(crate) fn inflight_count(&self) -> u64 {
        self.sent.total().saturating_sub(self.acked.total())
    }

    /// Records what the peer holds; returns true when anything advanced.
    pub(crate) fn acknowledge(&mut self, positions: &VersionVector) -> bool {
        let progress = self.acked.merge_max(positions);
        self.sent.merge_max(positions);
        progress
    }

    /// Go-back-N: forget what is in flight so it is pushed again.
    pub(crate) fn rewind(&mut self) {
        self.sent = self.acked.clone();
    }

    /// The earliest deadline of this peer's own timers (not the connection's).
    pub(crate) fn deadline_ns(&self) -> Option<u64> {
        [self.retransmit_at_ns, self.next_pull_ns].into_iter().flatten().min()
    }
}

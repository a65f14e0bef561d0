//! The sans-IO ferry node: sessions, dispatch, the WAL and replication in one state machine.
//!
//! Call order (quinn-proto style): create with [`Node::recover`] from the WAL's bytes, then
//! feed inputs — [`link_up`](Node::link_up), [`link_down`](Node::link_down),
//! [`handle_datagram`](Node::handle_datagram) / [`handle_stream`](Node::handle_stream),
//! [`handle_timeout`](Node::handle_timeout), [`handle_synced`](Node::handle_synced),
//! [`put`](Node::put) / [`delete`](Node::delete), and [`shutdown`](Node::shutdown) last —
//! each with the caller's clock reading `now_ns`; after every input drain
//! [`poll`](Node::poll) until `None` and re-arm the timer from
//! [`poll_timeout`](Node::poll_timeout).
//!
//! Replication in one paragraph: every write is a WAL entry `(origin, sequence, HLC
//! timestamp, operation)`. A node applies an entry to its last-writer-wins store when it is
//! the next in its origin's sequence (gaps wait in a bounded buffer), appends its record to
//! the WAL, and syncs. Only durable entries are pushed to peers, so an entry that a crash
//! can erase never leaves the node; a local write is acknowledged (`Event::Acked`) only once
//! durable. Peers exchange version vectors (OutboxPull) on connect and periodically; each side
//! pushes what the other lacks (WalPush), the receiver acknowledges its durable positions
//! (WalAck), and unacknowledged pushes are resent with exponential backoff. Nodes relay
//! entries of every origin, so the cluster converges through any connected topology. New
//! entries travel along a self-repairing spanning tree of eager links (Plumtree): a link that
//! brings only what another brought first is pruned to lazy, and a lazy link whose far end
//! still lacks an entry a pull interval later pushes it and turns eager again.

mod admission;
mod authorship;
mod congestion;
mod event;
mod log;
mod peer;
mod routing;
mod sealing;
mod shutdown;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rand_core::RngCore;
use thiserror::Error;

pub use admission::{REFUSED_ORIGINS_MAX, REFUSED_REPORT_INTERVAL_NS};
pub use authorship::{FORGED_REPORT_INTERVAL_NS, ORIGIN_KEYS_MAX, SIGNATURE_MEMO_MAX, SignatureMemo};
pub use congestion::{PEER_INFLIGHT_BYTES_MAX, WINDOW_BYTES_INITIAL, WINDOW_BYTES_MIN};
pub use event::{
    Audit, EVENT_KEY_BYTES_SHOWN_MAX, Escaped, Event, HlcDisplay, LinkId, Output, SentMessage,
    conflict_outcome,
};
pub use log::PENDING_ENTRIES_MAX;
pub use peer::{
    ACK_FULL_EVERY, EAGER_LINKS_INITIAL, HELLO_BURST, HELLO_REFILL_NS, LAZY_PULL_INTERVALS_MAX,
    LAZY_PULLS_PER_INTERVAL, LinkKind, PEER_INFLIGHT_ENTRIES_MAX, PULL_FULL_EVERY, RELAYABLE_SAMPLES_MAX,
    SESSION_INVALID_MIN, SESSION_VALID_PER_INVALID,
};
pub use routing::ROUTE_PINGS_MAX;
pub use snapshot::{COMPACTION_GRACE_PULLS, SNAPSHOT_IMAGE_IDLE_PULLS, SNAPSHOT_STALL_PULLS};

use self::log::{Log, Offer};
use self::peer::{Peer, RelayableHistory};
use crate::clock::HybridClock;
use crate::entry::{KEY_BYTES_MAX, NodeId, Operation, Timestamp, VALUE_BYTES_MAX, VersionVector, WalEntry};
use crate::envelope::{Envelope, MessageType};
use crate::frame::{self, Decoded, FRAME_BYTES_MAX_DEFAULT};
use crate::message::{self, CloseCode, Message, WAL_PUSH_BYTES_MAX};
use crate::session::{Connection, ConnectionEvent, Role, SessionConfig, SessionError};
use crate::steady::SteadyClock;
use crate::storage::DiskRequest;
use crate::store::{Digest, Store};
use crate::wal::{self, WalError};

/// Node settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Session settings: name, node id, identity, versions, expected peers.
    pub session: SessionConfig,
    /// Largest frame accepted.
    pub frame_bytes_max: u32,
    /// First retransmission timeout of an unacknowledged push.
    pub retransmit_ns_initial: u64,
    /// Largest retransmission timeout (backoff doubles up to it).
    pub retransmit_ns_max: u64,
    /// Interval between anti-entropy OutboxPulls to each connected peer.
    pub pull_interval_ns: u64,
    /// A received HLC timestamp more than this far ahead of our clock does not move it.
    pub clock_drift_ms_max: u64,
    /// Build a routing table and forward routed messages (multi-hop `route_ping`).
    pub routing: bool,
    /// Interval between routing announcements to each neighbour.
    pub route_interval_ns: u64,
    /// Attach each sent message's plaintext to its `Output::Send`, for traces. Off by
    /// default: it clones every message sent.
    pub describe_sends: bool,
    /// First wait before the Initiator of a link without a session starts a new handshake
    /// after one failed (PROTOCOL.md 6.7).
    pub handshake_retry_ns_initial: u64,
    /// Largest wait between handshake attempts: the wait doubles after each retry up to it.
    pub handshake_retry_ns_max: u64,
    /// Emit [`Event::Audit`]s (accepted envelopes, sessions begun and ended, refused clock
    /// readings) for a checker. Off by default: a deployed node has no one to tell.
    pub audit: bool,
    /// Compact the log once it holds at least this many bytes of entries (and at least as
    /// many as the state itself): PROTOCOL.md 8.11. `u64::MAX` never compacts.
    pub compaction_tail_bytes_min: u64,
    /// How long a neighbour whose session ended still pins compaction: entries it lacked
    /// are kept for it this long, then it must catch up by snapshot (PROTOCOL.md 8.11).
    pub compaction_horizon_ns: u64,
    /// The origins whose entries this node takes from neighbours, besides its own: entries
    /// of any other origin in a WalPush are refused, and a snapshot holding one is refused
    /// whole (PROTOCOL.md 8.12). `None`, the default, takes every origin.
    pub member_origins: Option<BTreeSet<NodeId>>,
    /// Signatures verified by this node or by the nodes it shares the memo with, so that no
    /// signature is verified twice ([`SignatureMemo`]: what a node decides is the same with
    /// or without it). A simulation gives one to all its nodes; `None`, the default, gives
    /// the node one of its own (the writes of one seal share its signature).
    pub signature_memo: Option<SignatureMemo>,
    /// How long this node's oldest unsealed write waits, with a session up, before the node
    /// seals (PROTOCOL.md 8.13); it seals at once when `SEAL_ENTRIES_MAX` writes wait. Until
    /// then its neighbours hold its writes but relay none of them.
    pub seal_delay_ns: u64,
}

impl NodeConfig {
    /// Defaults around a session configuration: 1 MiB frames, 200 ms → 5 s retransmission,
    /// 1 s anti-entropy, 60 s drift bound, 1 s → 8 s between handshake attempts, compaction
    /// from a 4 MiB log, a one-hour horizon for absent neighbours, entries of every origin,
    /// writes sealed within a second.
    #[must_use]
    pub fn new(session: SessionConfig) -> Self {
        Self {
            session,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            retransmit_ns_initial: 200_000_000,
            retransmit_ns_max: 5_000_000_000,
            pull_interval_ns: 1_000_000_000,
            clock_drift_ms_max: 60_000,
            routing: false,
            route_interval_ns: 1_000_000_000,
            describe_sends: false,
            handshake_retry_ns_initial: 1_000_000_000,
            handshake_retry_ns_max: 8_000_000_000,
            audit: false,
            compaction_tail_bytes_min: 4 * 1024 * 1024,
            compaction_horizon_ns: 3_600_000_000_000,
            member_origins: None,
            signature_memo: None,
            seal_delay_ns: crate::seal::SEAL_DELAY_NS,
        }
    }
}

/// A WalAck to send: the msg_id of the push it answers, and its positions.
type AckDue = (u32, VersionVector);

/// What a lazy outbox may push before this node has held anything for a pull interval.
static EMPTY_VECTOR: VersionVector = VersionVector::new();

/// Origins a node remembers having reported in `Event::ClockAhead`; later offenders go
/// unreported (they are still counted in `NodeStats::clock_rejections`).
pub const CLOCK_OFFENDERS_MAX: usize = 256;

/// Why the node cannot start or a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NodeError {
    /// The WAL is damaged before its tail.
    #[error("wal is corrupt: {0}")]
    Wal(#[from] WalError),
    /// The session settings are invalid.
    #[error("invalid session settings: {0}")]
    Session(#[from] SessionError),
    /// A key longer than [`KEY_BYTES_MAX`].
    #[error("key of {length_bytes} bytes exceeds maximum {KEY_BYTES_MAX}")]
    KeyTooLong {
        /// Its length.
        length_bytes: usize,
    },
    /// Routing is off in this node's configuration.
    #[error("routing is disabled on this node")]
    RoutingDisabled,
    /// No route to the target is known.
    #[error("no route to node {target}")]
    NoRoute {
        /// The unreachable node.
        target: NodeId,
    },
    /// A value longer than [`VALUE_BYTES_MAX`].
    #[error("value of {length_bytes} bytes exceeds maximum {VALUE_BYTES_MAX}")]
    ValueTooLong {
        /// Its length.
        length_bytes: usize,
    },
    /// The key's current version is stamped `2^64 − 1`, which no timestamp beats: no honest
    /// clock gets there (a `u64` of wall nanoseconds stays below 2^45 ms), so the entry was
    /// forged by a peer that may write (PROTOCOL.md 8.2).
    #[error("the key holds a version stamped at the timestamp maximum 2^64-1: no write can beat it")]
    KeyAtTimestampMaximum,
}

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Entries applied to the store (local and remote).
    pub entries_applied: u64,
    /// Entries received that were already held.
    pub entries_duplicate: u64,
    /// Entries dropped because the gap buffer was full.
    pub entries_dropped: u64,
    /// WalPush messages sent.
    pub pushes_sent: u64,
    /// Entries sent in those pushes, repeats included.
    pub entries_pushed: u64,
    /// Retransmission timeouts that rewound an outbox.
    pub retransmits: u64,
    /// Frames rejected.
    pub frames_rejected: u64,
    /// Received timestamps too far ahead to merge into the HLC.
    pub clock_rejections: u64,
    /// Local writes stamped just above the held version of their key rather than by the
    /// clock, because that version was ahead of the clock (PROTOCOL.md 8.2).
    pub writes_stamped_above_held: u64,
    /// Times the clock started again from the wall time because it was far ahead of it.
    pub clock_restarts: u64,
    /// Sessions closed for too many invalid envelopes (PROTOCOL.md 9).
    pub sessions_closed_invalid: u64,
    /// Prunes sent: a push brought only entries we had received through another link.
    pub prunes_sent: u64,
    /// Prunes received: a neighbour's outbox became lazy at its request.
    pub prunes_received: u64,
    /// Lazy outboxes that turned eager again because the neighbour lacked entries for a
    /// pull interval (PROTOCOL.md 8.6).
    pub grafts: u64,
    /// Times the log was compacted and the WAL rewritten (PROTOCOL.md 8.11).
    pub compactions: u64,
    /// SnapshotOffers sent.
    pub snapshots_offered: u64,
    /// SnapshotChunks sent.
    pub snapshot_chunks_sent: u64,
    /// Snapshots received, verified and merged.
    pub snapshots_applied: u64,
    /// Snapshots thrown away: a malformed offer or chunk, or a digest that did not match.
    pub snapshots_refused: u64,
    /// Snapshots not offered because the state exceeds what an offer may announce
    /// (`SNAPSHOT_ENTRIES_MAX` entries, `SNAPSHOT_CHUNKS_MAX` chunks).
    pub snapshots_unsendable: u64,
    /// Entries refused from WalPushes because their origin is not a member
    /// ([`NodeConfig::member_origins`], PROTOCOL.md 8.12).
    pub entries_refused: u64,
    /// Entries refused from WalPushes because they do not carry their origin's signature
    /// (PROTOCOL.md 8.13): forged, altered, or signed by another key.
    pub entries_forged: u64,
    /// Seals this node made over its own writes (PROTOCOL.md 8.13).
    pub seals_made: u64,
    /// Seals applied whose root was not that of the entries their origin sent: their writes
    /// stay unproven here.
    pub seals_refused: u64,
}

/// One ferry node. See the module docs for the call order.
pub struct Node {
    config: Arc<NodeConfig>,
    session: Arc<SessionConfig>,
    rng: Box<dyn RngCore + Send>,
    clock: HybridClock,
    store: Store,
    log: Log,
    peers: BTreeMap<LinkId, Peer>,
    outputs: VecDeque<Output>,
    /// Records appended since the last sync request.
    appended: bool,
    sync_next_id: u64,
    /// The sync in flight and the held vector it will make durable.
    sync_inflight: Option<(u64, VersionVector)>,
    msg_id_next: u32,
    stats: NodeStats,
    /// The newest remote timestamp read at recovery, merged into the clock (under the drift
    /// bound) just before the first local write after recovery is stamped.
    recovered_remote_max: Option<Timestamp>,
    /// Origins already reported by `Event::ClockAhead`.
    clock_offenders: BTreeSet<NodeId>,
    /// Per origin, the link whose push delivered its latest accepted entry: a push that
    /// repeats entries another link delivered first is what earns its sender a Prune.
    sources: BTreeMap<NodeId, LinkId>,
    routing: routing::Routing,
    /// The caller's clock readings as steady time: every timer is set and compared in it,
    /// so a reading that steps back never postpones a deadline.
    steady: SteadyClock,
    /// Every link's earliest deadline (its peer's timers and its connection's), and the
    /// same ordered by deadline, so that `poll_timeout` costs a lookup instead of a walk
    /// over every peer after every input. Kept for the links an input touched.
    deadlines: Deadlines,
    /// Neighbours whose session ended, with what they held then and when: they pin
    /// compaction for `compaction_horizon_ns` (PROTOCOL.md 8.11).
    members: BTreeMap<NodeId, (VersionVector, u64)>,
    /// The snapshot offered to neighbours that lack compacted entries.
    snapshot: Option<snapshot::SnapshotImage>,
    /// The snapshot being received.
    incoming: Option<snapshot::IncomingSnapshot>,
    /// Bytes of the WAL file as this node wrote it, and the most it ever held.
    wal_bytes: u64,
    wal_bytes_peak: u64,
    /// Entries the log held at most.
    log_entries_peak: u64,
    /// Steady time of the first input; compaction waits a grace period after it.
    started_ns: Option<u64>,
    /// With a member set: per non-member origin, what was refused (PROTOCOL.md 8.12).
    refused: BTreeMap<NodeId, admission::RefusedOrigin>,
    /// A snapshot refused for holding a non-member entry: its offers are not pulled again.
    refused_snapshot: Option<(NodeId, u64)>,
    /// Each origin's signing key (PROTOCOL.md 8.13).
    origin_keys: authorship::OriginKeys,
    /// Per origin and reason, refused entries not reported yet (PROTOCOL.md 8.13).
    forged: BTreeMap<(NodeId, authorship::Forgery), admission::ReportThrottle>,
    /// Per origin, how far every write held is proven (PROTOCOL.md 8.13; at least the base).
    sealed: VersionVector,
    /// Steady time since which this node's own writes wait to be sealed.
    unsealed_since_ns: Option<u64>,
    /// When this node's next seal is due.
    seal_at_ns: Option<u64>,
    /// Per origin, the highest position at or below `sealed` that no seal's range straddles
    /// (compaction and snapshots put a base only there).
    boundary: VersionVector,
    /// The last of this node's own writes that a seal covers.
    sealed_through: u64,
    /// Per origin, seals applied whose writes may still lack proofs, in order (8.13: proven
    /// when first needed).
    pending_seals: BTreeMap<NodeId, VecDeque<Arc<crate::seal::Seal>>>,
    /// What we could relay over the last pull interval, for lazy outboxes (PROTOCOL.md 8.6).
    relayable_history: RelayableHistory,
    /// When compaction was last considered (at most once per pull interval).
    compaction_checked_ns: Option<u64>,
}

/// The per-link deadlines behind [`Node::poll_timeout`].
#[derive(Debug, Default)]
struct Deadlines {
    by_link: BTreeMap<LinkId, u64>,
    ordered: BTreeSet<(u64, LinkId)>,
    /// Links an input may have changed the timers of since the last refresh.
    touched: BTreeSet<LinkId>,
    /// Every link may have changed.
    touched_all: bool,
}

impl Deadlines {
    fn touch(&mut self, link: LinkId) {
        if !self.touched_all {
            self.touched.insert(link);
        }
    }

    fn set(&mut self, link: LinkId, deadline_ns: Option<u64>) {
        if self.by_link.get(&link).copied() == deadline_ns {
            return;
        }
        if let Some(old) = self.by_link.remove(&link) {
            self.ordered.remove(&(old, link));
        }
        if let Some(deadline_ns) = deadline_ns {
            self.by_link.insert(link, deadline_ns);
            self.ordered.insert((deadline_ns, link));
        }
    }

    fn earliest(&self) -> Option<u64> {
        self.ordered.first().map(|(deadline_ns, _)| *deadline_ns)
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Node")
            .field("name", &self.session.name)
            .field("held", self.log.held())
            .field("durable", self.log.durable())
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts a node from the bytes of its WAL (empty for a new node). A torn or corrupt tail
    /// is cut off (an `Output::Disk(Truncate)` and an `Event::Recovered` are queued).
    ///
    /// # Errors
    /// [`NodeError::Wal`] when the log is damaged before its tail: the node refuses to start
    /// rather than silently lose entries. [`NodeError::Session`] for invalid settings.
    pub fn recover(
        config: NodeConfig,
        wal_bytes: &[u8],
        rng: Box<dyn RngCore + Send>,
    ) -> Result<Self, NodeError> {
        config.session.validate()?;
        let recovery = wal::recover(wal_bytes)?;
        let session = Arc::new(config.session.clone());
        let routing = routing::Routing::new(config.session.node_id, config.route_interval_ns);
        let origin_keys =
            authorship::OriginKeys::new(session.node_id, &session.identity, config.signature_memo.clone());
        let mut node = Self {
            clock: HybridClock::new(config.clock_drift_ms_max),
            config: Arc::new(config),
            session,
            rng,
            store: Store::default(),
            log: Log::with_base(recovery.base.clone()),
            peers: BTreeMap::new(),
            outputs: VecDeque::new(),
            appended: false,
            sync_next_id: 1,
            sync_inflight: None,
            msg_id_next: 1,
            stats: NodeStats::default(),
            recovered_remote_max: None,
            clock_offenders: BTreeSet::new(),
            sources: BTreeMap::new(),
            routing,
            steady: SteadyClock::new(),
            deadlines: Deadlines::default(),
            members: BTreeMap::new(),
            snapshot: None,
            incoming: None,
            wal_bytes: recovery.valid_bytes,
            wal_bytes_peak: recovery.valid_bytes,
            log_entries_peak: 0,
            started_ns: None,
            compaction_checked_ns: None,
            refused: BTreeMap::new(),
            refused_snapshot: None,
            origin_keys,
            forged: BTreeMap::new(),
            relayable_history: RelayableHistory::default(),
            sealed: recovery.base.clone(),
            unsealed_since_ns: None,
            seal_at_ns: None,
            boundary: recovery.base.clone(),
            sealed_through: 0,
            pending_seals: BTreeMap::new(),
        };
        if node.session.require_id_from_name {
            for (name, static_key) in &node.session.pinned_peer_keys {
                node.origin_keys.pin_static(NodeId::from_name(name), *static_key);
            }
        }
        let entries_count = recovery.entries.len() as u64;
        let own = node.session.node_id;
        for entry in recovery.entries {
            node.origin_keys.learn(&entry);
            // Only our own timestamps may move the clock unconditionally: a stored remote
            // entry from a node with a wild clock must not drag ours after a restart.
            if entry.origin == own {
                node.clock.restore(entry.timestamp);
            } else {
                let highest = node.recovered_remote_max.get_or_insert(entry.timestamp);
                *highest = (*highest).max(entry.timestamp);
            }
            // At or below the base: a compacted key's winning entry, straight to the store.
            if entry.sequence <= recovery.base.get(entry.origin) {
                node.store.apply(&entry);
                continue;
            }
            // The log only ever receives contiguous entries, so recovery replays cleanly;
            // anything else (a duplicate) is ignored rather than trusted.
            if node.log.offer(entry) == Offer::Accepted {
                for accepted in node.log.take_accepted() {
                    node.store.apply(&accepted);
                    if let Operation::Seal(seal) = &accepted.operation {
                        node.settle_seal(seal);
                    }
                }
            }
        }
        let origins: Vec<NodeId> = node.log.held().iter().map(|(origin, _)| origin).collect();
        for origin in origins {
            node.advance_sealed(origin);
        }
        let truncated_bytes = (wal_bytes.len() as u64).saturating_sub(recovery.valid_bytes);
        if truncated_bytes > 0 {
            node.outputs
                .push_back(Output::Disk(DiskRequest::Truncate { length_bytes: recovery.valid_bytes }));
        }
        node.log_entries_peak = node.log.count();
        // What was read may have been in the OS cache only (a process crash, not a power
        // loss): it counts as durable once a sync at startup covers it. Until then nothing
        // recovered is pushed or acknowledged.
        if !node.log.held().is_empty() || truncated_bytes > 0 {
            node.appended = true;
        }
        node.finish_input(0);
        node.outputs.push_back(Output::Event(Event::Recovered { entries_count, truncated_bytes }));
        Ok(node)
    }

    /// This node's id.
    #[must_use]
    pub fn node_id(&self) -> NodeId {
        self.session.node_id
    }

    /// This node's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.session.name
    }

    /// The current value of `key` (`None` if absent or deleted).
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.store.get(key)
    }

    /// The live key/value pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.store.iter()
    }

    /// The replicated store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A digest of the replicated state: equal on two nodes exactly when their states are.
    #[must_use]
    pub fn digest(&self) -> Digest {
        self.store.digest()
    }

    /// Entries held per origin.
    #[must_use]
    pub fn version_vector(&self) -> &VersionVector {
        self.log.held()
    }

    /// Entries durable per origin.
    #[must_use]
    pub fn durable_vector(&self) -> &VersionVector {
        self.log.durable()
    }

    /// Entry `sequence` of `origin`, if held in the log (not compacted away).
    #[must_use]
    pub fn entry(&self, origin: NodeId, sequence: u64) -> Option<&WalEntry> {
        self.log.get(origin, sequence)
    }

    /// Positions compacted away per origin: entries at or below it live on only as the
    /// store's winning entry of their key (PROTOCOL.md 8.11).
    #[must_use]
    pub fn compaction_base(&self) -> &VersionVector {
        self.log.base()
    }

    /// WAL bytes of the records of the entries held in the log (above the compaction base):
    /// the part of the WAL compaction has not folded into the state yet.
    #[must_use]
    pub fn log_record_bytes(&self) -> u64 {
        self.log.bytes() + self.log.count() * wal::WAL_RECORD_HEADER_BYTES as u64
    }

    /// Entries held in the log (above the compaction base), now and at most so far.
    #[must_use]
    pub fn log_entries(&self) -> (u64, u64) {
        (self.log.count(), self.log_entries_peak)
    }

    /// Bytes of the WAL file as this node wrote it (what a crash may still cut off
    /// included), now and at most so far.
    #[must_use]
    pub fn wal_bytes(&self) -> (u64, u64) {
        (self.wal_bytes, self.wal_bytes_peak)
    }

    /// The WAL this node would write if it rewrote it now: what a compaction writes, and
    /// what a restart would read back to the same state.
    #[must_use]
    pub fn wal_image(&self) -> Bytes {
        self.build_wal_image()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// Links with an established session, with the peer's name.
    pub fn connected_peers(&self) -> impl Iterator<Item = (LinkId, &str)> {
        self.peers
            .iter()
            .filter(|(_, peer)| peer.node_id.is_some())
            .map(|(link, peer)| (*link, peer.name.as_str()))
    }

    /// Whether the outbox of `link` is eager, a branch of the broadcast tree that pushes
    /// entries as soon as they are durable, or lazy, repairing only what the neighbour lacks
    /// for a pull interval (PROTOCOL.md 8.6); `None` without a session on `link`.
    #[must_use]
    pub fn pushes_eagerly(&self, link: LinkId) -> Option<bool> {
        let peer = self.peers.get(&link)?;
        peer.node_id.map(|_| peer.eager)
    }

    /// Pins `name` to `static_key` for every handshake from now on (trust on first use,
    /// PROTOCOL.md 6.5): a peer presenting `name` with another key is refused. Sessions
    /// already established are not touched.
    pub fn pin_peer(&mut self, name: String, static_key: [u8; crate::session::KEY_BYTES]) {
        if self.session.require_id_from_name {
            self.origin_keys.pin_static(NodeId::from_name(&name), static_key);
        }
        Arc::make_mut(&mut self.session).pinned_peer_keys.insert(name, static_key);
    }

    /// How long the session on `link` has gone without an authenticated envelope from the
    /// peer, at wall reading `now_ns` (counted on steady time); `None` without a session.
    /// Peers pull every `pull_interval_ns`, so a long silence means the link is stuck.
    pub fn silence_ns(&mut self, now_ns: u64, link: LinkId) -> Option<u64> {
        let now_ns = self.steady.advance(now_ns);
        let peer = self.peers.get(&link)?;
        peer.node_id?;
        peer.last_authenticated_ns.map(|at_ns| now_ns.saturating_sub(at_ns))
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, on the caller's
    /// clock: its latest reading plus the time still to wait, so a reading that stepped back
    /// does not hold the timer until the clock regains the lost ground.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let routing = if self.config.routing { self.routing.deadline_ns() } else { None };
        debug_assert_eq!(
            self.deadlines.earliest(),
            self.peers.values().filter_map(link_deadline_ns).min(),
            "an input changed a link's timers without touching it"
        );
        let deadline_ns =
            [self.deadlines.earliest(), routing, self.seal_at_ns].into_iter().flatten().min()?;
        Some(self.steady.to_reading_ns(deadline_ns))
    }

    /// Brings the deadlines of the links the last input touched up to date.
    fn refresh_deadlines(&mut self) {
        if std::mem::take(&mut self.deadlines.touched_all) {
            self.deadlines.touched.clear();
            self.deadlines.by_link.clear();
            self.deadlines.ordered.clear();
            for (link, peer) in &self.peers {
                self.deadlines.set(*link, link_deadline_ns(peer));
            }
            return;
        }
        for link in std::mem::take(&mut self.deadlines.touched) {
            let deadline_ns = self.peers.get(&link).and_then(link_deadline_ns);
            self.deadlines.set(link, deadline_ns);
        }
    }

    /// A link to a peer is usable. The `Initiator` side starts the handshake at once.
    pub fn link_up(&mut self, now_ns: u64, link: LinkId, kind: LinkKind, role: Role) {
        let now_ns = self.steady.advance(now_ns);
        self.deadlines.touch(link);
        let connection = match Connection::new(Arc::clone(&self.session), role, now_ns, &mut *self.rng) {
            Ok(connection) => connection,
            // `recover` validated the settings, so this cannot happen; report it anyway.
            Err(error) => return self.reject(link, error.to_string()),
        };
        let peer = Peer::new(kind, connection, &self.config);
        if let Some(old) = self.peers.insert(link, peer) {
            self.audit_sessions_ended(link, &old);
            if old.node_id.is_some() {
                let reason = "replaced by a new link".to_owned();
                self.outputs.push_back(Output::Event(Event::PeerDisconnected { link, reason }));
            }
        }
        self.drain_connection(now_ns, link);
        self.refresh_deadlines();
    }

    /// A link went away (a stream closed).
    pub fn link_down(&mut self, now_ns: u64, link: LinkId) {
        let now_ns = self.steady.advance(now_ns);
        self.deadlines.touch(link);
        self.remember_member(now_ns, link);
        self.routing_neighbour_down(now_ns, link);
        if let Some(peer) = self.peers.remove(&link) {
            self.audit_sessions_ended(link, &peer);
            if peer.node_id.is_some() {
                let reason = "link down".to_owned();
                self.outputs.push_back(Output::Event(Event::PeerDisconnected { link, reason }));
            }
        }
        self.refresh_deadlines();
    }

    /// With [`NodeConfig::audit`], reports the end of every session a forgotten peer held.
    fn audit_sessions_ended(&mut self, link: LinkId, peer: &Peer) {
        if self.config.audit {
            for session_id in peer.connection.session_ids() {
                self.outputs.push_back(Output::Event(Event::Audit(Audit::SessionEnded { link, session_id })));
            }
        }
    }

    /// Queues `audit` when [`NodeConfig::audit`] is on.
    fn audit(&mut self, audit: Audit) {
        if self.config.audit {
            self.outputs.push_back(Output::Event(Event::Audit(audit)));
        }
    }

    /// Bytes arrived on `link`: one datagram or a piece of a stream, by the link's kind.
    pub fn handle_received(&mut self, now_ns: u64, link: LinkId, bytes: Bytes) {
        match self.peers.get(&link).map(|peer| peer.kind) {
            Some(LinkKind::Datagram) => self.handle_datagram(now_ns, link, bytes),
            Some(LinkKind::Stream) => self.handle_stream(now_ns, link, &bytes),
            None => {}
        }
    }

    /// Entries waiting in the gap buffer for their predecessors.
    #[must_use]
    pub fn pending_entries_count(&self) -> usize {
        self.log.pending_count()
    }

    /// One datagram arrived on `link`: it must hold exactly one frame.
    pub fn handle_datagram(&mut self, now_ns: u64, link: LinkId, datagram: Bytes) {
        let now_ns = self.steady.advance(now_ns);
        self.deadlines.touch(link);
        if !self.peers.contains_key(&link) {
            return;
        }
        let mut decoder = frame::FrameDecoder::new(self.config.frame_bytes_max);
        decoder.push(&datagram);
        match decoder.next_frame() {
            Ok(Decoded::Frame(contents)) if decoder.buffered_bytes() == 0 => {
                self.handle_contents(now_ns, link, contents);
            }
            Ok(_) => self.reject_invalid(now_ns, link, "datagram does not hold exactly one frame".to_owned()),
            Err(error) => self.reject_invalid(now_ns, link, error.to_string()),
        }
        self.finish_input(now_ns);
    }

    /// Bytes arrived on stream `link`, split anywhere. A framing error closes the link.
    pub fn handle_stream(&mut self, now_ns: u64, link: LinkId, bytes: &[u8]) {
        let now_ns = self.steady.advance(now_ns);
        self.deadlines.touch(link);
        let Some(peer) = self.peers.get_mut(&link) else { return };
        peer.decoder.push(bytes);
        while let Some(peer) = self.peers.get_mut(&link) {
            match peer.decoder.next_frame() {
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::Frame(contents)) => self.handle_contents(now_ns, link, contents),
                Err(error) => {
                    self.peers.remove(&link);
                    self.routing_neighbour_down(now_ns, link);
                    self.stats.frames_rejected += 1;
                    let reason = format!("framing error: {error}");
                    self.outputs.push_back(Output::Event(Event::PeerDisconnected { link, reason }));
                    self.outputs.push_back(Output::Close { link });
                    break;
                }
            }
        }
        self.finish_input(now_ns);
    }

    /// The caller's timer expired.
    pub fn handle_timeout(&mut self, now_ns: u64) {
        let now_ns = self.steady.advance(now_ns);
        // Only the links whose own timers are due have anything to do.
        let mut links: Vec<LinkId> =
            self.deadlines.ordered.range(..=(now_ns, LinkId::MAX)).map(|(_, link)| *link).collect();
        links.sort_unstable();
        for link in links {
            let Some(peer) = self.peers.get_mut(&link) else { continue };
            self.deadlines.touch(link);
            if peer.handshake_retry_at_ns.is_some_and(|deadline| deadline <= now_ns) {
                peer.handshake_retry_at_ns = None;
                // A session or an attempt may have come about since (the peer's Hello, or
                // its envelope that we could not read); then there is nothing to retry.
                if !peer.connection.is_established() && !peer.connection.is_handshaking() {
                    peer.connection.start_handshake(now_ns, &mut *self.rng);
                    peer.handshake_backoff_ns =
                        peer.handshake_backoff_ns.saturating_mul(2).min(self.config.handshake_retry_ns_max);
                }
            }
            if peer.connection.poll_timeout().is_some_and(|deadline| deadline <= now_ns) {
                peer.connection.handle_timeout(now_ns);
            }
            self.drain_connection(now_ns, link);
            let Some(peer) = self.peers.get_mut(&link) else { continue };
            if peer.node_id.is_none() {
                continue;
            }
            if peer.retransmit_at_ns.is_some_and(|deadline| deadline <= now_ns) {
                peer.retransmit_at_ns = None;
                if peer.inflight_count() > 0 {
                    self.stats.retransmits += 1;
                    let inflight_bytes = self.log.bytes_above(&peer.floor, &peer.sent);
                    peer.window.on_timeout(inflight_bytes);
                    peer.rewind();
                    peer.backoff_ns = (peer.backoff_ns * 2).min(self.config.retransmit_ns_max);
                }
                self.pump(now_ns, link);
            }
            let Some(peer) = self.peers.get_mut(&link) else { continue };
            if peer.next_pull_ns.is_some_and(|deadline| deadline <= now_ns) {
                self.send_pull(now_ns, link);
            }
        }
        if self.config.routing && self.routing.deadline_ns().is_some_and(|deadline| deadline <= now_ns) {
            self.announce_routes(now_ns);
        }
        self.finish_input(now_ns);
    }

    /// A sync requested with `DiskRequest::Sync { sync_id }` completed.
    pub fn handle_synced(&mut self, now_ns: u64, sync_id: u64) {
        let now_ns = self.steady.advance(now_ns);
        let Some((inflight_id, vector)) = self.sync_inflight.take() else { return };
        if inflight_id != sync_id {
            self.sync_inflight = Some((inflight_id, vector));
            return;
        }
        let own = self.node_id();
        let acked_from = self.log.durable().get(own) + 1;
        self.log.mark_durable(&vector);
        let acked_to = self.log.durable().get(own);
        for sequence in acked_from..=acked_to {
            // Durable implies held, and compaction never drops what was not durable before
            // this sync; only a snapshot that carried our own origin past what we held (our
            // data was lost) leaves positions with no entry, and those were never ours.
            // A seal is not a write: nothing waits for it. The write is acknowledged without
            // its proof, which a restart may have given it since a first acknowledgement.
            if let Some(entry) = self.log.get(own, sequence).filter(|entry| !entry.is_seal()) {
                let entry = WalEntry { proof: None, ..entry.clone() };
                self.outputs.push_back(Output::Event(Event::Acked { entry }));
            }
        }
        self.note_relayable(now_ns);
        // One walk over the peers picks out the few this sync concerns (in a dense mesh most
        // links are lazy and owe no ack); they are then served in link order.
        let mut concerned: Vec<(LinkId, Option<AckDue>, bool)> = Vec::new();
        let durable = self.log.durable();
        for (link, peer) in &mut self.peers {
            // Only a sync issued after the entries were appended covers them.
            let ack = match peer.ack_due {
                Some((due_sync_id, push_msg_id)) if due_sync_id <= sync_id && peer.node_id.is_some() => {
                    peer.ack_due = None;
                    Some((push_msg_id, peer.next_ack(durable, false)))
                }
                _ => None,
            };
            // A sync gives a lazy outbox nothing new to push: it pushes only up to `limit`,
            // our durable vector a pull interval ago, which this sync cannot raise.
            if ack.is_some() || peer.eager {
                concerned.push((*link, ack, peer.eager));
            }
        }
        for (link, ack, eager) in concerned {
            if let Some((push_msg_id, positions)) = ack {
                self.send_message_as(link, push_msg_id, &Message::WalAck { positions });
            }
            if eager && self.peers.get(&link).is_some_and(|peer| peer.eager) {
                self.deadlines.touch(link);
                self.pump(now_ns, link);
            }
        }
        self.finish_input(now_ns);
    }

    /// A local put. The write is applied at once (reads see it) and acknowledged with
    /// `Event::Acked` once durable.
    ///
    /// # Errors
    /// [`NodeError::KeyTooLong`] or [`NodeError::ValueTooLong`].
    pub fn put(&mut self, now_ns: u64, key: Bytes, value: Bytes) -> Result<u64, NodeError> {
        if value.len() > VALUE_BYTES_MAX {
            return Err(NodeError::ValueTooLong { length_bytes: value.len() });
        }
        self.write(now_ns, Operation::Put { key, value })
    }

    /// A local delete; see [`put`](Self::put).
    ///
    /// # Errors
    /// [`NodeError::KeyTooLong`].
    pub fn delete(&mut self, now_ns: u64, key: Bytes) -> Result<u64, NodeError> {
        self.write(now_ns, Operation::Delete { key })
    }

    fn write(&mut self, now_ns: u64, operation: Operation) -> Result<u64, NodeError> {
        // The HLC stamps with the wall reading; timers run on steady time.
        let wall_ns = now_ns;
        let now_ns = self.steady.advance(now_ns);
        if operation.key().len() > KEY_BYTES_MAX {
            return Err(NodeError::KeyTooLong { length_bytes: operation.key().len() });
        }
        if let Some(remote) = self.recovered_remote_max.take()
            && self.clock.observe(remote, wall_ns).is_err()
        {
            self.stats.clock_rejections += 1;
            self.audit(Audit::ClockRefused { timestamp: remote });
        }
        let origin = self.node_id();
        let sequence = self.log.held().get(origin) + 1;
        let before = self.clock.last();
        let mut timestamp = self.clock.now(wall_ns);
        if timestamp < before {
            self.stats.clock_restarts += 1;
            self.audit(Audit::ClockRestarted { from: before, to: timestamp });
        }
        // PROTOCOL.md 8.2: a write beats every version of its key its node holds, even one
        // stamped far ahead of the clock (which the clock refused to follow). A write stamped
        // after every register needs no look at its key's.
        if timestamp <= self.store.newest()
            && let Some((held, held_origin)) = self.store.version(operation.key())
            && (held, held_origin) >= (timestamp, origin)
        {
            timestamp = Timestamp(held.0.checked_add(1).ok_or(NodeError::KeyAtTimestampMaximum)?);
            self.stats.writes_stamped_above_held += 1;
        }
        let entry = WalEntry::new(origin, sequence, timestamp, operation);
        let offer = self.log.offer(entry);
        assert_eq!(offer, Offer::Accepted, "a local write is always the next of its origin");
        self.apply_accepted();
        self.finish_input(now_ns);
        Ok(sequence)
    }

    /// Applies and logs everything the log accepted.
    fn apply_accepted(&mut self) {
        let accepted = self.log.take_accepted();
        for entry in &accepted {
            if let Operation::Seal(seal) = &entry.operation {
                self.settle_seal(seal);
            } else {
                self.apply_to_store(entry);
            }
            let mut record = BytesMut::with_capacity(wal::record_len(entry));
            wal::encode_record(entry, &mut record);
            self.wal_bytes += record.len() as u64;
            self.outputs.push_back(Output::Disk(DiskRequest::Append { bytes: record.freeze() }));
            self.appended = true;
        }
        self.wal_bytes_peak = self.wal_bytes_peak.max(self.wal_bytes);
        self.log_entries_peak = self.log_entries_peak.max(self.log.count());
    }

    /// Merges one accepted entry into the store, reporting a last-writer-wins conflict.
    fn apply_to_store(&mut self, entry: &WalEntry) {
        let (_, conflict) = self.store.apply_reporting(entry);
        if let Some(conflict) = conflict {
            self.outputs.push_back(Output::Event(Event::Conflict(conflict)));
        }
        self.stats.entries_applied += 1;
    }

    /// Group commit: one sync in flight at a time, covering everything appended before it.
    fn finish_input(&mut self, now_ns: u64) {
        if self.steady.has_reading() {
            self.seal_if_due(now_ns);
            self.started_ns.get_or_insert(now_ns);
            self.rewrite_wal(now_ns);
        }
        self.refresh_deadlines();
        if self.appended && self.sync_inflight.is_none() {
            self.appended = false;
            let sync_id = self.sync_next_id;
            self.sync_next_id += 1;
            self.sync_inflight = Some((sync_id, self.log.held().clone()));
            self.outputs.push_back(Output::Disk(DiskRequest::Sync { sync_id }));
        }
    }

    fn reject(&mut self, link: LinkId, reason: String) {
        self.stats.frames_rejected += 1;
        self.outputs.push_back(Output::Event(Event::Rejected { link, reason }));
    }

    /// Rejects a frame the peer (or someone on the path) should not have sent, and counts it
    /// against the session's abuse bound (PROTOCOL.md 9): past it the session is closed.
    fn reject_invalid(&mut self, now_ns: u64, link: LinkId, reason: String) {
        let Some(peer) = self.peers.get_mut(&link) else { return self.reject(link, reason) };
        if !peer.connection.is_established() || !peer.session_abused() {
            return self.reject(link, reason);
        }
        let (invalid, valid) = (peer.session_invalid_count, peer.session_valid_count);
        self.stats.sessions_closed_invalid += 1;
        self.reject(link, reason.clone());
        let reason =
            format!("{invalid} invalid envelopes against {valid} valid in one session, last: {reason}");
        self.close_session(now_ns, link, CloseCode::ProtocolError, reason);
    }

    /// Ends the session on `link` with a Close carrying `code` and `reason`. A stream link is
    /// closed with it (the peer redials); on a datagram link the Initiator handshakes again
    /// after its backoff.
    fn close_session(&mut self, now_ns: u64, link: LinkId, code: CloseCode, reason: String) {
        self.remember_member(now_ns, link);
        let close = Message::Close { code, reason: reason.clone() };
        self.send_message(link, &close);
        self.drain_connection(now_ns, link);
        let Some(peer) = self.peers.get_mut(&link) else { return };
        match peer.kind {
            LinkKind::Stream => {
                if let Some(peer) = self.peers.remove(&link) {
                    self.audit_sessions_ended(link, &peer);
                }
                self.routing_neighbour_down(now_ns, link);
                self.outputs.push_back(Output::Event(Event::PeerDisconnected { link, reason }));
                self.outputs.push_back(Output::Close { link });
            }
            LinkKind::Datagram => {
                peer.node_id = None;
                peer.retransmit_at_ns = None;
                peer.next_pull_ns = None;
                peer.schedule_handshake_retry(now_ns, &mut *self.rng);
                self.routing_neighbour_down(now_ns, link);
                self.outputs.push_back(Output::Event(Event::PeerDisconnected { link, reason }));
            }
        }
    }

    fn handle_contents(&mut self, now_ns: u64, link: LinkId, contents: Bytes) {
        let envelope = match Envelope::decode(contents) {
            Ok(envelope) => envelope,
            Err(error) => return self.reject_invalid(now_ns, link, error.to_string()),
        };
        let Some(peer) = self.peers.get_mut(&link) else { return };
        // A Hello that would start a new attempt costs key generation and Diffie-Hellman:
        // a link gets a bounded number (PROTOCOL.md 6.7); repeats of the last one are free.
        if envelope.header.message_type == MessageType::Hello
            && peer.last_hello.as_ref() != Some(&envelope.payload)
        {
            if !peer.take_hello_token(now_ns) {
                let reason = format!("more than {HELLO_BURST} handshake attempts in a burst on this link");
                return self.reject_invalid(now_ns, link, reason);
            }
            peer.last_hello = Some(envelope.payload.clone());
        }
        match peer.connection.handle_envelope(now_ns, envelope, &mut *self.rng) {
            Ok(Some((msg_id, message))) => {
                peer.session_valid_count += 1;
                peer.last_authenticated_ns = Some(now_ns);
                // Before the connection's events: an authenticated Close is accepted, then
                // ends its session. But the envelope that confirms a cluster-secret session
                // (PROTOCOL.md 6.10) is accepted under it, so that session is established first.
                let receipt = peer.connection.last_receipt();
                let confirming = peer.connection.establishment_pending();
                if confirming {
                    self.drain_connection(now_ns, link);
                }
                self.audit(Audit::EnvelopeAccepted { link, message_type: message.message_type(), receipt });
                if !confirming {
                    self.drain_connection(now_ns, link);
                }
                self.handle_message(now_ns, link, msg_id, message);
            }
            Ok(None) => self.drain_connection(now_ns, link),
            Err(SessionError::NoSession) => {
                // The peer has a session we lost (we restarted): handshake again.
                peer.connection.start_handshake(now_ns, &mut *self.rng);
                self.drain_connection(now_ns, link);
            }
            Err(SessionError::HandshakeInProgress) => self.drain_connection(now_ns, link),
            // The network duplicates and delays envelopes: a repeat is no offence.
            Err(error @ (SessionError::Replay { .. } | SessionError::TooOld { .. })) => {
                self.drain_connection(now_ns, link);
                self.reject(link, error.to_string());
            }
            Err(error) => {
                self.drain_connection(now_ns, link);
                self.reject_invalid(now_ns, link, error.to_string());
            }
        }
    }

    /// Sends queued handshake envelopes and handles connection events.
    fn drain_connection(&mut self, now_ns: u64, link: LinkId) {
        loop {
            let Some(peer) = self.peers.get_mut(&link) else { return };
            let ended = peer.connection.take_ended_sessions();
            if !ended.is_empty() {
                for session_id in ended {
                    self.audit(Audit::SessionEnded { link, session_id });
                }
                continue;
            }
            if let Some(contents) = peer.connection.poll_transmit() {
                self.send_contents(link, &contents, None);
                continue;
            }
            let Some(event) = peer.connection.poll_event() else { return };
            match event {
                ConnectionEvent::Established(info) | ConnectionEvent::Replaced { current: info, .. } => {
                    let eager_count = eager_peers_count(&self.peers, link);
                    let Some(peer) = self.peers.get_mut(&link) else { return };
                    if self.config.audit
                        && let Some(session_id) = peer.connection.session_id()
                    {
                        let audit = Audit::SessionEstablished { link, session_id };
                        self.outputs.push_back(Output::Event(Event::Audit(audit)));
                    }
                    if peer.node_id != Some(info.node_id) {
                        // A different peer on this link: forget what we knew of the old one.
                        peer.acked = VersionVector::new();
                    }
                    peer.node_id = Some(info.node_id);
                    peer.name.clone_from(&info.name);
                    self.origin_keys.pin_static(info.node_id, info.static_key);
                    // A new session may mean the peer restarted and lost what it held but
                    // had not synced: only its durable positions still count.
                    peer.reset_to_acked();
                    // Like Plumtree's small active view: only the first few sessions push
                    // eagerly; the others start lazy, so a dense mesh does not flood every
                    // link once before pruning (PROTOCOL.md 8.6).
                    peer.eager = eager_count < EAGER_LINKS_INITIAL;
                    peer.backoff_ns = self.config.retransmit_ns_initial;
                    peer.retransmit_at_ns = None;
                    peer.handshake_backoff_ns = self.config.handshake_retry_ns_initial;
                    peer.handshake_retry_at_ns = None;
                    peer.session_valid_count = 0;
                    peer.session_invalid_count = 0;
                    peer.last_authenticated_ns = Some(now_ns);
                    let node_id = info.node_id;
                    let event =
                        Event::PeerConnected { link, name: info.name, node_id, static_key: info.static_key };
                    self.outputs.push_back(Output::Event(event));
                    self.send_pull(now_ns, link);
                    // Push what the peer is known to lack at once: its own pull may be lost
                    // or overtake the handshake's last message and be dropped.
                    self.pump(now_ns, link);
                    self.routing_neighbour_up(now_ns, link, node_id);
                }
                ConnectionEvent::HandshakeFailed(error) => {
                    let reason = error.to_string();
                    self.outputs.push_back(Output::Event(Event::HandshakeFailed { link, reason }));
                    peer.schedule_handshake_retry(now_ns, &mut *self.rng);
                }
                ConnectionEvent::Closed { code, reason } => {
                    self.remember_member(now_ns, link);
                    let Some(peer) = self.peers.get_mut(&link) else { return };
                    if self.config.routing {
                        self.routing.router.neighbour_down(link);
                    }
                    peer.node_id = None;
                    peer.retransmit_at_ns = None;
                    peer.next_pull_ns = None;
                    let reason = format!("peer closed the session ({code:?}): {reason}");
                    self.outputs.push_back(Output::Event(Event::PeerDisconnected { link, reason }));
                    peer.schedule_handshake_retry(now_ns, &mut *self.rng);
                }
            }
        }
    }

    fn send_contents(&mut self, link: LinkId, contents: &[u8], message: Option<Box<SentMessage>>) {
        let mut frame = BytesMut::with_capacity(contents.len() + 4);
        match frame::encode(contents, self.config.frame_bytes_max, &mut frame) {
            Ok(()) => self.outputs.push_back(Output::Send { link, frame: frame.freeze(), message }),
            // Our own messages are bounded far below any sane maximum; a tiny configured
            // maximum is reported rather than panicking.
            Err(error) => self.reject(link, format!("cannot send: {error}")),
        }
    }

    /// Sends `message` on `link` under the link's session exactly as given, outside
    /// replication's bookkeeping: nothing is tracked, retransmitted or expected back. For
    /// tools and tests that play a misbehaving peer (the simulator's Byzantine relay, which
    /// alters the entries it relays); a node never needs it. Returns false, sending nothing,
    /// when the link has no session.
    pub fn send_unchecked(&mut self, now_ns: u64, link: LinkId, message: &Message) -> bool {
        self.steady.advance(now_ns);
        if self.peers.get(&link).is_none_or(|peer| peer.node_id.is_none()) {
            return false;
        }
        self.send_message(link, message);
        true
    }

    fn send_message(&mut self, link: LinkId, message: &Message) {
        let msg_id = self.msg_id_next;
        self.msg_id_next = self.msg_id_next.wrapping_add(1);
        self.send_message_as(link, msg_id, message);
    }

    /// Sends with a given msg_id: answers (Pong, WalAck) echo their request's.
    fn send_message_as(&mut self, link: LinkId, msg_id: u32, message: &Message) {
        let Some(peer) = self.peers.get_mut(&link) else { return };
        match peer.connection.send(msg_id, message) {
            Ok(contents) => {
                let sent = self
                    .config
                    .describe_sends
                    .then(|| Box::new(SentMessage { msg_id, message: message.clone() }));
                self.send_contents(link, &contents, sent);
            }
            Err(error) => self.reject(link, format!("cannot send {:?}: {error}", message.message_type())),
        }
    }

    fn send_pull(&mut self, now_ns: u64, link: LinkId) {
        self.repeat_snapshot_pull(now_ns, link);
        self.expire_snapshot_image(now_ns);
        // With refused non-member origins, pulls report them as held (PROTOCOL.md 8.12).
        let raised = (!self.refused.is_empty()).then(|| self.pull_vector());
        let Some(peer) = self.peers.get_mut(&link) else { return };
        let vector = peer.next_pull(raised.as_ref().unwrap_or(self.log.held()));
        self.send_message(link, &Message::OutboxPull { vector });
        let interval_ns = self.pull_interval_ns(link);
        // A little jitter keeps a cluster's pulls from marching in lockstep.
        let jitter_ns = self.rng.next_u64() % (interval_ns / 4 + 1);
        if let Some(peer) = self.peers.get_mut(&link) {
            peer.next_pull_ns = Some(now_ns.saturating_add(interval_ns + jitter_ns));
        }
    }

    /// Time until the next pull on `link`: a pull interval on an eager link (or one a
    /// snapshot is coming over); on a lazy one, as many as keep the node's lazy pulls near
    /// [`LAZY_PULLS_PER_INTERVAL`] a pull interval (PROTOCOL.md 8.6). A lazy link carries
    /// nothing but pulls, and a neighbour lacking an entry is noticed by whichever of its
    /// lazy neighbours its next pull reaches.
    fn pull_interval_ns(&self, link: LinkId) -> u64 {
        let interval_ns = self.config.pull_interval_ns;
        let eager = self.peers.get(&link).is_none_or(|peer| peer.eager);
        if eager || self.incoming.as_ref().is_some_and(|incoming| incoming.link == link) {
            return interval_ns;
        }
        let lazy_links = self.peers.values().filter(|peer| peer.node_id.is_some() && !peer.eager).count();
        interval_ns.saturating_mul(peer::lazy_pull_intervals(lazy_links))
    }

    fn handle_message(&mut self, now_ns: u64, link: LinkId, msg_id: u32, message: Message) {
        match message {
            Message::Ping { token } => self.send_message_as(link, msg_id, &Message::Pong { token }),
            Message::Pong { token } => {
                let Some(peer) = self.peers.get_mut(&link) else { return };
                if let Some((expected, sent_ns)) = peer.ping
                    && expected == token
                {
                    peer.ping = None;
                    let round_trip_ns = now_ns.saturating_sub(sent_ns);
                    self.outputs.push_back(Output::Event(Event::Pong { link, round_trip_ns }));
                }
            }
            Message::WalPush { entries } => self.handle_push(now_ns, link, msg_id, entries),
            Message::WalAck { positions } => {
                let Some(peer) = self.peers.get_mut(&link) else { return };
                let inflight_before = self.log.bytes_above(&peer.floor, &peer.sent);
                if peer.acknowledge(&positions) {
                    let inflight_after = self.log.bytes_above(&peer.floor, &peer.sent);
                    peer.window.on_acknowledged(inflight_before.saturating_sub(inflight_after));
                    peer.window.on_ack(&peer.acked, now_ns);
                    peer.backoff_ns = peer
                        .window
                        .timeout_ns(self.config.retransmit_ns_initial, self.config.retransmit_ns_max);
                    peer.retransmit_at_ns = None;
                }
                self.pump(now_ns, link);
            }
            Message::OutboxPull { vector } => {
                self.note_relayable(now_ns);
                let Some(peer) = self.peers.get_mut(&link) else { return };
                // What the peer holds is a floor for what it lacks. Held is not durable, so
                // the pull moves the floor, never the acknowledged positions.
                peer.pulled(&vector);
                let limit = self
                    .relayable_history
                    .as_of(now_ns.saturating_sub(self.config.pull_interval_ns))
                    .unwrap_or(&EMPTY_VECTOR);
                if let Some(peer_id) = peer.node_id
                    && peer.pulled_lazy(limit, peer_id)
                {
                    self.stats.grafts += 1;
                    if self.config.audit {
                        self.outputs.push_back(Output::Event(Event::Audit(Audit::Grafted { link })));
                    }
                }
                // The neighbour still lacks what is in flight, and nothing moved for longer
                // than a retransmission timeout: after a partition the timer may have backed
                // off to seconds, so the pull stands in for it (with a gentler window cut).
                let stalled_ns = now_ns.saturating_sub(peer.retransmit_armed_ns);
                let timeout_ns =
                    peer.window.timeout_ns(self.config.retransmit_ns_initial, self.config.retransmit_ns_max);
                if peer.inflight_count() > 0
                    && let Some(retransmit_at_ns) = peer.retransmit_at_ns
                {
                    if stalled_ns >= timeout_ns {
                        self.stats.retransmits += 1;
                        peer.window.on_loss(self.log.bytes_above(&peer.floor, &peer.sent));
                        peer.rewind();
                        peer.retransmit_at_ns = None;
                    } else {
                        // Too soon to resend what was sent last, but the pull proves the link
                        // carries messages again: a backoff grown while it did not (a
                        // partition) starts over, so the flight is resent one timeout after
                        // its last sending instead of seconds later.
                        peer.backoff_ns = timeout_ns;
                        let sooner_ns = peer.retransmit_armed_ns.saturating_add(timeout_ns).max(now_ns);
                        peer.retransmit_at_ns = Some(retransmit_at_ns.min(sooner_ns));
                    }
                }
                self.pump(now_ns, link);
            }
            Message::Close { code, reason } => {
                let reason = format!("peer closed ({code:?}): {reason}");
                self.outputs.push_back(Output::Event(Event::Rejected { link, reason }));
            }
            Message::Prune => {
                if let Some(peer) = self.peers.get_mut(&link) {
                    self.stats.prunes_received += 1;
                    peer.eager = false;
                }
            }
            offer @ Message::SnapshotOffer { .. } => self.handle_snapshot_offer(now_ns, link, offer),
            Message::SnapshotPull { snapshot_id, chunk_index } => {
                self.handle_snapshot_pull(now_ns, link, snapshot_id, chunk_index);
            }
            Message::SnapshotChunk { snapshot_id, chunk_index, entries } => {
                self.handle_snapshot_chunk(now_ns, link, snapshot_id, chunk_index, entries);
            }
            Message::RouteAnnounce { routes } => self.handle_announce(now_ns, link, &routes),
            Message::Routed { source, target, hops_left, body } => {
                self.handle_routed(now_ns, source, target, hops_left, body);
            }
            Message::Hello { .. } | Message::HelloAck { .. } | Message::HelloFinish { .. } => {}
        }
    }

    /// Reports, once per origin (at most [`CLOCK_OFFENDERS_MAX`] origins), that an entry of
    /// `entry.origin` arrived stamped more than the drift bound ahead of our clock.
    fn report_clock_ahead(&mut self, link: LinkId, entry: &WalEntry) {
        if self.clock_offenders.len() >= CLOCK_OFFENDERS_MAX || !self.clock_offenders.insert(entry.origin) {
            return;
        }
        let wall_ms = self.steady.reading_ns() / 1_000_000;
        let ahead_ms = entry.timestamp.physical_ms().saturating_sub(wall_ms);
        let event = Event::ClockAhead { link, origin: entry.origin, timestamp: entry.timestamp, ahead_ms };
        self.outputs.push_back(Output::Event(event));
    }

    fn handle_push(&mut self, now_ns: u64, link: LinkId, msg_id: u32, entries: Vec<WalEntry>) {
        // A peer pushes only from its durable, contiguous log: it holds every entry up to the
        // highest it pushed, durably, so there is no point pushing them back to it.
        let pushed: VersionVector = entries.iter().map(|entry| (entry.origin, entry.sequence)).collect();
        if let Some(peer) = self.peers.get_mut(&link) {
            peer.acknowledge(&pushed);
        }
        let mut accepted_any = false;
        let entries_count = entries.len();
        let mut duplicates_count = 0;
        // Whether some duplicate was first delivered by another link (or written here):
        // then this push repeats what the tree brought, rather than retransmitting.
        let mut delivered_elsewhere = false;
        // Per non-member origin: entries refused and the highest sequence (PROTOCOL.md 8.12).
        let mut refused: Vec<(NodeId, u64, u64)> = Vec::new();
        // Per origin and reason: entries refused for it and the highest sequence (8.13).
        let mut forged: Vec<(NodeId, u64, u64, authorship::Forgery)> = Vec::new();
        let sender = self.peers.get(&link).and_then(|peer| peer.node_id);
        for entry in entries {
            if entry.origin == self.node_id() {
                // Our own entries come back through relays; we are their source of truth.
                self.stats.entries_duplicate += 1;
                duplicates_count += 1;
                delivered_elsewhere = true;
                continue;
            }
            if !self.accepts_origin(entry.origin) {
                // Not a member: neither applied nor allowed to move our clock.
                match refused.iter_mut().find(|(origin, _, _)| *origin == entry.origin) {
                    Some((_, count, highest)) => {
                        *count += 1;
                        *highest = (*highest).max(entry.sequence);
                    }
                    None => refused.push((entry.origin, 1, entry.sequence)),
                }
                continue;
            }
            // What the log holds already is a duplicate whatever its signature says; only
            // what it may take is checked (once per entry per node: verifying is the cost).
            // An entry its origin sent over its own session is authenticated by the session;
            // the nodes it is relayed to verify its signature (PROTOCOL.md 8.13).
            let mut entry = entry;
            let checked = if entry.sequence <= self.log.held().get(entry.origin) {
                Ok(())
            } else if Some(entry.origin) == sender {
                self.origin_keys.check_from_origin(&entry)
            } else {
                self.origin_keys.check(&entry)
            };
            // Checked, a write is kept without its proof: its seal, which follows it, proves
            // it again when this node relays it (8.13), so neither the log nor the WAL carries
            // audit paths. What the origin itself sent along is not kept unchecked either.
            entry.proof = None;
            if let Err(why) = checked {
                match forged
                    .iter_mut()
                    .find(|(origin, _, _, reason)| (*origin, *reason) == (entry.origin, why))
                {
                    Some((_, count, highest, _)) => {
                        *count += 1;
                        *highest = (*highest).max(entry.sequence);
                    }
                    None => forged.push((entry.origin, 1, entry.sequence, why)),
                }
                continue;
            }
            if self.clock.observe(entry.timestamp, self.steady.reading_ns()).is_err() {
                self.stats.clock_rejections += 1;
                self.audit(Audit::ClockRefused { timestamp: entry.timestamp });
                self.report_clock_ahead(link, &entry);
            }
            // Own the bytes: a slice would keep the whole received frame alive for as long
            // as the entry lives (forever, in the log).
            let (origin, sequence) = (entry.origin, entry.sequence);
            match self.log.offer(detach(entry)) {
                Offer::Accepted => {
                    accepted_any = true;
                    self.sources.insert(origin, link);
                }
                Offer::Duplicate => {
                    self.stats.entries_duplicate += 1;
                    // Only an entry already in the log repeats what arrived; one waiting in
                    // the gap buffer still lacks its predecessors.
                    if sequence <= self.log.held().get(origin) {
                        duplicates_count += 1;
                        delivered_elsewhere |= self.sources.get(&origin) != Some(&link);
                    }
                }
                Offer::Buffered => {}
                Offer::Dropped => self.stats.entries_dropped += 1,
            }
        }
        self.apply_accepted();
        if accepted_any {
            // The next sync issued (the one in flight, if any, started before these appends)
            // is the first to cover them.
            let due_sync_id = self.sync_next_id;
            if let Some(peer) = self.peers.get_mut(&link) {
                peer.ack_due = Some((due_sync_id, msg_id));
                // The link brought us something first: it is a branch of the tree, and
                // carries our entries back the same way (Plumtree's eager set is symmetric).
                peer.eager = true;
            }
        } else {
            // Nothing new: tell the sender where we stand so it stops resending. It may
            // have missed our earlier acks (it is resending), so this one names every origin.
            if let Some(peer) = self.peers.get_mut(&link) {
                let positions = peer.next_ack(self.log.durable(), true);
                self.send_message_as(link, msg_id, &Message::WalAck { positions });
            }
            // Everything it pushed had reached us through another link first: this link is
            // redundant in the broadcast tree, in both directions (PROTOCOL.md 8.6).
            // A node with few neighbours keeps them all eager: pushing on at most
            // `EAGER_LINKS_INITIAL` links costs a bounded number of transmissions per entry,
            // and the spare paths carry entries past a lost push or a crashed neighbour at
            // once instead of a pull interval later.
            if entries_count > 0
                && duplicates_count == entries_count
                && delivered_elsewhere
                && self.connected_peers().count() > EAGER_LINKS_INITIAL
            {
                if let Some(peer) = self.peers.get_mut(&link) {
                    peer.eager = false;
                }
                self.stats.prunes_sent += 1;
                self.send_message(link, &Message::Prune);
            }
        }
        if !refused.is_empty() {
            self.refuse_entries(now_ns, link, &refused);
        }
        if !forged.is_empty() {
            self.refuse_forged(now_ns, link, &forged);
        }
    }

    /// Pushes durable entries the peer lacks, in bounded batches, within its in-flight limit.
    fn pump(&mut self, now_ns: u64, link: LinkId) {
        // Entries the peer lacks below our compaction base cannot be pushed: a snapshot
        // brings them (PROTOCOL.md 8.11); the origins above it are pushed as usual.
        if !self.log.base().is_empty() && self.needs_snapshot(link) {
            self.offer_snapshot(now_ns, link);
        }
        // Another origin's writes go with their proofs (8.13): first prove those of the seals
        // applied here that this push may carry (few wait: each is proven once).
        if !self.pending_seals.is_empty()
            && let Some(peer_id) = self.peers.get(&link).and_then(|peer| peer.node_id)
        {
            let own = self.session.node_id;
            let due: Vec<NodeId> = self
                .pending_seals
                .keys()
                .copied()
                .filter(|&origin| {
                    origin != own
                        && origin != peer_id
                        && self
                            .peers
                            .get(&link)
                            .is_some_and(|peer| peer.sent.get(origin) < self.log.durable().get(origin))
                })
                .collect();
            for origin in due {
                self.prove(origin);
            }
        }
        let base = self.log.base();
        let Some(peer) = self.peers.get_mut(&link) else { return };
        let Some(peer_id) = peer.node_id else { return };
        let mut budget = PEER_INFLIGHT_ENTRIES_MAX.saturating_sub(peer.inflight_count());
        // Bytes the congestion window allows; when nothing is in flight one entry goes
        // whatever its size, so an entry larger than the window is never stuck.
        // Most pumps find nothing in flight: then there is no need to add up its bytes.
        let inflight_bytes =
            if peer.inflight_count() == 0 { 0 } else { self.log.bytes_above(&peer.floor, &peer.sent) };
        let mut bytes_budget = peer.window.bytes().saturating_sub(inflight_bytes);
        let mut first_free = inflight_bytes == 0;
        let mut batches: Vec<Vec<WalEntry>> = Vec::new();
        let mut batch: Vec<WalEntry> = Vec::new();
        let mut batch_bytes = 0usize;
        // One linear merge of two origin-sorted vectors; `sent >= acked`, so `sent` alone
        // says where the peer's copy ends.
        let mut sent_updates = Vec::new();
        {
            let mut sent_positions = peer.sent.iter().peekable();
            let lazy_limit = (!peer.eager).then_some(&peer.lazy_limit);
            // A lazy outbox with no limit pushes nothing: skip the walk over every origin.
            let origins =
                if lazy_limit.is_some_and(VersionVector::is_empty) { None } else { Some(self.log.durable()) };
            let own = self.session.node_id;
            'origins: for (origin, durable) in origins.into_iter().flat_map(VersionVector::iter) {
                // A lazy outbox pushes only what the peer has lacked for a pull interval.
                let durable = lazy_limit.map_or(durable, |limit| durable.min(limit.get(origin)));
                if budget == 0 || (bytes_budget == 0 && !first_free) {
                    break;
                }
                while sent_positions.peek().is_some_and(|(sent_origin, _)| *sent_origin < origin) {
                    sent_positions.next();
                }
                let sent = match sent_positions.peek() {
                    Some((sent_origin, position)) if *sent_origin == origin => *position,
                    _ => 0,
                };
                if origin == peer_id || sent >= durable || sent < base.get(origin) {
                    continue;
                }
                // Another origin's entries go only as far as they are proven (8.13).
                let durable = if origin == own {
                    durable
                } else {
                    durable.min(self.sealed.get(origin).max(base.get(origin)))
                };
                if sent >= durable {
                    continue;
                }
                let from = sent + 1;
                let to = durable.min(from + budget - 1);
                let mut last = sent;
                for entry in self.log.range(origin, from, to) {
                    let entry_sequence = entry.sequence;
                    // The window counts entries as the log does (without proofs, as
                    // `bytes_above` measures what is in flight); a push's size limit counts
                    // what goes on the wire, another origin's proof included.
                    let logged_bytes = message::entry_fields_len(entry) + 1;
                    let entry_bytes =
                        if origin == own { logged_bytes } else { message::entry_encoded_len(entry) };
                    if logged_bytes as u64 > bytes_budget && !first_free {
                        if last > sent {
                            sent_updates.push((origin, last));
                        }
                        break 'origins;
                    }
                    first_free = false;
                    bytes_budget = bytes_budget.saturating_sub(logged_bytes as u64);
                    if batch_bytes + entry_bytes > WAL_PUSH_BYTES_MAX - 16 && !batch.is_empty() {
                        batches.push(std::mem::take(&mut batch));
                        batch_bytes = 0;
                    }
                    batch_bytes += entry_bytes;
                    // Our own entries go without their proofs: the session vouches for them.
                    let mut entry = entry.clone();
                    if origin == own {
                        entry.proof = None;
                    }
                    batch.push(entry);
                    last = entry_sequence;
                }
                budget -= last - sent;
                sent_updates.push((origin, last));
            }
        }
        let advanced: VersionVector = sent_updates.into_iter().collect();
        peer.sent.merge_max(&advanced);
        if !batch.is_empty() || !batches.is_empty() {
            peer.window.on_push(&peer.sent, now_ns);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        if peer.inflight_count() > 0 && peer.retransmit_at_ns.is_none() {
            peer.retransmit_at_ns = Some(now_ns.saturating_add(peer.backoff_ns));
            peer.retransmit_armed_ns = now_ns;
        }
        for entries in batches {
            self.stats.pushes_sent += 1;
            self.stats.entries_pushed += entries.len() as u64;
            self.audit(Audit::Pushed { link, entries_count: entries.len() as u64 });
            self.send_message(link, &Message::WalPush { entries });
        }
    }

    /// Sends a Ping on `link`; the answer arrives as `Event::Pong`.
    pub fn ping(&mut self, now_ns: u64, link: LinkId) {
        let now_ns = self.steady.advance(now_ns);
        let token = self.rng.next_u64();
        if let Some(peer) = self.peers.get_mut(&link) {
            peer.ping = Some((token, now_ns));
            self.send_message(link, &Message::Ping { token });
        }
    }
}

/// The earliest deadline of a link: its peer's timers and its connection's handshake.
fn link_deadline_ns(peer: &Peer) -> Option<u64> {
    [peer.connection.poll_timeout(), peer.deadline_ns()].into_iter().flatten().min()
}

/// Outboxes other than `link`'s that have a session and push eagerly.
fn eager_peers_count(peers: &BTreeMap<LinkId, Peer>, link: LinkId) -> usize {
    peers.iter().filter(|(other, peer)| **other != link && peer.node_id.is_some() && peer.eager).count()
}

/// A copy of `entry` whose key and value own their bytes.
fn detach(entry: WalEntry) -> WalEntry {
    let operation = match entry.operation {
        Operation::Put { key, value } => {
            Operation::Put { key: Bytes::copy_from_slice(&key), value: Bytes::copy_from_slice(&value) }
        }
        Operation::Delete { key } => Operation::Delete { key: Bytes::copy_from_slice(&key) },
        Operation::Seal(seal) => Operation::Seal(seal),
    };
    WalEntry { operation, ..entry }
}

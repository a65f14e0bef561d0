//! The adapter that hosts ferry's sans-IO [`Node`] as a simulator [`Process`], and the
//! checker that watches a ferry cluster for lost writes and convergence.
//!
//! Links are named by the peer's node index. Each link is a [`FerryLink`]: a datagram link
//! is up from the start; on a stream link the lower-indexed node dials and redials with
//! backoff after every break; on a QUIC link it dials a QUIC connection over the datagram
//! link, and the protocol's stream link rides on it. A run may mix the three
//! ([`FerryConfig::links`]). The adapter's own timers (redials, routed ping
//! retries) run on a [`SteadyClock`] of the node's readings, as the node's do, so a clock
//! that steps back postpones none of them.
//!
//! When the trace writes text, each node attaches the plaintext of what it sends and
//! [`describe`] turns it into the send line's description; the hash never sees it.
//!
//! With [`FerryConfig::audit`], each node also reports what the checkers need and the trace
//! does not: its protocol node's [`Audit`] events and, for each local write, the version of
//! the key it held before ([`IssuedWrite`]). They go to an [`AuditLog`], never to the trace,
//! so they change no hash; [`FerryChecker`] reads them with [`causal`] and [`sessions`].

pub mod causal;
pub mod describe;
mod quic;
pub mod sessions;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_protocol::node::{
    Audit, EVENT_KEY_BYTES_SHOWN_MAX, Escaped, Event, HlcDisplay, LinkKind, Node, NodeConfig, Output,
    SentMessage, SignatureMemo, conflict_outcome,
};
use ferry_protocol::session::{DhMemo, Identity, Role, SessionConfig};
use ferry_protocol::storage::DiskRequest;
use ferry_protocol::store::{Conflict, Digest, Register, Store, WriteId};
use ferry_protocol::{Envelope, Message, MessageType, NodeId, Operation, SteadyClock, Timestamp, WalEntry};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

pub use crate::clock::format_ns;
use crate::network::Transport;
use crate::process::{Context, Process};
use crate::random::{self, Stream};
use crate::sim::Simulation;
use crate::trace::{TraceHasher, TraceRecord};

use self::causal::{CausalChecker, IssuedWrite, node_name};
use self::describe::Names;
use self::quic::{LinkChange, QuicLinks};
use self::sessions::SessionChecker;

/// First delay before redialling a broken stream connection.
pub const REDIAL_NS_INITIAL: u64 = 100_000_000;
/// Largest redial delay.
pub const REDIAL_NS_MAX: u64 = 2_000_000_000;
/// Attempts of one routed ping before giving up.
pub const PING_ATTEMPTS_MAX: u32 = 10;
/// Time between attempts of an unanswered routed ping.
pub const PING_RETRY_NS: u64 = 1_000_000_000;

/// What every ferry node in a run shares.
#[derive(Debug, Clone)]
pub struct FerryConfig {
    /// Node names by index.
    pub names: std::sync::Arc<Vec<String>>,
    /// Static identities by index (a real node persists its key; here the seed fixes it).
    pub identities: Vec<Identity>,
    /// How links behave.
    pub transport: Transport,
    /// Run every link over QUIC (PROTOCOL.md 6.11): each node's real QUIC stack, seeded from
    /// the run, over `Transport::Datagram` links that lose, duplicate and reorder its
    /// packets. The protocol sees stream links. Off by default.
    pub quic: bool,
    /// Links carried otherwise than `transport` and `quic` say, by pair (either order).
    /// The simulated network must carry each the same way: put
    /// [`FerryConfig::link_transports`] into `SimConfig::link_transports`. Empty by default.
    pub links: BTreeMap<(u32, u32), FerryLink>,
    /// Anti-entropy interval.
    pub pull_interval_ns: u64,
    /// Build routing tables (needed for routed pings).
    pub routing: bool,
    /// `NodeConfig::compaction_tail_bytes_min` of every node.
    pub compaction_log_bytes: u64,
    /// `NodeConfig::compaction_horizon_ns` of every node.
    pub compaction_horizon_ns: u64,
    /// `SessionConfig::psk` of every node: a cluster secret (PROTOCOL.md 6.10); `None` by
    /// default.
    pub psk: Option<[u8; ferry_protocol::session::PSK_BYTES]>,
    /// Show keys and values of pushed entries in the text trace's send lines (escaped and
    /// cut short). Off by default: values may be private. Never changes the trace hash.
    pub trace_values: bool,
    /// Where nodes report what the checkers need ([`AuditRecord`]s); `None` boots nodes
    /// without `NodeConfig::audit`. Never changes the trace hash.
    pub audit: Option<AuditLog>,
    /// A bug planted in every node, for tests that need a process that really fails
    /// ([`PlantedBug`]); `None`, the default, is the correct adapter.
    #[doc(hidden)]
    pub planted_bug: Option<PlantedBug>,
    /// The memo of verified entry signatures the run's nodes share
    /// (`NodeConfig::signature_memo`): a signature is verified by the first node that checks
    /// it, and every later check of the same signer, signature and entry finds it there.
    /// What a node decides is the same either way. A fresh memo by default; `None` makes
    /// every node verify every entry it checks.
    pub signature_memo: Option<SignatureMemo>,
    /// The X25519 results the run's nodes share (`SessionConfig::dh_memo`): each of a
    /// handshake's three Diffie-Hellman results is computed by the end that needs it first
    /// and taken from the memo by the other, instead of computed twice. No byte of any
    /// handshake changes. A fresh memo by default; `None` makes both ends compute each.
    pub dh_memo: Option<DhMemo>,
}

/// How one link of a ferry run is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FerryLink {
    /// A simulated datagram link; the protocol's datagram link kind runs over it.
    Datagram,
    /// A simulated stream connection; the protocol's stream link kind.
    Stream,
    /// A QUIC connection (PROTOCOL.md 6.11) over a simulated datagram link, carrying the
    /// protocol's stream link kind.
    Quic,
}

impl FerryLink {
    /// The simulated network's transport under this link.
    #[must_use]
    pub fn network_transport(self) -> Transport {
        match self {
            Self::Stream => Transport::Stream,
            Self::Datagram | Self::Quic => Transport::Datagram,
        }
    }
}

/// A deliberate bug in the adapter, so that tests of the tools that hunt failures (`ferry
/// shrink`) have real failures of a broken process to work on, and can show that the bug,
/// not the scenario, is the cause: the same scenario passes with the correct adapter.
///
/// Only tests set one ([`FerryConfig::planted_bug`], through the CLI crate's
/// `run::Options`); no command-line flag or scenario key reaches it. Both bugs are
/// deterministic: they change what a node does, never the order in which the simulator
/// does it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// The adapter tells its node that every sync completed the moment it asks for one
    /// (and still asks the disk): writes are acknowledged, and pushed to peers, before they
    /// are durable, so a crash within the fsync latency loses acknowledged writes.
    AckBeforeSync,
    /// The adapter never sends a `WalPush` that carries another origin's entry: a node
    /// passes on only its own writes, so in a line a write never gets two hops.
    ForgetToRelay,
    /// Node `node` is a Byzantine relay: every `WalPush` it sends that carries another
    /// origin's entry goes out with those entries altered (each becomes a put of
    /// [`ALTERED_VALUE`], signature untouched), under its session. Receivers must refuse
    /// them (PROTOCOL.md 8.13) and still converge through other paths.
    AlterRelayed {
        /// The index of the lying node.
        node: u32,
    },
}

/// The value a Byzantine relay (`PlantedBug::AlterRelayed`) writes into the entries it
/// relays; no honest write in a simulation has it.
pub const ALTERED_VALUE: &[u8] = b"\xffaltered by a byzantine relay";

/// What a node reports to the checkers alone, never to the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditRecord {
    /// The protocol node's own audit.
    Node(Audit),
    /// A local write and the key's version just before it.
    Issued(IssuedWrite),
}

/// Records nodes append and the checker drains after every step, tagged with the node's
/// index. Shared between the run's [`FerryConfig`] and its [`FerryChecker`]; a run is one
/// thread, so the lock is never contended. Drained after every step, it holds one step's
/// records.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    records: Arc<Mutex<Vec<(u32, AuditRecord)>>>,
    /// Messages sent by every node in every incarnation, by wire type code (index 0 counts
    /// frames whose type could not be read, which a node never sends).
    sent_by_type: Arc<[AtomicU64; SENT_TYPES]>,
    /// The bytes of those frames (framing and encryption included), by the same slots.
    sent_bytes_by_type: Arc<[AtomicU64; SENT_TYPES]>,
}

/// Slots of [`AuditLog::sent_by_type`]: one per message type code, and 0.
const SENT_TYPES: usize = MessageType::ALL.len() + 1;

/// The nonzero counters of `slots`, per message type in code order.
fn by_type(slots: &[AtomicU64; SENT_TYPES]) -> Vec<(MessageType, u64)> {
    MessageType::ALL
        .iter()
        .map(|message_type| (*message_type, slots[usize::from(message_type.code())].load(Ordering::Relaxed)))
        .filter(|(_, count)| *count > 0)
        .collect()
}

impl AuditLog {
    /// Counts one frame a node sent, and its bytes, by the type in its envelope header.
    pub fn count_sent(&self, frame: &[u8]) {
        let code = frame_message_type(frame).map_or(0, |message_type| usize::from(message_type.code()));
        if let Some(counter) = self.sent_by_type.get(code) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(counter) = self.sent_bytes_by_type.get(code) {
            counter.fetch_add(frame.len() as u64, Ordering::Relaxed);
        }
    }

    /// Bytes of the frames sent so far by every node, per type, in code order (types never
    /// sent omitted): whole frames, length prefix, header and authentication tag included.
    #[must_use]
    pub fn sent_bytes_by_type(&self) -> Vec<(MessageType, u64)> {
        by_type(&self.sent_bytes_by_type)
    }

    /// Messages sent so far by every node, per type, in code order (types never sent
    /// omitted).
    #[must_use]
    pub fn sent_by_type(&self) -> Vec<(MessageType, u64)> {
        by_type(&self.sent_by_type)
    }

    /// Appends `record` from `node`.
    pub fn push(&self, node: u32, record: AuditRecord) {
        self.records
            .lock()
            .expect("a run is one thread, so no holder of the lock panicked")
            .push((node, record));
    }

    /// Everything appended since the last call, oldest first.
    #[must_use]
    pub fn take(&self) -> Vec<(u32, AuditRecord)> {
        std::mem::take(
            &mut *self.records.lock().expect("a run is one thread, so no holder of the lock panicked"),
        )
    }
}

/// The message type in the envelope header of `frame` (a length varint, then the envelope),
/// if it can be read.
fn frame_message_type(frame: &[u8]) -> Option<MessageType> {
    let prefix_bytes = frame.iter().position(|byte| byte & 0x80 == 0)? + 1;
    MessageType::from_code(*frame.get(prefix_bytes + 3)?)
}

impl FerryConfig {
    /// Identities drawn from the run seed, one stream per node.
    #[must_use]
    pub fn new(seed: u64, names: Vec<String>, transport: Transport) -> Self {
        let identities = (0..names.len())
            .map(|index| Identity::generate(&mut random::stream(seed, Stream::Identity(index as u32))))
            .collect();
        Self {
            names: std::sync::Arc::new(names),
            identities,
            transport,
            quic: false,
            links: BTreeMap::new(),
            pull_interval_ns: 1_000_000_000,
            routing: false,
            compaction_log_bytes: 4 * 1024 * 1024,
            compaction_horizon_ns: 3_600_000_000_000,
            psk: None,
            trace_values: false,
            audit: None,
            planted_bug: None,
            signature_memo: Some(SignatureMemo::default()),
            dh_memo: Some(DhMemo::default()),
        }
    }

    /// How the link between `first` and `second` is carried.
    #[must_use]
    pub fn link(&self, first: u32, second: u32) -> FerryLink {
        let pair = (first.min(second), first.max(second));
        self.links
            .get(&pair)
            .or_else(|| self.links.get(&(pair.1, pair.0)))
            .copied()
            .unwrap_or_else(|| self.default_link())
    }

    /// How every link not in [`FerryConfig::links`] is carried.
    #[must_use]
    pub fn default_link(&self) -> FerryLink {
        match (self.quic, self.transport) {
            (true, _) => FerryLink::Quic,
            (false, Transport::Stream) => FerryLink::Stream,
            (false, Transport::Datagram) => FerryLink::Datagram,
        }
    }

    /// The network transport of each link in [`FerryConfig::links`], for
    /// `SimConfig::link_transports`.
    #[must_use]
    pub fn link_transports(&self) -> BTreeMap<(u32, u32), Transport> {
        self.links.iter().map(|(&pair, link)| (pair, link.network_transport())).collect()
    }
}

/// How one node's links are carried: a default and the exceptions, by peer.
#[derive(Debug, Clone)]
struct PeerLinks {
    default: FerryLink,
    by_peer: BTreeMap<u32, FerryLink>,
}

impl PeerLinks {
    fn of(config: &FerryConfig, node: u32) -> Self {
        let by_peer = config
            .links
            .iter()
            .filter_map(|(&(first, second), &link)| match (first == node, second == node) {
                (true, false) => Some((second, link)),
                (false, true) => Some((first, link)),
                _ => None,
            })
            .collect();
        Self { default: config.default_link(), by_peer }
    }

    fn get(&self, peer: u32) -> FerryLink {
        if self.by_peer.is_empty() {
            return self.default;
        }
        self.by_peer.get(&peer).copied().unwrap_or(self.default)
    }

    fn any(&self, link: FerryLink) -> bool {
        self.default == link || self.by_peer.values().any(|each| *each == link)
    }
}

/// A workload command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Set a key.
    Put {
        /// Key.
        key: Bytes,
        /// Value.
        value: Bytes,
    },
    /// Delete a key.
    Delete {
        /// Key.
        key: Bytes,
    },
    /// Ping node `target` over the routing table (retried until answered).
    Ping {
        /// The node index to reach.
        target: u32,
    },
}

impl fmt::Display for Command {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Scenario text may hold anything, and values may be 32 KiB: escaped and cut.
            Self::Put { key, value } => write!(formatter, "put {}={}", shown(key), shown(value)),
            Self::Delete { key } => write!(formatter, "delete {}", shown(key)),
            Self::Ping { target } => write!(formatter, "route-ping node #{target}"),
        }
    }
}

/// `bytes` for a trace or report line: escaped, at most [`EVENT_KEY_BYTES_SHOWN_MAX`] shown.
fn shown(bytes: &[u8]) -> Escaped<'_> {
    Escaped { bytes, bytes_max: EVENT_KEY_BYTES_SHOWN_MAX }
}

impl TraceRecord for Command {
    fn name(&self) -> Option<&'static str> {
        Some(match self {
            Self::Put { .. } => "put",
            Self::Delete { .. } => "delete",
            Self::Ping { .. } => "route-ping",
        })
    }

    fn hash_into(&self, hasher: &mut TraceHasher) {
        match self {
            Self::Put { key, value } => {
                hasher.word(1);
                hasher.bytes(key);
                hasher.bytes(value);
            }
            Self::Delete { key } => {
                hasher.word(2);
                hasher.bytes(key);
            }
            Self::Ping { target } => {
                hasher.word(3);
                hasher.word(u64::from(*target));
            }
        }
    }
}

/// What a ferry node reports to the trace and the checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FerryEvent {
    /// A protocol event.
    Node(Event),
    /// A workload write the node refused.
    WriteRefused {
        /// Why.
        reason: String,
    },
    /// A routed ping was sent (attempt `attempt`, over `hops` hops) or could not be.
    PingSent {
        /// The node pinged.
        target: String,
        /// 1 for the first try.
        attempt: u32,
        /// Hops of the route used, or why none.
        route: Result<u8, String>,
    },
    /// A routed ping was answered.
    PingAnswered {
        /// The node that answered.
        target: String,
        /// Round trip on the pinging node's clock.
        round_trip_ns: u64,
    },
    /// The node could not start from its disk (corruption before the tail).
    StartFailed {
        /// Why.
        reason: String,
    },
    /// Last-writer-wins chose between two origins' writes to one key.
    Conflict {
        /// What the protocol reported.
        conflict: Conflict,
        /// The held write's origin, by name (or id, if not a node of the run).
        held_origin: String,
        /// The merged write's origin, likewise.
        merged_origin: String,
    },
}

/// `put c#2@1.203s+0`.
pub(crate) struct WriteDisplay<'a>(pub(crate) &'a WriteId, pub(crate) &'a str);

impl fmt::Display for WriteDisplay<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(write, origin) = self;
        let kind = if write.delete { "delete" } else { "put" };
        write!(formatter, "{kind} {origin}#{}@{}", write.sequence, HlcDisplay(write.timestamp))
    }
}

impl fmt::Display for FerryEvent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(event) => write!(formatter, "{event}"),
            Self::WriteRefused { reason } => write!(formatter, "write refused: {reason}"),
            Self::StartFailed { reason } => write!(formatter, "start failed: {reason}"),
            Self::PingSent { target, attempt, route: Ok(hops) } => {
                write!(formatter, "route-ping {target} attempt {attempt} over {hops} hops")
            }
            Self::PingSent { target, attempt, route: Err(reason) } => {
                write!(formatter, "route-ping {target} attempt {attempt} not sent: {reason}")
            }
            Self::PingAnswered { target, round_trip_ns } => {
                write!(formatter, "route-ping {target} answered in {round_trip_ns}ns")
            }
            Self::Conflict { conflict, held_origin, merged_origin } => {
                let held = WriteDisplay(&conflict.held, held_origin);
                let merged = WriteDisplay(&conflict.merged, merged_origin);
                let (winner, loser) = if conflict.merged_won() { (merged, held) } else { (held, merged) };
                let key = Escaped { bytes: &conflict.key, bytes_max: EVENT_KEY_BYTES_SHOWN_MAX };
                write!(formatter, "lww {key}: {winner} beats {loser} ({})", conflict_outcome(conflict))
            }
        }
    }
}

impl TraceRecord for FerryEvent {
    fn name(&self) -> Option<&'static str> {
        Some(match self {
            Self::Node(event) => match event {
                Event::Recovered { .. } => "recovered",
                Event::Acked { .. } => "acked",
                Event::PeerConnected { .. } => "peer-connected",
                Event::PeerDisconnected { .. } => "peer-disconnected",
                Event::HandshakeFailed { .. } => "handshake-failed",
                Event::Rejected { .. } => "rejected",
                Event::RoutedPong { .. } => "routed-pong",
                Event::Pong { .. } => "pong",
                Event::Conflict(_) => "lww",
                Event::ClockAhead { .. } => "clock-ahead",
                Event::Compacted { .. } => "compacted",
                Event::SnapshotApplied { .. } => "snapshot-applied",
                Event::SnapshotRefused { .. } => "snapshot-refused",
                Event::Audit(_) => "audit",
            },
            Self::WriteRefused { .. } => "write-refused",
            Self::PingSent { .. } => "route-ping-sent",
            Self::PingAnswered { .. } => "route-ping-answered",
            Self::StartFailed { .. } => "start-failed",
            Self::Conflict { .. } => "lww",
        })
    }

    fn hash_into(&self, hasher: &mut TraceHasher) {
        // The event's text is what is hashed; it is formatted into one buffer per thread,
        // not a new string per event (a 200-node run hashes hundreds of thousands).
        thread_local! {
            static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        TEXT.with_borrow_mut(|text| {
            text.clear();
            // Writing to a String cannot fail.
            let _ = std::fmt::Write::write_fmt(text, format_args!("{self}"));
            hasher.bytes(text.as_bytes());
            if text.capacity() > 4096 {
                *text = String::new();
            }
        });
    }
}

/// One ferry node inside the simulator.
pub struct FerryNode {
    node: Option<Node>,
    /// How each link is carried.
    links: PeerLinks,
    /// The node's QUIC endpoint, when some of its links run over QUIC.
    quic: Option<QuicLinks>,
    /// Stream peers this node dials: next attempt time (steady) and current backoff.
    redial: BTreeMap<u32, (Option<u64>, u64)>,
    /// Routed pings not yet answered: target → (attempts so far, next attempt time, steady).
    pings: BTreeMap<u32, (u32, u64)>,
    /// The node's clock readings as steady time, for the two timer tables above.
    steady: SteadyClock,
    names: std::sync::Arc<Vec<String>>,
    /// Node names by id, for conflicts and send descriptions.
    ids: Names,
    /// Show values in send descriptions.
    trace_values: bool,
    /// Where to report audits, if anyone listens.
    audit: Option<AuditLog>,
    /// The bug planted in this node, if any ([`PlantedBug`]).
    bug: Option<PlantedBug>,
}

impl FerryNode {
    /// The protocol node, unless it failed to start.
    #[must_use]
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    fn drain(&mut self, context: &mut Context<'_, FerryEvent>) {
        let Some(node) = self.node.as_mut() else { return };
        let mut broken = Vec::new();
        let own_id = node.node_id();
        // Syncs to report complete at once (only with `PlantedBug::AckBeforeSync`).
        let mut premature = Vec::new();
        while let Some(output) = node.poll() {
            match output {
                Output::Send { message: Some(sent), .. }
                    if self.bug == Some(PlantedBug::ForgetToRelay)
                        && relays_another_origin(&sent, own_id) => {}
                Output::Send { link, message: Some(sent), .. }
                    if self.bug == Some(PlantedBug::AlterRelayed { node: context.node() })
                        && alters(&sent.message, own_id) =>
                {
                    // The honest push is dropped; its altered copy goes out in its place
                    // (and comes back through this loop, altered already).
                    let Message::WalPush { entries } = sent.message else { continue };
                    let entries = entries
                        .into_iter()
                        .map(|mut entry| {
                            if entry.origin != own_id {
                                let key = entry.operation.key().clone();
                                entry.operation =
                                    Operation::Put { key, value: Bytes::from_static(ALTERED_VALUE) };
                            }
                            entry
                        })
                        .collect();
                    node.send_unchecked(context.now_ns(), link, &Message::WalPush { entries });
                }
                Output::Send { link, frame, .. } if self.links.get(link as u32) == FerryLink::Quic => {
                    if let Some(audit) = &self.audit {
                        audit.count_sent(&frame);
                    }
                    if let Some(quic) = self.quic.as_mut() {
                        quic.send(link as u32, &frame);
                    }
                }
                Output::Send { link, frame, message: None } => {
                    if let Some(audit) = &self.audit {
                        audit.count_sent(&frame);
                    }
                    context.send(link as u32, frame);
                }
                Output::Send { link, frame, message: Some(sent) } => {
                    if let Some(audit) = &self.audit {
                        audit.count_sent(&frame);
                    }
                    let (ids, values) = (&self.ids, self.trace_values);
                    context.send_described(link as u32, frame, || describe::describe(&sent, ids, values));
                }
                Output::Close { link } if self.links.get(link as u32) == FerryLink::Quic => {
                    // The Close that says why is queued; QUIC delivers it, then ends the
                    // connection, and its close takes the link down.
                    let steady_ns = self.steady.advance(context.now_ns());
                    if let Some(quic) = self.quic.as_mut() {
                        quic.close(steady_ns, link as u32);
                    }
                }
                Output::Close { link } => {
                    // The simulator's streams carry whole frames, so this cannot happen
                    // there; treat it as the link breaking and redial.
                    broken.push(link as u32);
                }
                Output::Disk(DiskRequest::Append { bytes }) => context.append(bytes),
                Output::Disk(DiskRequest::Sync { sync_id }) => {
                    context.sync(sync_id);
                    if self.bug == Some(PlantedBug::AckBeforeSync) {
                        premature.push(sync_id);
                    }
                }
                Output::Disk(DiskRequest::Truncate { length_bytes }) => context.truncate(length_bytes),
                Output::Disk(DiskRequest::Replace { bytes }) => context.replace(bytes),
                Output::Event(Event::RoutedPong { target, round_trip_ns }) => {
                    let answered = self.pings.keys().copied().find(|index| {
                        self.names.get(*index as usize).is_some_and(|name| NodeId::from_name(name) == target)
                    });
                    if let Some(index) = answered {
                        self.pings.remove(&index);
                        let target = self.names[index as usize].clone();
                        context.emit(FerryEvent::PingAnswered { target, round_trip_ns });
                    }
                }
                Output::Event(Event::Audit(audit)) => {
                    if let Some(log) = &self.audit {
                        log.push(context.node(), AuditRecord::Node(audit));
                    }
                }
                Output::Event(Event::Conflict(conflict)) => {
                    let held_origin = self.ids.show(conflict.held.origin).to_string();
                    let merged_origin = self.ids.show(conflict.merged.origin).to_string();
                    context.emit(FerryEvent::Conflict { conflict, held_origin, merged_origin });
                }
                Output::Event(event) => context.emit(FerryEvent::Node(event)),
            }
        }
        let now_ns = self.steady.advance(context.now_ns());
        for peer in broken {
            self.link_broken(now_ns, peer);
        }
        if self.pump_quic(context) {
            // The node heard something from QUIC and may have more to say.
            return self.drain(context);
        }
        let redial = self.redial.values().filter_map(|(at, _)| *at).min();
        let ping = self.pings.values().map(|(_, at)| *at).min();
        let quic = self.quic.as_mut().and_then(QuicLinks::deadline);
        let own = [redial, ping, quic].into_iter().flatten().min().map(|at| self.steady.to_reading_ns(at));
        let deadline = [node_deadline(self.node.as_ref()), own].into_iter().flatten().min();
        context.set_timer(deadline);
        if !premature.is_empty() {
            // The disk's own completion comes later, and the node ignores it, as it ignores
            // every completion of a sync it no longer waits for.
            if let Some(node) = self.node.as_mut() {
                for sync_id in premature {
                    node.handle_synced(context.now_ns(), sync_id);
                }
            }
            self.drain(context);
        }
    }

    /// Sends every routed ping whose next attempt is due; gives up after
    /// [`PING_ATTEMPTS_MAX`] attempts.
    fn retry_pings(&mut self, context: &mut Context<'_, FerryEvent>) {
        let reading_ns = context.now_ns();
        let now_ns = self.steady.advance(reading_ns);
        let Some(node) = self.node.as_mut() else { return };
        let due: Vec<u32> =
            self.pings.iter().filter(|(_, (_, at))| *at <= now_ns).map(|(target, _)| *target).collect();
        for index in due {
            let Some(name) = self.names.get(index as usize).cloned() else { continue };
            let Some((attempts, at)) = self.pings.get_mut(&index) else { continue };
            *attempts += 1;
            let attempt = *attempts;
            *at = now_ns.saturating_add(PING_RETRY_NS);
            if attempt > PING_ATTEMPTS_MAX {
                self.pings.remove(&index);
                let reason = format!("no answer after {PING_ATTEMPTS_MAX} attempts");
                context.emit(FerryEvent::PingSent { target: name, attempt, route: Err(reason) });
                continue;
            }
            let route =
                node.route_ping(reading_ns, NodeId::from_name(&name)).map_err(|error| error.to_string());
            context.emit(FerryEvent::PingSent { target: name, attempt, route });
        }
    }

    /// Dials `peer` over QUIC; its link comes up as the Initiator once QUIC's handshake
    /// completes, as a TCP link comes up once the connection is made.
    fn quic_dial(&mut self, reading_ns: u64, peer: u32) {
        let steady_ns = self.steady.advance(reading_ns);
        let (Some(quic), Some(node)) = (self.quic.as_mut(), self.node.as_mut()) else { return };
        match quic.dial(steady_ns, peer) {
            Ok(replaced) => {
                if let Some(LinkChange::Closed { up: true, .. }) = replaced {
                    node.link_down(reading_ns, u64::from(peer));
                }
            }
            // Only an endpoint out of connection ids refuses a dial; try again later.
            Err(_) => self.link_broken(steady_ns, peer),
        }
    }

    /// Sends the packets QUIC has ready and hands its link changes to the node. Returns
    /// whether there was a change (the node may then have more to send).
    fn pump_quic(&mut self, context: &mut Context<'_, FerryEvent>) -> bool {
        let reading_ns = context.now_ns();
        let steady_ns = self.steady.advance(reading_ns);
        let Some(quic) = self.quic.as_mut() else { return false };
        while let Some((peer, packet)) = quic.transmit(steady_ns) {
            let length = packet.len();
            context.send_described(peer, Bytes::from(packet), || format!("quic packet {length} B"));
        }
        let mut changed = false;
        let mut broken = Vec::new();
        while let Some(change) = quic.change(steady_ns) {
            changed = true;
            let Some(node) = self.node.as_mut() else { continue };
            match change {
                LinkChange::Accepted { peer } => {
                    node.link_up(reading_ns, u64::from(peer), LinkKind::Stream, Role::Responder);
                }
                LinkChange::Connected { peer } => {
                    if let Some((_, backoff)) = self.redial.get_mut(&peer) {
                        *backoff = REDIAL_NS_INITIAL;
                    }
                    node.link_up(reading_ns, u64::from(peer), LinkKind::Stream, Role::Initiator);
                }
                LinkChange::Received { peer, bytes } => {
                    node.handle_stream(reading_ns, u64::from(peer), &bytes)
                }
                LinkChange::Closed { peer, up } => {
                    if up {
                        node.link_down(reading_ns, u64::from(peer));
                    }
                    broken.push(peer);
                }
            }
        }
        for peer in broken {
            self.link_broken(steady_ns, peer);
        }
        changed
    }

    fn link_broken(&mut self, now_ns: u64, peer: u32) {
        if let Some((at, backoff)) = self.redial.get_mut(&peer) {
            *at = Some(now_ns.saturating_add(*backoff));
            *backoff = (*backoff * 2).min(REDIAL_NS_MAX);
        }
    }
}

/// True when `sent` is a `WalPush` carrying an entry whose origin is not `own`
/// (`PlantedBug::ForgetToRelay`).
/// Whether a Byzantine relay (`PlantedBug::AlterRelayed`) alters `message`: a push holding
/// another origin's entry it has not altered yet.
fn alters(message: &Message, own: NodeId) -> bool {
    let altered = |entry: &WalEntry| entry.operation.value().is_some_and(|value| value[..] == *ALTERED_VALUE);
    match message {
        Message::WalPush { entries } => entries.iter().any(|entry| entry.origin != own && !altered(entry)),
        _ => false,
    }
}

fn relays_another_origin(sent: &SentMessage, own: NodeId) -> bool {
    match &sent.message {
        Message::WalPush { entries } => entries.iter().any(|entry| entry.origin != own),
        _ => false,
    }
}

/// The write behind a register.
fn write_of_register(register: &Register) -> WriteId {
    WriteId {
        timestamp: register.timestamp,
        origin: register.origin,
        sequence: register.sequence,
        delete: register.is_tombstone(),
    }
}

fn node_deadline(node: Option<&Node>) -> Option<u64> {
    node.and_then(Node::poll_timeout)
}

impl Process for FerryNode {
    type Config = FerryConfig;
    type Command = Command;
    type Event = FerryEvent;

    fn boot(config: &FerryConfig, context: &mut Context<'_, FerryEvent>, disk: &[u8]) -> Self {
        let index = context.node() as usize;
        let name = config.names[index].clone();
        let mut session = SessionConfig::new(name, config.identities[index].clone());
        session.node_id = NodeId::from_name(&session.name);
        session.psk = config.psk;
        session.dh_memo = config.dh_memo.clone();
        let mut node_config = NodeConfig::new(session);
        node_config.pull_interval_ns = config.pull_interval_ns;
        node_config.routing = config.routing;
        node_config.compaction_tail_bytes_min = config.compaction_log_bytes;
        node_config.compaction_horizon_ns = config.compaction_horizon_ns;
        // Forgetting to relay, or altering what is relayed, needs to see what is sent.
        node_config.describe_sends = context.describes_sends()
            || config.planted_bug == Some(PlantedBug::ForgetToRelay)
            || config.planted_bug == Some(PlantedBug::AlterRelayed { node: context.node() });
        node_config.audit = config.audit.is_some();
        node_config.signature_memo = config.signature_memo.clone();
        let ids = Names::new(&config.names);
        let mut seed = [0u8; 32];
        context.rng().fill_bytes(&mut seed);
        let rng = Box::new(ChaCha8Rng::from_seed(seed));
        let links = PeerLinks::of(config, context.node());
        let mut process = match Node::recover(node_config, disk, rng) {
            Ok(node) => Self {
                node: Some(node),
                links: links.clone(),
                quic: None,
                redial: BTreeMap::new(),
                pings: BTreeMap::new(),
                steady: SteadyClock::new(),
                names: std::sync::Arc::clone(&config.names),
                ids,
                trace_values: config.trace_values,
                audit: config.audit.clone(),
                bug: config.planted_bug,
            },
            Err(error) => {
                context.emit(FerryEvent::StartFailed { reason: error.to_string() });
                Self {
                    node: None,
                    links: links.clone(),
                    quic: None,
                    redial: BTreeMap::new(),
                    pings: BTreeMap::new(),
                    steady: SteadyClock::new(),
                    names: std::sync::Arc::clone(&config.names),
                    ids,
                    trace_values: config.trace_values,
                    audit: config.audit.clone(),
                    bug: config.planted_bug,
                }
            }
        };
        if links.any(FerryLink::Quic) && process.node.is_some() {
            // Drawn after the node's own seed, so runs without QUIC draw what they did.
            let mut seed = [0u8; 32];
            context.rng().fill_bytes(&mut seed);
            match QuicLinks::new(seed, &config.identities[index].secret) {
                Ok(links) => process.quic = Some(links),
                Err(error) => {
                    context.emit(FerryEvent::StartFailed { reason: error.to_string() });
                    process.node = None;
                }
            }
        }
        if links.any(FerryLink::Stream) && process.node.is_some() {
            for peer in (context.node() + 1)..config.names.len() as u32 {
                if links.get(peer) == FerryLink::Stream {
                    process.redial.insert(peer, (None, REDIAL_NS_INITIAL));
                    context.connect(peer);
                }
            }
        }
        process.drain(context);
        process
    }

    fn on_message(&mut self, context: &mut Context<'_, FerryEvent>, from: u32, bytes: Bytes) {
        let now_ns = context.now_ns();
        if let Some(quic) = self.quic.as_mut().filter(|_| self.links.get(from) == FerryLink::Quic) {
            quic.handle_datagram(self.steady.advance(now_ns), from, &bytes);
        } else if let Some(node) = self.node.as_mut() {
            node.handle_received(now_ns, u64::from(from), bytes);
        }
        self.drain(context);
    }

    fn on_timer(&mut self, context: &mut Context<'_, FerryEvent>) {
        self.retry_pings(context);
        let now_ns = context.now_ns();
        let steady_ns = self.steady.advance(now_ns);
        let mut dials = Vec::new();
        for (peer, (at, _)) in &mut self.redial {
            if at.is_some_and(|at| at <= steady_ns) {
                *at = None;
                dials.push(*peer);
            }
        }
        for peer in dials {
            if self.links.get(peer) == FerryLink::Quic {
                self.quic_dial(now_ns, peer);
            } else {
                context.connect(peer);
            }
        }
        if let Some(quic) = self.quic.as_mut() {
            quic.handle_timeout(steady_ns);
        }
        if let Some(node) = self.node.as_mut() {
            node.handle_timeout(now_ns);
        }
        self.drain(context);
    }

    fn on_disk_synced(&mut self, context: &mut Context<'_, FerryEvent>, sync_id: u64) {
        let now_ns = context.now_ns();
        if let Some(node) = self.node.as_mut() {
            node.handle_synced(now_ns, sync_id);
        }
        self.drain(context);
    }

    fn on_link_up(&mut self, context: &mut Context<'_, FerryEvent>, peer: u32, initiator: bool) {
        let now_ns = context.now_ns();
        let link = self.links.get(peer);
        if link == FerryLink::Quic {
            // A neighbour on the datagram network: the lower index dials it over QUIC, the
            // higher waits for the dial (its link comes up when QUIC accepts it).
            if initiator && self.node.is_some() {
                self.redial.insert(peer, (None, REDIAL_NS_INITIAL));
                self.quic_dial(now_ns, peer);
            }
            return self.drain(context);
        }
        if let Some((at, backoff)) = self.redial.get_mut(&peer) {
            *at = None;
            *backoff = REDIAL_NS_INITIAL;
        }
        let kind = if link == FerryLink::Stream { LinkKind::Stream } else { LinkKind::Datagram };
        let role = if initiator { Role::Initiator } else { Role::Responder };
        if let Some(node) = self.node.as_mut() {
            node.link_up(now_ns, u64::from(peer), kind, role);
        }
        self.drain(context);
    }

    fn on_link_down(&mut self, context: &mut Context<'_, FerryEvent>, peer: u32) {
        let now_ns = context.now_ns();
        if let Some(node) = self.node.as_mut() {
            node.link_down(now_ns, u64::from(peer));
        }
        let steady_ns = self.steady.advance(now_ns);
        self.link_broken(steady_ns, peer);
        self.drain(context);
    }

    fn on_command(&mut self, context: &mut Context<'_, FerryEvent>, command: Command) {
        let now_ns = context.now_ns();
        let Some(node) = self.node.as_mut() else { return };
        // What the node held of the key before writing, for the causality checker.
        let seen = match (&self.audit, &command) {
            (Some(_), Command::Put { key, .. } | Command::Delete { key }) => {
                Some((key.clone(), node.store().register(key).map(write_of_register)))
            }
            _ => None,
        };
        // How the node stamped it: counted by the node, compared around the write.
        let stamps = |node: &Node| (node.stats().clock_restarts, node.stats().writes_stamped_above_held);
        let stamps_before = stamps(node);
        let result = match command {
            Command::Put { key, value } => node.put(now_ns, key, value),
            Command::Delete { key } => node.delete(now_ns, key),
            Command::Ping { target } => {
                self.pings.insert(target, (0, self.steady.advance(now_ns)));
                self.retry_pings(context);
                Ok(0)
            }
        };
        match result {
            Ok(sequence) => {
                if let (Some(log), Some((key, seen)), Some(node)) = (&self.audit, seen, self.node.as_ref())
                    && let Some(entry) = node.entry(node.node_id(), sequence)
                {
                    let issued = WriteId {
                        timestamp: entry.timestamp,
                        origin: entry.origin,
                        sequence,
                        delete: entry.operation.value().is_none(),
                    };
                    let stamps_after = stamps(node);
                    let clock_restarted = stamps_after.0 > stamps_before.0;
                    let stamped_above_held = stamps_after.1 > stamps_before.1;
                    let write = IssuedWrite { key, seen, issued, clock_restarted, stamped_above_held };
                    log.push(context.node(), AuditRecord::Issued(write));
                }
            }
            Err(error) => context.emit(FerryEvent::WriteRefused { reason: error.to_string() }),
        }
        self.drain(context);
    }

    fn describe_message(bytes: &[u8]) -> String {
        // Skip the varint length prefix; the envelope header names the type in clear.
        let start = bytes.iter().position(|byte| byte & 0x80 == 0).map_or(bytes.len(), |index| index + 1);
        match Envelope::decode(Bytes::copy_from_slice(&bytes[start.min(bytes.len())..])) {
            // A handshake under a cluster secret says so (PROTOCOL.md 6.10).
            Ok(envelope) if envelope.header.flags.psk() => format!("{:?}(psk)", envelope.header.message_type),
            Ok(envelope) => format!("{:?}", envelope.header.message_type),
            Err(_) => "invalid".to_owned(),
        }
    }
}

/// An acknowledged write the checker holds every node to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedWrite {
    /// The entry.
    pub entry: WalEntry,
    /// The node that acknowledged it.
    pub node: u32,
    /// When.
    pub at_ns: u64,
}

/// A violated expectation, with enough detail to find it in the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time.
    pub at_ns: u64,
    /// What went wrong.
    pub detail: String,
}

/// Watches a ferry cluster: records acknowledged writes and checks invariants.
///
/// Boot the nodes with [`audit_log`](Self::audit_log) as [`FerryConfig::audit`] for the
/// causality and session checks; without it they see nothing and pass.
#[derive(Debug, Default)]
pub struct FerryChecker {
    /// Every acknowledged write, by `(origin, sequence)`.
    pub acked: BTreeMap<(NodeId, u64), AckedWrite>,
    /// Continuous invariant violations seen so far.
    pub violations: Vec<Violation>,
    /// Routed pings requested, answered and abandoned: `(from, to)` → state.
    pub pings: BTreeMap<(u32, String), PingOutcome>,
    /// Last-writer-wins conflicts resolved, counted once per node that resolved one (a
    /// conflict seen by three nodes counts three); recovery's replay does not count again.
    pub lww_conflicts: u64,
    /// Workload writes a node refused (a key or value over its limit, a full disk); nothing
    /// of them was acknowledged.
    pub writes_refused: u64,
    /// WalPush messages sent, and the entries they carried (repeats included), by all nodes
    /// in every incarnation.
    pub pushes: u64,
    /// See [`pushes`](Self::pushes).
    pub entries_pushed: u64,
    /// Lazy outboxes that turned eager again because their neighbour lacked entries for a
    /// pull interval: how often the broadcast tree had to mend (PROTOCOL.md 8.6).
    pub grafts: u64,
    /// Per node, the most entries its log held (above its compaction base) and the most
    /// bytes its disk held, seen after any event of that node.
    pub peaks: BTreeMap<u32, (u64, usize)>,
    /// Compactions every node made, in every incarnation (PROTOCOL.md 8.11).
    pub compactions: u64,
    /// Snapshots nodes received, verified and merged.
    pub snapshots_applied: u64,
    /// Snapshots nodes threw away, with the first few reasons.
    pub snapshots_refused: u64,
    /// Per node, its state digest (none while it is down) and when it last changed: the
    /// moment the node reached the state it ends the run with.
    pub settled: BTreeMap<u32, (Option<Digest>, u64)>,
    /// Every local write was newer than what its node had seen of its key.
    pub causal: CausalChecker,
    /// Every session accepted each envelope once, while it lasted, and nothing in plaintext.
    pub sessions: SessionChecker,
    /// Where the nodes report to `causal` and `sessions`.
    audit: AuditLog,
}

/// Invariant (PROTOCOL.md 8.10): a relay forwards a routed message with one hop less and
/// never one that arrived with none left, so a message caught in a routing loop dies. Returns
/// what node `node` did wrong relaying `(source, target)`, if anything.
fn relay_violation(
    names: &[String],
    node: u32,
    (source, target): (NodeId, NodeId),
    hops_left_received: u8,
    hops_left_sent: u8,
) -> Option<String> {
    if hops_left_received.checked_sub(1) == Some(hops_left_sent) {
        return None;
    }
    let ids = Names::new(names);
    Some(format!(
        "node {} relayed a routed message {} -> {} that arrived with hops_left {hops_left_received} \
         onward with hops_left {hops_left_sent}",
        node_name(names, node),
        ids.show(source),
        ids.show(target),
    ))
}

/// What became of a routed ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingOutcome {
    /// Still being tried.
    Pending,
    /// Answered after this round trip.
    Answered {
        /// Round trip on the pinging node's clock.
        round_trip_ns: u64,
    },
    /// Abandoned.
    GaveUp,
}

impl FerryChecker {
    /// The log to pass as [`FerryConfig::audit`].
    #[must_use]
    pub fn audit_log(&self) -> AuditLog {
        self.audit.clone()
    }

    /// Looks at the events and audits of the last step. Call after every event.
    pub fn observe(&mut self, simulation: &Simulation<FerryNode>) {
        let names = &simulation.config().names;
        for (node, event) in simulation.events_last() {
            match event {
                FerryEvent::Node(Event::Acked { entry }) => {
                    let delete = entry.operation.value().is_none();
                    let (timestamp, origin, sequence) = (entry.timestamp, entry.origin, entry.sequence);
                    self.causal.acknowledged(*node, WriteId { timestamp, origin, sequence, delete });
                    let key = (entry.origin, entry.sequence);
                    let write = AckedWrite { entry: entry.clone(), node: *node, at_ns: simulation.now_ns() };
                    if let Some(previous) = self.acked.insert(key, write)
                        && previous.entry != entry.clone()
                    {
                        self.violations.push(Violation {
                            at_ns: simulation.now_ns(),
                            detail: format!(
                                "node {} acknowledged {}#{} twice with different contents",
                                simulation.config().names[*node as usize],
                                entry.origin,
                                entry.sequence
                            ),
                        });
                    }
                }
                FerryEvent::Node(Event::Compacted { .. }) => self.compactions += 1,
                FerryEvent::Node(Event::SnapshotApplied { .. }) => self.snapshots_applied += 1,
                FerryEvent::Node(Event::SnapshotRefused { .. }) => self.snapshots_refused += 1,
                FerryEvent::Node(Event::Recovered { .. }) => {
                    self.causal.restarted(*node);
                    self.sessions.restarted(*node);
                    self.check_origin_durable(simulation, *node);
                }
                FerryEvent::PingSent { target, route, attempt } => {
                    let outcome = if route.is_err() && *attempt > PING_ATTEMPTS_MAX {
                        PingOutcome::GaveUp
                    } else {
                        PingOutcome::Pending
                    };
                    let entry = self.pings.entry((*node, target.clone())).or_insert(PingOutcome::Pending);
                    if *entry == PingOutcome::Pending {
                        *entry = outcome;
                    }
                }
                FerryEvent::PingAnswered { target, round_trip_ns } => {
                    self.pings.insert(
                        (*node, target.clone()),
                        PingOutcome::Answered { round_trip_ns: *round_trip_ns },
                    );
                }
                FerryEvent::Conflict { .. } => self.lww_conflicts += 1,
                FerryEvent::WriteRefused { .. } => self.writes_refused += 1,
                FerryEvent::StartFailed { reason } => self.violations.push(Violation {
                    at_ns: simulation.now_ns(),
                    detail: format!(
                        "node {} could not start: {reason}",
                        simulation.config().names[*node as usize]
                    ),
                }),
                _ => {}
            }
        }
        let touched: Vec<u32> = simulation.events_last().iter().map(|(node, _)| *node).collect();
        for node in touched {
            self.observe_peak(simulation, node);
            let digest = simulation.process(node).and_then(FerryNode::node).map(Node::digest);
            let at_ns = simulation.now_ns();
            let settled = self.settled.entry(node).or_insert((digest, at_ns));
            if settled.0 != digest {
                *settled = (digest, at_ns);
            }
        }
        let at_ns = simulation.now_ns();
        for (node, record) in self.audit.take() {
            match record {
                AuditRecord::Issued(write) => self.causal.issued(at_ns, node, &write, names),
                AuditRecord::Node(Audit::Pushed { entries_count, .. }) => {
                    self.pushes += 1;
                    self.entries_pushed += entries_count;
                }
                AuditRecord::Node(Audit::Grafted { .. }) => self.grafts += 1,
                AuditRecord::Node(Audit::RoutedRelayed {
                    source,
                    target,
                    hops_left_received,
                    hops_left_sent,
                }) => {
                    if let Some(detail) =
                        relay_violation(names, node, (source, target), hops_left_received, hops_left_sent)
                    {
                        self.violations.push(Violation { at_ns, detail });
                    }
                }
                AuditRecord::Node(audit) => self.sessions.audit(at_ns, node, &audit, names),
            }
        }
    }

    /// Messages every node sent so far, in every incarnation, per type (types never sent
    /// omitted). Counted only for nodes booted with [`audit_log`](Self::audit_log).
    #[must_use]
    pub fn sent_by_type(&self) -> Vec<(MessageType, u64)> {
        self.audit.sent_by_type()
    }

    /// Bytes of the frames sent per type ([`AuditLog::sent_bytes_by_type`]), counted like
    /// [`sent_by_type`](Self::sent_by_type).
    #[must_use]
    pub fn sent_bytes_by_type(&self) -> Vec<(MessageType, u64)> {
        self.audit.sent_bytes_by_type()
    }

    /// Raises `node`'s peaks to what its log and disk hold now.
    pub fn observe_peak(&mut self, simulation: &Simulation<FerryNode>, node: u32) {
        let entries =
            simulation.process(node).and_then(FerryNode::node).map_or(0, |protocol| protocol.log_entries().0);
        let peak = self.peaks.entry(node).or_default();
        peak.0 = peak.0.max(entries);
        peak.1 = peak.1.max(simulation.disk_bytes(node));
    }

    /// Invariant: a restarted origin still holds every write it acknowledged.
    fn check_origin_durable(&mut self, simulation: &Simulation<FerryNode>, node: u32) {
        let Some(protocol) = simulation.process(node).and_then(FerryNode::node) else { return };
        let origin = protocol.node_id();
        // Right after recovery everything read from the disk is held (it becomes durable
        // again once the startup sync completes).
        let durable = protocol.version_vector().get(origin);
        let highest_acked =
            self.acked.range((origin, 0)..=(origin, u64::MAX)).next_back().map(|(key, _)| key.1);
        if let Some(highest) = highest_acked
            && durable < highest
        {
            self.violations.push(Violation {
                at_ns: simulation.now_ns(),
                detail: format!(
                    "node {} restarted holding {durable} of its own writes but had acknowledged #{highest}",
                    simulation.config().names[node as usize]
                ),
            });
        }
    }

    /// True while some routed ping is neither answered nor abandoned.
    #[must_use]
    pub fn pings_pending(&self) -> bool {
        self.pings.values().any(|outcome| *outcome == PingOutcome::Pending)
    }

    /// True when every node runs and all digests are equal.
    #[must_use]
    pub fn converged(simulation: &Simulation<FerryNode>) -> bool {
        let mut digest: Option<Digest> = None;
        for node in 0..simulation.nodes_count() {
            let Some(protocol) = simulation.process(node).and_then(FerryNode::node) else { return false };
            let current = protocol.digest();
            match digest {
                None => digest = Some(current),
                Some(first) if first != current => return false,
                Some(_) => {}
            }
        }
        true
    }

    /// No data loss: every acknowledged write is on every node, unless a later write to the
    /// same key superseded it under last-writer-wins ([`missing`] says when). Returns one
    /// line per violation.
    #[must_use]
    pub fn data_loss(&self, simulation: &Simulation<FerryNode>) -> Vec<String> {
        self.data_losses(simulation).into_iter().map(|loss| loss.detail).collect()
    }

    /// As [`FerryChecker::data_loss`], each problem with its [`LossKind`].
    #[must_use]
    pub fn data_losses(&self, simulation: &Simulation<FerryNode>) -> Vec<Loss> {
        let newest_deletes = self.newest_deletes();
        let mut problems = Vec::new();
        for node in 0..simulation.nodes_count() {
            let name = &simulation.config().names[node as usize];
            let Some(protocol) = simulation.process(node).and_then(FerryNode::node) else {
                problems
                    .push(Loss { kind: LossKind::NodeDown, detail: format!("node {name} is not running") });
                continue;
            };
            for write in self.acked.values() {
                let entry = &write.entry;
                let key = entry.operation.key();
                let newest_delete = newest_deletes.get(&key[..]).copied();
                let Some((kind, reason)) = missing_kind(entry, protocol.store(), newest_delete) else {
                    continue;
                };
                let detail = format!(
                    "node {name} lacks acknowledged write {}#{} ({reason}) to key {}, acknowledged by {} at {}",
                    entry.origin,
                    entry.sequence,
                    shown(key),
                    simulation.config().names[write.node as usize],
                    format_ns(write.at_ns),
                );
                problems.push(Loss { kind, detail });
                if problems.len() >= 20 {
                    return problems;
                }
            }
        }
        problems
    }

    /// The version of the newest acknowledged delete of each key.
    fn newest_deletes(&self) -> BTreeMap<&[u8], (Timestamp, NodeId)> {
        let mut newest: BTreeMap<&[u8], (Timestamp, NodeId)> = BTreeMap::new();
        for write in self.acked.values() {
            let entry = &write.entry;
            if entry.operation.value().is_none() {
                let version = newest.entry(entry.operation.key()).or_insert_with(|| entry.version());
                *version = (*version).max(entry.version());
            }
        }
        newest
    }
}

/// Why `store` fails to reflect the acknowledged write `entry`, or `None` when it reflects
/// it: the key's register (a tombstone too) is `entry` itself or a write of higher version.
/// A key with no register at all is no loss when `entry` is a delete, or when
/// `newest_delete`, the newest acknowledged delete of the key, outranks `entry`: absence is
/// what that delete asked for. A register older than an acknowledged delete is a key that
/// came back from the dead, and a loss.
#[must_use]
pub fn missing(
    entry: &WalEntry,
    store: &Store,
    newest_delete: Option<(Timestamp, NodeId)>,
) -> Option<String> {
    missing_kind(entry, store, newest_delete).map(|(_, reason)| reason)
}

/// As [`missing`], with the kind of the loss.
#[must_use]
pub fn missing_kind(
    entry: &WalEntry,
    store: &Store,
    newest_delete: Option<(Timestamp, NodeId)>,
) -> Option<(LossKind, String)> {
    let delete = entry.operation.value().is_none();
    let Some(register) = store.register(entry.operation.key()) else {
        let deleted = delete || newest_delete.is_some_and(|version| version > entry.version());
        return (!deleted).then(|| (LossKind::KeyAbsent, "key absent".to_owned()));
    };
    let (timestamp, origin) = register.version();
    match register.version().cmp(&entry.version()) {
        std::cmp::Ordering::Greater => None,
        std::cmp::Ordering::Equal if register.value.as_ref() == entry.operation.value() => None,
        std::cmp::Ordering::Equal => Some((
            LossKind::OtherValue,
            format!("node holds another write of version {timestamp} from {origin}"),
        )),
        std::cmp::Ordering::Less if delete && !register.is_tombstone() => Some((
            LossKind::Resurrected,
            format!("the key came back after the delete: node holds older put {timestamp} from {origin}"),
        )),
        std::cmp::Ordering::Less => {
            Some((LossKind::OlderVersion, format!("node holds older version {timestamp} from {origin}")))
        }
    }
}

/// One problem [`FerryChecker::data_losses`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// What kind of loss.
    pub kind: LossKind,
    /// One line: which node, which write, why.
    pub detail: String,
}

/// How an acknowledged write is missing from a node: a stable name for each way, so that
/// tools (`ferry shrink`) can tell one failure from another without reading the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LossKind {
    /// The node is not running at the end.
    NodeDown,
    /// The key is absent and no newer acknowledged delete explains it.
    KeyAbsent,
    /// The node holds another value under the same version.
    OtherValue,
    /// An acknowledged delete was undone: the node holds an older put.
    Resurrected,
    /// The node holds an older version of the key.
    OlderVersion,
}

impl LossKind {
    /// `node-down`, `key-absent`, `other-value`, `resurrected`, `older-version`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            LossKind::NodeDown => "node-down",
            LossKind::KeyAbsent => "key-absent",
            LossKind::OtherValue => "other-value",
            LossKind::Resurrected => "resurrected",
            LossKind::OlderVersion => "older-version",
        }
    }
}

#[cfg(test)]
mod tests {
    use ferry_protocol::Operation;

    use super::*;

    fn entry(origin: &str, sequence: u64, physical_ms: u64, value: Option<&'static str>) -> WalEntry {
        let key = Bytes::from_static(b"k");
        let operation = match value {
            Some(value) => Operation::Put { key, value: Bytes::from_static(value.as_bytes()) },
            None => Operation::Delete { key },
        };
        WalEntry {
            origin: NodeId::from_name(origin),
            sequence,
            timestamp: Timestamp::new(physical_ms, 0),
            operation,
            proof: None,
        }
    }

    fn store(entries: &[&WalEntry]) -> Store {
        let mut store = Store::new();
        for entry in entries {
            store.apply(entry);
        }
        store
    }

    #[test]
    fn a_relay_that_keeps_the_hop_limit_is_caught() {
        // Goal: the hop-limit invariant rejects a relay that does not count down (a routing
        // loop would then carry the message until the routes change) and one that forwards
        // a spent message. Method: hand-built relays, one right and three wrong.
        let names = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let ends = (NodeId::from_name("a"), NodeId::from_name("c"));
        assert_eq!(relay_violation(&names, 1, ends, 16, 15), None);
        assert_eq!(relay_violation(&names, 1, ends, 1, 0), None);
        assert_eq!(
            relay_violation(&names, 1, ends, 16, 16).as_deref(),
            Some(
                "node b relayed a routed message a -> c that arrived with hops_left 16 onward with hops_left 16"
            )
        );
        assert!(relay_violation(&names, 1, ends, 0, 0).is_some(), "a spent message is dropped");
        assert!(relay_violation(&names, 1, ends, 5, 3).is_some(), "one hop is one less");
    }

    #[test]
    fn a_winning_delete_is_no_loss() {
        // Goal: deletes are writes like any other. Method: a put, then an acknowledged delete
        // of the key; the tombstone reflects both, and a store that kept no tombstone still
        // reflects the delete and, through the newest acknowledged delete, the put.
        let put = entry("a", 1, 1000, Some("v"));
        let delete = entry("b", 1, 2000, None);
        let both = store(&[&put, &delete]);
        assert_eq!(missing(&put, &both, Some(delete.version())), None);
        assert_eq!(missing(&delete, &both, Some(delete.version())), None);
        let empty = Store::new();
        assert_eq!(missing(&delete, &empty, Some(delete.version())), None);
        assert_eq!(missing(&put, &empty, Some(delete.version())), None);
        assert_eq!(missing(&put, &empty, None), Some("key absent".to_owned()));
    }

    #[test]
    fn a_key_back_after_its_delete_is_a_loss() {
        // Goal: resurrection is caught. Method: the delete was acknowledged, but the node
        // holds only the older put (the tombstone was lost, or the put was applied over it).
        let put = entry("a", 1, 1000, Some("v"));
        let delete = entry("b", 1, 2000, None);
        let resurrected = store(&[&put]);
        let expected = format!(
            "the key came back after the delete: node holds older put {} from {}",
            put.timestamp, put.origin
        );
        assert_eq!(missing(&delete, &resurrected, Some(delete.version())), Some(expected));
        // The put itself is fine there: it is the newest write that node holds.
        assert_eq!(missing(&put, &resurrected, Some(delete.version())), None);
    }

    #[test]
    fn a_different_write_of_the_same_version_is_a_loss() {
        // Goal: an equal version must be the same write. Method: a put and a delete that
        // share a version (a buggy origin); each store holds the other.
        let put = entry("a", 1, 1000, Some("v"));
        let delete = entry("a", 1, 1000, None);
        let reason = format!("node holds another write of version {} from {}", put.timestamp, put.origin);
        assert_eq!(missing(&put, &store(&[&delete]), None), Some(reason.clone()));
        assert_eq!(missing(&delete, &store(&[&put]), None), Some(reason));
    }
}

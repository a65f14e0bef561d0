//! The discrete-event loop: virtual time, the event queue, and how process outputs,
//! network delivery, disk syncs and faults turn into events.
//!
//! Events are ordered by `(virtual time, insertion sequence)`, so ties resolve the same way
//! on every run. Virtual time jumps from event to event; there is no tick. Everything is
//! single-threaded and every random draw comes from a stream of the run seed.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use bytes::Bytes;
use hashbrown::hash_map::Entry;
use rand_chacha::ChaCha8Rng;

use crate::clock::NodeClock;
use crate::disk::{DiskConfig, ReplaceStep, VirtualDisk};
use crate::fault::{DiskFaultKind, Fault, Named};
use crate::network::{
    self, DropReason, LayerId, LinkParams, Network, QUEUE_MESSAGES_MAX_DEFAULT, Topology, Transport,
};
use crate::process::{Action, Context, Outputs, Process};
use crate::queue::EventQueue;
use crate::random::{self, Stream};
use crate::trace::{LineFields, Trace, TraceRecord};

/// Default bound on events per run: a runaway protocol stops instead of spinning forever.
pub const EVENTS_MAX_DEFAULT: u64 = 2_000_000_000;

/// Directed pairs with messages in flight tracked for reorder detection; messages of other
/// pairs are not checked for overtaking, and at the bound a pair's count may be cut short
/// (the counter is coverage information, never part of the trace).
pub const REORDER_PAIRS_MAX: usize = 1 << 18;

/// Delivered messages kept per directed link for `replay` faults (oldest forgotten first).
/// Kept only in runs that schedule a replay.
pub const REPLAY_HISTORY_MESSAGES_MAX: usize = 32;

/// Messages one clog holds; past it, new ones are dropped as `queue-full`.
pub const CLOG_HELD_MESSAGES_MAX: usize = 1 << 16;

/// Events waiting for one paused node; past it, new deliveries are dropped as
/// `queue-full` (timers, disk completions and commands are bounded at their source).
pub const PAUSE_DEFERRED_EVENTS_MAX: usize = 1 << 16;

/// Instant disk faults waiting for their operation, per node; more are ignored.
pub const DISK_FAULTS_PENDING_MAX: usize = 64;

/// Most garbage bytes a corruption appends to a message.
pub const CORRUPT_GARBAGE_BYTES_MAX: u64 = 16;

/// Most bits one corruption flips.
pub const CORRUPT_FLIPPED_BITS_MAX: u64 = 4;

/// Everything that shapes a run except the hosted process.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The run seed; every random choice derives from it.
    pub seed: u64,
    /// Node names, by index.
    pub names: Vec<String>,
    /// Which pairs are linked.
    pub topology: Topology,
    /// How links carry messages.
    pub transport: Transport,
    /// Links carried otherwise than `transport`, by pair (either order): a run may mix
    /// datagram and stream links. Empty by default.
    pub link_transports: BTreeMap<(u32, u32), Transport>,
    /// Default link behaviour.
    pub link: LinkParams,
    /// Disk behaviour.
    pub disk: DiskConfig,
    /// Each clock starts off by a uniform amount in `±clock_skew_ns`, counted from
    /// `clock_skew_ns` after its epoch so that no clock starts before it.
    pub clock_skew_ns: u64,
    /// Each clock runs fast or slow by a uniform amount in `±clock_drift_ppm`.
    pub clock_drift_ppm: u64,
    /// Stop after this many events.
    pub events_max: u64,
}

impl SimConfig {
    /// A healthy full mesh of `names` with default links and disks.
    #[must_use]
    pub fn new(seed: u64, names: Vec<String>) -> Self {
        Self {
            seed,
            names,
            topology: Topology::FullMesh,
            transport: Transport::Datagram,
            link_transports: BTreeMap::new(),
            link: LinkParams::default(),
            disk: DiskConfig::default(),
            clock_skew_ns: 0,
            clock_drift_ppm: 0,
            events_max: EVENTS_MAX_DEFAULT,
        }
    }
}

/// One node's messages in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeTraffic {
    /// Messages it handed to the network (duplicates not counted).
    pub sent: u64,
    /// Messages delivered to it (duplicates counted).
    pub received: u64,
    /// Messages to it that were dropped, for any reason.
    pub lost: u64,
}

/// Counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Per node, by index: its messages sent, received and lost on the way to it.
    pub per_node: Vec<NodeTraffic>,
    /// Events processed.
    pub events: u64,
    /// Messages handed to the network (duplicates not counted).
    pub sent: u64,
    /// Messages delivered to a process (duplicates counted).
    pub delivered: u64,
    /// Messages dropped, for any reason.
    pub dropped: u64,
    /// Extra copies the network made.
    pub duplicated: u64,
    /// Messages delivered after one sent later on the same directed link.
    pub reordered: u64,
    /// Drops by reason name.
    pub drops_by_reason: BTreeMap<&'static str, u64>,
    /// Scheduled faults (scripted or drawn by chaos) applied, by kind. The liveness
    /// phase's own heals and restarts are not counted here.
    pub faults_by_kind: BTreeMap<&'static str, u64>,
    /// Time-bounded faults that reached their end, by kind.
    pub fault_ends_by_kind: BTreeMap<&'static str, u64>,
    /// What the liveness phase did (`heal`, `restart`), by kind.
    pub liveness_by_kind: BTreeMap<&'static str, u64>,
    /// How long each kind of fault was in force, summed over its occurrences, for faults
    /// that have ended (see [`Simulation::fault_active_ns`] for the running total).
    /// Instant faults (`clock-jump`, `break`, `heal`, `restart`) do not appear.
    pub fault_active_ns: BTreeMap<&'static str, u64>,
    /// Crashes that lost unsynced bytes.
    pub crashes_losing_writes: u64,
    /// Crashes that left a torn tail.
    pub crashes_torn: u64,
    /// Restarts that read a flipped bit.
    pub corrupt_reads: u64,
    /// Messages a `corrupt` fault damaged.
    pub corrupted: u64,
    /// Messages a `replay` fault delivered again.
    pub replayed: u64,
    /// Messages a clog held and released.
    pub clog_released: u64,
    /// Messages that waited behind another on a bandwidth-limited link.
    pub bandwidth_queued: u64,
    /// Events that waited for a paused node.
    pub pause_deferred: u64,
    /// Syncs that reported failure.
    pub sync_failures: u64,
    /// Appends refused by a full disk.
    pub appends_refused: u64,
    /// Appends that landed at the wrong offset.
    pub misdirected_appends: u64,
    /// Replaces of a node's whole log (compactions).
    pub replaces: u64,
    /// Crashes that hit a replace before its rename: the old log survived.
    pub crashes_before_rename: u64,
    /// Crashes that hit a replace between its rename and its directory fsync.
    pub crashes_before_directory_sync: u64,
}

impl Stats {
    /// Which fault kinds actually happened, for coverage reports: network effects
    /// (`loss`, `duplicate`, `reorder`, `partition`, `cut`, ...), disk effects
    /// (`lost-unsynced`, `torn-write`, `corrupt-read`) and applied faults.
    #[must_use]
    pub fn coverage(&self) -> BTreeMap<&'static str, u64> {
        let mut coverage = BTreeMap::new();
        for (reason, count) in &self.drops_by_reason {
            coverage.insert(*reason, *count);
        }
        for (kind, count) in &self.faults_by_kind {
            *coverage.entry(*kind).or_insert(0) += *count;
        }
        let extra = [
            ("duplicate", self.duplicated),
            ("reorder", self.reordered),
            ("lost-unsynced", self.crashes_losing_writes),
            ("torn-write", self.crashes_torn),
            ("corrupt-read", self.corrupt_reads),
            ("corrupted-message", self.corrupted),
            ("replayed-message", self.replayed),
            ("clog-released", self.clog_released),
            ("bandwidth-queued", self.bandwidth_queued),
            ("pause-deferred", self.pause_deferred),
            ("sync-failed", self.sync_failures),
            ("append-refused", self.appends_refused),
            ("misdirected-append", self.misdirected_appends),
            ("crash-before-rename", self.crashes_before_rename),
            ("crash-before-directory-sync", self.crashes_before_directory_sync),
        ];
        for (name, count) in extra {
            if count > 0 {
                *coverage.entry(name).or_insert(0) += count;
            }
        }
        coverage
    }
}

/// A message on its way.
#[derive(Clone)]
struct InFlight {
    from: u32,
    to: u32,
    message_id: u64,
    bytes: Bytes,
    from_incarnation: u64,
    to_incarnation: u64,
    /// Stream connection epoch; 0 for datagrams.
    epoch: u64,
}

/// What the queue holds: 16 bytes, which move in registers. A message waits in [`Mail`] and
/// the event names its slot; a command (as large as its payload) and the events that come
/// once per fsync or fault ([`Rare`]) are boxed. The queue moves each event several times
/// between its push and its handling: an 80-byte event was a fifth of a gossip run's time,
/// and a 32-byte one, passed through memory, still stalled every push on reading back what
/// had just been written.
enum Event<C> {
    Deliver { to: u32, slot: u32 },
    Timer { node: u32, generation: u64 },
    Command { node: u32, command: Box<C> },
    Rare(Box<Rare>),
}

/// Events far fewer than messages and timers.
enum Rare {
    Synced { node: u32, incarnation: u64, sync_id: u64, length_bytes: usize },
    Connect { from: u32, to: u32, from_incarnation: u64, to_incarnation: u64 },
    Fault { fault: Fault, until_ns: Option<u64> },
    FaultEnd { layer: LayerId, fault: Fault, since_ns: u64 },
    SyncFailed { node: u32, incarnation: u64, sync_id: u64 },
    RestartFromDisk { node: u32, incarnation: u64 },
}

// The point of `Mail` and the boxes: keep it so.
const _: () = assert!(std::mem::size_of::<Event<[u8; 64]>>() <= 16);

impl<C> Event<C> {
    /// The node that handles this event, for pauses; `None` for faults.
    fn node(&self, paused: impl Fn(u32) -> bool) -> Option<u32> {
        match self {
            Event::Deliver { to, .. } => Some(*to),
            Event::Timer { node, .. } | Event::Command { node, .. } => Some(*node),
            Event::Rare(rare) => match **rare {
                Rare::Synced { node, .. } | Rare::SyncFailed { node, .. } => Some(node),
                Rare::Connect { from, to, .. } => Some(if paused(from) { from } else { to }),
                Rare::Fault { .. } | Rare::FaultEnd { .. } | Rare::RestartFromDisk { .. } => None,
            },
        }
    }
}

/// Messages on their way, each in a slot that its [`Event::Deliver`] names until it is
/// delivered or dropped; freed slots are reused, so the slab is as large as the most messages
/// ever in flight at once.
#[derive(Default)]
struct Mail {
    slots: Vec<Option<InFlight>>,
    free: Vec<u32>,
}

impl Mail {
    /// Keeps `message`; returns its slot.
    #[inline(always)]
    fn post(&mut self, message: InFlight) -> u32 {
        if let Some(slot) = self.free.pop() {
            self.slots[slot as usize] = Some(message);
            slot
        } else {
            self.slots.push(Some(message));
            // More messages in flight than a u32 counts would not fit in memory.
            (self.slots.len() - 1) as u32
        }
    }

    /// Takes the message in `slot` out, freeing it. Every event names a slot that holds its
    /// message, taken once: a slot without one is a simulator bug.
    #[inline(always)]
    fn collect(&mut self, slot: u32) -> InFlight {
        let message = self.slots[slot as usize].take().expect("a delivery's slot holds its message");
        self.free.push(slot);
        message
    }
}

/// Who applied a fault, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Scheduled by the caller: the scenario's faults or chaos.
    Scheduled,
    /// The liveness phase.
    Liveness,
}

/// A fixed, seedless hasher for maps whose iteration order never escapes.
#[derive(Default, Clone, Copy)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }
}

/// Up to this many nodes, reorder detection keeps a table of every directed pair (8 bytes a
/// pair: 512 KiB at 256 nodes) instead of a map of the pairs with messages in flight.
pub const REORDER_DENSE_NODES_MAX: usize = 256;

/// Reorder detection: per directed pair, the highest message id delivered so far; a message
/// delivered below it was overtaken. Message ids grow with every send, so a message sent
/// after every earlier one of its pair arrived has a higher id than any delivered.
///
/// In a small simulation that is a table of every pair, looked up by index. In a large one
/// the map keeps only the pairs with messages in flight, with how many are: a pair's entry
/// goes when its last message in flight arrives (every later one has a higher id than any
/// delivered, so it could not count as overtaken anyway). Memory then follows the messages
/// in flight, not every pair that ever talked (a 1,000-node gossip run has a million). Both
/// answer alike as long as the map tracks every pair with a message in flight, which
/// [`REORDER_PAIRS_MAX`] allows up to 512 nodes.
enum Flows {
    Dense { nodes: usize, highest_delivered: Vec<u64> },
    Sparse(hashbrown::HashMap<u64, Flow, BuildHasherDefault<PairHasher>>),
}

/// A directed pair as one word: one round of the hasher instead of two.
fn pair_key(from: u32, to: u32) -> u64 {
    u64::from(from) << 32 | u64::from(to)
}

#[derive(Clone, Copy)]
struct Flow {
    highest_delivered: u64,
    in_flight: u32,
}

impl Flows {
    /// Reorder detection among `nodes` nodes.
    fn new(nodes: usize) -> Self {
        if nodes <= REORDER_DENSE_NODES_MAX {
            Self::Dense { nodes, highest_delivered: vec![0; nodes * nodes] }
        } else {
            Self::Sparse(hashbrown::HashMap::default())
        }
    }

    /// A message from `from` to `to` is on its way.
    fn departed(&mut self, from: u32, to: u32) {
        let Self::Sparse(map) = self else { return };
        let tracked = map.len();
        match map.entry(pair_key(from, to)) {
            Entry::Occupied(mut flow) => flow.get_mut().in_flight = flow.get().in_flight.saturating_add(1),
            Entry::Vacant(vacant) if tracked < REORDER_PAIRS_MAX => {
                vacant.insert(Flow { highest_delivered: 0, in_flight: 1 });
            }
            Entry::Vacant(_) => {}
        }
    }

    /// A message arrived (`delivered`), or was dropped on arrival; returns whether it was
    /// delivered after a message sent later.
    fn arrived(&mut self, from: u32, to: u32, message_id: u64, delivered: bool) -> bool {
        match self {
            Self::Dense { nodes, highest_delivered } => {
                let index = from as usize * *nodes + to as usize;
                let Some(highest) = highest_delivered.get_mut(index) else { return false };
                let overtaken = delivered && message_id < *highest;
                if delivered {
                    *highest = (*highest).max(message_id);
                }
                overtaken
            }
            Self::Sparse(map) => {
                let Entry::Occupied(mut entry) = map.entry(pair_key(from, to)) else { return false };
                let flow = entry.get_mut();
                let overtaken = delivered && message_id < flow.highest_delivered;
                if delivered {
                    flow.highest_delivered = flow.highest_delivered.max(message_id);
                }
                flow.in_flight = flow.in_flight.saturating_sub(1);
                if flow.in_flight == 0 {
                    entry.remove();
                }
                overtaken
            }
        }
    }
}

struct Slot<P: Process> {
    process: Option<P>,
    incarnation: u64,
    clock: NodeClock,
    disk: VirtualDisk,
    rng: ChaCha8Rng,
    timer_at_ns: Option<u64>,
    timer_generation: u64,
    /// When the node crashed, while it is down.
    crashed_since_ns: Option<u64>,
    /// The pauses in force on this node (their layers).
    paused_by: Vec<LayerId>,
    /// Events that arrived while paused, in arrival order.
    deferred: VecDeque<Event<P::Command>>,
    /// Time-bounded disk faults in force.
    disk_faults: Vec<(LayerId, DiskFaultKind)>,
    /// Instant disk faults waiting for the next operation of their kind.
    disk_faults_once: Vec<DiskFaultKind>,
    /// An append was refused since the last restart: every later sync fails.
    append_refused: bool,
}

impl<P: Process> Slot<P> {
    /// True when a disk fault of `kind` hits the operation being done now (an instant one
    /// is used up).
    fn disk_fault_hits(&mut self, kind: DiskFaultKind) -> bool {
        if self.disk_faults.iter().any(|(_, active)| *active == kind) {
            return true;
        }
        match self.disk_faults_once.iter().position(|pending| *pending == kind) {
            Some(index) => {
                self.disk_faults_once.remove(index);
                true
            }
            None => false,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Virtual time reached the requested end.
    Reached,
    /// No events were left.
    Idle,
    /// The observer asked to stop.
    Stopped,
    /// `events_max` was reached.
    EventLimit,
}

/// What an observer wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Continue,
    /// Stop the run now.
    Stop,
}

/// A simulation of many nodes running process `P`.
///
/// Call order: [`new`](Self::new), schedule faults and commands, then
/// [`run_until`](Self::run_until) (any number of times, with increasing ends).
pub struct Simulation<P: Process> {
    config: SimConfig,
    process_config: P::Config,
    now_ns: u64,
    sequence: u64,
    queue: EventQueue<Event<P::Command>>,
    /// The messages the queue's deliveries name.
    mail: Mail,
    slots: Vec<Slot<P>>,
    network: Network,
    network_rng: ChaCha8Rng,
    disk_rng: ChaCha8Rng,
    outputs: Outputs<P::Event>,
    next_message_id: u64,
    flows: Flows,
    trace: Trace,
    stats: Stats,
    events_last: Vec<(u32, P::Event)>,
    /// Network fault layers in force: kind and since when.
    active_layers: BTreeMap<LayerId, (&'static str, u64)>,
    next_layer: LayerId,
    /// Messages sent over each overridden pair `(low, high)` while an override was on it.
    override_traffic: BTreeMap<(u32, u32), u64>,
    /// Messages each clog (by layer) holds, in send order.
    held: BTreeMap<LayerId, Vec<InFlight>>,
    /// Per directed bandwidth-limited link, when each queued message finishes transmitting.
    link_queues: BTreeMap<(u32, u32), VecDeque<u64>>,
    /// Recently delivered messages per directed link, for `replay`.
    replay_history: BTreeMap<(u32, u32), VecDeque<Bytes>>,
    /// Whether a replay is scheduled, so that deliveries are remembered.
    replay_enabled: bool,
    /// Pauses and disk-fault windows in force: kind and since when.
    active_windows: BTreeMap<LayerId, (&'static str, u64)>,
}

impl<P: Process> std::fmt::Debug for Simulation<P> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Simulation")
            .field("now_ns", &self.now_ns)
            .field("nodes", &self.slots.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

const TAG_SEND: u64 = 1;
const TAG_DELIVER: u64 = 2;
const TAG_DROP: u64 = 3;
const TAG_DUPLICATE: u64 = 4;
const TAG_TIMER: u64 = 5;
const TAG_APPEND: u64 = 6;
const TAG_SYNC: u64 = 7;
const TAG_SYNCED: u64 = 8;
const TAG_TRUNCATE: u64 = 9;
const TAG_CRASH: u64 = 10;
const TAG_LINK_UP: u64 = 12;
const TAG_LINK_DOWN: u64 = 13;
const TAG_CONNECT: u64 = 14;
const TAG_FAULT: u64 = 15;
const TAG_COMMAND: u64 = 16;
const TAG_PROCESS: u64 = 17;
const TAG_NOTE: u64 = 18;
const TAG_BOOT: u64 = 19;
const TAG_HELD: u64 = 20;
const TAG_CORRUPT: u64 = 21;
const TAG_REPLAY: u64 = 22;
const TAG_SYNC_FAILED: u64 = 23;
const TAG_DISK_FAULT: u64 = 24;
const TAG_RESUME: u64 = 25;
const TAG_REPLACE: u64 = 26;

/// The `kind` of a tag's events in a JSON-lines trace.
fn tag_kind(tag: u64) -> &'static str {
    match tag {
        TAG_SEND => "send",
        TAG_DELIVER => "deliver",
        TAG_DROP => "drop",
        TAG_DUPLICATE => "duplicate",
        TAG_TIMER => "timer",
        TAG_APPEND => "disk-append",
        TAG_SYNC => "disk-sync",
        TAG_SYNCED => "disk-synced",
        TAG_TRUNCATE => "disk-truncate",
        TAG_REPLACE => "disk-replace",
        TAG_CRASH => "crash",
        TAG_LINK_UP => "link-up",
        TAG_LINK_DOWN => "link-down",
        TAG_CONNECT => "connect",
        TAG_FAULT => "fault",
        TAG_COMMAND => "command",
        TAG_PROCESS => "event",
        TAG_BOOT => "boot",
        TAG_HELD => "held",
        TAG_CORRUPT => "corrupt",
        TAG_REPLAY => "replay",
        TAG_SYNC_FAILED => "disk-sync-failed",
        TAG_DISK_FAULT => "disk-fault",
        TAG_RESUME => "resume",
        _ => "note",
    }
}

/// The two ends of a message or connection an event concerns, for its trace fields.
#[derive(Debug, Clone, Copy)]
struct Ends {
    from: u32,
    to: u32,
    message_id: Option<u64>,
    reason: Option<&'static str>,
}

impl Ends {
    fn message(from: u32, to: u32, message_id: u64) -> Self {
        Self { from, to, message_id: Some(message_id), reason: None }
    }

    fn link(from: u32, to: u32) -> Self {
        Self { from, to, message_id: None, reason: None }
    }
}

impl<P: Process> Simulation<P> {
    /// Builds the simulation and boots every node at virtual time 0.
    pub fn new(config: SimConfig, process_config: P::Config, trace: Trace) -> Self {
        let nodes_count = u32::try_from(config.names.len()).unwrap_or(u32::MAX);
        let mut network = Network::new(nodes_count, &config.topology, config.transport, config.link);
        for (&(first, second), &transport) in &config.link_transports {
            network.set_link_transport(first, second, transport);
        }
        let mut clock_rng = random::stream(config.seed, Stream::Clock);
        let slots = (0..nodes_count)
            .map(|node| {
                // Every clock starts `skew` after its epoch plus the drawn skew, so that a
                // negative skew never reads before the epoch (the clock would stand still).
                let skew_ns = i64::try_from(config.clock_skew_ns).unwrap_or(i64::MAX);
                let offset_ns = skew_ns.saturating_add(random::signed(&mut clock_rng, config.clock_skew_ns));
                let drift_ppm = random::signed(&mut clock_rng, config.clock_drift_ppm);
                Slot {
                    process: None,
                    incarnation: 0,
                    clock: NodeClock::new(offset_ns, drift_ppm),
                    disk: VirtualDisk::default(),
                    rng: random::stream(config.seed, Stream::Node(node)),
                    timer_at_ns: None,
                    timer_generation: 0,
                    crashed_since_ns: None,
                    paused_by: Vec::new(),
                    deferred: VecDeque::new(),
                    disk_faults: Vec::new(),
                    disk_faults_once: Vec::new(),
                    append_refused: false,
                }
            })
            .collect();
        let mut simulation = Self {
            network_rng: random::stream(config.seed, Stream::Network),
            disk_rng: random::stream(config.seed, Stream::Disk),
            config,
            process_config,
            now_ns: 0,
            sequence: 0,
            queue: EventQueue::new(),
            mail: Mail::default(),
            slots,
            network,
            outputs: Outputs::default(),
            next_message_id: 1,
            flows: Flows::new(nodes_count as usize),
            trace,
            stats: Stats { per_node: vec![NodeTraffic::default(); nodes_count as usize], ..Stats::default() },
            events_last: Vec::new(),
            active_layers: BTreeMap::new(),
            next_layer: 1,
            override_traffic: BTreeMap::new(),
            held: BTreeMap::new(),
            link_queues: BTreeMap::new(),
            replay_history: BTreeMap::new(),
            replay_enabled: false,
            active_windows: BTreeMap::new(),
        };
        for node in 0..nodes_count {
            simulation.trace_clock(node);
        }
        for node in 0..nodes_count {
            simulation.boot(node);
        }
        simulation
    }

    fn trace_clock(&mut self, node: u32) {
        let clock = self.slots[node as usize].clock;
        let hasher = self.trace.hasher();
        hasher.word(0);
        hasher.word(TAG_NOTE);
        hasher.word(u64::from(node));
        hasher.word(clock.offset_ns as u64);
        hasher.word(clock.drift_ppm as u64);
        self.trace.count_event();
        if self.trace.wants_text() {
            let name = self.config.names[node as usize].as_str();
            self.trace.record_line(
                0,
                "clock",
                &LineFields { node: Some(name), ..LineFields::default() },
                format_args!("{name} clock offset={}ns drift={}ppm", clock.offset_ns, clock.drift_ppm),
            );
        }
    }

    /// Current virtual time.
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The run's configuration.
    #[must_use]
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The trace (hash, event count).
    #[must_use]
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Mutable trace access, to finish it or add notes.
    pub fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// The network state.
    #[must_use]
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Number of nodes.
    #[must_use]
    pub fn nodes_count(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Bytes on `node`'s virtual disk (synced or not).
    #[must_use]
    pub fn disk_bytes(&self, node: u32) -> usize {
        self.slots.get(node as usize).map_or(0, |slot| slot.disk.length_bytes())
    }

    /// The process on `node`, or `None` while it is crashed.
    #[must_use]
    pub fn process(&self, node: u32) -> Option<&P> {
        self.slots.get(node as usize).and_then(|slot| slot.process.as_ref())
    }

    /// True while `node` is crashed.
    #[must_use]
    pub fn is_crashed(&self, node: u32) -> bool {
        self.process(node).is_none()
    }

    /// `node`'s clock reading now.
    #[must_use]
    pub fn local_ns(&self, node: u32) -> u64 {
        self.slots[node as usize].clock.local_ns(self.now_ns)
    }

    /// The events processes emitted during the last step (and, before the first step, while
    /// booting), with their nodes.
    #[must_use]
    pub fn events_last(&self) -> &[(u32, P::Event)] {
        &self.events_last
    }

    /// Schedules `fault` at virtual time `at_ns`.
    pub fn schedule_fault(&mut self, at_ns: u64, fault: Fault) {
        self.replay_enabled |= matches!(fault, Fault::Replay { .. });
        self.push(at_ns, Event::Rare(Box::new(Rare::Fault { fault, until_ns: None })));
    }

    /// Schedules `fault` to be in force from `at_ns` until `until_ns`, when exactly what it
    /// did is undone: a partition, isolation, cut or link override is removed (leaving every
    /// other fault in force), a crashed node restarts, a clock jumps back. Only the kinds
    /// for which [`Fault::is_undoable`] holds may be bounded; others are applied as
    /// instant faults.
    pub fn schedule_fault_until(&mut self, at_ns: u64, until_ns: u64, fault: Fault) {
        let until_ns = fault.is_undoable().then_some(until_ns.max(at_ns));
        self.replay_enabled |= matches!(fault, Fault::Replay { .. });
        self.push(at_ns, Event::Rare(Box::new(Rare::Fault { fault, until_ns })));
    }

    /// Messages sent between `first` and `second` (either way) while a `link` fault was in
    /// force on that pair: zero means the fault changed nothing.
    #[must_use]
    pub fn override_traffic(&self, first: u32, second: u32) -> u64 {
        self.override_traffic.get(&(first.min(second), first.max(second))).copied().unwrap_or(0)
    }

    /// How long each kind of fault has been in force up to now: ended faults plus those
    /// still in force.
    #[must_use]
    pub fn fault_active_ns(&self) -> BTreeMap<&'static str, u64> {
        let mut total = self.stats.fault_active_ns.clone();
        for (kind, since_ns) in self.active_layers.values().chain(self.active_windows.values()) {
            *total.entry(*kind).or_insert(0) += self.now_ns - since_ns;
        }
        for slot in &self.slots {
            if let Some(since_ns) = slot.crashed_since_ns {
                *total.entry("crash").or_insert(0) += self.now_ns - since_ns;
            }
        }
        total
    }

    /// Schedules a workload `command` on `node` at virtual time `at_ns`.
    pub fn schedule_command(&mut self, at_ns: u64, node: u32, command: P::Command) {
        self.push(at_ns, Event::Command { node, command: Box::new(command) });
    }

    /// Adds a free-form line to the trace (hashed too).
    pub fn note(&mut self, text: &str) {
        let hasher = self.trace.hasher();
        hasher.word(self.now_ns);
        hasher.word(TAG_NOTE);
        hasher.bytes(text.as_bytes());
        self.trace.count_event();
        self.trace.record_line(self.now_ns, "note", &LineFields::default(), format_args!("note {text}"));
    }

    /// The liveness phase: heals the network and restarts every crashed node, now.
    pub fn heal_and_restart_all(&mut self) {
        if self.network.is_faulty() {
            self.apply_fault(Fault::HealAll, Origin::Liveness, None);
        }
        for node in 0..self.nodes_count() {
            if self.is_crashed(node) {
                self.apply_fault(Fault::Restart { node }, Origin::Liveness, None);
            }
        }
        // Pauses applied without an end last until now.
        for node in 0..self.nodes_count() {
            let layers = std::mem::take(&mut self.slots[node as usize].paused_by);
            for layer in layers {
                self.settle_window(layer);
            }
            self.resume(node);
        }
    }

    /// Schedules the delivery of `message` at `at_ns`.
    fn post(&mut self, at_ns: u64, message: InFlight) {
        let to = message.to;
        let slot = self.mail.post(message);
        self.push(at_ns, Event::Deliver { to, slot });
    }

    #[inline(always)]
    fn push(&mut self, at_ns: u64, event: Event<P::Command>) {
        let sequence = self.sequence;
        self.sequence += 1;
        self.queue.push(at_ns.max(self.now_ns), sequence, event);
    }

    /// Runs events up to and including virtual time `end_ns`, calling `observer` after each.
    pub fn run_until(&mut self, end_ns: u64, mut observer: impl FnMut(&Self) -> Control) -> RunEnd {
        loop {
            if self.stats.events >= self.config.events_max {
                return RunEnd::EventLimit;
            }
            let (at_ns, event) = match self.queue.pop_due(end_ns) {
                Ok(due) => due,
                Err(later) => {
                    self.now_ns = self.now_ns.max(end_ns);
                    return if later.is_some() { RunEnd::Reached } else { RunEnd::Idle };
                }
            };
            self.now_ns = at_ns;
            let paused =
                |node: u32| self.slots.get(node as usize).is_some_and(|slot| !slot.paused_by.is_empty());
            if let Some(node) = event.node(paused).filter(|node| paused(*node)) {
                self.defer(node, event);
                continue;
            }
            if self.handle(event) {
                self.stats.events += 1;
                let control = observer(self);
                // Cleared after the observer, so it also sees what the initial boot emitted.
                self.events_last.clear();
                if control == Control::Stop {
                    return RunEnd::Stopped;
                }
            }
        }
    }

    /// Handles one event; returns false for stale timers, which do not count.
    fn handle(&mut self, event: Event<P::Command>) -> bool {
        match event {
            Event::Deliver { slot, .. } => {
                let message = self.mail.collect(slot);
                self.deliver(message);
            }
            Event::Timer { node, generation } => {
                let slot = &mut self.slots[node as usize];
                if slot.timer_generation != generation || slot.process.is_none() {
                    return false;
                }
                slot.timer_at_ns = None;
                self.record(TAG_TIMER, node, &[], |names| format!("{} timer", names[node as usize]));
                self.call(node, |process, context| process.on_timer(context));
            }
            Event::Command { node, command } => {
                let hasher = self.trace.hasher();
                hasher.word(self.now_ns);
                hasher.word(TAG_COMMAND);
                hasher.word(u64::from(node));
                command.hash_into(hasher);
                self.trace.count_event();
                let name = self.config.names[node as usize].as_str();
                let fields = LineFields { node: Some(name), event: command.name(), ..LineFields::default() };
                if self.process(node).is_none() {
                    self.trace.record_line(
                        self.now_ns,
                        "command",
                        &fields,
                        format_args!("{name} command {command} ignored: node is crashed"),
                    );
                    return true;
                }
                if self.trace.wants_text() {
                    self.trace.record_line(
                        self.now_ns,
                        "command",
                        &fields,
                        format_args!("{name} command {command}"),
                    );
                }
                self.call(node, |process, context| process.on_command(context, *command));
            }
            Event::Rare(rare) => return self.handle_rare(*rare),
        }
        true
    }

    /// [`handle`](Self::handle) for the rare events.
    fn handle_rare(&mut self, event: Rare) -> bool {
        match event {
            Rare::Synced { node, incarnation, sync_id, length_bytes } => {
                let slot = &mut self.slots[node as usize];
                if slot.incarnation != incarnation || slot.process.is_none() {
                    return false;
                }
                slot.disk.synced(length_bytes);
                let durable = slot.disk.durable_bytes() as u64;
                self.record(TAG_SYNCED, node, &[sync_id, durable], |names| {
                    format!("{} disk synced #{sync_id} durable={durable}B", names[node as usize])
                });
                self.call(node, |process, context| process.on_disk_synced(context, sync_id));
            }
            Rare::Connect { from, to, from_incarnation, to_incarnation } => {
                self.finish_connect(from, to, from_incarnation, to_incarnation);
            }
            Rare::Fault { fault, until_ns } => self.apply_fault(fault, Origin::Scheduled, until_ns),
            Rare::FaultEnd { layer, fault, since_ns } => self.end_fault(layer, &fault, since_ns),
            Rare::SyncFailed { node, incarnation, sync_id } => {
                let slot = &self.slots[node as usize];
                if slot.incarnation != incarnation || slot.process.is_none() {
                    return false;
                }
                self.stats.sync_failures += 1;
                self.record(TAG_SYNC_FAILED, node, &[sync_id], |names| {
                    format!(
                        "{} disk sync #{sync_id} failed: nothing since the last good sync is durable",
                        names[node as usize]
                    )
                });
                self.call(node, |process, context| process.on_disk_sync_failed(context, sync_id));
            }
            Rare::RestartFromDisk { node, incarnation } => {
                let slot = &self.slots[node as usize];
                if slot.incarnation != incarnation || slot.process.is_none() {
                    return false;
                }
                let dropped = self.slots[node as usize].disk.drop_unsynced();
                self.slots[node as usize].append_refused = false;
                self.record(TAG_SYNC_FAILED, node, &[dropped], |names| {
                    format!("{} restarts from disk, {dropped}B unsynced dropped", names[node as usize])
                });
                self.crash(node);
                self.restart(node);
            }
        }
        true
    }

    /// Hashes an event `(time, tag, node, words...)` and writes its line if text is on.
    fn record(&mut self, tag: u64, node: u32, words: &[u64], text: impl FnOnce(&[String]) -> String) {
        self.record_between(tag, node, words, None, text);
    }

    /// [`record`](Self::record) for an event about a message or a connection: its `ends`
    /// become fields of a JSON line (never hashed; the words say the same).
    fn record_between(
        &mut self,
        tag: u64,
        node: u32,
        words: &[u64],
        ends: Option<Ends>,
        text: impl FnOnce(&[String]) -> String,
    ) {
        let hasher = self.trace.hasher();
        hasher.word(self.now_ns);
        hasher.word(tag);
        hasher.word(u64::from(node));
        for word in words {
            hasher.word(*word);
        }
        self.trace.count_event();
        if self.trace.wants_text() {
            let names = &self.config.names;
            let line = text(names);
            let name = |index: u32| names.get(index as usize).map(String::as_str);
            let fields = LineFields {
                node: name(node),
                from: ends.and_then(|ends| name(ends.from)),
                to: ends.and_then(|ends| name(ends.to)),
                message_id: ends.and_then(|ends| ends.message_id),
                reason: ends.and_then(|ends| ends.reason),
                ..LineFields::default()
            };
            self.trace.record_line(self.now_ns, tag_kind(tag), &fields, format_args!("{line}"));
        }
    }

    fn drop_message(&mut self, from: u32, to: u32, message_id: u64, reason: DropReason) {
        self.stats.dropped += 1;
        if let Some(traffic) = self.stats.per_node.get_mut(to as usize) {
            traffic.lost += 1;
        }
        *self.stats.drops_by_reason.entry(reason.name()).or_insert(0) += 1;
        let ends = Ends { reason: Some(reason.name()), ..Ends::message(from, to, message_id) };
        self.record_between(
            TAG_DROP,
            from,
            &[u64::from(to), message_id, reason as u64],
            Some(ends),
            |names| {
                format!("{} -> {} #{message_id} dropped: {reason}", names[from as usize], names[to as usize])
            },
        );
    }

    fn deliver(&mut self, message: InFlight) {
        let InFlight { from, to, message_id, bytes, from_incarnation, to_incarnation, epoch } = message;
        let refused = if self.slots[from as usize].incarnation != from_incarnation {
            Some(DropReason::SenderCrashed)
        } else if let target = &self.slots[to as usize]
            && (target.process.is_none() || target.incarnation != to_incarnation)
        {
            Some(DropReason::Crashed)
        } else if epoch != 0 {
            self.network
                .connection(from, to)
                .is_none_or(|connection| connection.epoch != epoch)
                .then_some(DropReason::ConnectionBroken)
        } else {
            self.network.check_path(from, to).err()
        };
        let overtaken = self.flows.arrived(from, to, message_id, refused.is_none());
        if let Some(reason) = refused {
            return self.drop_message(from, to, message_id, reason);
        }
        self.stats.delivered += 1;
        if let Some(traffic) = self.stats.per_node.get_mut(to as usize) {
            traffic.received += 1;
        }
        if self.replay_enabled {
            let history = self.replay_history.entry((from, to)).or_default();
            if history.len() >= REPLAY_HISTORY_MESSAGES_MAX {
                history.pop_front();
            }
            history.push_back(bytes.clone());
        }
        if overtaken {
            self.stats.reordered += 1;
        }
        let ends = Some(Ends::message(from, to, message_id));
        self.record_between(TAG_DELIVER, to, &[u64::from(from), message_id], ends, |names| {
            format!("{} -> {} #{message_id} delivered", names[from as usize], names[to as usize])
        });
        self.call(to, |process, context| process.on_message(context, from, bytes));
    }

    /// Runs one process callback and applies its outputs.
    fn call(&mut self, node: u32, callback: impl FnOnce(&mut P, &mut Context<'_, P::Event>)) {
        let slot = &mut self.slots[node as usize];
        let Some(process) = slot.process.as_mut() else { return };
        let mut context = Context {
            node,
            local_ns: slot.clock.local_ns(self.now_ns),
            outputs: &mut self.outputs,
            rng: &mut slot.rng,
            describe: self.trace.wants_text(),
        };
        callback(process, &mut context);
        self.apply_outputs(node);
    }

    /// Carries out what the callback that just ran on `node` asked for, in `self.outputs`.
    /// An action may run another callback (a restart boots the process), which fills and
    /// empties `self.outputs` on its own: so the actions are taken out first, and their
    /// buffer goes back at the end unless a nested callback left one there.
    fn apply_outputs(&mut self, node: u32) {
        let mut actions = std::mem::take(&mut self.outputs.actions);
        let timer = self.outputs.timer.take();
        let mut restarting = false;
        for action in actions.drain(..) {
            if restarting {
                // Asked for after `restart_from_disk`: the process is going away.
                continue;
            }
            match action {
                Action::Send { to, bytes, description } => self.send(node, to, bytes, description),
                Action::Append(bytes) => {
                    let length = bytes.len() as u64;
                    let slot = &mut self.slots[node as usize];
                    if slot.disk_fault_hits(DiskFaultKind::Full) {
                        slot.append_refused = true;
                        self.stats.appends_refused += 1;
                        self.record(TAG_DISK_FAULT, node, &[length, 1], |names| {
                            format!(
                                "{} disk append {length}B refused: no space left (ENOSPC)",
                                names[node as usize]
                            )
                        });
                    } else if slot.disk_fault_hits(DiskFaultKind::Misdirected) {
                        slot.disk.append_misdirected(bytes.len());
                        self.stats.misdirected_appends += 1;
                        self.record(TAG_DISK_FAULT, node, &[length, 2], |names| {
                            format!(
                                "{} disk append {length}B misdirected: landed elsewhere, stale bytes in its place",
                                names[node as usize]
                            )
                        });
                    } else {
                        slot.disk.append(&bytes);
                        self.record(TAG_APPEND, node, &[length], |names| {
                            format!("{} disk append {length}B", names[node as usize])
                        });
                    }
                }
                Action::RestartFromDisk => {
                    restarting = true;
                    let incarnation = self.slots[node as usize].incarnation;
                    self.push(
                        self.now_ns,
                        Event::Rare(Box::new(Rare::RestartFromDisk { node, incarnation })),
                    );
                }
                Action::Sync(sync_id) => {
                    let length_bytes = self.slots[node as usize].disk.length_bytes();
                    let latency = random::uniform(
                        &mut self.disk_rng,
                        self.config.disk.fsync_latency_ns_min,
                        self.config.disk.fsync_latency_ns_max,
                    );
                    let slot = &mut self.slots[node as usize];
                    let incarnation = slot.incarnation;
                    // An append refused since the last restart fails every later sync.
                    let fails = slot.append_refused || slot.disk_fault_hits(DiskFaultKind::FsyncFail);
                    self.record(TAG_SYNC, node, &[sync_id, latency], |names| {
                        format!("{} disk sync #{sync_id} ({latency}ns)", names[node as usize])
                    });
                    let event = if fails {
                        Event::Rare(Box::new(Rare::SyncFailed { node, incarnation, sync_id }))
                    } else {
                        Event::Rare(Box::new(Rare::Synced { node, incarnation, sync_id, length_bytes }))
                    };
                    // A sync after a replace completes no earlier than the replace's own
                    // directory fsync: the disk executes requests in order.
                    let done_ns = self.slots[node as usize].disk.replace_done_ns().unwrap_or(0);
                    self.push((self.now_ns + latency).max(done_ns), event);
                }
                Action::Replace(bytes) => {
                    let (low, high) =
                        (self.config.disk.fsync_latency_ns_min, self.config.disk.fsync_latency_ns_max);
                    let file_sync_ns = random::uniform(&mut self.disk_rng, low, high);
                    let directory_sync_ns = random::uniform(&mut self.disk_rng, low, high);
                    self.slots[node as usize].disk.replace(
                        &bytes,
                        self.now_ns,
                        file_sync_ns,
                        directory_sync_ns,
                    );
                    self.stats.replaces += 1;
                    let length = bytes.len() as u64;
                    self.record(TAG_REPLACE, node, &[length, file_sync_ns, directory_sync_ns], |names| {
                        format!(
                            "{} disk replace with {length}B (renamed in {file_sync_ns}ns, directory synced {directory_sync_ns}ns later)",
                            names[node as usize]
                        )
                    });
                }
                Action::Truncate(length_bytes) => {
                    self.slots[node as usize].disk.truncate(length_bytes);
                    self.record(TAG_TRUNCATE, node, &[length_bytes], |names| {
                        format!("{} disk truncate to {length_bytes}B", names[node as usize])
                    });
                }
                Action::Connect(peer) => self.start_connect(node, peer),
                Action::Emit(event) => {
                    let hasher = self.trace.hasher();
                    hasher.word(self.now_ns);
                    hasher.word(TAG_PROCESS);
                    hasher.word(u64::from(node));
                    event.hash_into(hasher);
                    self.trace.count_event();
                    if self.trace.wants_text() {
                        let name = self.config.names[node as usize].as_str();
                        let fields =
                            LineFields { node: Some(name), event: event.name(), ..LineFields::default() };
                        self.trace.record_line(self.now_ns, "event", &fields, format_args!("{name} {event}"));
                    }
                    self.events_last.push((node, event));
                }
            }
        }
        if let Some(deadline) = timer
            && !restarting
        {
            self.set_timer(node, deadline);
        }
        if self.outputs.actions.capacity() == 0 {
            self.outputs.actions = actions;
        }
    }

    fn set_timer(&mut self, node: u32, deadline_ns: Option<u64>) {
        let now_ns = self.now_ns;
        let slot = &mut self.slots[node as usize];
        let at_ns = deadline_ns.map(|deadline| {
            let local_now = slot.clock.local_ns(now_ns);
            now_ns.saturating_add(slot.clock.virtual_delta_ns(deadline.saturating_sub(local_now)))
        });
        if at_ns == slot.timer_at_ns {
            return;
        }
        slot.timer_generation += 1;
        slot.timer_at_ns = at_ns;
        let generation = slot.timer_generation;
        if let Some(at_ns) = at_ns {
            self.push(at_ns, Event::Timer { node, generation });
        }
    }

    fn send(&mut self, from: u32, to: u32, bytes: Bytes, description: Option<String>) {
        let message_id = self.next_message_id;
        self.next_message_id += 1;
        self.stats.sent += 1;
        if let Some(traffic) = self.stats.per_node.get_mut(from as usize) {
            traffic.sent += 1;
        }
        {
            let hasher = self.trace.hasher();
            hasher.word(self.now_ns);
            hasher.word(TAG_SEND);
            hasher.word(u64::from(from));
            hasher.word(u64::from(to));
            hasher.word(message_id);
            hasher.bytes(&bytes);
            self.trace.count_event();
        }
        if self.trace.wants_text() {
            let source = self.config.names[from as usize].as_str();
            let target = self.config.names.get(to as usize).map_or("?", String::as_str);
            let description = description.unwrap_or_else(|| P::describe_message(&bytes));
            let fields = LineFields {
                node: Some(source),
                from: Some(source),
                to: Some(target),
                message_id: Some(message_id),
                bytes: Some(bytes.len() as u64),
                description: Some(&description),
                ..LineFields::default()
            };
            self.trace.record_line(
                self.now_ns,
                "send",
                &fields,
                format_args!("{source} -> {target} #{message_id} send {description} {}B", bytes.len()),
            );
        }
        if self.trace.wants_packets() {
            self.trace.record_packet(self.now_ns, from, to, message_id, &bytes);
        }
        if to as usize >= self.slots.len() {
            return self.drop_message(from, to, message_id, DropReason::NoLink);
        }
        let from_incarnation = self.slots[from as usize].incarnation;
        let to_incarnation = self.slots[to as usize].incarnation;
        let params = *self.network.params(from, to);
        if self.network.is_overridden(from, to) {
            *self.override_traffic.entry((from.min(to), from.max(to))).or_insert(0) += 1;
        }
        let mut message =
            InFlight { from, to, message_id, bytes, from_incarnation, to_incarnation, epoch: 0 };
        match self.network.transport_between(from, to) {
            Transport::Stream => {
                let Some(connection) = self.network.connection(from, to) else {
                    // The latency draw a stream send always made, so that a run's draws (and
                    // so its trace) stay what they were before bandwidth queues.
                    random::uniform(&mut self.network_rng, params.latency_ns_min, params.latency_ns_max);
                    return self.drop_message(from, to, message_id, DropReason::NotConnected);
                };
                message.epoch = connection.epoch;
            }
            Transport::Datagram => {
                if let Err(reason) = self.network.check_path(from, to) {
                    return self.drop_message(from, to, message_id, reason);
                }
                if random::chance(&mut self.network_rng, params.loss) {
                    return self.drop_message(from, to, message_id, DropReason::Loss);
                }
            }
        }
        if let Some(layer) = self.network.clogged_by(from, to) {
            return self.hold(layer, message);
        }
        self.transmit(message, &params, true);
    }

    /// Puts a message on the wire: through the link's bandwidth queue, then latency (and,
    /// for datagrams when `may_duplicate`, duplication and reordering), then corruption.
    fn transmit(&mut self, message: InFlight, params: &LinkParams, may_duplicate: bool) {
        let (from, to, message_id) = (message.from, message.to, message.message_id);
        // Transmission ends when the link has sent this message: after every earlier one
        // of this direction (a FIFO queue), at the link's rate.
        let mut sent_ns = self.now_ns;
        if let Some(rate) = params.bandwidth_bytes_per_second {
            let transmit_ns = (message.bytes.len() as u64).saturating_mul(1_000_000_000) / rate.max(1);
            let queue_max = params.queue_messages_max.unwrap_or(QUEUE_MESSAGES_MAX_DEFAULT);
            let now_ns = self.now_ns;
            let queue = self.link_queues.entry((from, to)).or_default();
            while queue.front().is_some_and(|done_ns| *done_ns <= now_ns) {
                queue.pop_front();
            }
            if queue.len() as u64 >= queue_max {
                return self.drop_message(from, to, message_id, DropReason::QueueFull);
            }
            let start_ns = queue.back().copied().unwrap_or(now_ns).max(now_ns);
            if start_ns > now_ns {
                self.stats.bandwidth_queued += 1;
            }
            sent_ns = start_ns.saturating_add(transmit_ns);
            queue.push_back(sent_ns);
        }
        match self.network.transport_between(from, to) {
            Transport::Stream => {
                let latency =
                    random::uniform(&mut self.network_rng, params.latency_ns_min, params.latency_ns_max);
                let epoch = message.epoch;
                let Some(connection) =
                    self.network.connection_mut(from, to).filter(|open| open.epoch == epoch)
                else {
                    return self.drop_message(from, to, message_id, DropReason::ConnectionBroken);
                };
                let direction = network::direction(from, to);
                // Stream order: never deliver before an earlier message of this direction.
                let at_ns = (sent_ns + latency).max(connection.last_delivery_ns[direction]);
                connection.last_delivery_ns[direction] = at_ns;
                let message = self.damage(message);
                self.flows.departed(from, to);
                self.post(at_ns, message);
            }
            Transport::Datagram => {
                let duplicate = may_duplicate && random::chance(&mut self.network_rng, params.duplicate);
                if duplicate {
                    self.send_copy(message.clone(), params, sent_ns, false);
                    self.send_copy(message, params, sent_ns, true);
                } else {
                    self.send_copy(message, params, sent_ns, false);
                }
            }
        }
    }

    /// Puts one copy of a datagram on its way; `duplicate` for the second copy of a
    /// duplicated one, which the trace records.
    fn send_copy(&mut self, message: InFlight, params: &LinkParams, sent_ns: u64, duplicate: bool) {
        let (from, to, message_id) = (message.from, message.to, message.message_id);
        let mut latency =
            random::uniform(&mut self.network_rng, params.latency_ns_min, params.latency_ns_max);
        if random::chance(&mut self.network_rng, params.reorder) {
            latency += random::uniform(&mut self.network_rng, 0, params.latency_ns_max);
        }
        if duplicate {
            self.stats.duplicated += 1;
            let ends = Some(Ends::message(from, to, message_id));
            self.record_between(TAG_DUPLICATE, from, &[u64::from(to), message_id], ends, |names| {
                format!("{} -> {} #{message_id} duplicated", names[from as usize], names[to as usize])
            });
        }
        let message = self.damage(message);
        self.flows.departed(from, to);
        self.post(sent_ns + latency, message);
    }

    /// With the link's corruption probability, damages the message: flips 1 to
    /// [`CORRUPT_FLIPPED_BITS_MAX`] bits, cuts its tail short, or appends up to
    /// [`CORRUPT_GARBAGE_BYTES_MAX`] garbage bytes (one of the three, drawn), and traces
    /// what it did.
    ///
    /// A stream is damaged the same way. TCP's 16-bit checksum catches most damage on the
    /// wire (and retransmits, which costs only time); what this models is the corruption
    /// that gets through: damage the checksum misses, or damage done after it was checked
    /// (a NIC or middlebox bug), delivered in place of the segment.
    fn damage(&mut self, mut message: InFlight) -> InFlight {
        let probability = self.network.corrupt_probability(message.from, message.to);
        if !random::chance(&mut self.network_rng, probability) {
            return message;
        }
        let rng = &mut self.network_rng;
        let mut bytes = message.bytes.to_vec();
        let length = bytes.len() as u64;
        let mode = if length == 0 { 2 } else { random::uniform(rng, 0, 2) };
        let what = match mode {
            0 => {
                let flips = random::uniform(rng, 1, CORRUPT_FLIPPED_BITS_MAX);
                let mut bits = Vec::new();
                for _ in 0..flips {
                    let bit = random::uniform(rng, 0, length * 8 - 1);
                    // bit / 8 < bytes.len(), a usize.
                    bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
                    bits.push(bit.to_string());
                }
                format!("flipped bits {}", bits.join(","))
            }
            1 => {
                let kept = random::uniform(rng, 0, length - 1);
                // kept < bytes.len(), a usize.
                bytes.truncate(kept as usize);
                format!("cut to {kept}B of {length}B")
            }
            _ => {
                let extra = random::uniform(rng, 1, CORRUPT_GARBAGE_BYTES_MAX);
                for _ in 0..extra {
                    bytes.push(random::uniform(rng, 0, 255) as u8);
                }
                format!("{extra}B of garbage appended")
            }
        };
        self.stats.corrupted += 1;
        let (from, to, message_id) = (message.from, message.to, message.message_id);
        let ends = Some(Ends::message(from, to, message_id));
        let hashed = [u64::from(to), message_id, mode, bytes.len() as u64];
        self.record_between(TAG_CORRUPT, from, &hashed, ends, |names| {
            format!("{} -> {} #{message_id} corrupted: {what}", names[from as usize], names[to as usize])
        });
        message.bytes = Bytes::from(bytes);
        message
    }

    /// Keeps a message back while clog `layer` is in force.
    fn hold(&mut self, layer: LayerId, message: InFlight) {
        let (from, to, message_id) = (message.from, message.to, message.message_id);
        let held = self.held.entry(layer).or_default();
        if held.len() >= CLOG_HELD_MESSAGES_MAX {
            return self.drop_message(from, to, message_id, DropReason::QueueFull);
        }
        held.push(message);
        let ends = Some(Ends::message(from, to, message_id));
        self.record_between(TAG_HELD, from, &[u64::from(to), message_id], ends, |names| {
            format!("{} -> {} #{message_id} held: clogged", names[from as usize], names[to as usize])
        });
    }

    /// Releases, in send order, the messages of every clog no longer in force.
    fn release_unclogged(&mut self, live: &std::collections::BTreeSet<LayerId>) {
        let ended: Vec<LayerId> = self.held.keys().copied().filter(|layer| !live.contains(layer)).collect();
        for layer in ended {
            let messages = self.held.remove(&layer).unwrap_or_default();
            let count = messages.len() as u64;
            self.record(TAG_HELD, 0, &[layer, count], |_| {
                format!("clog released {count} messages in a burst")
            });
            for message in messages {
                self.stats.clog_released += 1;
                let params = *self.network.params(message.from, message.to);
                // A message may meet a newer clog on its way out; it waits for that one.
                match self.network.clogged_by(message.from, message.to) {
                    Some(newer) => self.hold(newer, message),
                    None => self.transmit(message, &params, false),
                }
            }
        }
    }

    /// Delivers again up to `count` remembered messages in each direction between `first`
    /// and `second`, to the sessions in force now.
    fn replay(&mut self, first: u32, second: u32, count: u32) {
        for (from, to) in [(first, second), (second, first)] {
            if from as usize >= self.slots.len() || to as usize >= self.slots.len() {
                continue;
            }
            let available = self.replay_history.get(&(from, to)).map_or(0, VecDeque::len) as u64;
            for _ in 0..count.min(available as u32) {
                let index = random::uniform(&mut self.network_rng, 0, available - 1);
                let Some(bytes) = self
                    .replay_history
                    .get(&(from, to))
                    .and_then(|history| history.get(index as usize))
                    .cloned()
                else {
                    continue;
                };
                let message_id = self.next_message_id;
                self.next_message_id += 1;
                self.stats.replayed += 1;
                let length = bytes.len() as u64;
                let ends = Some(Ends::message(from, to, message_id));
                self.record_between(
                    TAG_REPLAY,
                    from,
                    &[u64::from(to), message_id, index, length],
                    ends,
                    |names| {
                        format!(
                            "{} -> {} #{message_id} replay of a message delivered earlier ({length}B)",
                            names[from as usize], names[to as usize]
                        )
                    },
                );
                let epoch = match self.network.transport_between(from, to) {
                    Transport::Datagram => 0,
                    Transport::Stream => match self.network.connection(from, to) {
                        Some(connection) => connection.epoch,
                        None => {
                            self.drop_message(from, to, message_id, DropReason::NotConnected);
                            continue;
                        }
                    },
                };
                let params = *self.network.params(from, to);
                let latency =
                    random::uniform(&mut self.network_rng, params.latency_ns_min, params.latency_ns_max);
                let message = InFlight {
                    from,
                    to,
                    message_id,
                    bytes,
                    from_incarnation: self.slots[from as usize].incarnation,
                    to_incarnation: self.slots[to as usize].incarnation,
                    epoch,
                };
                self.flows.departed(from, to);
                self.post(self.now_ns + latency, message);
            }
        }
    }

    /// Keeps an event for paused `node` until the pause ends.
    fn defer(&mut self, node: u32, event: Event<P::Command>) {
        let slot = &mut self.slots[node as usize];
        if slot.deferred.len() >= PAUSE_DEFERRED_EVENTS_MAX
            && let Event::Deliver { slot, .. } = event
        {
            let message = self.mail.collect(slot);
            self.flows.arrived(message.from, message.to, message.message_id, false);
            return self.drop_message(message.from, message.to, message.message_id, DropReason::QueueFull);
        }
        slot.deferred.push_back(event);
        self.stats.pause_deferred += 1;
    }

    /// Ends every pause of `node` that is over: hands it what waited, in arrival order, now.
    fn resume(&mut self, node: u32) {
        let slot = &mut self.slots[node as usize];
        if !slot.paused_by.is_empty() || slot.deferred.is_empty() {
            return;
        }
        let deferred = std::mem::take(&mut slot.deferred);
        let count = deferred.len() as u64;
        self.record(TAG_RESUME, node, &[count], |names| {
            format!("{} resumes: {count} events waited", names[node as usize])
        });
        for event in deferred {
            self.push(self.now_ns, event);
        }
    }

    /// Adds a pause's or disk-fault window's time to the totals.
    fn settle_window(&mut self, layer: LayerId) {
        if let Some((kind, since_ns)) = self.active_windows.remove(&layer) {
            *self.stats.fault_active_ns.entry(kind).or_insert(0) += self.now_ns - since_ns;
        }
    }

    fn start_connect(&mut self, from: u32, to: u32) {
        if to as usize >= self.slots.len()
            || self.network.transport_between(from, to) != Transport::Stream
            || self.network.connection(from, to).is_some()
        {
            return;
        }
        let params = *self.network.params(from, to);
        let latency = random::uniform(&mut self.network_rng, params.latency_ns_min, params.latency_ns_max);
        self.record_between(TAG_CONNECT, from, &[u64::from(to)], Some(Ends::link(from, to)), |names| {
            format!("{} -> {} connect", names[from as usize], names[to as usize])
        });
        let (from_incarnation, to_incarnation) =
            (self.slots[from as usize].incarnation, self.slots[to as usize].incarnation);
        self.push(
            self.now_ns + latency,
            Event::Rare(Box::new(Rare::Connect { from, to, from_incarnation, to_incarnation })),
        );
    }

    fn finish_connect(&mut self, from: u32, to: u32, from_incarnation: u64, to_incarnation: u64) {
        let from_alive = self.slots[from as usize].incarnation == from_incarnation && !self.is_crashed(from);
        if !from_alive {
            return;
        }
        let to_alive = self.slots[to as usize].incarnation == to_incarnation && !self.is_crashed(to);
        let path = self.network.check_path(from, to).and(self.network.check_path(to, from));
        if !to_alive || path.is_err() || self.network.connection(from, to).is_some() {
            self.link_down(from, to);
            return;
        }
        let epoch = self.network.open_connection(from, to);
        let ends = Some(Ends::link(from, to));
        self.record_between(TAG_LINK_UP, from, &[u64::from(to), epoch], ends, |names| {
            format!("{} <-> {} connected (epoch {epoch})", names[from as usize], names[to as usize])
        });
        self.call(from, |process, context| process.on_link_up(context, to, true));
        self.call(to, |process, context| process.on_link_up(context, from, false));
    }

    fn link_down(&mut self, node: u32, peer: u32) {
        if self.is_crashed(node) {
            return;
        }
        self.record_between(TAG_LINK_DOWN, node, &[u64::from(peer)], Some(Ends::link(node, peer)), |names| {
            format!("{} link to {} down", names[node as usize], names[peer as usize])
        });
        self.call(node, |process, context| process.on_link_down(context, peer));
    }

    fn break_connection(&mut self, first: u32, second: u32) {
        if self.network.close_connection(first, second) {
            self.link_down(first, second);
            self.link_down(second, first);
        }
    }

    fn boot(&mut self, node: u32) {
        let slot = &mut self.slots[node as usize];
        let (disk, flipped) = slot.disk.read_all(&self.config.disk, &mut self.disk_rng);
        if flipped.is_some() {
            self.stats.corrupt_reads += 1;
        }
        let disk_bytes = disk.len() as u64;
        self.record(
            TAG_BOOT,
            node,
            &[disk_bytes, flipped.map_or(u64::MAX, |bit| bit)],
            |names| match flipped {
                Some(bit) => {
                    format!("{} boot from {disk_bytes}B of disk (bit {bit} flipped)", names[node as usize])
                }
                None => format!("{} boot from {disk_bytes}B of disk", names[node as usize]),
            },
        );
        let slot = &mut self.slots[node as usize];
        let mut context = Context {
            node,
            local_ns: slot.clock.local_ns(self.now_ns),
            outputs: &mut self.outputs,
            rng: &mut slot.rng,
            describe: self.trace.wants_text(),
        };
        let process = P::boot(&self.process_config, &mut context, &disk);
        slot.process = Some(process);
        self.apply_outputs(node);
        if self.network.transport() == Transport::Datagram || self.network.mixes_transports() {
            for peer in self.network.neighbours(node) {
                if self.network.transport_between(node, peer) == Transport::Datagram {
                    self.call(node, |process, context| process.on_link_up(context, peer, node < peer));
                }
            }
        }
    }

    fn trace_fault(&mut self, kind: &'static str, text: &str) {
        let hasher = self.trace.hasher();
        hasher.word(self.now_ns);
        hasher.word(TAG_FAULT);
        hasher.bytes(text.as_bytes());
        self.trace.count_event();
        let fields = LineFields { event: Some(kind), ..LineFields::default() };
        self.trace.record_line(self.now_ns, "fault", &fields, format_args!("fault {text}"));
    }

    /// Applies `fault` now; with `until_ns`, schedules its end.
    fn apply_fault(&mut self, fault: Fault, origin: Origin, until_ns: Option<u64>) {
        let counters = match origin {
            Origin::Scheduled => &mut self.stats.faults_by_kind,
            Origin::Liveness => &mut self.stats.liveness_by_kind,
        };
        *counters.entry(fault.kind()).or_insert(0) += 1;
        let mut text = Named(&fault, &self.config.names).to_string();
        if let Some(until_ns) = until_ns {
            text.push_str(&format!(" until {}", crate::clock::format_ns(until_ns)));
        }
        if origin == Origin::Liveness {
            text.push_str(" (liveness phase)");
        }
        self.trace_fault(fault.kind(), &text);
        let layer = self.next_layer;
        self.next_layer += 1;
        match &fault {
            Fault::Partition { groups } => {
                self.network.partition(layer, groups);
                self.break_blocked();
            }
            Fault::Cut { from, to } => {
                self.network.cut(layer, *from, *to);
                self.break_blocked();
            }
            Fault::Link { first, second, change } => {
                self.network.set_override(layer, *first, *second, *change);
            }
            Fault::Isolate { node } => {
                self.network.isolate(layer, *node);
                self.break_blocked();
            }
            Fault::Break { first, second } => self.break_connection(*first, *second),
            Fault::HealAll => self.network.heal(),
            Fault::HealNodes { nodes } => nodes.iter().for_each(|node| self.network.heal_node(*node)),
            Fault::ClockJump { node, by_ns } => {
                let now_ns = self.now_ns;
                let applied = self.slots.get_mut(*node as usize).map(|slot| slot.clock.jump(now_ns, *by_ns));
                if let Some(applied_ns) = applied.filter(|applied_ns| *applied_ns != *by_ns) {
                    self.record(TAG_NOTE, *node, &[applied_ns as u64], |names| {
                        format!("{} clock jump cut to {applied_ns}ns at its bound", names[*node as usize])
                    });
                }
            }
            Fault::Crash { node } => self.crash(*node),
            Fault::Restart { node } => self.restart(*node),
            Fault::Corrupt { first, second, probability } => {
                self.network.corrupt(layer, *first, *second, *probability);
            }
            Fault::Clog { from, to, both } => self.network.clog(layer, *from, *to, *both),
            Fault::Replay { first, second, count } => self.replay(*first, *second, *count),
            Fault::Pause { node } => {
                if let Some(slot) = self.slots.get_mut(*node as usize)
                    && slot.process.is_some()
                {
                    slot.paused_by.push(layer);
                    self.active_windows.insert(layer, ("pause", self.now_ns));
                }
            }
            Fault::Disk { node, kind } => {
                if let Some(slot) = self.slots.get_mut(*node as usize) {
                    if until_ns.is_some() {
                        slot.disk_faults.push((layer, *kind));
                        self.active_windows.insert(layer, (kind.name(), self.now_ns));
                    } else if slot.disk_faults_once.len() < DISK_FAULTS_PENDING_MAX {
                        slot.disk_faults_once.push(*kind);
                    }
                }
            }
        }
        if fault.is_network_layer() {
            self.active_layers.insert(layer, (fault.kind(), self.now_ns));
        }
        self.settle_layers();
        if let Some(until_ns) = until_ns {
            self.push(
                until_ns,
                Event::Rare(Box::new(Rare::FaultEnd { layer, fault, since_ns: self.now_ns })),
            );
        }
    }

    /// Ends a time-bounded fault: undoes exactly what it did, if a heal has not already.
    fn end_fault(&mut self, layer: LayerId, fault: &Fault, since_ns: u64) {
        *self.stats.fault_ends_by_kind.entry(fault.kind()).or_insert(0) += 1;
        let undone = match fault {
            Fault::Crash { node } => {
                let crashed = self.is_crashed(*node);
                self.restart(*node);
                crashed
            }
            Fault::ClockJump { node, by_ns } => {
                let now_ns = self.now_ns;
                if let Some(slot) = self.slots.get_mut(*node as usize) {
                    // Undone by the opposite of the written amount; where the clock's bound
                    // cut the first jump, the bound may cut this one too.
                    slot.clock.jump(now_ns, by_ns.saturating_neg());
                }
                *self.stats.fault_active_ns.entry("clock-jump").or_insert(0) += self.now_ns - since_ns;
                true
            }
            Fault::Pause { node } => {
                let slot = &mut self.slots[*node as usize];
                let was_paused = slot.paused_by.contains(&layer);
                slot.paused_by.retain(|paused| *paused != layer);
                self.settle_window(layer);
                self.resume(*node);
                was_paused
            }
            Fault::Disk { node, .. } => {
                let slot = &mut self.slots[*node as usize];
                slot.disk_faults.retain(|(active, _)| *active != layer);
                self.settle_window(layer);
                true
            }
            _ => self.network.remove_layer(layer),
        };
        let text = format!(
            "end {} (from {}){}",
            Named(fault, &self.config.names),
            crate::clock::format_ns(since_ns),
            if undone { "" } else { ", already undone" }
        );
        self.trace_fault(fault.kind(), &text);
        self.settle_layers();
    }

    /// Moves network layers that are no longer in force into the time totals.
    fn settle_layers(&mut self) {
        if self.active_layers.is_empty() {
            return;
        }
        let live = self.network.layer_ids();
        if !self.held.is_empty() {
            self.release_unclogged(&live);
        }
        let now_ns = self.now_ns;
        let stats = &mut self.stats;
        self.active_layers.retain(|layer, (kind, since_ns)| {
            let keep = live.contains(layer);
            if !keep {
                *stats.fault_active_ns.entry(*kind).or_insert(0) += now_ns - *since_ns;
            }
            keep
        });
    }

    fn restart(&mut self, node: u32) {
        if self.is_crashed(node) {
            let slot = &mut self.slots[node as usize];
            slot.incarnation += 1;
            if let Some(since_ns) = slot.crashed_since_ns.take() {
                *self.stats.fault_active_ns.entry("crash").or_insert(0) += self.now_ns - since_ns;
            }
            self.boot(node);
        }
    }

    fn break_blocked(&mut self) {
        for (first, second) in self.network.blocked_connections() {
            self.break_connection(first, second);
        }
    }

    fn crash(&mut self, node: u32) {
        if self.is_crashed(node) {
            return;
        }
        let slot = &mut self.slots[node as usize];
        slot.process = None;
        // A new incarnation makes every message, sync and timer of the old one stale.
        slot.incarnation += 1;
        slot.timer_at_ns = None;
        slot.timer_generation += 1;
        slot.crashed_since_ns = Some(self.now_ns);
        // A crash ends its pauses; what waited goes to the dead incarnation and is dropped.
        slot.paused_by.clear();
        let damage = slot.disk.crash(&self.config.disk, self.now_ns, &mut self.disk_rng);
        match damage.replace_step {
            Some((ReplaceStep::BeforeRename, _)) => self.stats.crashes_before_rename += 1,
            Some((ReplaceStep::BeforeDirectorySync, _)) => self.stats.crashes_before_directory_sync += 1,
            None => {}
        }
        if damage.lost_bytes > 0 {
            self.stats.crashes_losing_writes += 1;
        }
        if damage.torn_bytes > 0 {
            self.stats.crashes_torn += 1;
        }
        self.slots[node as usize].append_refused = false;
        self.record(TAG_CRASH, node, &[damage.lost_bytes, damage.torn_bytes], |names| {
            format!(
                "{} crashed: lost {}B unsynced, kept {}B torn",
                names[node as usize], damage.lost_bytes, damage.torn_bytes
            )
        });
        self.resume(node);
        for (first, second) in self.network.connections_of(node) {
            self.network.close_connection(first, second);
            let peer = if first == node { second } else { first };
            self.link_down(peer, node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Flows, REORDER_DENSE_NODES_MAX};

    /// Goal: reorder detection counts exactly the deliveries overtaken by a later message of
    /// the same pair, and the map forgets a pair once nothing of it is in flight. Method:
    /// messages 1, 2, 3 of a→b leave, arrive 2, 1 (overtaken), then 3 is dropped on arrival,
    /// with b→a interleaved; then a forgotten pair and a duplicate; the same on the table.
    #[test]
    fn flows_count_overtaken_messages_and_forget_idle_pairs() {
        for nodes in [2, REORDER_DENSE_NODES_MAX + 1] {
            let mut flows = Flows::new(nodes);
            let tracked = |flows: &Flows| match flows {
                Flows::Sparse(map) => Some(map.len()),
                Flows::Dense { .. } => None,
            };
            assert_eq!(matches!(flows, Flows::Dense { .. }), nodes == 2);
            for _ in 1..=3 {
                flows.departed(0, 1);
            }
            flows.departed(1, 0);
            assert!(tracked(&flows).is_none_or(|pairs| pairs == 2));
            assert!(!flows.arrived(0, 1, 2, true));
            assert!(!flows.arrived(1, 0, 9, true), "b→a is its own pair");
            assert!(tracked(&flows).is_none_or(|pairs| pairs == 1), "nothing of b→a in flight: forgotten");
            assert!(flows.arrived(0, 1, 1, true), "1 arrived after 2");
            assert!(!flows.arrived(0, 1, 3, false), "a drop is never overtaken");
            assert!(tracked(&flows).is_none_or(|pairs| pairs == 0), "nothing in flight: nothing kept");
            // A later message of a forgotten pair has a higher id than any delivered.
            flows.departed(0, 1);
            assert!(!flows.arrived(0, 1, 4, true));
            // A duplicate (the same id twice) is not overtaken.
            flows.departed(0, 1);
            flows.departed(0, 1);
            assert!(!flows.arrived(0, 1, 5, true));
            assert!(!flows.arrived(0, 1, 5, true));
        }
    }

    proptest::proptest! {
        /// The table and the map answer alike for any interleaving of sends (ids growing),
        /// duplicates, deliveries and drops on arrival, among a few nodes.
        #[test]
        fn the_table_and_the_map_agree(
            steps in proptest::collection::vec((0..3u32, 0..3u32, 0..4u8, proptest::bool::ANY), 0..80),
        ) {
            let mut dense = Flows::new(3);
            let mut sparse = Flows::new(REORDER_DENSE_NODES_MAX + 1);
            let mut in_flight: Vec<(u32, u32, u64)> = Vec::new();
            let mut next_id = 1;
            for (from, to, action, delivered) in steps {
                if action < 2 || in_flight.is_empty() {
                    // A send, once or (action 1) duplicated.
                    for _ in 0..=action.min(1) {
                        dense.departed(from, to);
                        sparse.departed(from, to);
                        in_flight.push((from, to, next_id));
                    }
                    next_id += 1;
                } else {
                    // An arrival of some message in flight, in any order.
                    let pick = (from as usize * 3 + to as usize) % in_flight.len();
                    let (from, to, id) = in_flight.remove(pick);
                    proptest::prop_assert_eq!(
                        dense.arrived(from, to, id, delivered),
                        sparse.arrived(from, to, id, delivered)
                    );
                }
            }
        }
    }
}

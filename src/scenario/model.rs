//! The typed scenario: what the simulator consumes once a file has been parsed and validated.
//!
//! Every value here has already been checked: node references are indices into
//! [`Scenario::nodes`], ranges are ordered, probabilities lie in [0, 1], times lie within
//! the run, and a `restart` always follows a `crash` of the same node. Durations are `u64`
//! nanoseconds (`_ns`), signed offsets `i64` nanoseconds. This module must not parse or
//! print anything.

/// Index of a node in [`Scenario::nodes`] (`0..nodes.len()`).
pub type NodeIndex = usize;

/// A parsed and validated scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `name`: the scenario's name, non-empty (reported as `scenario` in `--json` output).
    pub name: String,
    /// `seed`: the seed used when the command line gives none; `None` means 0.
    pub seed: Option<u64>,
    /// `duration`: virtual time at which the run stops, whatever else is pending; > 0.
    pub duration_ns: u64,
    /// `nodes`: node names in declaration order; a count N gives `n0`..`n{N-1}`. Between
    /// 1 and [`NODE_COUNT_MAX`](super::NODE_COUNT_MAX) unique names, each matching
    /// `[A-Za-z0-9_-]{1,64}` and never `all`.
    pub nodes: Vec<String>,
    /// `topology`: which pairs of nodes have a link; default [`Topology::FullMesh`].
    pub topology: Topology,
    /// `network`: properties of every link unless a fault overrides them.
    pub network: Network,
    /// `clock`: how far each node's clock is off.
    pub clock: Clock,
    /// `disk`: each node's simulated disk.
    pub disk: Disk,
    /// `workload`: client operations, in document order (not sorted by time).
    pub workload: Vec<WorkloadItem>,
    /// `faults`: scripted faults, sorted by `at_ns`; faults at the same time keep their
    /// document order and apply in that order.
    pub faults: Vec<Fault>,
    /// `chaos`: random faults drawn from the seed; `None` when the section is absent.
    pub chaos: Option<Chaos>,
    /// `expect`: what must hold at the end of the run.
    pub expect: Expect,
    /// `routing`: whether nodes relay writes for peers they have no direct link to
    /// (reserved for a later issue); default `false`.
    pub routing: bool,
}

impl Scenario {
    /// The index of the node called `name`, if declared. Linear in the node count.
    #[must_use]
    pub fn node_index(&self, name: &str) -> Option<NodeIndex> {
        self.nodes.iter().position(|node| node == name)
    }

    /// The undirected links of [`Scenario::topology`]; see [`Topology::edges`].
    #[must_use]
    pub fn edges(&self) -> Vec<(NodeIndex, NodeIndex)> {
        self.topology.edges(self.nodes.len())
    }

    /// When the scripted and random faults are over: the latest end of a scripted fault
    /// (its `until`, or its `at` for an instant one) and `chaos.until_ns` (0 when there are
    /// neither).
    #[must_use]
    pub fn faults_end_ns(&self) -> u64 {
        let last_fault_ns = self.faults.iter().map(Fault::end_ns).max().unwrap_or(0);
        let chaos_end_ns = self.chaos.as_ref().map_or(0, |chaos| chaos.until_ns);
        last_fault_ns.max(chaos_end_ns)
    }
}

/// Why the liveness phase starts when it does: what ends last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessCause {
    /// Nothing happens in the run: no workload, no faults, no chaos.
    Nothing,
    /// The workload item at this index (document order) ends last: a point item's `at`,
    /// or a random item's `until`.
    Workload(usize),
    /// The scripted fault at this index of [`Scenario::faults`] ends last.
    Fault(usize),
    /// `chaos.until`.
    Chaos,
}

impl Scenario {
    /// When the liveness phase starts (heal every link, restart every crashed node), and
    /// why: at the latest of the workload's last operation (a random item's `until`),
    /// every scripted fault's end and `chaos.until`, capped at `duration`. Ties go to
    /// faults, then chaos, then the workload. Until then every fault acts as written.
    #[must_use]
    pub fn liveness_start(&self) -> (u64, LivenessCause) {
        let mut best = (0, LivenessCause::Nothing);
        let mut consider = |at_ns: u64, cause: LivenessCause| {
            if at_ns > best.0 || best.1 == LivenessCause::Nothing {
                best = (at_ns, cause);
            }
        };
        for (index, item) in self.workload.iter().enumerate() {
            consider(item.end_ns(), LivenessCause::Workload(index));
        }
        if let Some(chaos) = &self.chaos {
            consider(chaos.until_ns, LivenessCause::Chaos);
        }
        for (index, fault) in self.faults.iter().enumerate() {
            // A drawn fault ends by `chaos.until`, which already counts.
            if fault.drawn && self.chaos.is_some() {
                continue;
            }
            let end_ns = fault.end_ns();
            if end_ns >= best.0 {
                best = (end_ns, LivenessCause::Fault(index));
            }
        }
        (best.0.min(self.duration_ns), best.1)
    }
}

/// Which pairs of nodes are linked. Links are undirected: a link carries messages both ways
/// (a `cut` fault can block one direction).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Topology {
    /// `full-mesh` (the default): every pair of nodes.
    #[default]
    FullMesh,
    /// `ring`: node i to node i+1, and the last node back to the first.
    Ring,
    /// `line`: node i to node i+1.
    Line,
    /// `star`: the first node (the hub) to every other node.
    Star,
    /// `{edges: [[a, b], ...]}`: exactly these links. Stored normalised: each pair as
    /// `(smaller, larger)` index, sorted, without duplicates; never a node to itself.
    Edges(Vec<(NodeIndex, NodeIndex)>),
}

impl Topology {
    /// Every link as `(smaller, larger)` index pairs, sorted, without duplicates, so the
    /// order is deterministic. A ring of two nodes is one link; fewer than two nodes have
    /// none. A full mesh has n·(n-1)/2 links (50 million for 10,000 nodes): use
    /// [`Topology::connects`] to test one pair without building the list.
    #[must_use]
    pub fn edges(&self, node_count: usize) -> Vec<(NodeIndex, NodeIndex)> {
        let mut edges: Vec<(NodeIndex, NodeIndex)> = match self {
            Topology::FullMesh => {
                (0..node_count).flat_map(|low| (low + 1..node_count).map(move |high| (low, high))).collect()
            }
            Topology::Line => (1..node_count).map(|high| (high - 1, high)).collect(),
            Topology::Ring => {
                let mut edges: Vec<_> = (1..node_count).map(|high| (high - 1, high)).collect();
                if node_count > 2 {
                    edges.push((0, node_count - 1));
                }
                edges
            }
            Topology::Star => (1..node_count).map(|leaf| (0, leaf)).collect(),
            Topology::Edges(edges) => edges.clone(),
        };
        edges.sort_unstable();
        edges.dedup();
        edges
    }

    /// Whether nodes `a` and `b` (in either order) are linked, for `node_count` nodes.
    #[must_use]
    pub fn connects(&self, a: NodeIndex, b: NodeIndex, node_count: usize) -> bool {
        let (low, high) = (a.min(b), a.max(b));
        if low == high || high >= node_count {
            return false;
        }
        match self {
            Topology::FullMesh => true,
            Topology::Line => high == low + 1,
            Topology::Ring => high == low + 1 || (low == 0 && high == node_count - 1),
            Topology::Star => low == 0,
            Topology::Edges(edges) => edges.binary_search(&(low, high)).is_ok(),
        }
    }
}

/// A range of durations: a value is drawn uniformly from `min_ns..=max_ns` (both ends
/// included). Written `A..B` with A strictly before B, or as one duration `A`, which gives
/// `min_ns == max_ns`. Always `min_ns <= max_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RangeNs {
    /// Shortest value, included.
    pub min_ns: u64,
    /// Longest value, included.
    pub max_ns: u64,
}

impl RangeNs {
    /// The range holding only `duration_ns`.
    #[must_use]
    pub const fn fixed(duration_ns: u64) -> RangeNs {
        RangeNs { min_ns: duration_ns, max_ns: duration_ns }
    }
}

/// A range of signed durations, drawn uniformly from `min_ns..=max_ns`; as [`RangeNs`], but
/// the ends may be negative (`-2s..2s`). Always `min_ns <= max_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedRangeNs {
    /// Smallest value, included.
    pub min_ns: i64,
    /// Largest value, included.
    pub max_ns: i64,
}

/// How links carry messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// `datagram` (the default): each message is delivered independently and may be lost,
    /// duplicated or reordered.
    #[default]
    Datagram,
    /// `stream`: ordered and reliable, like TCP, until a fault breaks the connection; `loss`,
    /// `duplicate` and `reorder` do not apply to a stream.
    Stream,
    /// `quic`: every node runs a real QUIC stack (PROTOCOL.md 6.11) whose packets travel as
    /// datagrams, so `loss`, `duplicate` and `reorder` apply to each packet; the protocol's
    /// links ride on QUIC connections, which time out after 10 s without a packet and are
    /// dialed again.
    Quic,
}

/// `network`: the properties of every link, unless a `link` fault overrides them.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// `transport`: default [`Transport::Datagram`].
    pub transport: Transport,
    /// `links`: links carried otherwise than `transport`, each pair at most once, in file
    /// order; default none. A run may so mix datagram, stream and QUIC links.
    pub links: Vec<LinkTransport>,
    /// `latency`: one-way delay of each message, drawn per message; default `1ms..10ms`.
    pub latency_ns: RangeNs,
    /// `loss`: probability that a message is dropped; default 0.
    pub loss: f64,
    /// `duplicate`: probability that a message is delivered twice; default 0.
    pub duplicate: f64,
    /// `reorder`: probability that a message gets a second, extra latency draw, so that it
    /// is likely overtaken by later ones; default 0.
    pub reorder: f64,
    /// `bandwidth` (`10mbps`, `64kbps`, `1.5gbps`, decimal prefixes): bits per second each
    /// link carries in each direction; `None` (the default) means unlimited. Each
    /// direction is a FIFO queue: a message waits for the ones before it to be sent.
    pub bandwidth_bits_per_second: Option<u64>,
    /// `queue`: most messages waiting or in transmission per direction of a
    /// bandwidth-limited link, 1 to [`QUEUE_MESSAGES_MAX`](super::QUEUE_MESSAGES_MAX); more are
    /// dropped (`queue-full`). `None` (the default) means that bound.
    pub queue_messages_max: Option<u64>,
    /// `cluster_secret`: every node holds the same cluster secret (PROTOCOL.md 6.10), so
    /// every handshake runs `Noise_XXpsk3`; default false.
    pub cluster_secret: bool,
}

impl Network {
    /// How the link between `first` and `second` is carried.
    #[must_use]
    pub fn transport_between(&self, first: NodeIndex, second: NodeIndex) -> Transport {
        LinkTransport::find(&self.links, first, second).map_or(self.transport, |link| link.transport)
    }

    /// True when some link, by `transport` or `links`, is carried by `transport`.
    #[must_use]
    pub fn uses(&self, transport: Transport) -> bool {
        self.transport == transport || self.links.iter().any(|link| link.transport == transport)
    }
}

/// An item of `network.links`: `{between: [a, b], transport: quic}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTransport {
    /// `between`: the two nodes, distinct, as written.
    pub between: [NodeIndex; 2],
    /// `transport` (required).
    pub transport: Transport,
}

impl LinkTransport {
    /// True when this is the link between `first` and `second`, in either order.
    #[must_use]
    pub fn connects(&self, first: NodeIndex, second: NodeIndex) -> bool {
        self.between == [first, second] || self.between == [second, first]
    }

    /// The entry of `links` for the link between `first` and `second`, if any.
    #[must_use]
    pub fn find(links: &[LinkTransport], first: NodeIndex, second: NodeIndex) -> Option<&LinkTransport> {
        links.iter().find(|link| link.connects(first, second))
    }
}

impl Default for Network {
    fn default() -> Network {
        Network {
            transport: Transport::Datagram,
            links: Vec::new(),
            latency_ns: RangeNs { min_ns: 1_000_000, max_ns: 10_000_000 },
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            bandwidth_bits_per_second: None,
            queue_messages_max: None,
            cluster_secret: false,
        }
    }
}

/// `clock`: how each node's clock differs from virtual time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Clock {
    /// `skew`: each node's clock starts off by a value drawn from `-skew..=skew`; default 0.
    pub skew_ns: u64,
    /// `drift_ppm`: each node's clock runs fast or slow by a rate drawn from
    /// `-drift_ppm..=drift_ppm` parts per million; 0 to
    /// [`DRIFT_PPM_MAX`](super::DRIFT_PPM_MAX), default 0.
    pub drift_ppm: u64,
}

/// `disk`: each node's simulated disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    /// `fsync_latency`: time from an fsync request to its completion; default `1ms..5ms`.
    pub fsync_latency_ns: RangeNs,
    /// `lose_unsynced`: a crash loses writes that were not yet fsynced; default `true`.
    pub lose_unsynced: bool,
    /// `torn_writes`: a crash may leave the last, unsynced record partially written;
    /// default `false`.
    pub torn_writes: bool,
    /// `corrupt_read`: probability that one read returns a flipped bit; default 0.
    pub corrupt_read: f64,
    /// `compaction_log_bytes`: a node compacts its log once it holds this many bytes of
    /// entries (and at least as many as its state); default 4 MiB (PROTOCOL.md 8.11).
    pub compaction_log_bytes: u64,
    /// `compaction_horizon`: how long an absent neighbour still pins compaction before it
    /// must catch up by snapshot; default 1h.
    pub compaction_horizon_ns: u64,
}

/// Default of `disk.compaction_log_bytes`: the real node's default.
pub(crate) const COMPACTION_LOG_BYTES_DEFAULT: u64 = 4 * 1024 * 1024;
/// Default of `disk.compaction_horizon`: one hour, the real node's default.
pub(crate) const COMPACTION_HORIZON_NS_DEFAULT: u64 = 3_600_000_000_000;

impl Default for Disk {
    fn default() -> Disk {
        Disk {
            fsync_latency_ns: RangeNs { min_ns: 1_000_000, max_ns: 5_000_000 },
            lose_unsynced: true,
            torn_writes: false,
            corrupt_read: 0.0,
            compaction_log_bytes: COMPACTION_LOG_BYTES_DEFAULT,
            compaction_horizon_ns: COMPACTION_HORIZON_NS_DEFAULT,
        }
    }
}

/// One `workload` item: client operations submitted to nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadItem {
    /// `{at, node, put: {key, value}}`: one write at a fixed time. `at_ns` < `duration`.
    Put {
        /// `at`: when the client submits it.
        at_ns: u64,
        /// `node`: the node that receives it.
        node: NodeIndex,
        /// `put.key`: non-empty text.
        key: String,
        /// `put.value`: any text, possibly empty.
        value: String,
    },
    /// `{at, node, delete: KEY}`: one delete at a fixed time. `at_ns` < `duration`.
    Delete {
        /// `at`: when the client submits it.
        at_ns: u64,
        /// `node`: the node that receives it.
        node: NodeIndex,
        /// `delete`: the key, non-empty text.
        key: String,
    },
    /// `{from, until, rate, keys, nodes, value_bytes, key_bytes, deletes, hot_keys, burst}`: random
    /// puts and deletes drawn from the seed.
    Random(RandomPuts),
    /// `{at, node, ping: TARGET}`: a routed ping from `node` to `target`, retried until
    /// answered (up to 10 times, 1 s apart). Needs `routing: true` to cross more than one
    /// hop.
    Ping {
        /// When, before `duration`.
        at_ns: u64,
        /// The pinging node.
        node: NodeIndex,
        /// The node to reach.
        target: NodeIndex,
    },
}

impl WorkloadItem {
    /// When the item's last operation may happen: `at` of a point item, `until` of a
    /// random one.
    #[must_use]
    pub fn end_ns(&self) -> u64 {
        match self {
            WorkloadItem::Put { at_ns, .. }
            | WorkloadItem::Delete { at_ns, .. }
            | WorkloadItem::Ping { at_ns, .. } => *at_ns,
            WorkloadItem::Random(puts) => puts.until_ns,
        }
    }
}

/// Random puts: during `from_ns..until_ns`, on average `rate` puts in total, each to a
/// node drawn from `nodes`, of a key drawn uniformly from `keys_count` keys, with a random
/// value of `value_bytes` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomPuts {
    /// `from`: start of the window, included; default 0.
    pub from_ns: u64,
    /// `until`: end of the window, excluded; default `duration`. Always
    /// `from_ns < until_ns <= duration`.
    pub until_ns: u64,
    /// `rate` (required): `N/s`, `N/ms` or `N/m`, for all the nodes together.
    pub rate: Rate,
    /// `keys` (required): size of the key space, 1 to [`KEYS_COUNT_MAX`](super::KEYS_COUNT_MAX).
    pub keys_count: u64,
    /// `nodes`: which nodes receive the puts; `all` (the default) or a list of names.
    pub nodes: NodeSelection,
    /// `value_bytes`: length of each value, `N` or `MIN..MAX` (both included); 0 to
    /// [`VALUE_BYTES_MAX`](super::VALUE_BYTES_MAX), default 8. A range picks its minimum
    /// for one value in four, its maximum for another, and a uniform length otherwise, so
    /// the limits are hit.
    pub value_bytes: ValueBytes,
    /// `key_bytes`: pad every key name (`k17`, `hot3`) with `.` to this many bytes, 1 to
    /// [`KEY_BYTES_MAX`](super::KEY_BYTES_MAX); a longer name stays as it is. `None` (the
    /// default) leaves the names short. A node refuses keys over its own limit (1 KiB).
    pub key_bytes: Option<u32>,
    /// `deletes`: share of operations that delete their key instead of putting it, in
    /// millionths (`0.2` is 200,000); default 0.
    pub deletes_per_million: u32,
    /// `hot_keys`: a share of operations that several nodes write at one instant.
    pub hot_keys: Option<HotKeys>,
    /// `burst`: extra operations all issued at one instant, periodically.
    pub burst: Option<Burst>,
}

/// Lengths of random values: `min..=max` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueBytes {
    /// Shortest value.
    pub min: u32,
    /// Longest value, ≥ `min`.
    pub max: u32,
}

/// `hot_keys: {keys, share, writers}`: a `share` of operations goes to one of `keys` hot
/// keys (`hot0`, `hot1`, ...), each written by `writers` distinct nodes in the same instant,
/// so their timestamps often tie and last-writer-wins breaks the tie by origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotKeys {
    /// `keys` (required): how many hot keys, 1 to [`HOT_KEYS_COUNT_MAX`](super::HOT_KEYS_COUNT_MAX).
    pub keys_count: u64,
    /// `share` (required): probability that an operation is a hot one, in millionths.
    pub share_per_million: u32,
    /// `writers`: nodes writing each hot operation, 1 to
    /// [`HOT_WRITERS_MAX`](super::HOT_WRITERS_MAX), default 2; at most the item's nodes.
    pub writers_count: u64,
}

/// `burst: {every, count}`: `count` operations at one instant, every `every` from `from`
/// (the first at `from + every`) until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// `every` (required): time between bursts, at least 1ms.
    pub every_ns: u64,
    /// `count` (required): operations per burst, 1 to
    /// [`BURST_OPERATIONS_MAX`](super::BURST_OPERATIONS_MAX).
    pub operations_count: u64,
}

/// A rate: `operations_count` operations every `period_ns` on average. At most
/// [`RATE_PER_SECOND_MAX`](super::RATE_PER_SECOND_MAX) per second, at least one per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Operations per period, ≥ 1.
    pub operations_count: u64,
    /// The period: 1ms for `N/ms`, 1s for `N/s`, 60s for `N/m`.
    pub period_ns: u64,
}

impl Rate {
    /// The mean time between two operations, rounded down (≥ 1µs given the rate limit).
    #[must_use]
    pub fn interval_ns_mean(&self) -> u64 {
        self.period_ns / self.operations_count.max(1)
    }
}

/// A set of nodes: `all`, or a non-empty list of names without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSelection {
    /// `all`: every node.
    All,
    /// `[a, b]`: these nodes, in the order written.
    Listed(Vec<NodeIndex>),
}

impl NodeSelection {
    /// The selected indices, ascending for [`NodeSelection::All`], as written otherwise.
    #[must_use]
    pub fn indices(&self, node_count: usize) -> Vec<NodeIndex> {
        match self {
            NodeSelection::All => (0..node_count).collect(),
            NodeSelection::Listed(nodes) => nodes.clone(),
        }
    }

    /// Whether `node` is selected.
    #[must_use]
    pub fn contains(&self, node: NodeIndex) -> bool {
        match self {
            NodeSelection::All => true,
            NodeSelection::Listed(nodes) => nodes.contains(&node),
        }
    }
}

/// One scripted fault: `{at: TIME, KIND: ...}` (instant: in force until a `heal`, a
/// `restart` or the liveness phase undoes it), or `{from: TIME, until: TIME, KIND: ...}` /
/// `{at: TIME, for: DURATION, KIND: ...}` (time-bounded: undone exactly at its end, leaving
/// every other fault in force).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// `at` or `from`: when it starts; `at_ns` < `duration`.
    pub at_ns: u64,
    /// `until`, or `at` + `for`: when it is undone; `at_ns < until_ns <= duration`. Only
    /// for partition, cut, link, isolate, corrupt, clog (released), pause (resumed),
    /// disk_fault, crash (undone by a restart) and clock_jump (undone by the opposite jump).
    pub until_ns: Option<u64>,
    /// What happens.
    pub kind: FaultKind,
    /// `drawn: true`: the fault was drawn by `chaos` (written by `ferry run --export-faults`)
    /// and is scheduled exactly as the chaos schedule is: announced by a `chaos schedule:`
    /// line at the top of the trace, applied after the other scripted faults of the same
    /// instant, a partition as its first group against the rest, and, while the file has a
    /// `chaos` section, ended by `chaos.until` rather than moving the liveness phase. So an
    /// exported schedule replays to the same trace hash as the seed that drew it. Default
    /// `false`.
    pub drawn: bool,
    /// Where the fault is written in the file (for warnings).
    pub span: super::Span,
}

impl Fault {
    /// When the fault stops acting on the run: its end for a time-bounded fault, its start
    /// for an instant one.
    #[must_use]
    pub fn end_ns(&self) -> u64 {
        self.until_ns.unwrap_or(self.at_ns)
    }
}

/// What a scripted fault does. The network state is per directed link: a partition,
/// cut or isolation blocks links, a `link` fault overrides their properties, and `heal`
/// restores them to the `network` defaults. Nothing but `heal` (or the liveness phase)
/// undoes a network fault; later faults add to earlier ones.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// `partition: [[a, b], [c, d, e]]`: links between different groups are blocked both
    /// ways. Nodes the file does not list form one more group together, stored last, so the
    /// groups always cover every node exactly once. Every listed group is non-empty.
    Partition {
        /// The groups, as written, then the group of unlisted nodes when there are any.
        groups: Vec<Vec<NodeIndex>>,
    },
    /// `cut: {from: a, to: b}`: messages from `from` to `to` are dropped (one way).
    Cut {
        /// Sending side.
        from: NodeIndex,
        /// Receiving side.
        to: NodeIndex,
    },
    /// `link: {between: [a, c], ...}`: overrides properties of one link, both ways.
    Link(LinkOverride),
    /// `crash: a`: the node stops; its unsynced writes follow the `disk` rules. Never a
    /// node that is already crashed by an earlier scripted fault.
    Crash {
        /// The node.
        node: NodeIndex,
    },
    /// `restart: a`: a crashed node starts again from its disk. Always preceded by a
    /// `crash` of the same node with no `restart` in between.
    Restart {
        /// The node.
        node: NodeIndex,
    },
    /// `isolate: a`: every link to and from the node is blocked.
    Isolate {
        /// The node.
        node: NodeIndex,
    },
    /// `clock_jump: {node: a, by: -2s}`: the node's clock jumps by a signed offset.
    ClockJump {
        /// The node.
        node: NodeIndex,
        /// `by`: the offset; negative jumps go back in time.
        by_ns: i64,
    },
    /// `heal: all` or `heal: [a, b]`: `all` restores every link to the `network` defaults
    /// (removing partitions, cuts, isolations and `link` overrides); a list restores every
    /// link to or from a listed node. Crashed nodes stay crashed and clock jumps stay.
    Heal {
        /// Which nodes' links are restored.
        nodes: NodeSelection,
    },
    /// `break: {between: [a, b]}`: the stream connection between the two nodes is reset;
    /// the nodes may reconnect. Only with `network.transport: stream`.
    Break {
        /// The two nodes, distinct, as written.
        between: [NodeIndex; 2],
    },
    /// `corrupt: {between: [a, b], probability: 0.1}`: each message on the link, either
    /// way, is damaged with `probability` (bit flips, a cut tail or appended garbage).
    Corrupt {
        /// The two nodes, distinct, as written.
        between: [NodeIndex; 2],
        /// `probability` (required).
        probability: f64,
    },
    /// `replay: {between: [a, b], count: 5}`: up to `count` messages per direction that
    /// the link delivered earlier are delivered again, to the sessions in force now.
    Replay {
        /// The two nodes, distinct, as written.
        between: [NodeIndex; 2],
        /// `count`: 1 to [`REPLAY_COUNT_MAX`](super::REPLAY_COUNT_MAX); default 1.
        count: u32,
    },
    /// `clog: {between: [a, b]}` (both ways) or `clog: {from: a, to: b}` (one way): the
    /// link holds every message until the fault ends, then releases them in order.
    Clog {
        /// Sending side (or one end).
        from: NodeIndex,
        /// Receiving side (or the other end).
        to: NodeIndex,
        /// Written with `between`: both directions.
        both: bool,
    },
    /// `pause: a`: the node handles nothing until the fault ends (its clock runs); what
    /// arrives for it waits and is handled then, in order.
    Pause {
        /// The node.
        node: NodeIndex,
    },
    /// `disk_fault: {node: a, kind: fsync_fail | full | misdirected}`: the next disk
    /// operation of that kind goes wrong, or every one while the fault lasts.
    DiskFault {
        /// The node.
        node: NodeIndex,
        /// `kind` (required).
        kind: DiskFaultKind,
    },
}

/// What a `disk_fault` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFaultKind {
    /// `fsync_fail`: an fsync reports failure; the node restarts from its disk and never
    /// acknowledges what the sync covered.
    FsyncFail,
    /// `full`: appends fail with ENOSPC (nothing is written), so the next sync fails too.
    Full,
    /// `misdirected`: an append lands at the wrong offset and the disk reports success;
    /// the WAL's checksums catch it at the next recovery.
    Misdirected,
}

/// A `link` fault: `between` two distinct nodes, each given property replaces the network
/// default for that link (both directions); `None` keeps the current value.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkOverride {
    /// `between`: the two nodes, distinct, as written.
    pub between: [NodeIndex; 2],
    /// `latency`: a duration or range.
    pub latency_ns: Option<RangeNs>,
    /// `loss`: a probability.
    pub loss: Option<f64>,
    /// `duplicate`: a probability.
    pub duplicate: Option<f64>,
    /// `reorder`: a probability.
    pub reorder: Option<f64>,
    /// `bandwidth`: bits per second per direction.
    pub bandwidth_bits_per_second: Option<u64>,
    /// `queue`: the link's queue bound, in messages.
    pub queue_messages_max: Option<u64>,
}

/// `chaos`: random faults drawn from the seed from time 0 until `until_ns`. Each present
/// kind fires on average once every `every_ns` (the simulator draws the gaps from the seed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chaos {
    /// `until` (required): no random fault starts at or after this time; ≤ `duration`.
    pub until_ns: u64,
    /// `crash: {every, downtime}`: crash a random node, restart it after `downtime`.
    pub crash: Option<ChaosCrash>,
    /// `partition: {every, duration}`: split the nodes into two random groups for `duration`.
    pub partition: Option<ChaosWindow>,
    /// `cut: {every, duration}`: cut one random direction of one link for `duration`.
    pub cut: Option<ChaosWindow>,
    /// `clock_jump: {every, by}`: jump a random node's clock by an offset drawn from `by`.
    pub clock_jump: Option<ChaosClockJump>,
    /// `corrupt: {every, duration}`: damage messages on a random link (probability
    /// [`CHAOS_CORRUPT_PROBABILITY`](crate::chaos::CHAOS_CORRUPT_PROBABILITY)) for `duration`.
    pub corrupt: Option<ChaosWindow>,
    /// `replay: {every, count}`: replay up to `count` earlier messages each way on a random
    /// link.
    pub replay: Option<ChaosReplay>,
    /// `clog: {every, duration}`: clog one random direction of a link for `duration`.
    pub clog: Option<ChaosWindow>,
    /// `pause: {every, duration}`: pause a random node for `duration`.
    pub pause: Option<ChaosWindow>,
    /// `disk_fault: {every, duration}`: a random node's fsyncs fail, or its disk is full,
    /// for `duration` (misdirected writes are left out: see `scenarios/adversarial.yaml`).
    pub disk_fault: Option<ChaosWindow>,
    /// `swarm`: for each seed, disable a random subset of the kinds above, so that different
    /// seeds explore different mixes of faults (swarm testing); default `false`.
    pub swarm: bool,
}

impl Chaos {
    /// Chaos with no kind enabled: it draws nothing, and only `until_ns` counts (the
    /// liveness phase starts after it).
    #[must_use]
    pub fn quiet(until_ns: u64) -> Self {
        Self {
            until_ns,
            crash: None,
            partition: None,
            cut: None,
            clock_jump: None,
            corrupt: None,
            replay: None,
            clog: None,
            pause: None,
            disk_fault: None,
            swarm: false,
        }
    }
}

/// `chaos.crash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosCrash {
    /// `every` (required): mean interval, at least [`CHAOS_EVERY_NS_MIN`](super::CHAOS_EVERY_NS_MIN).
    pub every_ns: u64,
    /// `downtime` (required): how long the node stays down; a duration or range.
    pub downtime_ns: RangeNs,
}

/// `chaos.partition` and `chaos.cut`: a fault that lasts a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosWindow {
    /// `every` (required): mean interval, at least [`CHAOS_EVERY_NS_MIN`](super::CHAOS_EVERY_NS_MIN).
    pub every_ns: u64,
    /// `duration` (required): how long the fault lasts; a duration or range.
    pub duration_ns: RangeNs,
}

/// `chaos.replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosReplay {
    /// `every` (required): mean interval, at least [`CHAOS_EVERY_NS_MIN`](super::CHAOS_EVERY_NS_MIN).
    pub every_ns: u64,
    /// `count` (required): messages per direction, 1 to [`REPLAY_COUNT_MAX`](super::REPLAY_COUNT_MAX).
    pub count: u32,
}

/// `chaos.clock_jump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosClockJump {
    /// `every` (required): mean interval, at least [`CHAOS_EVERY_NS_MIN`](super::CHAOS_EVERY_NS_MIN).
    pub every_ns: u64,
    /// `by` (required): the offset, a signed duration or range (`-2s..2s`).
    pub by_ns: SignedRangeNs,
}

/// `expect`: what is checked at the end of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// `converged`: `true` (the default) expects every node to end with identical
    /// replicated state within `within` of the liveness phase's start; `false` expects the
    /// opposite: the nodes must still differ at the end of that window (a negative test,
    /// for a topology or fault that really keeps nodes apart). Either way it is checked.
    pub converged: bool,
    /// `within`: how long after the liveness phase starts ([`Scenario::liveness_start`])
    /// the nodes have to converge (capped at `duration`); default 30s.
    pub within_ns: u64,
    /// `no_data_loss`: every acknowledged write is on every node at the end; default `true`.
    pub no_data_loss: bool,
    /// `trace_hash`: the trace hash the file's own seed must produce (lowercase hex, as
    /// `ferry run` prints it); a different hash fails the run, so a change of behaviour
    /// shows. `ferry run --bless` writes it. Checked only for the file's own seed.
    pub trace_hash: Option<String>,
}

impl Default for Expect {
    fn default() -> Expect {
        Expect { converged: true, within_ns: 30_000_000_000, no_data_loss: true, trace_hash: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: each shape lists its links in one deterministic order. Method: small counts.
    #[test]
    fn topology_edges() {
        assert_eq!(Topology::FullMesh.edges(3), vec![(0, 1), (0, 2), (1, 2)]);
        assert_eq!(Topology::Ring.edges(4), vec![(0, 1), (0, 3), (1, 2), (2, 3)]);
        assert_eq!(Topology::Ring.edges(2), vec![(0, 1)]);
        assert_eq!(Topology::Ring.edges(1), vec![]);
        assert_eq!(Topology::Line.edges(3), vec![(0, 1), (1, 2)]);
        assert_eq!(Topology::Star.edges(4), vec![(0, 1), (0, 2), (0, 3)]);
        assert_eq!(Topology::Edges(vec![(0, 2), (1, 2)]).edges(3), vec![(0, 2), (1, 2)]);
    }

    /// Goal: `connects` agrees with `edges` for every pair. Method: exhaustive on 5 nodes.
    #[test]
    fn topology_connects_matches_edges() {
        let shapes = [
            Topology::FullMesh,
            Topology::Ring,
            Topology::Line,
            Topology::Star,
            Topology::Edges(vec![(1, 3)]),
        ];
        for shape in shapes {
            let edges = shape.edges(5);
            for a in 0..6 {
                for b in 0..6 {
                    let expected = edges.contains(&(a.min(b), a.max(b)));
                    assert_eq!(shape.connects(a, b, 5), expected, "{shape:?} {a} {b}");
                }
            }
        }
    }
}

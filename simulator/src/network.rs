//! The network model: topology, per-link behaviour, partitions, one-way cuts and stream
//! connections. It decides whether and when a message arrives; the event loop carries it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How a link carries messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Each message independently lost, duplicated or reordered.
    #[default]
    Datagram,
    /// Ordered and reliable until a fault breaks the connection.
    Stream,
}

/// Behaviour of one link direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// Smallest one-way latency.
    pub latency_ns_min: u64,
    /// Largest one-way latency (uniform in between).
    pub latency_ns_max: u64,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram gets an extra delay of up to `latency_ns_max`.
    pub reorder: f64,
    /// Serialisation rate; `None` for unlimited. With a rate, each direction is a FIFO
    /// queue: a message starts transmitting when the one before it has finished.
    pub bandwidth_bytes_per_second: Option<u64>,
    /// Most messages waiting or transmitting in one direction (drop-tail beyond, traced as
    /// `queue-full`); `None` for [`QUEUE_MESSAGES_MAX_DEFAULT`].
    pub queue_messages_max: Option<u64>,
}

/// Bound on a bandwidth-limited direction's queue when none is configured.
pub const QUEUE_MESSAGES_MAX_DEFAULT: u64 = 1 << 16;

impl Default for LinkParams {
    fn default() -> Self {
        Self {
            latency_ns_min: 1_000_000,
            latency_ns_max: 10_000_000,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            bandwidth_bytes_per_second: None,
            queue_messages_max: None,
        }
    }
}

/// Which node pairs have a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// Every pair.
    FullMesh,
    /// Only these undirected edges (node indices).
    Edges(Vec<(u32, u32)>),
}

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// Random loss on the link.
    Loss,
    /// Sender and receiver are in different partition groups.
    Partition,
    /// A one-way cut from sender to receiver.
    Cut,
    /// The receiver is crashed, or restarted since the message was sent.
    Crashed,
    /// The sender crashed while the message was in flight.
    SenderCrashed,
    /// The topology has no link between the two nodes.
    NoLink,
    /// A stream send with no open connection.
    NotConnected,
    /// The stream connection it was sent on broke.
    ConnectionBroken,
    /// A full queue: a bandwidth-limited link's, a clog's or a paused node's.
    QueueFull,
}

impl DropReason {
    /// The stable name used in traces and coverage.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Loss => "loss",
            Self::Partition => "partition",
            Self::Cut => "cut",
            Self::Crashed => "crashed",
            Self::SenderCrashed => "sender-crashed",
            Self::NoLink => "no-link",
            Self::NotConnected => "not-connected",
            Self::ConnectionBroken => "connection-broken",
            Self::QueueFull => "queue-full",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A per-link override from a `link` fault; unset fields keep the values beneath.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkOverride {
    /// New latency range.
    pub latency_ns: Option<(u64, u64)>,
    /// New loss probability.
    pub loss: Option<f64>,
    /// New duplication probability.
    pub duplicate: Option<f64>,
    /// New reorder probability.
    pub reorder: Option<f64>,
    /// New serialisation rate.
    pub bandwidth_bytes_per_second: Option<u64>,
    /// New queue bound.
    pub queue_messages_max: Option<u64>,
}

impl LinkOverride {
    fn apply(&self, params: &mut LinkParams) {
        if let Some((minimum, maximum)) = self.latency_ns {
            params.latency_ns_min = minimum;
            params.latency_ns_max = maximum;
        }
        if let Some(loss) = self.loss {
            params.loss = loss;
        }
        if let Some(duplicate) = self.duplicate {
            params.duplicate = duplicate;
        }
        if let Some(reorder) = self.reorder {
            params.reorder = reorder;
        }
        if let Some(rate) = self.bandwidth_bytes_per_second {
            params.bandwidth_bytes_per_second = Some(rate);
        }
        if let Some(queue) = self.queue_messages_max {
            params.queue_messages_max = Some(queue);
        }
    }
}

/// Identifies one applied network fault, so that the end of a time-bounded fault removes
/// exactly what it added and nothing that another fault added.
pub type LayerId = u64;

/// Group value meaning "in every group of this layer": a node healed on its own.
const BRIDGED: u32 = u32::MAX;

/// One active blocking fault.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    /// A partition or an isolation: nodes of different groups cannot talk.
    Groups { id: LayerId, groups: Vec<u32> },
    /// A one-way cut.
    Cut { id: LayerId, from: u32, to: u32 },
}

/// An open stream connection between two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Connection {
    /// Distinguishes this connection from earlier ones between the same pair.
    pub(crate) epoch: u64,
    /// Latest delivery time scheduled in each direction (low → high, high → low), so
    /// the stream stays ordered.
    pub(crate) last_delivery_ns: [u64; 2],
}

/// The network's state.
///
/// Faults are layers: every partition, isolation, cut and link override that is in force
/// is kept on its own, with the [`LayerId`] it was applied under. A path is blocked when
/// any layer blocks it, and a link's parameters are the defaults with each override on it
/// applied in order. Ending one fault ([`Network::remove_layer`]) therefore leaves every
/// other fault in force; `heal` removes layers wholesale.
#[derive(Debug, Clone)]
pub struct Network {
    transport: Transport,
    /// Links whose transport is not `transport`, by pair `(low, high)`.
    link_transports: BTreeMap<(u32, u32), Transport>,
    defaults: LinkParams,
    /// Sorted neighbour lists; `None` for a full mesh.
    adjacency: Option<Vec<Vec<u32>>>,
    nodes_count: u32,
    /// Active partitions, isolations and cuts, in the order applied.
    blocks: Vec<Block>,
    /// Active link overrides `(layer, pair, change)`, in the order applied.
    override_layers: Vec<(LayerId, (u32, u32), LinkOverride)>,
    /// The effective parameters of each overridden pair `(low, high)`.
    overrides: BTreeMap<(u32, u32), LinkParams>,
    /// Active corruption `(layer, pair, probability)`, in the order applied.
    corrupt_layers: Vec<(LayerId, (u32, u32), f64)>,
    /// Active clogs `(layer, from, to, both)`, in the order applied.
    clog_layers: Vec<(LayerId, u32, u32, bool)>,
    pub(crate) connections: BTreeMap<(u32, u32), Connection>,
    pub(crate) next_epoch: u64,
}

fn pair(first: u32, second: u32) -> (u32, u32) {
    (first.min(second), first.max(second))
}

impl Network {
    /// A healed network of `nodes_count` nodes.
    #[must_use]
    pub fn new(nodes_count: u32, topology: &Topology, transport: Transport, defaults: LinkParams) -> Self {
        let adjacency = match topology {
            Topology::FullMesh => None,
            Topology::Edges(edges) => {
                let mut adjacency = vec![BTreeSet::new(); nodes_count as usize];
                for &(first, second) in edges {
                    if first != second && first < nodes_count && second < nodes_count {
                        adjacency[first as usize].insert(second);
                        adjacency[second as usize].insert(first);
                    }
                }
                Some(adjacency.into_iter().map(|set| set.into_iter().collect()).collect())
            }
        };
        Self {
            transport,
            link_transports: BTreeMap::new(),
            defaults,
            adjacency,
            nodes_count,
            blocks: Vec::new(),
            override_layers: Vec::new(),
            overrides: BTreeMap::new(),
            corrupt_layers: Vec::new(),
            clog_layers: Vec::new(),
            connections: BTreeMap::new(),
            next_epoch: 1,
        }
    }

    /// The transport of every link that [`Network::set_link_transport`] did not change.
    #[must_use]
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Carries the link between `first` and `second` (both ways) with `transport`.
    pub fn set_link_transport(&mut self, first: u32, second: u32, transport: Transport) {
        if transport == self.transport {
            self.link_transports.remove(&pair(first, second));
        } else {
            self.link_transports.insert(pair(first, second), transport);
        }
    }

    /// True when some link's transport differs from [`Network::transport`].
    #[must_use]
    pub fn mixes_transports(&self) -> bool {
        !self.link_transports.is_empty()
    }

    /// The transport of the link between `first` and `second`.
    #[must_use]
    pub fn transport_between(&self, first: u32, second: u32) -> Transport {
        if self.link_transports.is_empty() {
            return self.transport;
        }
        self.link_transports.get(&pair(first, second)).copied().unwrap_or(self.transport)
    }

    /// True when the topology links `first` and `second`.
    #[must_use]
    pub fn is_edge(&self, first: u32, second: u32) -> bool {
        if first == second || first >= self.nodes_count || second >= self.nodes_count {
            return false;
        }
        match &self.adjacency {
            None => true,
            Some(adjacency) => adjacency[first as usize].binary_search(&second).is_ok(),
        }
    }

    /// The topology neighbours of `node`, ascending.
    #[must_use]
    pub fn neighbours(&self, node: u32) -> Vec<u32> {
        match &self.adjacency {
            None => (0..self.nodes_count).filter(|peer| *peer != node).collect(),
            Some(adjacency) => adjacency.get(node as usize).cloned().unwrap_or_default(),
        }
    }

    /// Whether a message from `from` to `to` can pass right now (ignoring loss).
    ///
    /// # Errors
    /// The reason it cannot.
    pub fn check_path(&self, from: u32, to: u32) -> Result<(), DropReason> {
        if !self.is_edge(from, to) {
            return Err(DropReason::NoLink);
        }
        for block in &self.blocks {
            match block {
                Block::Groups { groups, .. } => {
                    let (source, target) = (groups[from as usize], groups[to as usize]);
                    if source != target && source != BRIDGED && target != BRIDGED {
                        return Err(DropReason::Partition);
                    }
                }
                Block::Cut { from: cut_from, to: cut_to, .. } => {
                    if (*cut_from, *cut_to) == (from, to) {
                        return Err(DropReason::Cut);
                    }
                }
            }
        }
        Ok(())
    }

    /// Parameters of the link from `from` to `to`.
    #[must_use]
    pub fn params(&self, from: u32, to: u32) -> &LinkParams {
        if self.overrides.is_empty() {
            return &self.defaults;
        }
        self.overrides.get(&pair(from, to)).unwrap_or(&self.defaults)
    }

    /// True while a `link` override is in force between `from` and `to`.
    #[must_use]
    pub fn is_overridden(&self, from: u32, to: u32) -> bool {
        !self.overrides.is_empty() && self.overrides.contains_key(&pair(from, to))
    }

    /// True while any partition, isolation, cut or override is in force.
    #[must_use]
    pub fn is_faulty(&self) -> bool {
        !self.blocks.is_empty()
            || !self.override_layers.is_empty()
            || !self.corrupt_layers.is_empty()
            || !self.clog_layers.is_empty()
    }

    /// Damages messages between `first` and `second` (both ways) with `probability`, under
    /// layer `id`.
    pub fn corrupt(&mut self, id: LayerId, first: u32, second: u32, probability: f64) {
        self.corrupt_layers.push((id, pair(first, second), probability));
    }

    /// The probability that a message from `from` to `to` is damaged: every corruption
    /// layer on the link draws on its own, so `1 - Π(1 - p)`.
    #[must_use]
    pub fn corrupt_probability(&self, from: u32, to: u32) -> f64 {
        let key = pair(from, to);
        let intact: f64 = self
            .corrupt_layers
            .iter()
            .filter(|(_, pair, _)| *pair == key)
            .map(|(_, _, probability)| 1.0 - probability)
            .product();
        1.0 - intact
    }

    /// Holds messages from `from` to `to` (and back with `both`), under layer `id`.
    pub fn clog(&mut self, id: LayerId, from: u32, to: u32, both: bool) {
        self.clog_layers.push((id, from, to, both));
    }

    /// The earliest clog in force on `from → to`, if any.
    #[must_use]
    pub fn clogged_by(&self, from: u32, to: u32) -> Option<LayerId> {
        self.clog_layers
            .iter()
            .find(|(_, source, target, both)| {
                (*source, *target) == (from, to) || (*both && (*source, *target) == (to, from))
            })
            .map(|(id, ..)| *id)
    }

    /// Splits the nodes into `groups` under layer `id`; nodes listed nowhere form one more
    /// group together. Earlier partitions stay in force.
    pub fn partition(&mut self, id: LayerId, groups: &[Vec<u32>]) {
        let rest = groups.len() as u32;
        let mut assignment = vec![rest; self.nodes_count as usize];
        for (index, members) in groups.iter().enumerate() {
            for node in members {
                if let Some(group) = assignment.get_mut(*node as usize) {
                    *group = index as u32;
                }
            }
        }
        self.blocks.push(Block::Groups { id, groups: assignment });
    }

    /// Puts `node` alone in a group of its own, under layer `id`.
    pub fn isolate(&mut self, id: LayerId, node: u32) {
        let mut assignment = vec![0; self.nodes_count as usize];
        if let Some(group) = assignment.get_mut(node as usize) {
            *group = 1;
        }
        self.blocks.push(Block::Groups { id, groups: assignment });
    }

    /// Blocks messages from `from` to `to` (only that direction), under layer `id`.
    pub fn cut(&mut self, id: LayerId, from: u32, to: u32) {
        self.blocks.push(Block::Cut { id, from, to });
    }

    /// Overrides the link between `first` and `second` (both directions), under layer `id`.
    pub fn set_override(&mut self, id: LayerId, first: u32, second: u32, change: LinkOverride) {
        self.override_layers.push((id, pair(first, second), change));
        self.recompute_override(pair(first, second));
    }

    fn recompute_override(&mut self, key: (u32, u32)) {
        let mut params = self.defaults;
        let mut any = false;
        for (_, pair, change) in &self.override_layers {
            if *pair == key {
                change.apply(&mut params);
                any = true;
            }
        }
        if any {
            self.overrides.insert(key, params);
        } else {
            self.overrides.remove(&key);
        }
    }

    /// Ends the fault applied under layer `id`; returns false when nothing of it was left
    /// (a heal removed it first).
    pub fn remove_layer(&mut self, id: LayerId) -> bool {
        let blocks_before = self.blocks.len();
        self.blocks.retain(|block| match block {
            Block::Groups { id: layer, .. } | Block::Cut { id: layer, .. } => *layer != id,
        });
        let mut touched = Vec::new();
        self.override_layers.retain(|(layer, pair, _)| {
            if *layer == id {
                touched.push(*pair);
            }
            *layer != id
        });
        for pair in &touched {
            self.recompute_override(*pair);
        }
        let adversaries_before = self.corrupt_layers.len() + self.clog_layers.len();
        self.corrupt_layers.retain(|(layer, ..)| *layer != id);
        self.clog_layers.retain(|(layer, ..)| *layer != id);
        let adversaries_removed = adversaries_before != self.corrupt_layers.len() + self.clog_layers.len();
        blocks_before != self.blocks.len() || !touched.is_empty() || adversaries_removed
    }

    /// Restores every link touching `node`: partitions in force no longer apply to it, and
    /// its cuts and overrides are removed. A later partition applies to it again.
    pub fn heal_node(&mut self, node: u32) {
        self.blocks.retain_mut(|block| match block {
            Block::Groups { groups, .. } => {
                if let Some(group) = groups.get_mut(node as usize) {
                    *group = BRIDGED;
                }
                true
            }
            Block::Cut { from, to, .. } => *from != node && *to != node,
        });
        let mut touched = Vec::new();
        self.override_layers.retain(|(_, (low, high), _)| {
            let keep = *low != node && *high != node;
            if !keep {
                touched.push((*low, *high));
            }
            keep
        });
        for pair in touched {
            self.recompute_override(pair);
        }
        self.corrupt_layers.retain(|(_, (low, high), _)| *low != node && *high != node);
        self.clog_layers.retain(|(_, from, to, _)| *from != node && *to != node);
    }

    /// The layers in force, ascending.
    #[must_use]
    pub fn layer_ids(&self) -> BTreeSet<LayerId> {
        let blocks = self.blocks.iter().map(|block| match block {
            Block::Groups { id, .. } | Block::Cut { id, .. } => *id,
        });
        blocks
            .chain(self.override_layers.iter().map(|(id, _, _)| *id))
            .chain(self.corrupt_layers.iter().map(|(id, ..)| *id))
            .chain(self.clog_layers.iter().map(|(id, ..)| *id))
            .collect()
    }

    /// Removes every partition, cut and override.
    pub fn heal(&mut self) {
        self.blocks.clear();
        self.override_layers.clear();
        self.overrides.clear();
        self.corrupt_layers.clear();
        self.clog_layers.clear();
    }

    /// Open connections whose path is now blocked in either direction.
    pub(crate) fn blocked_connections(&self) -> Vec<(u32, u32)> {
        self.connections
            .keys()
            .copied()
            .filter(|&(low, high)| self.check_path(low, high).is_err() || self.check_path(high, low).is_err())
            .collect()
    }

    /// Open connections that involve `node`.
    pub(crate) fn connections_of(&self, node: u32) -> Vec<(u32, u32)> {
        self.connections.keys().copied().filter(|&(low, high)| low == node || high == node).collect()
    }

    /// The open connection between two nodes, if any.
    pub(crate) fn connection(&self, first: u32, second: u32) -> Option<&Connection> {
        self.connections.get(&pair(first, second))
    }

    pub(crate) fn connection_mut(&mut self, first: u32, second: u32) -> Option<&mut Connection> {
        self.connections.get_mut(&pair(first, second))
    }

    pub(crate) fn open_connection(&mut self, first: u32, second: u32) -> u64 {
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        self.connections.insert(pair(first, second), Connection { epoch, last_delivery_ns: [0, 0] });
        epoch
    }

    pub(crate) fn close_connection(&mut self, first: u32, second: u32) -> bool {
        self.connections.remove(&pair(first, second)).is_some()
    }
}

/// Index of the direction `from → to` in [`Connection::last_delivery_ns`].
pub(crate) fn direction(from: u32, to: u32) -> usize {
    usize::from(from > to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_partition_cut_heal() {
        let mut network = Network::new(
            4,
            &Topology::Edges(vec![(0, 1), (1, 2), (2, 3)]),
            Transport::Datagram,
            LinkParams::default(),
        );
        assert_eq!(network.check_path(0, 1), Ok(()));
        assert_eq!(network.check_path(0, 2), Err(DropReason::NoLink));
        assert_eq!(network.neighbours(1), vec![0, 2]);
        network.partition(1, &[vec![0, 1]]);
        assert_eq!(network.check_path(1, 2), Err(DropReason::Partition));
        assert_eq!(network.check_path(2, 3), Ok(()), "unlisted nodes share a group");
        network.heal();
        network.cut(2, 1, 2);
        assert_eq!(network.check_path(1, 2), Err(DropReason::Cut));
        assert_eq!(network.check_path(2, 1), Ok(()), "cuts are one-way");
        network.isolate(3, 3);
        assert_eq!(network.check_path(2, 3), Err(DropReason::Partition));
        network.heal();
        assert_eq!(network.check_path(1, 2), Ok(()));
        network.partition(4, &[vec![0], vec![1], vec![2, 3]]);
        network.cut(5, 2, 3);
        network.heal_node(2);
        assert_eq!(network.check_path(1, 2), Ok(()), "a healed node reaches every group");
        assert_eq!(network.check_path(2, 3), Ok(()), "its cuts are gone");
        assert_eq!(network.check_path(0, 1), Err(DropReason::Partition), "others stay split");
        network.partition(6, &[vec![2]]);
        assert_eq!(network.check_path(1, 2), Err(DropReason::Partition), "a new partition applies again");
    }

    /// Goal: ending one fault leaves every other fault in force. Method: overlapping layers.
    #[test]
    fn removing_a_layer_keeps_the_others() {
        let mut network = Network::new(3, &Topology::FullMesh, Transport::Datagram, LinkParams::default());
        network.partition(1, &[vec![0]]);
        network.isolate(2, 2);
        network.cut(3, 1, 2);
        assert!(network.remove_layer(1));
        assert_eq!(network.check_path(0, 1), Ok(()), "the partition ended");
        assert_eq!(network.check_path(0, 2), Err(DropReason::Partition), "the isolation stays");
        assert!(network.remove_layer(2));
        assert_eq!(network.check_path(1, 2), Err(DropReason::Cut), "the cut stays");
        assert!(network.remove_layer(3));
        assert!(!network.is_faulty());
        assert!(!network.remove_layer(3), "a layer ends once");
    }

    #[test]
    fn overrides_apply_to_both_directions_and_stack() {
        let mut network = Network::new(3, &Topology::FullMesh, Transport::Datagram, LinkParams::default());
        network.set_override(1, 2, 0, LinkOverride { loss: Some(0.5), ..LinkOverride::default() });
        assert!((network.params(0, 2).loss - 0.5).abs() < f64::EPSILON);
        assert!((network.params(2, 0).loss - 0.5).abs() < f64::EPSILON);
        assert!(network.params(0, 1).loss.abs() < f64::EPSILON);
        network.set_override(2, 0, 2, LinkOverride { reorder: Some(1.0), ..LinkOverride::default() });
        assert!((network.params(0, 2).reorder - 1.0).abs() < f64::EPSILON);
        assert!((network.params(0, 2).loss - 0.5).abs() < f64::EPSILON, "layers stack");
        network.remove_layer(1);
        assert!(network.params(0, 2).loss.abs() < f64::EPSILON, "the first layer ended");
        assert!((network.params(0, 2).reorder - 1.0).abs() < f64::EPSILON, "the second stays");
    }
}

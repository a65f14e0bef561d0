//! From the YAML tree to a [`Scenario`]: the top level and the settings sections (`nodes`,
//! `topology`, `network`, `clock`, `disk`, `expect`), plus the shared readers every section
//! uses.
//!
//! Each section is read in document order and stops at its first error. Sections are
//! independent, so all of them are read and the error that comes first in the file wins.
//! Sections that name nodes or times (`topology`, `workload`, `faults`, `chaos`) are read
//! only once `nodes` and `duration` are known. The timeline sections live in `events`.

use std::collections::BTreeMap;

use super::duration::{EXPECTED_DURATION, EXPECTED_RANGE, parse_duration_ns, parse_range_ns};
use super::error::{ErrorKind, Located, Span, shorten, suggest};
use super::events::{self, FaultSource};
use super::model::{
    Clock, Disk, Expect, LinkTransport, Network, NodeIndex, NodeSelection, Scenario, Topology, Transport,
};
use super::quantity::{
    EXPECTED_BANDWIDTH, EXPECTED_BOOL, EXPECTED_PROBABILITY, EXPECTED_WHOLE, parse_bandwidth, parse_bool,
    parse_probability, parse_whole,
};
use super::yaml::{Entry, Node, Value};
use super::{DRIFT_PPM_MAX, NODE_COUNT_MAX, NODE_NAME_BYTES_MAX};

pub(crate) type Result<T> = std::result::Result<T, Located>;

const TOP_KEYS: &[&str] = &[
    "name", "seed", "duration", "nodes", "topology", "network", "clock", "disk", "workload", "faults",
    "chaos", "expect", "routing",
];
const EXPECTED_ROOT: &str = "a mapping with `name`, `duration` and `nodes`";
const EXPECTED_NODES: &str = "a list of node names or a count like 5";
const EXPECTED_NODE_NAME: &str = "a node name";
const EXPECTED_PAIR: &str = "a list of two node names like [a, b]";
const EXPECTED_SELECTION: &str = "`all` or a list of node names";
const TOPOLOGY_SHAPES: &[&str] = &["full-mesh", "ring", "line", "star"];
const TOPOLOGY_FORMS: &[&str] = &["full-mesh", "ring", "line", "star", "{edges: [[a, b]]}"];
const EXPECTED_TOPOLOGY: &str = "`full-mesh`, `ring`, `line`, `star` or {edges: [[a, b]]}";
const TRANSPORTS: &[&str] = &["datagram", "stream", "quic"];

/// The declared nodes, with a name index for resolving references.
pub(crate) struct NodeNames {
    pub(crate) names: Vec<String>,
    index: BTreeMap<String, NodeIndex>,
}

/// What every section that refers to nodes or times needs.
pub(crate) struct Context<'a> {
    pub(crate) nodes: &'a NodeNames,
    pub(crate) duration_ns: u64,
    /// `duration` as written, for messages.
    pub(crate) duration_text: &'a str,
    /// `network.transport`, or `None` when `network` itself is invalid.
    pub(crate) transport: Option<Transport>,
    /// `network.links`, once read.
    pub(crate) links: Vec<LinkTransport>,
}

impl Context<'_> {
    /// How the link between `first` and `second` is carried, or `None` when `network` is
    /// invalid.
    pub(crate) fn transport_between(&self, first: NodeIndex, second: NodeIndex) -> Option<Transport> {
        LinkTransport::find(&self.links, first, second).map(|link| link.transport).or(self.transport)
    }
}

/// Keeps the error that comes first in the file.
#[derive(Default)]
struct FirstError(Option<Located>);

impl FirstError {
    fn note<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                if self.0.as_ref().is_none_or(|first| error.span < first.span) {
                    self.0 = Some(error);
                }
                None
            }
        }
    }
}

/// Reads a whole scenario from its tree; returns it with the position of each fault's
/// subject, in the scenario's fault order, for `validate`.
pub(crate) fn scenario(root: &Node) -> Result<(Scenario, Vec<FaultSource>)> {
    let entries = mapping(root, EXPECTED_ROOT)?;
    let mut first = FirstError::default();
    for entry in entries {
        if !TOP_KEYS.contains(&entry.key.as_str()) {
            first.note::<()>(Err(unknown_key(entry, TOP_KEYS)));
        }
    }
    let find = |key: &str| entries.iter().find(|entry| entry.key == key).map(|entry| &entry.value);
    // A missing required key that an unknown key is a typo of is reported at the typo, with
    // its "did you mean" hint, rather than at the top of the file.
    let required = |key: &'static str| {
        find(key).ok_or_else(|| {
            let typo = entries.iter().find(|entry| {
                !TOP_KEYS.contains(&entry.key.as_str()) && suggest(&entry.key, TOP_KEYS) == Some(key)
            });
            match typo {
                Some(entry) => unknown_key(entry, TOP_KEYS),
                None => Located::new(root.span, ErrorKind::MissingKey { key }),
            }
        })
    };
    // An optional section left empty (`faults:` and nothing under it) counts as absent.
    let find = |key: &str| find(key).filter(|node| !node.is_null());

    let name = first.note(required("name").and_then(name));
    let seed = first.note(optional(find("seed"), |node| scalar(node, EXPECTED_WHOLE, seed)));
    let duration = first.note(required("duration").and_then(run_duration));
    let nodes = first.note(required("nodes").and_then(nodes));
    let network = first.note(optional(find("network"), network));
    let clock = first.note(optional(find("clock"), clock));
    let disk = first.note(optional(find("disk"), disk));
    let expect = first.note(optional(find("expect"), expect));
    let routing = first.note(optional(find("routing"), |node| scalar(node, EXPECTED_BOOL, parse_bool)));

    let mut topology = None;
    let mut links = None;
    let mut workload = None;
    let mut faults = None;
    let mut chaos = None;
    if let (Some(nodes), Some((duration_ns, duration_text))) = (&nodes, &duration) {
        let mut context = Context {
            nodes,
            duration_ns: *duration_ns,
            duration_text,
            transport: network
                .as_ref()
                .map(|section| section.as_ref().map_or(Transport::Datagram, |network| network.transport)),
            links: Vec::new(),
        };
        topology = first.note(optional(find("topology"), |node| self::topology(node, &context)));
        links = first.note(optional(network_links(find("network")), |node| self::links(node, &context)));
        match &links {
            Some(read) => context.links = read.clone().unwrap_or_default(),
            // An invalid `links` is reported itself: no link's transport is known, so a
            // `break` is not refused for want of a stream it may have named.
            None => context.transport = None,
        }
        workload = first.note(optional(find("workload"), |node| events::workload(node, &context)));
        faults = first.note(optional(find("faults"), |node| events::faults(node, &context)));
        chaos = first.note(optional(find("chaos"), |node| events::chaos(node, &context)));
    }
    if let Some(error) = first.0 {
        return Err(error);
    }
    // No error was noted, so every section above produced a value.
    let complete = (
        name, seed, duration, nodes, topology, network, clock, disk, workload, faults, chaos, expect, routing,
    );
    let (
        Some(name),
        Some(seed),
        Some((duration_ns, _)),
        Some(nodes),
        Some(topology),
        Some(network),
        Some(clock),
        Some(disk),
        Some(workload),
        Some(faults),
        Some(chaos),
        Some(expect),
        Some(routing),
    ) = complete
    else {
        unreachable!("a section without a value always notes an error");
    };
    let (faults, fault_sources) = faults.unwrap_or_default().into_iter().unzip();
    let mut network = network.unwrap_or_default();
    network.links = links.flatten().unwrap_or_default();
    let scenario = Scenario {
        name,
        seed,
        duration_ns,
        nodes: nodes.names,
        topology: topology.unwrap_or_default(),
        network,
        clock: clock.unwrap_or_default(),
        disk: disk.unwrap_or_default(),
        workload: workload.unwrap_or_default(),
        faults,
        chaos,
        expect: expect.unwrap_or_default(),
        routing: routing.unwrap_or(false),
    };
    Ok((scenario, fault_sources))
}

/// Applies `read` to an optional value; absent stays `None`.
pub(crate) fn optional<'n, T>(
    node: Option<&'n Node>,
    read: impl FnOnce(&'n Node) -> Result<T>,
) -> Result<Option<T>> {
    node.map(read).transpose()
}

// ----- shared readers -----

/// The entries of a mapping, or a type error quoting what is there instead.
pub(crate) fn mapping<'n>(node: &'n Node, expected: &'static str) -> Result<&'n [Entry]> {
    match &node.value {
        Value::Mapping(entries) => Ok(entries),
        _ => Err(wrong_type(node, expected)),
    }
}

/// The items of a sequence, or a type error.
pub(crate) fn sequence<'n>(node: &'n Node, expected: &'static str) -> Result<&'n [Node]> {
    match &node.value {
        Value::Sequence(items) => Ok(items),
        _ => Err(wrong_type(node, expected)),
    }
}

/// The text of a non-null scalar, or a type error.
pub(crate) fn text<'n>(node: &'n Node, expected: &'static str) -> Result<&'n str> {
    match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => Ok(text),
        _ => Err(wrong_type(node, expected)),
    }
}

/// Reads a scalar with `parse`, positioning any error at the scalar.
pub(crate) fn scalar<T>(
    node: &Node,
    expected: &'static str,
    parse: impl FnOnce(&str) -> std::result::Result<T, ErrorKind>,
) -> Result<T> {
    parse(text(node, expected)?).map_err(|kind| Located::new(node.span, kind))
}

const EXPECTED_TRACE_HASH: &str = "a trace hash: 16 to 64 lowercase hex digits, as `ferry run` prints it";

pub(crate) fn wrong_type(node: &Node, expected: &'static str) -> Located {
    Located::new(node.span, ErrorKind::WrongType { expected, found: node.describe() })
}

pub(crate) fn unknown_key(entry: &Entry, expected: &'static [&'static str]) -> Located {
    let kind = ErrorKind::UnknownKey {
        key: shorten(&entry.key),
        suggestion: suggest(&entry.key, expected),
        expected,
    };
    Located::new(entry.key_span, kind)
}

/// A required value, or `missing required key` at the enclosing mapping.
pub(crate) fn required<T>(value: Option<T>, mapping_span: Span, key: &'static str) -> Result<T> {
    value.ok_or(Located::new(mapping_span, ErrorKind::MissingKey { key }))
}

pub(crate) fn duration(node: &Node) -> Result<u64> {
    scalar(node, EXPECTED_DURATION, parse_duration_ns)
}

pub(crate) fn range(node: &Node) -> Result<super::model::RangeNs> {
    scalar(node, EXPECTED_RANGE, parse_range_ns)
}

pub(crate) fn probability(node: &Node, key: &'static str) -> Result<f64> {
    scalar(node, EXPECTED_PROBABILITY, |text| parse_probability(text, key))
}

pub(crate) fn boolean(node: &Node) -> Result<bool> {
    scalar(node, EXPECTED_BOOL, parse_bool)
}

impl Context<'_> {
    /// Resolves one node name.
    pub(crate) fn node(&self, node: &Node) -> Result<NodeIndex> {
        let name = text(node, EXPECTED_NODE_NAME)?;
        self.nodes
            .index
            .get(name)
            .copied()
            .ok_or_else(|| Located::new(node.span, ErrorKind::UndeclaredNode { name: shorten(name) }))
    }

    /// Resolves a non-empty list of distinct node names; `what` names it when empty.
    pub(crate) fn node_list(&self, node: &Node, what: &'static str) -> Result<Vec<NodeIndex>> {
        let items = sequence(node, "a list of node names")?;
        if items.is_empty() {
            return Err(Located::new(node.span, ErrorKind::EmptyList { what }));
        }
        let mut indices = Vec::with_capacity(items.len());
        for item in items {
            let index = self.node(item)?;
            if indices.contains(&index) {
                return Err(self.listed_twice(item, index));
            }
            indices.push(index);
        }
        Ok(indices)
    }

    pub(crate) fn listed_twice(&self, item: &Node, index: NodeIndex) -> Located {
        Located::new(item.span, ErrorKind::NodeListedTwice { name: self.nodes.names[index].clone() })
    }

    /// Reads `all` or a list of node names.
    pub(crate) fn selection(&self, node: &Node, what: &'static str) -> Result<NodeSelection> {
        match &node.value {
            Value::Scalar { text, .. } if text == "all" => Ok(NodeSelection::All),
            Value::Sequence(_) => self.node_list(node, what).map(NodeSelection::Listed),
            _ => Err(wrong_type(node, EXPECTED_SELECTION)),
        }
    }

    /// Reads `[a, b]`: two distinct nodes.
    pub(crate) fn pair(&self, node: &Node) -> Result<[NodeIndex; 2]> {
        let items = sequence(node, EXPECTED_PAIR)?;
        let [first, second] = items else {
            let found = format!("a list of {}", items.len());
            return Err(Located::new(node.span, ErrorKind::WrongType { expected: EXPECTED_PAIR, found }));
        };
        let pair = [self.node(first)?, self.node(second)?];
        if pair[0] == pair[1] {
            return Err(self.self_link(second, pair[1]));
        }
        Ok(pair)
    }

    pub(crate) fn self_link(&self, node: &Node, index: NodeIndex) -> Located {
        Located::new(node.span, ErrorKind::SelfLink { name: self.nodes.names[index].clone() })
    }

    /// Reads a point in time that must fall inside the run (`at`, `from`).
    pub(crate) fn time_before_end(&self, node: &Node, key: &'static str) -> Result<u64> {
        let time_ns = duration(node)?;
        if time_ns >= self.duration_ns {
            return Err(Located::new(node.span, self.end_error(node, key, true)));
        }
        Ok(time_ns)
    }

    /// Reads an end time that may equal the end of the run (`until`).
    pub(crate) fn time_until_end(&self, node: &Node, key: &'static str) -> Result<u64> {
        let time_ns = duration(node)?;
        if time_ns > self.duration_ns {
            return Err(Located::new(node.span, self.end_error(node, key, false)));
        }
        Ok(time_ns)
    }

    fn end_error(&self, node: &Node, key: &'static str, strict: bool) -> ErrorKind {
        let text = shorten(text(node, EXPECTED_DURATION).unwrap_or_default());
        let duration = shorten(self.duration_text);
        if strict {
            ErrorKind::NotBeforeEnd { key, text, duration }
        } else {
            ErrorKind::AfterEnd { key, text, duration }
        }
    }
}

// ----- top-level values -----

fn name(node: &Node) -> Result<String> {
    let name = text(node, "a scenario name")?;
    if name.is_empty() {
        return Err(wrong_type(node, "a non-empty scenario name"));
    }
    // The name is printed in reports, JUnit files and terminals.
    if name.chars().any(char::is_control) {
        return Err(wrong_type(node, "a scenario name without control characters"));
    }
    Ok(name.to_owned())
}

fn seed(text: &str) -> std::result::Result<u64, ErrorKind> {
    parse_whole(text, "seed", 0, u64::MAX)
}

/// `duration`, kept with its text for messages; must be more than zero.
fn run_duration(node: &Node) -> Result<(u64, String)> {
    let duration_ns = duration(node)?;
    let text = text(node, EXPECTED_DURATION)?;
    if duration_ns == 0 {
        let kind = ErrorKind::DurationTooShort { key: "duration", text: shorten(text), minimum: "1ns" };
        return Err(Located::new(node.span, kind));
    }
    Ok((duration_ns, text.to_owned()))
}

fn nodes(node: &Node) -> Result<NodeNames> {
    let names: Vec<String> = match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => {
            let count =
                parse_whole(text, "node count", 1, NODE_COUNT_MAX as u64).map_err(|kind| match kind {
                    ErrorKind::WrongType { found, .. } => {
                        ErrorKind::WrongType { expected: EXPECTED_NODES, found }
                    }
                    other => other,
                });
            let count = count.map_err(|kind| Located::new(node.span, kind))?;
            (0..count).map(|index| format!("n{index}")).collect()
        }
        Value::Sequence(items) => {
            if items.is_empty() {
                return Err(Located::new(node.span, ErrorKind::NoNodes));
            }
            if items.len() > NODE_COUNT_MAX {
                let kind = ErrorKind::OutOfRange {
                    what: "node count",
                    text: items.len().to_string(),
                    minimum: 1,
                    maximum: NODE_COUNT_MAX as u64,
                };
                return Err(Located::new(node.span, kind));
            }
            items.iter().map(|item| node_name(item).map(str::to_owned)).collect::<Result<_>>()?
        }
        _ => return Err(wrong_type(node, EXPECTED_NODES)),
    };
    let mut index = BTreeMap::new();
    for (position, name) in names.iter().enumerate() {
        if index.insert(name.clone(), position).is_some() {
            // Only a list can repeat a name; generated names are distinct.
            let span = match &node.value {
                Value::Sequence(items) => items[position].span,
                _ => node.span,
            };
            return Err(Located::new(span, ErrorKind::DuplicateNode { name: name.clone() }));
        }
    }
    Ok(NodeNames { names, index })
}

/// A node name as declared: `[A-Za-z0-9_-]{1,64}`, not `all`.
fn node_name(node: &Node) -> Result<&str> {
    let name = text(node, EXPECTED_NODE_NAME)?;
    let valid_char = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
    if name.is_empty() || name.len() > NODE_NAME_BYTES_MAX || !name.bytes().all(valid_char) {
        return Err(Located::new(node.span, ErrorKind::InvalidNodeName { name: shorten(name) }));
    }
    if name == "all" {
        return Err(Located::new(node.span, ErrorKind::ReservedNodeName));
    }
    Ok(name)
}

fn topology(node: &Node, context: &Context<'_>) -> Result<Topology> {
    match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => match text.as_str() {
            "full-mesh" => Ok(Topology::FullMesh),
            "ring" => Ok(Topology::Ring),
            "line" => Ok(Topology::Line),
            "star" => Ok(Topology::Star),
            other => Err(Located::new(
                node.span,
                ErrorKind::UnknownName {
                    what: "topology",
                    name: shorten(other),
                    suggestion: suggest(other, TOPOLOGY_SHAPES),
                    expected: TOPOLOGY_FORMS,
                },
            )),
        },
        Value::Mapping(entries) => {
            let mut edges = None;
            for entry in entries {
                match entry.key.as_str() {
                    "edges" => edges = Some(topology_edges(&entry.value, context)?),
                    _ => return Err(unknown_key(entry, &["edges"])),
                }
            }
            required(edges, node.span, "edges").map(Topology::Edges)
        }
        _ => Err(wrong_type(node, EXPECTED_TOPOLOGY)),
    }
}

fn topology_edges(node: &Node, context: &Context<'_>) -> Result<Vec<(NodeIndex, NodeIndex)>> {
    let mut edges = Vec::new();
    for item in sequence(node, "a list of node pairs like [[a, b], [b, c]]")? {
        let [a, b] = context.pair(item)?;
        edges.push((a.min(b), a.max(b)));
    }
    edges.sort_unstable();
    edges.dedup();
    Ok(edges)
}

fn network(node: &Node) -> Result<Network> {
    const KEYS: &[&str] = &[
        "transport",
        "links",
        "latency",
        "loss",
        "duplicate",
        "reorder",
        "bandwidth",
        "queue",
        "cluster_secret",
    ];
    let mut network = Network::default();
    for entry in mapping(node, "a mapping of network settings")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "transport" => network.transport = transport(value)?,
            "latency" => network.latency_ns = range(value)?,
            "loss" => network.loss = probability(value, "loss")?,
            "duplicate" => network.duplicate = probability(value, "duplicate")?,
            "reorder" => network.reorder = probability(value, "reorder")?,
            "bandwidth" => {
                network.bandwidth_bits_per_second = Some(scalar(value, EXPECTED_BANDWIDTH, parse_bandwidth)?);
            }
            "queue" => network.queue_messages_max = Some(super::events::queue(value)?),
            "cluster_secret" => network.cluster_secret = boolean(value)?,
            // Names nodes: read with the other sections that do (`links`).
            "links" => {}
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok(network)
}

/// `network.links`, when `network` is a mapping that has it (and it is not left empty).
fn network_links(network: Option<&Node>) -> Option<&Node> {
    match &network?.value {
        Value::Mapping(entries) => entries
            .iter()
            .find(|entry| entry.key == "links")
            .map(|entry| &entry.value)
            .filter(|node| !node.is_null()),
        _ => None,
    }
}

/// `network.links`: `[{between: [a, b], transport: quic}, ...]`, each pair at most once.
fn links(node: &Node, context: &Context<'_>) -> Result<Vec<LinkTransport>> {
    const KEYS: &[&str] = &["between", "transport"];
    let mut links: Vec<LinkTransport> = Vec::new();
    for item in sequence(node, "a list of links like [{between: [a, b], transport: quic}]")? {
        let mut between = None;
        let mut transport = None;
        for entry in mapping(item, "a mapping like {between: [a, b], transport: quic}")? {
            match entry.key.as_str() {
                "between" => between = Some((context.pair(&entry.value)?, entry.value.span)),
                "transport" => transport = Some(self::transport(&entry.value)?),
                _ => return Err(unknown_key(entry, KEYS)),
            }
        }
        let (between, span) = required(between, item.span, "between")?;
        let transport = required(transport, item.span, "transport")?;
        if LinkTransport::find(&links, between[0], between[1]).is_some() {
            let names = &context.nodes.names;
            return Err(Located::new(
                span,
                ErrorKind::DuplicateLink {
                    first: names[between[0]].clone(),
                    second: names[between[1]].clone(),
                },
            ));
        }
        links.push(LinkTransport { between, transport });
    }
    Ok(links)
}

fn transport(node: &Node) -> Result<Transport> {
    match text(node, "`datagram`, `stream` or `quic`")? {
        "datagram" => Ok(Transport::Datagram),
        "stream" => Ok(Transport::Stream),
        "quic" => Ok(Transport::Quic),
        other => Err(Located::new(
            node.span,
            ErrorKind::UnknownName {
                what: "transport",
                name: shorten(other),
                suggestion: suggest(other, TRANSPORTS),
                expected: TRANSPORTS,
            },
        )),
    }
}

fn clock(node: &Node) -> Result<Clock> {
    const KEYS: &[&str] = &["skew", "drift_ppm"];
    let mut clock = Clock::default();
    for entry in mapping(node, "a mapping of clock settings")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "skew" => clock.skew_ns = duration(value)?,
            "drift_ppm" => {
                clock.drift_ppm =
                    scalar(value, EXPECTED_WHOLE, |text| parse_whole(text, "`drift_ppm`", 0, DRIFT_PPM_MAX))?;
            }
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok(clock)
}

fn disk(node: &Node) -> Result<Disk> {
    const KEYS: &[&str] = &[
        "fsync_latency",
        "lose_unsynced",
        "torn_writes",
        "corrupt_read",
        "compaction_log_bytes",
        "compaction_horizon",
    ];
    let mut disk = Disk::default();
    for entry in mapping(node, "a mapping of disk settings")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "fsync_latency" => disk.fsync_latency_ns = range(value)?,
            "lose_unsynced" => disk.lose_unsynced = boolean(value)?,
            "torn_writes" => disk.torn_writes = boolean(value)?,
            "corrupt_read" => disk.corrupt_read = probability(value, "corrupt_read")?,
            "compaction_log_bytes" => {
                disk.compaction_log_bytes = scalar(value, EXPECTED_WHOLE, |text| {
                    parse_whole(text, "`compaction_log_bytes`", 0, u64::from(u32::MAX))
                })?;
            }
            "compaction_horizon" => disk.compaction_horizon_ns = duration(value)?,
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok(disk)
}

fn expect(node: &Node) -> Result<Expect> {
    const KEYS: &[&str] = &["converged", "within", "no_data_loss", "trace_hash"];
    let mut expect = Expect::default();
    for entry in mapping(node, "a mapping of expectations")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "converged" => expect.converged = boolean(value)?,
            "within" => expect.within_ns = duration(value)?,
            "no_data_loss" => expect.no_data_loss = boolean(value)?,
            "trace_hash" => {
                let hash = text(value, EXPECTED_TRACE_HASH)?;
                let valid = (16..=64).contains(&hash.len())
                    && hash.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
                if !valid {
                    return Err(wrong_type(value, EXPECTED_TRACE_HASH));
                }
                expect.trace_hash = Some(hash.to_owned());
            }
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok(expect)
}

//! The timeline sections: `workload`, `faults` and `chaos`.
//!
//! This module reads each item on its own: its keys, node references and times against
//! `duration`. It must not reason across items; the crash/restart walk over all faults is
//! `validate`'s job, which is why each fault comes back with a [`FaultSource`].

use super::duration::{
    EXPECTED_SIGNED_DURATION, EXPECTED_SIGNED_RANGE, parse_signed_duration_ns, parse_signed_range_ns,
};
use super::error::{ErrorKind, Located, Span, shorten};
use super::model::{
    Burst, Chaos, ChaosClockJump, ChaosCrash, ChaosReplay, ChaosWindow, DiskFaultKind, Fault, FaultKind,
    HotKeys, LinkOverride, NodeIndex, NodeSelection, RandomPuts, Transport, ValueBytes, WorkloadItem,
};
use super::parse::{
    Context, Result, boolean, duration, mapping, probability, range, required, scalar, sequence, text,
    unknown_key,
};
use super::quantity::{
    EXPECTED_BANDWIDTH, EXPECTED_RATE, EXPECTED_WHOLE, parse_bandwidth, parse_rate, parse_whole,
};
use super::yaml::{Entry, Node};
use super::{
    BURST_OPERATIONS_MAX, CHAOS_EVERY_NS_MIN, HOT_KEYS_COUNT_MAX, HOT_WRITERS_MAX, KEY_BYTES_MAX,
    KEYS_COUNT_MAX, QUEUE_MESSAGES_MAX, REPLAY_COUNT_MAX, VALUE_BYTES_MAX,
};

const WORKLOAD_KEYS: &[&str] = &[
    "at",
    "node",
    "put",
    "delete",
    "ping",
    "from",
    "until",
    "rate",
    "keys",
    "nodes",
    "value_bytes",
    "key_bytes",
    "deletes",
    "hot_keys",
    "burst",
];
const WORKLOAD_KINDS: &[&str] = &["put", "delete", "ping", "rate"];
const PUT_KEYS: &[&str] = &["at", "node", "put"];
const DELETE_KEYS: &[&str] = &["at", "node", "delete"];
const PING_KEYS: &[&str] = &["at", "node", "ping"];
const RANDOM_KEYS: &[&str] =
    &["from", "until", "rate", "keys", "nodes", "value_bytes", "key_bytes", "deletes", "hot_keys", "burst"];
const HOT_KEYS_KEYS: &[&str] = &["keys", "share", "writers"];
const EXPECTED_WHOLE_RANGE: &str = "a whole number or a range like 0..65536";
const FAULT_KINDS: &[&str] = &[
    "partition",
    "cut",
    "link",
    "crash",
    "restart",
    "isolate",
    "clock_jump",
    "heal",
    "break",
    "corrupt",
    "replay",
    "clog",
    "pause",
    "disk_fault",
];
const FAULT_KEYS: &[&str] = &[
    "at",
    "from",
    "until",
    "for",
    "drawn",
    "partition",
    "cut",
    "link",
    "crash",
    "restart",
    "isolate",
    "clock_jump",
    "heal",
    "break",
    "corrupt",
    "replay",
    "clog",
    "pause",
    "disk_fault",
];
/// Fault kinds that may be time-bounded (`until` or `for`).
const LASTING_KINDS: &[&str] =
    &["partition", "cut", "link", "isolate", "crash", "clock_jump", "corrupt", "clog", "pause", "disk_fault"];
/// Fault kinds that must be time-bounded: what they hold back is handed over at the end.
const WINDOW_KINDS: &[&str] = &["clog", "pause"];
const CHAOS_KEYS: &[&str] = &[
    "until",
    "crash",
    "partition",
    "cut",
    "clock_jump",
    "corrupt",
    "replay",
    "clog",
    "pause",
    "disk_fault",
    "swarm",
];
const DISK_FAULT_KINDS: &[&str] = &["fsync_fail", "full", "misdirected"];
const EXPECTED_TEXT: &str = "text";
const EXPECTED_KEY: &str = "a non-empty key";
/// `CHAOS_EVERY_NS_MIN` as written in messages.
const CHAOS_EVERY_MIN_TEXT: &str = "1ms";
const _: () = assert!(CHAOS_EVERY_NS_MIN == 1_000_000);

/// Where a fault came from, for the checks that need the whole timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultSource {
    /// Position of the fault's subject: the node name of `crash` and `restart`, the value of
    /// the kind key otherwise.
    pub(crate) subject_span: Span,
    /// `at` as written.
    pub(crate) at_text: String,
}

// ----- workload -----

pub(crate) fn workload(node: &Node, context: &Context<'_>) -> Result<Vec<WorkloadItem>> {
    sequence(node, "a list of workload items")?.iter().map(|item| workload_item(item, context)).collect()
}

/// The first key of `kinds` in `entries`; a second one is a conflict, none at all an error.
fn kind_key(
    node: &Node,
    entries: &[Entry],
    item: &'static str,
    all_keys: &'static [&'static str],
    kinds: &'static [&'static str],
    needs: &'static str,
) -> Result<&'static str> {
    let mut found: Option<&'static str> = None;
    for entry in entries {
        let Some(&key) = all_keys.iter().find(|&&key| key == entry.key) else {
            return Err(unknown_key(entry, all_keys));
        };
        if kinds.contains(&key) {
            if let Some(first) = found {
                return Err(Located::new(entry.key_span, ErrorKind::Conflict { item, first, second: key }));
            }
            found = Some(key);
        }
    }
    found.ok_or(Located::new(node.span, ErrorKind::NeedsOneOf { item, keys: needs }))
}

/// Refuses a known key that belongs to another kind of item.
fn not_applicable(entry: &Entry, all_keys: &'static [&'static str], item: &'static str) -> Located {
    match all_keys.iter().find(|&&key| key == entry.key) {
        Some(&key) => Located::new(entry.key_span, ErrorKind::KeyNotApplicable { key, item }),
        None => unknown_key(entry, all_keys),
    }
}

fn workload_item(node: &Node, context: &Context<'_>) -> Result<WorkloadItem> {
    let entries = mapping(node, "a workload item like {at: 1s, node: a, put: {key: k, value: v}}")?;
    let kind = kind_key(
        node,
        entries,
        "workload item",
        WORKLOAD_KEYS,
        WORKLOAD_KINDS,
        "`put`, `delete`, `ping` or `rate`",
    )?;
    match kind {
        "put" | "delete" | "ping" => point_item(node, entries, context, kind),
        _ => random_puts(node, entries, context).map(WorkloadItem::Random),
    }
}

/// A `put`, `delete` or `ping` item.
fn point_item(node: &Node, entries: &[Entry], context: &Context<'_>, kind: &str) -> Result<WorkloadItem> {
    let (keys, item) = match kind {
        "put" => (PUT_KEYS, "a `put` item"),
        "delete" => (DELETE_KEYS, "a `delete` item"),
        _ => (PING_KEYS, "a `ping` item"),
    };
    let mut at_ns = None;
    let mut target = None;
    let mut operation = None;
    for entry in entries {
        let value = &entry.value;
        match entry.key.as_str() {
            key if !keys.contains(&key) => return Err(not_applicable(entry, WORKLOAD_KEYS, item)),
            "at" => at_ns = Some(context.time_before_end(value, "at")?),
            "node" => target = Some(context.node(value)?),
            "put" => operation = Some(Operation::Put(put_body(value)?)),
            "ping" => operation = Some(Operation::Ping(context.node(value)?)),
            _ => operation = Some(Operation::Delete(non_empty_key(value)?)),
        }
    }
    let at_ns = required(at_ns, node.span, "at")?;
    let node_index = required(target, node.span, "node")?;
    let kind_key = match kind {
        "put" => "put",
        "delete" => "delete",
        _ => "ping",
    };
    Ok(match required(operation, node.span, kind_key)? {
        Operation::Put((key, value)) => WorkloadItem::Put { at_ns, node: node_index, key, value },
        Operation::Delete(key) => WorkloadItem::Delete { at_ns, node: node_index, key },
        Operation::Ping(target) => WorkloadItem::Ping { at_ns, node: node_index, target },
    })
}

/// The body of a point item, before its time and node are known.
enum Operation {
    Put((String, String)),
    Delete(String),
    Ping(NodeIndex),
}

fn put_body(node: &Node) -> Result<(String, String)> {
    const KEYS: &[&str] = &["key", "value"];
    let mut key = None;
    let mut value = None;
    for entry in mapping(node, "a mapping like {key: k, value: v}")? {
        match entry.key.as_str() {
            "key" => key = Some(non_empty_key(&entry.value)?),
            "value" => value = Some(text(&entry.value, EXPECTED_TEXT)?.to_owned()),
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok((required(key, node.span, "key")?, required(value, node.span, "value")?))
}

fn non_empty_key(node: &Node) -> Result<String> {
    let key = text(node, EXPECTED_KEY)?;
    if key.is_empty() {
        return Err(super::parse::wrong_type(node, EXPECTED_KEY));
    }
    Ok(key.to_owned())
}

fn random_puts(node: &Node, entries: &[Entry], context: &Context<'_>) -> Result<RandomPuts> {
    let mut from: Option<(u64, &Node)> = None;
    let mut until: Option<(u64, &Node)> = None;
    let mut rate = None;
    let mut keys_count = None;
    let mut nodes = NodeSelection::All;
    let mut value_bytes = ValueBytes { min: 8, max: 8 };
    let mut key_bytes = None;
    let mut deletes_per_million = 0;
    let mut hot_keys = None;
    let mut burst = None;
    for entry in entries {
        let value = &entry.value;
        match entry.key.as_str() {
            key if !RANDOM_KEYS.contains(&key) => {
                return Err(not_applicable(entry, WORKLOAD_KEYS, "a `rate` item"));
            }
            "from" => from = Some((context.time_before_end(value, "from")?, value)),
            "until" => until = Some((context.time_until_end(value, "until")?, value)),
            "rate" => rate = Some(scalar(value, EXPECTED_RATE, parse_rate)?),
            "keys" => {
                keys_count = Some(scalar(value, EXPECTED_WHOLE, |text| {
                    parse_whole(text, "`keys`", 1, KEYS_COUNT_MAX)
                })?);
            }
            "nodes" => nodes = context.selection(value, "`nodes`")?,
            "key_bytes" => {
                let length = scalar(value, EXPECTED_WHOLE, |text| {
                    parse_whole(text, "`key_bytes`", 1, u64::from(KEY_BYTES_MAX))
                })?;
                // The limit fits u32, so the conversion cannot fail.
                key_bytes = Some(u32::try_from(length).unwrap_or(KEY_BYTES_MAX));
            }
            "deletes" => deletes_per_million = per_million(probability(value, "deletes")?),
            "hot_keys" => hot_keys = Some(read_hot_keys(value)?),
            "burst" => {
                let count = |node: &Node| {
                    scalar(node, EXPECTED_WHOLE, |text| parse_whole(text, "`count`", 1, BURST_OPERATIONS_MAX))
                };
                let (every_ns, operations_count) = periodic(value, &["every", "count"], count)?;
                burst = Some(Burst { every_ns, operations_count });
            }
            _ => value_bytes = scalar(value, EXPECTED_WHOLE_RANGE, parse_value_bytes)?,
        }
    }
    if let (Some((from_ns, from_node)), Some((until_ns, until_node))) = (from, until) {
        check_window(from_ns, from_node, until_ns, until_node)?;
    }
    Ok(RandomPuts {
        from_ns: from.map_or(0, |(from_ns, _)| from_ns),
        until_ns: until.map_or(context.duration_ns, |(until_ns, _)| until_ns),
        rate: required(rate, node.span, "rate")?,
        keys_count: required(keys_count, node.span, "keys")?,
        nodes,
        value_bytes,
        key_bytes,
        deletes_per_million,
        hot_keys,
        burst,
    })
}

/// A probability in millionths, rounded to the nearest.
fn per_million(probability: f64) -> u32 {
    // `probability` lies in 0..=1, so the product fits.
    (probability * 1_000_000.0).round() as u32
}

/// Parses `N` (the range `N..=N`) or `MIN..MAX`, both ends included, each 0 to
/// [`VALUE_BYTES_MAX`].
fn parse_value_bytes(text: &str) -> std::result::Result<ValueBytes, ErrorKind> {
    let end = |part: &str| {
        // A malformed end is a malformed range: quote all of it.
        let length =
            parse_whole(part.trim(), "`value_bytes`", 0, u64::from(VALUE_BYTES_MAX)).map_err(|kind| {
                match kind {
                    ErrorKind::WrongType { .. } => ErrorKind::WrongType {
                        expected: EXPECTED_WHOLE_RANGE,
                        found: format!("{:?}", shorten(text)),
                    },
                    other => other,
                }
            })?;
        // The limit fits u32, so the conversion cannot fail.
        Ok(u32::try_from(length).unwrap_or(VALUE_BYTES_MAX))
    };
    let Some((start, finish)) = text.split_once("..") else {
        let length = end(text)?;
        return Ok(ValueBytes { min: length, max: length });
    };
    let (min, max) = (end(start)?, end(finish)?);
    if min > max {
        return Err(ErrorKind::InvertedRange { text: shorten(text) });
    }
    Ok(ValueBytes { min, max })
}

/// Reads `{keys, share, writers}`; `keys` and `share` are required.
fn read_hot_keys(node: &Node) -> Result<HotKeys> {
    let mut keys_count = None;
    let mut share_per_million = None;
    let mut writers_count = 2;
    for entry in mapping(node, "a mapping like {keys: 2, share: 0.3, writers: 3}")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "keys" => {
                let parse = |text: &str| parse_whole(text, "`keys`", 1, HOT_KEYS_COUNT_MAX);
                keys_count = Some(scalar(value, EXPECTED_WHOLE, parse)?);
            }
            "share" => share_per_million = Some(per_million(probability(value, "share")?)),
            "writers" => {
                let parse = |text: &str| parse_whole(text, "`writers`", 1, HOT_WRITERS_MAX);
                writers_count = scalar(value, EXPECTED_WHOLE, parse)?;
            }
            _ => return Err(unknown_key(entry, HOT_KEYS_KEYS)),
        }
    }
    Ok(HotKeys {
        keys_count: required(keys_count, node.span, "keys")?,
        share_per_million: required(share_per_million, node.span, "share")?,
        writers_count,
    })
}

fn check_window(from_ns: u64, from_node: &Node, until_ns: u64, until_node: &Node) -> Result<()> {
    if until_ns <= from_ns {
        let from = shorten(text(from_node, "").unwrap_or_default());
        let until = shorten(text(until_node, "").unwrap_or_default());
        return Err(Located::new(until_node.span, ErrorKind::UntilNotAfterFrom { from, until }));
    }
    Ok(())
}

// ----- faults -----

pub(crate) fn faults(node: &Node, context: &Context<'_>) -> Result<Vec<(Fault, FaultSource)>> {
    sequence(node, "a list of faults")?.iter().map(|item| fault(item, context)).collect()
}

fn fault(node: &Node, context: &Context<'_>) -> Result<(Fault, FaultSource)> {
    let entries = mapping(node, "a fault like {at: 10s, crash: a}")?;
    let kind_name = kind_key(
        node,
        entries,
        "fault",
        FAULT_KEYS,
        FAULT_KINDS,
        "`partition`, `cut`, `link`, `crash`, `restart`, `isolate`, `clock_jump`, `heal`, `break`, `corrupt`, \
         `replay`, `clog`, `pause` or `disk_fault`",
    )?;
    // The start (`at` or `from`, one of them) and the optional end (`until` or `for`).
    let mut start: Option<(u64, &str, &'static str)> = None;
    let mut end: Option<(&Entry, &'static str)> = None;
    let mut kind: Option<(FaultKind, Span)> = None;
    let mut drawn = false;
    for entry in entries {
        let value = &entry.value;
        match entry.key.as_str() {
            "drawn" => {
                drawn = boolean(value)?;
                continue;
            }
            "at" | "from" => {
                let key = if entry.key == "at" { "at" } else { "from" };
                if let Some((_, _, first)) = start {
                    let kind = ErrorKind::Conflict { item: "fault", first, second: key };
                    return Err(Located::new(entry.key_span, kind));
                }
                start = Some((context.time_before_end(value, key)?, text(value, "")?, key));
                continue;
            }
            "until" | "for" => {
                let key = if entry.key == "until" { "until" } else { "for" };
                if let Some((_, first)) = end {
                    let kind = ErrorKind::Conflict { item: "fault", first, second: key };
                    return Err(Located::new(entry.key_span, kind));
                }
                if !LASTING_KINDS.contains(&kind_name) {
                    let kind = ErrorKind::CannotLast { kind: kind_name, key };
                    return Err(Located::new(entry.key_span, kind));
                }
                end = Some((entry, key));
                continue;
            }
            _ => {}
        }
        let fault_kind = match kind_name {
            "partition" => FaultKind::Partition { groups: partition(value, context)? },
            "cut" => cut(value, context)?,
            "link" => FaultKind::Link(link(value, context)?),
            "crash" => FaultKind::Crash { node: context.node(value)? },
            "restart" => FaultKind::Restart { node: context.node(value)? },
            "isolate" => FaultKind::Isolate { node: context.node(value)? },
            "clock_jump" => clock_jump(value, context)?,
            "heal" => FaultKind::Heal { nodes: context.selection(value, "`heal`")? },
            "corrupt" => corrupt(value, context)?,
            "replay" => replay(value, context)?,
            "clog" => clog(value, context)?,
            "pause" => FaultKind::Pause { node: context.node(value)? },
            "disk_fault" => disk_fault(value, context)?,
            _ => {
                let between = between(value, context)?;
                if matches!(
                    context.transport_between(between[0], between[1]),
                    Some(Transport::Datagram | Transport::Quic)
                ) {
                    return Err(Located::new(entry.key_span, ErrorKind::BreakNeedsStream));
                }
                FaultKind::Break { between }
            }
        };
        kind = Some((fault_kind, value.span));
    }
    let Some((at_ns, at_text, start_key)) = start else {
        // `from` is the word for a lasting fault, `at` for an instant one.
        return Err(Located::new(
            node.span,
            ErrorKind::MissingKey { key: if end.is_some() { "from" } else { "at" } },
        ));
    };
    let until_ns = match end {
        None => None,
        Some((entry, "until")) => {
            let until_ns = context.time_until_end(&entry.value, "until")?;
            if until_ns <= at_ns {
                let from = shorten(at_text);
                let until = shorten(text(&entry.value, "")?);
                return Err(Located::new(entry.value.span, ErrorKind::UntilNotAfterFrom { from, until }));
            }
            Some(until_ns)
        }
        Some((entry, _)) => {
            let length_ns = duration(&entry.value)?;
            if length_ns == 0 {
                let text = shorten(text(&entry.value, "")?);
                let kind = ErrorKind::DurationTooShort { key: "for", text, minimum: "1ns" };
                return Err(Located::new(entry.value.span, kind));
            }
            let until_ns = at_ns.saturating_add(length_ns);
            if until_ns > context.duration_ns {
                let kind = ErrorKind::EndsAfterRun {
                    text: shorten(text(&entry.value, "")?),
                    end: format_duration(until_ns),
                    duration: shorten(context.duration_text),
                };
                return Err(Located::new(entry.value.span, kind));
            }
            Some(until_ns)
        }
    };
    if start_key == "from" && until_ns.is_none() {
        return Err(Located::new(node.span, ErrorKind::MissingKey { key: "until" }));
    }
    if until_ns.is_none() && WINDOW_KINDS.contains(&kind_name) {
        return Err(Located::new(node.span, ErrorKind::NeedsEnd { kind: kind_name }));
    }
    let (kind, subject_span) = required(kind, node.span, kind_name)?;
    Ok((
        Fault { at_ns, until_ns, kind, drawn, span: node.span },
        FaultSource { subject_span, at_text: at_text.to_owned() },
    ))
}

/// A duration in the scenario notation (`2.5s`), for messages.
pub(crate) fn format_duration(nanos: u64) -> String {
    let seconds = nanos / 1_000_000_000;
    let fraction = nanos % 1_000_000_000;
    if fraction == 0 {
        return format!("{seconds}s");
    }
    let digits = format!("{fraction:09}");
    format!("{seconds}.{}s", digits.trim_end_matches('0'))
}

/// Groups as written, then the unlisted nodes as one more group.
fn partition(node: &Node, context: &Context<'_>) -> Result<Vec<Vec<NodeIndex>>> {
    let groups = sequence(node, "a list of node groups like [[a, b], [c]]")?;
    if groups.is_empty() {
        return Err(Located::new(node.span, ErrorKind::EmptyList { what: "partition" }));
    }
    let mut listed = vec![false; context.nodes.names.len()];
    let mut result = Vec::with_capacity(groups.len() + 1);
    for group in groups {
        let members = sequence(group, "a list of node names")?;
        if members.is_empty() {
            return Err(Located::new(group.span, ErrorKind::EmptyList { what: "partition group" }));
        }
        let mut indices = Vec::with_capacity(members.len());
        for member in members {
            let index = context.node(member)?;
            if listed[index] {
                return Err(context.listed_twice(member, index));
            }
            listed[index] = true;
            indices.push(index);
        }
        result.push(indices);
    }
    let rest: Vec<NodeIndex> = (0..listed.len()).filter(|&index| !listed[index]).collect();
    if !rest.is_empty() {
        result.push(rest);
    }
    Ok(result)
}

fn cut(node: &Node, context: &Context<'_>) -> Result<FaultKind> {
    const KEYS: &[&str] = &["from", "to"];
    let mut from = None;
    let mut to = None;
    for entry in mapping(node, "a mapping like {from: a, to: b}")? {
        match entry.key.as_str() {
            "from" => from = Some(context.node(&entry.value)?),
            "to" => to = Some((context.node(&entry.value)?, &entry.value)),
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    let from = required(from, node.span, "from")?;
    let (to, to_node) = required(to, node.span, "to")?;
    if from == to {
        return Err(context.self_link(to_node, to));
    }
    Ok(FaultKind::Cut { from, to })
}

fn link(node: &Node, context: &Context<'_>) -> Result<LinkOverride> {
    const KEYS: &[&str] = &["between", "latency", "loss", "duplicate", "reorder", "bandwidth", "queue"];
    let mut between = None;
    let mut link = LinkOverride {
        between: [0, 0],
        latency_ns: None,
        loss: None,
        duplicate: None,
        reorder: None,
        bandwidth_bits_per_second: None,
        queue_messages_max: None,
    };
    for entry in mapping(node, "a mapping like {between: [a, b], loss: 0.5}")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "between" => between = Some(context.pair(value)?),
            "latency" => link.latency_ns = Some(range(value)?),
            "loss" => link.loss = Some(probability(value, "loss")?),
            "duplicate" => link.duplicate = Some(probability(value, "duplicate")?),
            "reorder" => link.reorder = Some(probability(value, "reorder")?),
            "bandwidth" => {
                link.bandwidth_bits_per_second = Some(scalar(value, EXPECTED_BANDWIDTH, parse_bandwidth)?)
            }
            "queue" => link.queue_messages_max = Some(queue(value)?),
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    link.between = required(between, node.span, "between")?;
    Ok(link)
}

/// A queue bound: a whole number of messages, 1 to [`QUEUE_MESSAGES_MAX`].
pub(crate) fn queue(node: &Node) -> Result<u64> {
    scalar(node, EXPECTED_WHOLE, |text| parse_whole(text, "`queue`", 1, QUEUE_MESSAGES_MAX))
}

fn corrupt(node: &Node, context: &Context<'_>) -> Result<FaultKind> {
    const KEYS: &[&str] = &["between", "probability"];
    let mut between = None;
    let mut chance = None;
    for entry in mapping(node, "a mapping like {between: [a, b], probability: 0.1}")? {
        match entry.key.as_str() {
            "between" => between = Some(context.pair(&entry.value)?),
            "probability" => chance = Some(probability(&entry.value, "probability")?),
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok(FaultKind::Corrupt {
        between: required(between, node.span, "between")?,
        probability: required(chance, node.span, "probability")?,
    })
}

fn replay(node: &Node, context: &Context<'_>) -> Result<FaultKind> {
    const KEYS: &[&str] = &["between", "count"];
    let mut between = None;
    let mut count = 1;
    for entry in mapping(node, "a mapping like {between: [a, b], count: 5}")? {
        match entry.key.as_str() {
            "between" => between = Some(context.pair(&entry.value)?),
            "count" => count = replay_count(&entry.value)?,
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok(FaultKind::Replay { between: required(between, node.span, "between")?, count })
}

fn replay_count(node: &Node) -> Result<u32> {
    let count = scalar(node, EXPECTED_WHOLE, |text| parse_whole(text, "`count`", 1, REPLAY_COUNT_MAX))?;
    // The limit fits u32, so the conversion cannot fail.
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

fn clog(node: &Node, context: &Context<'_>) -> Result<FaultKind> {
    const KEYS: &[&str] = &["between", "from", "to"];
    let entries = mapping(node, "a mapping like {between: [a, b]} or {from: a, to: b}")?;
    if entries.iter().any(|entry| entry.key == "between") {
        let mut between = None;
        for entry in entries {
            match entry.key.as_str() {
                "between" => between = Some(context.pair(&entry.value)?),
                "from" | "to" => {
                    let kind = ErrorKind::Conflict {
                        item: "clog",
                        first: "between",
                        second: if entry.key == "from" { "from" } else { "to" },
                    };
                    return Err(Located::new(entry.key_span, kind));
                }
                _ => return Err(unknown_key(entry, KEYS)),
            }
        }
        let [from, to] = required(between, node.span, "between")?;
        return Ok(FaultKind::Clog { from, to, both: true });
    }
    match cut(node, context) {
        Ok(FaultKind::Cut { from, to }) => Ok(FaultKind::Clog { from, to, both: false }),
        Ok(_) => Err(Located::new(node.span, ErrorKind::MissingKey { key: "between" })),
        Err(error) => Err(error),
    }
}

fn disk_fault(node: &Node, context: &Context<'_>) -> Result<FaultKind> {
    const KEYS: &[&str] = &["node", "kind"];
    let mut target = None;
    let mut kind = None;
    for entry in mapping(node, "a mapping like {node: a, kind: fsync_fail}")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "node" => target = Some(context.node(value)?),
            "kind" => {
                kind = Some(match text(value, "`fsync_fail`, `full` or `misdirected`")? {
                    "fsync_fail" => DiskFaultKind::FsyncFail,
                    "full" => DiskFaultKind::Full,
                    "misdirected" => DiskFaultKind::Misdirected,
                    other => {
                        let kind = ErrorKind::UnknownName {
                            what: "disk fault kind",
                            name: shorten(other),
                            suggestion: super::suggest(other, DISK_FAULT_KINDS),
                            expected: DISK_FAULT_KINDS,
                        };
                        return Err(Located::new(value.span, kind));
                    }
                });
            }
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok(FaultKind::DiskFault {
        node: required(target, node.span, "node")?,
        kind: required(kind, node.span, "kind")?,
    })
}

fn between(node: &Node, context: &Context<'_>) -> Result<[NodeIndex; 2]> {
    let mut between = None;
    for entry in mapping(node, "a mapping like {between: [a, b]}")? {
        match entry.key.as_str() {
            "between" => between = Some(context.pair(&entry.value)?),
            _ => return Err(unknown_key(entry, &["between"])),
        }
    }
    required(between, node.span, "between")
}

fn clock_jump(node: &Node, context: &Context<'_>) -> Result<FaultKind> {
    const KEYS: &[&str] = &["node", "by"];
    let mut target = None;
    let mut by_ns = None;
    for entry in mapping(node, "a mapping like {node: a, by: -2s}")? {
        match entry.key.as_str() {
            "node" => target = Some(context.node(&entry.value)?),
            "by" => by_ns = Some(scalar(&entry.value, EXPECTED_SIGNED_DURATION, parse_signed_duration_ns)?),
            _ => return Err(unknown_key(entry, KEYS)),
        }
    }
    Ok(FaultKind::ClockJump {
        node: required(target, node.span, "node")?,
        by_ns: required(by_ns, node.span, "by")?,
    })
}

// ----- chaos -----

pub(crate) fn chaos(node: &Node, context: &Context<'_>) -> Result<Chaos> {
    let mut until_ns = None;
    let mut chaos = Chaos::quiet(0);
    for entry in mapping(node, "a mapping of random faults")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "until" => until_ns = Some(context.time_until_end(value, "until")?),
            "crash" => {
                let (every_ns, downtime_ns) = periodic(value, &["every", "downtime"], range)?;
                chaos.crash = Some(ChaosCrash { every_ns, downtime_ns });
            }
            "partition" => {
                let (every_ns, duration_ns) = periodic(value, &["every", "duration"], range)?;
                chaos.partition = Some(ChaosWindow { every_ns, duration_ns });
            }
            "cut" => {
                let (every_ns, duration_ns) = periodic(value, &["every", "duration"], range)?;
                chaos.cut = Some(ChaosWindow { every_ns, duration_ns });
            }
            "clock_jump" => {
                let signed_range = |node: &Node| scalar(node, EXPECTED_SIGNED_RANGE, parse_signed_range_ns);
                let (every_ns, by_ns) = periodic(value, &["every", "by"], signed_range)?;
                chaos.clock_jump = Some(ChaosClockJump { every_ns, by_ns });
            }
            "corrupt" | "clog" | "pause" | "disk_fault" => {
                let (every_ns, duration_ns) = periodic(value, &["every", "duration"], range)?;
                let window = Some(ChaosWindow { every_ns, duration_ns });
                match entry.key.as_str() {
                    "corrupt" => chaos.corrupt = window,
                    "clog" => chaos.clog = window,
                    "pause" => chaos.pause = window,
                    _ => chaos.disk_fault = window,
                }
            }
            "replay" => {
                let (every_ns, count) = periodic(value, &["every", "count"], replay_count)?;
                chaos.replay = Some(ChaosReplay { every_ns, count });
            }
            "swarm" => chaos.swarm = boolean(value)?,
            _ => return Err(unknown_key(entry, CHAOS_KEYS)),
        }
    }
    chaos.until_ns = required(until_ns, node.span, "until")?;
    Ok(chaos)
}

/// Reads `{every, SIZE}`, where `keys` is `["every", SIZE]` and SIZE is read by
/// `read_size`; both are required.
fn periodic<T>(
    node: &Node,
    keys: &'static [&'static str; 2],
    read_size: impl Fn(&Node) -> Result<T>,
) -> Result<(u64, T)> {
    let size_key = keys[1];
    let mut every_ns = None;
    let mut size = None;
    for entry in mapping(node, "a mapping like {every: 10s, duration: 1s..5s}")? {
        let value = &entry.value;
        match entry.key.as_str() {
            "every" => {
                let interval_ns = duration(value)?;
                if interval_ns < CHAOS_EVERY_NS_MIN {
                    let text = shorten(text(value, "")?);
                    let kind =
                        ErrorKind::DurationTooShort { key: "every", text, minimum: CHAOS_EVERY_MIN_TEXT };
                    return Err(Located::new(value.span, kind));
                }
                every_ns = Some(interval_ns);
            }
            key if key == size_key => size = Some(read_size(value)?),
            _ => return Err(unknown_key(entry, keys)),
        }
    }
    Ok((required(every_ns, node.span, "every")?, required(size, node.span, size_key)?))
}

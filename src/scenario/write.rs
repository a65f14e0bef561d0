//! Writes a [`Scenario`] back as a scenario file that [`parse`](super::parse()) reads into
//! the same model (positions aside). Used by `ferry run --export-faults` and `ferry shrink`.
//!
//! Only values this module formats itself are written bare: numbers, durations, node names
//! (validated `[A-Za-z0-9_-]`) and fixed words. Every free text (the scenario's name, keys
//! and values of `put` and `delete` items, the trace hash) is written as a double-quoted
//! scalar escaped by `serde_json`: YAML 1.2 reads a JSON string as the same string.
//! Sections equal to their defaults are left out.

use std::fmt::Write as _;

use super::model::{
    Chaos, DiskFaultKind, Fault, FaultKind, NodeSelection, RandomPuts, RangeNs, Rate, Scenario,
    SignedRangeNs, Topology, Transport, ValueBytes, WorkloadItem,
};
use super::{Clock, Disk, Expect, Network};

/// Longest flow item (`- {...}`) written on one line; longer ones are written as block
/// mappings, which the reader does not bound the same way.
const FLOW_CHARS_MAX: usize = 4096;

/// The scenario as YAML text, after the `header` lines (each written as a `# ` comment).
#[must_use]
pub fn to_yaml(scenario: &Scenario, header: &[String]) -> String {
    let mut out = String::new();
    for line in header {
        for part in line.split('\n') {
            let _ = writeln!(out, "# {part}");
        }
    }
    let names = &scenario.nodes;
    let _ = writeln!(out, "name: {}", quoted(&scenario.name));
    if let Some(seed) = scenario.seed {
        let _ = writeln!(out, "seed: {seed}");
    }
    let _ = writeln!(out, "duration: {}", duration(scenario.duration_ns));
    let _ = writeln!(out, "nodes: {}", nodes(names));
    match &scenario.topology {
        Topology::FullMesh => {}
        Topology::Ring => out.push_str("topology: ring\n"),
        Topology::Line => out.push_str("topology: line\n"),
        Topology::Star => out.push_str("topology: star\n"),
        Topology::Edges(edges) => {
            out.push_str("topology:\n  edges:\n");
            for (low, high) in edges {
                let _ = writeln!(out, "    - [{}, {}]", names[*low], names[*high]);
            }
        }
    }
    if scenario.routing {
        out.push_str("routing: true\n");
    }
    network(&mut out, &scenario.network, names);
    clock(&mut out, &scenario.clock);
    disk(&mut out, &scenario.disk);
    if !scenario.workload.is_empty() {
        out.push_str("workload:\n");
        for item in &scenario.workload {
            list_item(&mut out, &workload_item(item, names));
        }
    }
    if !scenario.faults.is_empty() {
        out.push_str("faults:\n");
        for item in &scenario.faults {
            list_item(&mut out, &fault(item, names));
        }
    }
    if let Some(chaos) = &scenario.chaos {
        write_chaos(&mut out, chaos);
    }
    expect(&mut out, &scenario.expect);
    out
}

/// A JSON string literal, which YAML reads as the same string.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// `3s`, `250ms`, else exact decimal seconds (`3.765892058s`).
#[must_use]
pub fn duration(ns: u64) -> String {
    if ns.is_multiple_of(1_000_000_000) {
        return format!("{}s", ns / 1_000_000_000);
    }
    if ns.is_multiple_of(1_000_000) {
        return format!("{}ms", ns / 1_000_000);
    }
    let fraction = format!("{:09}", ns % 1_000_000_000);
    format!("{}.{}s", ns / 1_000_000_000, fraction.trim_end_matches('0'))
}

fn signed_duration(ns: i64) -> String {
    if ns < 0 { format!("-{}", duration(ns.unsigned_abs())) } else { duration(ns as u64) }
}

fn range(range: RangeNs) -> String {
    if range.min_ns == range.max_ns {
        duration(range.min_ns)
    } else {
        format!("{}..{}", duration(range.min_ns), duration(range.max_ns))
    }
}

fn signed_range(range: SignedRangeNs) -> String {
    if range.min_ns == range.max_ns {
        signed_duration(range.min_ns)
    } else {
        format!("{}..{}", signed_duration(range.min_ns), signed_duration(range.max_ns))
    }
}

/// Rust prints the shortest text that reads back as the same `f64`, never in exponent form.
fn number(value: f64) -> String {
    format!("{value}")
}

/// Millionths as a decimal fraction (`200000` is `0.2`).
fn per_million(value: u32) -> String {
    number(f64::from(value) / 1_000_000.0)
}

fn rate(rate: Rate) -> String {
    let unit = match rate.period_ns {
        1_000_000 => "ms",
        60_000_000_000 => "m",
        _ => "s",
    };
    format!("{}/{unit}", rate.operations_count)
}

fn bandwidth(bits_per_second: u64) -> String {
    format!("{bits_per_second}bps")
}

fn nodes(names: &[String]) -> String {
    let counted = names.iter().enumerate().all(|(index, name)| *name == format!("n{index}"));
    if counted {
        return names.len().to_string();
    }
    let flow = format!("[{}]", names.join(", "));
    if flow.len() <= FLOW_CHARS_MAX {
        return flow;
    }
    // A long list in block style, which the reader does not bound like a flow list.
    names.iter().map(|name| format!("\n  - {name}")).collect()
}

fn selection(selection: &NodeSelection, names: &[String]) -> String {
    match selection {
        NodeSelection::All => "all".to_owned(),
        NodeSelection::Listed(nodes) => {
            format!("[{}]", nodes.iter().map(|node| names[*node].as_str()).collect::<Vec<_>>().join(", "))
        }
    }
}

fn pair(between: [usize; 2], names: &[String]) -> String {
    format!("[{}, {}]", names[between[0]], names[between[1]])
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Datagram => "datagram",
        Transport::Stream => "stream",
        Transport::Quic => "quic",
    }
}

fn network(out: &mut String, network: &Network, names: &[String]) {
    let defaults = Network::default();
    let mut lines = Vec::new();
    if network.transport != defaults.transport {
        lines.push(format!("transport: {}", transport_name(network.transport)));
    }
    if !network.links.is_empty() {
        lines.push("links:".to_owned());
        for link in &network.links {
            lines.push(format!(
                "  - {{between: {}, transport: {}}}",
                pair(link.between, names),
                transport_name(link.transport)
            ));
        }
    }
    if network.latency_ns != defaults.latency_ns {
        lines.push(format!("latency: {}", range(network.latency_ns)));
    }
    for (key, value, default) in [
        ("loss", network.loss, defaults.loss),
        ("duplicate", network.duplicate, defaults.duplicate),
        ("reorder", network.reorder, defaults.reorder),
    ] {
        if value.to_bits() != default.to_bits() {
            lines.push(format!("{key}: {}", number(value)));
        }
    }
    if let Some(bits) = network.bandwidth_bits_per_second {
        lines.push(format!("bandwidth: {}", bandwidth(bits)));
    }
    if let Some(queue) = network.queue_messages_max {
        lines.push(format!("queue: {queue}"));
    }
    if network.cluster_secret {
        lines.push("cluster_secret: true".to_owned());
    }
    section(out, "network", &lines);
}

fn clock(out: &mut String, clock: &Clock) {
    let mut lines = Vec::new();
    if clock.skew_ns != 0 {
        lines.push(format!("skew: {}", duration(clock.skew_ns)));
    }
    if clock.drift_ppm != 0 {
        lines.push(format!("drift_ppm: {}", clock.drift_ppm));
    }
    section(out, "clock", &lines);
}

fn disk(out: &mut String, disk: &Disk) {
    let defaults = Disk::default();
    let mut lines = Vec::new();
    if disk.fsync_latency_ns != defaults.fsync_latency_ns {
        lines.push(format!("fsync_latency: {}", range(disk.fsync_latency_ns)));
    }
    if disk.lose_unsynced != defaults.lose_unsynced {
        lines.push(format!("lose_unsynced: {}", disk.lose_unsynced));
    }
    if disk.torn_writes != defaults.torn_writes {
        lines.push(format!("torn_writes: {}", disk.torn_writes));
    }
    if disk.corrupt_read.to_bits() != defaults.corrupt_read.to_bits() {
        lines.push(format!("corrupt_read: {}", number(disk.corrupt_read)));
    }
    if disk.compaction_log_bytes != defaults.compaction_log_bytes {
        lines.push(format!("compaction_log_bytes: {}", disk.compaction_log_bytes));
    }
    if disk.compaction_horizon_ns != defaults.compaction_horizon_ns {
        lines.push(format!("compaction_horizon: {}", duration(disk.compaction_horizon_ns)));
    }
    section(out, "disk", &lines);
}

fn expect(out: &mut String, expect: &Expect) {
    let defaults = Expect::default();
    let mut lines = Vec::new();
    if expect.converged != defaults.converged {
        lines.push(format!("converged: {}", expect.converged));
    }
    if expect.within_ns != defaults.within_ns {
        lines.push(format!("within: {}", duration(expect.within_ns)));
    }
    if expect.no_data_loss != defaults.no_data_loss {
        lines.push(format!("no_data_loss: {}", expect.no_data_loss));
    }
    if let Some(hash) = &expect.trace_hash {
        lines.push(format!("trace_hash: {}", quoted(hash)));
    }
    section(out, "expect", &lines);
}

fn section(out: &mut String, name: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{name}:");
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
}

/// One `- {key: value, ...}` item: on one line when short, else as a block mapping.
fn list_item(out: &mut String, entries: &[(&str, String)]) {
    let flow = entries.iter().map(|(key, value)| format!("{key}: {value}")).collect::<Vec<_>>().join(", ");
    if flow.len() <= FLOW_CHARS_MAX {
        let _ = writeln!(out, "  - {{{flow}}}");
        return;
    }
    for (index, (key, value)) in entries.iter().enumerate() {
        let lead = if index == 0 { "  - " } else { "    " };
        let _ = writeln!(out, "{lead}{key}: {value}");
    }
}

fn workload_item(item: &WorkloadItem, names: &[String]) -> Vec<(&'static str, String)> {
    match item {
        WorkloadItem::Put { at_ns, node, key, value } => vec![
            ("at", duration(*at_ns)),
            ("node", names[*node].clone()),
            ("put", format!("{{key: {}, value: {}}}", quoted(key), quoted(value))),
        ],
        WorkloadItem::Delete { at_ns, node, key } => {
            vec![("at", duration(*at_ns)), ("node", names[*node].clone()), ("delete", quoted(key))]
        }
        WorkloadItem::Ping { at_ns, node, target } => {
            vec![("at", duration(*at_ns)), ("node", names[*node].clone()), ("ping", names[*target].clone())]
        }
        WorkloadItem::Random(puts) => random_item(puts, names),
    }
}

fn random_item(puts: &RandomPuts, names: &[String]) -> Vec<(&'static str, String)> {
    let mut entries = vec![
        ("from", duration(puts.from_ns)),
        ("until", duration(puts.until_ns)),
        ("rate", rate(puts.rate)),
        ("keys", puts.keys_count.to_string()),
        ("nodes", selection(&puts.nodes, names)),
    ];
    let ValueBytes { min, max } = puts.value_bytes;
    if (min, max) != (8, 8) {
        let text = if min == max { min.to_string() } else { format!("{min}..{max}") };
        entries.push(("value_bytes", text));
    }
    if let Some(length) = puts.key_bytes {
        entries.push(("key_bytes", length.to_string()));
    }
    if puts.deletes_per_million != 0 {
        entries.push(("deletes", per_million(puts.deletes_per_million)));
    }
    if let Some(hot) = &puts.hot_keys {
        entries.push((
            "hot_keys",
            format!(
                "{{keys: {}, share: {}, writers: {}}}",
                hot.keys_count,
                per_million(hot.share_per_million),
                hot.writers_count
            ),
        ));
    }
    if let Some(burst) = &puts.burst {
        entries.push((
            "burst",
            format!("{{every: {}, count: {}}}", duration(burst.every_ns), burst.operations_count),
        ));
    }
    entries
}

fn fault(item: &Fault, names: &[String]) -> Vec<(&'static str, String)> {
    let mut entries = Vec::new();
    match item.until_ns {
        Some(until_ns) => {
            entries.push(("from", duration(item.at_ns)));
            entries.push(("until", duration(until_ns)));
        }
        None => entries.push(("at", duration(item.at_ns))),
    }
    let name = |node: &usize| names[*node].clone();
    let (key, value) = match &item.kind {
        FaultKind::Partition { groups } => {
            // The last group is implicit when it holds exactly the unlisted nodes; writing
            // it anyway reads back the same.
            let groups: Vec<String> = groups
                .iter()
                .map(|group| format!("[{}]", group.iter().map(name).collect::<Vec<_>>().join(", ")))
                .collect();
            ("partition", format!("[{}]", groups.join(", ")))
        }
        FaultKind::Cut { from, to } => ("cut", format!("{{from: {}, to: {}}}", name(from), name(to))),
        FaultKind::Link(change) => {
            let mut parts = vec![format!("between: {}", pair(change.between, names))];
            if let Some(latency) = change.latency_ns {
                parts.push(format!("latency: {}", range(latency)));
            }
            for (key, value) in
                [("loss", change.loss), ("duplicate", change.duplicate), ("reorder", change.reorder)]
            {
                if let Some(value) = value {
                    parts.push(format!("{key}: {}", number(value)));
                }
            }
            if let Some(bits) = change.bandwidth_bits_per_second {
                parts.push(format!("bandwidth: {}", bandwidth(bits)));
            }
            if let Some(queue) = change.queue_messages_max {
                parts.push(format!("queue: {queue}"));
            }
            ("link", format!("{{{}}}", parts.join(", ")))
        }
        FaultKind::Crash { node } => ("crash", name(node)),
        FaultKind::Restart { node } => ("restart", name(node)),
        FaultKind::Isolate { node } => ("isolate", name(node)),
        FaultKind::ClockJump { node, by_ns } => {
            ("clock_jump", format!("{{node: {}, by: {}}}", name(node), signed_duration(*by_ns)))
        }
        FaultKind::Heal { nodes } => ("heal", selection(nodes, names)),
        FaultKind::Break { between } => ("break", format!("{{between: {}}}", pair(*between, names))),
        FaultKind::Corrupt { between, probability } => (
            "corrupt",
            format!("{{between: {}, probability: {}}}", pair(*between, names), number(*probability)),
        ),
        FaultKind::Replay { between, count } => {
            ("replay", format!("{{between: {}, count: {count}}}", pair(*between, names)))
        }
        FaultKind::Clog { from, to, both } => {
            if *both {
                ("clog", format!("{{between: {}}}", pair([*from, *to], names)))
            } else {
                ("clog", format!("{{from: {}, to: {}}}", name(from), name(to)))
            }
        }
        FaultKind::Pause { node } => ("pause", name(node)),
        FaultKind::DiskFault { node, kind } => {
            let kind = match kind {
                DiskFaultKind::FsyncFail => "fsync_fail",
                DiskFaultKind::Full => "full",
                DiskFaultKind::Misdirected => "misdirected",
            };
            ("disk_fault", format!("{{node: {}, kind: {kind}}}", name(node)))
        }
    };
    entries.push((key, value));
    if item.drawn {
        entries.push(("drawn", "true".to_owned()));
    }
    entries
}

fn write_chaos(out: &mut String, chaos: &Chaos) {
    let mut lines = vec![format!("until: {}", duration(chaos.until_ns))];
    if let Some(crash) = chaos.crash {
        lines.push(format!(
            "crash: {{every: {}, downtime: {}}}",
            duration(crash.every_ns),
            range(crash.downtime_ns)
        ));
    }
    for (key, window) in [
        ("partition", chaos.partition),
        ("cut", chaos.cut),
        ("corrupt", chaos.corrupt),
        ("clog", chaos.clog),
        ("pause", chaos.pause),
        ("disk_fault", chaos.disk_fault),
    ] {
        if let Some(window) = window {
            lines.push(format!(
                "{key}: {{every: {}, duration: {}}}",
                duration(window.every_ns),
                range(window.duration_ns)
            ));
        }
    }
    if let Some(jump) = chaos.clock_jump {
        lines.push(format!(
            "clock_jump: {{every: {}, by: {}}}",
            duration(jump.every_ns),
            signed_range(jump.by_ns)
        ));
    }
    if let Some(replay) = chaos.replay {
        lines.push(format!("replay: {{every: {}, count: {}}}", duration(replay.every_ns), replay.count));
    }
    if chaos.swarm {
        lines.push("swarm: true".to_owned());
    }
    section(out, "chaos", &lines);
}

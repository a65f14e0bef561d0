//! The reduction passes: each turns the current scenario into an ordered list of smaller
//! or gentler candidates, boldest first. Candidates need not be valid: the shrinker writes
//! each one out and parses it back, and drops those our own parser refuses. Everything here
//! is a pure function of its input, so a shrink is as deterministic as the runs it makes.

use ferry_simulator::ferry::Command;

use crate::scenario::{
    FaultKind, LinkTransport, NodeIndex, NodeSelection, RangeNs, Rate, Scenario, Topology, ValueBytes,
    WorkloadItem,
};

/// One pass: a name for the progress line and the candidates it proposes.
pub struct Pass {
    /// Shown on the progress line.
    pub name: &'static str,
    /// The candidates for a scenario, boldest first.
    pub candidates: fn(&Scenario, &Context) -> Vec<Scenario>,
}

/// What passes may need besides the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The seed every candidate runs with.
    pub seed: u64,
    /// The least time the nodes must get to converge (see [`super`]).
    pub window_floor_ns: u64,
}

/// Most operations a random workload item may draw to be written out as explicit ones.
pub const EXPLICIT_OPERATIONS_MAX: usize = 32;

/// The passes, in the order they run; the shrinker repeats the list until none succeeds.
pub const PASSES: &[Pass] = &[
    Pass { name: "drop faults", candidates: drop_faults },
    Pass { name: "drop nodes", candidates: drop_nodes },
    Pass { name: "drop workload items", candidates: drop_workload },
    Pass { name: "plain faults", candidates: undraw },
    Pass { name: "shorten", candidates: shorten },
    Pass { name: "weaken faults", candidates: weaken_faults },
    Pass { name: "lighten workload", candidates: lighten_workload },
    Pass { name: "explicit writes", candidates: explicit_writes },
    Pass { name: "gentler network", candidates: gentler_network },
    Pass { name: "clock and disk", candidates: clock_and_disk },
    Pass { name: "topology", candidates: simpler_topology },
];

/// Ways to remove some of `count` units, boldest first: all of them, then halves,
/// quarters, ... down to each one alone (the chunks of delta debugging).
fn chunks(count: usize) -> Vec<Vec<usize>> {
    let mut removals: Vec<Vec<usize>> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut size = count;
    while size >= 1 {
        let mut start = 0;
        while start < count {
            let chunk: Vec<usize> = (start..(start + size).min(count)).collect();
            if seen.insert(chunk.clone()) {
                removals.push(chunk);
            }
            start += size;
        }
        if size == 1 {
            break;
        }
        size = size.div_ceil(2);
    }
    removals
}

/// Units of the fault list: each fault alone, except that an instant `crash` and the
/// `restart` of the same node that follows it go together.
fn fault_units(scenario: &Scenario) -> Vec<Vec<usize>> {
    let mut taken = vec![false; scenario.faults.len()];
    let mut units = Vec::new();
    for (index, fault) in scenario.faults.iter().enumerate() {
        if taken[index] {
            continue;
        }
        taken[index] = true;
        let mut unit = vec![index];
        if let (FaultKind::Crash { node }, None) = (&fault.kind, fault.until_ns) {
            let restart = scenario.faults.iter().enumerate().skip(index + 1).find(|(later, other)| {
                !taken[*later]
                    && matches!(other.kind, FaultKind::Restart { node: restarted } if restarted == *node)
            });
            if let Some((later, _)) = restart {
                taken[later] = true;
                unit.push(later);
            }
        }
        units.push(unit);
    }
    units
}

fn drop_faults(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    let units = fault_units(scenario);
    chunks(units.len())
        .into_iter()
        .map(|chunk| {
            let mut removed = vec![false; scenario.faults.len()];
            chunk.iter().flat_map(|unit| &units[*unit]).for_each(|index| removed[*index] = true);
            let mut candidate = scenario.clone();
            candidate.faults = keep(&scenario.faults, &removed);
            candidate
        })
        .collect()
}

fn drop_workload(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    chunks(scenario.workload.len())
        .into_iter()
        .map(|chunk| {
            let mut removed = vec![false; scenario.workload.len()];
            chunk.iter().for_each(|index| removed[*index] = true);
            let mut candidate = scenario.clone();
            candidate.workload = keep(&scenario.workload, &removed);
            candidate
        })
        .collect()
}

fn keep<T: Clone>(items: &[T], removed: &[bool]) -> Vec<T> {
    items.iter().zip(removed).filter(|(_, removed)| !**removed).map(|(item, _)| item.clone()).collect()
}

/// Fewer nodes: first only the first k nodes for growing k (1, 2, 3, 4, 6, 9, 13, ...: a
/// big cluster gets small in one step, and the small candidates run fastest), then chunks
/// of the node list, later nodes first within a size (so the survivors keep the first
/// names), never all of them.
fn drop_nodes(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    let count = scenario.nodes.len();
    let mut removals: Vec<Vec<usize>> = Vec::new();
    let mut kept = 1;
    while kept < count / 2 {
        removals.push((kept..count).collect());
        kept = if kept < 4 { kept + 1 } else { kept + kept / 2 };
    }
    let mut chunked: Vec<Vec<usize>> =
        chunks(count).into_iter().filter(|chunk| chunk.len() < count).collect();
    // Within a size, try the later nodes first.
    chunked.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| b[0].cmp(&a[0])));
    for chunk in chunked {
        if !removals.contains(&chunk) {
            removals.push(chunk);
        }
    }
    removals
        .into_iter()
        .filter_map(|chunk| {
            let mut removed = vec![false; count];
            chunk.iter().for_each(|index| removed[*index] = true);
            without_nodes(scenario, &removed)
        })
        .collect()
}

/// The scenario without the `removed` nodes: every reference is renumbered, and every
/// item or fault that needs a removed node goes too.
#[must_use]
pub fn without_nodes(scenario: &Scenario, removed: &[bool]) -> Option<Scenario> {
    let mut map = Vec::with_capacity(removed.len());
    let mut next = 0;
    for gone in removed {
        map.push((!gone).then(|| {
            next += 1;
            next - 1
        }));
    }
    if next == 0 {
        return None;
    }
    let remap = |node: &NodeIndex| map.get(*node).copied().flatten();
    let mut candidate = scenario.clone();
    candidate.nodes = keep(&scenario.nodes, removed);
    candidate.topology = match &scenario.topology {
        Topology::Edges(edges) => Topology::Edges(
            edges.iter().filter_map(|(low, high)| Some((remap(low)?, remap(high)?))).collect(),
        ),
        other => other.clone(),
    };
    candidate.network.links = scenario
        .network
        .links
        .iter()
        .filter_map(|link| {
            Some(LinkTransport { between: [remap(&link.between[0])?, remap(&link.between[1])?], ..*link })
        })
        .collect();
    let remap_selection = |selection: &NodeSelection| match selection {
        NodeSelection::All => Some(NodeSelection::All),
        NodeSelection::Listed(nodes) => {
            let nodes: Vec<NodeIndex> = nodes.iter().filter_map(remap).collect();
            (!nodes.is_empty()).then_some(NodeSelection::Listed(nodes))
        }
    };
    candidate.workload = scenario
        .workload
        .iter()
        .filter_map(|item| match item {
            WorkloadItem::Put { at_ns, node, key, value } => Some(WorkloadItem::Put {
                at_ns: *at_ns,
                node: remap(node)?,
                key: key.clone(),
                value: value.clone(),
            }),
            WorkloadItem::Delete { at_ns, node, key } => {
                Some(WorkloadItem::Delete { at_ns: *at_ns, node: remap(node)?, key: key.clone() })
            }
            WorkloadItem::Ping { at_ns, node, target } => {
                Some(WorkloadItem::Ping { at_ns: *at_ns, node: remap(node)?, target: remap(target)? })
            }
            WorkloadItem::Random(puts) => {
                let mut puts = puts.clone();
                puts.nodes = remap_selection(&puts.nodes)?;
                let writers = puts.nodes.indices(next).len() as u64;
                if let Some(hot) = &mut puts.hot_keys {
                    hot.writers_count = hot.writers_count.min(writers).max(1);
                }
                Some(WorkloadItem::Random(puts))
            }
        })
        .collect();
    candidate.faults = scenario
        .faults
        .iter()
        .filter_map(|fault| {
            let kind = match &fault.kind {
                FaultKind::Partition { groups } => {
                    let groups: Vec<Vec<NodeIndex>> = groups
                        .iter()
                        .map(|group| group.iter().filter_map(remap).collect::<Vec<_>>())
                        .filter(|group| !group.is_empty())
                        .collect();
                    if groups.len() < 2 {
                        return None;
                    }
                    FaultKind::Partition { groups }
                }
                FaultKind::Cut { from, to } => FaultKind::Cut { from: remap(from)?, to: remap(to)? },
                FaultKind::Link(change) => {
                    let mut change = change.clone();
                    change.between = [remap(&change.between[0])?, remap(&change.between[1])?];
                    FaultKind::Link(change)
                }
                FaultKind::Crash { node } => FaultKind::Crash { node: remap(node)? },
                FaultKind::Restart { node } => FaultKind::Restart { node: remap(node)? },
                FaultKind::Isolate { node } => FaultKind::Isolate { node: remap(node)? },
                FaultKind::ClockJump { node, by_ns } => {
                    FaultKind::ClockJump { node: remap(node)?, by_ns: *by_ns }
                }
                FaultKind::Heal { nodes } => FaultKind::Heal { nodes: remap_selection(nodes)? },
                FaultKind::Break { between } => {
                    FaultKind::Break { between: [remap(&between[0])?, remap(&between[1])?] }
                }
                FaultKind::Corrupt { between, probability } => FaultKind::Corrupt {
                    between: [remap(&between[0])?, remap(&between[1])?],
                    probability: *probability,
                },
                FaultKind::Replay { between, count } => {
                    FaultKind::Replay { between: [remap(&between[0])?, remap(&between[1])?], count: *count }
                }
                FaultKind::Clog { from, to, both } => {
                    FaultKind::Clog { from: remap(from)?, to: remap(to)?, both: *both }
                }
                FaultKind::Pause { node } => FaultKind::Pause { node: remap(node)? },
                FaultKind::DiskFault { node, kind } => {
                    FaultKind::DiskFault { node: remap(node)?, kind: *kind }
                }
            };
            let mut fault = fault.clone();
            fault.kind = kind;
            Some(fault)
        })
        .collect();
    Some(candidate)
}

/// Drawn faults become plain ones and the leftover `chaos: {until}` goes: a file that
/// reads like any other. It changes the trace (and may move the liveness phase), so it is a
/// candidate like the others.
fn undraw(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    let drawn = scenario.faults.iter().any(|fault| fault.drawn);
    let bare_chaos = scenario.chaos.as_ref().is_some_and(|chaos| {
        chaos.crash.is_none()
            && chaos.partition.is_none()
            && chaos.cut.is_none()
            && chaos.clock_jump.is_none()
            && chaos.corrupt.is_none()
            && chaos.replay.is_none()
            && chaos.clog.is_none()
            && chaos.pause.is_none()
            && chaos.disk_fault.is_none()
    });
    if !drawn && !bare_chaos {
        return Vec::new();
    }
    let mut candidate = scenario.clone();
    candidate.faults.iter_mut().for_each(|fault| fault.drawn = false);
    if bare_chaos {
        candidate.chaos = None;
    }
    vec![candidate]
}

/// A time rounded up to a whole millisecond, so shortened files read well.
fn ceil_ms(ns: u64) -> u64 {
    ns.div_ceil(1_000_000) * 1_000_000
}

/// Earlier and shorter: everything moved earlier by the time before the first event,
/// then the run cut to half of what it could lose, down to a millisecond.
fn shorten(scenario: &Scenario, context: &Context) -> Vec<Scenario> {
    let mut candidates = Vec::new();
    // Move every time earlier by the quiet start.
    let first_ns = scenario
        .workload
        .iter()
        .map(|item| match item {
            WorkloadItem::Random(puts) => puts.from_ns,
            other => other.end_ns(),
        })
        .chain(scenario.faults.iter().map(|fault| fault.at_ns))
        .min();
    let shift_ns = first_ns.unwrap_or(0) / 1_000_000 * 1_000_000;
    if shift_ns > 0 && scenario.chaos.is_none() {
        let mut candidate = scenario.clone();
        for item in &mut candidate.workload {
            match item {
                WorkloadItem::Put { at_ns, .. }
                | WorkloadItem::Delete { at_ns, .. }
                | WorkloadItem::Ping { at_ns, .. } => *at_ns -= shift_ns,
                WorkloadItem::Random(puts) => {
                    puts.from_ns -= shift_ns;
                    puts.until_ns -= shift_ns;
                }
            }
        }
        for fault in &mut candidate.faults {
            fault.at_ns -= shift_ns;
            fault.until_ns = fault.until_ns.map(|until_ns| until_ns - shift_ns);
        }
        candidate.duration_ns -= shift_ns;
        candidate.faults.sort_by_key(|fault| fault.at_ns);
        candidates.push(candidate);
    }
    // A shorter run: the shortest that leaves the nodes their time to converge first, then
    // halfway there, and so on (the shrinker refuses any that would cut that time).
    let floor_ns = ceil_ms(latest_event_ns(scenario) + 1);
    let (heal_ns, _) = scenario.liveness_start();
    let shortest_ns = floor_ns.max(ceil_ms(heal_ns.saturating_add(context.window_floor_ns)));
    if shortest_ns < scenario.duration_ns {
        let mut candidate = scenario.clone();
        candidate.duration_ns = shortest_ns;
        candidates.push(candidate);
    }
    if scenario.duration_ns > floor_ns {
        let mut duration_ns = scenario.duration_ns;
        for _ in 0..12 {
            duration_ns = ceil_ms(floor_ns + (duration_ns - floor_ns) / 2);
            if duration_ns >= scenario.duration_ns {
                break;
            }
            let mut candidate = scenario.clone();
            candidate.duration_ns = duration_ns;
            for item in &mut candidate.workload {
                if let WorkloadItem::Random(puts) = item {
                    puts.until_ns = puts.until_ns.min(duration_ns);
                }
            }
            candidates.push(candidate);
            if duration_ns == floor_ns {
                break;
            }
        }
    }
    // Shorter fault windows and random-write windows.
    for (index, fault) in scenario.faults.iter().enumerate() {
        let Some(until_ns) = fault.until_ns else { continue };
        let length_ns = until_ns - fault.at_ns;
        let shorter_ns = ceil_ms(length_ns / 2).max(1_000_000);
        if shorter_ns < length_ns {
            let mut candidate = scenario.clone();
            candidate.faults[index].until_ns = Some(fault.at_ns + shorter_ns);
            candidates.push(candidate);
        }
    }
    for (index, item) in scenario.workload.iter().enumerate() {
        let WorkloadItem::Random(puts) = item else { continue };
        let length_ns = puts.until_ns - puts.from_ns;
        // Only the last (or first) 1ms, 10ms, ... of the window: the writes that matter
        // are often the last ones.
        for window_ns in [1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000] {
            if window_ns * 2 > length_ns {
                break;
            }
            for tail in [true, false] {
                let mut candidate = scenario.clone();
                if let WorkloadItem::Random(puts) = &mut candidate.workload[index] {
                    if tail {
                        puts.from_ns = puts.until_ns - window_ns;
                    } else {
                        puts.until_ns = puts.from_ns + window_ns;
                    }
                }
                candidates.push(candidate);
            }
        }
        let shorter_ns = ceil_ms(length_ns / 2).max(1_000_000);
        if shorter_ns < length_ns {
            // The first half, then the second.
            let mut candidate = scenario.clone();
            if let WorkloadItem::Random(puts) = &mut candidate.workload[index] {
                puts.until_ns = puts.from_ns + shorter_ns;
            }
            candidates.push(candidate);
            let mut candidate = scenario.clone();
            if let WorkloadItem::Random(puts) = &mut candidate.workload[index] {
                puts.from_ns = puts.until_ns - shorter_ns;
            }
            candidates.push(candidate);
        }
    }
    // Rounder times: each point item's and fault's start down to a whole second, a tenth,
    // a millisecond (a window keeps its length where it can).
    for (index, item) in scenario.workload.iter().enumerate() {
        let (WorkloadItem::Put { at_ns, .. }
        | WorkloadItem::Delete { at_ns, .. }
        | WorkloadItem::Ping { at_ns, .. }) = item
        else {
            continue;
        };
        for rounded_ns in rounder(*at_ns) {
            let mut candidate = scenario.clone();
            if let WorkloadItem::Put { at_ns, .. }
            | WorkloadItem::Delete { at_ns, .. }
            | WorkloadItem::Ping { at_ns, .. } = &mut candidate.workload[index]
            {
                *at_ns = rounded_ns;
            }
            candidates.push(candidate);
        }
    }
    for (index, fault) in scenario.faults.iter().enumerate() {
        for rounded_ns in rounder(fault.at_ns) {
            let mut candidate = scenario.clone();
            let moved = &mut candidate.faults[index];
            moved.until_ns = moved.until_ns.map(|until_ns| rounded_ns + (until_ns - moved.at_ns));
            moved.at_ns = rounded_ns;
            candidate.faults.sort_by_key(|fault| fault.at_ns);
            candidates.push(candidate);
        }
        if let Some(until_ns) = fault.until_ns {
            for rounded_ns in rounder(until_ns).into_iter().filter(|rounded_ns| *rounded_ns > fault.at_ns) {
                let mut candidate = scenario.clone();
                candidate.faults[index].until_ns = Some(rounded_ns);
                candidates.push(candidate);
            }
        }
    }
    candidates
}

/// `time` rounded down to a whole second, tenth, hundredth and millisecond: the
/// different ones, roundest first.
fn rounder(time_ns: u64) -> Vec<u64> {
    let mut times = Vec::new();
    for unit_ns in [1_000_000_000, 100_000_000, 10_000_000, 1_000_000] {
        let rounded_ns = time_ns / unit_ns * unit_ns;
        if rounded_ns != time_ns && !times.contains(&rounded_ns) {
            times.push(rounded_ns);
        }
    }
    times
}

/// The latest time the file names: a workload item's end, a fault's end, `chaos.until`.
fn latest_event_ns(scenario: &Scenario) -> u64 {
    let workload = scenario.workload.iter().map(WorkloadItem::end_ns).max().unwrap_or(0);
    workload
        .max(scenario.faults_end_ns())
        .max(scenario.faults.iter().map(|fault| fault.at_ns).max().unwrap_or(0))
}

fn weaken_faults(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    let mut candidates = Vec::new();
    for (index, fault) in scenario.faults.iter().enumerate() {
        let mut weaker = Vec::new();
        match &fault.kind {
            FaultKind::Corrupt { between, probability } if *probability > 0.01 => {
                weaker.push(FaultKind::Corrupt { between: *between, probability: half(*probability) });
            }
            FaultKind::Replay { between, count } if *count > 1 => {
                weaker.push(FaultKind::Replay { between: *between, count: count / 2 });
            }
            FaultKind::ClockJump { node, by_ns } if by_ns.unsigned_abs() > 1_000_000 => {
                let halved = (by_ns / 2) / 1_000_000 * 1_000_000;
                weaker.push(FaultKind::ClockJump { node: *node, by_ns: halved });
            }
            FaultKind::Link(change) => {
                let mut fewer = change.clone();
                if fewer.loss.is_some_and(|loss| loss > 0.0) {
                    fewer.loss = Some(0.0);
                    weaker.push(FaultKind::Link(fewer.clone()));
                }
                for strip in 0..6 {
                    let mut stripped = change.clone();
                    let changed = match strip {
                        0 => stripped.latency_ns.take().is_some(),
                        1 => stripped.loss.take().is_some(),
                        2 => stripped.duplicate.take().is_some(),
                        3 => stripped.reorder.take().is_some(),
                        4 => stripped.bandwidth_bits_per_second.take().is_some(),
                        _ => stripped.queue_messages_max.take().is_some(),
                    };
                    if changed {
                        weaker.push(FaultKind::Link(stripped));
                    }
                }
            }
            FaultKind::Clog { from, to, both: true } => {
                weaker.push(FaultKind::Clog { from: *from, to: *to, both: false });
            }
            _ => {}
        }
        for kind in weaker {
            let mut candidate = scenario.clone();
            candidate.faults[index].kind = kind;
            candidates.push(candidate);
        }
    }
    candidates
}

/// Half a probability, to two significant decimals, so the file stays readable.
fn half(probability: f64) -> f64 {
    ((probability / 2.0) * 100.0).round() / 100.0
}

fn lighten_workload(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    let mut candidates = Vec::new();
    for (index, item) in scenario.workload.iter().enumerate() {
        let WorkloadItem::Random(puts) = item else { continue };
        let mut lighter = Vec::new();
        if puts.burst.is_some() {
            let mut changed = puts.clone();
            changed.burst = None;
            lighter.push(changed);
        }
        if puts.hot_keys.is_some() {
            let mut changed = puts.clone();
            changed.hot_keys = None;
            lighter.push(changed);
        }
        if puts.deletes_per_million > 0 {
            let mut changed = puts.clone();
            changed.deletes_per_million = 0;
            lighter.push(changed);
        }
        if puts.key_bytes.is_some() {
            let mut changed = puts.clone();
            changed.key_bytes = None;
            lighter.push(changed);
        }
        if puts.value_bytes.min != puts.value_bytes.max {
            let mut changed = puts.clone();
            changed.value_bytes = ValueBytes { min: puts.value_bytes.min, max: puts.value_bytes.min };
            lighter.push(changed);
        }
        if let Some(rate) = half_rate(puts.rate) {
            let mut changed = puts.clone();
            changed.rate = rate;
            lighter.push(changed);
        }
        if let Some(burst) = puts.burst
            && burst.operations_count > 1
        {
            let mut changed = puts.clone();
            if let Some(changed_burst) = &mut changed.burst {
                changed_burst.operations_count = burst.operations_count / 2;
            }
            lighter.push(changed);
        }
        if puts.keys_count > 1 {
            let mut changed = puts.clone();
            changed.keys_count = puts.keys_count / 2;
            lighter.push(changed);
        }
        if let NodeSelection::All = puts.nodes
            && scenario.nodes.len() > 1
        {
            let mut changed = puts.clone();
            changed.nodes = NodeSelection::Listed(vec![0]);
            if let Some(hot) = &mut changed.hot_keys {
                hot.writers_count = 1;
            }
            lighter.push(changed);
        }
        for puts in lighter {
            let mut candidate = scenario.clone();
            candidate.workload[index] = WorkloadItem::Random(puts);
            candidates.push(candidate);
        }
    }
    candidates
}

/// A random workload item that draws few operations becomes those operations, written out
/// (`{at, node, put}` and `{at, node, delete}`), so the next round can drop them one by one.
fn explicit_writes(scenario: &Scenario, context: &Context) -> Vec<Scenario> {
    let mut candidates = Vec::new();
    for (index, item) in scenario.workload.iter().enumerate() {
        let WorkloadItem::Random(puts) = item else { continue };
        let operations = crate::run::random_operations(puts, scenario.nodes.len(), context.seed, index);
        if operations.is_empty() || operations.len() > EXPLICIT_OPERATIONS_MAX {
            continue;
        }
        let text = |bytes: &bytes::Bytes| String::from_utf8(bytes.to_vec()).ok();
        let explicit: Option<Vec<WorkloadItem>> = operations
            .iter()
            .map(|(at_ns, node, command)| match command {
                Command::Put { key, value } => Some(WorkloadItem::Put {
                    at_ns: *at_ns,
                    node: *node as usize,
                    key: text(key)?,
                    value: text(value)?,
                }),
                Command::Delete { key } => {
                    Some(WorkloadItem::Delete { at_ns: *at_ns, node: *node as usize, key: text(key)? })
                }
                _ => None,
            })
            .collect();
        let Some(explicit) = explicit else { continue };
        let mut candidate = scenario.clone();
        candidate.workload.splice(index..=index, explicit);
        candidates.push(candidate);
    }
    candidates
}

/// Half as many operations: `N/s` to `N/2/s`, `1/s` to `30/m`, `1/ms` to `500/s`.
fn half_rate(rate: Rate) -> Option<Rate> {
    if rate.operations_count >= 2 {
        return Some(Rate { operations_count: rate.operations_count / 2, period_ns: rate.period_ns });
    }
    match rate.period_ns {
        1_000_000 => Some(Rate { operations_count: 500, period_ns: 1_000_000_000 }),
        1_000_000_000 => Some(Rate { operations_count: 30, period_ns: 60_000_000_000 }),
        _ => None,
    }
}

fn gentler_network(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    let network = &scenario.network;
    let mut candidates = Vec::new();
    let mut with = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = scenario.clone();
        change(&mut candidate);
        candidates.push(candidate);
    };
    // One transport for every link reads simplest; else one exception fewer. (A `break` on
    // a link that would stop being a stream makes the candidate invalid, and the parser
    // refuses it.)
    if !network.links.is_empty() {
        with(&|candidate| candidate.network.links.clear());
    }
    if network.links.len() > 1 {
        for index in 0..network.links.len() {
            with(&move |candidate| {
                candidate.network.links.remove(index);
            });
        }
    }
    if network.loss > 0.0 {
        with(&|candidate| candidate.network.loss = 0.0);
    }
    if network.duplicate > 0.0 {
        with(&|candidate| candidate.network.duplicate = 0.0);
    }
    if network.reorder > 0.0 {
        with(&|candidate| candidate.network.reorder = 0.0);
    }
    if network.loss > 0.01 {
        with(&|candidate| candidate.network.loss = half(candidate.network.loss));
    }
    if network.bandwidth_bits_per_second.is_some() {
        with(&|candidate| {
            candidate.network.bandwidth_bits_per_second = None;
            candidate.network.queue_messages_max = None;
        });
    }
    let RangeNs { min_ns, max_ns } = network.latency_ns;
    if min_ns != max_ns {
        with(&|candidate| candidate.network.latency_ns = RangeNs::fixed(min_ns));
        let narrower = ceil_ms(min_ns + (max_ns - min_ns) / 2);
        if narrower < max_ns {
            with(&|candidate| candidate.network.latency_ns = RangeNs { min_ns, max_ns: narrower });
        }
    }
    candidates
}

fn clock_and_disk(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    let mut candidates = Vec::new();
    let mut with = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = scenario.clone();
        change(&mut candidate);
        candidates.push(candidate);
    };
    if scenario.clock.skew_ns > 0 {
        with(&|candidate| candidate.clock.skew_ns = 0);
    }
    if scenario.clock.drift_ppm > 0 {
        with(&|candidate| candidate.clock.drift_ppm = 0);
    }
    // The disk only goes back to its defaults, which the file then leaves out.
    let defaults = crate::scenario::Disk::default();
    if scenario.disk.torn_writes != defaults.torn_writes {
        with(&|candidate| candidate.disk.torn_writes = defaults.torn_writes);
    }
    if scenario.disk.corrupt_read > 0.0 {
        with(&|candidate| candidate.disk.corrupt_read = 0.0);
    }
    if scenario.disk.compaction_log_bytes != defaults.compaction_log_bytes {
        with(&|candidate| candidate.disk.compaction_log_bytes = defaults.compaction_log_bytes);
    }
    if scenario.disk.compaction_horizon_ns != defaults.compaction_horizon_ns {
        with(&|candidate| candidate.disk.compaction_horizon_ns = defaults.compaction_horizon_ns);
    }
    if scenario.disk.fsync_latency_ns != defaults.fsync_latency_ns {
        with(&|candidate| candidate.disk.fsync_latency_ns = defaults.fsync_latency_ns);
    }
    candidates
}

/// A full mesh reads simplest; a list of edges may also lose edges.
fn simpler_topology(scenario: &Scenario, _: &Context) -> Vec<Scenario> {
    let mut candidates = Vec::new();
    if scenario.topology != Topology::FullMesh {
        let mut candidate = scenario.clone();
        candidate.topology = Topology::FullMesh;
        candidates.push(candidate);
    }
    if let Topology::Edges(edges) = &scenario.topology {
        for chunk in chunks(edges.len()) {
            let mut removed = vec![false; edges.len()];
            chunk.iter().for_each(|index| removed[*index] = true);
            let mut candidate = scenario.clone();
            candidate.topology = Topology::Edges(keep(edges, &removed));
            candidates.push(candidate);
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the chunks go from everything to each unit alone, each size covering the list.
    #[test]
    fn chunks_from_all_to_singles() {
        assert_eq!(chunks(0), Vec::<Vec<usize>>::new());
        assert_eq!(chunks(1), vec![vec![0]]);
        assert_eq!(
            chunks(4),
            vec![vec![0, 1, 2, 3], vec![0, 1], vec![2, 3], vec![0], vec![1], vec![2], vec![3]]
        );
        let five = chunks(5);
        assert_eq!(five[0], vec![0, 1, 2, 3, 4]);
        assert_eq!(five[1], vec![0, 1, 2]);
        assert_eq!(five.iter().filter(|chunk| chunk.len() == 1).count(), 5);
    }

    /// Goal: the network pass offers a scenario without its per-link transports, then each
    /// with one fewer, and a `break` that needs a removed stream link leaves a candidate the
    /// parser refuses. Method: the candidates of a run with two `network.links` entries.
    #[test]
    fn link_transports_are_dropped_whole_then_one_at_a_time() {
        let text = "name: x\nduration: 10s\nnodes: [a, b, c]\nnetwork: {latency: 5ms, links: [{between: [a, b], \
                    transport: quic}, {between: [b, c], transport: stream}]}\nfaults: [{at: 1s, break: {between: [b, c]}}]\n";
        let scenario = crate::scenario::parse("x.yaml", text).expect("valid");
        let context = Context { seed: 0, window_floor_ns: 0 };
        let links: Vec<usize> = gentler_network(&scenario, &context)
            .iter()
            .map(|candidate| candidate.network.links.len())
            .collect();
        assert_eq!(links, [0, 1, 1]);
        let valid: Vec<bool> = gentler_network(&scenario, &context)
            .iter()
            .map(|candidate| {
                crate::scenario::parse("x.yaml", &crate::scenario::to_yaml(candidate, &[])).is_ok()
            })
            .collect();
        assert_eq!(valid, [false, true, false], "only dropping the QUIC link keeps b-c a stream");
    }

    /// Goal: halving a rate always lowers it, and stops at one a minute.
    #[test]
    fn rates_halve_down_to_one_a_minute() {
        let mut rate = Rate { operations_count: 3, period_ns: 1_000_000 };
        let mut steps = 0;
        while let Some(next) = half_rate(rate) {
            let per_minute = |rate: Rate| rate.operations_count as f64 * 60e9 / rate.period_ns as f64;
            assert!(per_minute(next) < per_minute(rate));
            rate = next;
            steps += 1;
        }
        assert_eq!(rate, Rate { operations_count: 1, period_ns: 60_000_000_000 });
        assert!(steps < 40);
    }
}

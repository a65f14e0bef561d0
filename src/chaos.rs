//! Draws a random fault schedule from the seed: crashes, partitions, one-way cuts, clock
//! jumps, corruption, replays, clogs, pauses and disk faults between 0 and `chaos.until`. With `swarm: true` each seed also enables a random
//! subset of the fault kinds and scales their intensity (swarm testing, Groce et al.), so a
//! sweep explores runs dominated by one kind as well as mixtures.
//!
//! Each kind draws from its own stream of the seed, so enabling one kind never changes the
//! schedule of another.

use ferry_simulator::random::{self, Stream};
use ferry_simulator::{DiskFaultKind, Fault};
use rand_chacha::rand_core::RngCore;

use crate::scenario::{Chaos, RangeNs};

const KIND_CRASH: u32 = 0;
const KIND_PARTITION: u32 = 1;
const KIND_CUT: u32 = 2;
const KIND_CLOCK_JUMP: u32 = 3;
const KIND_SWARM: u32 = 4;
const KIND_CORRUPT: u32 = 5;
const KIND_REPLAY: u32 = 6;
const KIND_CLOG: u32 = 7;
const KIND_PAUSE: u32 = 8;
const KIND_DISK_FAULT: u32 = 9;
/// Kinds drawn (every kind but the swarm stream itself).
const KINDS_COUNT: usize = 9;

/// Probability that a message is damaged while a chaos `corrupt` fault is in force.
pub const CHAOS_CORRUPT_PROBABILITY: f64 = 0.2;

/// Which kinds are on and how often they fire, after swarm selection.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Selection {
    enabled: [bool; KINDS_COUNT],
    /// Multiplies each kind's `every` (0.5..2.0 under swarm, 1 otherwise).
    every_scale_per_mille: [u64; KINDS_COUNT],
}

/// Index of a kind in [`Selection`]: its stream number, past the swarm stream.
const fn slot(kind: u32) -> usize {
    if kind < KIND_SWARM { kind as usize } else { kind as usize - 1 }
}

fn select(chaos: &Chaos, seed: u64) -> Selection {
    let configured = [
        chaos.crash.is_some(),
        chaos.partition.is_some(),
        chaos.cut.is_some(),
        chaos.clock_jump.is_some(),
        chaos.corrupt.is_some(),
        chaos.replay.is_some(),
        chaos.clog.is_some(),
        chaos.pause.is_some(),
        chaos.disk_fault.is_some(),
    ];
    if !chaos.swarm {
        return Selection { enabled: configured, every_scale_per_mille: [1000; KINDS_COUNT] };
    }
    let mut rng = random::stream(seed, Stream::ChaosKind(KIND_SWARM));
    let mut enabled = [false; KINDS_COUNT];
    let mut scale = [1000; KINDS_COUNT];
    // The first four kinds draw first, as they always did, so their selection per seed is
    // unchanged by the kinds added after them.
    for kind in 0..KINDS_COUNT {
        enabled[kind] = configured[kind] && random::chance(&mut rng, 0.5);
        scale[kind] = random::uniform(&mut rng, 500, 2000);
    }
    // At least one configured kind stays on, so no seed is fault-free by accident.
    if !enabled.iter().any(|on| *on)
        && let Some(first) = configured.iter().position(|on| *on)
    {
        enabled[first] = true;
    }
    Selection { enabled, every_scale_per_mille: scale }
}

fn draw_range(rng: &mut impl RngCore, range: RangeNs) -> u64 {
    random::uniform(rng, range.min_ns, range.max_ns)
}

/// Times of a kind that fires about every `every_ns`: gaps uniform in `[every/2, 3*every/2]`.
fn times(rng: &mut impl RngCore, every_ns: u64, until_ns: u64) -> Vec<u64> {
    let mut at_ns = 0;
    let mut times = Vec::new();
    let every_ns = every_ns.max(1_000_000);
    loop {
        at_ns += random::uniform(rng, every_ns / 2, every_ns + every_ns / 2);
        if at_ns >= until_ns {
            return times;
        }
        times.push(at_ns);
    }
}

/// One drawn fault: in force from `at_ns`, and until `until_ns` when it lasts (crashes,
/// partitions and cuts; their end undoes exactly that fault, never another).
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    /// When it starts.
    pub at_ns: u64,
    /// When it is undone; `None` for an instant fault (a clock jump).
    pub until_ns: Option<u64>,
    /// What it does.
    pub fault: Fault,
}

/// The fault schedule for `seed`, sorted by start time. Lasting faults end by
/// `chaos.until` at the latest.
#[must_use]
pub fn draw(chaos: &Chaos, nodes_count: u32, seed: u64) -> Vec<Drawn> {
    let selection = select(chaos, seed);
    let scaled =
        |kind: usize, every_ns: u64| every_ns.saturating_mul(selection.every_scale_per_mille[kind]) / 1000;
    let mut schedule = Vec::new();
    let until_ns = chaos.until_ns;
    if nodes_count < 2 {
        return schedule;
    }
    if let (Some(crash), true) = (chaos.crash, selection.enabled[0]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_CRASH));
        // A node is down until `down_until[node]`; only running nodes are picked.
        let mut down_until = vec![0u64; nodes_count as usize];
        for at_ns in times(&mut rng, scaled(0, crash.every_ns), until_ns) {
            let running: Vec<u32> =
                (0..nodes_count).filter(|node| down_until[*node as usize] <= at_ns).collect();
            if running.len() < 2 {
                continue;
            }
            let node = running[random::uniform(&mut rng, 0, running.len() as u64 - 1) as usize];
            let restart_ns = (at_ns + draw_range(&mut rng, crash.downtime_ns).max(1)).min(until_ns);
            down_until[node as usize] = restart_ns + 1;
            schedule.push(Drawn { at_ns, until_ns: Some(restart_ns), fault: Fault::Crash { node } });
        }
    }
    if let (Some(partition), true) = (chaos.partition, selection.enabled[1]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_PARTITION));
        let mut busy_until = 0;
        for at_ns in times(&mut rng, scaled(1, partition.every_ns), until_ns) {
            if at_ns < busy_until {
                continue;
            }
            // A random non-empty proper subset on one side.
            let mut side: Vec<u32> = (0..nodes_count).filter(|_| random::chance(&mut rng, 0.5)).collect();
            if side.is_empty() || side.len() == nodes_count as usize {
                side = vec![random::uniform(&mut rng, 0, u64::from(nodes_count) - 1) as u32];
            }
            let heal_ns = (at_ns + draw_range(&mut rng, partition.duration_ns)).min(until_ns);
            busy_until = heal_ns + 1;
            let fault = Fault::Partition { groups: vec![side] };
            schedule.push(Drawn { at_ns, until_ns: Some(heal_ns), fault });
        }
    }
    if let (Some(cut), true) = (chaos.cut, selection.enabled[2]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_CUT));
        for at_ns in times(&mut rng, scaled(2, cut.every_ns), until_ns) {
            let from = random::uniform(&mut rng, 0, u64::from(nodes_count) - 1) as u32;
            let mut to = random::uniform(&mut rng, 0, u64::from(nodes_count) - 2) as u32;
            if to >= from {
                to += 1;
            }
            let heal_ns = (at_ns + draw_range(&mut rng, cut.duration_ns)).min(until_ns);
            schedule.push(Drawn { at_ns, until_ns: Some(heal_ns), fault: Fault::Cut { from, to } });
        }
    }
    if let (Some(jump), true) = (chaos.clock_jump, selection.enabled[3]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_CLOCK_JUMP));
        for at_ns in times(&mut rng, scaled(3, jump.every_ns), until_ns) {
            let node = random::uniform(&mut rng, 0, u64::from(nodes_count) - 1) as u32;
            let span = jump.by_ns.max_ns.saturating_sub(jump.by_ns.min_ns) as u64;
            let by_ns = jump.by_ns.min_ns.saturating_add(random::uniform(&mut rng, 0, span) as i64);
            schedule.push(Drawn { at_ns, until_ns: None, fault: Fault::ClockJump { node, by_ns } });
        }
    }
    let pick_link = |rng: &mut rand_chacha::ChaCha8Rng| {
        let first = random::uniform(rng, 0, u64::from(nodes_count) - 1) as u32;
        let mut second = random::uniform(rng, 0, u64::from(nodes_count) - 2) as u32;
        if second >= first {
            second += 1;
        }
        (first, second)
    };
    if let (Some(corrupt), true) = (chaos.corrupt, selection.enabled[slot(KIND_CORRUPT)]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_CORRUPT));
        for at_ns in times(&mut rng, scaled(slot(KIND_CORRUPT), corrupt.every_ns), until_ns) {
            let (first, second) = pick_link(&mut rng);
            let end_ns = (at_ns + draw_range(&mut rng, corrupt.duration_ns)).min(until_ns);
            let fault = Fault::Corrupt { first, second, probability: CHAOS_CORRUPT_PROBABILITY };
            schedule.push(Drawn { at_ns, until_ns: Some(end_ns), fault });
        }
    }
    if let (Some(replay), true) = (chaos.replay, selection.enabled[slot(KIND_REPLAY)]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_REPLAY));
        for at_ns in times(&mut rng, scaled(slot(KIND_REPLAY), replay.every_ns), until_ns) {
            let (first, second) = pick_link(&mut rng);
            let count = random::uniform(&mut rng, 1, u64::from(replay.count)) as u32;
            schedule.push(Drawn { at_ns, until_ns: None, fault: Fault::Replay { first, second, count } });
        }
    }
    if let (Some(clog), true) = (chaos.clog, selection.enabled[slot(KIND_CLOG)]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_CLOG));
        for at_ns in times(&mut rng, scaled(slot(KIND_CLOG), clog.every_ns), until_ns) {
            let (from, to) = pick_link(&mut rng);
            let both = random::chance(&mut rng, 0.5);
            let end_ns = (at_ns + draw_range(&mut rng, clog.duration_ns).max(1)).min(until_ns);
            schedule.push(Drawn { at_ns, until_ns: Some(end_ns), fault: Fault::Clog { from, to, both } });
        }
    }
    if let (Some(pause), true) = (chaos.pause, selection.enabled[slot(KIND_PAUSE)]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_PAUSE));
        for at_ns in times(&mut rng, scaled(slot(KIND_PAUSE), pause.every_ns), until_ns) {
            let node = random::uniform(&mut rng, 0, u64::from(nodes_count) - 1) as u32;
            let end_ns = (at_ns + draw_range(&mut rng, pause.duration_ns).max(1)).min(until_ns);
            schedule.push(Drawn { at_ns, until_ns: Some(end_ns), fault: Fault::Pause { node } });
        }
    }
    if let (Some(disk), true) = (chaos.disk_fault, selection.enabled[slot(KIND_DISK_FAULT)]) {
        let mut rng = random::stream(seed, Stream::ChaosKind(KIND_DISK_FAULT));
        for at_ns in times(&mut rng, scaled(slot(KIND_DISK_FAULT), disk.every_ns), until_ns) {
            let node = random::uniform(&mut rng, 0, u64::from(nodes_count) - 1) as u32;
            // Misdirected writes are left out: a disk that reports success for a write it
            // put elsewhere is outside what a lone WAL can survive (scenarios/adversarial.yaml).
            let kind =
                if random::chance(&mut rng, 0.5) { DiskFaultKind::FsyncFail } else { DiskFaultKind::Full };
            let end_ns = (at_ns + draw_range(&mut rng, disk.duration_ns).max(1)).min(until_ns);
            schedule.push(Drawn { at_ns, until_ns: Some(end_ns), fault: Fault::Disk { node, kind } });
        }
    }
    // Stable sort: equal times keep the kind order above.
    schedule.sort_by_key(|drawn| drawn.at_ns);
    schedule
}

/// The scenario with the schedule `seed` draws written out as explicit faults marked
/// `drawn`, and a `chaos` section reduced to its `until` (which draws nothing but still
/// starts the liveness phase where it did), so that it replays to the same trace hash as
/// `scenario` with `seed` (`ferry run --export-faults`). Without `chaos`, a copy.
#[must_use]
pub fn export(scenario: &crate::scenario::Scenario, seed: u64) -> crate::scenario::Scenario {
    let mut exported = scenario.clone();
    let Some(chaos) = &scenario.chaos else { return exported };
    let nodes_count = scenario.nodes.len();
    for drawn in draw(chaos, nodes_count as u32, seed) {
        exported.faults.push(crate::scenario::Fault {
            at_ns: drawn.at_ns,
            until_ns: drawn.until_ns,
            kind: fault_kind(&drawn.fault, nodes_count),
            drawn: true,
            span: crate::scenario::Span::START,
        });
    }
    // Stable: the scripted faults of an instant stay before the drawn ones, in order.
    exported.faults.sort_by_key(|fault| fault.at_ns);
    exported.chaos = Some(Chaos::quiet(chaos.until_ns));
    exported
}

/// A drawn fault as the scenario writes it.
fn fault_kind(fault: &Fault, nodes_count: usize) -> crate::scenario::FaultKind {
    use crate::scenario::FaultKind;
    let node = |index: &u32| *index as usize;
    match fault {
        Fault::Crash { node: index } => FaultKind::Crash { node: node(index) },
        Fault::Partition { groups } => {
            let mut listed = vec![false; nodes_count];
            let mut written: Vec<Vec<usize>> = Vec::new();
            for group in groups {
                let group: Vec<usize> = group.iter().map(node).filter(|index| *index < nodes_count).collect();
                group.iter().for_each(|index| listed[*index] = true);
                written.push(group);
            }
            let rest: Vec<usize> = (0..nodes_count).filter(|index| !listed[*index]).collect();
            if !rest.is_empty() {
                written.push(rest);
            }
            FaultKind::Partition { groups: written }
        }
        Fault::Cut { from, to } => FaultKind::Cut { from: node(from), to: node(to) },
        Fault::ClockJump { node: index, by_ns } => FaultKind::ClockJump { node: node(index), by_ns: *by_ns },
        Fault::Corrupt { first, second, probability } => {
            FaultKind::Corrupt { between: [node(first), node(second)], probability: *probability }
        }
        Fault::Replay { first, second, count } => {
            FaultKind::Replay { between: [node(first), node(second)], count: *count }
        }
        Fault::Clog { from, to, both } => FaultKind::Clog { from: node(from), to: node(to), both: *both },
        Fault::Pause { node: index } => FaultKind::Pause { node: node(index) },
        Fault::Disk { node: index, kind } => FaultKind::DiskFault {
            node: node(index),
            kind: match kind {
                DiskFaultKind::FsyncFail => crate::scenario::DiskFaultKind::FsyncFail,
                DiskFaultKind::Full => crate::scenario::DiskFaultKind::Full,
                DiskFaultKind::Misdirected => crate::scenario::DiskFaultKind::Misdirected,
            },
        },
        // Chaos draws none of the others; a heal of everything is the harmless answer.
        _ => FaultKind::Heal { nodes: crate::scenario::NodeSelection::All },
    }
}

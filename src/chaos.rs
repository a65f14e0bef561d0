//! Draws a random fault schedule from the seed: crashes, partitions, one-way cuts and clock
//! jumps between 0 and `chaos.until`. With `swarm: true` each seed also enables a random
//! subset of the fault kinds and scales their intensity (swarm testing, Groce et al.), so a
//! sweep explores runs dominated by one kind as well as mixtures.
//!
//! Each kind draws from its own stream of the seed, so enabling one kind never changes the
//! schedule of another.

use ferry_simulator::Fault;
use ferry_simulator::random::{self, Stream};
use rand_chacha::rand_core::RngCore;

use crate::scenario::{Chaos, RangeNs};

const KIND_CRASH: u32 = 0;
const KIND_PARTITION: u32 = 1;
const KIND_CUT: u32 = 2;
const KIND_CLOCK_JUMP: u32 = 3;
const KIND_SWARM: u32 = 4;

/// Which kinds are on and how often they fire, after swarm selection.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Selection {
    enabled: [bool; 4],
    /// Multiplies each kind's `every` (0.5..2.0 under swarm, 1 otherwise).
    every_scale_per_mille: [u64; 4],
}

fn select(chaos: &Chaos, seed: u64) -> Selection {
    let configured =
        [chaos.crash.is_some(), chaos.partition.is_some(), chaos.cut.is_some(), chaos.clock_jump.is_some()];
    if !chaos.swarm {
        return Selection { enabled: configured, every_scale_per_mille: [1000; 4] };
    }
    let mut rng = random::stream(seed, Stream::ChaosKind(KIND_SWARM));
    let mut enabled = [false; 4];
    let mut scale = [1000; 4];
    for kind in 0..4 {
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
    // Stable sort: equal times keep the kind order above.
    schedule.sort_by_key(|drawn| drawn.at_ns);
    schedule
}

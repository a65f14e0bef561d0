//! Goal: show that every fault model of the simulator actually happens, is traced, and
//! replays exactly from its seed. Method: a small probe process that sends numbered
//! messages, appends to its disk and reports what it sees, driven through each fault.

use std::fmt;

use bytes::Bytes;
use ferry_simulator::determinism;
use ferry_simulator::disk::DiskConfig;
use ferry_simulator::ping::{PingConfig, PingNode};
use ferry_simulator::trace::SharedBuffer;
use ferry_simulator::{
    Context, Control, Fault, LinkParams, Process, SimConfig, Simulation, Trace, TraceHasher, TraceRecord,
    Transport,
};

const MS: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum ProbeEvent {
    Booted { disk: Vec<u8> },
    Received { from: u32, sequence: u64 },
    Clock { local_ns: u64 },
    LinkUp { peer: u32 },
    LinkDown { peer: u32 },
}

impl fmt::Display for ProbeEvent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{self:?}")
    }
}

impl TraceRecord for ProbeEvent {
    fn hash_into(&self, hasher: &mut TraceHasher) {
        hasher.bytes(format!("{self:?}").as_bytes());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Write(u8);

impl fmt::Display for Write {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "write {}", self.0)
    }
}

impl TraceRecord for Write {
    fn hash_into(&self, hasher: &mut TraceHasher) {
        hasher.word(u64::from(self.0));
    }
}

struct Probe {
    nodes_count: u32,
    sequence: u64,
    connected: Vec<u32>,
    stream: bool,
    syncs: u64,
}

impl Process for Probe {
    type Config = (u32, bool);
    type Command = Write;
    type Event = ProbeEvent;

    fn boot(config: &(u32, bool), context: &mut Context<'_, ProbeEvent>, disk: &[u8]) -> Self {
        context.emit(ProbeEvent::Booted { disk: disk.to_vec() });
        context.set_timer(Some(context.now_ns() + 10 * MS));
        let (nodes_count, stream) = *config;
        if stream {
            for peer in context.node() + 1..nodes_count {
                context.connect(peer);
            }
        }
        Self { nodes_count, sequence: 0, connected: Vec::new(), stream, syncs: 0 }
    }

    fn on_message(&mut self, context: &mut Context<'_, ProbeEvent>, from: u32, bytes: Bytes) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[..8]);
        context.emit(ProbeEvent::Received { from, sequence: u64::from_le_bytes(word) });
    }

    fn on_timer(&mut self, context: &mut Context<'_, ProbeEvent>) {
        self.sequence += 1;
        let peers: Vec<u32> = if self.stream {
            self.connected.clone()
        } else {
            (0..self.nodes_count).filter(|peer| *peer != context.node()).collect()
        };
        for peer in peers {
            context.send(peer, Bytes::copy_from_slice(&self.sequence.to_le_bytes()));
        }
        context.emit(ProbeEvent::Clock { local_ns: context.now_ns() });
        context.set_timer(Some(context.now_ns() + 10 * MS));
    }

    fn on_disk_synced(&mut self, _: &mut Context<'_, ProbeEvent>, _: u64) {}

    fn on_link_up(&mut self, context: &mut Context<'_, ProbeEvent>, peer: u32, _: bool) {
        if self.stream {
            self.connected.push(peer);
            context.emit(ProbeEvent::LinkUp { peer });
        }
    }

    fn on_link_down(&mut self, context: &mut Context<'_, ProbeEvent>, peer: u32) {
        self.connected.retain(|connected| *connected != peer);
        context.emit(ProbeEvent::LinkDown { peer });
    }

    fn on_command(&mut self, context: &mut Context<'_, ProbeEvent>, command: Write) {
        // Odd writes are synced, even ones stay unsynced.
        context.append(Bytes::from(vec![command.0; 4]));
        if command.0 % 2 == 1 {
            self.syncs += 1;
            context.sync(self.syncs);
        }
    }
}

fn names(count: u32) -> Vec<String> {
    (0..count).map(|index| format!("n{index}")).collect()
}

struct Run {
    text: String,
    hash: String,
    events: Vec<(u64, u32, ProbeEvent)>,
    stats: ferry_simulator::Stats,
}

fn run(
    config: SimConfig,
    stream: bool,
    faults: &[(u64, Fault)],
    writes: &[(u64, u32, u8)],
    end_ns: u64,
) -> Run {
    let buffer = SharedBuffer::default();
    let nodes_count = config.names.len() as u32;
    let mut simulation: Simulation<Probe> =
        Simulation::new(config, (nodes_count, stream), Trace::new(Some(Box::new(buffer.clone()))));
    for (at_ns, fault) in faults {
        simulation.schedule_fault(*at_ns, fault.clone());
    }
    for (at_ns, node, value) in writes {
        simulation.schedule_command(*at_ns, *node, Write(*value));
    }
    let mut events = Vec::new();
    simulation.run_until(end_ns, |simulation| {
        for (node, event) in simulation.events_last() {
            events.push((simulation.now_ns(), *node, event.clone()));
        }
        Control::Continue
    });
    Run {
        text: buffer.text(),
        hash: simulation.trace().hash_hex(),
        events,
        stats: simulation.stats().clone(),
    }
}

fn lossy(seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed, names(4));
    config.link = LinkParams { loss: 0.2, duplicate: 0.1, reorder: 0.1, ..LinkParams::default() };
    config.clock_skew_ns = 50 * MS;
    config.clock_drift_ppm = 500;
    config
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let first = run(lossy(7), false, &[(200 * MS, Fault::Crash { node: 1 })], &[], 1_000 * MS);
    let second = run(lossy(7), false, &[(200 * MS, Fault::Crash { node: 1 })], &[], 1_000 * MS);
    assert_eq!(first.text, second.text);
    assert_eq!(first.hash, second.hash);
    let other = run(lossy(8), false, &[(200 * MS, Fault::Crash { node: 1 })], &[], 1_000 * MS);
    assert_ne!(first.hash, other.hash);
}

#[test]
fn determinism_check_across_threads() {
    let outcome = determinism::check(|trace| {
        let mut config = SimConfig::new(3, names(20));
        config.link.loss = 0.05;
        let mut simulation: Simulation<PingNode> =
            Simulation::new(config, PingConfig { nodes_count: 20, period_ns: 10 * MS }, trace);
        simulation.run_until(2_000 * MS, |_| Control::Continue);
    })
    .expect("second run did not panic");
    assert_eq!(outcome, Ok(()));
}

#[test]
fn loss_duplicate_and_reorder_happen_and_are_traced() {
    let result = run(lossy(1), false, &[], &[], 2_000 * MS);
    assert!(result.stats.drops_by_reason["loss"] > 0);
    assert!(result.stats.duplicated > 0);
    assert!(result.stats.reordered > 0);
    assert!(result.text.contains("dropped: loss"));
    assert!(result.text.contains("duplicated"));
    let coverage = result.stats.coverage();
    for kind in ["loss", "duplicate", "reorder"] {
        assert!(coverage.contains_key(kind), "{kind} missing from {coverage:?}");
    }
}

#[test]
fn partition_cut_isolate_and_heal() {
    let faults = [
        (100 * MS, Fault::Partition { groups: vec![vec![0, 1], vec![2, 3]] }),
        (300 * MS, Fault::HealAll),
        (400 * MS, Fault::Cut { from: 0, to: 1 }),
        (600 * MS, Fault::HealAll),
        (700 * MS, Fault::Isolate { node: 3 }),
        (900 * MS, Fault::HealAll),
    ];
    let result =
        run(SimConfig::new(2, names(4)), false, &[faults[0].clone(), faults[1].clone()], &[], 350 * MS);
    assert!(result.stats.drops_by_reason["partition"] > 0);
    let received = |from: u32, to: u32, start: u64, end: u64| {
        result.events.iter().any(|(at, node, event)| {
            *node == to
                && (start..end).contains(at)
                && matches!(event, ProbeEvent::Received { from: f, .. } if *f == from)
        })
    };
    assert!(received(0, 1, 150 * MS, 300 * MS), "same group still talks");
    assert!(!received(0, 2, 150 * MS, 300 * MS), "groups are separated");
    let result = run(SimConfig::new(2, names(4)), false, &faults, &[], 1_000 * MS);
    let received = |from: u32, to: u32, start: u64, end: u64| {
        result.events.iter().any(|(at, node, event)| {
            *node == to
                && (start..end).contains(at)
                && matches!(event, ProbeEvent::Received { from: f, .. } if *f == from)
        })
    };
    assert!(!received(0, 1, 450 * MS, 600 * MS), "cut direction blocked");
    assert!(received(1, 0, 450 * MS, 600 * MS), "the other direction flows");
    assert!(!received(3, 0, 750 * MS, 900 * MS) && !received(0, 3, 750 * MS, 900 * MS), "isolated");
    assert!(received(3, 0, 950 * MS, 1_000 * MS), "healed");
    assert!(result.stats.drops_by_reason["cut"] > 0);
    assert!(result.text.contains("fault partition [n0 n1] [n2 n3]"));
}

#[test]
fn crash_loses_unsynced_writes_and_may_tear() {
    // Writes 1 and 3 are synced; 2 and 4 are not. The crash comes right after write 4, before
    // its neighbours' syncs could cover it.
    let writes = [(10 * MS, 0, 1), (50 * MS, 0, 2), (100 * MS, 0, 3), (150 * MS, 0, 4)];
    let faults = [(151 * MS, Fault::Crash { node: 0 }), (200 * MS, Fault::Restart { node: 0 })];
    let result = run(SimConfig::new(5, names(2)), false, &faults, &writes, 300 * MS);
    let booted: Vec<&Vec<u8>> = result
        .events
        .iter()
        .filter_map(|(_, node, event)| match event {
            ProbeEvent::Booted { disk } if *node == 0 => Some(disk),
            _ => None,
        })
        .collect();
    assert_eq!(booted.len(), 2);
    // Sync of write 3 made writes 1-3 durable (a sync covers everything before it).
    assert_eq!(booted[1], &[1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    assert_eq!(result.stats.crashes_losing_writes, 1);
    assert!(result.text.contains("n0 crashed: lost 4B unsynced, kept 0B torn"));

    let mut torn_seen = false;
    for seed in 0..20 {
        let mut config = SimConfig::new(seed, names(2));
        config.disk = DiskConfig { torn_writes: true, ..DiskConfig::default() };
        let result = run(config, false, &faults, &writes, 300 * MS);
        torn_seen |= result.stats.crashes_torn > 0;
    }
    assert!(torn_seen, "some seed keeps a torn prefix");
}

#[test]
fn clocks_skew_drift_and_jump() {
    let mut config = SimConfig::new(9, names(2));
    config.clock_skew_ns = 100 * MS;
    let faults = [(500 * MS, Fault::ClockJump { node: 0, by_ns: -300_000_000 })];
    let result = run(config, false, &faults, &[], 1_000 * MS);
    let clocks: Vec<(u64, u64)> = result
        .events
        .iter()
        .filter_map(|(at, node, event)| match event {
            ProbeEvent::Clock { local_ns } if *node == 0 => Some((*at, *local_ns)),
            _ => None,
        })
        .collect();
    let offset_before =
        clocks.iter().rev().find(|(at, _)| *at < 500 * MS).map(|(at, local)| *local as i64 - *at as i64);
    let offset_after =
        clocks.iter().find(|(at, _)| *at > 600 * MS).map(|(at, local)| *local as i64 - *at as i64);
    let (before, after) = (offset_before.expect("ticks before"), offset_after.expect("ticks after"));
    assert_ne!(before, 0, "skewed");
    assert_eq!(before - after, 300_000_000, "jumped back by 300ms");
}

#[test]
fn stream_is_ordered_and_breaks_on_partition() {
    let mut config = SimConfig::new(4, names(3));
    config.transport = Transport::Stream;
    config.link = LinkParams { latency_ns_min: MS, latency_ns_max: 30 * MS, ..LinkParams::default() };
    let faults = [(300 * MS, Fault::Partition { groups: vec![vec![0], vec![1, 2]] })];
    let result = run(config, true, &faults, &[], 600 * MS);
    let mut last = std::collections::BTreeMap::new();
    let mut count = 0;
    for (_, node, event) in &result.events {
        if let ProbeEvent::Received { from, sequence } = event {
            let previous = last.insert((*from, *node), *sequence).unwrap_or(0);
            assert!(*sequence > previous, "stream delivered {sequence} after {previous}");
            count += 1;
        }
    }
    assert!(count > 50);
    let downs: Vec<(u32, u32)> = result
        .events
        .iter()
        .filter_map(|(_, node, event)| match event {
            ProbeEvent::LinkDown { peer } => Some((*node, *peer)),
            _ => None,
        })
        .collect();
    assert_eq!(downs, vec![(0, 1), (1, 0), (0, 2), (2, 0)]);
    assert!(result.text.contains("connected (epoch"));
}

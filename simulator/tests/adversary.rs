//! Goal: each adversarial fault (corruption, replay, clog, a bandwidth queue, a pause and
//! the disk faults) does what it says, is traced and counted, and the ferry protocol
//! survives it. Method: a probe process that sends numbered messages every 10ms and reports
//! what it receives, driven through one fault at a time; then a ferry cluster through all
//! of them.

use std::fmt;

use bytes::Bytes;
use ferry_protocol::Event as NodeEvent;
use ferry_simulator::fault::DiskFaultKind;
use ferry_simulator::ferry::{Command, FerryChecker, FerryConfig, FerryEvent, FerryNode};
use ferry_simulator::trace::SharedBuffer;
use ferry_simulator::{
    Context, Control, Fault, LinkParams, Process, SimConfig, Simulation, Stats, Trace, TraceHasher,
    TraceRecord, Transport,
};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum ProbeEvent {
    Booted { disk: Vec<u8> },
    Received { from: u32, bytes: Vec<u8> },
    Tick { local_ns: u64 },
    Synced { sync_id: u64 },
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

/// Sends its sequence number (8 bytes) to node 1 (node 0) or node 0 (the others) every
/// 10ms; every write is appended and synced.
struct Probe {
    sequence: u64,
    syncs: u64,
}

impl Process for Probe {
    type Config = ();
    type Command = Write;
    type Event = ProbeEvent;

    fn boot((): &(), context: &mut Context<'_, ProbeEvent>, disk: &[u8]) -> Self {
        context.emit(ProbeEvent::Booted { disk: disk.to_vec() });
        context.set_timer(Some(context.now_ns() + 10 * MS));
        if context.node() == 0 {
            context.connect(1);
        }
        Self { sequence: 0, syncs: 0 }
    }

    fn on_message(&mut self, context: &mut Context<'_, ProbeEvent>, from: u32, bytes: Bytes) {
        context.emit(ProbeEvent::Received { from, bytes: bytes.to_vec() });
    }

    fn on_timer(&mut self, context: &mut Context<'_, ProbeEvent>) {
        self.sequence += 1;
        let peer = u32::from(context.node() == 0);
        context.send(peer, Bytes::copy_from_slice(&self.sequence.to_le_bytes()));
        context.emit(ProbeEvent::Tick { local_ns: context.now_ns() });
        context.set_timer(Some(context.now_ns() + 10 * MS));
    }

    fn on_disk_synced(&mut self, context: &mut Context<'_, ProbeEvent>, sync_id: u64) {
        context.emit(ProbeEvent::Synced { sync_id });
    }

    fn on_link_up(&mut self, _: &mut Context<'_, ProbeEvent>, _: u32, _: bool) {}

    fn on_link_down(&mut self, _: &mut Context<'_, ProbeEvent>, _: u32) {}

    fn on_command(&mut self, context: &mut Context<'_, ProbeEvent>, command: Write) {
        context.append(Bytes::from(vec![command.0; 4]));
        self.syncs += 1;
        context.sync(self.syncs);
    }
}

struct Run {
    text: String,
    events: Vec<(u64, u32, ProbeEvent)>,
    stats: Stats,
    active: std::collections::BTreeMap<&'static str, u64>,
}

/// A fixed 5ms latency, so arrival order is send order unless a fault changes it.
fn config(seed: u64, transport: Transport) -> SimConfig {
    let mut config = SimConfig::new(seed, vec!["n0".to_owned(), "n1".to_owned()]);
    config.transport = transport;
    config.link = LinkParams { latency_ns_min: 5 * MS, latency_ns_max: 5 * MS, ..LinkParams::default() };
    config
}

fn run(
    config: SimConfig,
    faults: &[(u64, Option<u64>, Fault)],
    writes: &[(u64, u32, u8)],
    end_ns: u64,
) -> Run {
    let buffer = SharedBuffer::default();
    let mut simulation: Simulation<Probe> =
        Simulation::new(config, (), Trace::new(Some(Box::new(buffer.clone()))));
    for (at_ns, until_ns, fault) in faults {
        match until_ns {
            Some(until_ns) => simulation.schedule_fault_until(*at_ns, *until_ns, fault.clone()),
            None => simulation.schedule_fault(*at_ns, fault.clone()),
        }
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
        events,
        stats: simulation.stats().clone(),
        active: simulation.fault_active_ns(),
    }
}

/// The sequence numbers node `to` received from `from`, with arrival times; a damaged
/// message gives `None`.
fn received(run: &Run, from: u32, to: u32) -> Vec<(u64, Option<u64>)> {
    run.events
        .iter()
        .filter_map(|(at, node, event)| match event {
            ProbeEvent::Received { from: source, bytes } if *node == to && *source == from => {
                let sequence = <[u8; 8]>::try_from(bytes.as_slice()).ok().map(u64::from_le_bytes);
                Some((*at, sequence.filter(|sequence| *sequence < 1_000_000)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn corrupted_messages_differ_from_what_was_sent() {
    for transport in [Transport::Datagram, Transport::Stream] {
        let fault = Fault::Corrupt { first: 0, second: 1, probability: 1.0 };
        let result = run(config(3, transport), &[(100 * MS, Some(300 * MS), fault)], &[], 500 * MS);
        let arrivals = received(&result, 0, 1);
        let damaged = arrivals.iter().filter(|(_, sequence)| sequence.is_none()).count();
        assert!(damaged > 0, "{transport:?}: nothing damaged");
        assert!(
            arrivals.iter().all(|(at, sequence)| sequence.is_some() || (100 * MS..310 * MS).contains(at))
        );
        assert!(arrivals.iter().any(|(at, sequence)| sequence.is_some() && *at > 310 * MS), "intact after");
        assert!(result.stats.corrupted > 0);
        assert!(result.text.contains("corrupted: "), "the trace says what was done");
        assert_eq!(result.active["corrupt"], 200 * MS);
        assert!(result.stats.coverage().contains_key("corrupted-message"));
    }
}

#[test]
fn replayed_messages_arrive_again_later_even_after_a_restart() {
    let faults = [
        (150 * MS, None, Fault::Crash { node: 1 }),
        (160 * MS, None, Fault::Restart { node: 1 }),
        (300 * MS, None, Fault::Replay { first: 0, second: 1, count: 5 }),
    ];
    let result = run(config(4, Transport::Datagram), &faults, &[], 400 * MS);
    let arrivals = received(&result, 0, 1);
    let latest_before = arrivals.iter().filter(|(at, _)| *at < 300 * MS).filter_map(|(_, s)| *s).max();
    let old_again = arrivals
        .iter()
        .filter(|(at, sequence)| {
            *at > 300 * MS && sequence.is_some_and(|s| s + 3 < latest_before.unwrap_or(0))
        })
        .count();
    assert!(old_again > 0, "an old message came back after the restart: {arrivals:?}");
    assert_eq!(result.stats.replayed, 10, "five each way");
    assert!(result.text.contains("replay of a message delivered earlier"));
}

#[test]
fn clog_holds_then_releases_in_order() {
    for transport in [Transport::Datagram, Transport::Stream] {
        let fault = Fault::Clog { from: 0, to: 1, both: false };
        let result = run(config(5, transport), &[(100 * MS, Some(300 * MS), fault)], &[], 400 * MS);
        let arrivals = received(&result, 0, 1);
        assert!(!arrivals.iter().any(|(at, _)| (106 * MS..300 * MS).contains(at)), "{transport:?}: held");
        let burst: Vec<u64> =
            arrivals.iter().filter(|(at, _)| *at == 305 * MS).filter_map(|(_, sequence)| *sequence).collect();
        assert!(burst.len() >= 19, "{transport:?}: released in one burst: {burst:?}");
        assert!(burst.windows(2).all(|pair| pair[0] < pair[1]), "{transport:?}: in order: {burst:?}");
        assert!(received(&result, 1, 0).iter().any(|(at, _)| (150 * MS..300 * MS).contains(at)), "one way");
        assert!(result.stats.clog_released >= 19);
    }
}

#[test]
fn bandwidth_queue_delays_the_second_message_behind_the_first() {
    let mut config = config(6, Transport::Datagram);
    // 8 bytes at 320 B/s take 25ms: longer than the 10ms between sends.
    config.link.bandwidth_bytes_per_second = Some(320);
    let result = run(config.clone(), &[], &[], 300 * MS);
    let arrivals = received(&result, 0, 1);
    assert!(arrivals.windows(2).all(|pair| pair[1].0 - pair[0].0 >= 25 * MS), "{arrivals:?}");
    assert!(result.stats.bandwidth_queued > 0);
    config.link.queue_messages_max = Some(2);
    let result = run(config, &[], &[], 300 * MS);
    assert!(result.stats.drops_by_reason["queue-full"] > 0);
    assert!(result.text.contains("dropped: queue-full"));
}

#[test]
fn pause_defers_messages_and_timers_with_the_clock_running() {
    let fault = Fault::Pause { node: 1 };
    let result = run(config(7, Transport::Datagram), &[(100 * MS, Some(300 * MS), fault)], &[], 400 * MS);
    let during = result.events.iter().filter(|(at, node, _)| *node == 1 && (100 * MS..300 * MS).contains(at));
    assert_eq!(during.count(), 0, "a paused node does nothing");
    let arrivals = received(&result, 0, 1);
    let at_end: Vec<u64> =
        arrivals.iter().filter(|(at, _)| *at == 300 * MS).filter_map(|(_, sequence)| *sequence).collect();
    assert!(at_end.len() >= 19, "waiting messages arrive at the end: {at_end:?}");
    assert!(at_end.windows(2).all(|pair| pair[0] < pair[1]), "in order");
    let tick = result.events.iter().find_map(|(at, node, event)| match event {
        ProbeEvent::Tick { local_ns } if *node == 1 && *at == 300 * MS => Some(*local_ns),
        _ => None,
    });
    assert!(tick.is_some_and(|local_ns| local_ns >= 300 * MS), "the timer fired late, clock at {tick:?}");
    assert_eq!(result.active["pause"], 200 * MS);
    assert!(result.text.contains("resumes: "));
}

#[test]
fn failed_fsync_is_never_reported_synced_and_restarts_from_disk() {
    let fault = Fault::Disk { node: 0, kind: DiskFaultKind::FsyncFail };
    let writes = [(50 * MS, 0, 1), (150 * MS, 0, 2), (250 * MS, 0, 3)];
    let result = run(config(8, Transport::Datagram), &[(100 * MS, Some(200 * MS), fault)], &writes, 300 * MS);
    let synced: Vec<u64> = result
        .events
        .iter()
        .filter_map(|(_, node, event)| match event {
            ProbeEvent::Synced { sync_id } if *node == 0 => Some(*sync_id),
            _ => None,
        })
        .collect();
    // Sync 1 succeeded; sync 2 failed and the node restarted, so its next write is sync 1 again.
    assert_eq!(synced, vec![1, 1]);
    let boots: Vec<&Vec<u8>> = result
        .events
        .iter()
        .filter_map(|(_, node, event)| match event {
            ProbeEvent::Booted { disk } if *node == 0 => Some(disk),
            _ => None,
        })
        .collect();
    assert_eq!(boots, vec![&vec![], &vec![1, 1, 1, 1]], "the failed write is not on the disk");
    assert_eq!(result.stats.sync_failures, 1);
    assert!(result.text.contains("disk sync #2 failed"));
}

#[test]
fn full_disk_refuses_appends_and_misdirected_appends_leave_stale_bytes() {
    let faults = [
        (100 * MS, Some(200 * MS), Fault::Disk { node: 0, kind: DiskFaultKind::Full }),
        (240 * MS, None, Fault::Disk { node: 0, kind: DiskFaultKind::Misdirected }),
        (280 * MS, None, Fault::Crash { node: 0 }),
        (290 * MS, None, Fault::Restart { node: 0 }),
    ];
    let writes = [(50 * MS, 0, 1), (150 * MS, 0, 2), (250 * MS, 0, 3)];
    let result = run(config(9, Transport::Datagram), &faults, &writes, 300 * MS);
    assert_eq!(result.stats.appends_refused, 1);
    assert_eq!(result.stats.sync_failures, 1, "the sync after a refused append fails");
    assert_eq!(result.stats.misdirected_appends, 1);
    let last_boot = result.events.iter().rev().find_map(|(_, node, event)| match event {
        ProbeEvent::Booted { disk } if *node == 0 => Some(disk.clone()),
        _ => None,
    });
    assert_eq!(last_boot, Some(vec![1, 1, 1, 1, 0, 0, 0, 0]), "write 3 was reported synced but is not there");
}

/// Goal: ferry never acknowledges a write whose fsync failed, and loses nothing it
/// acknowledged through every adversarial fault. Method: three nodes, a steady workload,
/// each fault on its own window, a liveness phase, the checker.
#[test]
fn ferry_survives_the_adversary() {
    for transport in [Transport::Datagram, Transport::Stream] {
        for seed in 0..3 {
            let names: Vec<String> = ["a", "b", "c"].iter().map(|name| (*name).to_owned()).collect();
            let mut config = SimConfig::new(seed, names.clone());
            config.transport = transport;
            config.link.bandwidth_bytes_per_second = Some(200_000);
            let mut simulation: Simulation<FerryNode> =
                Simulation::new(config, FerryConfig::new(seed, names, transport), Trace::default());
            for index in 0..200u64 {
                let key = Bytes::from(format!("k{}", index % 17));
                let put = Command::Put { key, value: Bytes::from(format!("v{index}")) };
                simulation.schedule_command(index * 25 * MS, (index % 3) as u32, put);
            }
            let windows = [
                (500, 1_500, Fault::Corrupt { first: 0, second: 1, probability: 0.3 }),
                (1_000, 2_000, Fault::Clog { from: 1, to: 2, both: true }),
                (2_000, 2_400, Fault::Pause { node: 2 }),
                (2_500, 3_000, Fault::Disk { node: 0, kind: DiskFaultKind::FsyncFail }),
                (3_200, 3_600, Fault::Disk { node: 1, kind: DiskFaultKind::Full }),
            ];
            for (at, until, fault) in windows {
                simulation.schedule_fault_until(at * MS, until * MS, fault);
            }
            simulation.schedule_fault(4 * S, Fault::Replay { first: 0, second: 2, count: 20 });
            let mut checker = FerryChecker::default();
            let mut acked_while_failing = 0;
            simulation.run_until(5 * S, |simulation| {
                checker.observe(simulation);
                let failing = (2_500 * MS..3_000 * MS).contains(&simulation.now_ns());
                for (node, event) in simulation.events_last() {
                    if failing && *node == 0 && matches!(event, FerryEvent::Node(NodeEvent::Acked { .. })) {
                        acked_while_failing += 1;
                    }
                }
                Control::Continue
            });
            simulation.heal_and_restart_all();
            let mut converged = false;
            simulation.run_until(60 * S, |simulation| {
                checker.observe(simulation);
                converged = FerryChecker::converged(simulation);
                if converged { Control::Stop } else { Control::Continue }
            });
            let label = format!("{transport:?} seed {seed}");
            assert!(converged, "{label}: did not converge");
            assert_eq!(checker.data_loss(&simulation), Vec::<String>::new(), "{label}");
            assert_eq!(checker.violations.len(), 0, "{label}: {:?}", checker.violations);
            assert_eq!(acked_while_failing, 0, "{label}: acknowledged while every fsync failed");
            let stats = simulation.stats();
            assert!(
                stats.sync_failures > 0 && stats.clog_released > 0 && stats.pause_deferred > 0,
                "{label}"
            );
        }
    }
}

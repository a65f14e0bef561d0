//! Runs one scenario with one seed: builds the simulation, schedules the workload, the
//! scripted faults and the chaos schedule, runs to the liveness phase, heals, and checks the
//! expectations.
//!
//! Phases: (1) the workload and every fault, as written, until the latest of the workload's
//! end, every fault's end and `chaos.until` ([`Scenario::liveness_start`]); (2) the liveness
//! phase: heal every link and restart every crashed node; (3) run until all digests agree,
//! or until `expect.within` after the liveness phase began, capped at `duration` (with
//! `converged: false`, always to that deadline).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use ferry_protocol::MessageType;
use ferry_simulator::disk::DiskConfig;
use ferry_simulator::ferry::{
    Command, FerryChecker, FerryConfig, FerryLink, FerryNode, PingOutcome, PlantedBug, Violation, format_ns,
};
use ferry_simulator::random::{self, Stream};
use ferry_simulator::{
    Control, DiskFaultKind, Fault, LinkOverride, LinkParams, SimConfig, Simulation, Stats, Trace, Transport,
};
use rand_chacha::rand_core::RngCore;

use crate::chaos;
use crate::scenario::{
    self, FaultKind, LivenessCause, NodeSelection, RandomPuts, Scenario, ValueBytes, WorkloadItem,
};

/// One named expectation and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// `converged`, `no_data_loss`, `invariants`, `causality`, `sessions`, `routing` or
    /// `trace_hash`.
    pub name: &'static str,
    /// True when it held.
    pub ok: bool,
    /// One line of explanation.
    pub detail: String,
}

/// Everything a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// The trace hash.
    pub trace_hash: String,
    /// The checks, in a fixed order.
    pub checks: Vec<Check>,
    /// Simulator counters.
    pub stats: Stats,
    /// Final virtual time.
    pub virtual_ns: u64,
    /// Nodes in the run.
    pub nodes_count: usize,
    /// When the liveness phase began.
    pub heal_ns: u64,
    /// Why it began then (`after the end of the fault at 12.5s`).
    pub heal_reason: String,
    /// First time after the liveness phase began that every digest agreed.
    pub converged_ns: Option<u64>,
    /// How long each kind of fault was in force, in nanoseconds.
    pub fault_active_ns: std::collections::BTreeMap<&'static str, u64>,
    /// What the run found suspicious: a fault that changed nothing. Text, one line each.
    pub warnings: Vec<String>,
    /// True when the run was cancelled before it finished; its checks mean nothing.
    pub interrupted: bool,
    /// Last-writer-wins conflicts resolved, summed over the nodes that resolved them.
    pub lww_conflicts: u64,
    /// Stable kinds of the failed checks that have them, as `(check, kind)` pairs in report
    /// order: `converged` is `not-converged` or `converged-unexpectedly`; `no_data_loss` has
    /// one pair per kind of loss found ([`ferry_simulator::ferry::LossKind::name`]).
    pub failure_kinds: Vec<(&'static str, &'static str)>,
    /// Each node's final state ([`crate::inspect::dump_state`]), when asked for.
    pub state: Option<serde_json::Value>,
    /// Writes acknowledged during the run.
    pub writes_acked: usize,
    /// Workload writes a node refused, acknowledging nothing.
    pub writes_refused: u64,
    /// What replication cost.
    pub cost: Cost,
    /// The nodes' names, in scenario order (the order of `stats.per_node` and
    /// `settled_ns`).
    pub node_names: Vec<String>,
    /// Per node, when its state digest last changed: the moment it reached the state it
    /// ends the run with (`None` if it never ran).
    pub settled_ns: Vec<Option<u64>>,
    /// The chaos faults drawn for this seed.
    pub chaos_faults: usize,
    /// The first error writing or flushing the text trace, if a sink was attached and
    /// failed; the run and its hash are still complete.
    pub trace_error: Option<String>,
}

impl Report {
    /// True when every check held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.ok)
    }

    /// The checks that failed, in report order.
    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| !check.ok)
    }
}

/// `network.links` as the simulator's per-link transports.
fn ferry_links(network: &scenario::Network) -> BTreeMap<(u32, u32), FerryLink> {
    network
        .links
        .iter()
        .map(|link| {
            let [first, second] = link.between.map(|index| index as u32);
            let carried = match link.transport {
                scenario::Transport::Datagram => FerryLink::Datagram,
                scenario::Transport::Stream => FerryLink::Stream,
                scenario::Transport::Quic => FerryLink::Quic,
            };
            ((first.min(second), first.max(second)), carried)
        })
        .collect()
}

fn sim_config(scenario: &Scenario, seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed, scenario.nodes.clone());
    config.topology = match scenario.topology {
        scenario::Topology::FullMesh => ferry_simulator::Topology::FullMesh,
        _ => ferry_simulator::Topology::Edges(
            scenario.edges().into_iter().map(|(low, high)| (low as u32, high as u32)).collect(),
        ),
    };
    config.transport = match scenario.network.transport {
        // QUIC's packets are datagrams; the nodes run QUIC over them.
        scenario::Transport::Datagram | scenario::Transport::Quic => Transport::Datagram,
        scenario::Transport::Stream => Transport::Stream,
    };
    let network = &scenario.network;
    config.link_transports =
        ferry_links(network).into_iter().map(|(pair, link)| (pair, link.network_transport())).collect();
    config.link = LinkParams {
        latency_ns_min: network.latency_ns.min_ns,
        latency_ns_max: network.latency_ns.max_ns,
        loss: network.loss,
        duplicate: network.duplicate,
        reorder: network.reorder,
        bandwidth_bytes_per_second: network.bandwidth_bits_per_second.map(|bits| (bits / 8).max(1)),
        queue_messages_max: network.queue_messages_max,
    };
    let disk = &scenario.disk;
    config.disk = DiskConfig {
        fsync_latency_ns_min: disk.fsync_latency_ns.min_ns,
        fsync_latency_ns_max: disk.fsync_latency_ns.max_ns,
        lose_unsynced: disk.lose_unsynced,
        torn_writes: disk.torn_writes,
        corrupt_read: disk.corrupt_read,
    };
    config.clock_skew_ns = scenario.clock.skew_ns;
    config.clock_drift_ppm = scenario.clock.drift_ppm;
    config
}

/// A fault marked `drawn` as the chaos schedule would have drawn it: a partition is its
/// first group against the rest, as [`chaos::draw`] makes it.
fn drawn_fault(item: &scenario::Fault, nodes_count: usize) -> chaos::Drawn {
    let mut converted = fault(&item.kind, nodes_count);
    if let Fault::Partition { groups } = &mut converted
        && groups.len() >= 2
    {
        groups.pop();
    }
    chaos::Drawn { at_ns: item.at_ns, until_ns: item.until_ns, fault: converted }
}

/// Converts a scripted fault to the simulator's.
#[must_use]
pub fn fault(kind: &FaultKind, nodes_count: usize) -> Fault {
    let index = |node: &usize| *node as u32;
    match kind {
        FaultKind::Partition { groups } => Fault::Partition {
            groups: groups.iter().map(|group| group.iter().map(index).collect()).collect(),
        },
        FaultKind::Cut { from, to } => Fault::Cut { from: index(from), to: index(to) },
        FaultKind::Link(change) => Fault::Link {
            first: index(&change.between[0]),
            second: index(&change.between[1]),
            change: LinkOverride {
                latency_ns: change.latency_ns.map(|range| (range.min_ns, range.max_ns)),
                loss: change.loss,
                duplicate: change.duplicate,
                reorder: change.reorder,
                bandwidth_bytes_per_second: change.bandwidth_bits_per_second.map(|bits| (bits / 8).max(1)),
                queue_messages_max: change.queue_messages_max,
            },
        },
        FaultKind::Crash { node } => Fault::Crash { node: index(node) },
        FaultKind::Restart { node } => Fault::Restart { node: index(node) },
        FaultKind::Isolate { node } => Fault::Isolate { node: index(node) },
        FaultKind::ClockJump { node, by_ns } => Fault::ClockJump { node: index(node), by_ns: *by_ns },
        FaultKind::Heal { nodes: NodeSelection::All } => Fault::HealAll,
        FaultKind::Heal { nodes } => {
            Fault::HealNodes { nodes: nodes.indices(nodes_count).iter().map(index).collect() }
        }
        FaultKind::Break { between } => {
            Fault::Break { first: index(&between[0]), second: index(&between[1]) }
        }
        FaultKind::Corrupt { between, probability } => Fault::Corrupt {
            first: index(&between[0]),
            second: index(&between[1]),
            probability: *probability,
        },
        FaultKind::Replay { between, count } => {
            Fault::Replay { first: index(&between[0]), second: index(&between[1]), count: *count }
        }
        FaultKind::Clog { from, to, both } => Fault::Clog { from: index(from), to: index(to), both: *both },
        FaultKind::Pause { node } => Fault::Pause { node: index(node) },
        FaultKind::DiskFault { node, kind } => Fault::Disk {
            node: index(node),
            kind: match kind {
                scenario::DiskFaultKind::FsyncFail => DiskFaultKind::FsyncFail,
                scenario::DiskFaultKind::Full => DiskFaultKind::Full,
                scenario::DiskFaultKind::Misdirected => DiskFaultKind::Misdirected,
            },
        },
    }
}

const VALUE_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Draws one operation of a random workload item: usually one command on one node; a hot
/// operation is one command on each of several nodes, all for the same instant. Without
/// `deletes`, `hot_keys` and a `value_bytes` range it draws exactly what plain random puts
/// always drew (node, key, value), so existing seeds keep their traces.
fn random_operation(rng: &mut impl RngCore, puts: &RandomPuts, writers: &[usize]) -> Vec<(u32, Command)> {
    if let Some(hot) = &puts.hot_keys
        && random::uniform(rng, 0, PER_MILLION - 1) < u64::from(hot.share_per_million)
    {
        let key = key_name(format!("hot{}", random::uniform(rng, 0, hot.keys_count - 1)), puts.key_bytes);
        // A partial Fisher-Yates shuffle picks distinct writers.
        let mut candidates = writers.to_vec();
        let count = (hot.writers_count as usize).min(candidates.len());
        let mut operations = Vec::with_capacity(count);
        for index in 0..count {
            let chosen = random::uniform(rng, index as u64, candidates.len() as u64 - 1) as usize;
            candidates.swap(index, chosen);
            operations.push((candidates[index] as u32, random_command(rng, puts, key.clone())));
        }
        return operations;
    }
    let node = writers[random::uniform(rng, 0, writers.len() as u64 - 1) as usize];
    let key = key_name(format!("k{}", random::uniform(rng, 0, puts.keys_count.max(1) - 1)), puts.key_bytes);
    vec![(node as u32, random_command(rng, puts, key))]
}

/// `name` padded with `.` to `key_bytes`, if given (a longer name stays as it is). The
/// padding draws nothing, so `key_bytes` changes no other choice of a seed.
fn key_name(mut name: String, key_bytes: Option<u32>) -> String {
    if let Some(length) = key_bytes {
        let length = length as usize;
        if name.len() < length {
            name.extend(std::iter::repeat_n('.', length - name.len()));
        }
    }
    name
}

/// Millionths in one.
const PER_MILLION: u64 = 1_000_000;

/// A delete of `key` (with probability `deletes`) or a put of a random value.
fn random_command(rng: &mut impl RngCore, puts: &RandomPuts, key: String) -> Command {
    if puts.deletes_per_million > 0
        && random::uniform(rng, 0, PER_MILLION - 1) < u64::from(puts.deletes_per_million)
    {
        return Command::Delete { key: key.into() };
    }
    let ValueBytes { min, max } = puts.value_bytes;
    let length = if min == max {
        min
    } else {
        // One value in four at each limit, the rest anywhere between.
        match random::uniform(rng, 0, 3) {
            0 => min,
            1 => max,
            _ => random::uniform(rng, u64::from(min), u64::from(max)) as u32,
        }
    };
    let value: Vec<u8> =
        (0..length).map(|_| VALUE_ALPHABET[(rng.next_u32() as usize) % VALUE_ALPHABET.len()]).collect();
    Command::Put { key: key.into(), value: value.into() }
}

/// The operations a random workload item (at `item_index` in the file) draws for `seed`,
/// as `(time, node, command)` in the order they are scheduled: the steady ones, then the
/// bursts.
#[must_use]
pub fn random_operations(
    puts: &RandomPuts,
    nodes_count: usize,
    seed: u64,
    item_index: usize,
) -> Vec<(u64, u32, Command)> {
    let mut operations = Vec::new();
    let mut rng = random::stream(seed, Stream::WorkloadItem(item_index as u32));
    let writers = puts.nodes.indices(nodes_count);
    let interval_ns = puts.rate.interval_ns_mean().max(1);
    // Uniform gaps in [0, 2 * mean] keep the mean rate without transcendental
    // functions, whose last bits may differ between platforms.
    let mut at_ns = puts.from_ns + random::uniform(&mut rng, 0, interval_ns);
    while at_ns < puts.until_ns && !writers.is_empty() {
        for (node, command) in random_operation(&mut rng, puts, &writers) {
            operations.push((at_ns, node, command));
        }
        at_ns += random::uniform(&mut rng, 0, 2 * interval_ns);
    }
    // Bursts draw after the steady operations, so adding one leaves those as
    // they were.
    if let Some(burst) = &puts.burst
        && !writers.is_empty()
    {
        let mut at_ns = puts.from_ns.saturating_add(burst.every_ns);
        while at_ns < puts.until_ns {
            for _ in 0..burst.operations_count {
                for (node, command) in random_operation(&mut rng, puts, &writers) {
                    operations.push((at_ns, node, command));
                }
            }
            at_ns = at_ns.saturating_add(burst.every_ns);
        }
    }
    operations
}

/// Schedules the workload; returns the time of the last command (write or ping).
fn schedule_workload(simulation: &mut Simulation<FerryNode>, scenario: &Scenario, seed: u64) -> u64 {
    let mut last_write_ns = 0;
    for (item_index, item) in scenario.workload.iter().enumerate() {
        match item {
            WorkloadItem::Put { at_ns, node, key, value } => {
                let write = Command::Put { key: Bytes::from(key.clone()), value: Bytes::from(value.clone()) };
                simulation.schedule_command(*at_ns, *node as u32, write);
                last_write_ns = last_write_ns.max(*at_ns);
            }
            WorkloadItem::Delete { at_ns, node, key } => {
                simulation.schedule_command(
                    *at_ns,
                    *node as u32,
                    Command::Delete { key: Bytes::from(key.clone()) },
                );
                last_write_ns = last_write_ns.max(*at_ns);
            }
            WorkloadItem::Ping { at_ns, node, target } => {
                simulation.schedule_command(*at_ns, *node as u32, Command::Ping { target: *target as u32 });
                last_write_ns = last_write_ns.max(*at_ns);
            }
            WorkloadItem::Random(puts) => {
                for (at_ns, node, command) in random_operations(puts, scenario.nodes.len(), seed, item_index)
                {
                    simulation.schedule_command(at_ns, node, command);
                    last_write_ns = last_write_ns.max(at_ns);
                }
            }
        }
    }
    last_write_ns
}

/// How a run may be steered from outside.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options<'a> {
    /// Checked after every event; when it becomes true the run stops and its report says
    /// `interrupted` (a sweep's Ctrl-C or `--fail-fast`).
    pub cancel: Option<&'a AtomicBool>,
    /// Print keys and values of pushed entries in the text trace (`--trace-values`).
    pub trace_values: bool,
    /// Keep each node's final state in [`Report::state`] (`--dump-state`).
    pub dump_state: bool,
    /// Runs every node with this bug planted ([`PlantedBug`]), so that tests of `ferry
    /// shrink` get real failures of a broken process. No flag sets it; `None` is the correct
    /// process.
    #[doc(hidden)]
    pub planted_bug: Option<PlantedBug>,
}

/// What replication cost in a run (issue 13's figures).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    /// Messages sent by every node in every incarnation, per type (types never sent
    /// omitted), in type-code order.
    pub sent_by_type: Vec<(MessageType, u64)>,
    /// Bytes of those messages' frames, per type, the same way.
    pub sent_bytes_by_type: Vec<(MessageType, u64)>,
    /// Links of the topology (each pair of neighbours once).
    pub links: u64,
    /// WalPush messages sent by every node in every incarnation.
    pub pushes: u64,
    /// Entries those pushes carried, repeats included.
    pub entries_pushed: u64,
    /// Lazy links that turned eager again to repair the broadcast tree (PROTOCOL.md 8.6).
    pub grafts: u64,
    /// The most entries any one node's log held.
    pub peak_log_entries: u64,
    /// The most bytes any one node's WAL held.
    pub peak_wal_bytes: u64,
    /// Per node in scenario order, the most entries its log held and the most bytes its WAL
    /// held.
    pub peaks: Vec<(u64, u64)>,
    /// Compactions every node made (PROTOCOL.md 8.11).
    pub compactions: u64,
    /// Snapshots received, verified and merged.
    pub snapshots_applied: u64,
    /// Snapshots thrown away before they changed anything.
    pub snapshots_refused: u64,
    /// Per node in scenario order, at the end of the run (zeros for a node that is down):
    /// the bytes its disk holds, the bytes of its state as WAL records (one per key,
    /// tombstones included) and the WAL bytes of its log above the compaction base. A
    /// compacted WAL holds at most the state and that log, plus a base record.
    pub wal_at_end: Vec<WalAtEnd>,
}

/// A node's WAL at the end of a run, against what it must hold; see [`Cost::wal_at_end`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalAtEnd {
    /// Bytes on its disk.
    pub wal_bytes: u64,
    /// Its state's registers as WAL records.
    pub state_bytes: u64,
    /// Its log's entries above the compaction base, as WAL records.
    pub log_bytes: u64,
}

impl Cost {
    /// The largest `(wal − log) / state` over the nodes at the end, to one decimal: how
    /// much more than its state (one record per key) a node's WAL spends besides the log
    /// compaction has not folded yet. 1.0 right after a compaction.
    #[must_use]
    pub fn wal_ratio_at_end(&self) -> f64 {
        let ratio = self
            .wal_at_end
            .iter()
            .filter(|wal| wal.state_bytes > 0)
            .map(|wal| wal.wal_bytes.saturating_sub(wal.log_bytes) as f64 / wal.state_bytes as f64)
            .fold(0.0, f64::max);
        (ratio * 10.0).round() / 10.0
    }

    /// `count` per acknowledged write, to one decimal; `None` without writes.
    #[must_use]
    pub fn per_write(count: u64, writes_acked: usize) -> Option<f64> {
        (writes_acked > 0).then(|| (count as f64 / writes_acked as f64 * 10.0).round() / 10.0)
    }

    /// Messages of `types` sent.
    #[must_use]
    pub fn sent_of(&self, types: &[MessageType]) -> u64 {
        self.sent_by_type
            .iter()
            .filter(|(message_type, _)| types.contains(message_type))
            .map(|(_, count)| count)
            .sum()
    }

    /// Messages that carry writes: WalPush, WalAck and Prune.
    #[must_use]
    pub fn replication_messages(&self) -> u64 {
        self.sent_of(&[MessageType::WalPush, MessageType::WalAck, MessageType::Prune])
    }

    /// Messages sent whether or not anything is written: OutboxPull (anti-entropy), Ping,
    /// Pong, RouteAnnounce and Routed. Handshakes and Closes are neither kind.
    #[must_use]
    pub fn background_messages(&self) -> u64 {
        self.sent_of(&[
            MessageType::OutboxPull,
            MessageType::Ping,
            MessageType::Pong,
            MessageType::RouteAnnounce,
            MessageType::Routed,
        ])
    }

    /// Background messages per link per virtual second, to two decimals; `None` without
    /// links or time.
    #[must_use]
    pub fn background_per_link_per_second(&self, virtual_ns: u64) -> Option<f64> {
        if self.links == 0 || virtual_ns == 0 {
            return None;
        }
        let rate = self.background_messages() as f64 / self.links as f64 / (virtual_ns as f64 / 1e9);
        Some((rate * 100.0).round() / 100.0)
    }
}

/// Runs `scenario` with `seed`, recording into `trace`.
#[must_use]
pub fn run(scenario: &Scenario, seed: u64, trace: Trace) -> Report {
    run_with(scenario, seed, trace, Options::default())
}

/// Why the liveness phase starts when it does, in words.
#[must_use]
pub fn liveness_reason(scenario: &Scenario) -> String {
    let (at_ns, cause) = scenario.liveness_start();
    let capped = if at_ns >= scenario.duration_ns { " (the end of the run)" } else { "" };
    let reason = match cause {
        LivenessCause::Nothing => "nothing happens in this scenario".to_owned(),
        LivenessCause::Workload(index) => match &scenario.workload[index] {
            WorkloadItem::Random(_) => "after the workload's last random write window".to_owned(),
            _ => "after the workload's last operation".to_owned(),
        },
        LivenessCause::Fault(index) => {
            let fault = &scenario.faults[index];
            match fault.until_ns {
                Some(_) => format!("after the end of the fault at line {}", fault.span.line),
                None => format!("after the fault at line {}", fault.span.line),
            }
        }
        LivenessCause::Chaos => "after chaos.until".to_owned(),
    };
    format!("{reason}{capped}")
}

/// The cluster secret of a run with `network.cluster_secret`: fixed by the seed, like the
/// nodes' identities.
fn cluster_secret(seed: u64) -> [u8; ferry_protocol::session::PSK_BYTES] {
    let mut secret = [0x5a; ferry_protocol::session::PSK_BYTES];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    secret
}

/// Runs `scenario` with `seed`, recording into `trace`, steered by `options`.
#[must_use]
pub fn run_with(scenario: &Scenario, seed: u64, trace: Trace, options: Options<'_>) -> Report {
    let nodes_count = scenario.nodes.len();
    let config = sim_config(scenario, seed);
    let mut ferry_config = FerryConfig::new(seed, scenario.nodes.clone(), config.transport);
    ferry_config.routing = scenario.routing;
    ferry_config.compaction_log_bytes = scenario.disk.compaction_log_bytes;
    ferry_config.compaction_horizon_ns = scenario.disk.compaction_horizon_ns;
    ferry_config.psk = scenario.network.cluster_secret.then(|| cluster_secret(seed));
    ferry_config.quic = scenario.network.transport == scenario::Transport::Quic;
    ferry_config.links = ferry_links(&scenario.network);
    ferry_config.trace_values = options.trace_values;
    ferry_config.planted_bug = options.planted_bug;
    let mut checker = FerryChecker::default();
    ferry_config.audit = Some(checker.audit_log());
    let mut simulation: Simulation<FerryNode> = Simulation::new(config, ferry_config, trace);
    for item in scenario.faults.iter().filter(|item| !item.drawn) {
        let fault = fault(&item.kind, nodes_count);
        match item.until_ns {
            Some(until_ns) => simulation.schedule_fault_until(item.at_ns, until_ns, fault),
            None => simulation.schedule_fault(item.at_ns, fault),
        }
    }
    // Faults the file marks `drawn` (an exported chaos schedule) go the way chaos draws go.
    let mut schedule: Vec<chaos::Drawn> =
        scenario.faults.iter().filter(|item| item.drawn).map(|item| drawn_fault(item, nodes_count)).collect();
    let mut chaos_faults = 0;
    if let Some(chaos) = &scenario.chaos {
        let drawn = chaos::draw(chaos, nodes_count as u32, seed);
        chaos_faults = drawn.len();
        schedule.extend(drawn);
    }
    if !schedule.is_empty() {
        for drawn in &schedule {
            let until =
                drawn.until_ns.map(|until_ns| format!(" until {}", format_ns(until_ns))).unwrap_or_default();
            let text = format!(
                "chaos schedule: at {} {}{until}",
                format_ns(drawn.at_ns),
                drawn.fault.named(&scenario.nodes)
            );
            simulation.note(&text);
        }
        for drawn in schedule {
            match drawn.until_ns {
                Some(until_ns) => simulation.schedule_fault_until(drawn.at_ns, until_ns, drawn.fault),
                None => simulation.schedule_fault(drawn.at_ns, drawn.fault),
            }
        }
    }
    schedule_workload(&mut simulation, scenario, seed);

    let duration_ns = scenario.duration_ns;
    let (heal_ns, _) = scenario.liveness_start();
    let heal_reason = liveness_reason(scenario);
    let cancelled = || options.cancel.is_some_and(|cancel| cancel.load(Ordering::Relaxed));
    simulation.run_until(heal_ns, |simulation| {
        checker.observe(simulation);
        if cancelled() { Control::Stop } else { Control::Continue }
    });

    simulation.note(&format!("liveness phase ({heal_reason}): heal every link, restart every crashed node"));
    simulation.heal_and_restart_all();
    checker.observe(&simulation);

    let deadline_ns = heal_ns.saturating_add(scenario.expect.within_ns).min(duration_ns);
    let expect_convergence = scenario.expect.converged;
    let mut converged_ns = None;
    if FerryChecker::converged(&simulation) {
        converged_ns = Some(simulation.now_ns());
    }
    // With `converged: false` the run goes to the deadline: divergence is judged there.
    if !expect_convergence || converged_ns.is_none() || checker.pings_pending() {
        simulation.run_until(deadline_ns, |simulation| {
            checker.observe(simulation);
            if cancelled() {
                return Control::Stop;
            }
            if converged_ns.is_none() && FerryChecker::converged(simulation) {
                converged_ns = Some(simulation.now_ns());
            }
            // Stop at convergence, once no routed ping is still being tried.
            if expect_convergence && converged_ns.is_some() && !checker.pings_pending() {
                return Control::Stop;
            }
            Control::Continue
        });
    }
    if let Some(at_ns) = converged_ns {
        simulation.note(&format!("converged at {}", format_ns(at_ns)));
    }

    let mut checks = Vec::new();
    let mut failure_kinds = Vec::new();
    let convergence = convergence_check(&simulation, expect_convergence, converged_ns, heal_ns, deadline_ns);
    if !convergence.ok {
        let kind = if expect_convergence { "not-converged" } else { "converged-unexpectedly" };
        failure_kinds.push(("converged", kind));
    }
    checks.push(convergence);
    if scenario.expect.no_data_loss {
        let (check, kinds) = data_loss_check(&checker, &simulation);
        failure_kinds.extend(kinds.into_iter().map(|kind| ("no_data_loss", kind.name())));
        checks.push(check);
    }
    let detail = if checker.violations.is_empty() {
        "no acknowledged write vanished from its origin; every node started".to_owned()
    } else {
        checker
            .violations
            .iter()
            .map(|violation| format!("at {}: {}", format_ns(violation.at_ns), violation.detail))
            .collect::<Vec<_>>()
            .join("; ")
    };
    checks.push(Check { name: "invariants", ok: checker.violations.is_empty(), detail });
    checks.push(causality_check(&checker));
    checks.push(sessions_check(&checker));
    if !checker.pings.is_empty() {
        checks.push(routing_check(&checker, &scenario.nodes));
    }
    for node in 0..simulation.nodes_count() {
        checker.observe_peak(&simulation, node);
    }
    let trace_error = simulation.trace_mut().finish().err().map(|error| error.to_string());
    let trace_hash = simulation.trace().hash_hex();
    if let Some(expected) = &scenario.expect.trace_hash
        && seed == scenario.seed.unwrap_or(0)
    {
        checks.push(trace_hash_check(expected, &trace_hash));
    }

    Report {
        scenario: scenario.name.clone(),
        seed,
        trace_hash,
        checks,
        stats: simulation.stats().clone(),
        virtual_ns: simulation.now_ns(),
        nodes_count,
        heal_ns,
        heal_reason,
        converged_ns,
        writes_acked: checker.acked.len(),
        writes_refused: checker.writes_refused,
        cost: Cost {
            sent_by_type: checker.sent_by_type(),
            sent_bytes_by_type: checker.sent_bytes_by_type(),
            links: scenario.edges().len() as u64,
            pushes: checker.pushes,
            grafts: checker.grafts,
            entries_pushed: checker.entries_pushed,
            peak_log_entries: checker.peaks.values().map(|(entries, _)| *entries).max().unwrap_or(0),
            peak_wal_bytes: checker.peaks.values().map(|(_, bytes)| *bytes as u64).max().unwrap_or(0),
            peaks: (0..nodes_count as u32)
                .map(|node| {
                    checker.peaks.get(&node).map_or((0, 0), |(entries, bytes)| (*entries, *bytes as u64))
                })
                .collect(),
            compactions: checker.compactions,
            snapshots_applied: checker.snapshots_applied,
            snapshots_refused: checker.snapshots_refused,
            wal_at_end: (0..nodes_count as u32)
                .map(|node| {
                    let Some(protocol) = simulation.process(node).and_then(FerryNode::node) else {
                        return WalAtEnd::default();
                    };
                    let store = protocol.store();
                    WalAtEnd {
                        wal_bytes: simulation.disk_bytes(node) as u64,
                        state_bytes: store.encoded_bytes()
                            + store.registers_count() as u64
                                * ferry_protocol::wal::WAL_RECORD_HEADER_BYTES as u64,
                        log_bytes: protocol.log_record_bytes(),
                    }
                })
                .collect(),
        },
        node_names: scenario.nodes.clone(),
        settled_ns: (0..nodes_count as u32)
            .map(|node| checker.settled.get(&node).map(|(_, at_ns)| *at_ns))
            .collect(),
        chaos_faults,
        fault_active_ns: simulation.fault_active_ns(),
        warnings: run_warnings(scenario, &simulation),
        interrupted: cancelled(),
        lww_conflicts: checker.lww_conflicts,
        failure_kinds,
        state: options.dump_state.then(|| crate::inspect::dump_state(&simulation)),
        trace_error,
    }
}

fn trace_hash_check(expected: &str, actual: &str) -> Check {
    if expected == actual {
        return Check {
            name: "trace_hash",
            ok: true,
            detail: format!("the trace hash is {actual}, as expected"),
        };
    }
    Check {
        name: "trace_hash",
        ok: false,
        detail: format!(
            "the trace hash is {actual}, but expect.trace_hash is {expected}: the run's behaviour changed; compare \
             traces with --trace, then accept the new behaviour with --bless"
        ),
    }
}

/// What only the run can tell: a `link` fault that no message crossed while it was on.
fn run_warnings(scenario: &Scenario, simulation: &Simulation<FerryNode>) -> Vec<String> {
    let mut warnings = Vec::new();
    for fault in &scenario.faults {
        let FaultKind::Link(change) = &fault.kind else { continue };
        let [first, second] = change.between;
        if !scenario.topology.connects(first, second, scenario.nodes.len()) {
            continue; // `ferry check` already says so.
        }
        if simulation.override_traffic(first as u32, second as u32) == 0 {
            warnings.push(format!(
                "the `link` fault at line {} changed nothing: no message between `{}` and `{}` was sent while it \
                 was in force",
                fault.span.line, scenario.nodes[first], scenario.nodes[second]
            ));
        }
    }
    warnings
}

/// The check, and the kinds of loss found (sorted, each once).
fn data_loss_check(
    checker: &FerryChecker,
    simulation: &Simulation<FerryNode>,
) -> (Check, Vec<ferry_simulator::ferry::LossKind>) {
    let problems = checker.data_losses(simulation);
    if !problems.is_empty() {
        let mut kinds: Vec<_> = problems.iter().map(|loss| loss.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let detail = problems.into_iter().map(|loss| loss.detail).collect::<Vec<_>>().join("; ");
        return (Check { name: "no_data_loss", ok: false, detail }, kinds);
    }
    // Writes a later write to the same key beat under last-writer-wins: on every node
    // (the check passed), so node 0 tells.
    let superseded = simulation.process(0).and_then(FerryNode::node).map_or(0, |node| {
        checker
            .acked
            .values()
            .filter(|write| {
                let entry = &write.entry;
                node.store().version(entry.operation.key()).is_some_and(|version| version > entry.version())
            })
            .count()
    });
    let check = Check {
        name: "no_data_loss",
        ok: true,
        detail: format!(
            "every acknowledged write ({}) is on all {} nodes ({} live, {superseded} superseded by a later write)",
            checker.acked.len(),
            simulation.nodes_count(),
            checker.acked.len() - superseded
        ),
    };
    (check, Vec::new())
}

/// `at 4.512s: node b issued ...; ...`, and how many more were not shown.
fn violations_detail(violations: &[Violation], violations_count: u64) -> String {
    let mut detail = violations
        .iter()
        .map(|violation| format!("at {}: {}", format_ns(violation.at_ns), violation.detail))
        .collect::<Vec<_>>()
        .join("; ");
    let hidden_count = violations_count.saturating_sub(violations.len() as u64);
    if hidden_count > 0 {
        let _ = write!(detail, "; and {hidden_count} more");
    }
    detail
}

fn causality_check(checker: &FerryChecker) -> Check {
    let causal = &checker.causal;
    if causal.violations_count > 0 {
        return Check {
            name: "causality",
            ok: false,
            detail: violations_detail(&causal.violations, causal.violations_count),
        };
    }
    let exempt = match causal.writes_stamped_above {
        0 => String::new(),
        count => format!(" ({count} stamped just above a version ahead of their node's clock)"),
    };
    Check {
        name: "causality",
        ok: true,
        detail: format!(
            "{}, each newer than every version its node had seen of its key{exempt}",
            plural(causal.writes_checked as usize, "write")
        ),
    }
}

fn sessions_check(checker: &FerryChecker) -> Check {
    let sessions = &checker.sessions;
    if sessions.violations_count > 0 {
        return Check {
            name: "sessions",
            ok: false,
            detail: violations_detail(&sessions.violations, sessions.violations_count),
        };
    }
    Check {
        name: "sessions",
        ok: true,
        detail: format!(
            "{} accepted in {}, none twice, none after its session ended, none in plaintext",
            plural(sessions.envelopes_accepted as usize, "envelope"),
            plural(sessions.sessions_count as usize, "session")
        ),
    }
}

fn routing_check(checker: &FerryChecker, names: &[String]) -> Check {
    let mut answered = Vec::new();
    let mut missing = Vec::new();
    for ((from, target), outcome) in &checker.pings {
        let from = &names[*from as usize];
        match outcome {
            PingOutcome::Answered { round_trip_ns } => {
                answered.push(format!("{from} -> {target} in {}ms", round_trip_ns / 1_000_000));
            }
            PingOutcome::Pending => missing.push(format!("{from} -> {target} still unanswered")),
            PingOutcome::GaveUp => missing.push(format!("{from} -> {target} gave up unanswered")),
        }
    }
    if missing.is_empty() {
        Check {
            name: "routing",
            ok: true,
            detail: format!("every routed ping answered: {}", answered.join(", ")),
        }
    } else {
        Check { name: "routing", ok: false, detail: missing.join("; ") }
    }
}

fn convergence_check(
    simulation: &Simulation<FerryNode>,
    expect_convergence: bool,
    converged_ns: Option<u64>,
    heal_ns: u64,
    deadline_ns: u64,
) -> Check {
    let nodes = simulation.nodes_count();
    let keys =
        simulation.process(0).and_then(FerryNode::node).map_or(0, |node| node.store().iter_all().count());
    let equal_now = FerryChecker::converged(simulation);
    match (expect_convergence, converged_ns) {
        (true, Some(at_ns)) => Check {
            name: "converged",
            ok: true,
            detail: format!(
                "{}, {}, equal digests at {} ({} after the liveness phase began)",
                plural(nodes as usize, "node"),
                plural(keys, "key"),
                format_ns(at_ns),
                format_ns(at_ns.saturating_sub(heal_ns))
            ),
        },
        (true, None) => Check {
            name: "converged",
            ok: false,
            detail: format!("not converged by {}:{}", format_ns(deadline_ns), differences(simulation)),
        },
        (false, _) if !equal_now => Check {
            name: "converged",
            ok: true,
            detail: format!(
                "expected to differ, and at {} they do:{}",
                format_ns(simulation.now_ns()),
                differences(simulation)
            ),
        },
        (false, _) => Check {
            name: "converged",
            ok: false,
            detail: format!(
                "{}, {}, equal digests at {}, but expect.converged is false",
                plural(nodes as usize, "node"),
                plural(keys, "key"),
                format_ns(simulation.now_ns())
            ),
        },
    }
}

/// `1 key`, `2 keys`.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// ` b differs from a (key "k" on one side only); c is down` and so on.
fn differences(simulation: &Simulation<FerryNode>) -> String {
    let names = &simulation.config().names;
    let mut detail = String::new();
    let reference = simulation.process(0).and_then(FerryNode::node);
    for node in 0..simulation.nodes_count() {
        let name = &names[node as usize];
        let Some(protocol) = simulation.process(node).and_then(FerryNode::node) else {
            let _ = write!(detail, " {name} is down;");
            continue;
        };
        let Some(reference) = reference else { continue };
        if protocol.digest() == reference.digest() {
            continue;
        }
        let difference = first_difference(reference.store(), protocol.store());
        let _ = write!(detail, " {name} differs from {} ({difference});", names[0]);
    }
    detail.trim_end_matches(';').to_owned()
}

/// An untrusted key for a report line: escaped, cut to a bound.
fn shown(key: &[u8]) -> ferry_protocol::node::Escaped<'_> {
    ferry_protocol::node::Escaped { bytes: key, bytes_max: ferry_protocol::node::EVENT_KEY_BYTES_SHOWN_MAX }
}

fn first_difference(left: &ferry_protocol::store::Store, right: &ferry_protocol::store::Store) -> String {
    let mut left_entries = left.iter_all();
    let mut right_entries = right.iter_all();
    loop {
        match (left_entries.next(), right_entries.next()) {
            (None, None) => return "same keys, different versions".to_owned(),
            (Some((key, _)), None) | (None, Some((key, _))) => {
                return format!("key {} on one side only", shown(key));
            }
            (Some((left_key, left_version)), Some((right_key, right_version))) => {
                if left_key != right_key {
                    let key = left_key.min(right_key);
                    return format!("key {} on one side only", shown(key));
                }
                if left_version != right_version {
                    return format!("key {} has different versions", shown(left_key));
                }
            }
        }
    }
}

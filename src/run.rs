//! Runs one scenario with one seed: builds the simulation, schedules the workload, the
//! scripted faults and the chaos schedule, runs to the liveness phase, heals, and checks the
//! expectations.
//!
//! Phases: (1) faults and workload until the last scripted fault and `chaos.until`; (2) the
//! liveness phase: heal every link and restart every crashed node; (3) run until all digests
//! agree (after the last write), or until `expect.within` after the heal, capped at
//! `duration`.

use std::fmt::Write as _;

use bytes::Bytes;
use ferry_simulator::disk::DiskConfig;
use ferry_simulator::ferry::{Command, FerryChecker, FerryConfig, FerryNode, PingOutcome, format_ns};
use ferry_simulator::random::{self, Stream};
use ferry_simulator::{
    Control, Fault, LinkOverride, LinkParams, SimConfig, Simulation, Stats, Trace, Transport,
};
use rand_chacha::rand_core::RngCore;

use crate::chaos;
use crate::scenario::{self, FaultKind, NodeSelection, Scenario, WorkloadItem};

/// One named expectation and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// `converged`, `no_data_loss` or `invariants`.
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
    /// First time after the heal (and the last write) that every digest agreed.
    pub converged_ns: Option<u64>,
    /// Writes acknowledged during the run.
    pub writes_acked: usize,
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
        scenario::Transport::Datagram => Transport::Datagram,
        scenario::Transport::Stream => Transport::Stream,
    };
    let network = &scenario.network;
    config.link = LinkParams {
        latency_ns_min: network.latency_ns.min_ns,
        latency_ns_max: network.latency_ns.max_ns,
        loss: network.loss,
        duplicate: network.duplicate,
        reorder: network.reorder,
        bandwidth_bytes_per_second: network.bandwidth_bits_per_second.map(|bits| (bits / 8).max(1)),
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

/// Converts a scripted fault to the simulator's.
fn fault(kind: &FaultKind, nodes_count: usize) -> Fault {
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
    }
}

const VALUE_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

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
                let mut rng = random::stream(seed, Stream::WorkloadItem(item_index as u32));
                let writers = puts.nodes.indices(scenario.nodes.len());
                let interval_ns = puts.rate.interval_ns_mean().max(1);
                // Uniform gaps in [0, 2 * mean] keep the mean rate without transcendental
                // functions, whose last bits may differ between platforms.
                let mut at_ns = puts.from_ns + random::uniform(&mut rng, 0, interval_ns);
                while at_ns < puts.until_ns && !writers.is_empty() {
                    let node = writers[random::uniform(&mut rng, 0, writers.len() as u64 - 1) as usize];
                    let key = format!("k{}", random::uniform(&mut rng, 0, puts.keys_count.max(1) - 1));
                    let value: Vec<u8> = (0..puts.value_bytes)
                        .map(|_| VALUE_ALPHABET[(rng.next_u32() as usize) % VALUE_ALPHABET.len()])
                        .collect();
                    simulation.schedule_command(
                        at_ns,
                        node as u32,
                        Command::Put { key: key.into(), value: value.into() },
                    );
                    last_write_ns = last_write_ns.max(at_ns);
                    at_ns += random::uniform(&mut rng, 0, 2 * interval_ns);
                }
            }
        }
    }
    last_write_ns
}

/// Runs `scenario` with `seed`, recording into `trace`.
#[must_use]
pub fn run(scenario: &Scenario, seed: u64, trace: Trace) -> Report {
    let nodes_count = scenario.nodes.len();
    let config = sim_config(scenario, seed);
    let mut ferry_config = FerryConfig::new(seed, scenario.nodes.clone(), config.transport);
    ferry_config.routing = scenario.routing;
    let mut simulation: Simulation<FerryNode> = Simulation::new(config, ferry_config, trace);
    for item in &scenario.faults {
        simulation.schedule_fault(item.at_ns, fault(&item.kind, nodes_count));
    }
    let mut chaos_faults = 0;
    let mut chaos_end_ns = 0;
    if let Some(chaos) = &scenario.chaos {
        let schedule = chaos::draw(chaos, nodes_count as u32, seed);
        chaos_faults = schedule.len();
        chaos_end_ns = chaos.until_ns;
        for (at_ns, fault) in &schedule {
            let text = format!(
                "chaos schedule: at {} {}",
                format_ns(*at_ns),
                chaos::describe(fault, &scenario.nodes)
            );
            simulation.note(&text);
        }
        for (at_ns, fault) in schedule {
            simulation.schedule_fault(at_ns, fault);
        }
    }
    let last_write_ns = schedule_workload(&mut simulation, scenario, seed);

    let duration_ns = scenario.duration_ns;
    let scripted_end_ns = scenario.faults.iter().map(|fault| fault.at_ns).max().unwrap_or(0);
    let heal_ns = scripted_end_ns.max(chaos_end_ns).min(duration_ns);
    let mut checker = FerryChecker::default();
    simulation.run_until(heal_ns, |simulation| {
        checker.observe(simulation);
        Control::Continue
    });

    simulation.note("liveness phase: heal every link, restart every crashed node");
    simulation.heal_and_restart_all();
    checker.observe(&simulation);

    let quiet_ns = heal_ns.max(last_write_ns);
    let deadline_ns = quiet_ns.saturating_add(scenario.expect.within_ns).min(duration_ns);
    let mut converged_ns = None;
    if simulation.now_ns() >= quiet_ns && FerryChecker::converged(&simulation) {
        converged_ns = Some(simulation.now_ns());
    }
    if converged_ns.is_none() || checker.pings_pending() {
        simulation.run_until(deadline_ns, |simulation| {
            checker.observe(simulation);
            if converged_ns.is_none()
                && simulation.now_ns() >= quiet_ns
                && FerryChecker::converged(simulation)
            {
                converged_ns = Some(simulation.now_ns());
            }
            // Stop at convergence, once no routed ping is still being tried.
            if converged_ns.is_some() && !checker.pings_pending() {
                return Control::Stop;
            }
            Control::Continue
        });
    }
    if let Some(at_ns) = converged_ns {
        simulation.note(&format!("converged at {}", format_ns(at_ns)));
    }

    let mut checks = Vec::new();
    if scenario.expect.converged {
        checks.push(convergence_check(&simulation, converged_ns, quiet_ns, deadline_ns));
    }
    if scenario.expect.no_data_loss {
        let problems = checker.data_loss(&simulation);
        let detail = if problems.is_empty() {
            format!("all {} acknowledged writes are on every node", checker.acked.len())
        } else {
            problems.join("; ")
        };
        checks.push(Check { name: "no_data_loss", ok: problems.is_empty(), detail });
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
    if !checker.pings.is_empty() {
        checks.push(routing_check(&checker, &scenario.nodes));
    }
    let trace_error = simulation.trace_mut().finish().err().map(|error| error.to_string());

    Report {
        scenario: scenario.name.clone(),
        seed,
        trace_hash: simulation.trace().hash_hex(),
        checks,
        stats: simulation.stats().clone(),
        virtual_ns: simulation.now_ns(),
        nodes_count,
        heal_ns,
        converged_ns,
        writes_acked: checker.acked.len(),
        chaos_faults,
        trace_error,
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
    converged_ns: Option<u64>,
    quiet_ns: u64,
    deadline_ns: u64,
) -> Check {
    if let Some(at_ns) = converged_ns {
        return Check {
            name: "converged",
            ok: true,
            detail: format!(
                "all {} nodes equal at {} ({} after the heal and the last write)",
                simulation.nodes_count(),
                format_ns(at_ns),
                format_ns(at_ns.saturating_sub(quiet_ns))
            ),
        };
    }
    let names = &simulation.config().names;
    let mut detail = format!("not converged by {}:", format_ns(deadline_ns));
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
    Check { name: "converged", ok: false, detail: detail.trim_end_matches(';').to_owned() }
}

fn first_difference(left: &ferry_protocol::store::Store, right: &ferry_protocol::store::Store) -> String {
    let mut left_entries = left.iter_all();
    let mut right_entries = right.iter_all();
    loop {
        match (left_entries.next(), right_entries.next()) {
            (None, None) => return "same keys, different versions".to_owned(),
            (Some((key, _)), None) | (None, Some((key, _))) => {
                return format!("key {:?} on one side only", String::from_utf8_lossy(key));
            }
            (Some((left_key, left_version)), Some((right_key, right_version))) => {
                if left_key != right_key {
                    let key = left_key.min(right_key);
                    return format!("key {:?} on one side only", String::from_utf8_lossy(key));
                }
                if left_version != right_version {
                    return format!("key {:?} has different versions", String::from_utf8_lossy(left_key));
                }
            }
        }
    }
}

//! Goal: the real ferry protocol converges inside the simulator under loss, duplication,
//! crashes and torn writes, and never loses an acknowledged write. Method: five nodes with
//! a seeded workload, faults, then a liveness phase; the checker compares digests and looks
//! for every acknowledged write on every node.

use bytes::Bytes;
use ferry_simulator::disk::DiskConfig;
use ferry_simulator::ferry::{Command, FerryChecker, FerryConfig, FerryNode};
use ferry_simulator::random::{self, Stream};
use ferry_simulator::{Control, Fault, LinkParams, SimConfig, Simulation, Trace, Transport};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

struct Outcome {
    converged_ns: Option<u64>,
    lost: Vec<String>,
    violations: usize,
    acked: usize,
    hash: String,
}

fn cluster(seed: u64, transport: Transport, loss: f64, duplicate: f64, crashes: bool) -> Outcome {
    let names: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|name| (*name).to_owned()).collect();
    let mut config = SimConfig::new(seed, names.clone());
    config.transport = transport;
    config.link =
        LinkParams { latency_ns_min: MS, latency_ns_max: 20 * MS, loss, duplicate, ..LinkParams::default() };
    config.disk = DiskConfig {
        torn_writes: true,
        fsync_latency_ns_min: MS,
        fsync_latency_ns_max: 10 * MS,
        ..DiskConfig::default()
    };
    config.clock_skew_ns = 100 * MS;
    let ferry = FerryConfig::new(seed, names, transport);
    let mut simulation: Simulation<FerryNode> = Simulation::new(config, ferry, Trace::default());
    let mut rng = random::stream(seed, Stream::Workload);
    for index in 0..400u64 {
        let node = random::uniform(&mut rng, 0, 4) as u32;
        let key = format!("k{}", random::uniform(&mut rng, 0, 29));
        let write = if index % 10 == 9 {
            Command::Delete { key: Bytes::from(key) }
        } else {
            Command::Put { key: Bytes::from(key), value: Bytes::from(format!("v{index}")) }
        };
        simulation.schedule_command(index * 20 * MS, node, write);
    }
    if crashes {
        for (at, node) in [(1_000, 1), (2_500, 3), (4_000, 1), (5_500, 0)] {
            simulation.schedule_fault(at * MS, Fault::Crash { node });
            simulation.schedule_fault((at + 700) * MS, Fault::Restart { node });
        }
        simulation.schedule_fault(3 * S, Fault::Partition { groups: vec![vec![0, 1], vec![2, 3, 4]] });
        simulation.schedule_fault(6 * S, Fault::HealAll);
    }
    let mut checker = FerryChecker::default();
    simulation.run_until(8 * S, |simulation| {
        checker.observe(simulation);
        Control::Continue
    });
    simulation.heal_and_restart_all();
    let mut converged_ns = None;
    simulation.run_until(60 * S, |simulation| {
        checker.observe(simulation);
        if FerryChecker::converged(simulation) {
            converged_ns = Some(simulation.now_ns());
            return Control::Stop;
        }
        Control::Continue
    });
    Outcome {
        converged_ns,
        lost: checker.data_loss(&simulation),
        violations: checker.violations.len(),
        acked: checker.acked.len(),
        hash: simulation.trace().hash_hex(),
    }
}

#[test]
fn converges_with_heavy_loss_and_duplication() {
    for seed in 0..3 {
        let outcome = cluster(seed, Transport::Datagram, 0.2, 0.05, false);
        assert!(outcome.converged_ns.is_some(), "seed {seed} did not converge");
        assert_eq!(outcome.lost, Vec::<String>::new(), "seed {seed}");
        assert_eq!(outcome.violations, 0);
        assert!(outcome.acked > 300, "seed {seed}: only {} writes acknowledged", outcome.acked);
    }
}

#[test]
fn survives_crashes_torn_writes_and_partitions() {
    for seed in 0..3 {
        for transport in [Transport::Datagram, Transport::Stream] {
            let outcome = cluster(seed, transport, 0.05, 0.01, true);
            assert!(outcome.converged_ns.is_some(), "seed {seed} {transport:?} did not converge");
            assert_eq!(outcome.lost, Vec::<String>::new(), "seed {seed} {transport:?}");
            assert_eq!(outcome.violations, 0, "seed {seed} {transport:?}");
        }
    }
}

#[test]
fn replays_exactly() {
    let first = cluster(42, Transport::Datagram, 0.1, 0.05, true);
    let second = cluster(42, Transport::Datagram, 0.1, 0.05, true);
    assert_eq!(first.hash, second.hash);
    assert_eq!(first.converged_ns, second.converged_ns);
}

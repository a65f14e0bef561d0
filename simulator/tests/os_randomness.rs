//! The simulation build's trap for operating-system randomness.
//!
//! A simulated run must take every random draw from its seed. Dependencies make that easy to
//! break silently: quinn-proto draws from `rand::rng()` (seeded from the OS) for its default
//! connection-id generators, reset and token keys, initial destination ids and BBR, and
//! snow's default resolver draws from getrandom for keys. ferry hands each of them seeded
//! values instead (`ferry_quic::QuicEndpoint::seeded`, the protocol's identities and
//! handshake RNG); these tests prove nothing is left over, loudly rather than by comparing
//! traces.
//!
//! The trap build sets `--cfg getrandom_backend="custom"`: getrandom 0.3 (snow's) and 0.4
//! (rand's, so `ThreadRng`'s seeding and every `rand::rng()` draw of quinn-proto) then call a
//! function that this crate defines to panic (`src/os_random_trap.rs`). A stray draw anywhere
//! in a simulated run fails the test with the draw's message. CI builds it on its own
//! (`.ci/run`):
//!
//! ```text
//! RUSTFLAGS='--cfg poly1305_force_soft --cfg getrandom_backend="custom"' \
//!   CARGO_TARGET_DIR=target/trap cargo test -p ferry-simulator --test os_randomness
//! ```
//!
//! In the ordinary build the file compiles to nothing: the real node needs the OS's
//! randomness, and so does any program that links this crate without the flag.
#![cfg(getrandom_backend = "custom")]

use std::panic::{self, AssertUnwindSafe};

use bytes::Bytes;
use ferry_simulator::ferry::{Command, FerryChecker, FerryConfig, FerryLink, FerryNode};
use ferry_simulator::{Control, Fault, LinkParams, SimConfig, Simulation, Trace, Transport};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// The message of a panic payload.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_default()
}

/// Goal: the trap is armed: both ways a dependency reaches the OS panic with its message.
/// Method: `rand::rng()` (quinn-proto's way: it seeds from the OS on a thread's first use)
/// and a direct `getrandom::fill`, each on a fresh thread.
#[test]
fn the_trap_catches_an_os_draw() {
    let rand_draw = std::thread::spawn(|| rand::Rng::next_u64(&mut rand::rng())).join().map(|_| ());
    let getrandom_draw = std::thread::spawn(|| getrandom::fill(&mut [0u8; 16])).join().map(|_| ());
    for outcome in [rand_draw, getrandom_draw] {
        let payload = outcome.expect_err("an OS draw returned in the trap build");
        assert!(message(&*payload).contains("operating-system randomness drawn"), "{}", message(&*payload));
    }
}

#[derive(Clone, Copy, Debug)]
enum Links {
    Datagram,
    Stream,
    Quic,
    /// Datagram by default; a-b and d-e over QUIC, b-c and e-a streams.
    Mixed,
}

/// Five nodes under 5% loss and 2% duplication, 300 writes, two crashes and restarts, and a
/// partition of 13 s (past QUIC's 10 s idle timeout); then healed until converged. Runs on a
/// fresh thread: `ThreadRng` draws from the OS only when a thread first uses it, so a draw on
/// a thread that had already seeded one would go unseen.
fn cluster(seed: u64, links: Links, psk: bool) {
    let outcome = std::thread::spawn(move || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            let names: Vec<String> =
                ["a", "b", "c", "d", "e"].iter().map(|name| (*name).to_owned()).collect();
            let transport = match links {
                Links::Stream => Transport::Stream,
                Links::Datagram | Links::Quic | Links::Mixed => Transport::Datagram,
            };
            let mut config = SimConfig::new(seed, names.clone());
            config.transport = transport;
            config.link = LinkParams {
                latency_ns_min: MS,
                latency_ns_max: 20 * MS,
                loss: 0.05,
                duplicate: 0.02,
                ..LinkParams::default()
            };
            let mut ferry = FerryConfig::new(seed, names, transport);
            ferry.quic = matches!(links, Links::Quic);
            if matches!(links, Links::Mixed) {
                ferry.links = [
                    ((0, 1), FerryLink::Quic),
                    ((1, 2), FerryLink::Stream),
                    ((3, 4), FerryLink::Quic),
                    ((0, 4), FerryLink::Stream),
                ]
                .into_iter()
                .collect();
                config.link_transports = ferry.link_transports();
            }
            ferry.psk = psk.then_some([7; ferry_protocol::session::PSK_BYTES]);
            let mut simulation: Simulation<FerryNode> = Simulation::new(config, ferry, Trace::default());
            for index in 0..300u64 {
                let key = Bytes::from(format!("k{}", index % 23));
                let write = Command::Put { key, value: Bytes::from(format!("v{index}")) };
                simulation.schedule_command(index * 50 * MS, (index % 5) as u32, write);
            }
            for (at, node) in [(2_000, 1), (9_000, 3)] {
                simulation.schedule_fault(at * MS, Fault::Crash { node });
                simulation.schedule_fault((at + 1_500) * MS, Fault::Restart { node });
            }
            simulation.schedule_fault(3 * S, Fault::Partition { groups: vec![vec![0, 1], vec![2, 3, 4]] });
            simulation.schedule_fault(16 * S, Fault::HealAll);
            let mut checker = FerryChecker::default();
            simulation.run_until(20 * S, |simulation| {
                checker.observe(simulation);
                Control::Continue
            });
            let mut converged = false;
            simulation.run_until(80 * S, |simulation| {
                checker.observe(simulation);
                converged = FerryChecker::converged(simulation);
                if converged { Control::Stop } else { Control::Continue }
            });
            assert!(converged, "not converged");
            assert!(checker.acked.len() >= 250, "{} writes acknowledged", checker.acked.len());
            let faults: u64 = simulation.stats().faults_by_kind.values().sum();
            assert!(faults >= 6, "{faults} faults applied");
            assert_eq!(checker.data_loss(&simulation), Vec::<String>::new());
        }))
    })
    .join()
    .expect("the run's thread");
    if let Err(payload) = outcome {
        panic!("{links:?} (cluster secret: {psk}) seed {seed}: {}", message(&*payload));
    }
}

/// Goal: a simulated QUIC run (handshakes, loss, a partition past the idle timeout, crashes
/// and restarts, so fresh endpoints, stateless resets and new connection ids) draws nothing
/// from the OS. Method: seeds 0..6.
#[test]
fn a_quic_run_draws_no_os_randomness() {
    for seed in 0..6 {
        cluster(seed, Links::Quic, false);
    }
}

/// Goal: the same in a run that mixes QUIC, stream and datagram links. Method: seeds 0..4.
#[test]
fn a_mixed_run_draws_no_os_randomness() {
    for seed in 0..4 {
        cluster(seed, Links::Mixed, false);
    }
}

/// Goal: the same holds on datagram and stream links, and for Noise with a cluster secret.
/// Method: seeds 0..3 of each.
#[test]
fn datagram_stream_and_secret_runs_draw_no_os_randomness() {
    for seed in 0..3 {
        cluster(seed, Links::Datagram, false);
        cluster(seed, Links::Stream, false);
        cluster(seed, Links::Datagram, true);
    }
}

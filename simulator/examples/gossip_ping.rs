//! Measures the simulator core on the "gossip-ping" workload with the trace hash on.
//!
//! `cargo run --release -p ferry-simulator --example gossip_ping -- N VIRTUAL_SECONDS [SEED]`
//!
//! Every 10 ms each node pings a uniformly random other node with 64 bytes and answers each
//! ping with a 64-byte pong; latency is uniform 1–20 ms and 5 % of messages are lost.
//! Prints one `RESULT key=value ...` line like the anchor benchmark.

use std::time::Instant;

use ferry_simulator::Trace;
use ferry_simulator::ping;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let parse = |index: usize, default: u64| {
        arguments.get(index).and_then(|text| text.parse().ok()).unwrap_or(default)
    };
    let nodes_count = parse(0, 100) as u32;
    let virtual_seconds = parse(1, 60);
    let seed = parse(2, 42);

    let setup = Instant::now();
    let mut simulation = ping::gossip_ping(nodes_count, seed, Trace::default());
    let setup_seconds = setup.elapsed().as_secs_f64();

    let start = Instant::now();
    simulation.run_until(virtual_seconds * 1_000_000_000, |_| ferry_simulator::Control::Continue);
    let run_seconds = start.elapsed().as_secs_f64();

    let (mut pings_sent, mut pings_received, mut pongs_received) = (0, 0, 0);
    for node in 0..nodes_count {
        if let Some(process) = simulation.process(node) {
            pings_sent += process.pings_sent;
            pings_received += process.pings_received;
            pongs_received += process.pongs_received;
        }
    }
    let delivered = pings_received + pongs_received;
    println!(
        "RESULT sim=ferry n={nodes_count} virtual_s={virtual_seconds} run_s={run_seconds:.3} setup_s={setup_seconds:.3} \
         delivered={delivered} pings_sent={pings_sent} pings_recv={pings_received} pongs_recv={pongs_received} \
         events={} delivered_per_wall_s={:.0} virtual_s_per_wall_s={:.3} vmhwm_kb={} trace_hash={}",
        simulation.stats().events,
        delivered as f64 / run_seconds,
        virtual_seconds as f64 / run_seconds,
        peak_rss_kib(),
        simulation.trace().hash_hex(),
    );
}

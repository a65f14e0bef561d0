//! Measures the simulator running the real ferry protocol: N nodes (default 100), full mesh,
//! every envelope encrypted, 50 random writes per second across the cluster, 2% loss.
//! Prints virtual seconds simulated per wall-clock second, with the trace hash on.
//!
//! `cargo run --release --example ferry_cluster -- [NODES] [VIRTUAL_SECONDS] [TOPOLOGY]`

use std::time::Instant;

use ferry_simulator::Trace;

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let nodes: u32 = arguments.first().and_then(|text| text.parse().ok()).unwrap_or(100);
    let seconds: u64 = arguments.get(1).and_then(|text| text.parse().ok()).unwrap_or(30);
    let topology = arguments.get(2).cloned().unwrap_or_else(|| "full-mesh".to_owned());
    let text = format!(
        "name: ferry-cluster\nduration: {duration}s\nnodes: {nodes}\ntopology: {topology}\n\
         network: {{latency: 1ms..20ms, loss: 0.02}}\n\
         workload:\n  - {{from: 0s, until: {seconds}s, rate: 50/s, keys: 1000, nodes: all}}\n",
        duration = seconds + 60,
    );
    let scenario = match ferry::scenario::parse("ferry-cluster.yaml", &text) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let report = ferry::run::run(&scenario, 42, Trace::default());
    let wall_seconds = start.elapsed().as_secs_f64();
    let virtual_seconds = report.virtual_ns as f64 / 1e9;
    println!(
        "RESULT sim=ferry-protocol nodes={nodes} topology={topology} virtual_s={virtual_seconds:.3} wall_s={wall_seconds:.3} \
         virtual_s_per_wall_s={:.3} events={} delivered={} writes_acked={} passed={} trace_hash={}",
        virtual_seconds / wall_seconds,
        report.stats.events,
        report.stats.delivered,
        report.writes_acked,
        report.passed(),
        report.trace_hash,
    );
}

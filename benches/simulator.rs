//! The simulator core on "gossip-ping" (every 10 ms each node pings a random other node with
//! 64 bytes and answers pings with 64-byte pongs; latency 1–20 ms; 5% loss), with the trace
//! hash on as the CLI runs it. Throughput counts delivered messages.
//!
//! Run: `cargo bench --bench simulator -- --warm-up-time 1 --measurement-time 5`.
//! Longer runs, peak memory and the comparison with madsim and turmoil use the example
//! `cargo run --release -p ferry-simulator --example gossip_ping -- N VIRTUAL_SECONDS`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry_simulator::ping;
use ferry_simulator::{Control, Trace};

fn run(nodes_count: u32, virtual_seconds: u64) -> u64 {
    let mut simulation = ping::gossip_ping(nodes_count, 42, Trace::default());
    simulation.run_until(virtual_seconds * 1_000_000_000, |_| Control::Continue);
    simulation.stats().delivered
}

fn gossip_ping(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("gossip_ping");
    group.sample_size(10);
    for nodes_count in [10, 100, 1000] {
        let delivered = run(nodes_count, 1);
        group.throughput(Throughput::Elements(delivered));
        group.bench_function(format!("n{nodes_count}_1s"), |bencher| {
            bencher.iter(|| black_box(run(nodes_count, 1)));
        });
    }
    group.finish();
}

criterion_group!(benches, gossip_ping);
criterion_main!(benches);

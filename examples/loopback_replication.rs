//! Loopback replication throughput of the real node.
//!
//! Starts two nodes in this process (each with its own event loop, TCP or QUIC on 127.0.0.1
//! and a WAL with real fsyncs in the temp directory), b dialing a. Then:
//! 1. sequential: puts on a, each waiting for its `ok`: one fsync round trip per write;
//! 2. pipelined: N puts on a sent back to back; reports acknowledged (durable) writes per
//!    second, and replicated writes per second: N over the time until b's digest equals a's.
//!
//! Run: `cargo run --release --example loopback_replication [-- N [tcp|quic]]` (N defaults
//! to 20000, the transport to tcp).

use std::error::Error;
use std::time::{Duration, Instant};

use ferry::node::{NodeArguments, Transport, spawn_node};

/// Writes in the sequential phase.
const SEQUENTIAL_COUNT: usize = 200;
/// Bytes of every value.
const VALUE_BYTES: usize = 100;
/// Longest wait for the nodes to connect or converge.
const DEADLINE: Duration = Duration::from_secs(120);

fn main() -> Result<(), Box<dyn Error>> {
    let count: usize = match std::env::args().nth(1) {
        Some(text) => text.parse().map_err(|_| format!("N must be a count, not {text:?}"))?,
        None => 20_000,
    };
    let transport = match std::env::args().nth(2).as_deref() {
        None | Some("tcp") => Transport::Tcp,
        Some("quic") => Transport::Quic,
        Some(other) => return Err(format!("the transport is tcp or quic, not {other:?}").into()),
    };
    println!("transport: {transport}");
    let base = std::env::temp_dir().join(format!("ferry-loopback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    let mut arguments = NodeArguments::new("a", "127.0.0.1:0");
    arguments.transport = transport;
    arguments.data = Some(base.join("a"));
    let a = spawn_node(arguments)?;
    let mut arguments = NodeArguments::new("b", "127.0.0.1:0");
    arguments.transport = transport;
    arguments.data = Some(base.join("b"));
    arguments.connect = vec![a.listen_address().to_string()];
    let b = spawn_node(arguments)?;
    b.request_until("peers", DEADLINE, |answer| answer == "peers: a")?;

    let value = "v".repeat(VALUE_BYTES);
    let started = Instant::now();
    for index in 0..SEQUENTIAL_COUNT {
        expect_ok(a.request(&format!("put sequential{index} {value}")))?;
    }
    let sequential = started.elapsed();
    println!(
        "sequential: {SEQUENTIAL_COUNT} puts, each awaited: {:.0} writes/s ({:.2} ms per durable write)",
        rate(SEQUENTIAL_COUNT, sequential),
        sequential.as_secs_f64() * 1000.0 / SEQUENTIAL_COUNT as f64
    );

    let started = Instant::now();
    for index in 0..count {
        a.send(&format!("put key{index} {value}"));
    }
    for _ in 0..count {
        expect_ok(a.answer())?;
    }
    let acknowledged = started.elapsed();
    let digest = a.request("digest").ok_or("node a stopped")?;
    b.request_until("digest", DEADLINE, |answer| answer == digest)?;
    let replicated = started.elapsed();
    println!(
        "pipelined: {count} puts of {VALUE_BYTES} B: acknowledged in {:.2} s = {:.0} writes/s durable",
        acknowledged.as_secs_f64(),
        rate(count, acknowledged)
    );
    println!(
        "replicated: b's digest matched after {:.2} s = {:.0} writes/s replicated",
        replicated.as_secs_f64(),
        rate(count, replicated)
    );

    let _ = a.shutdown()?;
    let _ = b.shutdown()?;
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

fn expect_ok(answer: Option<String>) -> Result<(), Box<dyn Error>> {
    match answer.as_deref() {
        Some("ok") => Ok(()),
        other => Err(format!("expected ok, got {other:?}").into()),
    }
}

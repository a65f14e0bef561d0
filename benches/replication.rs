//! Throughput of the sans-IO node: local writes made durable on one node, and end-to-end
//! replication between two in-memory nodes over an encrypted session.
//!
//! - `node/local_writes`: 10,000 puts (16-byte keys from 1,000, 16-byte values) on one node,
//!   each appended to its WAL, synced (the sync completes at once) and acknowledged.
//! - `replication/two_nodes`: the same puts on node A, with A and B connected by a perfect
//!   in-memory link (Noise XX handshake done, ChaCha20-Poly1305 on every envelope); the
//!   iteration ends when B holds every entry. Throughput counts writes replicated (A also
//!   seals every 256 writes, and B holds the seals too: PROTOCOL.md 8.13).
//!
//! Run: `cargo bench --bench replication -- --warm-up-time 1 --measurement-time 5`.

use std::collections::VecDeque;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ferry_protocol::node::{Event, LinkKind, Node, NodeConfig, Output};
use ferry_protocol::session::{Identity, Role, SessionConfig};
use ferry_protocol::storage::DiskRequest;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const WRITES_COUNT: u64 = 10_000;
const KEYS_COUNT: u64 = 1_000;

fn node(name: &str, seed: u64) -> Node {
    let identity = Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed));
    let config = NodeConfig::new(SessionConfig::new(name, identity));
    Node::recover(config, &[], Box::new(ChaCha8Rng::seed_from_u64(seed + 100)))
        .expect("an empty log recovers")
}

/// Drains a node: completes syncs at once, returns frames to send and counts acks.
fn drain(node: &mut Node, now_ns: u64, wire: &mut VecDeque<Bytes>, acked: &mut u64) {
    let mut syncs = Vec::new();
    while let Some(output) = node.poll() {
        match output {
            Output::Send { frame, .. } => wire.push_back(frame),
            Output::Disk(DiskRequest::Sync { sync_id }) => syncs.push(sync_id),
            Output::Event(Event::Acked { .. }) => *acked += 1,
            _ => {}
        }
    }
    for sync_id in syncs {
        node.handle_synced(now_ns, sync_id);
        drain(node, now_ns, wire, acked);
    }
}

fn key(index: u64) -> Bytes {
    Bytes::from(format!("key-{:012}", index % KEYS_COUNT))
}

fn local_writes(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("node");
    group.throughput(Throughput::Elements(WRITES_COUNT));
    group.bench_function("local_writes", |bencher| {
        bencher.iter_batched(
            || node("a", 1),
            |mut node| {
                let (mut wire, mut acked) = (VecDeque::new(), 0);
                for index in 0..WRITES_COUNT {
                    node.put(index, key(index), Bytes::from_static(b"0123456789abcdef")).expect("valid put");
                    drain(&mut node, index, &mut wire, &mut acked);
                }
                assert_eq!(acked, WRITES_COUNT);
                black_box(node.digest())
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// Two connected nodes with an established session.
fn pair() -> (Node, Node) {
    let (mut left, mut right) = (node("a", 1), node("b", 2));
    left.link_up(0, 1, LinkKind::Stream, Role::Initiator);
    right.link_up(0, 0, LinkKind::Stream, Role::Responder);
    exchange(&mut left, &mut right, 0);
    assert_eq!(left.connected_peers().count(), 1, "handshake finished");
    (left, right)
}

/// Moves frames both ways until both nodes are quiet.
fn exchange(left: &mut Node, right: &mut Node, now_ns: u64) {
    let (mut to_right, mut to_left) = (VecDeque::new(), VecDeque::new());
    let mut acked = 0;
    loop {
        drain(left, now_ns, &mut to_right, &mut acked);
        drain(right, now_ns, &mut to_left, &mut acked);
        if to_right.is_empty() && to_left.is_empty() {
            return;
        }
        while let Some(frame) = to_right.pop_front() {
            right.handle_stream(now_ns, 0, &frame);
        }
        while let Some(frame) = to_left.pop_front() {
            left.handle_stream(now_ns, 1, &frame);
        }
    }
}

fn two_nodes(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("replication");
    group.throughput(Throughput::Elements(WRITES_COUNT));
    group.sample_size(20);
    group.bench_function("two_nodes_encrypted", |bencher| {
        bencher.iter_batched(
            pair,
            |(mut left, mut right)| {
                for index in 0..WRITES_COUNT {
                    left.put(index, key(index), Bytes::from_static(b"0123456789abcdef")).expect("valid put");
                    if index % 64 == 63 {
                        exchange(&mut left, &mut right, index);
                    }
                }
                exchange(&mut left, &mut right, WRITES_COUNT);
                // Every write and every seal (one per 256 writes, PROTOCOL.md 8.13).
                let entries = left.version_vector().get(left.node_id());
                assert!(
                    entries >= WRITES_COUNT + WRITES_COUNT / 256,
                    "{entries} entries for {WRITES_COUNT} writes"
                );
                assert_eq!(right.version_vector().get(left.node_id()), entries, "every entry replicated");
                assert_eq!(left.digest(), right.digest());
                black_box(right.digest())
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, local_writes, two_nodes);
criterion_main!(benches);

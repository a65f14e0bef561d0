//! Throughput of the storage side: entries merged into `Store` per second, and WAL record
//! encoding and recovery in bytes per second. Then restart time against history: a node's
//! `Node::recover` from the WAL of 10,000 and of 100,000 writes over 1,000 keys, as written
//! (every record) and compacted (PROTOCOL.md 8.11: a base record and one record per key).
//!
//! Workload: 100,000 puts over 10,000 random 16-byte keys with random 16-byte values, from
//! 8 origins with rising timestamps, generated from a fixed ChaCha seed.
//! Run: `cargo bench --bench store -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ferry_protocol::node::{Node, NodeConfig};
use ferry_protocol::session::{Identity, SessionConfig};
use ferry_protocol::wal::{encode_base_record, encode_record, recover};
use ferry_protocol::{NodeId, Operation, Store, Timestamp, VersionVector, WalEntry};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

const KEYS_COUNT: usize = 10_000;
const ENTRIES_COUNT: usize = 100_000;
const ORIGINS_COUNT: u64 = 8;
const VALUE_BYTES: usize = 16;

fn random_bytes(random: &mut ChaCha8Rng, length: usize) -> Bytes {
    let mut bytes = vec![0; length];
    random.fill_bytes(&mut bytes);
    Bytes::from(bytes)
}

fn workload() -> Vec<WalEntry> {
    let mut random = ChaCha8Rng::seed_from_u64(5);
    let keys: Vec<Bytes> = (0..KEYS_COUNT).map(|_| random_bytes(&mut random, 16)).collect();
    let mut sequences = [0u64; ORIGINS_COUNT as usize];
    (0..ENTRIES_COUNT)
        .map(|index| {
            let origin = random.next_u64() % ORIGINS_COUNT;
            let sequence = &mut sequences[origin as usize];
            *sequence += 1;
            // Cannot truncate: fewer than 2^32 keys.
            let key = keys[(random.next_u64() % KEYS_COUNT as u64) as usize].clone();
            WalEntry {
                origin: NodeId(origin),
                sequence: *sequence,
                timestamp: Timestamp::new(1_700_000_000_000 + index as u64, 0),
                operation: Operation::Put { key, value: random_bytes(&mut random, VALUE_BYTES) },
                proof: None,
            }
        })
        .collect()
}

fn store(criterion: &mut Criterion) {
    let entries = workload();
    let mut group = criterion.benchmark_group("store");
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.bench_function("apply", |bencher| {
        bencher.iter_batched(
            Store::new,
            |mut store| {
                for entry in &entries {
                    black_box(store.apply(entry));
                }
                store
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn wal(criterion: &mut Criterion) {
    let entries = workload();
    let mut log = BytesMut::new();
    for entry in &entries {
        encode_record(entry, &mut log);
    }
    let log = log.freeze();
    let mut group = criterion.benchmark_group("wal");
    group.throughput(Throughput::Bytes(log.len() as u64));
    group.bench_function("encode", |bencher| {
        bencher.iter(|| {
            let mut out = BytesMut::with_capacity(log.len());
            for entry in &entries {
                encode_record(entry, &mut out);
            }
            out
        });
    });
    group.bench_function("recover", |bencher| {
        bencher.iter(|| recover(black_box(&log)).expect("the benchmark log is intact"));
    });
    group.finish();
}

/// `history` writes of 16-byte values over 1,000 keys by one origin, and the two WALs that
/// hold them: every record, and compacted to the state.
fn histories(history: usize) -> (Bytes, Bytes) {
    let mut random = ChaCha8Rng::seed_from_u64(history as u64);
    let mut full = BytesMut::new();
    let mut state = Store::new();
    for index in 0..history {
        let entry = WalEntry {
            origin: NodeId(7),
            sequence: index as u64 + 1,
            timestamp: Timestamp::new(1_700_000_000_000 + index as u64, 0),
            operation: Operation::Put {
                key: Bytes::from(format!("key{}", random.next_u64() % RESTART_KEYS_COUNT)),
                value: random_bytes(&mut random, VALUE_BYTES),
            },
            proof: None,
        };
        encode_record(&entry, &mut full);
        state.apply(&entry);
    }
    let mut compacted = BytesMut::new();
    let base: VersionVector = [(NodeId(7), history as u64)].into_iter().collect();
    encode_base_record(&base, &mut compacted);
    for (key, register) in state.iter_all() {
        encode_record(&register.to_entry(key.clone()), &mut compacted);
    }
    (full.freeze(), compacted.freeze())
}

/// Keys of the restart benchmark's histories.
const RESTART_KEYS_COUNT: u64 = 1_000;

fn restart(criterion: &mut Criterion) {
    let identity = Identity::generate(&mut ChaCha8Rng::seed_from_u64(1));
    let config = NodeConfig::new(SessionConfig::new("bench".to_owned(), identity));
    let mut group = criterion.benchmark_group("restart");
    for history in [10_000, 100_000] {
        let (full, compacted) = histories(history);
        for (name, wal) in [("every-record", &full), ("compacted", &compacted)] {
            group.bench_function(format!("{name}/{history}-writes/{}-bytes", wal.len()), |bencher| {
                bencher.iter(|| {
                    let rng = Box::new(ChaCha8Rng::seed_from_u64(2));
                    Node::recover(config.clone(), black_box(wal), rng).expect("the benchmark wal is intact")
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, store, wal, restart);
criterion_main!(benches);

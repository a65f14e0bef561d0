//! Tests of the WAL record format and recovery.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::entry::{NodeId, Operation, Timestamp};
use crate::seal::{PathProof, Proof};
use crate::storage::{DiskRequest, MemoryDisk};

fn put(origin: u64, sequence: u64, physical_ms: u64, key: &[u8], value: &[u8]) -> WalEntry {
    WalEntry {
        origin: NodeId(origin),
        sequence,
        timestamp: Timestamp::new(physical_ms, 0),
        operation: Operation::Put { key: Bytes::copy_from_slice(key), value: Bytes::copy_from_slice(value) },
        proof: None,
    }
}

fn delete(origin: u64, sequence: u64, physical_ms: u64, key: &[u8]) -> WalEntry {
    WalEntry {
        origin: NodeId(origin),
        sequence,
        timestamp: Timestamp::new(physical_ms, 0),
        operation: Operation::Delete { key: Bytes::copy_from_slice(key) },
        proof: None,
    }
}

/// Five entries of different shapes and sizes (one-byte and two-byte length prefixes,
/// maximal varints, an empty key).
fn sample_entries() -> Vec<WalEntry> {
    vec![
        put(1, 1, 10, b"a", b"x"),
        delete(2, 1, 11, b"bb"),
        put(1, 2, 12, b"key", &[b'v'; 300]),
        WalEntry {
            origin: NodeId(u64::MAX),
            sequence: u64::MAX,
            timestamp: Timestamp(u64::MAX),
            operation: Operation::Put { key: Bytes::from_static(b"z"), value: Bytes::new() },
            proof: None,
        },
        delete(3, 7, 13, b""),
    ]
}

/// The log of `entries` and the offsets where each record starts, plus its total length.
fn log_of(entries: &[WalEntry]) -> (Vec<u8>, Vec<usize>) {
    let mut log = BytesMut::new();
    let mut boundaries = vec![0];
    for entry in entries {
        encode_record(entry, &mut log);
        boundaries.push(log.len());
    }
    (log.to_vec(), boundaries)
}

/// A record with a correct header around an arbitrary body.
fn raw_record(body: &[u8]) -> Vec<u8> {
    let length_bytes = u32::try_from(body.len()).expect("test bodies are small");
    let mut record = length_bytes.to_le_bytes().to_vec();
    record.extend_from_slice(&record_checksum(length_bytes, body).to_le_bytes());
    record.extend_from_slice(body);
    record
}

/// The damage recovery reports for `flipped`, a copy of the intact `record` with a bit
/// changed in its checksum or body (a changed length bit can cause other kinds).
fn checksum_damage(record: &[u8], flipped: &[u8]) -> DamageKind {
    let header = |bytes: &[u8], at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    DamageKind::ChecksumMismatch {
        stored: header(flipped, 4),
        computed: record_checksum(header(record, 0), &flipped[WAL_RECORD_HEADER_BYTES..]),
    }
}

#[test]
fn known_record_bytes() {
    // Goal: pin the format for PROTOCOL.md. The bytes were computed by an independent
    // Python implementation (bitwise CRC-32C, polynomial 0x82f63b78). The entry has no
    // proof: its last byte is the proof tag 00.
    let mut out = BytesMut::new();
    let entry = put(1, 1, 10, b"a", b"x");
    encode_record(&entry, &mut out);
    let hex: String = out.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(hex, "0b00000034ca3d6a0101808028000161017800");
    assert_eq!(out.len(), record_len(&entry));
}

#[test]
fn round_trip() {
    let entries = sample_entries();
    let (log, boundaries) = log_of(&entries);
    assert_eq!(log.len(), entries.iter().map(record_len).sum::<usize>());
    let recovery = recover(&log).expect("an intact log recovers");
    assert_eq!(
        recovery,
        Recovery { base: VersionVector::new(), entries, valid_bytes: log.len() as u64, tail: None }
    );
    assert_eq!(recovery.repair(), None);
    assert_eq!(boundaries.last(), Some(&log.len()));
}

#[test]
fn empty_log_recovers_nothing() {
    assert_eq!(
        recover(&[]),
        Ok(Recovery { base: VersionVector::new(), entries: Vec::new(), valid_bytes: 0, tail: None })
    );
}

#[test]
fn largest_entry_fits_one_record() {
    // Goal: WAL_ENTRY_BYTES_MAX is exact and such an entry survives a round trip.
    let entry = WalEntry {
        origin: NodeId(u64::MAX),
        sequence: u64::MAX,
        timestamp: Timestamp(u64::MAX),
        operation: Operation::Put {
            key: Bytes::from(vec![1; KEY_BYTES_MAX]),
            value: Bytes::from(vec![2; VALUE_BYTES_MAX]),
        },
        // The longest proof: ten-byte varints, the last leaf of 256 (eight hashes).
        proof: Some(Proof::Path(Arc::new(PathProof {
            first: u64::MAX - 255,
            last: u64::MAX,
            signer: [3; 32],
            signature: [4; 64],
            path: vec![[5; 32]; 8],
        }))),
    };
    assert_eq!(entry_encoded_len(&entry), WAL_ENTRY_BYTES_MAX);
    let (log, _) = log_of(std::slice::from_ref(&entry));
    assert_eq!(recover(&log).expect("intact").entries, [entry]);
}

#[test]
#[should_panic(expected = "wal entry value of 32769 bytes exceeds 32768")]
fn encoding_an_oversized_value_is_a_bug() {
    encode_record(&put(1, 1, 1, b"k", &[0; VALUE_BYTES_MAX + 1]), &mut BytesMut::new());
}

#[test]
#[should_panic(expected = "wal entry key of 1025 bytes exceeds 1024")]
fn encoding_an_oversized_key_is_a_bug() {
    encode_record(&delete(1, 1, 1, &[0; KEY_BYTES_MAX + 1]), &mut BytesMut::new());
}

#[test]
#[should_panic(expected = "wal entry sequence must start at 1")]
fn encoding_sequence_zero_is_a_bug() {
    encode_record(&delete(1, 0, 1, b"k"), &mut BytesMut::new());
}

#[test]
fn every_truncation_recovers_the_longest_valid_prefix() {
    // Goal: a crash can cut the log anywhere; recovery keeps exactly the complete records.
    // Method: recover every prefix length and compute the expected result independently.
    let entries = sample_entries();
    let (log, boundaries) = log_of(&entries);
    for cut in 0..=log.len() {
        let complete =
            boundaries.iter().rposition(|boundary| *boundary <= cut).expect("boundary 0 is <= cut");
        let start = boundaries[complete];
        let present = cut - start;
        let tail = (present > 0).then(|| TailDamage {
            offset: start as u64,
            kind: if present < WAL_RECORD_HEADER_BYTES {
                DamageKind::HeaderTruncated { available_bytes: present as u64 }
            } else {
                let length = boundaries[complete + 1] - start - WAL_RECORD_HEADER_BYTES;
                DamageKind::BodyTruncated {
                    length_bytes: u32::try_from(length).expect("small record"),
                    available_bytes: (present - WAL_RECORD_HEADER_BYTES) as u64,
                }
            },
        });
        let expected = Recovery {
            base: VersionVector::new(),
            entries: entries[..complete].to_vec(),
            valid_bytes: start as u64,
            tail,
        };
        assert_eq!(recover(&log[..cut]), Ok(expected), "cut at {cut}");
    }
}

#[test]
fn flipped_bit_in_the_last_record_is_tail_damage() {
    // Goal: any single damaged bit of the last record cuts just that record. Method: flip
    // each bit in turn; for checksum and body bits the exact checksums are predicted.
    let entries = sample_entries();
    let (log, boundaries) = log_of(&entries);
    let start = boundaries[entries.len() - 1];
    for bit in start * 8..log.len() * 8 {
        let mut damaged = log.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let recovery = recover(&damaged).unwrap_or_else(|error| panic!("bit {bit}: {error}"));
        assert_eq!(recovery.entries, entries[..entries.len() - 1], "bit {bit}");
        assert_eq!(recovery.valid_bytes, start as u64, "bit {bit}");
        let tail = recovery.tail.as_ref().expect("damage is reported");
        assert_eq!(tail.offset, start as u64);
        if bit / 8 >= start + 4 {
            assert_eq!(tail.kind, checksum_damage(&log[start..], &damaged[start..]), "bit {bit}");
        }
        assert_eq!(recovery.repair(), Some(DiskRequest::Truncate { length_bytes: start as u64 }));
    }
}

#[test]
fn flipped_bit_in_a_middle_record_is_corrupt_middle() {
    // Goal: damage followed by valid records is reported with the damaged record's offset,
    // wherever the bit is, length field included (then only the search finds the next one).
    let entries = sample_entries();
    let (log, boundaries) = log_of(&entries);
    let (start, next) = (boundaries[2], boundaries[3]);
    for bit in start * 8..next * 8 {
        let mut damaged = log.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let Err(WalError::CorruptMiddle { offset, kind, next_valid_offset }) = recover(&damaged) else {
            panic!("bit {bit}: middle damage not reported");
        };
        assert_eq!((offset, next_valid_offset), (start as u64, next as u64), "bit {bit}");
        if bit / 8 >= start + 4 {
            assert_eq!(kind, checksum_damage(&log[start..next], &damaged[start..next]), "bit {bit}");
        }
    }
}

#[test]
fn exact_middle_error() {
    let entries = sample_entries();
    let (mut log, boundaries) = log_of(&entries);
    // The last byte of record 1's body is its key's last byte, 'b'.
    log[boundaries[2] - 1] ^= 0x01;
    let error = recover(&log).expect_err("damage before valid records");
    let kind = checksum_damage(
        &log_of(&entries).0[boundaries[1]..boundaries[2]],
        &log[boundaries[1]..boundaries[2]],
    );
    assert_eq!(
        error,
        WalError::CorruptMiddle {
            offset: boundaries[1] as u64,
            kind: kind.clone(),
            next_valid_offset: boundaries[2] as u64
        }
    );
    let DamageKind::ChecksumMismatch { stored, computed } = kind else { unreachable!("built above") };
    assert_eq!(
        error.to_string(),
        format!(
            "wal record at offset {} is corrupt (checksum mismatch: stored {stored:#010x}, computed \
             {computed:#010x}) but a valid record follows at offset {}",
            boundaries[1], boundaries[2]
        )
    );
}

#[test]
fn checksummed_but_undecodable_record() {
    // Goal: a body that passes its checksum but is not one entry is damage like any other:
    // tail when last, middle when a valid record follows.
    let zero_sequence = raw_record(&[0x01, 0x00, 0x00, 0x01, 0x00]);
    let undecodable = DamageKind::Undecodable { error: DecodeError::ZeroSequence };
    assert_eq!(
        recover(&zero_sequence),
        Ok(Recovery {
            base: VersionVector::new(),
            entries: Vec::new(),
            valid_bytes: 0,
            tail: Some(TailDamage { offset: 0, kind: undecodable.clone() })
        })
    );

    let (valid, _) = log_of(&sample_entries()[..1]);
    let mut log = zero_sequence.clone();
    log.extend_from_slice(&valid);
    assert_eq!(
        recover(&log),
        Err(WalError::CorruptMiddle { offset: 0, kind: undecodable, next_valid_offset: 13 })
    );

    // One valid entry followed by a stray byte, all under one checksum.
    let mut body = BytesMut::new();
    encode_entry(&sample_entries()[0], &mut body);
    body.extend_from_slice(&[0]);
    let trailing = raw_record(&body);
    let tail = recover(&trailing).expect("nothing follows").tail.expect("damaged");
    assert_eq!(
        tail.kind,
        DamageKind::Undecodable { error: DecodeError::TrailingRecordBytes { record: "entry", count: 1 } }
    );
    assert_eq!(
        tail.kind.to_string(),
        "record body does not decode: 1 trailing bytes after the WAL entry record"
    );
}

#[test]
fn garbage_length_is_not_believed() {
    // Goal: a length over the bound is damage, not an allocation or a wait for more bytes.
    let mut log = vec![0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
    let too_large = DamageKind::LengthTooLarge { length_bytes: 0x7fff_ffff };
    assert_eq!(
        recover(&log).expect("nothing follows").tail,
        Some(TailDamage { offset: 0, kind: too_large.clone() })
    );
    assert_eq!(too_large.to_string(), "record length 2147483647 exceeds maximum 65536");
    // With bit 31 set the field announces a base record, whose own bound applies.
    let base = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    let base_too_large = DamageKind::BaseLengthTooLarge { length_bytes: 0x7fff_ffff };
    assert_eq!(
        recover(&base).expect("nothing follows").tail,
        Some(TailDamage { offset: 0, kind: base_too_large.clone() })
    );
    assert_eq!(base_too_large.to_string(), "base record length 2147483647 exceeds maximum 131072");
    let (valid, _) = log_of(&sample_entries()[..1]);
    log.extend_from_slice(&valid);
    assert_eq!(
        recover(&log),
        Err(WalError::CorruptMiddle { offset: 0, kind: too_large, next_valid_offset: 8 })
    );
}

#[test]
fn length_bound_is_inclusive() {
    let at_bound = WAL_RECORD_BYTES_MAX.to_le_bytes();
    let mut log = at_bound.to_vec();
    log.extend_from_slice(&[0; 5]);
    let kind = DamageKind::BodyTruncated { length_bytes: WAL_RECORD_BYTES_MAX, available_bytes: 1 };
    assert_eq!(
        recover(&log).expect("nothing follows").tail,
        Some(TailDamage { offset: 0, kind: kind.clone() })
    );
    assert_eq!(kind.to_string(), "log ends 1 bytes into a 65536-byte record body");

    let over_bound = (WAL_RECORD_BYTES_MAX + 1).to_le_bytes();
    log[..4].copy_from_slice(&over_bound);
    let kind = DamageKind::LengthTooLarge { length_bytes: WAL_RECORD_BYTES_MAX + 1 };
    assert_eq!(recover(&log).expect("nothing follows").tail, Some(TailDamage { offset: 0, kind }));
}

#[test]
fn zeroed_tail_is_tail_damage() {
    // Goal: a preallocated or zero-filled tail, the commonest torn write, is cut. The
    // checksum of four zero bytes, 0x48674bc7, was computed independently in Python.
    let entries = sample_entries();
    let (mut log, _) = log_of(&entries);
    let valid_bytes = log.len() as u64;
    log.extend_from_slice(&[0; 4096]);
    let kind = DamageKind::ChecksumMismatch { stored: 0, computed: 0x4867_4bc7 };
    assert_eq!(
        recover(&log),
        Ok(Recovery {
            base: VersionVector::new(),
            entries,
            valid_bytes,
            tail: Some(TailDamage { offset: valid_bytes, kind })
        })
    );
}

#[test]
fn header_truncation_message() {
    let kind = DamageKind::HeaderTruncated { available_bytes: 3 };
    assert_eq!(kind.to_string(), "log ends 3 bytes into the 8-byte record header");
}

#[test]
fn crash_recover_repair_append_on_memory_disk() {
    // Goal: the full cycle a node runs, under every crash point of the unsynced writes:
    // synced records always survive, a prefix of the unsynced ones may, a torn tail is cut
    // and later appends recover cleanly. Method: crash a copy of the disk at every byte.
    let entries = sample_entries();
    let record = |entry: &WalEntry| {
        let mut bytes = BytesMut::new();
        encode_record(entry, &mut bytes);
        bytes.freeze()
    };
    let mut disk = MemoryDisk::new();
    disk.submit(DiskRequest::Append { bytes: record(&entries[0]) });
    disk.submit(DiskRequest::Append { bytes: record(&entries[1]) });
    disk.submit(DiskRequest::Sync { sync_id: 1 });
    let mut batch = BytesMut::new();
    for entry in &entries[2..4] {
        encode_record(entry, &mut batch);
    }
    disk.submit(DiskRequest::Append { bytes: batch.freeze() });
    let unsynced_bytes = disk.unsynced_bytes();

    let mut recovered_counts = Vec::new();
    for keep in 0..=unsynced_bytes {
        let mut crashed = disk.clone();
        crashed.crash(keep);
        let recovery = recover(crashed.contents()).expect("crashes tear only the tail");
        assert!(recovery.entries.len() >= 2, "keep {keep}: synced records lost");
        assert_eq!(recovery.entries, entries[..recovery.entries.len()], "keep {keep}");
        recovered_counts.push(recovery.entries.len());

        if let Some(truncate) = recovery.repair() {
            assert_eq!(crashed.submit(truncate), None);
            crashed.submit(DiskRequest::Sync { sync_id: 2 });
        }
        crashed.submit(DiskRequest::Append { bytes: record(&entries[4]) });
        crashed.submit(DiskRequest::Sync { sync_id: 3 });
        let after = recover(crashed.contents()).expect("repaired log is clean");
        assert_eq!(after.tail, None, "keep {keep}");
        assert_eq!(after.entries.last(), Some(&entries[4]), "keep {keep}");
        assert_eq!(after.entries.len(), recovery.entries.len() + 1, "keep {keep}");
    }
    assert_eq!(recovered_counts.first(), Some(&2));
    assert_eq!(recovered_counts.last(), Some(&4));
    assert!(recovered_counts.is_sorted());
}

fn entry_strategy() -> impl Strategy<Value = WalEntry> {
    (
        any::<u64>(),
        1..=u64::MAX,
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..16),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(origin, sequence, timestamp, key, value)| {
            let key = Bytes::from(key);
            let operation = match value {
                Some(value) => Operation::Put { key, value: Bytes::from(value) },
                None => Operation::Delete { key },
            };
            WalEntry {
                origin: NodeId(origin),
                sequence,
                timestamp: Timestamp(timestamp),
                operation,
                proof: None,
            }
        })
}

/// Whatever `recover` says about `log` must be self-consistent: the kept prefix re-encodes
/// to exactly the bytes kept, and a middle error points at a later valid record.
fn check_consistent(log: &[u8]) -> Result<(), TestCaseError> {
    match recover(log) {
        Ok(recovery) => {
            let valid_bytes = usize::try_from(recovery.valid_bytes).expect("bounded by the log");
            prop_assert!(valid_bytes <= log.len());
            prop_assert_eq!(
                recovery.tail.as_ref().map(|tail| tail.offset),
                (valid_bytes < log.len()).then_some(recovery.valid_bytes)
            );
            prop_assert_eq!(log_of(&recovery.entries).0, &log[..valid_bytes]);
        }
        Err(WalError::CorruptMiddle { offset, next_valid_offset, .. }) => {
            prop_assert!(offset < next_valid_offset);
            prop_assert!(next_valid_offset + WAL_RECORD_HEADER_BYTES as u64 <= log.len() as u64);
            let next = usize::try_from(next_valid_offset).expect("bounded by the log");
            prop_assert!(read_record(log, next).is_ok());
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(log in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Goal: hostile or random files yield a consistent result, never a panic.
        check_consistent(&log)?;
    }

    #[test]
    fn mangled_logs_never_panic(
        entries in proptest::collection::vec(entry_strategy(), 0..6),
        overwrites in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<proptest::sample::Index>(),
    ) {
        // Goal: random bytes rarely get past the first header, so also mangle real logs:
        // overwrite random bytes, then truncate at a random point.
        let (mut log, _) = log_of(&entries);
        if !log.is_empty() {
            for (position, byte) in overwrites {
                let index = position.index(log.len());
                log[index] = byte;
            }
            log.truncate(cut.index(log.len() + 1));
        }
        check_consistent(&log)?;
    }

    #[test]
    fn random_garbage_after_a_valid_log_is_a_tail(
        entries in proptest::collection::vec(entry_strategy(), 0..6),
        garbage in proptest::collection::vec(any::<u8>(), 1..256),
    ) {
        let (mut log, _) = log_of(&entries);
        let valid_bytes = log.len() as u64;
        log.extend_from_slice(&garbage);
        let recovery = recover(&log).expect("random bytes contain no valid record");
        prop_assert_eq!(recovery.entries, entries);
        prop_assert_eq!(recovery.valid_bytes, valid_bytes);
        prop_assert_eq!(recovery.tail.map(|tail| tail.offset), Some(valid_bytes));
    }

    #[test]
    fn a_flipped_bit_is_found_in_its_record(
        entries in proptest::collection::vec(entry_strategy(), 1..6),
        bit_choice in any::<proptest::sample::Index>(),
    ) {
        // Goal: wherever one bit flips, recovery blames exactly the record holding it.
        let (mut log, boundaries) = log_of(&entries);
        let bit = bit_choice.index(log.len() * 8);
        log[bit / 8] ^= 1 << (bit % 8);
        let record = boundaries.iter().rposition(|start| *start <= bit / 8).expect("boundary 0");
        let start = boundaries[record] as u64;
        match recover(&log) {
            Ok(recovery) => {
                prop_assert_eq!(record, entries.len() - 1, "only the last record is a tail");
                prop_assert_eq!(&recovery.entries[..], &entries[..record]);
                prop_assert_eq!(recovery.tail.map(|tail| tail.offset), Some(start));
            }
            Err(WalError::CorruptMiddle { offset, next_valid_offset, .. }) => {
                prop_assert_eq!(offset, start);
                prop_assert_eq!(next_valid_offset, boundaries[record + 1] as u64);
            }
        }
    }
}

#[test]
fn base_record_bytes_and_round_trip() {
    // Goal: the base record's exact bytes (flag in bit 31 of the length, checksum over the
    // flagged length and the vector), and a compacted log reads back as base plus entries.
    let base: VersionVector = [(NodeId(1), 2), (NodeId(2), 1)].into_iter().collect();
    let mut out = BytesMut::new();
    encode_base_record(&base, &mut out);
    assert_eq!(&out[..4], &[5, 0, 0, 0x80], "body of 5 bytes, bit 31 set");
    assert_eq!(&out[8..], &[2, 1, 2, 2, 1]);
    let checksum = crc32c::crc32c_append(crc32c::crc32c(&[5, 0, 0, 0x80]), &[2, 1, 2, 2, 1]);
    assert_eq!(&out[4..8], &checksum.to_le_bytes());
    let (entries, _) = log_of(&sample_entries()[..3]);
    out.extend_from_slice(&entries);
    let recovery = recover(&out).expect("a compacted log recovers");
    assert_eq!(recovery.base, base);
    assert_eq!(recovery.entries, sample_entries()[..3].to_vec());
    assert_eq!(recovery.tail, None);
}

#[test]
fn base_record_after_the_start_is_damage() {
    // Goal: only a log's first record may be a base record; one later is never believed.
    let (mut log, _) = log_of(&sample_entries()[..1]);
    let valid_bytes = log.len() as u64;
    let mut base = BytesMut::new();
    encode_base_record(&[(NodeId(1), 9)].into_iter().collect(), &mut base);
    log.extend_from_slice(&base);
    assert_eq!(
        recover(&log).map(|recovery| recovery.tail),
        Ok(Some(TailDamage { offset: valid_bytes, kind: DamageKind::BaseNotFirst }))
    );
    // A damaged base record is refused like any damaged length.
    let mut flipped = base.to_vec();
    flipped[8] ^= 1;
    assert!(matches!(
        recover(&flipped),
        Ok(Recovery { tail: Some(TailDamage { kind: DamageKind::ChecksumMismatch { .. }, .. }), .. })
    ));
}

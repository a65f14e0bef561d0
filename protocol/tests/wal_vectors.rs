//! Goal: the WAL record, recovery and store digest examples in PROTOCOL.md section 8 are true
//! of this implementation, so the document cannot drift from the code.
//!
//! Method: parse PROTOCOL.md, find every fenced block with the info string `wal-vector` or
//! `digest-vector`, and check each one:
//! - a `record` is recovered as exactly one entry (compared with `entry`, the entry's `Debug`
//!   text) and `encode_record` of that entry gives the same bytes back;
//! - a `log` is recovered and the outcome compared with `entries`, `valid_bytes` and `tail`
//!   (the damage's `Display` text, or `none`) and, for a compacted log, `base` (the base
//!   record's vector, `Debug` text), or with `error` (the `WalError` text);
//! - the `register` encodings of a digest vector are hashed with BLAKE2s-256 after the
//!   domain, each compared with the `hash` that follows it, the lane sums computed here are
//!   compared with `digest`, and so is `Store::digest` after applying the decoded entries.
//!
//! All mismatches are collected and reported together; the counts of vectors found are
//! asserted so that a broken parser cannot pass by finding nothing.

use blake2::{Blake2s256, Digest as _};
use bytes::{Bytes, BytesMut};
use ferry_protocol::message::{decode_entry, encode_entry_fields};
use ferry_protocol::store::{DIGEST_DOMAIN, Store};
use ferry_protocol::wal::{self, Recovery};

const PROTOCOL: &str = include_str!("../../PROTOCOL.md");

/// PROTOCOL.md holds at least this many `wal-vector` blocks.
const WAL_VECTORS_MIN: usize = 12;
/// PROTOCOL.md holds at least this many `digest-vector` blocks.
const DIGEST_VECTORS_MIN: usize = 1;

/// Keys whose value is hex bytes, where `#` starts a comment.
const HEX_KEYS: [&str; 3] = ["record", "log", "register"];
/// Keys a `wal-vector` block may use.
const WAL_KEYS: [&str; 9] =
    ["name", "record", "entry", "log", "entries", "valid_bytes", "tail", "base", "error"];
/// Keys a `digest-vector` block may use; `register` and `hash` repeat, in pairs.
const DIGEST_KEYS: [&str; 4] = ["name", "register", "hash", "digest"];

#[path = "support/fenced.rs"]
mod fenced;
use fenced::{Block, blocks, parse_hex};

/// The `key: value` fields of a block in order; a line starting with a space continues the
/// previous value. Keys may repeat (a digest vector lists several registers).
fn fields(block: &Block<'_>, keys: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in &block.lines {
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = if line.starts_with(' ') || line.starts_with('\t') {
            let (key, _) =
                fields.last().ok_or_else(|| format!("continuation line before any key: {line:?}"))?;
            (key.clone(), line.trim())
        } else {
            let (key, value) =
                line.split_once(':').ok_or_else(|| format!("line without `key:`: {line:?}"))?;
            if !keys.contains(&key) {
                return Err(format!("unknown key {key:?}"));
            }
            fields.push((key.to_owned(), String::new()));
            (key.to_owned(), value.trim())
        };
        // Hex fields may carry a `#` comment on each line; text fields are taken verbatim.
        let value = if HEX_KEYS.contains(&key.as_str()) {
            value.split('#').next().unwrap_or_default().trim()
        } else {
            value
        };
        let (_, entry) = fields.last_mut().expect("a field was pushed for this key");
        if !entry.is_empty() && !value.is_empty() {
            entry.push(' ');
        }
        entry.push_str(value);
    }
    Ok(fields)
}

/// The single value of `key`, if present; an error if it is given twice.
fn single<'a>(fields: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, String> {
    let mut values = fields.iter().filter(|(name, _)| name == key).map(|(_, value)| value.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(format!("key {key:?} given twice"));
    }
    Ok(first)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Checks one `wal-vector`; returns its name.
fn check_wal_vector(block: &Block<'_>) -> Result<String, String> {
    let fields = fields(block, &WAL_KEYS)?;
    let name = single(&fields, "name")?.ok_or("no name")?.to_owned();
    match (single(&fields, "record")?, single(&fields, "log")?) {
        (Some(record), None) => {
            let record = parse_hex(record)?;
            let recovery = wal::recover(&record).map_err(|error| format!("record not recovered: {error}"))?;
            let Recovery { entries, valid_bytes, tail, .. } = recovery;
            if tail.is_some() || valid_bytes != record.len() as u64 {
                return Err(format!("record recovered with damage {tail:?} after {valid_bytes} bytes"));
            }
            let [entry] = &entries[..] else {
                return Err(format!("record holds {} entries, expected 1", entries.len()));
            };
            let expected = single(&fields, "entry")?.ok_or("a record vector needs `entry`")?;
            let actual = format!("{entry:?}");
            if actual != expected {
                return Err(format!("entry\n  expected {expected}\n  actual   {actual}"));
            }
            let mut encoded = BytesMut::new();
            wal::encode_record(entry, &mut encoded);
            if encoded[..] != record[..] {
                return Err(format!("re-encoded as {}, not {}", hex(&encoded), hex(&record)));
            }
        }
        (None, Some(log)) => {
            let log = parse_hex(log)?;
            let actual = match wal::recover(&log) {
                Ok(Recovery { base, entries, valid_bytes, tail }) => {
                    let tail = tail.map_or_else(|| "none".to_owned(), |tail| tail.kind.to_string());
                    let mut outcome = vec![
                        ("entries", entries.len().to_string()),
                        ("valid_bytes", valid_bytes.to_string()),
                        ("tail", tail),
                    ];
                    // A compacted log must say its base; any other may say it is empty.
                    if !base.is_empty() || single(&fields, "base")?.is_some() {
                        outcome.push(("base", format!("{base:?}")));
                    }
                    outcome
                }
                Err(error) => vec![("error", error.to_string())],
            };
            for (key, actual) in &actual {
                let expected = single(&fields, key)?.ok_or_else(|| format!("no `{key}` given"))?;
                if expected != actual {
                    return Err(format!("{key}\n  expected {expected}\n  actual   {actual}"));
                }
            }
            let checked: Vec<&str> = actual.iter().map(|(key, _)| *key).collect();
            for (key, _) in &fields {
                if !["name", "log"].contains(&key.as_str()) && !checked.contains(&key.as_str()) {
                    return Err(format!("`{key}` does not apply to this outcome"));
                }
            }
        }
        _ => return Err("a wal vector needs exactly one of `record` and `log`".to_owned()),
    }
    Ok(name)
}

/// Checks one `digest-vector`; returns its name.
fn check_digest_vector(block: &Block<'_>) -> Result<String, String> {
    let fields = fields(block, &DIGEST_KEYS)?;
    let name = single(&fields, "name")?.ok_or("no name")?.to_owned();
    let mut store = Store::new();
    let mut lanes = [0u64; 4];
    let mut registers_count = 0;
    let mut pending: Option<[u8; 32]> = None;
    for (key, value) in &fields {
        match key.as_str() {
            "register" => {
                if pending.is_some() {
                    return Err("a `register` without its `hash`".to_owned());
                }
                // An entry's fields without its proof, which the digest leaves out (8.9):
                // decoded with the tag of no proof appended.
                let encoding = parse_hex(value)?;
                let unproven = [&encoding[..], &[0]].concat();
                let entry = decode_entry(Bytes::from(unproven))
                    .map_err(|error| format!("register {}: {error}", hex(&encoding)))?;
                let mut reencoded = BytesMut::new();
                encode_entry_fields(&entry, &mut reencoded);
                if reencoded[..] != encoding[..] {
                    return Err(format!("register {} is not canonical", hex(&encoding)));
                }
                store.apply(&entry);
                registers_count += 1;
                let mut input = DIGEST_DOMAIN.to_vec();
                input.extend_from_slice(&encoding);
                pending = Some(Blake2s256::digest(&input).into());
            }
            "hash" => {
                let hash = pending.take().ok_or("a `hash` without its `register`")?;
                if hex(&hash) != *value {
                    return Err(format!("hash\n  expected {value}\n  actual   {}", hex(&hash)));
                }
                for (lane, chunk) in lanes.iter_mut().zip(hash.chunks_exact(8)) {
                    let bytes: [u8; 8] = chunk.try_into().expect("chunks of 8 bytes");
                    *lane = lane.wrapping_add(u64::from_le_bytes(bytes));
                }
            }
            _ => {}
        }
    }
    if pending.is_some() {
        return Err("the last `register` has no `hash`".to_owned());
    }
    if store.iter_all().count() != registers_count {
        return Err("registers must have distinct keys".to_owned());
    }
    let expected = single(&fields, "digest")?.ok_or("no `digest`")?;
    let summed: Vec<u8> = lanes.iter().flat_map(|lane| lane.to_le_bytes()).collect();
    if hex(&summed) != expected {
        return Err(format!("lane sum\n  expected {expected}\n  actual   {}", hex(&summed)));
    }
    if store.digest().to_string() != expected {
        return Err(format!("Store::digest\n  expected {expected}\n  actual   {}", store.digest()));
    }
    Ok(name)
}

fn check_all(info: &str, minimum: usize, check: fn(&Block<'_>) -> Result<String, String>) {
    let found = blocks(PROTOCOL, info);
    let mut failures = Vec::new();
    let mut names = Vec::new();
    for block in &found {
        match check(block) {
            Ok(name) if names.contains(&name) => {
                failures.push(format!("line {}: name {name:?} used twice", block.line_number));
            }
            Ok(name) => names.push(name),
            Err(error) => failures.push(format!("line {}: {error}", block.line_number)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of PROTOCOL.md's {info} blocks fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(found.len() >= minimum, "found {} {info} blocks, expected at least {minimum}", found.len());
}

#[test]
fn wal_vectors_hold() {
    check_all("wal-vector", WAL_VECTORS_MIN, check_wal_vector);
}

#[test]
fn digest_vectors_hold() {
    check_all("digest-vector", DIGEST_VECTORS_MIN, check_digest_vector);
}

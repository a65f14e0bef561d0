//! Inspecting a finished run: each node's final state as JSON.
//!
//! [`dump_state`] reads a [`Simulation`] of ferry nodes after it ran and describes every
//! node: whether it is up, its state digest, its version vectors, and every register of its
//! store, live or tombstone, with the version that won it. Nothing here runs or changes the
//! simulation, and all JSON is built with `serde_json`. Keys and values are untrusted bytes:
//! they appear as UTF-8 strings when valid (`key`, `value`) and in hex otherwise
//! (`key_hex`, `value_hex`), so any byte string round-trips.

use std::collections::BTreeMap;

use ferry_protocol::store::Register;
use ferry_protocol::{NodeId, VersionVector};
use ferry_simulator::Simulation;
use ferry_simulator::ferry::FerryNode;
use serde_json::{Map, Value, json};

/// The final state of every node of `simulation`, as one JSON object:
///
/// ```text
/// { "virtual_ns": 2000000000, "digests_agree": true,
///   "nodes": [ { "name": "a", "up": true, "digest": "<64 hex digits>",
///                "version_vector": { "a": 2, "b": 1 }, "durable_vector": { ... },
///                "keys": [ { "key": "k", "value": "v", "timestamp_ms": 100,
///                            "timestamp_logical": 0, "origin": "a", "sequence": 1 } ],
///                "tombstones": [ { "key": "gone", "timestamp_ms": ..., ... } ] },
///              { "name": "c", "up": false, "down": "crashed" } ] }
/// ```
///
/// Nodes come in index order and registers in key order. A node that is down shows only
/// why (`crashed`, or `start failed` when its disk could not be read): its memory is gone.
/// Origins are shown by node name, or as 16 hex digits if no node of the run has that id.
#[must_use]
pub fn dump_state(simulation: &Simulation<FerryNode>) -> Value {
    let names = &simulation.config().names;
    let origins: BTreeMap<NodeId, &str> =
        names.iter().map(|name| (NodeId::from_name(name), name.as_str())).collect();
    let origin_name = |id: NodeId| origins.get(&id).map_or_else(|| id.to_string(), |name| (*name).to_owned());
    let mut nodes = Vec::with_capacity(names.len());
    let mut digests = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let process = simulation.process(index as u32);
        let Some(node) = process.and_then(FerryNode::node) else {
            let down = if process.is_none() { "crashed" } else { "start failed" };
            nodes.push(json!({ "name": name, "up": false, "down": down }));
            digests.push(None);
            continue;
        };
        let digest = node.digest();
        digests.push(Some(digest));
        let mut keys = Vec::new();
        let mut tombstones = Vec::new();
        for (key, register) in node.store().iter_all() {
            let mut object = Map::new();
            insert_bytes(&mut object, "key", key);
            if let Some(value) = &register.value {
                insert_bytes(&mut object, "value", value);
            }
            insert_version(&mut object, register, &origin_name);
            if register.is_tombstone() {
                tombstones.push(Value::Object(object));
            } else {
                keys.push(Value::Object(object));
            }
        }
        nodes.push(json!({
            "name": name,
            "up": true,
            "digest": digest.to_string(),
            "version_vector": vector(node.version_vector(), &origin_name),
            "durable_vector": vector(node.durable_vector(), &origin_name),
            "keys": keys,
            "tombstones": tombstones,
        }));
    }
    let digests_agree = digests.windows(2).all(|pair| pair[0].is_some() && pair[0] == pair[1])
        && digests.first().is_some_and(Option::is_some);
    json!({
        "virtual_ns": simulation.now_ns(),
        "digests_agree": digests_agree,
        "nodes": nodes,
    })
}

/// `field` as a UTF-8 string when `bytes` are valid UTF-8, else `field_hex` in lowercase hex.
fn insert_bytes(object: &mut Map<String, Value>, field: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => object.insert(field.to_owned(), Value::from(text)),
        Err(_) => object.insert(format!("{field}_hex"), Value::from(hex(bytes))),
    };
}

fn insert_version(
    object: &mut Map<String, Value>,
    register: &Register,
    origin_name: &impl Fn(NodeId) -> String,
) {
    object.insert("timestamp_ms".to_owned(), Value::from(register.timestamp.physical_ms()));
    object.insert("timestamp_logical".to_owned(), Value::from(register.timestamp.logical()));
    object.insert("origin".to_owned(), Value::from(origin_name(register.origin)));
    object.insert("sequence".to_owned(), Value::from(register.sequence));
}

fn vector(vector: &VersionVector, origin_name: &impl Fn(NodeId) -> String) -> Value {
    Value::Object(
        vector.iter().map(|(origin, position)| (origin_name(origin), Value::from(position))).collect(),
    )
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_simulator::ferry::{Command, FerryConfig};
    use ferry_simulator::{Control, Fault, SimConfig, Trace, Transport};

    use super::*;

    const MS: u64 = 1_000_000;

    fn put(key: &[u8], value: &[u8]) -> Command {
        Command::Put { key: Bytes::copy_from_slice(key), value: Bytes::copy_from_slice(value) }
    }

    /// Two nodes, three writes and a delete, replicated; `crash_b` crashes b at the end.
    fn tiny_run(crash_b: bool) -> Simulation<FerryNode> {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let config = SimConfig::new(3, names.clone());
        let ferry = FerryConfig::new(3, names, Transport::Datagram);
        let mut simulation: Simulation<FerryNode> = Simulation::new(config, ferry, Trace::default());
        simulation.schedule_command(100 * MS, 0, put(b"greeting", b"hello"));
        simulation.schedule_command(120 * MS, 1, put(b"\xffbin", b"\x00\x01"));
        simulation.schedule_command(140 * MS, 0, put(b"gone", b"soon"));
        simulation.schedule_command(160 * MS, 1, Command::Delete { key: Bytes::from_static(b"gone") });
        if crash_b {
            simulation.schedule_fault(1_400 * MS, Fault::Crash { node: 1 });
        }
        simulation.run_until(1_500 * MS, |_| Control::Continue);
        simulation
    }

    #[test]
    fn dump_state_describes_every_register_exactly() {
        // Goal: the dump is exact and complete: vectors by name, live keys with their
        // winning version, tombstones apart, invalid UTF-8 in hex. Method: a tiny converged
        // run, compared whole.
        let simulation = tiny_run(false);
        let digest = simulation.process(0).and_then(FerryNode::node).map(|node| node.digest().to_string());
        let state = json!({
            "name": "a",
            "up": true,
            "digest": digest,
            // Each node's two writes, then its seal over both, a second after the first.
            "version_vector": { "a": 3, "b": 3 },
            "durable_vector": { "a": 3, "b": 3 },
            "keys": [
                { "key": "greeting", "value": "hello", "timestamp_ms": 100, "timestamp_logical": 0,
                  "origin": "a", "sequence": 1 },
                { "key_hex": "ff62696e", "value": "\u{0}\u{1}", "timestamp_ms": 120,
                  "timestamp_logical": 0, "origin": "b", "sequence": 1 },
            ],
            "tombstones": [
                { "key": "gone", "timestamp_ms": 160, "timestamp_logical": 0, "origin": "b", "sequence": 2 },
            ],
        });
        let mut state_b = state.clone();
        state_b["name"] = json!("b");
        assert_eq!(
            dump_state(&simulation),
            json!({ "virtual_ns": 1_500 * MS, "digests_agree": true, "nodes": [state, state_b] })
        );
        assert_eq!(digest.map(|digest| digest.len()), Some(64));
    }

    #[test]
    fn a_crashed_node_shows_only_that_it_is_down() {
        let dump = dump_state(&tiny_run(true));
        assert_eq!(dump["nodes"][1], json!({ "name": "b", "up": false, "down": "crashed" }));
        assert_eq!(dump["nodes"][0]["up"], json!(true));
        assert_eq!(dump["digests_agree"], json!(false));
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
    }
}

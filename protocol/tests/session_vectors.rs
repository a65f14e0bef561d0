//! Goal: the worked handshake examples in PROTOCOL.md (the `session-vector` blocks: 7.7
//! without a cluster secret, 6.10 with one) are exactly what ferry sends, so the document
//! cannot drift from the code.
//! Method: read each example's inputs from PROTOCOL.md, regenerate every derived value twice,
//! once with ferry's `Connection` and once independently with snow (fixed ephemeral keys, its
//! own cipher), and compare all three.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use ferry_protocol::session::{Identity, Role, SessionConfig, VersionRange, hex};
use ferry_protocol::{Connection, Message, NodeId};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::Digest as _;

/// The keys of the block, in order; the first `INPUTS` are inputs.
const KEYS: [&str; 42] = [
    "pattern",
    "prologue",
    "initiator_identity_seed",
    "responder_identity_seed",
    "initiator_rng_seed",
    "responder_rng_seed",
    "initiator_name",
    "initiator_node_id",
    "initiator_versions",
    "initiator_capabilities",
    "responder_name",
    "responder_node_id",
    "responder_versions",
    "responder_capabilities",
    "psk",
    "ping_msg_id",
    "ping_token",
    "initiator_static_secret",
    "responder_static_secret",
    "initiator_static_public",
    "responder_static_public",
    "initiator_handshake_seed",
    "initiator_ephemeral_secret",
    "initiator_ephemeral_public",
    "responder_handshake_seed",
    "responder_ephemeral_secret",
    "responder_ephemeral_public",
    "hello_payload",
    "hello",
    "hello_ack_payload",
    "hello_ack",
    "hello_finish_payload",
    "hello_finish",
    "handshake_hash",
    "initiator_to_responder_key",
    "responder_to_initiator_key",
    "ping_payload",
    "ping_aead_nonce",
    "ping",
    "ping_header",
    "ping_ciphertext",
    "ping_tag",
];
const INPUTS: usize = 17;
/// Hex digits per line when a value is wrapped.
const HEX_LINE_DIGITS: usize = 64;

/// The text inside each ```session-vector fence of PROTOCOL.md.
fn vector_blocks() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md");
    let text = std::fs::read_to_string(path).expect("PROTOCOL.md is readable");
    let blocks: Vec<String> = text
        .split("```session-vector\n")
        .skip(1)
        .map(|block| block.split("```").next().expect("closing fence").to_string())
        .collect();
    assert_eq!(blocks.len(), 2, "two session-vector blocks: without and with a cluster secret");
    blocks
}

/// The block's cluster secret, if it has one.
fn psk(values: &BTreeMap<String, String>) -> Option<[u8; 32]> {
    values.contains_key("psk").then(|| bytes32(values, "psk"))
}

/// `name value` lines; a line starting with a space continues the previous value; `#` starts
/// a comment line.
fn parse(block: &str) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in block.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') {
            let key = last.as_ref().expect("continuation follows a value");
            if let Some(value) = values.get_mut(key) {
                value.push_str(line.trim());
            }
            continue;
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        values.insert(key.to_string(), value.trim().to_string());
        last = Some(key.to_string());
    }
    values
}

fn render(values: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (index, key) in KEYS.iter().enumerate() {
        if index == 0 {
            out.push_str("# inputs\n");
        }
        if index == INPUTS {
            out.push_str("# derived\n");
        }
        let Some(value) = values.get(*key) else { continue };
        let is_long_hex = value.len() > HEX_LINE_DIGITS && value.bytes().all(|byte| byte.is_ascii_hexdigit());
        if is_long_hex {
            let _ = writeln!(out, "{key}");
            for chunk in value.as_bytes().chunks(HEX_LINE_DIGITS) {
                let _ = writeln!(out, "    {}", std::str::from_utf8(chunk).expect("ascii"));
            }
        } else {
            let _ = writeln!(out, "{key:<28}{value}");
        }
    }
    out
}

fn bytes32(values: &BTreeMap<String, String>, key: &str) -> [u8; 32] {
    from_hex(&values[key]).try_into().unwrap_or_else(|_| panic!("{key} holds 32 bytes"))
}

fn number<T: std::str::FromStr>(values: &BTreeMap<String, String>, key: &str) -> T {
    values[key].parse().unwrap_or_else(|_| panic!("{key} is a number"))
}

fn versions(values: &BTreeMap<String, String>, key: &str) -> VersionRange {
    let (min, max) = values[key].split_once("..=").expect("min..=max");
    VersionRange::new(min.parse().expect("min"), max.parse().expect("max"))
}

fn config(values: &BTreeMap<String, String>, side: &str) -> SessionConfig {
    let identity = Identity::from_seed(bytes32(values, &format!("{side}_identity_seed")));
    let mut config = SessionConfig::new(values[&format!("{side}_name")].clone(), identity);
    config.node_id = NodeId(number(values, &format!("{side}_node_id")));
    config.versions = versions(values, &format!("{side}_versions"));
    config.capabilities = number(values, &format!("{side}_capabilities"));
    config.psk = psk(values);
    config
}

/// The first 32 bytes of a ChaCha20 stream seeded with `seed`.
fn first_32(seed: [u8; 32]) -> [u8; 32] {
    let mut out = [0; 32];
    ChaCha20Rng::from_seed(seed).fill_bytes(&mut out);
    out
}

/// The four envelopes ferry's state machine produces from the inputs.
fn ferry_transcript(values: &BTreeMap<String, String>) -> [Bytes; 4] {
    let mut initiator_rng = ChaCha20Rng::from_seed(bytes32(values, "initiator_rng_seed"));
    let mut responder_rng = ChaCha20Rng::from_seed(bytes32(values, "responder_rng_seed"));
    let mut initiator =
        Connection::new(Arc::new(config(values, "initiator")), Role::Initiator, 0, &mut initiator_rng)
            .expect("valid");
    let mut responder =
        Connection::new(Arc::new(config(values, "responder")), Role::Responder, 0, &mut responder_rng)
            .expect("valid");
    let hello = initiator.poll_transmit().expect("hello");
    assert_eq!(responder.handle_frame(0, hello.clone(), &mut responder_rng), Ok(None));
    let hello_ack = responder.poll_transmit().expect("hello ack");
    assert_eq!(initiator.handle_frame(0, hello_ack.clone(), &mut initiator_rng), Ok(None));
    let hello_finish = initiator.poll_transmit().expect("hello finish");
    assert_eq!(responder.handle_frame(0, hello_finish.clone(), &mut responder_rng), Ok(None));
    if psk(values).is_some() {
        // The initiator uses the session once the responder's first envelope confirms it
        // (PROTOCOL.md 6.10); that envelope is not part of the vector.
        assert!(!initiator.is_established());
        let confirm = responder.send(0, &Message::Ping { token: 0 }).expect("responder established");
        let confirmed = initiator.handle_frame(0, confirm, &mut initiator_rng);
        assert_eq!(confirmed, Ok(Some((0, Message::Ping { token: 0 }))));
    }
    assert!(initiator.is_established() && responder.is_established());
    let ping = Message::Ping { token: number(values, "ping_token") };
    let msg_id = number(values, "ping_msg_id");
    let ping_bytes = initiator.send(msg_id, &ping).expect("established");
    assert_eq!(responder.handle_frame(0, ping_bytes.clone(), &mut responder_rng), Ok(Some((msg_id, ping))));
    [hello, hello_ack, hello_finish, ping_bytes]
}

/// Every derived value, computed with snow and the layouts of PROTOCOL.md only.
fn independent(values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut derived = BTreeMap::new();
    let mut put = |key: &str, bytes: &[u8]| derived.insert(key.to_string(), hex(bytes));
    // The static key derives from the identity seed as Ed25519 derives its scalar (8.13):
    // the first 32 bytes of SHA-512(seed).
    let static_secret = |side: &str| -> [u8; 32] {
        let hash = sha2::Sha512::digest(bytes32(values, &format!("{side}_identity_seed")));
        hash[..32].try_into().expect("32 bytes")
    };
    let initiator_secret = static_secret("initiator");
    let responder_secret = static_secret("responder");
    put("initiator_static_secret", &initiator_secret);
    put("responder_static_secret", &responder_secret);
    put("initiator_static_public", &support::public_key(&initiator_secret));
    put("responder_static_public", &support::public_key(&responder_secret));
    let mut ephemeral = BTreeMap::new();
    for side in ["initiator", "responder"] {
        let handshake_seed = first_32(bytes32(values, &format!("{side}_rng_seed")));
        let secret = first_32(handshake_seed);
        put(&format!("{side}_handshake_seed"), &handshake_seed);
        put(&format!("{side}_ephemeral_secret"), &secret);
        put(&format!("{side}_ephemeral_public"), &support::public_key(&secret));
        ephemeral.insert(side, secret);
    }
    let prologue = from_hex(&values["prologue"]);
    let psk = psk(values);
    let pattern = if psk.is_some() { support::PATTERN_PSK } else { support::PATTERN };
    assert_eq!(values["pattern"], pattern);
    assert_eq!(prologue, support::PROLOGUE);
    let build = |secret: &[u8; 32], ephemeral: &[u8; 32], initiator: bool| {
        let mut builder = support::builder_for(pattern, [0; 32])
            .local_private_key(secret)
            .and_then(|builder| builder.prologue(&prologue))
            .map(|builder| builder.fixed_ephemeral_key_for_testing_only(ephemeral));
        if let Some(psk) = &psk {
            builder = builder.and_then(|builder| builder.psk(3, psk));
        }
        let built = if initiator {
            builder.and_then(snow::Builder::build_initiator)
        } else {
            builder.and_then(snow::Builder::build_responder)
        };
        built.expect("a valid handshake state")
    };
    let mut initiator = build(&initiator_secret, &ephemeral["initiator"], true);
    let mut responder = build(&responder_secret, &ephemeral["responder"], false);

    let identity_payload = |side: &str, version: u16| {
        let name = &values[&format!("{side}_name")];
        let mut out = vec![u8::try_from(name.len()).expect("short name")];
        out.extend_from_slice(name.as_bytes());
        ferry_protocol::varint::encode(number(values, &format!("{side}_node_id")), &mut out);
        let range = versions(values, &format!("{side}_versions"));
        ferry_protocol::varint::encode(range.min.into(), &mut out);
        ferry_protocol::varint::encode(range.max.into(), &mut out);
        ferry_protocol::varint::encode(version.into(), &mut out);
        ferry_protocol::varint::encode(number(values, &format!("{side}_capabilities")), &mut out);
        out
    };
    let initiator_range = versions(values, "initiator_versions");
    let version = initiator_range.highest_common(versions(values, "responder_versions")).expect("overlap");
    let mut hello_payload = Vec::new();
    ferry_protocol::varint::encode(initiator_range.min.into(), &mut hello_payload);
    ferry_protocol::varint::encode(initiator_range.max.into(), &mut hello_payload);
    let steps: [(&str, u8, Vec<u8>); 3] = [
        ("hello", 1, hello_payload),
        ("hello_ack", 2, identity_payload("responder", version)),
        ("hello_finish", 3, identity_payload("initiator", version)),
    ];
    let mut buffer = vec![0; 1024];
    let mut read = vec![0; 1024];
    for (step, (name, code, payload)) in steps.into_iter().enumerate() {
        let (writer, reader) =
            if step % 2 == 0 { (&mut initiator, &mut responder) } else { (&mut responder, &mut initiator) };
        let length = writer.write_message(&payload, &mut buffer).expect("write");
        let read_length = reader.read_message(&buffer[..length], &mut read).expect("read");
        assert_eq!(read[..read_length], payload);
        put(&format!("{name}_payload"), &payload);
        put(name, &[&support::handshake_header(code, psk.is_some())[..], &buffer[..length]].concat());
    }
    assert_eq!(initiator.get_handshake_hash(), responder.get_handshake_hash());
    put("handshake_hash", initiator.get_handshake_hash());
    let (initiator_to_responder, responder_to_initiator) = initiator.dangerously_get_raw_split();
    assert_eq!(responder.dangerously_get_raw_split(), (initiator_to_responder, responder_to_initiator));
    put("initiator_to_responder_key", &initiator_to_responder);
    put("responder_to_initiator_key", &responder_to_initiator);

    let mut ping_payload = Vec::new();
    ferry_protocol::varint::encode(number(values, "ping_token"), &mut ping_payload);
    let ping = support::seal(&initiator_to_responder, 4, number(values, "ping_msg_id"), 0, &ping_payload);
    let mut aead_nonce = [0; 12];
    aead_nonce[4..].copy_from_slice(&0u64.to_le_bytes());
    put("ping_payload", &ping_payload);
    put("ping_aead_nonce", &aead_nonce);
    put("ping", &ping);
    put("ping_header", &ping[..17]);
    put("ping_ciphertext", &ping[17..ping.len() - 16]);
    put("ping_tag", &ping[ping.len() - 16..]);
    derived
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&hex[index..index + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn protocol_md_session_vectors_match_ferry_and_snow() {
    let blocks = vector_blocks();
    assert_eq!(
        blocks.iter().map(|block| parse(block).contains_key("psk")).collect::<Vec<_>>(),
        [true, false],
        "in document order: 6.10's block has a cluster secret, 7.7's none"
    );
    for block in blocks {
        check_block(&block);
    }
}

fn check_block(block: &str) {
    let documented = parse(block);
    // Every input but `psk` is required.
    let mut expected: BTreeMap<String, String> = KEYS[..INPUTS]
        .iter()
        .filter(|key| **key != "psk" || documented.contains_key("psk"))
        .map(|key| (key.to_string(), documented[*key].clone()))
        .collect();
    expected.extend(independent(&documented));

    let ferry = ferry_transcript(&documented);
    for (key, bytes) in ["hello", "hello_ack", "hello_finish", "ping"].iter().zip(&ferry) {
        assert_eq!(hex(bytes), expected[*key], "ferry's {key} differs from snow's");
    }
    assert_eq!(
        hex(&Identity::from_seed(bytes32(&documented, "initiator_identity_seed")).public),
        expected["initiator_static_public"]
    );

    let rendered = render(&expected);
    assert!(
        *block == rendered,
        "PROTOCOL.md's session-vector block is out of date; the regenerated block is:\n{rendered}"
    );
}

//! Goal: the worked example of a seal in PROTOCOL.md 8.13 (the `seal-vector` block) is
//! exactly what ferry derives, hashes and signs, so the document cannot drift from the code.
//! Method: read the inputs (an identity seed, three writes' fields and the seal entry's
//! header) from PROTOCOL.md, derive every other value twice, once through ferry (`Identity`,
//! `SealTree`, the entry codec) and once from the document's definitions with SHA-256,
//! SHA-512, X25519 and Ed25519 directly, and compare both with the block, which is rendered
//! again and must match byte for byte.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Signer, SigningKey};
use ferry_protocol::message::{decode_entry, encode_entry};
use ferry_protocol::seal::{SEAL_SIGNING_CONTEXT, SealTree};
use ferry_protocol::session::{Identity, hex};
use ferry_protocol::{Operation, WalEntry};
use sha2::Digest as _;

/// The keys of the block, in order; the first `INPUTS` are inputs.
const KEYS: [&str; 17] = [
    "identity_seed",
    "write_1",
    "write_2",
    "write_3",
    "seal_header",
    "ed25519_public",
    "x25519_secret",
    "x25519_public",
    "leaf_1",
    "leaf_2",
    "leaf_3",
    "node_1_2",
    "root",
    "signing_message",
    "signature",
    "seal_entry",
    "write_2_relayed",
];
const INPUTS: usize = 5;
/// Hex digits per line when a value is wrapped.
const HEX_LINE_DIGITS: usize = 64;

fn block() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md");
    let text = std::fs::read_to_string(path).expect("PROTOCOL.md is readable");
    let blocks: Vec<&str> = text.split("```seal-vector\n").skip(1).collect();
    assert_eq!(blocks.len(), 1, "PROTOCOL.md has one seal-vector block");
    blocks[0].split("```").next().expect("a closing fence").to_owned()
}

/// `key value` lines; a value may continue on indented lines.
fn parse(block: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut last = String::new();
    for line in block.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(continued) = line.strip_prefix("    ") {
            values.entry(last.clone()).or_insert_with(String::new).push_str(continued.trim());
            continue;
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        last = key.to_owned();
        values.insert(key.to_owned(), value.trim().to_owned());
    }
    values
}

fn render(values: &BTreeMap<String, String>) -> String {
    let mut out = String::from("# inputs\n");
    for (index, key) in KEYS.iter().enumerate() {
        if index == INPUTS {
            out.push_str("# derived\n");
        }
        let value = &values[*key];
        let is_hex = value.chars().all(|character| character.is_ascii_hexdigit());
        if is_hex && value.len() > HEX_LINE_DIGITS {
            out.push_str(key);
            out.push('\n');
            for chunk in value.as_bytes().chunks(HEX_LINE_DIGITS) {
                out.push_str("    ");
                out.push_str(std::str::from_utf8(chunk).expect("hex is ASCII"));
                out.push('\n');
            }
        } else {
            out.push_str(&format!("{key:<27} {value}\n"));
        }
    }
    out
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex"))
        .collect()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

#[test]
fn protocol_md_seal_vector_matches_ferry_and_the_definitions() {
    let documented = parse(&block());
    let seed: [u8; 32] = from_hex(&documented["identity_seed"]).try_into().expect("a 32-byte seed");
    let writes: Vec<Vec<u8>> =
        ["write_1", "write_2", "write_3"].iter().map(|key| from_hex(&documented[*key])).collect();
    let seal_header = from_hex(&documented["seal_header"]);

    // Straight from the definitions of 8.13.
    let x25519_secret: [u8; 32] = sha2::Sha512::digest(seed)[..32].try_into().expect("32 bytes");
    let x25519_public = MontgomeryPoint::mul_base_clamped(x25519_secret).to_bytes();
    let signing = SigningKey::from_bytes(&seed);
    let ed25519_public = signing.verifying_key().to_bytes();
    assert_eq!(signing.verifying_key().to_montgomery().to_bytes(), x25519_public, "(1 + y) / (1 - y)");
    let leaves: Vec<[u8; 32]> = writes.iter().map(|fields| sha256(&[&[0x00], fields])).collect();
    let node_1_2 = sha256(&[&[0x01], &leaves[0], &leaves[1]]);
    let root = sha256(&[&[0x01], &node_1_2, &leaves[2]]);
    let mut message = SEAL_SIGNING_CONTEXT.to_vec();
    for value in [1, 1, 3] {
        message.extend_from_slice(&varint(value));
    }
    message.extend_from_slice(&root);
    let signature: Signature = signing.sign(&message);
    signing.verifying_key().verify_strict(&message, &signature).expect("it verifies");
    let seal_entry =
        [&seal_header[..], &[0x02, 1, 3], &root, &ed25519_public, &signature.to_bytes(), &[0x00]].concat();
    let relayed =
        [&writes[1][..], &[0x01, 1, 3], &ed25519_public, &signature.to_bytes(), &leaves[0], &leaves[2]]
            .concat();

    // Through ferry: the writes decoded, sealed, the seal entry and the proof encoded.
    let identity = Identity::from_seed(seed);
    assert_eq!((identity.secret, identity.public), (x25519_secret, x25519_public));
    assert_eq!(identity.signing_public(), ed25519_public);
    let entries: Vec<WalEntry> = writes
        .iter()
        .map(|fields| decode_entry(Bytes::from([&fields[..], &[0x00]].concat())).expect("the fields decode"))
        .collect();
    let tree = Arc::new(SealTree::create(&identity, &entries).expect("three consecutive writes"));
    assert_eq!(tree.seal.root, root);
    assert_eq!(tree.seal.message(), message);
    assert_eq!(tree.seal.signature, signature.to_bytes());
    let header =
        decode_entry(Bytes::from([&seal_header[..], &[0x01, 0x00, 0x00]].concat())).expect("a header");
    let seal = WalEntry::new(
        header.origin,
        header.sequence,
        header.timestamp,
        Operation::Seal(Arc::new(tree.seal.clone())),
    );
    let mut encoded = BytesMut::new();
    encode_entry(&seal, &mut encoded);
    assert_eq!(encoded[..], seal_entry[..]);
    let mut write_2 = entries[1].clone();
    write_2.proof = tree.proof(2);
    let mut encoded = BytesMut::new();
    encode_entry(&write_2, &mut encoded);
    assert_eq!(encoded[..], relayed[..]);
    let decoded = decode_entry(Bytes::from(relayed.clone())).expect("the relayed write decodes");
    assert_eq!(decoded, write_2);
    decoded.proof.as_ref().expect("a proof").proves(&decoded).expect("and it proves the write");

    let mut expected: BTreeMap<String, String> =
        KEYS[..INPUTS].iter().map(|key| (key.to_string(), documented[*key].clone())).collect();
    let mut put = |key: &str, value: String| expected.insert(key.to_owned(), value);
    put("ed25519_public", hex(&ed25519_public));
    put("x25519_secret", hex(&x25519_secret));
    put("x25519_public", hex(&x25519_public));
    put("leaf_1", hex(&leaves[0]));
    put("leaf_2", hex(&leaves[1]));
    put("leaf_3", hex(&leaves[2]));
    put("node_1_2", hex(&node_1_2));
    put("root", hex(&root));
    put("signing_message", hex(&message));
    put("signature", hex(&signature.to_bytes()));
    put("seal_entry", hex(&seal_entry));
    put("write_2_relayed", hex(&relayed));
    let rendered = render(&expected);
    assert!(
        block() == rendered,
        "PROTOCOL.md's seal-vector block is out of date; the regenerated block is:\n{rendered}"
    );
}

//! Goal: the worked example of signed entries in PROTOCOL.md 8.13 (the `signature-vector`
//! block) is exactly what ferry derives and signs, so the document cannot drift from the code.
//! Method: read the inputs (an identity seed and an entry's fields) from PROTOCOL.md, derive
//! every other value twice, once through ferry (`Identity`, `WalEntry::sign`, the entry
//! codec) and once from the document's definitions with SHA-512, X25519 and Ed25519 directly,
//! and compare both with the block, which is rendered again and must match byte for byte.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Signer, SigningKey};
use ferry_protocol::entry::{SIGNATURE_BYTES, SIGNER_BYTES};
use ferry_protocol::message::{ENTRY_SIGNING_CONTEXT, decode_entry, encode_entry};
use ferry_protocol::session::{Identity, hex};
use sha2::Digest as _;

/// The keys of the block, in order; the first `INPUTS` are inputs.
const KEYS: [&str; 8] = [
    "identity_seed",
    "entry_fields",
    "ed25519_public",
    "x25519_secret",
    "x25519_public",
    "signing_message",
    "signature",
    "entry_bytes",
];
const INPUTS: usize = 2;
/// Hex digits per line when a value is wrapped.
const HEX_LINE_DIGITS: usize = 64;

fn block() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md");
    let text = std::fs::read_to_string(path).expect("PROTOCOL.md is readable");
    let blocks: Vec<&str> = text.split("```signature-vector\n").skip(1).collect();
    assert_eq!(blocks.len(), 1, "PROTOCOL.md has one signature-vector block");
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

#[test]
fn protocol_md_signature_vector_matches_ferry_and_the_definitions() {
    let documented = parse(&block());
    let seed: [u8; 32] = from_hex(&documented["identity_seed"]).try_into().expect("a 32-byte seed");
    let fields = from_hex(&documented["entry_fields"]);

    // Straight from the definitions of 8.13.
    let x25519_secret: [u8; 32] = sha2::Sha512::digest(seed)[..32].try_into().expect("32 bytes");
    let x25519_public = MontgomeryPoint::mul_base_clamped(x25519_secret).to_bytes();
    let signing = SigningKey::from_bytes(&seed);
    let ed25519_public = signing.verifying_key().to_bytes();
    assert_eq!(signing.verifying_key().to_montgomery().to_bytes(), x25519_public, "(1 + y) / (1 - y)");
    let mut message = ENTRY_SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(&fields);
    let signature: Signature = signing.sign(&message);
    signing.verifying_key().verify_strict(&message, &signature).expect("it verifies");

    // Through ferry.
    let identity = Identity::from_seed(seed);
    assert_eq!((identity.secret, identity.public), (x25519_secret, x25519_public));
    assert_eq!(identity.signing_public(), ed25519_public);
    let unsigned = [&fields[..], &[0; SIGNER_BYTES + SIGNATURE_BYTES]].concat();
    let mut entry = decode_entry(Bytes::from(unsigned)).expect("the fields decode as an entry");
    entry.sign(&identity);
    assert_eq!(entry.signature.signer, ed25519_public);
    assert_eq!(entry.signature.bytes, signature.to_bytes());
    assert!(entry.signature_verifies());
    let mut entry_bytes = BytesMut::new();
    encode_entry(&entry, &mut entry_bytes);
    assert_eq!(entry_bytes[..], [&fields[..], &ed25519_public, &signature.to_bytes()].concat()[..]);

    let mut expected: BTreeMap<String, String> =
        KEYS[..INPUTS].iter().map(|key| (key.to_string(), documented[*key].clone())).collect();
    let mut put = |key: &str, value: String| expected.insert(key.to_owned(), value);
    put("ed25519_public", hex(&ed25519_public));
    put("x25519_secret", hex(&x25519_secret));
    put("x25519_public", hex(&x25519_public));
    put("signing_message", hex(&message));
    put("signature", hex(&signature.to_bytes()));
    put("entry_bytes", hex(&entry_bytes));
    let rendered = render(&expected);
    assert!(
        block() == rendered,
        "PROTOCOL.md's signature-vector block is out of date; the regenerated block is:\n{rendered}"
    );
}

//! Goal: every hex test vector in PROTOCOL.md is true of this implementation, so the document
//! cannot drift from the code.
//!
//! Method: parse PROTOCOL.md, find every fenced block with the info string `wire-vector` (and
//! the `varint-vectors` table of section 2), decode each frame the way a receiver does
//! (`FrameDecoder` → `Envelope::decode` → `decode_payload`), compare the result with the
//! expected text, and re-encode every valid vector to check the bytes come out identical.
//! All mismatches are collected and reported together; the counts of vectors found are
//! asserted so that a broken parser cannot pass by finding nothing.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use ferry_protocol::envelope::MessageType;
use ferry_protocol::frame::{self, Decoded, FRAME_BYTES_MAX_DEFAULT, FrameDecoder};
use ferry_protocol::message::{Message, decode_payload};
use ferry_protocol::{Envelope, varint};

const PROTOCOL: &str = include_str!("../PROTOCOL.md");

/// PROTOCOL.md holds at least this many `wire-vector` blocks.
const WIRE_VECTORS_MIN: usize = 64;
/// Section 2's `varint-vectors` block holds at least this many lines.
const VARINT_VECTORS_MIN: usize = 21;

/// Keys a `wire-vector` block may use.
const KEYS: [&str; 7] = ["name", "frame", "header", "payload", "message", "error", "layer"];
/// Keys whose value is hex bytes, where `#` starts a comment.
const HEX_KEYS: [&str; 2] = ["frame", "payload"];

#[path = "../protocol/tests/support/fenced.rs"]
mod fenced;
use fenced::{Block, blocks, parse_hex};

/// A parsed `wire-vector` block.
struct Vector {
    fields: BTreeMap<String, String>,
}

impl Vector {
    fn parse(block: &Block<'_>) -> Result<Self, String> {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut last_key: Option<String> = None;
        for line in &block.lines {
            if line.trim().is_empty() {
                continue;
            }
            let continued = line.starts_with(' ') || line.starts_with('\t');
            let (key, value) = if continued {
                let key =
                    last_key.clone().ok_or_else(|| format!("continuation line before any key: {line:?}"))?;
                (key, line.trim())
            } else {
                let (key, value) =
                    line.split_once(':').ok_or_else(|| format!("line without `key:`: {line:?}"))?;
                if !KEYS.contains(&key) {
                    return Err(format!("unknown key {key:?}"));
                }
                if fields.contains_key(key) {
                    return Err(format!("key {key:?} given twice"));
                }
                (key.to_owned(), value.trim())
            };
            // Hex fields may carry a `#` comment on each line; text fields are taken verbatim
            // because a Debug or Display string may itself contain `#`.
            let value = if HEX_KEYS.contains(&key.as_str()) {
                value.split('#').next().unwrap_or_default().trim()
            } else {
                value
            };
            let entry = fields.entry(key.clone()).or_default();
            if !entry.is_empty() && !value.is_empty() {
                entry.push(' ');
            }
            entry.push_str(value);
            last_key = Some(key);
        }
        Ok(Self { fields })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    fn name(&self) -> &str {
        self.get("name").unwrap_or("<unnamed>")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(" ")
}

/// Where decoding stopped.
enum Outcome {
    /// A frame, envelope or payload error, with the layer that raised it.
    Rejected { layer: &'static str, error: String },
    /// A valid envelope whose payload was not decoded (the vector gives no message).
    Envelope(Envelope),
    /// A fully decoded message.
    Message(Envelope, Message),
}

/// Decodes `frame_bytes` as a receiver would, going as far as the vector asks.
fn decode(frame_bytes: &[u8], decode_message: bool) -> Result<Outcome, String> {
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    decoder.push(frame_bytes);
    let frame = match decoder.next_frame() {
        Err(error) => return Ok(Outcome::Rejected { layer: "frame", error: error.to_string() }),
        Ok(Decoded::NeedMore) => {
            return Err(format!("{} bytes are not a complete frame", frame_bytes.len()));
        }
        Ok(Decoded::Frame(frame)) => frame,
    };
    if decoder.buffered_bytes() != 0 {
        return Err(format!("{} bytes follow the frame", decoder.buffered_bytes()));
    }
    let envelope = match Envelope::decode(frame) {
        Err(error) => return Ok(Outcome::Rejected { layer: "envelope", error: error.to_string() }),
        Ok(envelope) => envelope,
    };
    if !decode_message {
        return Ok(Outcome::Envelope(envelope));
    }
    if envelope.header.flags.encrypted() {
        return Err("an encrypted payload cannot be decoded without its keys".to_owned());
    }
    match decode_payload(envelope.header.message_type, envelope.payload.clone()) {
        Err(error) => Ok(Outcome::Rejected { layer: "payload", error: error.to_string() }),
        Ok(message) => Ok(Outcome::Message(envelope, message)),
    }
}

/// Frames `payload` under `envelope`'s header, as a sender would.
fn encode(envelope: &Envelope, payload: &[u8]) -> Result<Vec<u8>, String> {
    let contents = Envelope::encode(&envelope.header, payload);
    let mut out = BytesMut::new();
    frame::encode(&contents, FRAME_BYTES_MAX_DEFAULT, &mut out).map_err(|error| error.to_string())?;
    Ok(out.to_vec())
}

fn expect_equal(what: &str, expected: &str, actual: &str) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!("{what} differs\n    expected: {expected}\n    actual:   {actual}"))
    }
}

/// What a checked vector showed, for the coverage checks.
#[derive(Default)]
struct Coverage {
    message_types: BTreeSet<MessageType>,
    layers_rejecting: BTreeSet<&'static str>,
    encrypted_envelopes: usize,
}

fn check(vector: &Vector, coverage: &mut Coverage) -> Result<(), String> {
    if vector.get("name").is_none_or(str::is_empty) {
        return Err("no name".to_owned());
    }
    let frame_bytes = parse_hex(vector.get("frame").ok_or("no frame")?)?;
    let expected_error = vector.get("error");
    let expected_layer = vector.get("layer");
    let expected_message = vector.get("message");
    let expected_header = vector.get("header");
    let expected_payload = vector.get("payload").map(parse_hex).transpose()?;
    let envelope_only = expected_message.is_none() && expected_error.is_none();
    if expected_message.is_some() && expected_error.is_some()
        || envelope_only && (expected_header.is_none() || expected_payload.is_none())
    {
        return Err("give exactly one of `message`, `error`, or `header` with `payload`".to_owned());
    }
    if expected_error.is_some() != expected_layer.is_some() {
        return Err("`error` and `layer` go together".to_owned());
    }
    let decode_message = expected_message.is_some() || expected_layer == Some("payload");
    match decode(&frame_bytes, decode_message)? {
        Outcome::Rejected { layer, error } => {
            let expected_error = expected_error.ok_or_else(|| format!("rejected by {layer}: {error}"))?;
            expect_equal("layer", expected_layer.unwrap_or_default(), layer)?;
            expect_equal("error", expected_error, &error)?;
            coverage.layers_rejecting.insert(layer);
        }
        Outcome::Envelope(envelope) => {
            if let Some(expected_error) = expected_error {
                return Err(format!("expected error {expected_error:?}, got a valid envelope"));
            }
            expect_equal("header", expected_header.unwrap_or_default(), &format!("{:?}", envelope.header))?;
            let expected_payload = expected_payload.unwrap_or_default();
            expect_equal("payload", &hex(&expected_payload), &hex(&envelope.payload))?;
            expect_equal(
                "re-encoded frame",
                &hex(&frame_bytes),
                &hex(&encode(&envelope, &envelope.payload)?),
            )?;
            if envelope.header.flags.encrypted() {
                coverage.encrypted_envelopes += 1;
            }
        }
        Outcome::Message(envelope, message) => {
            if let Some(expected_error) = expected_error {
                return Err(format!("expected error {expected_error:?}, got {message:?}"));
            }
            expect_equal("message", expected_message.unwrap_or_default(), &format!("{message:?}"))?;
            if let Some(expected_header) = expected_header {
                expect_equal("header", expected_header, &format!("{:?}", envelope.header))?;
            }
            if let Some(expected_payload) = expected_payload {
                expect_equal("payload", &hex(&expected_payload), &hex(&envelope.payload))?;
            }
            let payload: Bytes = message.payload_bytes();
            expect_equal("re-encoded frame", &hex(&frame_bytes), &hex(&encode(&envelope, &payload)?))?;
            coverage.message_types.insert(message.message_type());
        }
    }
    Ok(())
}

#[test]
fn every_wire_vector_in_protocol_md_holds() {
    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    let mut coverage = Coverage::default();
    let found = blocks(PROTOCOL, "wire-vector");
    for block in &found {
        let result = Vector::parse(block).and_then(|vector| {
            if !names.insert(vector.name().to_owned()) {
                return Err(format!("duplicate name {:?}", vector.name()));
            }
            check(&vector, &mut coverage).map_err(|error| format!("{}: {error}", vector.name()))
        });
        if let Err(error) = result {
            failures.push(format!("PROTOCOL.md:{}: {error}", block.line_number));
        }
    }
    assert!(failures.is_empty(), "{} wire vectors failed:\n{}", failures.len(), failures.join("\n"));
    assert!(
        found.len() >= WIRE_VECTORS_MIN,
        "found {} wire vectors, expected at least {WIRE_VECTORS_MIN}",
        found.len()
    );
    let missing: Vec<_> = MessageType::ALL
        .iter()
        .filter(|message_type| !coverage.message_types.contains(message_type))
        .collect();
    assert!(missing.is_empty(), "no valid vector for {missing:?}");
    assert_eq!(coverage.layers_rejecting, BTreeSet::from(["envelope", "frame", "payload"]));
    assert!(coverage.encrypted_envelopes >= 1, "no encrypted envelope vector");
}

#[test]
fn every_varint_vector_in_protocol_md_holds() {
    let found = blocks(PROTOCOL, "varint-vectors");
    assert_eq!(found.len(), 1, "expected one varint-vectors block");
    let mut failures = Vec::new();
    let mut count = 0;
    for line in found[0].lines.iter().filter(|line| !line.trim().is_empty()) {
        count += 1;
        let result = (|| -> Result<(), String> {
            let (bytes, expected) = line.split_once("=>").ok_or("line without `=>`")?;
            let bytes = parse_hex(bytes)?;
            let expected = expected.trim();
            match varint::decode(&bytes) {
                Ok((value, used)) => {
                    expect_equal("value", expected, &value.to_string())?;
                    if used != bytes.len() {
                        return Err(format!("decoding used {used} of {} bytes", bytes.len()));
                    }
                    let mut out = Vec::new();
                    varint::encode(value, &mut out);
                    expect_equal("re-encoded", &hex(&bytes), &hex(&out))
                }
                Err(error) => expect_equal("error", expected, &format!("error: {error}")),
            }
        })();
        if let Err(error) = result {
            failures.push(format!("{line:?}: {error}"));
        }
    }
    assert!(failures.is_empty(), "{} varint vectors failed:\n{}", failures.len(), failures.join("\n"));
    assert!(
        count >= VARINT_VECTORS_MIN,
        "found {count} varint vectors, expected at least {VARINT_VECTORS_MIN}"
    );
}

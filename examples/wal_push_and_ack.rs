//! A sender pushes a batch of WAL entries; the receiver decodes it, records how far it holds
//! each origin, and answers with a WalAck carrying the push's msg_id; the sender decodes the
//! ack. See PROTOCOL.md sections 5.3 and 5.4.
//!
//! Run: `cargo run --example wal_push_and_ack`

use bytes::{Bytes, BytesMut};
use ferry_protocol::frame::{self, Decoded, FRAME_BYTES_MAX_DEFAULT, FrameDecoder};
use ferry_protocol::{
    Envelope, Header, Message, NodeId, Operation, Timestamp, VersionVector, WalEntry, decode_payload,
};

/// Frames `message` under a plaintext header.
fn to_frame(msg_id: u32, message: &Message) -> BytesMut {
    let contents = Envelope::encode(&Header::plain(message.message_type(), msg_id), &message.payload_bytes());
    let mut out = BytesMut::new();
    frame::encode(&contents, FRAME_BYTES_MAX_DEFAULT, &mut out).expect("far below 1 MiB");
    out
}

/// Decodes the one frame in `bytes`; returns its msg_id and message.
fn from_frame(bytes: &[u8]) -> (u32, Message) {
    let mut decoder = FrameDecoder::default();
    decoder.push(bytes);
    let Ok(Decoded::Frame(frame)) = decoder.next_frame() else { panic!("one whole frame") };
    let envelope = Envelope::decode(frame).expect("a valid envelope");
    let message = decode_payload(envelope.header.message_type, envelope.payload).expect("a valid payload");
    (envelope.header.msg_id, message)
}

fn main() {
    // Node "a" accepted three writes; "b" relays one of its own it got earlier.
    let a = NodeId::from_name("a");
    let b = NodeId::from_name("b");
    let put = |origin, sequence, physical_ms, key: &'static str, value: &'static str| WalEntry {
        origin,
        sequence,
        timestamp: Timestamp::new(physical_ms, 0),
        operation: Operation::Put {
            key: Bytes::from_static(key.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        },
        proof: None,
    };
    let entries = vec![
        put(a, 1, 1_000, "colour", "red"),
        put(a, 2, 1_005, "size", "large"),
        WalEntry {
            origin: a,
            sequence: 3,
            timestamp: Timestamp::new(1_010, 0),
            operation: Operation::Delete { key: Bytes::from_static(b"colour") },
            proof: None,
        },
        put(b, 1, 990, "shape", "round"),
    ];

    // Sender: one WalPush frame.
    let push = to_frame(41, &Message::WalPush { entries });
    println!("sender: WalPush of 4 entries in a {}-byte frame", push.len());

    // Receiver: decode, "store" each entry, and track the contiguous position per origin.
    let (msg_id, message) = from_frame(&push);
    let Message::WalPush { entries } = message else { panic!("a WalPush was sent") };
    let mut durable = VersionVector::new();
    for entry in &entries {
        println!(
            "receiver: {} #{} at {}: {:?}",
            entry.origin, entry.sequence, entry.timestamp, entry.operation
        );
        // Sequences have no gaps per origin, so the next one extends the contiguous run.
        if entry.sequence == durable.get(entry.origin) + 1 {
            durable.raise(entry.origin, entry.sequence);
        }
    }
    // A real node acknowledges only after the entries are fsynced.
    let ack = to_frame(msg_id, &Message::WalAck { positions: durable });
    println!("receiver: WalAck for message {msg_id} in a {}-byte frame", ack.len());

    // Sender: the ack carries the push's msg_id and the receiver's durable positions.
    let (msg_id, message) = from_frame(&ack);
    let Message::WalAck { positions } = message else { panic!("a WalAck was sent") };
    for (origin, position) in positions.iter() {
        println!("sender: ack of message {msg_id}: {origin} durable through #{position}");
    }
    assert_eq!(positions.get(a), 3);
    assert_eq!(positions.get(b), 1);
}

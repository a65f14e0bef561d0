//! Builds and decodes the three handshake envelopes, Hello, HelloAck and HelloFinish, which
//! carry Noise XX messages 1, 2 and 3 as their whole payload. The Noise bytes here are
//! dummies of the real lengths; the session layer produces real ones. See PROTOCOL.md 5.1.
//!
//! Run: `cargo run --example hello_messages`

use bytes::{Bytes, BytesMut};
use ferry_protocol::frame::{self, Decoded, FRAME_BYTES_MAX_DEFAULT, FrameDecoder};
use ferry_protocol::message::DecodeError;
use ferry_protocol::{Envelope, Header, Message, MessageType, decode_payload};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(" ")
}

fn main() {
    // Noise XX with 25519 keys and a 16-byte tag: message 1 is an ephemeral key (32 bytes),
    // message 2 adds an encrypted static key and a tag (32 + 48 + 16), message 3 an encrypted
    // static key and a tag (48 + 16). Any handshake payload would come on top.
    let handshake = [
        Message::Hello { noise: Bytes::from(vec![0xe1; 32]) },
        Message::HelloAck { noise: Bytes::from(vec![0xa2; 96]) },
        Message::HelloFinish { noise: Bytes::from(vec![0xf3; 64]) },
    ];

    // The initiator and the responder take turns; each message is one frame on the link.
    let mut link = BytesMut::new();
    for message in &handshake {
        // Handshake envelopes travel in the clear (the Noise messages protect themselves),
        // with msg_id 0 (PROTOCOL.md 6.2).
        let contents = Envelope::encode(&Header::plain(message.message_type(), 0), &message.payload_bytes());
        frame::encode(&contents, FRAME_BYTES_MAX_DEFAULT, &mut link).expect("far below 1 MiB");
        println!(
            "sent {:?} in a {}-byte envelope, header {}",
            message.message_type(),
            contents.len(),
            hex(&contents[..9])
        );
    }

    // The other side decodes each frame; a handshake payload is the raw Noise message.
    let mut decoder = FrameDecoder::default();
    decoder.push(&link);
    while let Decoded::Frame(frame) = decoder.next_frame().expect("a valid stream") {
        let envelope = Envelope::decode(frame).expect("a valid envelope");
        match decode_payload(envelope.header.message_type, envelope.payload).expect("a valid payload") {
            Message::Hello { noise } => println!("got Hello: Noise message 1, {} bytes", noise.len()),
            Message::HelloAck { noise } => println!("got HelloAck: Noise message 2, {} bytes", noise.len()),
            Message::HelloFinish { noise } => {
                println!("got HelloFinish: Noise message 3, {} bytes", noise.len())
            }
            other => println!("not a handshake message: {other:?}"),
        }
    }

    // An empty Noise message is never valid, so it is rejected at the payload layer.
    let error = decode_payload(MessageType::Hello, Bytes::new()).expect_err("empty noise");
    assert_eq!(error, DecodeError::EmptyNoise);
    println!("an empty Hello is rejected: {error}");
}

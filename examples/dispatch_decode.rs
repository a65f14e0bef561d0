//! Decodes a stream of mixed frames, some of them invalid, and dispatches on the message
//! type, handling each error the way PROTOCOL.md section 9 says: envelope and payload
//! errors drop one message, a frame error ends the connection.
//!
//! Run: `cargo run --example dispatch_decode`

use bytes::{Bytes, BytesMut};
use ferry_protocol::frame::{self, Decoded, FRAME_BYTES_MAX_DEFAULT, FrameDecoder};
use ferry_protocol::{CloseCode, Envelope, Header, Message, NodeId, VersionVector, decode_payload};

/// Appends `message` to `stream` as one frame.
fn send(stream: &mut BytesMut, msg_id: u32, message: &Message) {
    let contents = Envelope::encode(&Header::plain(message.message_type(), msg_id), &message.payload_bytes());
    frame::encode(&contents, FRAME_BYTES_MAX_DEFAULT, stream).expect("far below 1 MiB");
}

/// Appends a frame holding raw envelope bytes, valid or not.
fn send_raw(stream: &mut BytesMut, contents: &[u8]) {
    frame::encode(contents, FRAME_BYTES_MAX_DEFAULT, stream).expect("far below 1 MiB");
}

fn main() {
    let mut stream = BytesMut::new();
    send(&mut stream, 1, &Message::Ping { token: 42 });
    let vector: VersionVector = [(NodeId(3), 10), (NodeId(9), 2)].into_iter().collect();
    send(&mut stream, 2, &Message::OutboxPull { vector });
    send_raw(&mut stream, b"FY\x01\x0d\0\0\0\x03\0"); // type 13 does not exist (yet)
    send_raw(&mut stream, b"FY\x01\x04\0\0\0\x04\0\x80\x00"); // a Ping with an overlong token
    send(&mut stream, 5, &Message::Pong { token: 42 });
    send(&mut stream, 6, &Message::Close { code: CloseCode::Shutdown, reason: "bye".into() });
    stream.extend_from_slice(&[0x80, 0x00]); // an overlong length prefix: the stream is broken

    // The transport delivers 7 bytes at a time; the decoder does not care.
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    'connection: for chunk in stream.chunks(7) {
        decoder.push(chunk);
        loop {
            let frame: Bytes = match decoder.next_frame() {
                Ok(Decoded::Frame(frame)) => frame,
                Ok(Decoded::NeedMore) => break,
                Err(error) => {
                    // Frame boundaries are lost: nothing after this can be trusted.
                    println!("frame error, closing the connection: {error}");
                    break 'connection;
                }
            };
            let envelope = match Envelope::decode(frame) {
                Ok(envelope) => envelope,
                Err(error) => {
                    println!("dropped a frame (envelope error): {error}");
                    continue;
                }
            };
            let msg_id = envelope.header.msg_id;
            let message = match decode_payload(envelope.header.message_type, envelope.payload) {
                Ok(message) => message,
                Err(error) => {
                    println!("dropped message {msg_id} (payload error): {error}");
                    continue;
                }
            };
            match message {
                Message::Ping { token } => {
                    println!("message {msg_id}: Ping {token}, would answer Pong {token}")
                }
                Message::Pong { token } => println!("message {msg_id}: Pong {token}"),
                Message::OutboxPull { vector } => {
                    let held: Vec<String> =
                        vector.iter().map(|(origin, count)| format!("{origin}: 1..={count}")).collect();
                    println!("message {msg_id}: OutboxPull, peer holds {held:?}")
                }
                Message::Close { code, reason } => println!("message {msg_id}: Close {code:?} ({reason})"),
                other => println!("message {msg_id}: {:?}", other.message_type()),
            }
        }
    }
}

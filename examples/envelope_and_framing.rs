//! Builds one message layer by layer (payload, envelope, frame), decodes it back from a
//! stream that arrives in pieces, and shows the header layout of an encrypted envelope.
//! See PROTOCOL.md sections 3 and 4.
//!
//! Run: `cargo run --example envelope_and_framing`

use bytes::BytesMut;
use ferry_protocol::frame::{self, Decoded, FRAME_BYTES_MAX_DEFAULT, FrameDecoder};
use ferry_protocol::{Envelope, Header, Message, MessageType, decode_payload};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(" ")
}

fn main() {
    // 1. The payload: a Ping's token is one varint.
    let message = Message::Ping { token: 300 };
    let payload = message.payload_bytes();
    println!("payload   {}   ({message:?})", hex(&payload));

    // 2. The envelope: a 9-byte header ("FY", version, type, msg_id, flags), then the payload.
    let header = Header::plain(message.message_type(), 7);
    let contents = Envelope::encode(&header, &payload);
    println!("envelope  {}", hex(&contents));

    // 3. The frame: a varint length prefix, then the envelope.
    let mut stream = BytesMut::new();
    frame::encode(&contents, FRAME_BYTES_MAX_DEFAULT, &mut stream).expect("12 bytes fit in 1 MiB");
    println!("frame     {}", hex(&stream));

    // 4. A receiver gets the bytes in arbitrary pieces; the decoder waits until a frame is whole.
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    let (first, second) = stream.split_at(5);
    decoder.push(first);
    println!("after {} bytes: {:?}", first.len(), decoder.next_frame().expect("valid so far"));
    decoder.push(second);
    let Ok(Decoded::Frame(received)) = decoder.next_frame() else {
        panic!("the whole frame has arrived");
    };
    let envelope = Envelope::decode(received).expect("a valid envelope");
    let decoded = decode_payload(envelope.header.message_type, envelope.payload).expect("a valid payload");
    println!("after {} bytes: {:?} -> {decoded:?}", stream.len(), envelope.header);
    assert_eq!(decoded, message);

    // 5. With the ENCRYPTED flag the header grows by an 8-byte big-endian nonce, and the payload
    //    is ciphertext followed by a 16-byte tag. The session layer encrypts; here the
    //    ciphertext and tag are dummy bytes, to show where everything goes.
    let header = Header::encrypted(MessageType::Ping, 8, 0x0102_0304_0506_0708);
    let mut sealed = vec![0xc0, 0xc1];
    sealed.extend_from_slice(&[0x7a; 16]);
    let contents = Envelope::encode(&header, &sealed);
    let envelope = Envelope::decode(contents).expect("header and tag are present");
    println!("encrypted header (the AEAD associated data): {}", hex(&envelope.header_bytes));
    println!("encrypted payload (ciphertext | tag):         {}", hex(&envelope.payload));
}

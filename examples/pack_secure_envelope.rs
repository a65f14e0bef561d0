//! Two `Connection`s shake hands in memory (Noise XX), then one packs a Ping into an
//! encrypted envelope and the other opens it. Shows the envelope's layout under a session
//! (flags, session id, counter, ciphertext and tag), and that a flipped bit or a replayed
//! envelope is refused. See PROTOCOL.md sections 4 and 7.
//!
//! Run: `cargo run --example pack_secure_envelope`

use std::sync::Arc;

use bytes::Bytes;
use ferry_protocol::session::{Connection, ConnectionEvent, Identity, Role, SessionConfig};
use ferry_protocol::{Envelope, Message};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(" ")
}

/// Moves every queued transmit from `from` to `to` until both are quiet.
fn shuttle(left: &mut Connection, right: &mut Connection, rng: &mut ChaCha8Rng) {
    loop {
        let mut moved = false;
        while let Some(contents) = left.poll_transmit() {
            right.handle_frame(0, contents, rng).expect("a valid handshake message");
            moved = true;
        }
        while let Some(contents) = right.poll_transmit() {
            left.handle_frame(0, contents, rng).expect("a valid handshake message");
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn main() {
    // Randomness is an input: a seeded generator makes every run print the same bytes.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let alice = Arc::new(SessionConfig::new("alice", Identity::generate(&mut rng)));
    let bob = Arc::new(SessionConfig::new("bob", Identity::generate(&mut rng)));
    let mut initiator = Connection::new(alice, Role::Initiator, 0, &mut rng).expect("a valid config");
    let mut responder = Connection::new(bob, Role::Responder, 0, &mut rng).expect("a valid config");

    shuttle(&mut initiator, &mut responder, &mut rng);
    for (side, connection) in [("alice", &mut initiator), ("bob", &mut responder)] {
        match connection.poll_event() {
            Some(ConnectionEvent::Established(peer)) => {
                println!("{side}: session with {:?} established", peer.name)
            }
            other => panic!("{side}: expected a session, got {other:?}"),
        }
    }

    // Pack: the header stays readable (so a receiver can route it to its session), the
    // payload is ChaCha20-Poly1305 ciphertext with the header as associated data.
    let sealed = initiator.send(1, &Message::Ping { token: 42 }).expect("an established session");
    let envelope = Envelope::decode(sealed.clone()).expect("a valid envelope");
    println!("\nencrypted Ping, {} bytes:", sealed.len());
    println!("  header (associated data)  {}", hex(&envelope.header_bytes));
    println!(
        "    type {:?}, msg_id {}, flags {:?}, nonce counter {:?}",
        envelope.header.message_type, envelope.header.msg_id, envelope.header.flags, envelope.header.nonce
    );
    println!("  ciphertext + 16-byte tag  {}", hex(&envelope.payload));

    // Open: authenticated, in the anti-replay window, decoded.
    let opened = responder.handle_frame(0, sealed.clone(), &mut rng).expect("authentic");
    println!("\nbob opened it: {opened:?}");
    assert_eq!(opened, Some((1, Message::Ping { token: 42 })));

    // The same bytes again: the counter was seen, so the replay window refuses them.
    let replay = responder.handle_frame(0, sealed.clone(), &mut rng).expect_err("a replay");
    println!("the same envelope again: {replay}");

    // A fresh envelope with one flipped bit in its tag: authentication fails, and the
    // session's receive state does not change, so the intact copy still opens.
    let fresh = initiator.send(2, &Message::Ping { token: 43 }).expect("an established session");
    let mut damaged = fresh.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x01;
    let refused = responder.handle_frame(0, Bytes::from(damaged), &mut rng).expect_err("a damaged envelope");
    println!("one flipped bit: {refused}");
    let opened = responder.handle_frame(0, fresh, &mut rng).expect("the intact copy is authentic");
    println!("the intact copy: {opened:?}");
}

//! Goal: prove that ferry's handshake is plain Noise XX and its envelopes are exactly what
//! PROTOCOL.md describes, by completing a handshake and exchanging messages with a peer
//! driven by snow directly (its `HandshakeState`, its cipher), not by ferry's state machine.
//! Method: one test per direction; the snow side builds payloads and envelope headers by hand.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use ferry_protocol::session::{ConnectionEvent, Identity, PeerInfo, Role, SessionConfig, VersionRange};
use ferry_protocol::{Connection, Message, NodeId};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The Hello payload for versions 2..=2.
const HELLO_PAYLOAD: [u8; 2] = [0x02, 0x02];
/// The snow peer's identity payload: name "snowy", node id 7, versions 2..=2, version 2,
/// capabilities 3.
const SNOWY_PAYLOAD: [u8; 11] = [5, b's', b'n', b'o', b'w', b'y', 7, 2, 2, 2, 3];
const HELLO: u8 = 1;
const HELLO_ACK: u8 = 2;
const HELLO_FINISH: u8 = 3;
const PING: u8 = 4;
const PONG: u8 = 5;

fn ferry_side(role: Role) -> (Connection, Arc<SessionConfig>, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let config = Arc::new(SessionConfig::new("ferry", Identity::generate(&mut rng)));
    let connection = Connection::new(config.clone(), role, 0, &mut rng).expect("valid config");
    (connection, config, rng)
}

/// What a ferry node named "ferry" with default settings says about itself.
fn ferry_payload() -> Vec<u8> {
    let mut payload = vec![5];
    payload.extend_from_slice(b"ferry");
    ferry_protocol::varint::encode(NodeId::from_name("ferry").0, &mut payload);
    payload.extend_from_slice(&[2, 2, 2, 0]);
    payload
}

fn snowy(static_key: Vec<u8>) -> PeerInfo {
    PeerInfo {
        name: "snowy".into(),
        node_id: NodeId(7),
        static_key: static_key.try_into().expect("32 bytes"),
        versions: VersionRange::single(2),
        version: 2,
        capabilities: 3,
    }
}

/// After the handshake: snow's split keys, used with snow's cipher, talk to the Connection.
fn exchange(connection: &mut Connection, rng: &mut ChaCha20Rng, send_key: &[u8; 32], receive_key: &[u8; 32]) {
    let ping = support::seal(send_key, PING, 9, 0, &[42]);
    assert_eq!(
        connection.handle_frame(0, Bytes::from(ping), rng),
        Ok(Some((9, Message::Ping { token: 42 })))
    );
    let pong = connection.send(9, &Message::Pong { token: 42 }).expect("established");
    assert_eq!(pong[..17], support::encrypted_header(PONG, 9, 0));
    assert_eq!(support::open(receive_key, &pong), Ok(vec![42]));
}

#[test]
fn snow_initiator_completes_with_ferry_responder() {
    let keypair = support::builder([3; 32]).generate_keypair().expect("keypair");
    let mut snow = support::builder([4; 32])
        .local_private_key(&keypair.private)
        .and_then(|builder| builder.prologue(support::PROLOGUE))
        .and_then(snow::Builder::build_initiator)
        .expect("snow initiator");
    let (mut responder, config, mut rng) = ferry_side(Role::Responder);
    let mut buffer = vec![0; 1024];

    let length = snow.write_message(&HELLO_PAYLOAD, &mut buffer).expect("message 1");
    let hello = [&support::plain_header(HELLO)[..], &buffer[..length]].concat();
    assert_eq!(responder.handle_frame(0, Bytes::from(hello), &mut rng), Ok(None));

    let hello_ack = responder.poll_transmit().expect("HelloAck");
    assert_eq!(hello_ack[..9], support::plain_header(HELLO_ACK));
    let mut payload = vec![0; 1024];
    let length = snow.read_message(&hello_ack[9..], &mut payload).expect("message 2 authenticates");
    assert_eq!(payload[..length], ferry_payload());
    assert_eq!(snow.get_remote_static(), Some(&config.identity.public[..]));

    let length = snow.write_message(&SNOWY_PAYLOAD, &mut buffer).expect("message 3");
    let hello_finish = [&support::plain_header(HELLO_FINISH)[..], &buffer[..length]].concat();
    assert_eq!(responder.handle_frame(0, Bytes::from(hello_finish), &mut rng), Ok(None));
    assert_eq!(responder.poll_event(), Some(ConnectionEvent::Established(snowy(keypair.public))));
    assert!(snow.is_handshake_finished());

    let (initiator_to_responder, responder_to_initiator) = snow.dangerously_get_raw_split();
    exchange(&mut responder, &mut rng, &initiator_to_responder, &responder_to_initiator);
}

#[test]
fn ferry_initiator_completes_with_snow_responder() {
    let keypair = support::builder([5; 32]).generate_keypair().expect("keypair");
    let mut snow = support::builder([6; 32])
        .local_private_key(&keypair.private)
        .and_then(|builder| builder.prologue(support::PROLOGUE))
        .and_then(snow::Builder::build_responder)
        .expect("snow responder");
    let (mut initiator, config, mut rng) = ferry_side(Role::Initiator);
    let mut payload = vec![0; 1024];
    let mut buffer = vec![0; 1024];

    let hello = initiator.poll_transmit().expect("Hello");
    assert_eq!(hello[..9], support::plain_header(HELLO));
    let length = snow.read_message(&hello[9..], &mut payload).expect("message 1");
    assert_eq!(payload[..length], HELLO_PAYLOAD);

    let length = snow.write_message(&SNOWY_PAYLOAD, &mut buffer).expect("message 2");
    let hello_ack = [&support::plain_header(HELLO_ACK)[..], &buffer[..length]].concat();
    assert_eq!(initiator.handle_frame(0, Bytes::from(hello_ack), &mut rng), Ok(None));
    assert_eq!(initiator.poll_event(), Some(ConnectionEvent::Established(snowy(keypair.public))));

    let hello_finish = initiator.poll_transmit().expect("HelloFinish");
    assert_eq!(hello_finish[..9], support::plain_header(HELLO_FINISH));
    let length = snow.read_message(&hello_finish[9..], &mut payload).expect("message 3 authenticates");
    assert_eq!(payload[..length], ferry_payload());
    assert_eq!(snow.get_remote_static(), Some(&config.identity.public[..]));

    let (initiator_to_responder, responder_to_initiator) = snow.dangerously_get_raw_split();
    exchange(&mut initiator, &mut rng, &responder_to_initiator, &initiator_to_responder);
}

//! Tests of [`Connection`] driven in virtual time by a two-sided harness, like quinn's `Pair`:
//! frames sent by one side wait in a queue toward the other, time jumps to the earliest
//! timeout when nothing is in flight, and every run has a step bound.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{Connection, ConnectionEvent};
use crate::entry::NodeId;
use crate::envelope::{Envelope, EnvelopeError, HEADER_BYTES_ENCRYPTED, Header, MessageType};
use crate::message::{CloseCode, Message, decode_payload};
use crate::session::{
    HANDSHAKE_TIMEOUT_NS_DEFAULT, HandshakeError, Identity, PROTOCOL_VERSION, PeerInfo, Role, SessionConfig,
    SessionError, VersionRange,
};

/// Upper bound on harness steps; a run that needs more is a livelock.
const STEPS_MAX: usize = 10_000;

const INITIATOR: usize = 0;
const RESPONDER: usize = 1;

type Handled = Result<Option<(u32, Message)>, SessionError>;

fn config(name: &str, seed: u64) -> SessionConfig {
    SessionConfig::new(name, Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed)))
}

struct Side {
    connection: Connection,
    rng: ChaCha20Rng,
    events: Vec<ConnectionEvent>,
    errors: Vec<SessionError>,
}

struct Pair {
    now_ns: u64,
    sides: [Side; 2],
    /// Frames in flight toward each side.
    in_flight: [VecDeque<Bytes>; 2],
    /// Every frame either side emitted, with its sender, lost or not.
    transcript: Vec<(usize, Bytes)>,
    /// (sender, type): the next frame of that type from that sender is lost.
    drops: Vec<(usize, MessageType)>,
    /// Lose every frame.
    blackhole: bool,
}

fn message_type(bytes: &[u8]) -> Option<MessageType> {
    MessageType::from_code(*bytes.get(3)?)
}

impl Pair {
    fn new(initiator: SessionConfig, responder: SessionConfig, seeds: [u64; 2]) -> Self {
        Self::with_drops(initiator, responder, seeds, Vec::new())
    }

    fn with_drops(
        initiator: SessionConfig,
        responder: SessionConfig,
        seeds: [u64; 2],
        drops: Vec<(usize, MessageType)>,
    ) -> Self {
        let side = |config, role, seed| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let connection = Connection::new(Arc::new(config), role, 0, &mut rng).expect("valid config");
            Side { connection, rng, events: Vec::new(), errors: Vec::new() }
        };
        let mut pair = Self {
            now_ns: 0,
            sides: [side(initiator, Role::Initiator, seeds[0]), side(responder, Role::Responder, seeds[1])],
            in_flight: [VecDeque::new(), VecDeque::new()],
            transcript: Vec::new(),
            drops,
            blackhole: false,
        };
        pair.collect(INITIATOR);
        pair
    }

    fn default_pair() -> Self {
        Self::new(config("alpha", 1), config("bravo", 2), [11, 12])
    }

    /// Moves everything `index` wants to send into flight and records its events.
    fn collect(&mut self, index: usize) {
        while let Some(bytes) = self.sides[index].connection.poll_transmit() {
            self.transcript.push((index, bytes.clone()));
            let rule = self
                .drops
                .iter()
                .position(|&(sender, kind)| sender == index && Some(kind) == message_type(&bytes));
            if let Some(rule) = rule {
                self.drops.remove(rule);
            } else if !self.blackhole {
                self.in_flight[1 - index].push_back(bytes);
            }
        }
        while let Some(event) = self.sides[index].connection.poll_event() {
            self.sides[index].events.push(event);
        }
    }

    fn deliver(&mut self, index: usize, bytes: Bytes) -> Handled {
        let now_ns = self.now_ns;
        let side = &mut self.sides[index];
        let result = side.connection.handle_frame(now_ns, bytes, &mut side.rng);
        match &result {
            Ok(_) => {}
            Err(error) => side.errors.push(error.clone()),
        }
        self.collect(index);
        result
    }

    /// Delivers one frame, or advances time to the next timeout; false when nothing is left.
    fn step(&mut self) -> bool {
        for index in [INITIATOR, RESPONDER] {
            if let Some(bytes) = self.in_flight[index].pop_front() {
                let _ = self.deliver(index, bytes);
                return true;
            }
        }
        let timeouts = self.sides.each_ref().map(|side| side.connection.poll_timeout());
        let Some(next_ns) = timeouts.iter().flatten().min().copied() else { return false };
        self.now_ns = self.now_ns.max(next_ns);
        for index in [INITIATOR, RESPONDER] {
            if timeouts[index].is_some_and(|at_ns| at_ns <= self.now_ns) {
                self.sides[index].connection.handle_timeout(self.now_ns);
                self.collect(index);
            }
        }
        true
    }

    fn drive(&mut self) {
        for _ in 0..STEPS_MAX {
            if !self.step() {
                return;
            }
        }
        panic!("not quiescent after {STEPS_MAX} steps");
    }

    fn connection(&mut self, index: usize) -> &mut Connection {
        &mut self.sides[index].connection
    }

    fn send(&mut self, index: usize, msg_id: u32, message: &Message) -> Bytes {
        self.connection(index).send(msg_id, message).expect("established")
    }

    fn sent(&self, sender: usize, kind: MessageType) -> usize {
        self.transcript
            .iter()
            .filter(|(index, bytes)| *index == sender && message_type(bytes) == Some(kind))
            .count()
    }

    fn assert_ping_both_ways(&mut self) {
        let ping = self.send(INITIATOR, 41, &Message::Ping { token: 7 });
        assert_eq!(self.deliver(RESPONDER, ping), Ok(Some((41, Message::Ping { token: 7 }))));
        let pong = self.send(RESPONDER, 41, &Message::Pong { token: 7 });
        assert_eq!(self.deliver(INITIATOR, pong), Ok(Some((41, Message::Pong { token: 7 }))));
    }
}

fn peer_of(config: &SessionConfig) -> PeerInfo {
    PeerInfo {
        name: config.name.clone(),
        node_id: config.node_id,
        static_key: config.identity.public,
        versions: config.versions,
        version: PROTOCOL_VERSION,
        capabilities: config.capabilities,
    }
}

/// Goal: two connections agree on a session and each learns exactly who the other is.
/// Method: drive the pair with no loss; compare events, peers and one message each way.
#[test]
fn full_handshake_in_memory() {
    let mut alpha = config("alpha", 1);
    alpha.capabilities = 0b1010;
    let bravo = config("bravo", 2);
    let mut pair = Pair::new(alpha.clone(), bravo.clone(), [11, 12]);
    pair.drive();
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::Established(peer_of(&bravo))]);
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::Established(peer_of(&alpha))]);
    assert_eq!(pair.connection(RESPONDER).peer().map(|peer| peer.static_key), Some(alpha.identity.public));
    assert!(pair.sides.iter().all(|side| side.errors.is_empty()));
    let kinds: Vec<_> = pair.transcript.iter().map(|(index, bytes)| (*index, message_type(bytes))).collect();
    assert_eq!(
        kinds,
        [
            (INITIATOR, Some(MessageType::Hello)),
            (RESPONDER, Some(MessageType::HelloAck)),
            (INITIATOR, Some(MessageType::HelloFinish)),
        ]
    );
    assert_eq!(pair.now_ns, 0, "no retransmission was needed");
    pair.assert_ping_both_ways();
    assert_eq!(pair.connection(INITIATOR).poll_timeout(), None);
}

/// The exact error flipping bit `bit` of an encrypted Ping with nonce 1 must produce, when
/// nonce 0 was already accepted.
fn expected_flip_error(original: &[u8], index: usize, bit: u8) -> SessionError {
    let flipped = original[index] ^ (1 << bit);
    match index {
        0 | 1 => {
            let mut found = [original[0], original[1]];
            found[index] = flipped;
            SessionError::Envelope(EnvelopeError::WrongMagic { found })
        }
        2 => SessionError::Envelope(EnvelopeError::UnsupportedVersion { version: flipped }),
        3 => match MessageType::from_code(flipped) {
            None => SessionError::Envelope(EnvelopeError::UnknownType { code: flipped }),
            Some(message_type) if message_type.is_handshake() => {
                SessionError::EncryptedHandshake { message_type }
            }
            Some(_) => SessionError::Decrypt { nonce: 1 },
        },
        4..=7 => SessionError::Decrypt { nonce: 1 },
        8 if bit == 0 => SessionError::Unencrypted { message_type: MessageType::Ping },
        8 => SessionError::Envelope(EnvelopeError::ReservedFlags { flags: flipped }),
        9..=16 => {
            let nonce = 1u64 ^ (1 << (8 * (16 - index) + usize::from(bit)));
            if nonce == 0 { SessionError::Replay { nonce } } else { SessionError::Decrypt { nonce } }
        }
        _ => SessionError::Decrypt { nonce: 1 },
    }
}

/// Goal: no single-bit change anywhere in an encrypted envelope gets through, and no rejected
/// envelope changes what the receiver will accept next.
/// Method: flip every bit of header and payload in turn, assert the exact error and that the
/// receive state is unchanged, then deliver the original.
#[test]
fn every_single_bit_flip_is_rejected_without_changing_state() {
    let mut pair = Pair::default_pair();
    pair.drive();
    let first = pair.send(INITIATOR, 1, &Message::Ping { token: 1 });
    assert_eq!(pair.deliver(RESPONDER, first), Ok(Some((1, Message::Ping { token: 1 }))));
    let original = pair.send(INITIATOR, 2, &Message::Ping { token: 0x1234_5678 });
    assert_eq!(original.len(), HEADER_BYTES_ENCRYPTED + 5 + 16);
    let before = pair.connection(RESPONDER).receive_state();
    for index in 0..original.len() {
        for bit in 0..8 {
            let mut flipped = original.to_vec();
            flipped[index] ^= 1 << bit;
            assert_eq!(
                pair.deliver(RESPONDER, Bytes::from(flipped)),
                Err(expected_flip_error(&original, index, bit)),
                "byte {index} bit {bit}"
            );
            assert_eq!(pair.connection(RESPONDER).receive_state(), before, "byte {index} bit {bit}");
        }
    }
    assert!(pair.in_flight.iter().all(VecDeque::is_empty), "a rejected envelope was answered");
    assert_eq!(pair.sides[RESPONDER].events.len(), 1);
    assert_eq!(pair.deliver(RESPONDER, original), Ok(Some((2, Message::Ping { token: 0x1234_5678 }))));
}

/// Goal: replays are rejected, reordering inside the window is accepted exactly once, and
/// envelopes below the window are rejected as too old.
/// Method: deliver a batch in reverse, then again; then jump past the window width.
#[test]
fn replay_reorder_and_too_old() {
    let mut pair = Pair::default_pair();
    pair.drive();
    let batch: Vec<Bytes> = (0..100u32)
        .map(|token| pair.send(INITIATOR, token, &Message::Ping { token: u64::from(token) }))
        .collect();
    for (token, bytes) in batch.iter().enumerate().rev() {
        assert_eq!(
            pair.deliver(RESPONDER, bytes.clone()),
            Ok(Some((token as u32, Message::Ping { token: token as u64 })))
        );
    }
    for (nonce, bytes) in batch.iter().enumerate() {
        assert_eq!(pair.deliver(RESPONDER, bytes.clone()), Err(SessionError::Replay { nonce: nonce as u64 }));
    }
    let late: Vec<Bytes> = (0..2100).map(|_| pair.send(INITIATOR, 0, &Message::Ping { token: 0 })).collect();
    // Nonces 100..2200 were used; 2199 arrives first, so 2199 - 2047 = 152 is the oldest
    // still inside the window.
    assert_eq!(pair.deliver(RESPONDER, late[2099].clone()), Ok(Some((0, Message::Ping { token: 0 }))));
    assert_eq!(
        pair.deliver(RESPONDER, late[51].clone()),
        Err(SessionError::TooOld { nonce: 151, nonce_highest: 2199 })
    );
    assert_eq!(pair.deliver(RESPONDER, late[52].clone()), Ok(Some((0, Message::Ping { token: 0 }))));
    assert_eq!(pair.deliver(RESPONDER, late[52].clone()), Err(SessionError::Replay { nonce: 152 }));
}

/// Goal: an initiator that expects another key refuses the responder, and tells it why.
/// Method: configure an unrelated expected key on the initiator.
#[test]
fn initiator_rejects_unexpected_responder_key() {
    let mut alpha = config("alpha", 1);
    let bravo = config("bravo", 2);
    alpha.expected_peer_keys = Some(BTreeSet::from([config("other", 3).identity.public]));
    let mut pair = Pair::new(alpha, bravo.clone(), [11, 12]);
    pair.drive();
    let error = HandshakeError::PeerKeyRejected { key: bravo.identity.public };
    assert_eq!(pair.sides[INITIATOR].errors, [SessionError::Handshake(error.clone())]);
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(error.clone())]);
    let refused = HandshakeError::PeerClosed { code: CloseCode::PeerKeyRejected, reason: error.to_string() };
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(refused)]);
    assert!(!pair.connection(INITIATOR).is_established());
    assert!(!pair.connection(RESPONDER).is_established());
    assert_eq!(pair.sent(INITIATOR, MessageType::Close), 1);
}

/// Goal: trust on first use. An initiator that knows the responder's name by another key
/// refuses it with PeerKeyRejected and a reason naming both keys; one that knows it by its
/// own key accepts it. Method: pin "bravo" to an unrelated key, then to bravo's key.
#[test]
fn a_pinned_name_with_another_key_is_refused() {
    let mut alpha = config("alpha", 1);
    let bravo = config("bravo", 2);
    let other = config("other", 3).identity.public;
    alpha.pinned_peer_keys.insert("bravo".to_owned(), other);
    let mut pair = Pair::new(alpha.clone(), bravo.clone(), [11, 12]);
    pair.drive();
    let error = HandshakeError::PinnedKeyMismatch {
        name: "bravo".to_owned(),
        presented: bravo.identity.public,
        known: other,
    };
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(error.clone())]);
    let refused = HandshakeError::PeerClosed { code: CloseCode::PeerKeyRejected, reason: error.to_string() };
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(refused)]);
    alpha.pinned_peer_keys.insert("bravo".to_owned(), bravo.identity.public);
    let mut pair = Pair::new(alpha, bravo, [11, 12]);
    pair.drive();
    assert!(pair.connection(INITIATOR).is_established());
}

/// Goal: one key, one name. A key pinned under a name cannot come back under another (a
/// trusted node could otherwise write as an origin that is not its own). Method: pin
/// bravo's key under "charlie", then let bravo present its own name.
#[test]
fn a_pinned_key_under_another_name_is_refused() {
    let mut alpha = config("alpha", 1);
    let bravo = config("bravo", 2);
    alpha.pinned_peer_keys.insert("charlie".to_owned(), bravo.identity.public);
    let mut pair = Pair::new(alpha, bravo.clone(), [11, 12]);
    pair.drive();
    let error = HandshakeError::PinnedNameMismatch {
        name: "bravo".to_owned(),
        key: bravo.identity.public,
        known_name: "charlie".to_owned(),
    };
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(error.clone())]);
    assert!(error.to_string().contains("which is known as \"charlie\""), "{error}");
    let refused = HandshakeError::PeerClosed { code: CloseCode::PeerKeyRejected, reason: error.to_string() };
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(refused)]);
}

/// Goal: a node that requires ids to be their names' hashes refuses a peer presenting
/// another node's id under its own name. Method: bravo claims alpha-two's id.
#[test]
fn an_id_that_is_not_the_name_hash_is_refused_when_required() {
    let mut alpha = config("alpha", 1);
    alpha.require_id_from_name = true;
    let mut bravo = config("bravo", 2);
    bravo.node_id = NodeId::from_name("alpha-two");
    let mut pair = Pair::new(alpha, bravo, [11, 12]);
    pair.drive();
    let error = HandshakeError::NodeIdNotFromName {
        name: "bravo".to_owned(),
        node_id: NodeId::from_name("alpha-two"),
        expected: NodeId::from_name("bravo"),
    };
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(error)]);
    assert!(!pair.connection(RESPONDER).is_established());
}

/// Goal: a responder that expects another key refuses the initiator after HelloFinish, with a
/// Close the already-established initiator can authenticate.
/// Method: configure an unrelated expected key on the responder.
#[test]
fn responder_rejects_unexpected_initiator_key() {
    let alpha = config("alpha", 1);
    let mut bravo = config("bravo", 2);
    bravo.expected_peer_keys = Some(BTreeSet::from([config("other", 3).identity.public]));
    let mut pair = Pair::new(alpha.clone(), bravo.clone(), [11, 12]);
    pair.drive();
    let error = HandshakeError::PeerKeyRejected { key: alpha.identity.public };
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(error.clone())]);
    assert_eq!(
        pair.sides[INITIATOR].events,
        [
            ConnectionEvent::Established(peer_of(&bravo)),
            ConnectionEvent::Closed { code: CloseCode::PeerKeyRejected, reason: error.to_string() },
        ]
    );
    assert!(!pair.connection(INITIATOR).is_established());
    assert!(!pair.connection(RESPONDER).is_established());
    assert_eq!(
        pair.connection(INITIATOR).send(0, &Message::Ping { token: 0 }),
        Err(SessionError::NotEstablished)
    );
}

/// Goal: ranges without overlap fail with both ranges named, and the initiator learns why
/// from a plaintext Close.
/// Method: initiator speaks 3..=4, responder 2..=2; inspect the Close on the wire.
#[test]
fn version_mismatch_names_both_ranges_and_sends_close() {
    let mut alpha = config("alpha", 1);
    alpha.versions = VersionRange::new(3, 4);
    let mut pair = Pair::new(alpha, config("bravo", 2), [11, 12]);
    pair.drive();
    let error =
        HandshakeError::VersionMismatch { ours: VersionRange::single(2), theirs: VersionRange::new(3, 4) };
    assert_eq!(error.to_string(), "no common protocol version: ours 2..=2, peer's 3..=4");
    assert_eq!(pair.sides[RESPONDER].errors, [SessionError::Handshake(error.clone())]);
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(error.clone())]);
    let close =
        pair.transcript.iter().find(|(index, _)| *index == RESPONDER).expect("responder answered").1.clone();
    let envelope = Envelope::decode(close).expect("valid envelope");
    assert_eq!(envelope.header, Header::plain(MessageType::Close, 0));
    assert_eq!(
        decode_payload(MessageType::Close, envelope.payload),
        Ok(Message::Close { code: CloseCode::VersionMismatch, reason: error.to_string() })
    );
    let refused = HandshakeError::PeerClosed { code: CloseCode::VersionMismatch, reason: error.to_string() };
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(refused)]);
    assert_eq!(pair.connection(INITIATOR).poll_timeout(), None);
}

/// Goal: the highest common version wins.
/// Method: overlapping ranges 1..=3 and 2..=5.
#[test]
fn highest_common_version_is_chosen() {
    let mut alpha = config("alpha", 1);
    alpha.versions = VersionRange::new(1, 3);
    let mut bravo = config("bravo", 2);
    bravo.versions = VersionRange::new(2, 5);
    let mut pair = Pair::new(alpha, bravo, [11, 12]);
    pair.drive();
    for index in [INITIATOR, RESPONDER] {
        assert_eq!(pair.connection(index).peer().map(|peer| peer.version), Some(3));
    }
    assert_eq!(pair.connection(INITIATOR).peer().map(|peer| peer.versions), Some(VersionRange::new(2, 5)));
}

/// Goal: a peer presenting our own node id is refused with DuplicateNodeId.
/// Method: two configs with the same name, hence the same id.
#[test]
fn duplicate_node_id_is_refused() {
    let mut pair = Pair::new(config("same", 1), config("same", 2), [11, 12]);
    pair.drive();
    let error = HandshakeError::DuplicateNodeId { node_id: NodeId::from_name("same") };
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(error.clone())]);
    let refused = HandshakeError::PeerClosed { code: CloseCode::DuplicateNodeId, reason: error.to_string() };
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(refused)]);
}

/// Goal: losing any one handshake message once still ends in a session on both sides.
/// Method: for each message, lose its first copy and drive; check who retransmitted.
#[test]
fn each_handshake_message_lost_once_recovers() {
    for (sender, lost) in [
        (INITIATOR, MessageType::Hello),
        (RESPONDER, MessageType::HelloAck),
        (INITIATOR, MessageType::HelloFinish),
    ] {
        let mut pair =
            Pair::with_drops(config("alpha", 1), config("bravo", 2), [11, 12], vec![(sender, lost)]);
        pair.drive();
        assert!(pair.drops.is_empty(), "{lost:?} was never sent");
        for index in [INITIATOR, RESPONDER] {
            assert!(pair.connection(index).is_established(), "{lost:?} lost: side {index} not established");
            assert!(
                !pair.connection(index).is_handshaking(),
                "{lost:?} lost: side {index} still handshaking"
            );
            assert!(pair.sides[index].errors.is_empty(), "{lost:?}: {:?}", pair.sides[index].errors);
            assert_eq!(pair.sides[index].events.len(), 1, "{lost:?}: {:?}", pair.sides[index].events);
        }
        assert!(pair.sent(sender, lost) >= 2, "{lost:?} was never retransmitted");
        assert_eq!(pair.now_ns, 250_000_000, "{lost:?} recovered after one retransmission interval");
        pair.assert_ping_both_ways();
    }
}

/// Goal: a handshake nobody answers fails cleanly after the timeout, with a bounded number of
/// retransmissions, and can be started again.
/// Method: lose everything, drive to quiescence, then heal and restart.
#[test]
fn handshake_times_out_and_restarts() {
    let mut pair = Pair::default_pair();
    pair.blackhole = true;
    pair.drive();
    let error = HandshakeError::Timeout { timeout_ns: HANDSHAKE_TIMEOUT_NS_DEFAULT };
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(error)]);
    assert_eq!(pair.now_ns, HANDSHAKE_TIMEOUT_NS_DEFAULT);
    // One send at 0 and one every 250 ms before the 5 s deadline.
    assert_eq!(pair.sent(INITIATOR, MessageType::Hello), 20);
    assert!(!pair.connection(INITIATOR).is_handshaking());
    assert_eq!(pair.connection(INITIATOR).poll_timeout(), None);

    pair.blackhole = false;
    let now_ns = pair.now_ns;
    let side = &mut pair.sides[INITIATOR];
    side.connection.start_handshake(now_ns, &mut side.rng);
    pair.collect(INITIATOR);
    pair.drive();
    assert!(pair.connection(INITIATOR).is_established());
    assert!(pair.connection(RESPONDER).is_established());
}

/// Goal: a responder whose HelloFinish never comes times out too, leaving no state behind.
/// Method: lose every HelloFinish and every Hello retransmission path by blackholing after
/// HelloAck is sent.
#[test]
fn responder_attempt_times_out() {
    let mut pair = Pair::default_pair();
    let hello = pair.in_flight[RESPONDER].pop_front().expect("hello in flight");
    assert_eq!(pair.deliver(RESPONDER, hello), Ok(None));
    pair.blackhole = true;
    pair.in_flight = [VecDeque::new(), VecDeque::new()];
    pair.drive();
    let error = HandshakeError::Timeout { timeout_ns: HANDSHAKE_TIMEOUT_NS_DEFAULT };
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(error)]);
    assert_eq!(pair.sent(RESPONDER, MessageType::HelloAck), 20);
    assert!(!pair.connection(RESPONDER).is_handshaking());
}

/// Goal: a peer that restarts and handshakes again replaces the session, while the old
/// session keeps working until then and its in-flight envelopes are still read afterwards.
/// Method: establish, then start a fresh initiator with the same identity against the same
/// responder, exchanging old-session traffic during and after the new handshake.
#[test]
fn restarted_peer_replaces_the_session() {
    let alpha = config("alpha", 1);
    let bravo = config("bravo", 2);
    let mut pair = Pair::new(alpha.clone(), bravo, [11, 12]);
    pair.drive();
    let mut restarted_rng = ChaCha20Rng::seed_from_u64(99);
    let mut restarted =
        Connection::new(Arc::new(alpha.clone()), Role::Initiator, pair.now_ns, &mut restarted_rng)
            .expect("valid config");
    let hello = restarted.poll_transmit().expect("hello");
    assert_eq!(pair.deliver(RESPONDER, hello), Ok(None));
    assert!(pair.connection(RESPONDER).is_handshaking());
    let hello_ack = pair.in_flight[INITIATOR].pop_back().expect("hello ack");

    // The old session still works both ways during the new handshake.
    pair.assert_ping_both_ways();
    let in_flight_old = pair.send(INITIATOR, 5, &Message::Ping { token: 5 });

    assert_eq!(restarted.handle_frame(pair.now_ns, hello_ack, &mut restarted_rng), Ok(None));
    assert_eq!(
        restarted.poll_event(),
        Some(ConnectionEvent::Established(pair.connection(INITIATOR).peer().cloned().expect("peer")))
    );
    let hello_finish = restarted.poll_transmit().expect("hello finish");
    assert_eq!(pair.deliver(RESPONDER, hello_finish), Ok(None));
    assert_eq!(
        pair.sides[RESPONDER].events.last(),
        Some(&ConnectionEvent::Replaced { previous: peer_of(&alpha), current: peer_of(&alpha) })
    );
    assert!(!pair.connection(RESPONDER).is_handshaking());

    // An envelope the old session sent before the switch is still read...
    assert_eq!(pair.deliver(RESPONDER, in_flight_old), Ok(Some((5, Message::Ping { token: 5 }))));
    // ...until the new session carries its first envelope.
    let ping = restarted.send(6, &Message::Ping { token: 6 }).expect("established");
    assert_eq!(pair.deliver(RESPONDER, ping), Ok(Some((6, Message::Ping { token: 6 }))));
    let late_old = pair.send(INITIATOR, 7, &Message::Ping { token: 7 });
    assert_eq!(pair.deliver(RESPONDER, late_old), Err(SessionError::Decrypt { nonce: 2 }));
    let pong = pair.send(RESPONDER, 8, &Message::Pong { token: 8 });
    assert_eq!(
        restarted.handle_frame(pair.now_ns, pong, &mut restarted_rng),
        Ok(Some((8, Message::Pong { token: 8 })))
    );
}

/// Goal: a Responder-role peer that lost its session recovers it by initiating, as the call
/// order prescribes after NoSession, and the Initiator-role end answers while established.
/// Method: replace the responder with a fresh one, deliver old-session traffic to it, follow
/// the NoSession advice and drive.
#[test]
fn restarted_responder_recovers_through_no_session() {
    let alpha = config("alpha", 1);
    let bravo = config("bravo", 2);
    let mut pair = Pair::new(alpha, bravo.clone(), [11, 12]);
    pair.drive();
    let side = &mut pair.sides[RESPONDER];
    side.connection =
        Connection::new(Arc::new(bravo.clone()), Role::Responder, 0, &mut side.rng).expect("valid");
    side.events.clear();
    let ping = pair.send(INITIATOR, 1, &Message::Ping { token: 1 });
    assert_eq!(pair.deliver(RESPONDER, ping), Err(SessionError::NoSession));
    let now_ns = pair.now_ns;
    let side = &mut pair.sides[RESPONDER];
    side.connection.start_handshake(now_ns, &mut side.rng);
    pair.collect(RESPONDER);
    pair.drive();
    assert_eq!(pair.sides[RESPONDER].events.len(), 1);
    assert!(matches!(pair.sides[RESPONDER].events[0], ConnectionEvent::Established(_)));
    assert_eq!(
        pair.sides[INITIATOR].events.last(),
        Some(&ConnectionEvent::Replaced { previous: peer_of(&bravo), current: peer_of(&bravo) })
    );
    assert_eq!(pair.sent(INITIATOR, MessageType::HelloAck), 1, "the Initiator answered as responder");
    pair.assert_ping_both_ways();
}

/// Goal: our own Hello reflected back at us is never answered, during an attempt or after.
/// Method: hand the initiator its own Hello before and after establishment.
#[test]
fn reflected_hello_is_ignored() {
    let mut pair = Pair::default_pair();
    let hello = pair.in_flight[RESPONDER].front().cloned().expect("hello");
    assert_eq!(pair.deliver(INITIATOR, hello.clone()), Ok(None));
    assert!(pair.in_flight[RESPONDER].len() == 1 && pair.in_flight[INITIATOR].is_empty());
    pair.drive();
    assert_eq!(pair.deliver(INITIATOR, hello), Ok(None));
    assert!(pair.in_flight.iter().all(VecDeque::is_empty));
    assert!(!pair.connection(INITIATOR).is_handshaking());
    pair.assert_ping_both_ways();
}

/// Goal: a Connection can move between threads (the TCP node runs links on tasks).
#[test]
fn connection_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Connection>();
}

/// Goal: repeats of handshake messages never disturb an established session.
/// Method: deliver every handshake frame of the transcript again to its receiver after
/// establishment; only a HelloAck repeat before the responder has spoken earns a HelloFinish
/// resend.
#[test]
fn duplicate_handshake_messages_after_establishment_are_harmless() {
    let mut pair = Pair::default_pair();
    pair.drive();
    let transcript = pair.transcript.clone();
    let hello_ack = transcript[1].1.clone();
    assert_eq!(pair.deliver(INITIATOR, hello_ack.clone()), Ok(None));
    assert_eq!(pair.in_flight[RESPONDER].len(), 1, "HelloFinish resent while unconfirmed");
    pair.drive();
    pair.assert_ping_both_ways();
    let events = pair.sides.each_ref().map(|side| side.events.clone());
    for (sender, bytes) in &transcript {
        assert_eq!(pair.deliver(1 - sender, bytes.clone()), Ok(None));
    }
    assert!(pair.in_flight.iter().all(VecDeque::is_empty), "a repeat was answered: {:?}", pair.in_flight);
    assert_eq!(pair.sides.each_ref().map(|side| side.events.clone()), events);
    assert!(pair.sides.iter().all(|side| !side.connection.is_handshaking()));
    pair.assert_ping_both_ways();
}

/// Goal: the handshake is a pure function of the configurations and the RNG seeds.
/// Method: run it twice with equal seeds and once with another seed; compare transcripts.
#[test]
fn same_seed_same_transcript() {
    let run = |seeds| {
        let mut pair = Pair::new(config("alpha", 1), config("bravo", 2), seeds);
        pair.drive();
        let ping = pair.send(INITIATOR, 1, &Message::Ping { token: 1 });
        let mut transcript = pair.transcript;
        transcript.push((INITIATOR, ping));
        transcript
    };
    let first = run([11, 12]);
    assert_eq!(first, run([11, 12]));
    assert_ne!(first[0], run([13, 12])[0]);
    assert_ne!(first[1], run([11, 14])[1]);
}

/// Goal: when both ends initiate at once, the Responder role yields and one session results.
/// Method: the responder starts its own handshake at time 0; the Hellos cross.
#[test]
fn simultaneous_initiation_is_broken_by_role() {
    let mut pair = Pair::default_pair();
    let side = &mut pair.sides[RESPONDER];
    side.connection.start_handshake(0, &mut side.rng);
    pair.collect(RESPONDER);
    assert_eq!(pair.in_flight.each_ref().map(VecDeque::len), [1, 1]);
    pair.drive();
    for index in [INITIATOR, RESPONDER] {
        assert_eq!(pair.sides[index].events.len(), 1, "{:?}", pair.sides[index].events);
        assert!(matches!(pair.sides[index].events[0], ConnectionEvent::Established(_)));
        assert!(!pair.connection(index).is_handshaking());
    }
    assert_eq!(pair.sent(INITIATOR, MessageType::HelloAck), 0, "the Initiator never answered");
    pair.assert_ping_both_ways();
}

/// Goal: each kind of misplaced envelope gets its own error.
/// Method: encrypted traffic without a session (idle and mid-handshake), plaintext application
/// messages, an encrypted handshake message, a plaintext Close outside a handshake, and sends
/// that cannot work.
#[test]
fn misplaced_envelopes_get_distinct_errors() {
    let mut pair = Pair::default_pair();
    pair.drive();
    let ping = pair.send(INITIATOR, 1, &Message::Ping { token: 1 });

    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut idle =
        Connection::new(Arc::new(config("charlie", 3)), Role::Responder, 0, &mut rng).expect("valid");
    assert_eq!(idle.handle_frame(0, ping.clone(), &mut rng), Err(SessionError::NoSession));
    assert_eq!(idle.send(1, &Message::Ping { token: 1 }), Err(SessionError::NotEstablished));
    idle.start_handshake(0, &mut rng);
    assert_eq!(idle.handle_frame(0, ping, &mut rng), Err(SessionError::HandshakeInProgress));

    let plain_ping = Envelope::encode(&Header::plain(MessageType::Ping, 1), &[1]);
    assert_eq!(
        pair.deliver(RESPONDER, plain_ping),
        Err(SessionError::Unencrypted { message_type: MessageType::Ping })
    );
    let close = Message::Close { code: CloseCode::Shutdown, reason: "bye".into() }.payload_bytes();
    let plain_close = Envelope::encode(&Header::plain(MessageType::Close, 0), &close);
    assert_eq!(
        pair.deliver(RESPONDER, plain_close),
        Err(SessionError::Unencrypted { message_type: MessageType::Close })
    );
    let encrypted_hello = Envelope::encode(&Header::encrypted(MessageType::Hello, 0, 0), &[0; 48]);
    assert_eq!(
        pair.deliver(RESPONDER, encrypted_hello),
        Err(SessionError::EncryptedHandshake { message_type: MessageType::Hello })
    );
    assert_eq!(
        pair.connection(INITIATOR).send(0, &Message::Hello { noise: Bytes::from_static(b"x") }),
        Err(SessionError::NotApplication { message_type: MessageType::Hello })
    );
    assert!(pair.connection(RESPONDER).is_established());
    pair.assert_ping_both_ways();
}

/// Goal: garbage handshake messages are refused without touching an attempt or a session.
/// Method: a short Hello, a forged HelloAck during an attempt, then the real one.
#[test]
fn unreadable_handshake_messages_change_nothing() {
    let mut pair = Pair::default_pair();
    let short_hello = Envelope::encode(&Header::plain(MessageType::Hello, 0), &[1; 8]);
    assert_eq!(
        pair.deliver(RESPONDER, short_hello),
        Err(SessionError::Handshake(HandshakeError::Noise {
            message_type: MessageType::Hello,
            reason: "malformed message"
        }))
    );
    let hello = pair.in_flight[RESPONDER].pop_front().expect("hello");
    assert_eq!(pair.deliver(RESPONDER, hello), Ok(None));
    let hello_ack = pair.in_flight[INITIATOR].pop_front().expect("hello ack");
    let mut forged = hello_ack.to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        pair.deliver(INITIATOR, Bytes::from(forged)),
        Err(SessionError::Handshake(HandshakeError::Noise {
            message_type: MessageType::HelloAck,
            reason: "authentication failed"
        }))
    );
    assert!(pair.sides.iter().all(|side| side.events.is_empty()));
    assert_eq!(pair.deliver(INITIATOR, hello_ack), Ok(None));
    pair.drive();
    pair.assert_ping_both_ways();
}

/// Goal: an authenticated Close ends the session on both ends.
/// Method: the initiator sends Close; the responder returns it and reports Closed.
#[test]
fn authenticated_close_ends_the_session() {
    let mut pair = Pair::default_pair();
    pair.drive();
    let close = Message::Close { code: CloseCode::Shutdown, reason: "maintenance".into() };
    let bytes = pair.send(INITIATOR, 9, &close);
    assert!(!pair.connection(INITIATOR).is_established());
    assert_eq!(pair.deliver(RESPONDER, bytes), Ok(Some((9, close))));
    assert_eq!(
        pair.sides[RESPONDER].events.last(),
        Some(&ConnectionEvent::Closed { code: CloseCode::Shutdown, reason: "maintenance".into() })
    );
    assert!(!pair.connection(RESPONDER).is_established());
}

/// Goal: the sender refuses to use counter u64::MAX.
/// Method: move the send counter to the end and send twice.
#[test]
fn send_refuses_the_last_counter() {
    let mut pair = Pair::default_pair();
    pair.drive();
    pair.connection(INITIATOR).transport_mut().expect("session").set_send_counter_next(u64::MAX - 1);
    let last = pair.send(INITIATOR, 0, &Message::Ping { token: 0 });
    assert_eq!(
        pair.connection(INITIATOR).send(0, &Message::Ping { token: 0 }),
        Err(SessionError::NonceExhausted)
    );
    assert_eq!(pair.deliver(RESPONDER, last), Ok(Some((0, Message::Ping { token: 0 }))));
}

/// Builds a frame with a valid header of the given type and flags around `payload`.
fn framed(code: u8, encrypted: bool, nonce: u64, payload: &[u8]) -> Bytes {
    let message_type = MessageType::from_code(code).expect("valid code");
    let header =
        if encrypted { Header::encrypted(message_type, 0, nonce) } else { Header::plain(message_type, 0) };
    Envelope::encode(&header, payload)
}

proptest! {
    /// Goal: no bytes from the wire make a connection panic, whatever its state.
    /// Method: feed arbitrary frames, and arbitrary payloads behind valid headers, to a fresh
    /// responder, an initiator mid-handshake and an established pair; the established session
    /// must still work afterwards.
    #[test]
    fn arbitrary_bytes_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        code in 1u8..=11,
        encrypted: bool,
        nonce in prop_oneof![0u64..4, any::<u64>()],
    ) {
        let frames = [Bytes::from(raw.clone()), framed(code, encrypted, nonce, &raw)];
        let mut pair = Pair::default_pair();
        for frame in &frames {
            let _ = pair.deliver(RESPONDER, frame.clone());
            let _ = pair.deliver(INITIATOR, frame.clone());
        }
        let mut pair = Pair::default_pair();
        pair.drive();
        for frame in &frames {
            let result = pair.deliver(RESPONDER, frame.clone());
            prop_assert!(!matches!(result, Ok(Some(_))), "forged frame accepted: {result:?}");
            let _ = pair.deliver(INITIATOR, frame.clone());
        }
        pair.in_flight = [VecDeque::new(), VecDeque::new()];
        if pair.connection(INITIATOR).is_established() && pair.connection(RESPONDER).is_established() {
            pair.assert_ping_both_ways();
        }
    }
}

// ---- Cluster secret (PROTOCOL.md 6.10) ----

const SECRET_A: [u8; 32] = [0xa5; 32];
const SECRET_B: [u8; 32] = [0x5b; 32];

fn psk_config(name: &str, seed: u64, psk: Option<[u8; 32]>) -> SessionConfig {
    let mut config = config(name, seed);
    config.psk = psk;
    config
}

fn has_psk_flag(bytes: &[u8]) -> bool {
    Envelope::decode(Bytes::copy_from_slice(bytes)).expect("valid envelope").header.flags.psk()
}

/// The plaintext Close `sender` put on the wire, decoded.
fn plain_close_sent(pair: &Pair, sender: usize) -> Option<(CloseCode, String)> {
    pair.transcript.iter().filter(|(index, _)| *index == sender).find_map(|(_, bytes)| {
        let envelope = Envelope::decode(bytes.clone()).ok()?;
        (envelope.header == Header::plain(MessageType::Close, 0)).then_some(())?;
        match decode_payload(MessageType::Close, envelope.payload) {
            Ok(Message::Close { code, reason }) => Some((code, reason)),
            _ => None,
        }
    })
}

/// Goal: two ends with the same secret get a session; the initiator uses it only once the
/// responder proved it read HelloFinish with that secret.
/// Method: drive the handshake; check the flags and sizes of the three messages, that the
/// initiator waits (no session, no event) until the responder's first envelope, then that
/// envelope is delivered and both sessions work.
#[test]
fn psk_handshake_with_matching_secrets_makes_a_session() {
    let alpha = psk_config("alpha", 1, Some(SECRET_A));
    let bravo = psk_config("bravo", 2, Some(SECRET_A));
    let mut pair = Pair::new(alpha.clone(), bravo.clone(), [11, 12]);
    while pair.in_flight.iter().any(|queue| !queue.is_empty()) {
        pair.step();
    }
    let kinds: Vec<_> = pair.transcript.iter().map(|(index, bytes)| (*index, message_type(bytes))).collect();
    assert_eq!(
        kinds,
        [
            (INITIATOR, Some(MessageType::Hello)),
            (RESPONDER, Some(MessageType::HelloAck)),
            (INITIATOR, Some(MessageType::HelloFinish)),
        ]
    );
    assert!(pair.transcript.iter().all(|(_, bytes)| has_psk_flag(bytes)));
    // Hello: header, ephemeral key, the two-byte payload and, in a psk pattern, its tag.
    assert_eq!(pair.transcript[0].1.len(), 9 + 32 + 2 + 16);
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::Established(peer_of(&alpha))]);
    assert!(pair.sides[INITIATOR].events.is_empty(), "{:?}", pair.sides[INITIATOR].events);
    assert!(!pair.connection(INITIATOR).is_established());
    assert!(pair.connection(INITIATOR).is_handshaking());
    assert_eq!(
        pair.connection(INITIATOR).send(1, &Message::Ping { token: 1 }),
        Err(SessionError::NotEstablished)
    );

    let pull = Message::OutboxPull { vector: crate::entry::VersionVector::new() };
    let bytes = pair.send(RESPONDER, 5, &pull);
    assert_eq!(pair.deliver(INITIATOR, bytes), Ok(Some((5, pull))));
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::Established(peer_of(&bravo))]);
    assert!(!pair.connection(INITIATOR).is_handshaking());
    assert_eq!(pair.connection(INITIATOR).poll_timeout(), None);
    assert_eq!(pair.connection(INITIATOR).session_id(), pair.connection(RESPONDER).session_id());
    pair.assert_ping_both_ways();
    assert!(pair.sides.iter().all(|side| side.errors.is_empty()));
}

/// Goal: the same keys without a secret, with a secret, and with another secret make three
/// different sessions: the secret is really mixed into the keys.
/// Method: one seed pair, three runs; compare session ids and HelloFinish bytes.
#[test]
fn the_secret_changes_the_session_keys() {
    let session = |psk| {
        let mut pair = Pair::new(psk_config("alpha", 1, psk), psk_config("bravo", 2, psk), [11, 12]);
        pair.drive();
        let finish = pair
            .transcript
            .iter()
            .find(|(_, bytes)| message_type(bytes) == Some(MessageType::HelloFinish))
            .map(|(_, bytes)| bytes.clone());
        (pair.connection(RESPONDER).session_id().expect("responder session"), finish.expect("finish"))
    };
    let (plain, with_a, with_b) = (session(None), session(Some(SECRET_A)), session(Some(SECRET_B)));
    assert_ne!(plain.0, with_a.0);
    assert_ne!(with_a.0, with_b.0);
    assert_ne!(with_a.1, with_b.1);
}

/// Goal: different secrets are refused, with the reason on both sides and nothing left
/// behind: no session, no attempt, no timer.
/// Method: drive a pair whose secrets differ; the responder cannot read HelloFinish and says
/// so in a plaintext Close, which ends the initiator's wait at once.
#[test]
fn different_secrets_are_refused_on_both_sides() {
    let alpha = psk_config("alpha", 1, Some(SECRET_A));
    let mut pair = Pair::new(alpha.clone(), psk_config("bravo", 2, Some(SECRET_B)), [11, 12]);
    pair.drive();
    let error = HandshakeError::PskMismatch { key: alpha.identity.public };
    assert!(error.to_string().starts_with("the cluster secret does not match"), "{error}");
    assert_eq!(pair.sides[RESPONDER].errors, [SessionError::Handshake(error.clone())]);
    assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(error.clone())]);
    assert_eq!(plain_close_sent(&pair, RESPONDER), Some((CloseCode::PskMismatch, error.to_string())));
    let refused = HandshakeError::PeerClosed { code: CloseCode::PskMismatch, reason: error.to_string() };
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(refused)]);
    assert_eq!(pair.now_ns, 0, "refused at once, not by a timeout");
    for index in [INITIATOR, RESPONDER] {
        assert!(!pair.connection(index).is_established());
        assert!(!pair.connection(index).is_handshaking());
        assert_eq!(pair.connection(index).poll_timeout(), None);
    }
}

/// Goal: a secret on one side only is refused before any cryptography, both ways, with a
/// reason naming which side lacks it.
/// Method: drive both pairings; the responder refuses the Hello by its PSK flag and never
/// sends HelloAck.
#[test]
fn secret_against_none_is_refused_both_ways() {
    for (initiator_psk, responder_psk) in [(Some(SECRET_A), None), (None, Some(SECRET_A))] {
        let mut pair =
            Pair::new(psk_config("alpha", 1, initiator_psk), psk_config("bravo", 2, responder_psk), [11, 12]);
        pair.drive();
        let error = if initiator_psk.is_some() {
            HandshakeError::PeerHasPsk { message_type: MessageType::Hello }
        } else {
            HandshakeError::PeerLacksPsk { message_type: MessageType::Hello }
        };
        assert!(error.to_string().starts_with("the cluster secret does not match"), "{error}");
        assert_eq!(pair.sides[RESPONDER].events, [ConnectionEvent::HandshakeFailed(error.clone())]);
        assert_eq!(pair.sent(RESPONDER, MessageType::HelloAck), 0);
        assert_eq!(plain_close_sent(&pair, RESPONDER), Some((CloseCode::PskMismatch, error.to_string())));
        let refused = HandshakeError::PeerClosed { code: CloseCode::PskMismatch, reason: error.to_string() };
        assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(refused)]);
        assert_eq!(pair.now_ns, 0);
        assert!(!pair.connection(INITIATOR).is_handshaking() && !pair.connection(RESPONDER).is_handshaking());
    }
}

/// Goal: an initiator with a secret refuses a HelloAck without the PSK flag, and one without
/// a secret a HelloAck with it; a HelloFinish whose flag differs is ignored.
/// Method: flip the flag of real HelloAck and HelloFinish envelopes before delivering them.
#[test]
fn a_flag_that_disagrees_later_in_the_handshake_is_refused_or_ignored() {
    let flip = |bytes: &Bytes| {
        let mut bytes = bytes.to_vec();
        bytes[8] ^= 0b10;
        Bytes::from(bytes)
    };
    for psk in [Some(SECRET_A), None] {
        let mut pair = Pair::new(psk_config("alpha", 1, psk), psk_config("bravo", 2, psk), [11, 12]);
        let hello = pair.in_flight[RESPONDER].pop_front().expect("hello");
        assert_eq!(pair.deliver(RESPONDER, hello), Ok(None));
        let hello_ack = pair.in_flight[INITIATOR].pop_front().expect("hello ack");
        let error = if psk.is_some() {
            HandshakeError::PeerLacksPsk { message_type: MessageType::HelloAck }
        } else {
            HandshakeError::PeerHasPsk { message_type: MessageType::HelloAck }
        };
        assert_eq!(pair.deliver(INITIATOR, flip(&hello_ack)), Err(SessionError::Handshake(error.clone())));
        assert_eq!(plain_close_sent(&pair, INITIATOR), Some((CloseCode::PskMismatch, error.to_string())));
        assert!(!pair.connection(INITIATOR).is_handshaking());

        let mut pair = Pair::new(psk_config("alpha", 1, psk), psk_config("bravo", 2, psk), [11, 12]);
        let hello = pair.in_flight[RESPONDER].pop_front().expect("hello");
        assert_eq!(pair.deliver(RESPONDER, hello), Ok(None));
        let hello_ack = pair.in_flight[INITIATOR].pop_front().expect("hello ack");
        assert_eq!(pair.deliver(INITIATOR, hello_ack), Ok(None));
        let finish = pair.in_flight[RESPONDER].pop_front().expect("hello finish");
        assert_eq!(pair.deliver(RESPONDER, flip(&finish)), Ok(None));
        assert!(pair.connection(RESPONDER).is_handshaking() && !pair.connection(RESPONDER).is_established());
        assert_eq!(pair.deliver(RESPONDER, finish), Ok(None));
        assert!(pair.connection(RESPONDER).is_established());
    }
}

/// Goal: an initiator whose confirmation never comes (the refusal was lost) gives up after
/// the handshake timeout, with nothing left behind, and a lost HelloFinish still recovers.
/// Method: lose the responder's Close; then, in a second pair with equal secrets, lose the
/// first HelloFinish.
#[test]
fn psk_initiator_times_out_without_confirmation_and_recovers_a_lost_finish() {
    let mut pair = Pair::with_drops(
        psk_config("alpha", 1, Some(SECRET_A)),
        psk_config("bravo", 2, Some(SECRET_B)),
        [11, 12],
        vec![(RESPONDER, MessageType::Close)],
    );
    pair.drive();
    let timeout = HandshakeError::Timeout { timeout_ns: HANDSHAKE_TIMEOUT_NS_DEFAULT };
    assert_eq!(pair.sides[INITIATOR].events, [ConnectionEvent::HandshakeFailed(timeout)]);
    assert_eq!(pair.now_ns, HANDSHAKE_TIMEOUT_NS_DEFAULT);
    assert_eq!(pair.sent(INITIATOR, MessageType::HelloFinish), 1, "HelloFinish is never repeated on a timer");
    assert!(!pair.connection(INITIATOR).is_handshaking());

    let mut pair = Pair::with_drops(
        psk_config("alpha", 1, Some(SECRET_A)),
        psk_config("bravo", 2, Some(SECRET_A)),
        [11, 12],
        vec![(INITIATOR, MessageType::HelloFinish)],
    );
    while !pair.connection(RESPONDER).is_established() {
        assert!(pair.step(), "the responder's repeated HelloAck brings HelloFinish again");
    }
    assert_eq!(pair.now_ns, 250_000_000);
    let bytes = pair.send(RESPONDER, 1, &Message::Ping { token: 3 });
    assert_eq!(pair.deliver(INITIATOR, bytes), Ok(Some((1, Message::Ping { token: 3 }))));
    assert!(pair.connection(INITIATOR).is_established());
    pair.assert_ping_both_ways();
}

/// Builds a plaintext handshake or Close frame with the PSK flag set.
fn framed_psk(code: u8, payload: &[u8]) -> Bytes {
    let message_type = MessageType::from_code(code).expect("valid code");
    let flags = crate::envelope::Flags::NONE.with_psk(true);
    Envelope::encode(&Header { flags, ..Header::plain(message_type, 0) }, payload)
}

proptest! {
    /// Goal: no bytes make a connection with a cluster secret panic, whatever its state:
    /// fresh, mid-handshake, waiting for confirmation, or established; and none is accepted
    /// as an application message.
    /// Method: arbitrary frames, arbitrary payloads behind plain, PSK-flagged and encrypted
    /// headers, delivered to pairs with matching and with different secrets at each stage.
    #[test]
    fn arbitrary_bytes_never_panic_with_a_secret(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        code in 1u8..=11,
        encrypted: bool,
        nonce in prop_oneof![0u64..4, any::<u64>()],
        same_secret: bool,
        stage in 0usize..4,
    ) {
        let frames = [
            Bytes::from(raw.clone()),
            framed(code, encrypted, nonce, &raw),
            framed_psk(1 + code % 3, &raw),
        ];
        let responder_psk = if same_secret { SECRET_A } else { SECRET_B };
        let mut pair = Pair::new(
            psk_config("alpha", 1, Some(SECRET_A)),
            psk_config("bravo", 2, Some(responder_psk)),
            [11, 12],
        );
        for _ in 0..stage {
            pair.step();
        }
        for frame in &frames {
            let result = pair.deliver(RESPONDER, frame.clone());
            prop_assert!(!matches!(result, Ok(Some(_))), "forged frame accepted: {result:?}");
            let result = pair.deliver(INITIATOR, frame.clone());
            prop_assert!(!matches!(result, Ok(Some(_))), "forged frame accepted: {result:?}");
        }
        pair.drive();
        prop_assert!(!pair.connection(INITIATOR).is_handshaking());
    }
}

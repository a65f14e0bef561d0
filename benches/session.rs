//! Session throughput: complete handshakes per second with both ends in memory, envelope
//! encode+decode with and without encryption for small and large payloads, and the cost of
//! an entry's signature (PROTOCOL.md 8.13) beside a bare Ed25519 verification.
//!
//! Run: `cargo bench --bench session -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry_protocol::seal::SealTree;
use ferry_protocol::session::{Identity, NOISE_PATTERN, PROLOGUE, Role, SessionConfig};
use ferry_protocol::{
    Connection, Envelope, Header, Message, NodeId, Operation, Timestamp, WalEntry, decode_payload,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Payload sizes measured, in bytes.
const PAYLOAD_BYTES: [usize; 2] = [64, 16 * 1024];

fn configs() -> (Arc<SessionConfig>, Arc<SessionConfig>) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let initiator = SessionConfig::new("alpha", Identity::generate(&mut rng));
    let responder = SessionConfig::new("bravo", Identity::generate(&mut rng));
    (Arc::new(initiator), Arc::new(responder))
}

/// Runs one complete handshake between two fresh connections.
fn handshake(
    initiator_config: &Arc<SessionConfig>,
    responder_config: &Arc<SessionConfig>,
    rng: &mut ChaCha20Rng,
) -> (Connection, Connection) {
    let mut initiator = Connection::new(initiator_config.clone(), Role::Initiator, 0, rng).expect("valid");
    let mut responder = Connection::new(responder_config.clone(), Role::Responder, 0, rng).expect("valid");
    let hello = initiator.poll_transmit().expect("hello");
    responder.handle_frame(0, hello, rng).expect("hello accepted");
    let hello_ack = responder.poll_transmit().expect("hello ack");
    initiator.handle_frame(0, hello_ack, rng).expect("hello ack accepted");
    let hello_finish = initiator.poll_transmit().expect("hello finish");
    responder.handle_frame(0, hello_finish, rng).expect("hello finish accepted");
    assert!(initiator.is_established() && responder.is_established());
    (initiator, responder)
}

/// The yardstick: a bare snow XX handshake with the same pattern, prologue and static
/// keys, empty payloads and no framing; snow's default resolver draws the ephemerals.
fn raw_snow_handshake(initiator: &SessionConfig, responder: &SessionConfig) -> [u8; 32] {
    let params: snow::params::NoiseParams = NOISE_PATTERN.parse().expect("a valid pattern");
    fn build<'a>(params: &snow::params::NoiseParams, config: &'a SessionConfig) -> snow::Builder<'a> {
        snow::Builder::new(params.clone())
            .local_private_key(&config.identity.secret)
            .and_then(|builder| builder.prologue(PROLOGUE))
            .expect("valid keys and prologue")
    }
    let mut alpha = build(&params, initiator).build_initiator().expect("an initiator");
    let mut bravo = build(&params, responder).build_responder().expect("a responder");
    let (mut message, mut payload) = ([0u8; 128], [0u8; 128]);
    let length = alpha.write_message(&[], &mut message).expect("e");
    bravo.read_message(&message[..length], &mut payload).expect("e");
    let length = bravo.write_message(&[], &mut message).expect("e, ee, s, es");
    alpha.read_message(&message[..length], &mut payload).expect("e, ee, s, es");
    let length = alpha.write_message(&[], &mut message).expect("s, se");
    bravo.read_message(&message[..length], &mut payload).expect("s, se");
    let mut hash = [0u8; 32];
    hash.copy_from_slice(bravo.get_handshake_hash());
    hash
}

fn bench_handshake(criterion: &mut Criterion) {
    let (initiator_config, responder_config) = configs();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut group = criterion.benchmark_group("session");
    group.throughput(Throughput::Elements(1));
    group.bench_function("handshake", |bencher| {
        bencher.iter(|| black_box(handshake(&initiator_config, &responder_config, &mut rng)));
    });
    group.bench_function("raw_snow_xx", |bencher| {
        bencher.iter(|| black_box(raw_snow_handshake(&initiator_config, &responder_config)));
    });
    group.finish();
}

/// A message whose payload encoding is exactly `payload_bytes` long: a WalPush of one put of
/// key "k" for the large sizes, else (64 bytes) an OutboxPull of four origins, three of them
/// ten-byte varints at ten-byte positions: about as cheap to decode as one small entry, and
/// the message this size has measured since entries were first signed.
fn payload_of(payload_bytes: usize) -> Message {
    let message = if payload_bytes < 200 {
        assert_eq!(payload_bytes, 64, "the small case is built for 64 bytes");
        let mut vector = ferry_protocol::VersionVector::new();
        vector.set(NodeId(1), 128);
        for origin in [u64::MAX - 2, u64::MAX - 1, u64::MAX] {
            vector.set(NodeId(origin), u64::MAX);
        }
        Message::OutboxPull { vector }
    } else {
        // count, origin, sequence, timestamp, operation, key length, key: 7 bytes, then the
        // value's length varint and the value, then the proof tag (none).
        let fixed_bytes = 7 + 1;
        let length_bytes = if payload_bytes - fixed_bytes - 1 < 128 { 1 } else { 2 };
        let value = Bytes::from(vec![0xab; payload_bytes - fixed_bytes - length_bytes]);
        let operation = Operation::Put { key: Bytes::from_static(b"k"), value };
        Message::WalPush { entries: vec![WalEntry::new(NodeId(1), 1, Timestamp(1), operation)] }
    };
    assert_eq!(message.payload_bytes().len(), payload_bytes);
    message
}

fn bench_envelopes(criterion: &mut Criterion) {
    let (initiator_config, responder_config) = configs();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (mut sender, mut receiver) = handshake(&initiator_config, &responder_config, &mut rng);
    let mut group = criterion.benchmark_group("envelope");
    for payload_bytes in PAYLOAD_BYTES {
        let message = payload_of(payload_bytes);
        let message_type = message.message_type();
        let payload = message.payload_bytes();
        group.throughput(Throughput::Bytes(payload_bytes as u64));

        // Header only: build the frame contents and parse the header back.
        group.bench_with_input(BenchmarkId::new("plaintext", payload_bytes), &payload, |bencher, payload| {
            bencher.iter(|| {
                let bytes = Envelope::encode(&Header::plain(message_type, 1), payload);
                black_box(Envelope::decode(bytes).expect("valid"))
            });
        });
        // As above plus the message codec, the part `send` and `handle_envelope` add besides
        // the cipher.
        group.bench_with_input(
            BenchmarkId::new("plaintext_codec", payload_bytes),
            &message,
            |bencher, message| {
                bencher.iter(|| {
                    let bytes = Envelope::encode(&Header::plain(message_type, 1), &message.payload_bytes());
                    let envelope = Envelope::decode(bytes).expect("valid");
                    black_box(decode_payload(envelope.header.message_type, envelope.payload).expect("valid"))
                });
            },
        );
        // The yardstick: one bare ChaCha20-Poly1305 encryption of the payload in place,
        // the cipher kept across calls as a session keeps it.
        let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
        let mut buffer = payload.to_vec();
        let mut counter = 0u64;
        group.bench_function(BenchmarkId::new("bare_chacha20poly1305_encrypt", payload_bytes), |bencher| {
            bencher.iter(|| {
                counter += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_le_bytes());
                black_box(
                    cipher
                        .encrypt_in_place_detached(&nonce.into(), b"header", &mut buffer)
                        .expect("in memory"),
                )
            });
        });
        // Only the sending half: encode the message and seal the envelope.
        group.bench_with_input(BenchmarkId::new("seal", payload_bytes), &message, |bencher, message| {
            bencher.iter(|| black_box(sender.send(1, message).expect("established")));
        });
        // Encrypt under the session, then authenticate, check the window, decrypt, decode.
        group.bench_with_input(BenchmarkId::new("encrypted", payload_bytes), &message, |bencher, message| {
            bencher.iter(|| {
                let bytes = sender.send(1, message).expect("established");
                let envelope = Envelope::decode(bytes).expect("valid");
                black_box(receiver.handle_envelope(0, envelope, &mut rng).expect("authentic"))
            });
        });
    }
    group.finish();
}

/// Sealing (what an origin does once per batch: leaves, tree, one signature) per write, a
/// relayed write's proof checked (its leaf and path folded to the root, then the seal's
/// signature verified) and the same with the seal already verified (what a node pays for the
/// other writes of a seal), beside the yardstick: a bare `verify_strict` of the seal's
/// message with the key already decompressed.
fn bench_seals(criterion: &mut Criterion) {
    let identity = Identity::from_seed([7; 32]);
    let writes: Vec<WalEntry> = (1..=256)
        .map(|sequence| {
            let operation =
                Operation::Put { key: Bytes::from_static(b"key"), value: Bytes::from(vec![0x5a; 64]) };
            WalEntry::new(NodeId(1), sequence, Timestamp::new(1_000 + sequence, 0), operation)
        })
        .collect();
    let tree = Arc::new(SealTree::create(&identity, &writes).expect("a range"));
    let mut relayed = writes[100].clone();
    relayed.proof = tree.proof(101);
    // As received: the proof decoded from the wire, with its path written out.
    let mut encoded = bytes::BytesMut::new();
    ferry_protocol::message::encode_entry(&relayed, &mut encoded);
    let relayed = ferry_protocol::message::decode_entry(encoded.freeze()).expect("it decodes");
    let proof = relayed.proof.clone().expect("a proof");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&tree.seal.signer).expect("a valid key");
    let signature = ed25519_dalek::Signature::from_bytes(&tree.seal.signature);
    let message = tree.seal.message();
    let mut group = criterion.benchmark_group("seal");
    group.throughput(Throughput::Elements(256));
    group.bench_function("seal 256 writes", |bencher| {
        bencher.iter(|| SealTree::create(&identity, black_box(&writes)).expect("a range"));
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("check a relayed write", |bencher| {
        bencher.iter(|| black_box(&proof).proves(black_box(&relayed)).is_ok());
    });
    group.bench_function("fold a relayed write's path", |bencher| {
        bencher.iter(|| black_box(&proof).root_for(black_box(&relayed)).expect("in range"));
    });
    group.bench_function("bare ed25519 verify_strict", |bencher| {
        bencher.iter(|| key.verify_strict(black_box(&message), &signature).is_ok());
    });
    group.finish();
}

criterion_group!(benches, bench_handshake, bench_envelopes, bench_seals);
criterion_main!(benches);

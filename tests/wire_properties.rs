//! Property tests of the wire layer: varints, framing, envelopes and payloads.
//!
//! Goal: what the unit tests and PROTOCOL.md's vectors show for chosen inputs holds for all
//! inputs within the protocol's limits. Method: proptest generates messages, streams, split
//! points and hostile bytes, and each property states one rule of PROTOCOL.md:
//! - every message round-trips through payload, envelope and frame (sections 3-5);
//! - the streaming decoder yields the same frames for every split of a stream (section 3);
//! - arbitrary or mutated bytes never panic a decoder, and whatever decodes re-encodes to the
//!   same bytes (canonical form, section 1);
//! - varints round-trip and only canonical encodings decode (section 2).

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use ferry_protocol::entry::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use ferry_protocol::envelope::{HEADER_BYTES_PLAIN, Header, MessageType};
use ferry_protocol::frame::{self, Decoded, FRAME_BYTES_MAX_DEFAULT, FrameDecoder, FrameError};
use ferry_protocol::message::{CLOSE_REASON_BYTES_MAX, Route, RoutedBody, decode_payload};
use ferry_protocol::varint::{self, VARINT_BYTES_MAX, VarintError};
use ferry_protocol::{CloseCode, Envelope, Message, NodeId, Operation, Timestamp, VersionVector, WalEntry};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::Index;

/// Most frames a stream property builds; keeps a case fast in unoptimised test builds.
const STREAM_MESSAGES_MAX: usize = 12;
/// Most split points a stream property draws.
const STREAM_SPLITS_MAX: usize = 40;
/// Most bytes of hostile input fed to a decoder in one case.
const HOSTILE_BYTES_MAX: usize = 512;

// ---- strategies -------------------------------------------------------------------------

/// A `u64` that is often small or at a varint length boundary, and sometimes anything.
fn integer() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => 0..300u64,
        1 => (1..=64u32).prop_map(|bits| if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 }),
        1 => (0..64u32).prop_map(|shift| 1u64 << shift),
    ]
}

fn node_id() -> impl Strategy<Value = NodeId> {
    integer().prop_map(NodeId)
}

/// Bytes of length `0..=maximum`: fully random when short, a cheap pattern when long so that
/// maximal keys and values stay affordable to generate and shrink.
fn bytes_up_to(maximum: usize) -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..=maximum.min(24)).prop_map(Bytes::from),
        1 => (0..=maximum, any::<u8>()).prop_map(|(length, seed)| {
            Bytes::from((0..length).map(|index| seed.wrapping_add(index as u8)).collect::<Vec<_>>())
        }),
        1 => Just(Bytes::from(vec![0xa5; maximum])),
    ]
}

fn wal_entry() -> impl Strategy<Value = WalEntry> {
    let operation = prop_oneof![
        (bytes_up_to(KEY_BYTES_MAX), bytes_up_to(VALUE_BYTES_MAX))
            .prop_map(|(key, value)| Operation::Put { key, value }),
        bytes_up_to(KEY_BYTES_MAX).prop_map(|key| Operation::Delete { key }),
    ];
    (node_id(), integer().prop_map(|sequence| sequence.max(1)), integer(), operation).prop_map(
        |(origin, sequence, timestamp, operation)| WalEntry {
            origin,
            sequence,
            timestamp: Timestamp(timestamp),
            operation,
            proof: None,
        },
    )
}

/// A version vector with random origins and non-zero positions.
fn version_vector() -> impl Strategy<Value = VersionVector> {
    btree_map(integer(), integer().prop_map(|position| position.max(1)), 0..=24)
        .prop_map(|map| map.into_iter().map(|(origin, position)| (NodeId(origin), position)).collect())
}

/// A reason of at most `CLOSE_REASON_BYTES_MAX` bytes of arbitrary characters, since a longer
/// one is cut by the sender and could not round-trip.
fn close_reason() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=CLOSE_REASON_BYTES_MAX / 4).prop_map(|chars| chars.into_iter().collect())
}

fn close_code() -> impl Strategy<Value = CloseCode> {
    prop::sample::select(vec![
        CloseCode::Unspecified,
        CloseCode::VersionMismatch,
        CloseCode::PeerKeyRejected,
        CloseCode::ProtocolError,
        CloseCode::Shutdown,
        CloseCode::NoSession,
        CloseCode::DuplicateNodeId,
        CloseCode::PskMismatch,
    ])
}

fn noise() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 1..=200).prop_map(Bytes::from)
}

/// Any message within the protocol's limits, every type equally likely.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        noise().prop_map(|noise| Message::Hello { noise }),
        noise().prop_map(|noise| Message::HelloAck { noise }),
        noise().prop_map(|noise| Message::HelloFinish { noise }),
        integer().prop_map(|token| Message::Ping { token }),
        integer().prop_map(|token| Message::Pong { token }),
        vec(wal_entry(), 0..=6).prop_map(|entries| Message::WalPush { entries }),
        version_vector().prop_map(|positions| Message::WalAck { positions }),
        version_vector().prop_map(|vector| Message::OutboxPull { vector }),
        (close_code(), close_reason()).prop_map(|(code, reason)| Message::Close { code, reason }),
        btree_map(integer(), any::<u8>(), 0..=24).prop_map(|routes| Message::RouteAnnounce {
            routes: routes
                .into_iter()
                .map(|(target, distance)| Route { target: NodeId(target), distance })
                .collect(),
        }),
        (node_id(), node_id(), any::<u8>(), any::<bool>(), integer()).prop_map(
            |(source, target, hops_left, ping, token)| Message::Routed {
                source,
                target,
                hops_left,
                body: if ping { RoutedBody::Ping { token } } else { RoutedBody::Pong { token } },
            }
        ),
    ]
}

fn message_type() -> impl Strategy<Value = MessageType> {
    prop::sample::select(MessageType::ALL.to_vec())
}

// ---- helpers ----------------------------------------------------------------------------

/// The envelope bytes (frame contents) of `message` under a plaintext header.
fn envelope_bytes(message: &Message, msg_id: u32) -> Bytes {
    Envelope::encode(&Header::plain(message.message_type(), msg_id), &message.payload_bytes())
}

/// Every frame `decoder` holds now; the stream must be valid.
fn drain(decoder: &mut FrameDecoder, out: &mut Vec<Bytes>) -> Result<(), TestCaseError> {
    // Each frame consumes at least its one-byte prefix, so this many steps always suffice.
    for _ in 0..=decoder.buffered_bytes() {
        match decoder.next_frame() {
            Ok(Decoded::Frame(frame)) => out.push(frame),
            Ok(Decoded::NeedMore) => return Ok(()),
            Err(error) => return Err(TestCaseError::fail(format!("valid stream rejected: {error}"))),
        }
    }
    Err(TestCaseError::fail("decoder did not stop"))
}

/// Decodes `stream` pushed in pieces cut at `cuts` (byte offsets, any order, duplicates
/// allowed); returns the frames and the bytes left buffered.
fn decode_split(stream: &[u8], cuts: &[usize]) -> Result<(Vec<Bytes>, usize), TestCaseError> {
    let mut cuts = cuts.to_vec();
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut decoder = FrameDecoder::default();
    let mut frames = Vec::new();
    for window in cuts.windows(2) {
        decoder.push(&stream[window[0]..window[1]]);
        drain(&mut decoder, &mut frames)?;
    }
    Ok((frames, decoder.buffered_bytes()))
}

/// Feeds hostile `bytes` to a decoder in `pieces` and checks it neither panics nor loops, and
/// that a failed decoder stays failed.
fn feed_hostile(bytes: &[u8], cuts: &[usize], frame_bytes_max: u32) -> Result<(), TestCaseError> {
    let mut cuts = cuts.iter().map(|cut| (*cut).min(bytes.len())).collect::<Vec<_>>();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut decoder = FrameDecoder::new(frame_bytes_max);
    let mut failure: Option<FrameError> = None;
    let mut frame_bytes_total = 0;
    for window in cuts.windows(2) {
        decoder.push(&bytes[window[0]..window[1]]);
        let mut stopped = false;
        for _ in 0..=decoder.buffered_bytes() {
            match decoder.next_frame() {
                Ok(Decoded::Frame(frame)) => {
                    prop_assert!(failure.is_none(), "a frame after an error");
                    prop_assert!(frame.len() <= frame_bytes_max as usize);
                    frame_bytes_total += frame.len();
                }
                Ok(Decoded::NeedMore) => {
                    prop_assert!(failure.is_none(), "NeedMore after an error");
                    stopped = true;
                    break;
                }
                Err(error) => {
                    prop_assert!(failure.is_none_or(|failure| failure == error), "the error changed");
                    failure = Some(error);
                    stopped = true;
                    break;
                }
            }
        }
        prop_assert!(stopped, "decoder did not stop");
        prop_assert!(frame_bytes_total + decoder.buffered_bytes() <= window[1]);
    }
    Ok(())
}

/// Decodes `payload` as `message_type`; if it is accepted, its re-encoding must be `payload`.
fn check_payload_canonical(message_type: MessageType, payload: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = decode_payload(message_type, Bytes::copy_from_slice(payload)) {
        prop_assert_eq!(message.message_type(), message_type);
        prop_assert_eq!(&message.payload_bytes()[..], payload, "accepted payload is not canonical");
    }
    Ok(())
}

/// Decodes `frame` as an envelope; if it is accepted, its re-encoding must be `frame`.
fn check_envelope_canonical(frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(envelope) = Envelope::decode(Bytes::copy_from_slice(frame)) {
        prop_assert_eq!(&envelope.header_bytes[..], &frame[..envelope.header.encoded_len()]);
        prop_assert_eq!(&Envelope::encode(&envelope.header, &envelope.payload)[..], frame);
        prop_assert_eq!(envelope.header.flags.encrypted(), envelope.header.nonce.is_some());
    }
    Ok(())
}

/// Turns `bytes` into a near miss: flips, inserts and removes bytes at the given places.
fn mutate(bytes: &[u8], edits: &[(Index, u8, u8)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (index, kind, value) in edits {
        match kind % 3 {
            0 if !out.is_empty() => {
                let index = index.index(out.len());
                out[index] ^= value | 1;
            }
            1 => {
                let index = index.index(out.len() + 1);
                out.insert(index, *value);
            }
            _ if !out.is_empty() => {
                let index = index.index(out.len());
                out.remove(index);
            }
            _ => {}
        }
    }
    out
}

// ---- properties -------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every message decodes from its own payload, and from a whole frame, to itself; and
    /// the frame re-encodes from the decoded value to the same bytes.
    #[test]
    fn every_message_round_trips(message in message(), msg_id in any::<u32>()) {
        let payload = message.payload_bytes();
        prop_assert_eq!(decode_payload(message.message_type(), payload.clone()), Ok(message.clone()));

        let contents = envelope_bytes(&message, msg_id);
        let mut stream = BytesMut::new();
        frame::encode(&contents, FRAME_BYTES_MAX_DEFAULT, &mut stream).expect("messages are far below 1 MiB");
        let mut decoder = FrameDecoder::default();
        decoder.push(&stream);
        let Ok(Decoded::Frame(frame)) = decoder.next_frame() else {
            return Err(TestCaseError::fail("no frame"));
        };
        prop_assert_eq!(decoder.buffered_bytes(), 0);
        let envelope = Envelope::decode(frame).expect("valid envelope");
        prop_assert_eq!(envelope.header, Header::plain(message.message_type(), msg_id));
        prop_assert_eq!(&envelope.payload, &payload);
        let decoded = decode_payload(envelope.header.message_type, envelope.payload.clone())
            .expect("valid payload");
        prop_assert_eq!(&decoded, &message);
        let again = Envelope::encode(&envelope.header, &decoded.payload_bytes());
        prop_assert_eq!(again, contents);
    }

    /// The streaming decoder yields the same frames however the stream is split: at random
    /// points, one byte at a time, or in one piece.
    #[test]
    fn every_split_yields_the_same_frames(
        messages in vec((message(), any::<u32>()), 1..=STREAM_MESSAGES_MAX),
        cuts in vec(any::<Index>(), 0..=STREAM_SPLITS_MAX),
    ) {
        let mut stream = BytesMut::new();
        let mut expected = Vec::new();
        for (message, msg_id) in &messages {
            let contents = envelope_bytes(message, *msg_id);
            frame::encode(&contents, FRAME_BYTES_MAX_DEFAULT, &mut stream).expect("fits");
            expected.push(contents);
        }
        let cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
        let every_byte: Vec<usize> = (0..stream.len()).collect();
        for cuts in [&cuts[..], &every_byte[..], &[]] {
            let (frames, left) = decode_split(&stream, cuts)?;
            prop_assert_eq!(&frames, &expected);
            prop_assert_eq!(left, 0);
        }
    }

    /// A stream cut short yields exactly the complete frames before the cut and waits.
    #[test]
    fn a_truncated_stream_yields_its_complete_frames(
        messages in vec((message(), any::<u32>()), 1..=STREAM_MESSAGES_MAX),
        cut in any::<Index>(),
    ) {
        let mut stream = BytesMut::new();
        let mut ends = Vec::new();
        let mut expected = Vec::new();
        for (message, msg_id) in &messages {
            let contents = envelope_bytes(message, *msg_id);
            frame::encode(&contents, FRAME_BYTES_MAX_DEFAULT, &mut stream).expect("fits");
            ends.push(stream.len());
            expected.push(contents);
        }
        let cut = cut.index(stream.len() + 1);
        let complete = ends.iter().filter(|end| **end <= cut).count();
        let (frames, _) = decode_split(&stream[..cut], &[])?;
        prop_assert_eq!(&frames[..], &expected[..complete]);
    }

    /// Arbitrary bytes in arbitrary pieces never panic or hang the frame decoder, whatever
    /// its maximum, and a failed decoder stays failed with the same error.
    #[test]
    fn arbitrary_bytes_never_panic_the_frame_decoder(
        bytes in vec(any::<u8>(), 0..=HOSTILE_BYTES_MAX),
        cuts in vec(0..=HOSTILE_BYTES_MAX, 0..=8),
        frame_bytes_max in prop_oneof![0..=64u32, Just(FRAME_BYTES_MAX_DEFAULT)],
    ) {
        feed_hostile(&bytes, &cuts, frame_bytes_max)?;
    }

    /// Arbitrary frame contents never panic the envelope decoder, and an accepted envelope
    /// re-encodes to the same bytes. Half the cases start with a valid magic and version so
    /// that the later checks are reached.
    #[test]
    fn arbitrary_bytes_never_panic_the_envelope_decoder(
        prefix in prop_oneof![Just(Vec::new()), Just(b"FY\x01".to_vec())],
        bytes in vec(any::<u8>(), 0..=64),
    ) {
        let mut frame = prefix;
        frame.extend_from_slice(&bytes);
        check_envelope_canonical(&frame)?;
    }

    /// Arbitrary payloads never panic the payload decoder of any type, and an accepted
    /// payload re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic_the_payload_decoder(
        message_type in message_type(),
        bytes in vec(any::<u8>(), 0..=HOSTILE_BYTES_MAX),
    ) {
        check_payload_canonical(message_type, &bytes)?;
    }

    /// Near misses of valid payloads and envelopes (bytes flipped, inserted or removed)
    /// never panic the decoders of any type, and whatever they accept is canonical.
    #[test]
    fn mutated_messages_never_panic_and_stay_canonical(
        message in message(),
        message_type in message_type(),
        msg_id in any::<u32>(),
        edits in vec((any::<Index>(), any::<u8>(), any::<u8>()), 1..=4),
    ) {
        let payload = mutate(&message.payload_bytes(), &edits);
        check_payload_canonical(message.message_type(), &payload)?;
        check_payload_canonical(message_type, &payload)?;
        let contents = mutate(&envelope_bytes(&message, msg_id), &edits);
        check_envelope_canonical(&contents)?;
        let mut stream = BytesMut::new();
        frame::encode(&envelope_bytes(&message, msg_id), FRAME_BYTES_MAX_DEFAULT, &mut stream)
            .expect("fits");
        feed_hostile(&mutate(&stream, &edits), &[HEADER_BYTES_PLAIN], FRAME_BYTES_MAX_DEFAULT)?;
    }

    /// Every `u64` decodes from its encoding to itself, using exactly the encoded bytes.
    #[test]
    fn varints_round_trip(value in integer(), trailing in vec(any::<u8>(), 0..=3)) {
        let mut bytes = Vec::new();
        varint::encode(value, &mut bytes);
        prop_assert_eq!(bytes.len(), varint::encoded_len(value));
        prop_assert!(bytes.len() <= VARINT_BYTES_MAX);
        let encoded_bytes = bytes.len();
        bytes.extend_from_slice(&trailing);
        prop_assert_eq!(varint::decode(&bytes), Ok((value, encoded_bytes)));
    }

    /// Only canonical encodings decode: whatever decodes re-encodes to exactly the bytes it
    /// used, and each error is the one the bytes call for.
    #[test]
    fn only_canonical_varints_decode(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..=12),
            // Mostly continuation bytes, to reach the long, overlong and overflowing cases.
            vec(prop_oneof![4 => 0x80..=0xffu8, 1 => 0..=2u8], 0..=12),
        ],
    ) {
        match varint::decode(&bytes) {
            Ok((value, used)) => {
                let mut again = Vec::new();
                varint::encode(value, &mut again);
                prop_assert_eq!(&again[..], &bytes[..used]);
            }
            Err(VarintError::Truncated) => {
                prop_assert!(bytes.len() < VARINT_BYTES_MAX);
                prop_assert!(bytes.iter().all(|byte| byte & 0x80 != 0));
            }
            Err(VarintError::NonCanonical) => {
                let end = bytes.iter().position(|byte| byte & 0x80 == 0).expect("a last byte");
                prop_assert!(end > 0 && bytes[end] == 0);
            }
            Err(VarintError::TooLong) => {
                prop_assert!(bytes[..VARINT_BYTES_MAX].iter().all(|byte| byte & 0x80 != 0));
            }
            Err(VarintError::Overflow) => {
                prop_assert!(bytes[..VARINT_BYTES_MAX - 1].iter().all(|byte| byte & 0x80 != 0));
                prop_assert!(bytes[VARINT_BYTES_MAX - 1] > 1);
            }
        }
    }
}

/// The largest messages the limits allow still round-trip: they are the cases a random
/// strategy reaches least often.
#[test]
fn maximal_messages_round_trip() {
    let key = Bytes::from(vec![b'k'; KEY_BYTES_MAX]);
    let value = Bytes::from(vec![b'v'; VALUE_BYTES_MAX]);
    let entry = WalEntry {
        origin: NodeId(u64::MAX),
        sequence: u64::MAX,
        timestamp: Timestamp(u64::MAX),
        operation: Operation::Put { key, value },
        proof: None,
    };
    let vector: VersionVector = (0..4096u64).map(|origin| (NodeId(u64::MAX - origin), u64::MAX)).collect();
    let routes: BTreeMap<u64, u8> = (0..4096u64).map(|target| (u64::MAX - target, 255)).collect();
    let messages = [
        Message::Hello { noise: Bytes::from(vec![7; 65_535]) },
        Message::WalPush { entries: vec![entry] },
        Message::WalAck { positions: vector.clone() },
        Message::OutboxPull { vector },
        Message::Close { code: CloseCode::DuplicateNodeId, reason: "é".repeat(CLOSE_REASON_BYTES_MAX / 2) },
        Message::RouteAnnounce {
            routes: routes
                .into_iter()
                .map(|(target, distance)| Route { target: NodeId(target), distance })
                .collect(),
        },
    ];
    for message in messages {
        let payload = message.payload_bytes();
        assert_eq!(decode_payload(message.message_type(), payload), Ok(message));
    }
}

//! Typed messages and their payload encoding.
//!
//! Payloads are hand-written: unsigned LEB128 varints for integers, `varint(length) | bytes`
//! for byte strings, fields in a fixed order, nothing optional, no trailing bytes. That
//! keeps the format byte-exact across implementations and versions (no serializer's
//! defaults can drift), canonical (one value, one encoding, so traces hash stably) and
//! cheap to parse without allocating for keys and values, which share the frame's buffer.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::entry::{
    KEY_BYTES_MAX, NodeId, Operation, SIGNATURE_BYTES, SIGNER_BYTES, Timestamp, VALUE_BYTES_MAX,
    VersionVector, WalEntry,
};
use crate::envelope::MessageType;
use crate::merkle::{self, HASH_BYTES};
use crate::seal::{PathProof, Proof, SEAL_ENTRIES_MAX, Seal};
use crate::varint::{self, VarintError};

/// Largest encoded WalPush payload a sender builds: it bounds the cost of one batch and
/// keeps the envelope, with its header and tag, under 64 KiB. Envelopes are sealed with
/// ChaCha20-Poly1305 directly, not as Noise transport messages, so Noise's 65,535-byte limit
/// does not apply to them.
pub const WAL_PUSH_BYTES_MAX: usize = 60 * 1024;
/// Largest number of origins in one version vector message.
pub const VECTOR_ORIGINS_MAX: usize = 4096;
/// Largest number of routes in one RouteAnnounce.
pub const ROUTES_MAX: usize = 4096;
/// Largest Close reason text.
pub const CLOSE_REASON_BYTES_MAX: usize = 512;
/// Largest number of chunks a snapshot may announce (PROTOCOL.md 5.9): with chunks of at
/// most [`WAL_PUSH_BYTES_MAX`] bytes of entries, about 1 GiB of live data. A receiver refuses
/// a larger offer before it allocates anything.
pub const SNAPSHOT_CHUNKS_MAX: u64 = 16_384;
/// Largest number of entries (keys) a snapshot may announce.
pub const SNAPSHOT_ENTRIES_MAX: u64 = 16 * 1024 * 1024;
/// Largest Noise handshake message (the Noise specification's limit).
pub const NOISE_MESSAGE_BYTES_MAX: usize = 65_535;

const _: () = assert!(KEY_BYTES_MAX + VALUE_BYTES_MAX + PROOF_BYTES_MAX + 64 < WAL_PUSH_BYTES_MAX);
const _: () = assert!(WAL_PUSH_BYTES_MAX < NOISE_MESSAGE_BYTES_MAX - 64);

/// Why a Close was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum CloseCode {
    /// No reason given.
    Unspecified = 0,
    /// No protocol version in common.
    VersionMismatch = 1,
    /// The peer's static key is not in the expected set.
    PeerKeyRejected = 2,
    /// The peer broke the protocol.
    ProtocolError = 3,
    /// The sender is shutting down.
    Shutdown = 4,
    /// The sender has no session for this link; the receiver should handshake again.
    NoSession = 5,
    /// The peer has the same node id as the sender.
    DuplicateNodeId = 6,
    /// The two ends do not share the cluster secret: they hold different pre-shared keys,
    /// or one holds one and the other none (PROTOCOL.md 6.10).
    PskMismatch = 7,
}

impl CloseCode {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::VersionMismatch,
            2 => Self::PeerKeyRejected,
            3 => Self::ProtocolError,
            4 => Self::Shutdown,
            5 => Self::NoSession,
            6 => Self::DuplicateNodeId,
            7 => Self::PskMismatch,
            _ => return None,
        })
    }
}

/// One entry of a RouteAnnounce: "I reach `target` in `distance` hops".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination node.
    pub target: NodeId,
    /// Hops from the announcer; the routing layer's "infinity" marks a withdrawn route.
    pub distance: u8,
}

/// The content of a Routed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutedBody {
    /// Echo request; `token` comes back in the Pong.
    Ping {
        /// Correlates the answer.
        token: u64,
    },
    /// Echo answer.
    Pong {
        /// The Ping's token.
        token: u64,
    },
}

/// Every message ferry sends, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Noise XX message 1.
    Hello {
        /// The raw Noise message.
        noise: Bytes,
    },
    /// Noise XX message 2.
    HelloAck {
        /// The raw Noise message.
        noise: Bytes,
    },
    /// Noise XX message 3.
    HelloFinish {
        /// The raw Noise message.
        noise: Bytes,
    },
    /// Liveness probe.
    Ping {
        /// Echoed by the Pong.
        token: u64,
    },
    /// Answer to a Ping.
    Pong {
        /// The Ping's token.
        token: u64,
    },
    /// WAL entries, in the order the sender holds them.
    WalPush {
        /// The entries.
        entries: Vec<WalEntry>,
    },
    /// The sender's durable contiguous position per origin.
    WalAck {
        /// Durable positions.
        positions: VersionVector,
    },
    /// The sender's version vector; the receiver pushes what lies beyond it.
    OutboxPull {
        /// What the sender holds.
        vector: VersionVector,
    },
    /// The sender ends the session or refuses the handshake.
    Close {
        /// Machine-readable reason.
        code: CloseCode,
        /// Human-readable detail.
        reason: String,
    },
    /// Distance-vector routes.
    RouteAnnounce {
        /// Routes, ascending by target.
        routes: Vec<Route>,
    },
    /// A message for a node that may be several hops away.
    Routed {
        /// Original sender.
        source: NodeId,
        /// Final recipient.
        target: NodeId,
        /// Hops it may still take; a relay drops it at 0.
        hops_left: u8,
        /// The content.
        body: RoutedBody,
    },
    /// The sender receives the entries the receiver would push through other neighbours:
    /// the receiver stops pushing new entries as they arrive and only repairs what the
    /// sender still lacks a pull interval later (PROTOCOL.md 8.6). Empty payload.
    Prune,
    /// "You lack entries I have compacted away; my state as of `vector` is available as a
    /// snapshot of `entries_count` entries in `chunks_count` chunks" (PROTOCOL.md 5.9).
    SnapshotOffer {
        /// Names this snapshot; pulls and chunks repeat it.
        snapshot_id: u64,
        /// Every entry at or below this vector is reflected in the snapshot.
        vector: VersionVector,
        /// The store digest of the snapshot's entries (PROTOCOL.md 8.9).
        digest: [u8; 32],
        /// Entries in the snapshot: one per key, tombstones included.
        entries_count: u64,
        /// Chunks the entries are split into.
        chunks_count: u64,
    },
    /// "Send me chunk `chunk_index` of snapshot `snapshot_id`."
    SnapshotPull {
        /// The offer's id.
        snapshot_id: u64,
        /// The chunk wanted, from 0.
        chunk_index: u64,
    },
    /// One chunk of a snapshot: entries in ascending key order, continuing the previous
    /// chunk's.
    SnapshotChunk {
        /// The offer's id.
        snapshot_id: u64,
        /// Which chunk, from 0.
        chunk_index: u64,
        /// The chunk's entries.
        entries: Vec<WalEntry>,
    },
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The payload ended inside a field.
    #[error("payload truncated in {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A varint field is malformed.
    #[error("invalid varint in {field}: {error}")]
    Varint {
        /// The field being read.
        field: &'static str,
        /// What was wrong with it.
        error: VarintError,
    },
    /// Bytes remain after the last field.
    #[error("{count} trailing bytes after {message_type:?} payload")]
    TrailingBytes {
        /// Type being decoded.
        message_type: MessageType,
        /// Bytes left over.
        count: usize,
    },
    /// Bytes remain after a WAL record's body (an entry, or a base record's vector).
    #[error("{count} trailing bytes after the WAL {record} record")]
    TrailingRecordBytes {
        /// `entry` or `base`.
        record: &'static str,
        /// Bytes left over.
        count: usize,
    },
    /// A length field exceeds its bound.
    #[error("{field} of {length} exceeds maximum {maximum}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Length found.
        length: u64,
        /// Its bound.
        maximum: usize,
    },
    /// An operation code other than put (0), delete (1) or seal (2).
    #[error("unknown operation code {code}")]
    UnknownOperation {
        /// The code.
        code: u8,
    },
    /// A proof tag other than none (0) or sealed (1).
    #[error("unknown proof tag {code}")]
    UnknownProof {
        /// The tag.
        code: u8,
    },
    /// A seal's range, or a proof's, that no seal may have: empty, over 256 entries, not
    /// before the seal, not around the entry proven; or a proof on a seal.
    #[error("seal range {first}..={last} does not fit the entry")]
    SealRange {
        /// The range's first sequence.
        first: u64,
        /// Its last sequence.
        last: u64,
    },
    /// A routed body code other than ping (0) or pong (1).
    #[error("unknown routed body code {code}")]
    UnknownRoutedBody {
        /// The code.
        code: u8,
    },
    /// An unknown Close code.
    #[error("unknown close code {code}")]
    UnknownCloseCode {
        /// The code.
        code: u8,
    },
    /// A WAL entry with sequence 0 (sequences start at 1).
    #[error("wal entry with sequence 0")]
    ZeroSequence,
    /// A version vector, ack or route list not in strictly ascending order, or with a zero
    /// position: the canonical form has neither.
    #[error("{field} not strictly ascending or has a zero position")]
    NotCanonical {
        /// The field.
        field: &'static str,
    },
    /// Close reason text is not UTF-8.
    #[error("close reason is not valid utf-8")]
    InvalidUtf8,
    /// A handshake message with an empty Noise payload.
    #[error("empty noise message")]
    EmptyNoise,
}

/// Reads fields from a payload, sharing its buffer.
struct Reader {
    bytes: Bytes,
    position: usize,
}

impl Reader {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        match varint::decode(&self.bytes[self.position..]) {
            Ok((value, used)) => {
                self.position += used;
                Ok(value)
            }
            Err(VarintError::Truncated) => Err(DecodeError::Truncated { field }),
            Err(error) => Err(DecodeError::Varint { field, error }),
        }
    }

    /// A varint that must not exceed `maximum` (else TooLong).
    fn varint_at_most(&mut self, field: &'static str, maximum: u64) -> Result<u64, DecodeError> {
        let value = self.varint(field)?;
        if value > maximum {
            let maximum = usize::try_from(maximum).unwrap_or(usize::MAX);
            return Err(DecodeError::TooLong { field, length: value, maximum });
        }
        Ok(value)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.position).ok_or(DecodeError::Truncated { field })?;
        self.position += 1;
        Ok(byte)
    }

    fn bytes(&mut self, field: &'static str, maximum: usize) -> Result<Bytes, DecodeError> {
        let length = self.varint(field)?;
        if length > maximum as u64 {
            return Err(DecodeError::TooLong { field, length, maximum });
        }
        // Cannot truncate: length <= maximum, a usize.
        let length = length as usize;
        if length > self.remaining() {
            return Err(DecodeError::Truncated { field });
        }
        let slice = self.bytes.slice(self.position..self.position + length);
        self.position += length;
        Ok(slice)
    }

    /// Reads a count and bounds it by both `maximum` and what the remaining bytes could
    /// hold at `bytes_each_min` per item, so a hostile count never drives an allocation.
    fn count(
        &mut self,
        field: &'static str,
        maximum: usize,
        bytes_each_min: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.varint(field)?;
        if count > maximum as u64 {
            return Err(DecodeError::TooLong { field, length: count, maximum });
        }
        // Cannot truncate: count <= maximum, a usize.
        let count = count as usize;
        if count.saturating_mul(bytes_each_min) > self.remaining() {
            return Err(DecodeError::Truncated { field });
        }
        Ok(count)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes =
            self.bytes.get(self.position..self.position + N).ok_or(DecodeError::Truncated { field })?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        self.position += N;
        Ok(array)
    }

    fn vector(&mut self, field: &'static str) -> Result<VersionVector, DecodeError> {
        let count = self.count(field, VECTOR_ORIGINS_MAX, 2)?;
        let mut vector = VersionVector::new();
        for _ in 0..count {
            let origin = self.varint(field)?;
            let position = self.varint(field)?;
            if !vector.push_ascending(NodeId(origin), position) {
                return Err(DecodeError::NotCanonical { field });
            }
        }
        Ok(vector)
    }

    fn finish_record(self, record: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingRecordBytes { record, count }),
        }
    }

    fn finish(self, message_type: MessageType) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { message_type, count }),
        }
    }
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    varint::encode(bytes.len() as u64, out);
    out.put_slice(bytes);
}

/// Appends a version vector's encoding: `count`, then `origin | position` pairs in ascending
/// origin order (shared with the WAL's base record).
pub fn put_vector(out: &mut BytesMut, vector: &VersionVector) {
    varint::encode(vector.len() as u64, out);
    for (origin, position) in vector.iter() {
        varint::encode(origin.0, out);
        varint::encode(position, out);
    }
}

/// Largest proof an entry carries: the tag, the range, signer and signature, and an audit
/// path of a seal of [`SEAL_ENTRIES_MAX`] entries (8 hashes).
pub const PROOF_BYTES_MAX: usize = 1 + 2 * 10 + SIGNER_BYTES + SIGNATURE_BYTES + 8 * HASH_BYTES;

/// The smallest encoded entry: a delete of an empty key with one-byte varints, and no proof.
pub const ENTRY_BYTES_MIN: usize = 6;

/// Appends the encoding of one WAL entry (shared with the WAL record and snapshot chunks):
/// its fields, then its proof.
pub fn encode_entry(entry: &WalEntry, out: &mut BytesMut) {
    encode_entry_fields(entry, out);
    encode_proof(entry.proof.as_ref(), out);
}

/// Appends a proof: `00` for none; `01`, the range `first | last`, signer, signature and the
/// audit path, as many hashes as the range's tree gives the entry (PROTOCOL.md 5.3).
fn encode_proof(proof: Option<&Proof>, out: &mut BytesMut) {
    let Some(proof) = proof else {
        out.put_u8(0);
        return;
    };
    out.put_u8(1);
    let (first, last) = proof.range();
    varint::encode(first, out);
    varint::encode(last, out);
    let (signer, signature) = proof.signed();
    out.put_slice(signer);
    out.put_slice(signature);
    let mut path = Vec::with_capacity(proof.path_len());
    proof.path_into(&mut path);
    for hash in &path {
        out.put_slice(hash);
    }
}

/// Appends an entry's fields without its proof: what its leaf hashes (after `0x00`, PROTOCOL.md
/// 8.13) and what the store digest hashes (8.9).
pub fn encode_entry_fields(entry: &WalEntry, out: &mut BytesMut) {
    varint::encode(entry.origin.0, out);
    varint::encode(entry.sequence, out);
    varint::encode(entry.timestamp.0, out);
    match &entry.operation {
        Operation::Put { key, value } => {
            out.put_u8(0);
            put_bytes(out, key);
            put_bytes(out, value);
        }
        Operation::Delete { key } => {
            out.put_u8(1);
            put_bytes(out, key);
        }
        Operation::Seal(seal) => {
            out.put_u8(2);
            varint::encode(seal.first, out);
            varint::encode(seal.last, out);
            out.put_slice(&seal.root);
            out.put_slice(&seal.signer);
            out.put_slice(&seal.signature);
        }
    }
}

/// Encoded length of an entry's fields, as [`encode_entry_fields`] writes them.
#[must_use]
pub fn entry_fields_len(entry: &WalEntry) -> usize {
    let operation = match &entry.operation {
        Operation::Put { key, value } => {
            varint::encoded_len(key.len() as u64)
                + key.len()
                + varint::encoded_len(value.len() as u64)
                + value.len()
        }
        Operation::Delete { key } => varint::encoded_len(key.len() as u64) + key.len(),
        Operation::Seal(seal) => {
            varint::encoded_len(seal.first)
                + varint::encoded_len(seal.last)
                + HASH_BYTES
                + SIGNER_BYTES
                + SIGNATURE_BYTES
        }
    };
    varint::encoded_len(entry.origin.0)
        + varint::encoded_len(entry.sequence)
        + varint::encoded_len(entry.timestamp.0)
        + 1
        + operation
}

/// Encoded length of one WAL entry, as [`encode_entry`] writes it.
#[must_use]
pub fn entry_encoded_len(entry: &WalEntry) -> usize {
    let proof = entry.proof.as_ref().map_or(1, |proof| {
        let (first, last) = proof.range();
        1 + varint::encoded_len(first)
            + varint::encoded_len(last)
            + SIGNER_BYTES
            + SIGNATURE_BYTES
            + proof.path_len() * HASH_BYTES
    });
    entry_fields_len(entry) + proof
}

fn read_entry(reader: &mut Reader) -> Result<WalEntry, DecodeError> {
    let origin = NodeId(reader.varint("entry origin")?);
    let sequence = reader.varint("entry sequence")?;
    if sequence == 0 {
        return Err(DecodeError::ZeroSequence);
    }
    let timestamp = Timestamp(reader.varint("entry timestamp")?);
    let operation = match reader.u8("entry operation")? {
        0 => {
            let key = reader.bytes("entry key", KEY_BYTES_MAX)?;
            let value = reader.bytes("entry value", VALUE_BYTES_MAX)?;
            Operation::Put { key, value }
        }
        1 => Operation::Delete { key: reader.bytes("entry key", KEY_BYTES_MAX)? },
        2 => {
            let first = reader.varint("seal first")?;
            let last = reader.varint("seal last")?;
            // A seal covers 1 to SEAL_ENTRIES_MAX entries before its own.
            if first == 0 || first > last || last >= sequence || last - first >= SEAL_ENTRIES_MAX {
                return Err(DecodeError::SealRange { first, last });
            }
            Operation::Seal(Arc::new(Seal {
                origin,
                first,
                last,
                root: reader.array("seal root")?,
                signer: reader.array("seal signer")?,
                signature: reader.array("seal signature")?,
            }))
        }
        code => return Err(DecodeError::UnknownOperation { code }),
    };
    let proof = match reader.u8("entry proof")? {
        0 => None,
        1 => {
            let first = reader.varint("proof first")?;
            let last = reader.varint("proof last")?;
            let in_range =
                first >= 1 && first <= sequence && sequence <= last && last - first < SEAL_ENTRIES_MAX;
            if !in_range || matches!(operation, Operation::Seal(_)) {
                return Err(DecodeError::SealRange { first, last });
            }
            let signer = reader.array("proof signer")?;
            let signature = reader.array("proof signature")?;
            let hashes = merkle::path_len(sequence - first, last - first + 1).unwrap_or(0);
            let mut path = Vec::with_capacity(hashes);
            for _ in 0..hashes {
                path.push(reader.array("proof path")?);
            }
            Some(Proof::Path(Arc::new(PathProof { first, last, signer, signature, path })))
        }
        code => return Err(DecodeError::UnknownProof { code }),
    };
    Ok(WalEntry { origin, sequence, timestamp, operation, proof })
}

/// Decodes a version vector that fills `bytes` exactly (the WAL's base record body).
///
/// # Errors
/// Any [`DecodeError`] for a malformed vector or trailing bytes.
pub fn decode_vector(bytes: Bytes) -> Result<VersionVector, DecodeError> {
    let mut reader = Reader { bytes, position: 0 };
    let vector = reader.vector("base vector")?;
    reader.finish_record("base")?;
    Ok(vector)
}

/// Decodes one WAL entry that fills `bytes` exactly (the WAL record body).
///
/// # Errors
/// Any [`DecodeError`] for a malformed entry or trailing bytes.
pub fn decode_entry(bytes: Bytes) -> Result<WalEntry, DecodeError> {
    let mut reader = Reader { bytes, position: 0 };
    let entry = read_entry(&mut reader)?;
    reader.finish_record("entry")?;
    Ok(entry)
}

impl Message {
    /// The envelope type code for this message.
    #[must_use]
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Hello { .. } => MessageType::Hello,
            Self::HelloAck { .. } => MessageType::HelloAck,
            Self::HelloFinish { .. } => MessageType::HelloFinish,
            Self::Ping { .. } => MessageType::Ping,
            Self::Pong { .. } => MessageType::Pong,
            Self::WalPush { .. } => MessageType::WalPush,
            Self::WalAck { .. } => MessageType::WalAck,
            Self::OutboxPull { .. } => MessageType::OutboxPull,
            Self::Close { .. } => MessageType::Close,
            Self::RouteAnnounce { .. } => MessageType::RouteAnnounce,
            Self::Routed { .. } => MessageType::Routed,
            Self::Prune => MessageType::Prune,
            Self::SnapshotOffer { .. } => MessageType::SnapshotOffer,
            Self::SnapshotPull { .. } => MessageType::SnapshotPull,
            Self::SnapshotChunk { .. } => MessageType::SnapshotChunk,
        }
    }

    /// Appends this message's payload encoding to `out`.
    pub fn encode_payload(&self, out: &mut BytesMut) {
        match self {
            Self::Hello { noise } | Self::HelloAck { noise } | Self::HelloFinish { noise } => {
                out.put_slice(noise);
            }
            Self::Ping { token } | Self::Pong { token } => varint::encode(*token, out),
            Self::WalPush { entries } => {
                varint::encode(entries.len() as u64, out);
                for entry in entries {
                    encode_entry(entry, out);
                }
            }
            Self::WalAck { positions: vector } | Self::OutboxPull { vector } => put_vector(out, vector),
            Self::Close { code, reason } => {
                out.put_u8(*code as u8);
                let mut end = reason.len().min(CLOSE_REASON_BYTES_MAX);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                put_bytes(out, &reason.as_bytes()[..end]);
            }
            Self::RouteAnnounce { routes } => {
                varint::encode(routes.len() as u64, out);
                for route in routes {
                    varint::encode(route.target.0, out);
                    out.put_u8(route.distance);
                }
            }
            Self::Routed { source, target, hops_left, body } => {
                varint::encode(source.0, out);
                varint::encode(target.0, out);
                out.put_u8(*hops_left);
                let (code, token) = match body {
                    RoutedBody::Ping { token } => (0, token),
                    RoutedBody::Pong { token } => (1, token),
                };
                out.put_u8(code);
                varint::encode(*token, out);
            }
            Self::Prune => {}
            Self::SnapshotOffer { snapshot_id, vector, digest, entries_count, chunks_count } => {
                varint::encode(*snapshot_id, out);
                put_vector(out, vector);
                out.put_slice(digest);
                varint::encode(*entries_count, out);
                varint::encode(*chunks_count, out);
            }
            Self::SnapshotPull { snapshot_id, chunk_index } => {
                varint::encode(*snapshot_id, out);
                varint::encode(*chunk_index, out);
            }
            Self::SnapshotChunk { snapshot_id, chunk_index, entries } => {
                varint::encode(*snapshot_id, out);
                varint::encode(*chunk_index, out);
                varint::encode(entries.len() as u64, out);
                for entry in entries {
                    encode_entry(entry, out);
                }
            }
        }
    }

    /// This message's payload encoding as a new buffer.
    #[must_use]
    pub fn payload_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode_payload(&mut out);
        out.freeze()
    }
}

/// Decodes the payload of a message of type `message_type`.
///
/// # Errors
/// A [`DecodeError`] naming the first bad field; never panics on any input.
pub fn decode_payload(message_type: MessageType, payload: Bytes) -> Result<Message, DecodeError> {
    let mut reader = Reader { bytes: payload, position: 0 };
    let message = match message_type {
        MessageType::Hello | MessageType::HelloAck | MessageType::HelloFinish => {
            let noise = reader.bytes.clone();
            if noise.is_empty() {
                return Err(DecodeError::EmptyNoise);
            }
            if noise.len() > NOISE_MESSAGE_BYTES_MAX {
                return Err(DecodeError::TooLong {
                    field: "noise message",
                    length: noise.len() as u64,
                    maximum: NOISE_MESSAGE_BYTES_MAX,
                });
            }
            reader.position = noise.len();
            match message_type {
                MessageType::Hello => Message::Hello { noise },
                MessageType::HelloAck => Message::HelloAck { noise },
                _ => Message::HelloFinish { noise },
            }
        }
        MessageType::Ping => Message::Ping { token: reader.varint("ping token")? },
        MessageType::Pong => Message::Pong { token: reader.varint("pong token")? },
        MessageType::WalPush => {
            let count = reader.count("wal push count", WAL_PUSH_BYTES_MAX, ENTRY_BYTES_MIN)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(read_entry(&mut reader)?);
            }
            Message::WalPush { entries }
        }
        MessageType::WalAck => Message::WalAck { positions: reader.vector("wal ack positions")? },
        MessageType::OutboxPull => Message::OutboxPull { vector: reader.vector("outbox pull vector")? },
        MessageType::Close => {
            let code = reader.u8("close code")?;
            let code = CloseCode::from_code(code).ok_or(DecodeError::UnknownCloseCode { code })?;
            let reason = reader.bytes("close reason", CLOSE_REASON_BYTES_MAX)?;
            let reason = String::from_utf8(reason.to_vec()).map_err(|_| DecodeError::InvalidUtf8)?;
            Message::Close { code, reason }
        }
        MessageType::RouteAnnounce => {
            let count = reader.count("route count", ROUTES_MAX, 2)?;
            let mut routes = Vec::with_capacity(count);
            for _ in 0..count {
                let target = NodeId(reader.varint("route target")?);
                let distance = reader.u8("route distance")?;
                if routes.last().is_some_and(|last: &Route| target <= last.target) {
                    return Err(DecodeError::NotCanonical { field: "routes" });
                }
                routes.push(Route { target, distance });
            }
            Message::RouteAnnounce { routes }
        }
        MessageType::Routed => {
            let source = NodeId(reader.varint("routed source")?);
            let target = NodeId(reader.varint("routed target")?);
            let hops_left = reader.u8("routed hops")?;
            let body = match reader.u8("routed body")? {
                0 => RoutedBody::Ping { token: reader.varint("routed token")? },
                1 => RoutedBody::Pong { token: reader.varint("routed token")? },
                code => return Err(DecodeError::UnknownRoutedBody { code }),
            };
            Message::Routed { source, target, hops_left, body }
        }
        MessageType::Prune => Message::Prune,
        MessageType::SnapshotOffer => {
            let snapshot_id = reader.varint("snapshot id")?;
            let vector = reader.vector("snapshot vector")?;
            let digest = reader.array::<32>("snapshot digest")?;
            let entries_count = reader.varint_at_most("snapshot entries count", SNAPSHOT_ENTRIES_MAX)?;
            let chunks_count = reader.varint_at_most("snapshot chunks count", SNAPSHOT_CHUNKS_MAX)?;
            Message::SnapshotOffer { snapshot_id, vector, digest, entries_count, chunks_count }
        }
        MessageType::SnapshotPull => Message::SnapshotPull {
            snapshot_id: reader.varint("snapshot id")?,
            chunk_index: reader.varint("snapshot chunk index")?,
        },
        MessageType::SnapshotChunk => {
            let snapshot_id = reader.varint("snapshot id")?;
            let chunk_index = reader.varint("snapshot chunk index")?;
            let count = reader.count("snapshot chunk count", WAL_PUSH_BYTES_MAX, ENTRY_BYTES_MIN)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(read_entry(&mut reader)?);
            }
            Message::SnapshotChunk { snapshot_id, chunk_index, entries }
        }
    };
    reader.finish(message_type)?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(message_type: MessageType, bytes: &[u8]) -> Result<Message, DecodeError> {
        decode_payload(message_type, Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn wal_push_round_trip_and_length() {
        let entry = WalEntry {
            origin: NodeId(3),
            sequence: 1,
            timestamp: Timestamp::new(1000, 2),
            operation: Operation::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v") },
            proof: None,
        };
        let message = Message::WalPush { entries: vec![entry.clone()] };
        let bytes = message.payload_bytes();
        assert_eq!(bytes.len(), 1 + entry_encoded_len(&entry));
        assert_eq!(decode_payload(MessageType::WalPush, bytes), Ok(message));
    }

    /// `bytes`, then room for a signer and a signature: a push's count is checked against
    /// the smallest entry first.
    fn padded(bytes: &[u8]) -> Vec<u8> {
        [bytes, &[0; SIGNER_BYTES + SIGNATURE_BYTES]].concat()
    }

    #[test]
    fn exact_errors() {
        assert_eq!(decode(MessageType::Ping, &[]), Err(DecodeError::Truncated { field: "ping token" }));
        assert_eq!(
            decode(MessageType::Ping, &[1, 2]),
            Err(DecodeError::TrailingBytes { message_type: MessageType::Ping, count: 1 })
        );
        assert_eq!(
            decode(MessageType::Pong, &[0x80, 0]),
            Err(DecodeError::Varint { field: "pong token", error: VarintError::NonCanonical })
        );
        assert_eq!(decode(MessageType::Hello, &[]), Err(DecodeError::EmptyNoise));
        assert_eq!(
            decode(MessageType::WalPush, &[1, 1, 0, 1]),
            Err(DecodeError::Truncated { field: "wal push count" })
        );
        assert_eq!(
            decode(MessageType::WalPush, &padded(&[1, 1, 0, 1, 2, 0])),
            Err(DecodeError::ZeroSequence)
        );
        assert_eq!(
            decode(MessageType::WalPush, &padded(&[1, 1, 1, 1, 3, 0])),
            Err(DecodeError::UnknownOperation { code: 3 })
        );
        assert_eq!(
            decode(MessageType::WalAck, &[2, 5, 1, 5, 1]),
            Err(DecodeError::NotCanonical { field: "wal ack positions" })
        );
        assert_eq!(
            decode(MessageType::OutboxPull, &[1, 5, 0]),
            Err(DecodeError::NotCanonical { field: "outbox pull vector" })
        );
        assert_eq!(decode(MessageType::Close, &[99, 0]), Err(DecodeError::UnknownCloseCode { code: 99 }));
        assert_eq!(decode(MessageType::Close, &[1, 1, 0xff]), Err(DecodeError::InvalidUtf8));
        assert_eq!(
            decode(MessageType::WalPush, &padded(&[1, 1, 1, 1, 0, 0x81, 0x08])),
            Err(DecodeError::TooLong { field: "entry key", length: 1025, maximum: KEY_BYTES_MAX })
        );
        assert_eq!(
            decode(MessageType::Routed, &[1, 2, 3, 7, 0]),
            Err(DecodeError::UnknownRoutedBody { code: 7 })
        );
    }

    #[test]
    fn hostile_count_does_not_allocate() {
        // Claims 60 Ki entries in 3 bytes: rejected before Vec::with_capacity.
        assert_eq!(
            decode(MessageType::WalPush, &[0x80, 0xe0, 0x03]),
            Err(DecodeError::Truncated { field: "wal push count" })
        );
    }

    #[test]
    fn close_reason_is_truncated_on_a_char_boundary() {
        let reason = "é".repeat(CLOSE_REASON_BYTES_MAX);
        let bytes = Message::Close { code: CloseCode::Shutdown, reason }.payload_bytes();
        match decode_payload(MessageType::Close, bytes) {
            Ok(Message::Close { reason, .. }) => assert_eq!(reason.len(), CLOSE_REASON_BYTES_MAX),
            other => panic!("unexpected {other:?}"),
        }
    }
}

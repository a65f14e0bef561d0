//! The envelope: the fixed header every frame's contents start with, and its checks.
//!
//! ```text
//! offset  size  field
//! 0       2     magic      0x46 0x59 ("FY")
//! 2       1     version    wire format version, 1
//! 3       1     type       message type code (see `MessageType`)
//! 4       4     msg_id     u32, big-endian, chosen by the sender
//! 8       1     flags      bit 0 ENCRYPTED; bit 1 PSK (handshake messages only);
//!                          bits 2-7 reserved, must be 0
//! 9       8     nonce      u64, big-endian; present only when ENCRYPTED is set
//! 9 or 17 ...   payload    plaintext, or ciphertext followed by a 16-byte tag
//! ```
//!
//! When ENCRYPTED is set, the whole header (9 + 8 bytes) is the AEAD associated data, so
//! no header bit can change without the receiver noticing. This module only parses and
//! builds; it never decrypts.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// The two magic bytes that open every envelope: "FY".
pub const MAGIC: [u8; 2] = *b"FY";
/// The wire format version this implementation reads and writes.
pub const WIRE_VERSION: u8 = 1;
/// Header length without the crypto section.
pub const HEADER_BYTES_PLAIN: usize = 9;
/// Header length with the 8-byte nonce of an encrypted envelope.
pub const HEADER_BYTES_ENCRYPTED: usize = HEADER_BYTES_PLAIN + 8;
/// Length of the AEAD tag after an encrypted payload.
pub const TAG_BYTES: usize = 16;

/// Envelope flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u8);

impl Flags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// The payload is AEAD ciphertext and the header carries a nonce.
    pub const ENCRYPTED: Self = Self(0b0000_0001);
    /// On a handshake message (Hello, HelloAck, HelloFinish) only: the handshake mixes a
    /// pre-shared key, the cluster secret (PROTOCOL.md 6.10). On any other type the bit is
    /// reserved.
    pub const PSK: Self = Self(0b0000_0010);
    const KNOWN_MASK: u8 = Self::ENCRYPTED.0;
    const KNOWN_MASK_HANDSHAKE: u8 = Self::ENCRYPTED.0 | Self::PSK.0;

    /// The raw byte.
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True when the ENCRYPTED bit is set.
    #[must_use]
    pub const fn encrypted(self) -> bool {
        self.0 & Self::ENCRYPTED.0 != 0
    }

    /// True when the PSK bit is set.
    #[must_use]
    pub const fn psk(self) -> bool {
        self.0 & Self::PSK.0 != 0
    }

    /// These flags with the PSK bit set to `psk`.
    #[must_use]
    pub const fn with_psk(self, psk: bool) -> Self {
        if psk { Self(self.0 | Self::PSK.0) } else { Self(self.0 & !Self::PSK.0) }
    }
}

/// Message type codes. Codes are stable: new types get new codes, none is ever reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Noise XX message 1 (initiator's ephemeral key).
    Hello = 1,
    /// Noise XX message 2 (responder's keys and encrypted hello payload).
    HelloAck = 2,
    /// Noise XX message 3 (initiator's static key and encrypted hello payload).
    HelloFinish = 3,
    /// Liveness probe and round-trip measurement.
    Ping = 4,
    /// Answer to a Ping.
    Pong = 5,
    /// A batch of WAL entries.
    WalPush = 6,
    /// The receiver's durable position per origin.
    WalAck = 7,
    /// The sender's version vector: "send me what I lack".
    OutboxPull = 8,
    /// The sender is ending the session or refusing a handshake, with a reason.
    Close = 9,
    /// Distance-vector routing announcement.
    RouteAnnounce = 10,
    /// A directed message forwarded hop by hop to a named node.
    Routed = 11,
    /// "Stop pushing me entries as they arrive: I receive them through other neighbours."
    Prune = 12,
    /// A snapshot of the sender's state is available: the receiver lacks compacted entries.
    SnapshotOffer = 13,
    /// Asks for one chunk of an offered snapshot.
    SnapshotPull = 14,
    /// One chunk of a snapshot's entries.
    SnapshotChunk = 15,
}

impl MessageType {
    /// Every type, in code order.
    pub const ALL: [Self; 15] = [
        Self::Hello,
        Self::HelloAck,
        Self::HelloFinish,
        Self::Ping,
        Self::Pong,
        Self::WalPush,
        Self::WalAck,
        Self::OutboxPull,
        Self::Close,
        Self::RouteAnnounce,
        Self::Routed,
        Self::Prune,
        Self::SnapshotOffer,
        Self::SnapshotPull,
        Self::SnapshotChunk,
    ];

    /// The type with wire code `code`, if any.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code).wrapping_sub(1)).copied()
    }

    /// The wire code.
    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// True for the three handshake messages, the only ones sent in the clear (with Close).
    #[must_use]
    pub const fn is_handshake(self) -> bool {
        matches!(self, Self::Hello | Self::HelloAck | Self::HelloFinish)
    }
}

/// Why a frame is not a valid envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    /// Fewer bytes than the header needs.
    #[error("truncated envelope header: {length_bytes} bytes, need {needed_bytes}")]
    Truncated {
        /// Bytes present.
        length_bytes: usize,
        /// Bytes the header needs.
        needed_bytes: usize,
    },
    /// The first two bytes are not "FY".
    #[error("wrong magic {found:02x?}, expected {MAGIC:02x?}")]
    WrongMagic {
        /// The bytes found.
        found: [u8; 2],
    },
    /// A wire version this implementation does not speak.
    #[error("unsupported wire version {version}, this node speaks {WIRE_VERSION}")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// A type code no message has.
    #[error("unknown message type {code}")]
    UnknownType {
        /// The code found.
        code: u8,
    },
    /// Reserved flag bits are set.
    #[error("reserved flag bits set: {flags:#010b}")]
    ReservedFlags {
        /// The flags byte.
        flags: u8,
    },
    /// An encrypted envelope too short to hold its tag.
    #[error("encrypted payload of {length_bytes} bytes is shorter than the {TAG_BYTES}-byte tag")]
    MissingTag {
        /// Payload bytes present.
        length_bytes: usize,
    },
}

/// The parsed header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub message_type: MessageType,
    /// Sender-chosen id, echoed by answers (Pong, WalAck) for correlation.
    pub msg_id: u32,
    /// Flags.
    pub flags: Flags,
    /// AEAD nonce counter; `Some` exactly when `flags` has ENCRYPTED.
    pub nonce: Option<u64>,
}

impl Header {
    /// A plaintext header.
    #[must_use]
    pub const fn plain(message_type: MessageType, msg_id: u32) -> Self {
        Self { message_type, msg_id, flags: Flags::NONE, nonce: None }
    }

    /// An encrypted header with explicit nonce counter `nonce`.
    #[must_use]
    pub const fn encrypted(message_type: MessageType, msg_id: u32, nonce: u64) -> Self {
        Self { message_type, msg_id, flags: Flags::ENCRYPTED, nonce: Some(nonce) }
    }

    /// Encoded length of this header.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        if self.nonce.is_some() { HEADER_BYTES_ENCRYPTED } else { HEADER_BYTES_PLAIN }
    }

    /// Appends the header bytes to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_slice(&MAGIC);
        out.put_u8(WIRE_VERSION);
        out.put_u8(self.message_type.code());
        out.put_u32(self.msg_id);
        out.put_u8(self.flags.bits());
        if let Some(nonce) = self.nonce {
            out.put_u64(nonce);
        }
    }
}

/// A parsed envelope that shares the frame's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The header fields.
    pub header: Header,
    /// The exact header bytes (the AEAD associated data of an encrypted envelope).
    pub header_bytes: Bytes,
    /// The payload: plaintext, or ciphertext with its tag.
    pub payload: Bytes,
}

impl Envelope {
    /// Parses and checks the header of `frame`. Checks run in wire order, so a frame gets
    /// the error of its first bad field.
    ///
    /// # Errors
    /// One [`EnvelopeError`] variant per kind of incompatibility.
    pub fn decode(frame: Bytes) -> Result<Self, EnvelopeError> {
        let truncated = |needed_bytes| EnvelopeError::Truncated { length_bytes: frame.len(), needed_bytes };
        if frame.len() < 2 {
            return Err(truncated(HEADER_BYTES_PLAIN));
        }
        let found = [frame[0], frame[1]];
        if found != MAGIC {
            return Err(EnvelopeError::WrongMagic { found });
        }
        if frame.len() < 3 {
            return Err(truncated(HEADER_BYTES_PLAIN));
        }
        if frame[2] != WIRE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion { version: frame[2] });
        }
        if frame.len() < 4 {
            return Err(truncated(HEADER_BYTES_PLAIN));
        }
        let message_type =
            MessageType::from_code(frame[3]).ok_or(EnvelopeError::UnknownType { code: frame[3] })?;
        if frame.len() < HEADER_BYTES_PLAIN {
            return Err(truncated(HEADER_BYTES_PLAIN));
        }
        let msg_id = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let flags = frame[8];
        let known = if message_type.is_handshake() { Flags::KNOWN_MASK_HANDSHAKE } else { Flags::KNOWN_MASK };
        if flags & !known != 0 {
            return Err(EnvelopeError::ReservedFlags { flags });
        }
        let flags = Flags(flags);
        let (nonce, header_length) = if flags.encrypted() {
            if frame.len() < HEADER_BYTES_ENCRYPTED {
                return Err(truncated(HEADER_BYTES_ENCRYPTED));
            }
            let mut nonce = [0u8; 8];
            nonce.copy_from_slice(&frame[HEADER_BYTES_PLAIN..HEADER_BYTES_ENCRYPTED]);
            (Some(u64::from_be_bytes(nonce)), HEADER_BYTES_ENCRYPTED)
        } else {
            (None, HEADER_BYTES_PLAIN)
        };
        let payload = frame.slice(header_length..);
        if flags.encrypted() && payload.len() < TAG_BYTES {
            return Err(EnvelopeError::MissingTag { length_bytes: payload.len() });
        }
        Ok(Self {
            header: Header { message_type, msg_id, flags, nonce },
            header_bytes: frame.slice(..header_length),
            payload,
        })
    }

    /// Builds the contents of a frame: `header | payload`.
    #[must_use]
    pub fn encode(header: &Header, payload: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(header.encoded_len() + payload.len());
        header.encode(&mut out);
        out.extend_from_slice(payload);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Envelope::decode(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn round_trip_plain_and_encrypted() {
        let header = Header::plain(MessageType::Ping, 0x0102_0304);
        let bytes = Envelope::encode(&header, b"xy");
        assert_eq!(&bytes[..], &[0x46, 0x59, 1, 4, 1, 2, 3, 4, 0, b'x', b'y']);
        let envelope = Envelope::decode(bytes).expect("valid");
        assert_eq!(envelope.header, header);
        assert_eq!(&envelope.payload[..], b"xy");

        let header = Header::encrypted(MessageType::WalPush, 9, 0x0a0b);
        let bytes = Envelope::encode(&header, &[0xee; TAG_BYTES]);
        let envelope = Envelope::decode(bytes).expect("valid");
        assert_eq!(envelope.header, header);
        assert_eq!(envelope.header_bytes.len(), HEADER_BYTES_ENCRYPTED);
    }

    #[test]
    fn exact_errors() {
        assert_eq!(plain(&[]), Err(EnvelopeError::Truncated { length_bytes: 0, needed_bytes: 9 }));
        assert_eq!(plain(b"XY\x01\x04"), Err(EnvelopeError::WrongMagic { found: *b"XY" }));
        assert_eq!(plain(b"FY\x02\x04"), Err(EnvelopeError::UnsupportedVersion { version: 2 }));
        assert_eq!(plain(b"FY\x01\x00"), Err(EnvelopeError::UnknownType { code: 0 }));
        assert_eq!(plain(b"FY\x01\x10"), Err(EnvelopeError::UnknownType { code: 16 }));
        assert_eq!(
            plain(b"FY\x01\x04\0\0\0"),
            Err(EnvelopeError::Truncated { length_bytes: 7, needed_bytes: 9 })
        );
        assert_eq!(plain(b"FY\x01\x04\0\0\0\0\x02"), Err(EnvelopeError::ReservedFlags { flags: 2 }));
        // PSK is defined on the three handshake messages only; bit 2 is reserved on them too.
        assert_eq!(plain(b"FY\x01\x09\0\0\0\0\x02"), Err(EnvelopeError::ReservedFlags { flags: 2 }));
        assert_eq!(plain(b"FY\x01\x01\0\0\0\0\x06"), Err(EnvelopeError::ReservedFlags { flags: 6 }));
        for code in 1..=3 {
            let envelope =
                plain(&[0x46, 0x59, 1, code, 0, 0, 0, 0, 2, 0xaa]).expect("PSK on a handshake message");
            assert!(envelope.header.flags.psk() && !envelope.header.flags.encrypted());
        }
        assert_eq!(
            plain(b"FY\x01\x04\0\0\0\0\x01\0\0"),
            Err(EnvelopeError::Truncated { length_bytes: 11, needed_bytes: 17 })
        );
        assert_eq!(
            plain(b"FY\x01\x04\0\0\0\0\x01\0\0\0\0\0\0\0\0abc"),
            Err(EnvelopeError::MissingTag { length_bytes: 3 })
        );
    }

    #[test]
    fn type_codes_are_dense_and_stable() {
        for (index, message_type) in MessageType::ALL.iter().enumerate() {
            assert_eq!(usize::from(message_type.code()), index + 1);
            assert_eq!(MessageType::from_code(message_type.code()), Some(*message_type));
        }
        assert_eq!(MessageType::from_code(0), None);
        assert_eq!(MessageType::from_code(255), None);
    }
}

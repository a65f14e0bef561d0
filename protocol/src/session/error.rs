//! The session layer's two error enums: [`HandshakeError`] says why one handshake attempt was
//! refused or failed, [`SessionError`] why an envelope or a call was rejected. Owns no logic
//! beyond mapping a handshake error to the Close code the peer is told.

use thiserror::Error;

use super::{KEY_BYTES, NAME_BYTES_MAX, REPLAY_WINDOW_WIDTH, VersionRange, hex};
use crate::entry::NodeId;
use crate::envelope::{EnvelopeError, MessageType};
use crate::message::{CloseCode, DecodeError};
use crate::varint::VarintError;

/// Why a handshake attempt was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// The two version ranges do not overlap.
    #[error("no common protocol version: ours {ours}, peer's {theirs}")]
    VersionMismatch {
        /// Our range.
        ours: VersionRange,
        /// The peer's range.
        theirs: VersionRange,
    },
    /// The responder announced a version other than the highest common one.
    #[error("peer chose version {chosen}, not the highest common version of ours {ours} and peer's {theirs}")]
    VersionChoiceInvalid {
        /// The version the peer announced.
        chosen: u16,
        /// Our range.
        ours: VersionRange,
        /// The peer's range.
        theirs: VersionRange,
    },
    /// The initiator's range in HelloFinish differs from the one in its Hello.
    #[error("peer's version range changed from {hello} in hello to {finish} in hello finish")]
    VersionRangeChanged {
        /// The range in Hello.
        hello: VersionRange,
        /// The range in HelloFinish.
        finish: VersionRange,
    },
    /// A version range with its minimum above its maximum.
    #[error("invalid version range {min}..={max}: minimum above maximum")]
    InvalidVersionRange {
        /// Lowest version.
        min: u16,
        /// Highest version.
        max: u16,
    },
    /// The peer's static key is not in the configured set of expected keys.
    #[error("peer static key {} is not in the expected set", hex(.key))]
    PeerKeyRejected {
        /// The peer's static public key.
        key: [u8; KEY_BYTES],
    },
    /// The peer presented a name this node knows by another key (trust on first use).
    #[error(
        "peer {name:?} presented static key {} but is known by key {}: refused (a new identity under a known name must be trusted by hand)",
        hex(.presented),
        hex(.known)
    )]
    PinnedKeyMismatch {
        /// The name presented.
        name: String,
        /// The key presented.
        presented: [u8; KEY_BYTES],
        /// The key pinned for that name.
        known: [u8; KEY_BYTES],
    },
    /// The peer presented a key this node knows under another name: one key, one name.
    #[error(
        "peer {name:?} presented static key {} which is known as {known_name:?}: refused (a known node cannot take another name)",
        hex(.key)
    )]
    PinnedNameMismatch {
        /// The name presented.
        name: String,
        /// The key presented.
        key: [u8; KEY_BYTES],
        /// The name pinned for that key.
        known_name: String,
    },
    /// The peer's node id is not the hash of its name, and this node requires it.
    #[error("peer {name:?} presented node id {node_id}, not the hash of its name {expected}")]
    NodeIdNotFromName {
        /// The name presented.
        name: String,
        /// The id presented.
        node_id: NodeId,
        /// `NodeId::from_name(name)`.
        expected: NodeId,
    },
    /// The peer presented our own node id.
    #[error("peer claims our own node id {node_id}")]
    DuplicateNodeId {
        /// The shared id.
        node_id: NodeId,
    },
    /// The peer refused the handshake with a Close.
    #[error("peer closed the handshake with {code:?}: {reason}")]
    PeerClosed {
        /// The peer's code.
        code: CloseCode,
        /// The peer's explanation.
        reason: String,
    },
    /// The attempt did not finish in time.
    #[error("handshake did not finish within {timeout_ns} ns")]
    Timeout {
        /// The configured limit.
        timeout_ns: u64,
    },
    /// Noise could not process a handshake message (bad length, bad key or failed
    /// authentication). The attempt, if any, continues: the message may be stale or forged.
    #[error("noise rejected {message_type:?}: {reason}")]
    Noise {
        /// The handshake message.
        message_type: MessageType,
        /// What Noise reported.
        reason: &'static str,
    },
    /// A handshake payload ended inside a field.
    #[error("{message_type:?} payload truncated in {field}")]
    PayloadTruncated {
        /// The handshake message.
        message_type: MessageType,
        /// The field being read.
        field: &'static str,
    },
    /// A handshake payload varint is malformed.
    #[error("invalid varint in {message_type:?} payload field {field}: {error}")]
    PayloadVarint {
        /// The handshake message.
        message_type: MessageType,
        /// The field being read.
        field: &'static str,
        /// What was wrong with it.
        error: VarintError,
    },
    /// A handshake payload field holds a value above its bound.
    #[error("{field} {value} in {message_type:?} payload exceeds maximum {maximum}")]
    PayloadValueTooLarge {
        /// The handshake message.
        message_type: MessageType,
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// Its bound.
        maximum: u64,
    },
    /// Bytes remain after the last field of a handshake payload.
    #[error("{count} trailing bytes after {message_type:?} payload")]
    PayloadTrailingBytes {
        /// The handshake message.
        message_type: MessageType,
        /// Bytes left over.
        count: usize,
    },
    /// The peer's node name is not UTF-8.
    #[error("peer node name is not valid utf-8")]
    NameNotUtf8,
    /// The peer's handshake message carries the PSK flag (it uses a cluster secret) and this
    /// node has none (PROTOCOL.md 6.10).
    #[error(
        "the cluster secret does not match: the peer's {message_type:?} uses a cluster secret (pre-shared key) and this node has none"
    )]
    PeerHasPsk {
        /// The message that said so: Hello or HelloAck.
        message_type: MessageType,
    },
    /// The peer's handshake message lacks the PSK flag (it uses no cluster secret) and this
    /// node requires one (PROTOCOL.md 6.10).
    #[error(
        "the cluster secret does not match: the peer's {message_type:?} uses no cluster secret (pre-shared key) and this node requires one"
    )]
    PeerLacksPsk {
        /// The message that said so: Hello or HelloAck.
        message_type: MessageType,
    },
    /// Both ends use a cluster secret, but not the same: the initiator's HelloFinish revealed
    /// its static key and then failed to authenticate under this node's pre-shared key
    /// (PROTOCOL.md 6.10).
    #[error(
        "the cluster secret does not match: the HelloFinish of the peer with static key {} does not authenticate under this node's pre-shared key",
        hex(.key)
    )]
    PskMismatch {
        /// The static key the initiator presented.
        key: [u8; KEY_BYTES],
    },
}

impl HandshakeError {
    /// The Close code that tells the peer why we refused, or `None` when no Close is sent
    /// (the peer closed, the attempt timed out, or Noise rejected a possibly forged message).
    #[must_use]
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Self::VersionMismatch { .. } => Some(CloseCode::VersionMismatch),
            Self::PeerKeyRejected { .. }
            | Self::PinnedKeyMismatch { .. }
            | Self::PinnedNameMismatch { .. } => Some(CloseCode::PeerKeyRejected),
            Self::NodeIdNotFromName { .. } => Some(CloseCode::ProtocolError),
            Self::DuplicateNodeId { .. } => Some(CloseCode::DuplicateNodeId),
            Self::VersionChoiceInvalid { .. }
            | Self::VersionRangeChanged { .. }
            | Self::InvalidVersionRange { .. }
            | Self::PayloadTruncated { .. }
            | Self::PayloadVarint { .. }
            | Self::PayloadValueTooLarge { .. }
            | Self::PayloadTrailingBytes { .. }
            | Self::NameNotUtf8 => Some(CloseCode::ProtocolError),
            Self::PeerHasPsk { .. } | Self::PeerLacksPsk { .. } | Self::PskMismatch { .. } => {
                Some(CloseCode::PskMismatch)
            }
            Self::PeerClosed { .. } | Self::Timeout { .. } | Self::Noise { .. } => None,
        }
    }

    pub(crate) fn noise(message_type: MessageType, error: &snow::Error) -> Self {
        let reason = match error {
            snow::Error::Decrypt => "authentication failed",
            snow::Error::Input => "malformed message",
            snow::Error::Dh => "invalid public key",
            snow::Error::State(_) => "message out of turn",
            _ => "internal noise error",
        };
        Self::Noise { message_type, reason }
    }
}

/// Why an envelope, a send or a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionError {
    /// The frame is not a valid envelope.
    #[error("invalid envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The (decrypted) payload does not decode as its message type.
    #[error("invalid {message_type:?} payload: {error}")]
    Decode {
        /// The envelope's type.
        message_type: MessageType,
        /// What was wrong.
        error: DecodeError,
    },
    /// A handshake message was refused or a handshake attempt failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// An application message arrived in plaintext (or a plaintext Close arrived outside a
    /// handshake).
    #[error("{message_type:?} must be encrypted but arrived in plaintext")]
    Unencrypted {
        /// The envelope's type.
        message_type: MessageType,
    },
    /// A handshake message arrived with the ENCRYPTED flag.
    #[error("{message_type:?} is a handshake message and must not be encrypted")]
    EncryptedHandshake {
        /// The envelope's type.
        message_type: MessageType,
    },
    /// `send` was asked to encrypt a handshake message.
    #[error("{message_type:?} is a handshake message, not an application message")]
    NotApplication {
        /// The message's type.
        message_type: MessageType,
    },
    /// An encrypted envelope arrived while we have no session and no handshake is under way;
    /// the caller should start a handshake.
    #[error("encrypted envelope but no session exists")]
    NoSession,
    /// An encrypted envelope arrived while a handshake is under way and no session exists yet;
    /// the handshake will settle it, so the caller should only drop the envelope.
    #[error("encrypted envelope while a handshake is in progress and no session exists")]
    HandshakeInProgress,
    /// `send` was called with no established session.
    #[error("no session is established")]
    NotEstablished,
    /// The envelope failed authentication: wrong key, or any header or payload bit changed.
    #[error("envelope with nonce {nonce} failed authentication")]
    Decrypt {
        /// The header's nonce.
        nonce: u64,
    },
    /// The nonce was already accepted once.
    #[error("envelope with nonce {nonce} is a replay")]
    Replay {
        /// The header's nonce.
        nonce: u64,
    },
    /// The nonce lies below the replay window.
    #[error(
        "envelope with nonce {nonce} is older than the replay window (highest {nonce_highest}, width {REPLAY_WINDOW_WIDTH})"
    )]
    TooOld {
        /// The header's nonce.
        nonce: u64,
        /// The highest nonce accepted so far.
        nonce_highest: u64,
    },
    /// The send counter reached `u64::MAX`; the session must be replaced by a new handshake.
    #[error("send nonce exhausted: start a new handshake")]
    NonceExhausted,
    /// The configured node name is too long.
    #[error("node name of {length_bytes} bytes exceeds maximum {NAME_BYTES_MAX}")]
    NameTooLong {
        /// The name's length.
        length_bytes: usize,
    },
    /// The configured version range is empty.
    #[error("invalid version range {min}..={max}: minimum above maximum")]
    InvalidVersionRange {
        /// Lowest version.
        min: u16,
        /// Highest version.
        max: u16,
    },
    /// A configured duration is zero.
    #[error("{field} must be greater than zero")]
    ZeroDuration {
        /// The setting.
        field: &'static str,
    },
    /// An identity's public key does not belong to its secret key.
    #[error("public key {} does not match the secret key", hex(.public))]
    KeypairMismatch {
        /// The public key given.
        public: [u8; KEY_BYTES],
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_their_values() {
        let error = HandshakeError::VersionMismatch {
            ours: VersionRange::single(1),
            theirs: VersionRange::new(2, 3),
        };
        assert_eq!(error.to_string(), "no common protocol version: ours 1..=1, peer's 2..=3");
        assert_eq!(
            HandshakeError::PeerKeyRejected { key: [0xab; KEY_BYTES] }.to_string(),
            format!("peer static key {} is not in the expected set", "ab".repeat(KEY_BYTES))
        );
        assert_eq!(
            SessionError::TooOld { nonce: 1, nonce_highest: 5000 }.to_string(),
            "envelope with nonce 1 is older than the replay window (highest 5000, width 2048)"
        );
    }
}

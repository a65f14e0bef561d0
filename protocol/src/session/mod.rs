//! Secure sessions: the Noise XX handshake carried by Hello / HelloAck / HelloFinish, and the
//! AEAD protection of every envelope after it.
//!
//! Code map, bottom up:
//! - `identity`: [`Identity`] (the static X25519 key pair) and the seeded crypto resolver that
//!   feeds snow the caller's randomness instead of the OS's.
//! - `payload`: the hand-written encodings of the three handshake payloads.
//! - `handshake`: one Noise XX attempt as an initiator or a responder, and the checks on the
//!   peer (keys, node id, version negotiation).
//! - `replay`: the receiver's sliding anti-replay window.
//! - `transport`: the AEAD envelope codec used once a handshake has finished.
//! - `dispatch`: which envelopes may be plaintext and which must be encrypted.
//! - `connection`: [`Connection`], the per-link sans-IO state machine that ties them together.
//!
//! **Invariant:** nothing here reads a clock, asks the OS for randomness or does I/O. Time comes
//! in as `now_ns`, randomness as a caller-provided [`rand_core::RngCore`], and bytes to send are
//! polled out.

mod connection;
mod dh_memo;
mod dispatch;
mod error;
mod handshake;
mod identity;
mod payload;
mod replay;
mod transport;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::entry::NodeId;

pub use connection::{
    Connection, ConnectionEvent, ENDED_SESSIONS_MAX, EVENTS_QUEUED_MAX, Receipt, TRANSMITS_QUEUED_MAX,
};
pub use dh_memo::{DH_MEMO_MAX, DhMemo};
pub use dispatch::{EnvelopeClass, dispatch};
pub use error::{HandshakeError, SessionError};
pub use identity::{Identity, KEY_BYTES};
pub use replay::REPLAY_WINDOW_WIDTH;

/// The Noise protocol name: XX pattern, X25519, ChaCha20-Poly1305, BLAKE2s.
pub const NOISE_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The Noise protocol name of a handshake with a cluster secret ([`SessionConfig::psk`]):
/// XX with the pre-shared key mixed in at the end of message 3 (PROTOCOL.md 6.10).
pub const NOISE_PATTERN_PSK: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
/// Where the pre-shared key is mixed in: `psk3`, after the tokens of message 3.
pub const PSK_LOCATION: u8 = 3;
/// Length of the cluster secret, Noise's pre-shared key.
pub const PSK_BYTES: usize = 32;
/// The Noise prologue: names the protocol and the version of this handshake's format, so a
/// peer speaking anything else fails the first authenticated message instead of misparsing.
pub const PROLOGUE: &[u8] = b"ferry/1";
/// Longest node name carried in a handshake payload.
pub const NAME_BYTES_MAX: usize = 255;
/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u16 = 2;
/// Default interval between retransmissions of an unanswered handshake message: 250 ms.
pub const HANDSHAKE_RETRANSMIT_NS_DEFAULT: u64 = 250_000_000;
/// Default time a handshake attempt may take before it fails: 5 s.
pub const HANDSHAKE_TIMEOUT_NS_DEFAULT: u64 = 5_000_000_000;

const _: () = assert!(HANDSHAKE_RETRANSMIT_NS_DEFAULT < HANDSHAKE_TIMEOUT_NS_DEFAULT);

/// An inclusive range of protocol versions, `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionRange {
    /// Lowest version spoken.
    pub min: u16,
    /// Highest version spoken.
    pub max: u16,
}

impl VersionRange {
    /// The range `min..=max`.
    #[must_use]
    pub const fn new(min: u16, max: u16) -> Self {
        Self { min, max }
    }

    /// The range holding only `version`.
    #[must_use]
    pub const fn single(version: u16) -> Self {
        Self { min: version, max: version }
    }

    /// True when `min <= max`.
    #[must_use]
    pub const fn is_valid(self) -> bool {
        self.min <= self.max
    }

    /// True when `version` lies in the range.
    #[must_use]
    pub const fn contains(self, version: u16) -> bool {
        self.min <= version && version <= self.max
    }

    /// The highest version both ranges contain, if any: the version a handshake settles on.
    #[must_use]
    pub fn highest_common(self, other: Self) -> Option<u16> {
        let low = self.min.max(other.min);
        let high = self.max.min(other.max);
        (low <= high).then_some(high)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}..={}", self.min, self.max)
    }
}

/// Which end of a link a [`Connection`] is. The two ends of one link must have different roles.
///
/// The Initiator sends Hello as soon as it is created. Either end may (re)start a handshake
/// later; when both do at once, the role breaks the tie: the Responder abandons its own attempt
/// and answers the Initiator's Hello, and the Initiator ignores the Responder's Hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Starts the handshake; wins simultaneous initiation.
    Initiator,
    /// Waits for a Hello; yields on simultaneous initiation.
    Responder,
}

/// Settings shared by every [`Connection`] of one node.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// This node's name, at most [`NAME_BYTES_MAX`] bytes of UTF-8.
    pub name: String,
    /// This node's id; a peer presenting the same id is refused.
    pub node_id: NodeId,
    /// This node's static key pair.
    pub identity: Identity,
    /// Protocol versions this node speaks.
    pub versions: VersionRange,
    /// Capability bits announced to peers; their meaning belongs to higher layers.
    pub capabilities: u64,
    /// When set, only peers whose static public key is in the set are accepted.
    pub expected_peer_keys: Option<BTreeSet<[u8; KEY_BYTES]>>,
    /// Names this node knows by key (trust on first use): a peer presenting one of these
    /// names with another key is refused (PROTOCOL.md 6.5).
    pub pinned_peer_keys: BTreeMap<String, [u8; KEY_BYTES]>,
    /// Refuse a peer whose node id is not the FNV-1a hash of its name (PROTOCOL.md 6.3), so
    /// a peer cannot take another node's id under a name of its own.
    pub require_id_from_name: bool,
    /// Interval between retransmissions of an unanswered handshake message.
    pub handshake_retransmit_ns: u64,
    /// Time a handshake attempt may take, from its first message, before it fails.
    pub handshake_timeout_ns: u64,
    /// The cluster secret: with it, every handshake is `Noise_XXpsk3` over this pre-shared
    /// key, so only peers holding the same secret complete one; without it (the default),
    /// plain `Noise_XX`, and a peer that uses a secret is refused (PROTOCOL.md 6.10). Never
    /// shown by `Debug`.
    pub psk: Option<[u8; PSK_BYTES]>,
    /// X25519 results shared with the other ends of handshakes that run in this process (a
    /// simulation hands one [`DhMemo`] to all its nodes); `None`, the default, for a real
    /// node. It changes no byte of any handshake.
    pub dh_memo: Option<DhMemo>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cluster secret never reaches a log or trace: only whether there is one.
        formatter
            .debug_struct("SessionConfig")
            .field("name", &self.name)
            .field("node_id", &self.node_id)
            .field("identity", &self.identity)
            .field("versions", &self.versions)
            .field("capabilities", &self.capabilities)
            .field("expected_peer_keys", &self.expected_peer_keys)
            .field("pinned_peer_keys", &self.pinned_peer_keys)
            .field("require_id_from_name", &self.require_id_from_name)
            .field("handshake_retransmit_ns", &self.handshake_retransmit_ns)
            .field("handshake_timeout_ns", &self.handshake_timeout_ns)
            .field("psk", &self.psk.map(|_| "<secret>"))
            .field("dh_memo", &self.dh_memo)
            .finish()
    }
}

impl SessionConfig {
    /// A configuration with defaults: node id derived from `name` ([`NodeId::from_name`]),
    /// versions `PROTOCOL_VERSION..=PROTOCOL_VERSION`, no capabilities, any peer key accepted,
    /// the default retransmission interval and timeout, and no cluster secret.
    #[must_use]
    pub fn new(name: impl Into<String>, identity: Identity) -> Self {
        let name = name.into();
        Self {
            node_id: NodeId::from_name(&name),
            name,
            identity,
            versions: VersionRange::single(PROTOCOL_VERSION),
            capabilities: 0,
            expected_peer_keys: None,
            pinned_peer_keys: BTreeMap::new(),
            require_id_from_name: false,
            handshake_retransmit_ns: HANDSHAKE_RETRANSMIT_NS_DEFAULT,
            handshake_timeout_ns: HANDSHAKE_TIMEOUT_NS_DEFAULT,
            psk: None,
            dh_memo: None,
        }
    }

    /// Checks the settings a handshake relies on.
    ///
    /// # Errors
    /// [`SessionError::NameTooLong`], [`SessionError::InvalidVersionRange`] or
    /// [`SessionError::ZeroDuration`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), SessionError> {
        if self.name.len() > NAME_BYTES_MAX {
            return Err(SessionError::NameTooLong { length_bytes: self.name.len() });
        }
        if !self.versions.is_valid() {
            return Err(SessionError::InvalidVersionRange { min: self.versions.min, max: self.versions.max });
        }
        if self.handshake_retransmit_ns == 0 {
            return Err(SessionError::ZeroDuration { field: "handshake_retransmit_ns" });
        }
        if self.handshake_timeout_ns == 0 {
            return Err(SessionError::ZeroDuration { field: "handshake_timeout_ns" });
        }
        Ok(())
    }
}

/// What a finished handshake proved about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node name.
    pub name: String,
    /// The peer's node id.
    pub node_id: NodeId,
    /// The peer's static X25519 public key, authenticated by the handshake.
    pub static_key: [u8; KEY_BYTES],
    /// The protocol versions the peer speaks.
    pub versions: VersionRange,
    /// The version this session speaks: the highest both ends support.
    pub version: u16,
    /// The peer's capability bits.
    pub capabilities: u64,
}

/// Lowercase hex of `bytes`, for messages and test vectors.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_common_version() {
        let ours = VersionRange::new(1, 3);
        assert_eq!(ours.highest_common(VersionRange::new(2, 5)), Some(3));
        assert_eq!(ours.highest_common(VersionRange::single(1)), Some(1));
        assert_eq!(ours.highest_common(VersionRange::new(4, 5)), None);
        assert_eq!(VersionRange::new(2, 3).to_string(), "2..=3");
    }

    #[test]
    fn config_validation_exact_errors() {
        let identity = Identity::from_seed([7; KEY_BYTES]);
        let mut config = SessionConfig::new("a".repeat(NAME_BYTES_MAX), identity);
        assert_eq!(config.validate(), Ok(()));
        config.name.push('a');
        assert_eq!(config.validate(), Err(SessionError::NameTooLong { length_bytes: 256 }));
        config.name = "n".into();
        config.versions = VersionRange::new(3, 2);
        assert_eq!(config.validate(), Err(SessionError::InvalidVersionRange { min: 3, max: 2 }));
        config.versions = VersionRange::single(1);
        config.handshake_retransmit_ns = 0;
        assert_eq!(config.validate(), Err(SessionError::ZeroDuration { field: "handshake_retransmit_ns" }));
    }

    #[test]
    fn debug_hides_the_cluster_secret() {
        let mut config = SessionConfig::new("n", Identity::from_seed([7; KEY_BYTES]));
        assert!(format!("{config:?}").contains("psk: None"));
        config.psk = Some([0x5c; PSK_BYTES]);
        let text = format!("{config:?}");
        assert!(text.contains("psk: Some(\"<secret>\")"), "{text}");
        assert!(!text.contains("92, 92") && !text.contains("5c5c"), "{text}");
    }
}

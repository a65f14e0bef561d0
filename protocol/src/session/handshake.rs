//! One Noise XX handshake attempt, and the checks each side makes on what the other proves.
//!
//! ```text
//! initiator                                   responder
//! Hello       -> e, payload(versions)                         (cleartext payload)
//!             <- e, ee, s, es, payload(identity)  HelloAck    (encrypted payload)
//! HelloFinish -> s, se, payload(identity)                     (encrypted payload)
//! ```
//!
//! With a cluster secret the pattern is XXpsk3: the same three messages, the pre-shared key
//! mixed in after `s, se` of message 3 (and, as Noise requires of every psk pattern, each
//! `e` also mixed into the key, so the Hello payload gains a 16-byte tag).
//!
//! This module drives snow and validates payloads; it keeps no timers, retransmits nothing and
//! never touches an envelope. A Noise failure while reading leaves the attempt exactly as it
//! was (snow restores its symmetric state), so a stale or forged message cannot kill it; the
//! one exception is a HelloFinish under a different cluster secret, recognised as such.

use bytes::Bytes;
use rand_core::RngCore;
use snow::HandshakeState;

use super::identity::{SeededResolver, noise_params};
use super::payload::{self, IdentityPayload};
use super::{HandshakeError, KEY_BYTES, PROLOGUE, PSK_LOCATION, PeerInfo, SessionConfig, VersionRange};
use crate::entry::NodeId;
use crate::envelope::MessageType;

/// Bytes a Noise XX message adds around its payload, at most: an ephemeral key, an encrypted
/// static key with its tag, and the payload's tag.
const NOISE_OVERHEAD_BYTES_MAX: usize = KEY_BYTES + (KEY_BYTES + 16) + 16;

/// The two transport keys a finished handshake yields, from this side's point of view.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// Key of the direction we send in.
    pub(crate) send: [u8; KEY_BYTES],
    /// Key of the direction we receive in.
    pub(crate) receive: [u8; KEY_BYTES],
    /// The first 8 bytes of the handshake hash, big-endian: the same at both ends and
    /// different for every handshake, so it names the session without revealing a key.
    pub(crate) session_id: u64,
}

/// A message read by Noise: its decrypted payload and the peer's static key.
pub(crate) struct Received {
    payload: Vec<u8>,
    remote_static: [u8; KEY_BYTES],
}

fn build(config: &SessionConfig, initiator: bool, rng: &mut dyn RngCore) -> Box<HandshakeState> {
    let resolver = Box::new(SeededResolver::from_rng(rng, config.dh_memo.clone()));
    let mut builder = snow::Builder::with_resolver(noise_params(config.psk.is_some()), resolver)
        .local_private_key(&config.identity.secret)
        .and_then(|builder| builder.prologue(PROLOGUE));
    if let Some(psk) = &config.psk {
        builder = builder.and_then(|builder| builder.psk(PSK_LOCATION, psk));
    }
    let builder = builder.expect("each builder setting is given once, and psk3 is a slot of XXpsk3");
    let state = if initiator { builder.build_initiator() } else { builder.build_responder() };
    Box::new(state.expect("the local key is set and the seeded resolver provides every primitive"))
}

fn write(state: &mut HandshakeState, payload: &[u8]) -> Bytes {
    let mut message = vec![0; payload.len() + NOISE_OVERHEAD_BYTES_MAX];
    let length = state
        .write_message(payload, &mut message)
        .expect("it is our turn, the buffer fits the message and payloads stay far below 64 KiB");
    message.truncate(length);
    Bytes::from(message)
}

fn read(
    state: &mut HandshakeState,
    message_type: MessageType,
    noise: &[u8],
) -> Result<Received, HandshakeError> {
    let mut payload = vec![0; noise.len()];
    let length = state
        .read_message(noise, &mut payload)
        .map_err(|error| HandshakeError::noise(message_type, &error))?;
    payload.truncate(length);
    let mut remote_static = [0; KEY_BYTES];
    if let Some(key) = state.get_remote_static() {
        remote_static.copy_from_slice(key);
    }
    Ok(Received { payload, remote_static })
}

fn split(state: &mut HandshakeState, initiator: bool) -> Keys {
    debug_assert!(state.is_handshake_finished());
    let mut session_id = [0; 8];
    session_id.copy_from_slice(&state.get_handshake_hash()[..8]);
    let session_id = u64::from_be_bytes(session_id);
    let (initiator_to_responder, responder_to_initiator) = state.dangerously_get_raw_split();
    if initiator {
        Keys { send: initiator_to_responder, receive: responder_to_initiator, session_id }
    } else {
        Keys { send: responder_to_initiator, receive: initiator_to_responder, session_id }
    }
}

fn identity_payload(config: &SessionConfig, version: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(config.name.len() + 40);
    payload::encode_identity(
        &IdentityPayload {
            name: config.name.clone(),
            node_id: config.node_id,
            versions: config.versions,
            version,
            capabilities: config.capabilities,
        },
        &mut out,
    );
    out
}

/// Checks the parts of a peer's identity both sides check alike: key and node id.
fn check_peer(
    config: &SessionConfig,
    message_type: MessageType,
    received: &Received,
) -> Result<IdentityPayload, HandshakeError> {
    let identity = payload::decode_identity(message_type, &received.payload)?;
    if let Some(expected) = &config.expected_peer_keys
        && !expected.contains(&received.remote_static)
    {
        return Err(HandshakeError::PeerKeyRejected { key: received.remote_static });
    }
    if let Some(known) = config.pinned_peer_keys.get(&identity.name)
        && *known != received.remote_static
    {
        let (name, presented, known) = (identity.name, received.remote_static, *known);
        return Err(HandshakeError::PinnedKeyMismatch { name, presented, known });
    }
    // And the other way: a pinned key comes with its own name, so a trusted or known node
    // cannot write under a name (and so an origin) that is not its own.
    if let Some((known_name, _)) = config
        .pinned_peer_keys
        .iter()
        .find(|(name, key)| **key == received.remote_static && **name != identity.name)
    {
        let known_name = known_name.clone();
        return Err(HandshakeError::PinnedNameMismatch {
            name: identity.name,
            key: received.remote_static,
            known_name,
        });
    }
    if config.require_id_from_name && identity.node_id != NodeId::from_name(&identity.name) {
        let expected = NodeId::from_name(&identity.name);
        return Err(HandshakeError::NodeIdNotFromName {
            name: identity.name,
            node_id: identity.node_id,
            expected,
        });
    }
    if identity.node_id == config.node_id {
        return Err(HandshakeError::DuplicateNodeId { node_id: identity.node_id });
    }
    Ok(identity)
}

fn peer_info(identity: IdentityPayload, static_key: [u8; KEY_BYTES]) -> PeerInfo {
    PeerInfo {
        name: identity.name,
        node_id: identity.node_id,
        static_key,
        versions: identity.versions,
        version: identity.version,
        capabilities: identity.capabilities,
    }
}

/// The initiator's side of one attempt, between Hello and HelloAck.
pub(crate) struct Initiation {
    state: Box<HandshakeState>,
}

impl Initiation {
    /// Starts an attempt with 32 bytes of `rng`; returns it and the Noise bytes of Hello.
    pub(crate) fn start(config: &SessionConfig, rng: &mut dyn RngCore) -> (Self, Bytes) {
        let mut state = build(config, true, rng);
        let mut hello_payload = Vec::with_capacity(6);
        payload::encode_hello(config.versions, &mut hello_payload);
        let noise = write(&mut state, &hello_payload);
        (Self { state }, noise)
    }

    /// Reads HelloAck.
    ///
    /// # Errors
    /// [`HandshakeError::Noise`] when Noise rejects it; the attempt is then unchanged.
    pub(crate) fn read_ack(&mut self, noise: &[u8]) -> Result<Received, HandshakeError> {
        read(&mut self.state, MessageType::HelloAck, noise)
    }

    /// Checks the responder's HelloAck.
    ///
    /// # Errors
    /// A payload error, [`HandshakeError::PeerKeyRejected`],
    /// [`HandshakeError::DuplicateNodeId`], [`HandshakeError::VersionMismatch`] or
    /// [`HandshakeError::VersionChoiceInvalid`].
    pub(crate) fn check_responder(
        config: &SessionConfig,
        received: &Received,
    ) -> Result<PeerInfo, HandshakeError> {
        let identity = check_peer(config, MessageType::HelloAck, received)?;
        let (ours, theirs) = (config.versions, identity.versions);
        match ours.highest_common(theirs) {
            None => Err(HandshakeError::VersionMismatch { ours, theirs }),
            Some(version) if version != identity.version => {
                Err(HandshakeError::VersionChoiceInvalid { chosen: identity.version, ours, theirs })
            }
            Some(_) => Ok(peer_info(identity, received.remote_static)),
        }
    }

    /// Writes HelloFinish for a checked responder; returns its Noise bytes and the keys.
    pub(crate) fn finish(mut self, config: &SessionConfig, peer: &PeerInfo) -> (Bytes, Keys) {
        let noise = write(&mut self.state, &identity_payload(config, peer.version));
        let keys = split(&mut self.state, true);
        (noise, keys)
    }
}

/// The responder's side of one attempt, between HelloAck and HelloFinish.
pub(crate) struct Response {
    state: Box<HandshakeState>,
    /// The initiator's range from Hello.
    peer_versions: VersionRange,
    /// The version we chose.
    version: u16,
}

impl Response {
    /// Reads Hello with 32 bytes of `rng`, negotiates the version and writes HelloAck;
    /// returns the attempt and the Noise bytes of HelloAck.
    ///
    /// # Errors
    /// [`HandshakeError::Noise`] for a Hello Noise cannot read, a payload error, or
    /// [`HandshakeError::VersionMismatch`].
    pub(crate) fn accept(
        config: &SessionConfig,
        noise: &[u8],
        rng: &mut dyn RngCore,
    ) -> Result<(Self, Bytes), HandshakeError> {
        let mut state = build(config, false, rng);
        let received = read(&mut state, MessageType::Hello, noise)?;
        let peer_versions = payload::decode_hello(&received.payload)?;
        let version = config
            .versions
            .highest_common(peer_versions)
            .ok_or(HandshakeError::VersionMismatch { ours: config.versions, theirs: peer_versions })?;
        let noise = write(&mut state, &identity_payload(config, version));
        Ok((Self { state, peer_versions, version }, noise))
    }

    /// Reads HelloFinish; returns what it proved and the keys.
    ///
    /// # Errors
    /// [`HandshakeError::Noise`] when Noise rejects it; the attempt is then unchanged.
    /// [`HandshakeError::PskMismatch`] when, with a cluster secret, the initiator's static key
    /// decrypted (its `s` token is keyed by this attempt's `ee` and `es`, so only the holder
    /// of the attempt's ephemeral key wrote it) but the payload, keyed after the pre-shared
    /// key was mixed in, did not: the initiator holds another secret. The attempt must end.
    pub(crate) fn read_finish(
        &mut self,
        config: &SessionConfig,
        noise: &[u8],
    ) -> Result<(Received, Keys), HandshakeError> {
        // The responder of XX learns the initiator's static key from message 3 only.
        let knew_static = self.state.get_remote_static().is_some();
        match read(&mut self.state, MessageType::HelloFinish, noise) {
            Ok(received) => Ok((received, split(&mut self.state, false))),
            Err(error) => {
                // snow restores its symmetric state after a failed read but keeps the remote
                // static key it decrypted before the failure: that tells the two apart.
                let revealed =
                    self.state.get_remote_static().filter(|_| !knew_static && config.psk.is_some());
                match revealed.and_then(|key| <[u8; KEY_BYTES]>::try_from(key).ok()) {
                    Some(key) => Err(HandshakeError::PskMismatch { key }),
                    None => Err(error),
                }
            }
        }
    }

    /// Checks the initiator's HelloFinish against its Hello and our choice.
    ///
    /// # Errors
    /// A payload error, [`HandshakeError::PeerKeyRejected`],
    /// [`HandshakeError::DuplicateNodeId`], [`HandshakeError::VersionRangeChanged`] or
    /// [`HandshakeError::VersionChoiceInvalid`].
    pub(crate) fn check_initiator(
        &self,
        config: &SessionConfig,
        received: &Received,
    ) -> Result<PeerInfo, HandshakeError> {
        let identity = check_peer(config, MessageType::HelloFinish, received)?;
        if identity.versions != self.peer_versions {
            return Err(HandshakeError::VersionRangeChanged {
                hello: self.peer_versions,
                finish: identity.versions,
            });
        }
        if identity.version != self.version {
            return Err(HandshakeError::VersionChoiceInvalid {
                chosen: identity.version,
                ours: config.versions,
                theirs: identity.versions,
            });
        }
        Ok(peer_info(identity, received.remote_static))
    }
}

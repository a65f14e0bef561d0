//! Sealed entries (PROTOCOL.md 8.13): a node seals what it writes, every so often, with one
//! Ed25519 signature of its identity's key over the root of the range ([`crate::seal`]), and
//! takes a write from a relay only when its proof leads to a root signed by the key this node
//! has for the write's origin. A relay can therefore pass entries on, but can neither forge
//! an origin's entries nor alter them. An entry its origin pushes over its own session is
//! authenticated by that session: a write needs no proof ([`OriginKeys::check_from_origin`]),
//! and a seal is compared with the entries it covers when it is applied.
//!
//! Which key belongs to which origin, [`OriginKeys`] says. It learns a key
//!
//! - for this node itself, from its identity;
//! - for a neighbour, from the handshake: Noise proved the neighbour holds its static key, and
//!   the signing key is the one whose Montgomery form is that static key;
//! - for a pinned name (`SessionConfig::pinned_peer_keys`, with ids that are their names'
//!   hashes), from the pin, the same way;
//! - for an entry recovered from this node's own WAL, from its signer (the disk is trusted);
//! - otherwise, from the first entry of the origin that verifies under its own signer (trust
//!   on first use, as `known_peers` pins names).
//!
//! A neighbour's handshake outranks what was learned on first use: Noise authenticated it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};

use super::{Event, LinkId, Node, Output};
use crate::entry::{NodeId, Operation, VersionVector, WalEntry};
use crate::message::{self, Message};
use crate::seal::Seal;
use crate::session::{Identity, KEY_BYTES};
use crate::text::escape;

/// Origins whose keys a node keeps (as many as a version vector may name): an entry of a
/// further origin is refused, as if its signature failed.
pub const ORIGIN_KEYS_MAX: usize = message::VECTOR_ORIGINS_MAX;

/// How often a node reports refused entries of one origin for one reason (an
/// `Event::Rejected`); the first such refusal is reported at once.
pub const FORGED_REPORT_INTERVAL_NS: u64 = 60_000_000_000;

/// Signatures a [`SignatureMemo`] remembers, and decompressed keys it keeps; the oldest is
/// forgotten first.
pub const SIGNATURE_MEMO_MAX: usize = 65_536;

/// Signatures known to verify, shared by nodes that run in one process.
///
/// Whether an Ed25519 signature verifies is a pure function of the key, the signature and the
/// message. A simulation runs every node in one process, and an entry relayed through a mesh
/// is checked by every node it reaches: with one memo handed to all of them
/// (`NodeConfig::signature_memo`), its signature is verified once. Each node still looks up
/// the key it has for the origin and compares the signer, exactly as without the memo; only
/// the curve arithmetic is not repeated. A memo changes what a node decides in no case: it
/// holds the SHA-256 of `signer || signature || signing message` of signatures that verified,
/// so an entry whose message, signature or signer differs in any byte misses it and is
/// verified. It holds at most [`SIGNATURE_MEMO_MAX`] signatures.
///
/// It also keeps the public keys it has decompressed (a 200-node simulation would otherwise
/// decompress each origin's key at each of the 200 nodes), at most [`SIGNATURE_MEMO_MAX`].
///
/// ```
/// use ferry_protocol::node::SignatureMemo;
/// let memo = SignatureMemo::default();
/// let shared = memo.clone(); // the same memo
/// assert_eq!(shared.len(), memo.len());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SignatureMemo {
    inner: Arc<Mutex<MemoInner>>,
}

#[derive(Debug, Default)]
struct MemoInner {
    known: BTreeSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    /// Decompressed keys by their compressed form, and the order they came in.
    keys: BTreeMap<[u8; 32], VerifyingKey>,
    key_order: VecDeque<[u8; 32]>,
}

impl SignatureMemo {
    /// Signatures remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).order.len()
    }

    /// Whether it remembers none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key(signer: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(signer);
        hash.update(signature);
        hash.update(message);
        hash.finalize().into()
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).known.contains(key)
    }

    fn insert(&self, key: [u8; 32]) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.known.insert(key) {
            inner.order.push_back(key);
            if inner.order.len() > SIGNATURE_MEMO_MAX
                && let Some(oldest) = inner.order.pop_front()
            {
                inner.known.remove(&oldest);
            }
        }
    }

    /// `bytes` as an Ed25519 public key. Decompressing a point costs a field exponentiation
    /// (about as much as a tenth of a verification), and in a simulation every node learns
    /// every origin's key: the memo decompresses each key once. Like a signature, whether
    /// and to what a key decompresses is a pure function of its bytes; keys that fail are not
    /// remembered (they are refused anyway). At most [`SIGNATURE_MEMO_MAX`] keys.
    fn verifying_key(&self, bytes: &[u8; 32]) -> Result<VerifyingKey, Forgery> {
        if let Some(key) = self.inner.lock().unwrap_or_else(PoisonError::into_inner).keys.get(bytes) {
            return Ok(*key);
        }
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| Forgery::InvalidSigner)?;
        self.remember_key(*bytes, key);
        Ok(key)
    }

    fn remember_key(&self, bytes: [u8; 32], key: VerifyingKey) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.keys.insert(bytes, key).is_none() {
            inner.key_order.push_back(bytes);
            if inner.key_order.len() > SIGNATURE_MEMO_MAX
                && let Some(oldest) = inner.key_order.pop_front()
            {
                inner.keys.remove(&oldest);
            }
        }
    }

    #[cfg(test)]
    fn keys_held(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).keys.len()
    }
}

/// The key a node has for one origin.
#[derive(Debug, Clone)]
enum OriginKey {
    /// Its static X25519 key (a handshake, a pinned name): the first signed entry whose
    /// signer converts to it settles the Ed25519 key.
    Static([u8; KEY_BYTES]),
    /// Its Ed25519 key, decompressed once.
    Signer(VerifyingKey),
}

/// Why an entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Forgery {
    /// It names a signer other than the key this node has for its origin.
    OtherSigner,
    /// Its signer is not an Ed25519 public key.
    InvalidSigner,
    /// Its signature does not verify.
    BadSignature,
    /// Its origin is new and the node keeps keys for [`ORIGIN_KEYS_MAX`] origins already.
    TooManyOrigins,
    /// A write relayed without a proof of its origin.
    Unproven,
    /// A proof whose path does not fit its seal, or a seal that carries a proof.
    BadProof,
    /// A seal whose root is not that of the entries of its range this node holds from the
    /// origin itself: the origin signed another history.
    OtherHistory,
}

impl std::fmt::Display for Forgery {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::OtherSigner => "signed by a key that is not its origin's",
            Self::InvalidSigner => "its signer is not an Ed25519 public key",
            Self::BadSignature => "its signature does not verify",
            Self::TooManyOrigins => "the node keeps keys for 4096 origins already",
            Self::Unproven => "it was relayed without a proof of its origin",
            Self::BadProof => "its proof does not fit its seal",
            Self::OtherHistory => "its seal covers other entries than the origin sent",
        })
    }
}

/// Each origin's key, the buffer signing messages are built in, and the memo of verified
/// signatures this node shares, if any.
#[derive(Debug)]
pub(crate) struct OriginKeys {
    keys: BTreeMap<NodeId, OriginKey>,
    message: BytesMut,
    memo: SignatureMemo,
}

impl OriginKeys {
    /// The keys of a node with `identity` and id `own`.
    pub(crate) fn new(own: NodeId, identity: &Identity, memo: Option<SignatureMemo>) -> Self {
        // Without a shared memo a node keeps its own: a relay sends up to 256 writes under
        // one seal, and its signature needs verifying once.
        let memo = memo.unwrap_or_default();
        let mut keys = BTreeMap::new();
        if let Ok(key) = memo.verifying_key(&identity.signing_public()) {
            keys.insert(own, OriginKey::Signer(key));
        }
        Self { keys, message: BytesMut::new(), memo }
    }

    /// Origins with a key.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// A handshake or a pin proved `origin`'s static key: it replaces whatever was learned
    /// before, unless the Ed25519 key held already converts to it.
    pub(crate) fn pin_static(&mut self, origin: NodeId, static_key: [u8; KEY_BYTES]) {
        let same = match self.keys.get(&origin) {
            Some(OriginKey::Signer(key)) => key.to_montgomery().to_bytes() == static_key,
            Some(OriginKey::Static(held)) => *held == static_key,
            None => false,
        };
        if !same && (self.keys.len() < ORIGIN_KEYS_MAX || self.keys.contains_key(&origin)) {
            self.keys.insert(origin, OriginKey::Static(static_key));
        }
    }

    /// An entry read back from this node's own WAL: the signer of its seal or proof is
    /// `origin`'s key unless one is known already (nothing is verified: the node wrote the
    /// entry after checking it).
    pub(crate) fn learn(&mut self, entry: &WalEntry) {
        if self.keys.len() >= ORIGIN_KEYS_MAX || self.keys.contains_key(&entry.origin) {
            return;
        }
        let signer = match (&entry.operation, &entry.proof) {
            (Operation::Seal(seal), _) => &seal.signer,
            (_, Some(proof)) => proof.signed().0,
            _ => return,
        };
        if let Ok(key) = self.memo.verifying_key(signer) {
            self.keys.insert(entry.origin, OriginKey::Signer(key));
        }
    }

    /// Checks an entry that its origin itself sent, over a session whose handshake proved the
    /// origin's static key: the session authenticates it. A write needs nothing more; a seal
    /// must name the origin's key (learned from the static key), and its root is compared with
    /// the entries when it is applied (PROTOCOL.md 8.13).
    pub(crate) fn check_from_origin(&mut self, entry: &WalEntry) -> Result<(), Forgery> {
        let Operation::Seal(seal) = &entry.operation else { return Ok(()) };
        let signer = &seal.signer;
        match self.keys.get(&entry.origin) {
            Some(OriginKey::Signer(key)) if key.as_bytes() == signer => Ok(()),
            Some(OriginKey::Static(static_key)) => {
                let key = self.memo.verifying_key(signer)?;
                if key.to_montgomery().to_bytes() != *static_key {
                    return Err(Forgery::OtherSigner);
                }
                self.keys.insert(entry.origin, OriginKey::Signer(key));
                Ok(())
            }
            // A neighbour's key is pinned when its session begins; without one, check fully.
            None => self.check(entry),
            Some(OriginKey::Signer(_)) => Err(Forgery::OtherSigner),
        }
    }

    /// Checks an entry a relay sent: a write must carry a proof whose path leads to a root
    /// that its origin's key signed; a seal must be signed by that key. Learns the key on
    /// first use.
    pub(crate) fn check(&mut self, entry: &WalEntry) -> Result<(), Forgery> {
        let seal = match (&entry.operation, &entry.proof) {
            (Operation::Seal(seal), None) => Seal::clone(seal),
            (Operation::Seal(_), Some(_)) => return Err(Forgery::BadProof),
            (_, None) => return Err(Forgery::Unproven),
            (_, Some(proof)) => proof.seal_for(entry).map_err(|_| Forgery::BadProof)?,
        };
        self.check_seal(&seal)
    }

    /// Checks that `seal` is signed by its origin's key, learning the key on first use.
    fn check_seal(&mut self, seal: &Seal) -> Result<(), Forgery> {
        let signer = &seal.signer;
        let known = self.keys.get(&seal.origin);
        let key = match known {
            Some(OriginKey::Signer(key)) if key.as_bytes() == signer => *key,
            Some(OriginKey::Signer(_)) => return Err(Forgery::OtherSigner),
            Some(OriginKey::Static(_)) | None => {
                if known.is_none() && self.keys.len() >= ORIGIN_KEYS_MAX {
                    return Err(Forgery::TooManyOrigins);
                }
                let key = self.memo.verifying_key(signer)?;
                if let Some(OriginKey::Static(static_key)) = known
                    && key.to_montgomery().to_bytes() != *static_key
                {
                    return Err(Forgery::OtherSigner);
                }
                key
            }
        };
        self.message.clear();
        self.message.extend_from_slice(&seal.message());
        let memo_key = SignatureMemo::key(key.as_bytes(), &seal.signature, &self.message);
        if !self.memo.contains(&memo_key) {
            key.verify_strict(&self.message, &Signature::from_bytes(&seal.signature))
                .map_err(|_| Forgery::BadSignature)?;
            self.memo.insert(memo_key);
        }
        if !matches!(self.keys.get(&seal.origin), Some(OriginKey::Signer(_))) {
            self.keys.insert(seal.origin, OriginKey::Signer(key));
        }
        Ok(())
    }
}

impl Node {
    /// Entries that failed [`OriginKeys::check`] arrived on `link`: `forged` holds, per
    /// origin and reason, how many and the highest sequence. Counts them, reports them (at
    /// most once a minute per origin and reason, naming the peer), and tells the sender in a pull
    /// naming only those origins that it need not push them again in this session. Unlike a
    /// member refusal (8.12) the positions are not reported to other neighbours: they may
    /// hold the genuine entries.
    pub(crate) fn refuse_forged(
        &mut self,
        now_ns: u64,
        link: LinkId,
        forged: &[(NodeId, u64, u64, Forgery)],
    ) {
        let peer_name = self.peers.get(&link).map(|peer| peer.name.clone()).unwrap_or_default();
        let mut tell = VersionVector::new();
        for &(origin, count, highest, why) in forged {
            self.stats.entries_forged += count;
            tell.set(origin, highest.max(tell.get(origin)));
            let known = self.forged.contains_key(&(origin, why));
            if !known && self.forged.len() >= ORIGIN_KEYS_MAX {
                continue;
            }
            let throttle = self.forged.entry((origin, why)).or_default();
            if let Some(count) = throttle.count(now_ns, count, FORGED_REPORT_INTERVAL_NS) {
                let reason = format!(
                    "refused {count} entries of origin {origin} from peer \"{}\": {} (PROTOCOL.md 8.13; \
                     reported at most once a minute per origin and reason)",
                    escape(&peer_name),
                    why
                );
                self.outputs.push_back(Output::Event(Event::Rejected { link, reason }));
            }
        }
        if !tell.is_empty() && self.peers.get(&link).is_some_and(|peer| peer.node_id.is_some()) {
            self.send_message(link, &Message::OutboxPull { vector: tell });
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::entry::{Operation, Timestamp};
    use crate::seal::{PathProof, Proof, SealTree};

    fn identity(seed: u8) -> Identity {
        Identity::from_seed([seed; KEY_BYTES])
    }

    fn put(origin: NodeId, sequence: u64, value: &'static [u8]) -> WalEntry {
        let operation = Operation::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(value) };
        WalEntry::new(origin, sequence, Timestamp::new(10, 0), operation)
    }

    /// Entry 2 of a seal over three writes of `origin` by `identity`, with its proof as a
    /// relay sends it.
    fn signed(identity: &Identity, origin: NodeId, value: &'static [u8]) -> WalEntry {
        let writes = [put(origin, 1, b"one"), put(origin, 2, value), put(origin, 3, b"three")];
        let tree = Arc::new(SealTree::create(identity, &writes).expect("a range"));
        let mut entry = writes[1].clone();
        let proof = tree.proof(2).expect("in range");
        let mut path = Vec::new();
        proof.path_into(&mut path);
        let (first, last) = proof.range();
        let (signer, signature) = proof.signed();
        entry.proof = Some(Proof::Path(Arc::new(PathProof {
            first,
            last,
            signer: *signer,
            signature: *signature,
            path,
        })));
        entry
    }

    /// `entry` with its proof changed by `change`.
    fn altered_proof(entry: &WalEntry, change: impl FnOnce(&mut PathProof)) -> WalEntry {
        let mut entry = entry.clone();
        let Some(Proof::Path(proof)) = &entry.proof else { panic!("a path proof") };
        let mut proof = PathProof::clone(proof);
        change(&mut proof);
        entry.proof = Some(Proof::Path(Arc::new(proof)));
        entry
    }

    #[test]
    fn an_entry_verifies_under_its_origins_key_and_nothing_else() {
        let (alice, mallory) = (identity(1), identity(2));
        let (a, b, m) = (NodeId(1), NodeId(2), NodeId(3));
        let mut keys = OriginKeys::new(b, &identity(9), None);
        keys.pin_static(a, alice.public);
        let genuine = signed(&alice, a, b"v");
        assert_eq!(keys.check(&genuine), Ok(()));

        // Altered in transit: any field, or the proof itself.
        let mut altered = genuine.clone();
        altered.operation = Operation::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"w") };
        assert_eq!(keys.check(&altered), Err(Forgery::BadSignature));
        let mut altered = genuine.clone();
        altered.timestamp = Timestamp(u64::MAX);
        assert_eq!(keys.check(&altered), Err(Forgery::BadSignature));
        let altered = altered_proof(&genuine, |proof| proof.signature[0] ^= 1);
        assert_eq!(keys.check(&altered), Err(Forgery::BadSignature));
        let altered = altered_proof(&genuine, |proof| proof.path[0][0] ^= 1);
        assert_eq!(keys.check(&altered), Err(Forgery::BadSignature));
        let altered = altered_proof(&genuine, |proof| proof.last += 1);
        assert_ne!(keys.check(&altered), Ok(()));
        let altered = altered_proof(&genuine, |proof| proof.first = 3);
        assert_eq!(keys.check(&altered), Err(Forgery::BadProof));

        // Written by mallory under alice's id: a valid seal, by the wrong key.
        let forged = signed(&mallory, a, b"v");
        assert_eq!(keys.check(&forged), Err(Forgery::OtherSigner));
        // A relayed write without a proof proves nothing.
        let mut unproven = genuine.clone();
        unproven.proof = None;
        assert_eq!(keys.check(&unproven), Err(Forgery::Unproven));

        // An origin met only through relays is learned from its first entry (trust on first
        // use), and holds from then on; a handshake with it overrides.
        let first = signed(&mallory, m, b"v");
        assert_eq!(keys.check(&first), Ok(()));
        let other = signed(&alice, m, b"v");
        assert_eq!(keys.check(&other), Err(Forgery::OtherSigner));
        keys.pin_static(m, alice.public);
        assert_eq!(keys.check(&other), Ok(()));
        assert_eq!(keys.check(&first), Err(Forgery::OtherSigner));
    }

    #[test]
    fn a_relayed_seal_verifies_under_its_origins_key_and_carries_no_proof() {
        let (alice, mallory) = (identity(1), identity(2));
        let a = NodeId(1);
        let mut keys = OriginKeys::new(NodeId(2), &identity(9), None);
        keys.pin_static(a, alice.public);
        let writes = [put(a, 1, b"one"), put(a, 2, b"two")];
        let tree = SealTree::create(&alice, &writes).expect("a range");
        let seal = WalEntry::new(a, 3, Timestamp::new(11, 0), Operation::Seal(Arc::new(tree.seal.clone())));
        assert_eq!(keys.check(&seal), Ok(()));
        let mut bent = tree.seal.clone();
        bent.root[0] ^= 1;
        let bent = WalEntry { operation: Operation::Seal(Arc::new(bent)), ..seal.clone() };
        assert_eq!(keys.check(&bent), Err(Forgery::BadSignature));
        let with_proof = WalEntry { proof: signed(&alice, a, b"v").proof, ..seal.clone() };
        assert_eq!(keys.check(&with_proof), Err(Forgery::BadProof));
        let theirs = SealTree::create(&mallory, &writes).expect("a range");
        let theirs = WalEntry { operation: Operation::Seal(Arc::new(theirs.seal.clone())), ..seal };
        assert_eq!(keys.check(&theirs), Err(Forgery::OtherSigner));
        assert_eq!(keys.check_from_origin(&theirs), Err(Forgery::OtherSigner));
    }

    #[test]
    fn a_write_from_its_origin_needs_no_proof() {
        // Its session vouches for it; proofs are for the nodes it is relayed to.
        let alice = identity(1);
        let a = NodeId(1);
        let mut keys = OriginKeys::new(NodeId(2), &identity(9), None);
        keys.pin_static(a, alice.public);
        let unproven = put(a, 1, b"v");
        assert_eq!(keys.check_from_origin(&unproven), Ok(()));
        assert_eq!(keys.check(&unproven), Err(Forgery::Unproven), "relayed, it is refused");
    }

    #[test]
    fn the_table_is_bounded() {
        let alice = identity(1);
        let mut keys = OriginKeys::new(NodeId(0), &identity(9), None);
        for origin in 1..ORIGIN_KEYS_MAX as u64 {
            keys.pin_static(NodeId(origin), alice.public);
        }
        assert_eq!(keys.len(), ORIGIN_KEYS_MAX);
        let entry = signed(&alice, NodeId(u64::MAX), b"v");
        assert_eq!(keys.check(&entry), Err(Forgery::TooManyOrigins));
        let known = signed(&alice, NodeId(7), b"v");
        assert_eq!(keys.check(&known), Ok(()));
    }

    #[test]
    fn a_shared_memo_verifies_once_and_misses_on_any_changed_byte() {
        let alice = identity(1);
        let a = NodeId(1);
        let memo = SignatureMemo::default();
        let mut first = OriginKeys::new(NodeId(2), &identity(8), Some(memo.clone()));
        let mut second = OriginKeys::new(NodeId(3), &identity(9), Some(memo.clone()));
        let genuine = signed(&alice, a, b"v");
        assert_eq!(first.check(&genuine), Ok(()));
        assert_eq!(memo.len(), 1);
        assert_eq!(second.check(&genuine), Ok(()));
        assert_eq!(memo.len(), 1, "the second node found it in the memo");

        // The memo holds the genuine seal's signature, and nothing altered matches it: a
        // different value (another root), or the same entry under a signature not its own.
        let mut altered = genuine.clone();
        altered.operation = Operation::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"w") };
        assert_eq!(second.check(&altered), Err(Forgery::BadSignature));
        let altered = altered_proof(&genuine, |proof| proof.signature[63] ^= 0x10);
        assert_eq!(second.check(&altered), Err(Forgery::BadSignature));
        assert_eq!(memo.len(), 1, "refused signatures are not remembered");

        // The memo really answers: a signature it holds is not verified again. (Which is why
        // only signatures that verified may enter it.)
        let unverifiable = altered_proof(&signed(&alice, a, b"x"), |proof| proof.signature[0] ^= 1);
        let seal = unverifiable.proof.as_ref().expect("a proof").seal_for(&unverifiable).expect("in range");
        memo.insert(SignatureMemo::key(&alice.signing_public(), &seal.signature, &seal.message()));
        assert_eq!(second.check(&unverifiable), Ok(()));
    }

    #[test]
    fn the_memo_is_bounded_and_forgets_the_oldest() {
        let memo = SignatureMemo::default();
        for index in 0..=SIGNATURE_MEMO_MAX as u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&index.to_le_bytes());
            memo.insert(key);
        }
        assert_eq!(memo.len(), SIGNATURE_MEMO_MAX);
        assert!(!memo.contains(&[0u8; 32]));
        let mut newest = [0u8; 32];
        newest[..4].copy_from_slice(&(SIGNATURE_MEMO_MAX as u32).to_le_bytes());
        assert!(memo.contains(&newest));
    }

    #[test]
    fn the_memo_decompresses_a_key_once_and_remembers_no_invalid_one() {
        let memo = SignatureMemo::default();
        let public = identity(8).signing_public();
        let key = memo.verifying_key(&public).expect("a genuine key");
        assert_eq!(key, VerifyingKey::from_bytes(&public).expect("a genuine key"));
        assert_eq!(memo.keys_held(), 1);
        // A remembered key is answered from the memo: one planted under other bytes proves it.
        let other = identity(9).signing_public();
        memo.remember_key(other, key);
        assert_eq!(memo.verifying_key(&other).expect("remembered"), key);
        // Bytes that are no point fail every time and are not kept.
        let invalid = (0u8..=255)
            .map(|first| {
                let mut bytes = [0u8; 32];
                bytes[0] = first;
                bytes
            })
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .expect("about half of all y are no point's");
        assert_eq!(memo.verifying_key(&invalid), Err(Forgery::InvalidSigner));
        assert_eq!(memo.keys_held(), 2);
        for index in 0..SIGNATURE_MEMO_MAX as u32 {
            let mut bytes = [0xffu8; 32];
            bytes[..4].copy_from_slice(&index.to_le_bytes());
            memo.remember_key(bytes, key);
        }
        assert_eq!(memo.keys_held(), SIGNATURE_MEMO_MAX);
        assert_ne!(memo.verifying_key(&other), Ok(key), "the oldest were forgotten first");
    }
}

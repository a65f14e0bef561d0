//! Seals (PROTOCOL.md 8.13): one Ed25519 signature over a range of an origin's entries,
//! through the RFC 6962 root of their leaves.
//!
//! An origin's entries travel to its neighbours without a proof: the session they arrive on
//! authenticates them. Every so often the origin *seals* what it wrote since its last seal: it
//! signs `"ferry seal v1" || origin || first || last || root` (varints, then the 32-byte
//! root of the range's leaves) and appends the seal to its log as an entry of its own, so it
//! replicates like any write. An entry's leaf is `SHA-256(0x00 || fields)`, the fields
//! encoded as a WalPush encodes them up to the value (RFC 6962's leaf hash; the seal's own
//! context separates it from every other use). A node relays
//! another origin's entry only with its [`Proof`]: the seal's range and signature and the
//! entry's audit path, which lead any node to the signed root.
//!
//! ```
//! use std::sync::Arc;
//!
//! use ferry_protocol::seal::SealTree;
//! use ferry_protocol::session::Identity;
//! use ferry_protocol::{NodeId, Operation, Timestamp, WalEntry};
//!
//! let identity = Identity::from_seed([7; 32]);
//! let entries: Vec<WalEntry> = (1..=3)
//!     .map(|sequence| {
//!         let operation = Operation::Delete { key: "k".into() };
//!         WalEntry::new(NodeId(1), sequence, Timestamp::new(10, 0), operation)
//!     })
//!     .collect();
//! let sealed = Arc::new(SealTree::create(&identity, &entries).expect("one origin, contiguous"));
//! assert!(sealed.seal.verify().is_ok());
//! let proof = sealed.proof(2).expect("entry 2 is in range");
//! assert!(proof.proves(&entries[1]).is_ok());
//! assert!(proof.proves(&entries[0]).is_err());
//! ```

use std::sync::Arc;

use bytes::BytesMut;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::entry::{NodeId, Operation, SIGNATURE_BYTES, SIGNER_BYTES, WalEntry};
use crate::merkle::{self, Hash};
use crate::session::Identity;
use crate::varint;

/// What a seal's signature covers first.
pub const SEAL_SIGNING_CONTEXT: &[u8] = b"ferry seal v1";

/// Entries one seal covers at most.
pub const SEAL_ENTRIES_MAX: u64 = 256;

/// How long an origin with a neighbour leaves a write unsealed at most, by default
/// (`NodeConfig::seal_delay_ns`; steady time).
pub const SEAL_DELAY_NS: u64 = 1_000_000_000;

/// One signature over entries `first..=last` of `origin`, through the root of their tree.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Seal {
    /// The origin whose entries it covers.
    pub origin: NodeId,
    /// The first sequence covered.
    pub first: u64,
    /// The last sequence covered.
    pub last: u64,
    /// The RFC 6962 root of the range's leaves.
    pub root: Hash,
    /// The origin's Ed25519 public key.
    pub signer: [u8; SIGNER_BYTES],
    /// The Ed25519 signature of the seal's signing message.
    pub signature: [u8; SIGNATURE_BYTES],
}

/// The first four bytes of a hash, key or signature in hex, then `…`: enough to tell them
/// apart in a test's output.
struct Short<'a>(&'a [u8]);

impl std::fmt::Debug for Short<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.0.iter().take(4) {
            write!(formatter, "{byte:02x}")?;
        }
        formatter.write_str("…")
    }
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Seal")
            .field("origin", &self.origin)
            .field("first", &self.first)
            .field("last", &self.last)
            .field("root", &Short(&self.root))
            .field("signer", &Short(&self.signer))
            .field("signature", &Short(&self.signature))
            .finish()
    }
}

/// Why a seal could not be made, or does not prove an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No entries, more than [`SEAL_ENTRIES_MAX`], entries of two origins, or sequences
    /// that are not consecutive.
    #[error("a seal covers 1 to 256 consecutive entries of one origin")]
    NotARange,
    /// The entry's sequence is outside the seal's range, or the range is not one.
    #[error("the entry is not in the seal's range")]
    OutsideRange,
    /// The audit path does not fit the range's tree.
    #[error("the audit path does not fit the seal's tree")]
    BadPath,
    /// The signer is not an Ed25519 public key.
    #[error("the seal's signer is not an Ed25519 public key")]
    InvalidSigner,
    /// The signature does not verify over the root.
    #[error("the seal's signature does not verify")]
    BadSignature,
}

/// An entry's leaf hash: `SHA-256(0x00 || fields)` (RFC 6962's leaf), the fields hashed
/// as [`encode_entry_fields`](crate::message::encode_entry_fields) writes them, without
/// copying them.
#[must_use]
pub fn entry_leaf(entry: &WalEntry) -> Hash {
    fn update_varint(hasher: &mut Sha256, value: u64) {
        let mut buffer = [0u8; varint::VARINT_BYTES_MAX];
        let length = varint::encode_to_array(value, &mut buffer);
        hasher.update(&buffer[..length]);
    }
    fn update_bytes(hasher: &mut Sha256, bytes: &[u8]) {
        update_varint(hasher, bytes.len() as u64);
        hasher.update(bytes);
    }
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    update_varint(&mut hasher, entry.origin.0);
    update_varint(&mut hasher, entry.sequence);
    update_varint(&mut hasher, entry.timestamp.0);
    match &entry.operation {
        Operation::Put { key, value } => {
            hasher.update([0]);
            update_bytes(&mut hasher, key);
            update_bytes(&mut hasher, value);
        }
        Operation::Delete { key } => {
            hasher.update([1]);
            update_bytes(&mut hasher, key);
        }
        Operation::Seal(seal) => {
            hasher.update([2]);
            update_varint(&mut hasher, seal.first);
            update_varint(&mut hasher, seal.last);
            hasher.update(seal.root);
            hasher.update(seal.signer);
            hasher.update(seal.signature);
        }
    }
    hasher.finalize().into()
}

/// Leaves in a range of `first..=last`, if it is one a seal may cover.
fn range_size(first: u64, last: u64) -> Option<u64> {
    let size = last.checked_sub(first)?.checked_add(1)?;
    (first >= 1 && size <= SEAL_ENTRIES_MAX).then_some(size)
}

impl Seal {
    /// The bytes a seal of `first..=last` of `origin` with tree root `root` signs.
    #[must_use]
    pub fn signing_message(origin: NodeId, first: u64, last: u64, root: &Hash) -> Vec<u8> {
        let mut out = BytesMut::with_capacity(SEAL_SIGNING_CONTEXT.len() + 30 + root.len());
        out.extend_from_slice(SEAL_SIGNING_CONTEXT);
        varint::encode(origin.0, &mut out);
        varint::encode(first, &mut out);
        varint::encode(last, &mut out);
        out.extend_from_slice(root);
        out.to_vec()
    }

    /// This seal's signing message.
    #[must_use]
    pub fn message(&self) -> Vec<u8> {
        Self::signing_message(self.origin, self.first, self.last, &self.root)
    }

    /// Checks the signature under the seal's signer, with RFC 8032's strict rules. Whether
    /// the signer is the origin's key is the caller's to know (PROTOCOL.md 8.13).
    ///
    /// # Errors
    /// [`SealError::InvalidSigner`], [`SealError::BadSignature`].
    pub fn verify(&self) -> Result<(), SealError> {
        let key = VerifyingKey::from_bytes(&self.signer).map_err(|_| SealError::InvalidSigner)?;
        key.verify_strict(&self.message(), &Signature::from_bytes(&self.signature))
            .map_err(|_| SealError::BadSignature)
    }
}

/// A seal and the tree of its range: what the origin makes, and what a node that holds the
/// whole range rebuilds; it gives any of the range's entries its [`Proof`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealTree {
    /// The seal.
    pub seal: Seal,
    tree: merkle::Tree,
}

impl SealTree {
    /// Seals `entries`, consecutive entries of one origin, as `identity` (its origin's).
    ///
    /// # Errors
    /// [`SealError::NotARange`].
    pub fn create(identity: &Identity, entries: &[WalEntry]) -> Result<Self, SealError> {
        Self::create_from(identity, entries)
    }

    /// [`create`](Self::create) over entries by reference.
    ///
    /// # Errors
    /// [`SealError::NotARange`].
    pub fn create_from<'a>(
        identity: &Identity,
        entries: impl IntoIterator<Item = &'a WalEntry>,
    ) -> Result<Self, SealError> {
        let mut leaves = Vec::new();
        let mut range: Option<(NodeId, u64, u64)> = None;
        for entry in entries {
            match &mut range {
                None => range = Some((entry.origin, entry.sequence, entry.sequence)),
                Some((origin, _, last)) if *origin == entry.origin && entry.sequence == *last + 1 => {
                    *last = entry.sequence;
                }
                Some(_) => return Err(SealError::NotARange),
            }
            if entry.is_seal() || leaves.len() as u64 >= SEAL_ENTRIES_MAX {
                return Err(SealError::NotARange);
            }
            leaves.push(entry_leaf(entry));
        }
        let (origin, first, last) = range.ok_or(SealError::NotARange)?;
        let tree = merkle::Tree::new(leaves);
        let root = tree.root();
        let signature = identity.sign(&Seal::signing_message(origin, first, last, &root));
        Ok(Self {
            seal: Seal { origin, first, last, root, signer: identity.signing_public(), signature },
            tree,
        })
    }

    /// The tree of `seal` over `entries`, its whole range in order, if their root is the one
    /// it signed (the signature is not checked here).
    ///
    /// # Errors
    /// [`SealError::NotARange`] when the entries are not the range; [`SealError::BadPath`]
    /// when their root is not the seal's.
    pub fn rebuild<'a>(
        seal: Seal,
        entries: impl IntoIterator<Item = &'a WalEntry>,
    ) -> Result<Self, SealError> {
        let size = range_size(seal.first, seal.last).ok_or(SealError::NotARange)?;
        let mut leaves = Vec::with_capacity(size as usize);
        for (entry, sequence) in entries.into_iter().zip(seal.first..) {
            // A range holds writes only: a seal over another seal proves nothing.
            if entry.origin != seal.origin || entry.sequence != sequence || entry.is_seal() {
                return Err(SealError::NotARange);
            }
            leaves.push(entry_leaf(entry));
        }
        if leaves.len() as u64 != size {
            return Err(SealError::NotARange);
        }
        let tree = merkle::Tree::new(leaves);
        if tree.root() != seal.root {
            return Err(SealError::BadPath);
        }
        Ok(Self { seal, tree })
    }

    /// The proof of the entry at `sequence`, if it is in range.
    #[must_use]
    pub fn proof(self: &Arc<Self>, sequence: u64) -> Option<Proof> {
        let index = sequence.checked_sub(self.seal.first).filter(|_| sequence <= self.seal.last)?;
        Some(Proof::InTree(Arc::clone(self), u32::try_from(index).ok()?))
    }
}

/// The seal's fields and audit path that an entry relayed or in a snapshot carries.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PathProof {
    /// The seal's first sequence.
    pub first: u64,
    /// The seal's last sequence.
    pub last: u64,
    /// The origin's Ed25519 public key.
    pub signer: [u8; SIGNER_BYTES],
    /// The seal's signature.
    pub signature: [u8; SIGNATURE_BYTES],
    /// The entry's audit path, from the leaf up.
    pub path: Vec<Hash>,
}

impl std::fmt::Debug for PathProof {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Proof::Path(Arc::new(self.clone())).fmt(formatter)
    }
}

/// What proves an entry was written by its origin, whoever relays it: a seal and the entry's
/// audit path. Kept out of line (a pointer), so an entry without one costs nothing.
#[derive(Clone)]
pub enum Proof {
    /// From a seal whose tree this node holds: the entry is leaf `index`.
    InTree(Arc<SealTree>, u32),
    /// As received: the seal's fields and the path.
    Path(Arc<PathProof>),
}

impl Proof {
    /// The seal's range.
    #[must_use]
    pub fn range(&self) -> (u64, u64) {
        match self {
            Self::InTree(sealed, _) => (sealed.seal.first, sealed.seal.last),
            Self::Path(proof) => (proof.first, proof.last),
        }
    }

    /// The seal's signer and signature.
    #[must_use]
    pub fn signed(&self) -> (&[u8; SIGNER_BYTES], &[u8; SIGNATURE_BYTES]) {
        match self {
            Self::InTree(sealed, _) => (&sealed.seal.signer, &sealed.seal.signature),
            Self::Path(proof) => (&proof.signer, &proof.signature),
        }
    }

    /// Appends the entry's audit path to `out`.
    pub fn path_into(&self, out: &mut Vec<Hash>) {
        match self {
            Self::InTree(sealed, index) => sealed.tree.path_into(*index as usize, out),
            Self::Path(proof) => out.extend_from_slice(&proof.path),
        }
    }

    /// Hashes in the audit path.
    #[must_use]
    pub fn path_len(&self) -> usize {
        match self {
            Self::InTree(sealed, index) => {
                merkle::path_len(u64::from(*index), sealed.seal.last - sealed.seal.first + 1).unwrap_or(0)
            }
            Self::Path(proof) => proof.path.len(),
        }
    }

    /// The root `entry` leads to along this proof's path: what the seal must have signed.
    ///
    /// # Errors
    /// [`SealError::OutsideRange`] or [`SealError::BadPath`].
    pub fn root_for(&self, entry: &WalEntry) -> Result<Hash, SealError> {
        let (first, last) = self.range();
        let size = range_size(first, last).ok_or(SealError::OutsideRange)?;
        if entry.sequence < first || entry.sequence > last {
            return Err(SealError::OutsideRange);
        }
        if let Self::InTree(sealed, index) = self {
            if sealed.seal.origin == entry.origin
                && u64::from(*index) == entry.sequence - first
                && sealed.tree.leaf(*index as usize) == Some(&entry_leaf(entry))
            {
                return Ok(sealed.seal.root);
            }
            return Err(SealError::BadPath);
        }
        let mut path = Vec::new();
        self.path_into(&mut path);
        merkle::root_from_path(&entry_leaf(entry), entry.sequence - first, size, &path)
            .ok_or(SealError::BadPath)
    }

    /// The seal this proof names for `entry`, its root recomputed from the entry and path.
    ///
    /// # Errors
    /// As [`root_for`](Self::root_for).
    pub fn seal_for(&self, entry: &WalEntry) -> Result<Seal, SealError> {
        let root = self.root_for(entry)?;
        let (first, last) = self.range();
        let (signer, signature) = self.signed();
        Ok(Seal { origin: entry.origin, first, last, root, signer: *signer, signature: *signature })
    }

    /// Checks that this proof proves `entry`: the entry is in range, its path leads to a
    /// root, and the signature verifies over it under the seal's signer (strictly). Whether
    /// the signer is the origin's key is the caller's to know.
    ///
    /// # Errors
    /// Which check failed.
    pub fn proves(&self, entry: &WalEntry) -> Result<(), SealError> {
        self.seal_for(entry)?.verify()
    }
}

impl PartialEq for Proof {
    fn eq(&self, other: &Self) -> bool {
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        self.path_into(&mut mine);
        other.path_into(&mut theirs);
        self.range() == other.range() && self.signed() == other.signed() && mine == theirs
    }
}

impl Eq for Proof {}

impl std::hash::Hash for Proof {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.range().hash(state);
        self.signed().hash(state);
    }
}

impl std::fmt::Debug for Proof {
    /// The same text for both forms: the fields a proof carries on the wire.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (first, last) = self.range();
        let (signer, signature) = self.signed();
        let mut path = Vec::new();
        self.path_into(&mut path);
        let path: Vec<Short<'_>> = path.iter().map(|hash| Short(hash)).collect();
        formatter
            .debug_struct("Proof")
            .field("first", &first)
            .field("last", &last)
            .field("signer", &Short(signer))
            .field("signature", &Short(signature))
            .field("path", &path)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::entry::Timestamp;
    use crate::message;
    use crate::session::KEY_BYTES;

    fn entries(origin: u64, first: u64, count: u64) -> Vec<WalEntry> {
        (first..first + count)
            .map(|sequence| {
                let operation = Operation::Put {
                    key: Bytes::from(format!("key-{}", sequence % 5)),
                    value: Bytes::from(format!("value-{sequence}")),
                };
                WalEntry::new(NodeId(origin), sequence, Timestamp::new(10 + sequence, 0), operation)
            })
            .collect()
    }

    /// The proof of `entry` in `tree` as a relay sends it, its path written out.
    fn sent(tree: &Arc<SealTree>, sequence: u64) -> Proof {
        let proof = tree.proof(sequence).expect("in range");
        let mut path = Vec::new();
        proof.path_into(&mut path);
        let (first, last) = proof.range();
        let (signer, signature) = proof.signed();
        Proof::Path(Arc::new(PathProof { first, last, signer: *signer, signature: *signature, path }))
    }

    fn bent(proof: &Proof, change: impl FnOnce(&mut PathProof)) -> Proof {
        let Proof::Path(proof) = proof else { panic!("a path proof") };
        let mut proof = PathProof::clone(proof);
        change(&mut proof);
        Proof::Path(Arc::new(proof))
    }

    #[test]
    fn every_entry_of_a_seal_is_proven_and_nothing_else() {
        let identity = Identity::from_seed([1; KEY_BYTES]);
        for count in [1, 2, 3, 7, 64, 256] {
            let batch = entries(9, 5, count);
            let tree = Arc::new(SealTree::create(&identity, &batch).expect("a range"));
            let seal = &tree.seal;
            assert_eq!((seal.first, seal.last), (5, 4 + count));
            assert_eq!(seal.verify(), Ok(()));
            for entry in &batch {
                let kept = tree.proof(entry.sequence).expect("in range");
                assert_eq!(kept.proves(entry), Ok(()), "{count} entries");
                let sent = sent(&tree, entry.sequence);
                assert_eq!(sent.proves(entry), Ok(()), "{count} entries");
                assert_eq!(sent, kept, "the two forms are the same proof");
            }
            let proof = sent(&tree, 5);

            // Altered in transit: the value, the timestamp, the seal's range or signature.
            let mut altered = batch[0].clone();
            altered.operation = Operation::Delete { key: Bytes::from_static(b"key-0") };
            assert_ne!(proof.proves(&altered), Ok(()));
            let mut altered = batch[0].clone();
            altered.timestamp = Timestamp(u64::MAX);
            assert_ne!(proof.proves(&altered), Ok(()));
            assert_ne!(bent(&proof, |proof| proof.last += 1).proves(&batch[0]), Ok(()));
            let forged = bent(&proof, |proof| proof.signature[0] ^= 1);
            assert_eq!(forged.proves(&batch[0]), Err(SealError::BadSignature));
            // An entry outside the range is not the seal's to prove; another origin's fails.
            let after = entries(9, 5 + count, 1).remove(0);
            assert_eq!(proof.proves(&after), Err(SealError::OutsideRange));
            let stranger = entries(8, 5, 1).remove(0);
            assert_ne!(proof.proves(&stranger), Ok(()));
            assert_ne!(tree.proof(5).expect("in range").proves(&stranger), Ok(()));
        }
    }

    #[test]
    fn a_tree_is_rebuilt_only_from_the_range_it_signed() {
        let identity = Identity::from_seed([1; KEY_BYTES]);
        let batch = entries(9, 1, 5);
        let tree = SealTree::create(&identity, &batch).expect("a range");
        let rebuilt = SealTree::rebuild(tree.seal.clone(), &batch).expect("the same entries");
        assert_eq!(rebuilt, tree);
        let mut other = batch.clone();
        other[2].timestamp = Timestamp(1);
        assert_eq!(SealTree::rebuild(tree.seal.clone(), &other), Err(SealError::BadPath));
        assert_eq!(SealTree::rebuild(tree.seal.clone(), &batch[..4]), Err(SealError::NotARange));
        assert_eq!(SealTree::rebuild(tree.seal.clone(), &batch[1..]), Err(SealError::NotARange));
        // A range with a seal in it is none, whatever the root (a seal is no leaf).
        let mut with_seal = batch.clone();
        with_seal[2].operation = Operation::Seal(Arc::new(tree.seal.clone()));
        let signed = SealTree::create(&identity, &batch).expect("a range");
        let mut claimed = signed.seal.clone();
        claimed.root = merkle::Tree::new(with_seal.iter().map(entry_leaf).collect()).root();
        assert_eq!(SealTree::rebuild(claimed, &with_seal), Err(SealError::NotARange));
    }

    #[test]
    fn a_seal_covers_consecutive_entries_of_one_origin_only() {
        let identity = Identity::from_seed([1; KEY_BYTES]);
        let create = |batch: &[WalEntry]| SealTree::create(&identity, batch).map(|_| ());
        assert_eq!(create(&[]), Err(SealError::NotARange));
        let mut gap = entries(9, 1, 3);
        gap.remove(1);
        assert_eq!(create(&gap), Err(SealError::NotARange));
        let mut mixed = entries(9, 1, 2);
        mixed.extend(entries(8, 3, 1));
        assert_eq!(create(&mixed), Err(SealError::NotARange));
        assert_eq!(create(&entries(9, 1, SEAL_ENTRIES_MAX + 1)), Err(SealError::NotARange));
    }

    #[test]
    fn a_seal_by_another_key_verifies_only_under_that_key() {
        // The seal proves authorship by its signer; that the signer is the origin's key is
        // the receiving node's check.
        let (alice, mallory) = (Identity::from_seed([1; KEY_BYTES]), Identity::from_seed([2; KEY_BYTES]));
        let batch = entries(9, 1, 4);
        let tree = Arc::new(SealTree::create(&mallory, &batch).expect("a range"));
        assert_eq!(tree.seal.signer, mallory.signing_public());
        let claimed = bent(&sent(&tree, 3), |proof| proof.signer = alice.signing_public());
        assert_eq!(claimed.proves(&batch[2]), Err(SealError::BadSignature));
    }

    proptest::proptest! {
        #[test]
        fn a_leaf_hashes_the_fields_as_the_codec_writes_them(
            origin in proptest::prelude::any::<u64>(),
            sequence in 1..u64::MAX,
            timestamp in proptest::prelude::any::<u64>(),
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            value in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)),
        ) {
            let key = Bytes::from(key);
            let operation = match value {
                Some(value) => Operation::Put { key, value: Bytes::from(value) },
                None => Operation::Delete { key },
            };
            let entry = WalEntry::new(NodeId(origin), sequence, Timestamp(timestamp), operation);
            let mut data = BytesMut::new();
            message::encode_entry_fields(&entry, &mut data);
            proptest::prop_assert_eq!(entry_leaf(&entry), merkle::leaf_hash(&data));
        }
    }
}

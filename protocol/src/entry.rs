//! The replicated data's vocabulary: node ids, HLC timestamps, operations, WAL entries and
//! version vectors. Shared by the wire messages, the WAL and replication; owns no behaviour
//! beyond ordering and small conversions.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::seal::{Proof, Seal};

/// Largest key accepted from a local write or the wire.
pub const KEY_BYTES_MAX: usize = 1024;
/// Largest value accepted from a local write or the wire. One entry therefore always fits in
/// one WalPush batch (see `message::WAL_PUSH_BYTES_MAX`).
pub const VALUE_BYTES_MAX: usize = 32 * 1024;

/// A node's 64-bit identity in entries and version vectors.
///
/// Derived from the node's unique name with [`NodeId::from_name`] (FNV-1a 64). Names must be
/// unique in a cluster; two nodes with the same id refuse each other at the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u64);

impl NodeId {
    /// The stable id of a node name: FNV-1a 64 over its UTF-8 bytes.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(hash)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:016x}", self.0)
    }
}

/// A hybrid logical clock timestamp: milliseconds of physical time in the high 48 bits and a
/// logical counter in the low 16 bits, so plain `u64` order is HLC order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Bits of the logical counter.
    pub const LOGICAL_BITS: u32 = 16;

    /// Builds a timestamp from its parts; `physical_ms` is truncated to 48 bits.
    #[must_use]
    pub const fn new(physical_ms: u64, logical: u16) -> Self {
        Self((physical_ms << Self::LOGICAL_BITS) | logical as u64)
    }

    /// Physical milliseconds.
    #[must_use]
    pub const fn physical_ms(self) -> u64 {
        self.0 >> Self::LOGICAL_BITS
    }

    /// Logical counter.
    #[must_use]
    pub const fn logical(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.physical_ms(), self.logical())
    }
}

/// What an entry does: a write to one key, or its origin's seal over earlier entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Removes `key` (recorded as a tombstone so it wins over older puts).
    Delete {
        /// The key.
        key: Bytes,
    },
    /// The origin's seal over its earlier writes `first..=last` (PROTOCOL.md 8.13). It
    /// writes no key: the store passes over it.
    Seal(Arc<Seal>),
}

/// The key of a seal, which writes none.
static NO_KEY: Bytes = Bytes::from_static(b"");

impl Operation {
    /// The key written; empty for a seal.
    #[must_use]
    pub fn key(&self) -> &Bytes {
        match self {
            Self::Put { key, .. } | Self::Delete { key } => key,
            Self::Seal(_) => &NO_KEY,
        }
    }

    /// The value written, `None` for a delete or a seal.
    #[must_use]
    pub fn value(&self) -> Option<&Bytes> {
        match self {
            Self::Put { value, .. } => Some(value),
            Self::Delete { .. } | Self::Seal(_) => None,
        }
    }

    /// The seal, for a seal.
    #[must_use]
    pub fn seal(&self) -> Option<&Seal> {
        match self {
            Self::Seal(seal) => Some(seal),
            Self::Put { .. } | Self::Delete { .. } => None,
        }
    }
}

/// Bytes of an Ed25519 public key.
pub const SIGNER_BYTES: usize = 32;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// One replicated entry: a write, or a seal; the unit stored in the WAL and carried by
/// WalPush.
///
/// `(origin, sequence)` identifies it; sequences start at 1 and have no gaps per origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WalEntry {
    /// The node that accepted the write.
    pub origin: NodeId,
    /// Position in the origin's own sequence, from 1.
    pub sequence: u64,
    /// HLC time of the write at its origin; decides last-writer-wins.
    pub timestamp: Timestamp,
    /// The write, or a seal.
    pub operation: Operation,
    /// What proves a write was its origin's, once the origin sealed it (PROTOCOL.md 8.13):
    /// carried when a node relays another origin's write, and in snapshots.
    pub proof: Option<Proof>,
}

impl WalEntry {
    /// An entry without a proof: what a node writes, and what its origin sends.
    ///
    /// ```
    /// use ferry_protocol::{NodeId, Operation, Timestamp, WalEntry};
    ///
    /// let entry = WalEntry::new(NodeId(1), 1, Timestamp::new(10, 0), Operation::Delete { key: "k".into() });
    /// assert!(entry.proof.is_none() && !entry.is_seal());
    /// ```
    #[must_use]
    pub fn new(origin: NodeId, sequence: u64, timestamp: Timestamp, operation: Operation) -> Self {
        Self { origin, sequence, timestamp, operation, proof: None }
    }

    /// Whether it is a seal rather than a write.
    #[must_use]
    pub fn is_seal(&self) -> bool {
        matches!(self.operation, Operation::Seal(_))
    }

    /// The total order used by last-writer-wins: timestamp, then origin.
    #[must_use]
    pub fn version(&self) -> (Timestamp, NodeId) {
        (self.timestamp, self.origin)
    }
}

/// Per-origin count of contiguous entries held: `vector[o] = n` means entries `1..=n` of
/// origin `o` are all present. Missing origins count as 0.
///
/// Stored as a vector sorted by origin with no zero positions: replication merges whole
/// vectors far more often than it looks up one origin, and a sorted vector merges in one
/// linear pass.
#[derive(PartialEq, Eq, Default, Hash)]
pub struct VersionVector(Vec<(NodeId, u64)>);

impl Clone for VersionVector {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }

    /// Reuses `self`'s allocation: replication copies vectors on every pull and ack.
    fn clone_from(&mut self, source: &Self) {
        self.0.clone_from(&source.0);
    }
}

impl fmt::Debug for VersionVector {
    /// Prints as a map, `VersionVector({NodeId(5): 2})`, whatever the storage.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("VersionVector(")?;
        formatter.debug_map().entries(self.0.iter().map(|(origin, position)| (origin, position))).finish()?;
        formatter.write_str(")")
    }
}

impl VersionVector {
    /// An empty vector.
    #[must_use]
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Entries of `origin` held contiguously from 1.
    #[must_use]
    pub fn get(&self, origin: NodeId) -> u64 {
        match self.0.binary_search_by_key(&origin, |(origin, _)| *origin) {
            Ok(index) => self.0[index].1,
            Err(_) => 0,
        }
    }

    /// Sets the position of `origin`; a zero position is not stored.
    pub fn set(&mut self, origin: NodeId, position: u64) {
        match self.0.binary_search_by_key(&origin, |(origin, _)| *origin) {
            Ok(index) if position == 0 => {
                self.0.remove(index);
            }
            Ok(index) => self.0[index].1 = position,
            Err(_) if position == 0 => {}
            Err(index) => self.0.insert(index, (origin, position)),
        }
    }

    /// Appends `(origin, position)` when `origin` is above every origin present, as a decoder
    /// of the canonical (ascending) form does; returns false, changing nothing, otherwise or
    /// for a zero position.
    pub fn push_ascending(&mut self, origin: NodeId, position: u64) -> bool {
        if position == 0 || self.0.last().is_some_and(|(last, _)| *last >= origin) {
            return false;
        }
        self.0.push((origin, position));
        true
    }

    /// Raises the position of `origin` to at least `position`.
    pub fn raise(&mut self, origin: NodeId, position: u64) {
        if position > self.get(origin) {
            self.set(origin, position);
        }
    }

    /// Raises every position to at least `other`'s (the pointwise maximum), in one pass.
    /// Returns true when any position grew.
    pub fn merge_max(&mut self, other: &Self) -> bool {
        // Most merges bring no origin that is not here already: raise positions in place,
        // without allocating, and fall back to the full merge at the first new origin (the
        // positions raised so far stay raised; the maximum is idempotent).
        let mut grew = false;
        let mut index = 0;
        // A vector of a few origins (an ack or a pull naming what moved) is merged into a long
        // one by binary search, not a walk over every origin held.
        let sparse = other.0.len().saturating_mul(8) < self.0.len();
        for &(origin, position) in &other.0 {
            if sparse {
                index += self.0[index..].partition_point(|&(held, _)| held < origin);
            }
            while index < self.0.len() && self.0[index].0 < origin {
                index += 1;
            }
            match self.0.get_mut(index) {
                Some(mine) if mine.0 == origin => {
                    if position > mine.1 {
                        mine.1 = position;
                        grew = true;
                    }
                }
                _ => return self.merge_max_new_origins(other) || grew,
            }
        }
        grew
    }

    /// [`merge_max`](Self::merge_max) when `other` has origins `self` lacks: the vector grows
    /// by their number (amortised, in place: a node learns origins one at a time, and a new
    /// vector each time would copy it whole) and is merged from the back, each slot written
    /// after the ones it is read from.
    fn merge_max_new_origins(&mut self, other: &Self) -> bool {
        let new = other.beside(self).filter(|&(_, _, mine)| mine == 0).count();
        let mut mine = self.0.len();
        self.0.resize(mine + new, (NodeId(0), 0));
        let mut theirs = other.0.len();
        let mut write = self.0.len();
        let mut grew = new > 0;
        while theirs > 0 {
            let (origin, position) = other.0[theirs - 1];
            write -= 1;
            if mine > 0 && self.0[mine - 1].0 > origin {
                self.0[write] = self.0[mine - 1];
                mine -= 1;
            } else if mine > 0 && self.0[mine - 1].0 == origin {
                let held = self.0[mine - 1].1;
                grew |= position > held;
                self.0[write] = (origin, held.max(position));
                mine -= 1;
                theirs -= 1;
            } else {
                self.0[write] = (origin, position);
                theirs -= 1;
            }
        }
        // What is left of `self` below `other`'s first origin is already in place.
        debug_assert_eq!(write, mine);
        grew
    }

    /// Each origin of `self` with its position here and in `other` (0 when absent there), in
    /// ascending origin order: one linear walk of both vectors.
    pub fn beside<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = (NodeId, u64, u64)> + 'a {
        let mut index = 0;
        self.0.iter().map(move |&(origin, position)| {
            while index < other.0.len() && other.0[index].0 < origin {
                index += 1;
            }
            let theirs = match other.0.get(index) {
                Some(&(other_origin, other_position)) if other_origin == origin => other_position,
                _ => 0,
            };
            (origin, position, theirs)
        })
    }

    /// The origins whose position here is above `base`'s, at their positions here.
    #[must_use]
    pub fn above(&self, base: &Self) -> Self {
        Self(
            self.beside(base)
                .filter(|(_, mine, theirs)| mine > theirs)
                .map(|(origin, mine, _)| (origin, mine))
                .collect(),
        )
    }

    /// The sum of all positions: how many entries the vector covers.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, position)| *position).sum()
    }

    /// `(origin, position)` pairs in ascending origin order, zero positions omitted.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.0.iter().copied()
    }

    /// Number of origins with a non-zero position.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no origin has a non-zero position.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(NodeId, u64)> for VersionVector {
    /// Pairs in ascending origin order (as every vector iterates) are appended; others are
    /// merged in, the highest position of an origin winning.
    fn from_iter<I: IntoIterator<Item = (NodeId, u64)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut vector = Self(Vec::with_capacity(iter.size_hint().0));
        for (origin, position) in iter {
            if !vector.push_ascending(origin, position) {
                vector.raise(origin, position);
            }
        }
        vector
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_fnv1a() {
        // FNV-1a 64 of the empty string is the offset basis; of "a" the published vector.
        assert_eq!(NodeId::from_name("").0, 0xcbf2_9ce4_8422_2325);
        assert_eq!(NodeId::from_name("a").0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn timestamp_parts() {
        let timestamp = Timestamp::new(1_700_000_000_000, 7);
        assert_eq!(timestamp.physical_ms(), 1_700_000_000_000);
        assert_eq!(timestamp.logical(), 7);
        assert!(Timestamp::new(5, u16::MAX) < Timestamp::new(6, 0));
    }

    #[test]
    fn version_vector_omits_zero() {
        let mut vector = VersionVector::new();
        vector.set(NodeId(1), 0);
        assert!(vector.is_empty());
        vector.raise(NodeId(1), 3);
        vector.raise(NodeId(1), 2);
        assert_eq!(vector.get(NodeId(1)), 3);
        vector.set(NodeId(1), 0);
        assert!(vector.is_empty());
    }

    #[test]
    fn merge_max_is_the_pointwise_maximum() {
        let mut mine: VersionVector = [(NodeId(1), 5), (NodeId(3), 1), (NodeId(7), 2)].into_iter().collect();
        let theirs: VersionVector = [(NodeId(0), 4), (NodeId(3), 9), (NodeId(7), 1)].into_iter().collect();
        assert!(mine.merge_max(&theirs));
        let expected: Vec<(NodeId, u64)> =
            vec![(NodeId(0), 4), (NodeId(1), 5), (NodeId(3), 9), (NodeId(7), 2)];
        assert_eq!(mine.iter().collect::<Vec<_>>(), expected);
        assert!(!mine.merge_max(&theirs), "nothing grows the second time");
        assert_eq!(mine.total(), 20);
    }

    proptest::proptest! {
        /// `beside` pairs each origin with the other vector's position (0 when absent), and
        /// `above` keeps exactly the origins that are further here, as per-origin lookups do.
        #[test]
        fn beside_and_above_match_lookups(
            mine in proptest::collection::btree_map(0..12u64, 1..6u64, 0..8),
            theirs in proptest::collection::btree_map(0..12u64, 1..6u64, 0..8),
        ) {
            let vector: VersionVector = mine.iter().map(|(origin, position)| (NodeId(*origin), *position)).collect();
            let other: VersionVector = theirs.iter().map(|(origin, position)| (NodeId(*origin), *position)).collect();
            let expected: Vec<(NodeId, u64, u64)> =
                vector.iter().map(|(origin, position)| (origin, position, other.get(origin))).collect();
            proptest::prop_assert_eq!(vector.beside(&other).collect::<Vec<_>>(), expected);
            let above: VersionVector =
                vector.iter().filter(|(origin, position)| *position > other.get(*origin)).collect();
            proptest::prop_assert_eq!(vector.above(&other), above);
        }

        /// Collecting pairs in any order, with repeats and zeros, keeps each origin's highest
        /// nonzero position, in ascending order.
        #[test]
        fn collecting_matches_a_map_model(
            pairs in proptest::collection::vec((0..12u64, 0..6u64), 0..16),
        ) {
            let vector: VersionVector = pairs.iter().map(|(origin, position)| (NodeId(*origin), *position)).collect();
            let mut model = std::collections::BTreeMap::new();
            for &(origin, position) in pairs.iter().filter(|(_, position)| *position > 0) {
                let held = model.entry(origin).or_insert(0);
                *held = (*held).max(position);
            }
            let expected: Vec<(NodeId, u64)> = model.iter().map(|(origin, position)| (NodeId(*origin), *position)).collect();
            proptest::prop_assert_eq!(vector.iter().collect::<Vec<_>>(), expected);
        }

        /// `merge_max` is the pointwise maximum of a map model, and reports growth exactly.
        #[test]
        fn merge_max_matches_a_map_model(
            // Up to 40 origins here against up to 8 there: both the walk and the binary
            // search (fewer than an eighth as many there) run.
            mine in proptest::collection::btree_map(0..64u64, 1..6u64, 0..40),
            theirs in proptest::collection::btree_map(0..64u64, 1..6u64, 0..8),
        ) {
            let mut vector: VersionVector = mine.iter().map(|(origin, position)| (NodeId(*origin), *position)).collect();
            let other: VersionVector = theirs.iter().map(|(origin, position)| (NodeId(*origin), *position)).collect();
            let mut model = mine.clone();
            for (origin, position) in &theirs {
                let held = model.entry(*origin).or_insert(0);
                *held = (*held).max(*position);
            }
            let grew = vector.merge_max(&other);
            let expected: Vec<(NodeId, u64)> = model.iter().map(|(origin, position)| (NodeId(*origin), *position)).collect();
            proptest::prop_assert_eq!(vector.iter().collect::<Vec<_>>(), expected);
            proptest::prop_assert_eq!(grew, model != mine);
        }
    }
}

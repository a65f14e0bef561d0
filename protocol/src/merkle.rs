//! Merkle trees as RFC 6962 (section 2.1) defines them, over SHA-256: the tree hash of a
//! list of leaves, the audit path of one leaf, and the root an audit path leads to (the
//! verification of RFC 9162, section 2.1.3.2).
//!
//! A leaf's hash is `SHA-256(0x00 || data)` and an interior node's `SHA-256(0x01 || left ||
//! right)`, so no leaf can pass for an interior node. A list of `n > 1` leaves splits at `k`,
//! the largest power of two below `n`: the left subtree holds the first `k` leaves.
//!
//! ```
//! use ferry_protocol::merkle;
//!
//! let leaves: Vec<merkle::Hash> = [&b"a"[..], b"b", b"c"].iter().map(|data| merkle::leaf_hash(data)).collect();
//! let root = merkle::root(&leaves);
//! let paths = merkle::audit_paths(&leaves);
//! assert_eq!(merkle::root_from_path(&leaves[2], 2, 3, &paths[2]), Some(root));
//! assert_ne!(merkle::root_from_path(&leaves[1], 2, 3, &paths[2]), Some(root));
//! ```

use sha2::{Digest as _, Sha256};

/// Bytes of a hash.
pub const HASH_BYTES: usize = 32;

/// A SHA-256 hash: a leaf's, an interior node's or a root.
pub type Hash = [u8; HASH_BYTES];

/// The hash of a leaf holding `data`: `SHA-256(0x00 || data)`.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Where a list of `size > 1` leaves splits: the largest power of two below `size`.
fn split(size: usize) -> usize {
    debug_assert!(size > 1);
    1 << (usize::BITS - 1 - (size - 1).leading_zeros())
}

/// The Merkle tree hash of the leaves whose hashes are `leaves` (RFC 6962's `MTH`); the
/// hash of the empty string for none.
#[must_use]
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        size => {
            let (left, right) = leaves.split_at(split(size));
            node_hash(&root(left), &root(right))
        }
    }
}

/// The audit path of every leaf (RFC 6962's `PATH`), sibling hashes from the leaf up: one
/// pass over the tree, each interior hash computed once.
#[must_use]
pub fn audit_paths(leaves: &[Hash]) -> Vec<Vec<Hash>> {
    let mut paths = vec![Vec::new(); leaves.len()];
    fill(leaves, &mut paths);
    paths
}

/// Appends to each of `paths` (one per leaf) the rest of its audit path within `leaves`;
/// returns their root.
fn fill(leaves: &[Hash], paths: &mut [Vec<Hash>]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        size => {
            let middle = split(size);
            let (left_leaves, right_leaves) = leaves.split_at(middle);
            let (left_paths, right_paths) = paths.split_at_mut(middle);
            let left = fill(left_leaves, left_paths);
            let right = fill(right_leaves, right_paths);
            for path in left_paths {
                path.push(right);
            }
            for path in right_paths {
                path.push(left);
            }
            node_hash(&left, &right)
        }
    }
}

/// The root that leaf `leaf`, at `index` of a tree of `size` leaves, leads to along `path`
/// (RFC 9162, section 2.1.3.2); `None` when `index` is not below `size` or the path's length
/// does not fit the tree. The leaf is in the tree whose root this returns, if the hash is
/// collision resistant.
#[must_use]
pub fn root_from_path(leaf: &Hash, index: u64, size: u64, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut position, mut last) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in path {
        if last == 0 {
            return None;
        }
        if position & 1 == 1 || position == last {
            hash = node_hash(sibling, &hash);
            // A node that is its level's last without a sibling moves up unchanged.
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    (last == 0).then_some(hash)
}

/// How many hashes the audit path of leaf `index` of a tree of `size` leaves has; `None`
/// when `index` is not below `size`. A reader of an audit path learns its length from this,
/// so the path carries no count.
#[must_use]
pub fn path_len(index: u64, size: u64) -> Option<usize> {
    if index >= size {
        return None;
    }
    let (mut position, mut last) = (index, size - 1);
    let mut count = 0;
    while last != 0 {
        if position & 1 == 0 && position == last {
            // No sibling on this level: the node moves up unchanged.
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        }
        position >>= 1;
        last >>= 1;
        count += 1;
    }
    Some(count)
}

/// Every level of a tree, leaves first, root last: the same tree as [`root`] (RFC 6962's
/// tree is the one that pairs each level's nodes from the left and moves a last node without
/// a pair up unchanged), kept so that any leaf's audit path is read without hashing.
#[derive(Clone, PartialEq, Eq)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Tree({} leaves)", self.size())
    }
}

impl Tree {
    /// The tree over `leaves` (at least one).
    ///
    /// # Panics
    /// If `leaves` is empty.
    #[must_use]
    pub fn new(leaves: Vec<Hash>) -> Self {
        assert!(!leaves.is_empty(), "a tree has at least one leaf");
        let mut levels = vec![leaves];
        while let Some(level) = levels.last().filter(|level| level.len() > 1) {
            let next = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [alone] => *alone,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// Leaves.
    #[must_use]
    pub fn size(&self) -> usize {
        self.levels[0].len()
    }

    /// The leaf hash at `index`.
    #[must_use]
    pub fn leaf(&self, index: usize) -> Option<&Hash> {
        self.levels[0].get(index)
    }

    /// The root: equal to [`root`] of the leaves.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.levels.last().map_or_else(|| Sha256::digest([]).into(), |level| level[0])
    }

    /// Appends the audit path of leaf `index` (equal to [`audit_paths`]' entry for it) to
    /// `out`; nothing when `index` is out of range.
    pub fn path_into(&self, index: usize, out: &mut Vec<Hash>) {
        if index >= self.size() {
            return;
        }
        let mut position = index;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(position ^ 1) {
                out.push(*sibling);
            }
            position >>= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hex(hash: &Hash) -> String {
        hash.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// The test data of RFC 6962's reference implementation (certificate-transparency,
    /// `merkle_tree_test`): eight leaves and the root of each prefix of them.
    #[test]
    fn roots_match_the_certificate_transparency_vectors() {
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<Hash> = data.iter().map(|data| leaf_hash(data)).collect();
        for (size, expected) in (1..).zip(roots) {
            assert_eq!(hex(&root(&leaves[..size])), expected, "{size} leaves");
        }
        assert_eq!(hex(&root(&[])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    /// RFC 6962's `PATH(m, D[n])`, written as the RFC states it: the reference the one-pass
    /// paths are checked against.
    fn path_as_written(index: usize, leaves: &[Hash]) -> Vec<Hash> {
        if leaves.len() <= 1 {
            return Vec::new();
        }
        let middle = split(leaves.len());
        if index < middle {
            let mut path = path_as_written(index, &leaves[..middle]);
            path.push(root(&leaves[middle..]));
            path
        } else {
            let mut path = path_as_written(index - middle, &leaves[middle..]);
            path.push(root(&leaves[..middle]));
            path
        }
    }

    fn leaves(size: usize, salt: u8) -> Vec<Hash> {
        (0..size).map(|index| leaf_hash(&[salt, (index % 256) as u8, (index / 256) as u8])).collect()
    }

    proptest! {
        /// Every leaf's path leads to the root, and is the path RFC 6962 defines.
        #[test]
        fn every_path_leads_to_the_root(size in 1usize..300, salt in any::<u8>()) {
            let leaves = leaves(size, salt);
            let root = root(&leaves);
            let paths = audit_paths(&leaves);
            for (index, (leaf, path)) in leaves.iter().zip(&paths).enumerate() {
                prop_assert_eq!(path, &path_as_written(index, &leaves));
                prop_assert_eq!(root_from_path(leaf, index as u64, size as u64, path), Some(root));
            }
        }

        /// Anything altered leads elsewhere or nowhere: another leaf, another index, a
        /// flipped bit in the path, a hash too many or too few, an index past the tree. (A
        /// tree of another size may share the path's shape, and so its root: the size says
        /// only how to read the path, and the leaf is in the tree either way.)
        #[test]
        fn an_altered_proof_does_not_lead_to_the_root(
            size in 2usize..300,
            pick in any::<prop::sample::Index>(),
            other in any::<prop::sample::Index>(),
            bit in 0usize..256,
        ) {
            let leaves = leaves(size, 7);
            let root = root(&leaves);
            let paths = audit_paths(&leaves);
            let index = pick.index(size);
            let (leaf, path) = (&leaves[index], &paths[index]);
            let other = other.index(size);
            if other != index {
                prop_assert_ne!(root_from_path(&leaves[other], index as u64, size as u64, path), Some(root));
                prop_assert_ne!(root_from_path(leaf, other as u64, size as u64, path), Some(root));
            }
            if !path.is_empty() {
                let mut flipped = path.clone();
                let level = bit % flipped.len();
                flipped[level][bit / 8] ^= 1 << (bit % 8);
                prop_assert_ne!(root_from_path(leaf, index as u64, size as u64, &flipped), Some(root));
                prop_assert_eq!(root_from_path(leaf, index as u64, size as u64, &path[1..]), None);
            }
            let mut longer = path.clone();
            longer.push(root);
            prop_assert_eq!(root_from_path(leaf, index as u64, size as u64, &longer), None);
            prop_assert_eq!(root_from_path(leaf, size as u64, size as u64, path), None);
        }
    }

    #[test]
    fn a_single_leaf_is_its_own_root_with_an_empty_path() {
        let leaf = leaf_hash(b"only");
        assert_eq!(root(&[leaf]), leaf);
        assert_eq!(audit_paths(&[leaf]), vec![Vec::<Hash>::new()]);
        assert_eq!(root_from_path(&leaf, 0, 1, &[]), Some(leaf));
        assert_eq!(root_from_path(&leaf, 0, 1, &[leaf]), None);
    }

    proptest! {
        #[test]
        fn the_kept_tree_gives_the_same_root_and_paths(size in 1usize..300, salt in any::<u8>()) {
            let leaves = leaves(size, salt);
            let tree = Tree::new(leaves.clone());
            prop_assert_eq!(tree.root(), root(&leaves));
            for (index, expected) in audit_paths(&leaves).iter().enumerate() {
                let mut path = Vec::new();
                tree.path_into(index, &mut path);
                prop_assert_eq!(&path, expected);
                prop_assert_eq!(path_len(index as u64, size as u64), Some(path.len()));
            }
            prop_assert_eq!(path_len(size as u64, size as u64), None);
        }
    }
}

//! Blob naming and verification: a blob is named by the standard BLAKE3 hash of
//! its bytes (what `b3sum` prints), and verified in 64 KiB leaves.
//!
//! BLAKE3 is a Merkle tree over 1 KiB chunks. A 64 KiB leaf at a 64 KiB-aligned
//! offset is a complete subtree, so its chaining value can be computed alone
//! (`blake3::hazmat`), and the chaining values of all leaves combine into the root
//! hash. The list of leaf chaining values (the *outboard*, 32 bytes per 64 KiB,
//! 0.05% of the blob) is fetched first and checked against the hash; after that
//! every leaf is checked on arrival, before a byte of it is written.
//!
//! Why not `bao-tree`/iroh-blobs: their verified ranges require proof nodes
//! interleaved with the data and a tree walk per request; a flat leaf list costs
//! one comparison per 64 KiB and lets any leaf be re-checked from local data after
//! a crash, which is what resume needs. The hash is the same standard BLAKE3.

use std::fmt;
use std::str::FromStr;

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Verification granularity: every blob is checked in leaves of this size.
pub const LEAF_SIZE: u64 = 64 * 1024;

/// Largest blob accepted (64 GiB). Its leaf list (32 MiB) is held in memory
/// while it moves, so this bound is also the memory bound of a transfer.
pub const MAX_BLOB_SIZE: u64 = 64 << 30;

/// The BLAKE3 hash of a blob's bytes; the blob's name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    /// The hash of `bytes`.
    ///
    /// ```
    /// use peat_mesh::blobs::BlobHash;
    /// let h = BlobHash::of(b"hello");
    /// assert_eq!(h.to_string().len(), 64);
    /// assert_eq!(h.to_string().parse::<BlobHash>().unwrap(), h);
    /// ```
    pub fn of(bytes: &[u8]) -> BlobHash {
        BlobHash(*blake3::hash(bytes).as_bytes())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", &self.to_hex()[..12])
    }
}

impl FromStr for BlobHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("not a 64-digit hex blob hash: {s:?}"));
        // Hex digits only (`from_str_radix` alone would take a leading `+`).
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(BlobHash(out))
    }
}

/// Number of leaves of a blob of `size` bytes (0 for the empty blob).
pub fn leaf_count(size: u64) -> u64 {
    size.div_ceil(LEAF_SIZE)
}

/// Byte length of leaf `index` of a blob of `size` bytes.
pub fn leaf_len(size: u64, index: u64) -> u64 {
    LEAF_SIZE.min(size.saturating_sub(index * LEAF_SIZE))
}

/// True if a blob of this size carries an outboard (more than one leaf).
pub fn has_outboard(size: u64) -> bool {
    leaf_count(size) > 1
}

/// Chaining value of leaf `index` (its bytes in `data`). Only meaningful for
/// blobs of two or more leaves; a one-leaf blob is checked with [`BlobHash::of`].
pub fn leaf_cv(index: u64, data: &[u8]) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(index * LEAF_SIZE);
    h.update(data);
    h.finalize_non_root()
}

/// The root hash from all leaf chaining values (two or more).
pub fn root_from_cvs(cvs: &[ChainingValue]) -> Option<BlobHash> {
    if cvs.len() < 2 {
        return None;
    }
    fn merge(cvs: &[ChainingValue], root: bool) -> ChainingValue {
        if cvs.len() == 1 {
            return cvs[0];
        }
        // BLAKE3's tree is left-full: the left subtree holds the largest power of
        // two leaves that leaves at least one for the right.
        let split = 1usize << (usize::BITS - 1 - (cvs.len() - 1).leading_zeros());
        let l = merge(&cvs[..split], false);
        let r = merge(&cvs[split..], false);
        if root {
            *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
        } else {
            merge_subtrees_non_root(&l, &r, Mode::Hash)
        }
    }
    Some(BlobHash(merge(cvs, true)))
}

/// The verified leaf list of one blob.
#[derive(Clone)]
pub struct Outboard {
    size: u64,
    cvs: Vec<ChainingValue>,
    hash: BlobHash,
}

impl Outboard {
    /// Parses and checks an outboard received or read for `hash` of `size` bytes.
    /// For a blob of at most one leaf the outboard is empty.
    ///
    /// The leaf list commits to every leaf's bytes but not to where inside the
    /// last leaf the blob ends, and a blob of one leaf has no list at all: the
    /// size is proven only by the last leaf's bytes (its chaining value, or for
    /// one leaf the hash, covers its length). So a fetcher checks the last leaf
    /// ([`Outboard::check_leaf`]) before it trusts the size. The empty blob is
    /// checked here: its hash must be BLAKE3 of nothing.
    pub fn verify(hash: BlobHash, size: u64, bytes: &[u8]) -> Result<Outboard> {
        if size == 0 && hash != BlobHash::of(&[]) {
            return Err(Error::Corrupt(format!(
                "blob {} is not empty, but was offered as 0 bytes",
                &hash.to_hex()[..12]
            )));
        }
        if size > MAX_BLOB_SIZE {
            return Err(Error::Corrupt(format!(
                "blob size {size} exceeds the {MAX_BLOB_SIZE} byte limit"
            )));
        }
        let n = leaf_count(size);
        let want = if n > 1 { n as usize * 32 } else { 0 };
        if bytes.len() != want {
            return Err(Error::Corrupt(format!(
                "outboard of {} bytes for a {size} byte blob (want {want})",
                bytes.len()
            )));
        }
        let cvs: Vec<ChainingValue> = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut a = [0u8; 32];
                a.copy_from_slice(c);
                a
            })
            .collect();
        if n > 1 && root_from_cvs(&cvs) != Some(hash) {
            return Err(Error::Corrupt(format!(
                "outboard does not match blob {}",
                &hash.to_hex()[..12]
            )));
        }
        Ok(Outboard { size, cvs, hash })
    }

    /// Builds the outboard from leaf chaining values computed locally.
    pub(crate) fn from_cvs(size: u64, cvs: Vec<ChainingValue>, single: BlobHash) -> Outboard {
        let hash = root_from_cvs(&cvs).unwrap_or(single);
        Outboard { size, cvs, hash }
    }

    /// The blob hash.
    pub fn hash(&self) -> BlobHash {
        self.hash
    }

    /// The blob size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The serialized leaf list.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.cvs.iter().flatten().copied().collect()
    }

    /// Checks the bytes of leaf `index`.
    pub fn check_leaf(&self, index: u64, data: &[u8]) -> bool {
        if data.len() as u64 != leaf_len(self.size, index) {
            return false;
        }
        if self.cvs.is_empty() {
            return index == 0 && BlobHash::of(data) == self.hash;
        }
        self.cvs
            .get(index as usize)
            .is_some_and(|cv| leaf_cv(index, data) == *cv)
    }

    /// Checks a run of whole leaves starting at leaf `first`; returns the first
    /// failing leaf, if any.
    pub fn check_leaves(&self, first: u64, data: &[u8]) -> std::result::Result<(), u64> {
        for (i, leaf) in data.chunks(LEAF_SIZE as usize).enumerate() {
            let idx = first + i as u64;
            if !self.check_leaf(idx, leaf) {
                return Err(idx);
            }
        }
        Ok(())
    }
}

/// Incremental hashing of a blob being added: BLAKE3 leaves plus the root.
pub(crate) struct LeafHasher {
    cvs: Vec<ChainingValue>,
    pending: Vec<u8>,
    whole: blake3::Hasher,
    size: u64,
}

impl LeafHasher {
    pub(crate) fn new() -> Self {
        LeafHasher {
            cvs: Vec::new(),
            pending: Vec::with_capacity(LEAF_SIZE as usize),
            whole: blake3::Hasher::new(),
            size: 0,
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.size += data.len() as u64;
        // The whole-blob hasher is only needed while the blob fits in one leaf.
        if self.cvs.is_empty() && self.size <= LEAF_SIZE {
            self.whole.update(data);
        }
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= LEAF_SIZE as usize {
                let idx = self.cvs.len() as u64;
                self.cvs.push(leaf_cv(idx, &data[..LEAF_SIZE as usize]));
                data = &data[LEAF_SIZE as usize..];
                continue;
            }
            let take = (LEAF_SIZE as usize - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == LEAF_SIZE as usize {
                let idx = self.cvs.len() as u64;
                self.cvs.push(leaf_cv(idx, &self.pending));
                self.pending.clear();
            }
        }
    }

    pub(crate) fn finish(mut self) -> Outboard {
        if self.size <= LEAF_SIZE {
            let h = BlobHash(*self.whole.finalize().as_bytes());
            return Outboard::from_cvs(self.size, Vec::new(), h);
        }
        if !self.pending.is_empty() {
            let idx = self.cvs.len() as u64;
            self.cvs.push(leaf_cv(idx, &self.pending));
        }
        let size = self.size;
        Outboard::from_cvs(size, self.cvs, BlobHash([0; 32]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Non-repeating bytes (a repeating pattern would make leaves look alike).
    fn data(n: usize, seed: u8) -> Vec<u8> {
        let mut out = vec![0u8; n];
        blake3::Hasher::new()
            .update(&[seed])
            .finalize_xof()
            .fill(&mut out);
        out
    }

    #[test]
    fn root_equals_standard_blake3_at_edges() {
        let l = LEAF_SIZE as usize;
        for n in [
            0,
            1,
            1024,
            l - 1,
            l,
            l + 1,
            2 * l,
            3 * l - 7,
            4 * l,
            5 * l + 1,
            17 * l,
        ] {
            let d = data(n, 9);
            let mut h = LeafHasher::new();
            h.update(&d);
            let ob = h.finish();
            assert_eq!(ob.hash(), BlobHash::of(&d), "size {n}");
            let checked = Outboard::verify(ob.hash(), n as u64, &ob.to_bytes()).unwrap();
            for (i, leaf) in d.chunks(l).enumerate() {
                assert!(checked.check_leaf(i as u64, leaf));
            }
        }
    }

    #[test]
    fn altered_leaf_or_outboard_is_rejected() {
        let l = LEAF_SIZE as usize;
        let d = data(3 * l + 5, 1);
        let mut h = LeafHasher::new();
        h.update(&d);
        let ob = h.finish();
        let mut bad = d[l..2 * l].to_vec();
        bad[7] ^= 1;
        assert!(!ob.check_leaf(1, &bad));
        assert!(!ob.check_leaf(2, &d[l..2 * l])); // right bytes, wrong place
        assert!(!ob.check_leaf(3, &d[3 * l..3 * l + 4])); // truncated
        let mut obb = ob.to_bytes();
        obb[40] ^= 1;
        assert!(Outboard::verify(ob.hash(), d.len() as u64, &obb).is_err());
        assert!(Outboard::verify(ob.hash(), d.len() as u64, &obb[..64]).is_err());
        // A size off by a few bytes passes the list check; its last leaf never verifies.
        let lying = Outboard::verify(ob.hash(), d.len() as u64 + 1, &ob.to_bytes()).unwrap();
        assert!(!lying.check_leaf(3, &d[3 * l..]));
        let mut longer = d[3 * l..].to_vec();
        longer.push(0);
        assert!(!lying.check_leaf(3, &longer));
        assert!(Outboard::verify(ob.hash(), d.len() as u64 + LEAF_SIZE, &ob.to_bytes()).is_err());
        assert!(Outboard::verify(ob.hash(), MAX_BLOB_SIZE + 1, &[]).is_err());
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = BlobHash::of(b"x");
        assert_eq!(h.to_hex().parse::<BlobHash>().unwrap(), h);
        assert!("zz".parse::<BlobHash>().is_err());
        assert!("é".repeat(32).parse::<BlobHash>().is_err());
        assert!("g".repeat(64).parse::<BlobHash>().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_split_of_updates_gives_the_standard_hash(len in 0usize..400_000, cut in 1usize..100_000) {
            let d = data(len, 3);
            let mut h = LeafHasher::new();
            for part in d.chunks(cut) { h.update(part); }
            prop_assert_eq!(h.finish().hash(), BlobHash::of(&d));
        }

        #[test]
        fn random_outboards_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..256), size in 0u64..1_000_000) {
            prop_assert!(Outboard::verify(BlobHash::of(b"target"), size, &bytes).is_err() || leaf_count(size) <= 1 && bytes.is_empty());
        }
    }
}

//! Automerge change helpers shared by the store and sync: version ids, heads
//! on the wire, the changes a replica lacks, parsing received changes.

use automerge::ReadDoc;
use automerge::{Automerge, Change, ChangeHash};

use super::DocKey;
use crate::error::{Error, Result};
use crate::wire::Hash32;

/// A document's version id: a hash of its key and heads, identical on every
/// replica holding the same state.
pub(crate) fn version_id(key: &DocKey, heads: &[ChangeHash]) -> Hash32 {
    let mut h = blake3::Hasher::new_derive_key("peat-mesh document version v1");
    h.update(key.collection().as_bytes());
    h.update(&[0]);
    h.update(key.id().as_bytes());
    h.update(&[0]);
    for head in heads {
        h.update(&head.0);
    }
    *h.finalize().as_bytes()
}

/// The hashes among `hashes` that `doc` has neither applied nor queued.
///
/// One hash-set lookup each; automerge's per-change metadata lookups are linear
/// in the history, so they are avoided on every sync path.
pub(crate) fn unknown_hashes(doc: &Automerge, hashes: &[Hash32]) -> Vec<Hash32> {
    let heads: Vec<ChangeHash> = hashes.iter().map(|h| ChangeHash(*h)).collect();
    let missing: std::collections::HashSet<ChangeHash> =
        doc.get_missing_deps(&heads).into_iter().collect();
    hashes
        .iter()
        .filter(|h| missing.contains(&ChangeHash(**h)))
        .copied()
        .collect()
}

/// Heads as wire hashes.
pub(crate) fn heads_to_wire(heads: &[ChangeHash]) -> Vec<Hash32> {
    heads.iter().map(|h| h.0).collect()
}

/// Changes in `doc` that a replica with `their_heads` lacks. Unknown heads are
/// ignored, so with unknown heads this may send changes the peer already has
/// (harmless: applying a change twice is a no-op). Each change comes with
/// its hash.
pub(crate) fn changes_since_hashed(
    doc: &Automerge,
    their_heads: &[Hash32],
) -> (Vec<Vec<u8>>, Vec<Hash32>) {
    let unknown: std::collections::HashSet<Hash32> =
        unknown_hashes(doc, their_heads).into_iter().collect();
    let known: Vec<ChangeHash> = their_heads
        .iter()
        .filter(|h| !unknown.contains(*h))
        .map(|h| ChangeHash(*h))
        .collect();
    doc.get_changes(&known)
        .iter()
        .map(|c| (c.raw_bytes().to_vec(), c.hash().0))
        .unzip()
}

/// Parses received change chunks. A malformed chunk is a protocol error.
pub(crate) fn parse_changes(chunks: Vec<Vec<u8>>) -> Result<Vec<Change>> {
    chunks
        .into_iter()
        .map(|c| Change::from_bytes(c).map_err(|e| Error::Protocol(format!("bad change: {e}"))))
        .collect()
}

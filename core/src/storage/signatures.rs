//! Change signatures kept with their documents: one row per signed change,
//! keyed by the document and the change hash, holding the author's key and
//! signature. The store neither makes nor checks signatures (that is
//! [`crate::authorship`]): it asks its signer for the changes written with
//! its own actor, keeps the checked ones sync hands it, commits them in the
//! same transaction as the changes, and removes them with their document.

use automerge::{ActorId, Change};
use redb::TableDefinition;

use super::DocKey;
use crate::wire::Hash32;

/// (storage key, change hash) → author key (32 bytes) ‖ signature (64 bytes).
pub(super) const SIGNATURES: TableDefinition<(&str, &[u8]), &[u8]> =
    TableDefinition::new("change_signatures");

/// A stored signature: the author's public key, then the Ed25519 signature.
pub(crate) type SigRow = [u8; 96];

/// Signs a change written here (`None`: its collection is not signed).
pub(crate) type Signer = Box<dyn Fn(&DocKey, &Hash32) -> Option<SigRow> + Send + Sync>;

/// The rows a commit adds: for each new change, in order, its signature if
/// any (the signer's for changes of this node's actor, else one of
/// `received`). Empty when no change is signed.
pub(super) fn rows_for(
    signer: Option<&Signer>,
    actor: &ActorId,
    key: &DocKey,
    new: &[Change],
    received: &[(Hash32, SigRow)],
) -> Vec<Option<SigRow>> {
    if signer.is_none() && received.is_empty() {
        return Vec::new();
    }
    let rows: Vec<Option<SigRow>> = new
        .iter()
        .map(|c| {
            let h = c.hash().0;
            if c.actor_id() == actor {
                signer.and_then(|s| s(key, &h))
            } else {
                received.iter().find(|(r, _)| *r == h).map(|(_, row)| *row)
            }
        })
        .collect();
    if rows.iter().all(Option::is_none) {
        return Vec::new();
    }
    rows
}

/// Range of a document's rows.
pub(super) fn doc_range(skey: &str) -> std::ops::RangeInclusive<(&str, &'static [u8])> {
    (skey, &[0u8; 0][..])..=(skey, &[0xffu8; 33][..])
}

/// A stored row, or `None` (with a warning) if it has the wrong length.
pub(super) fn row(v: &[u8]) -> Option<SigRow> {
    let r = SigRow::try_from(v).ok();
    if r.is_none() {
        tracing::warn!(
            len = v.len(),
            "a stored change signature of the wrong length"
        );
    }
    r
}

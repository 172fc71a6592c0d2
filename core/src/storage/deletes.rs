//! How a delete and an edit it did not see resolve (see
//! [`crate::policy::DeleteRule`]): the question asked of a merged document,
//! and the change that lifts its tombstone when the edit wins.

use std::collections::HashSet;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ReadDoc, ROOT};

use super::json::TOMBSTONE_KEY;
use crate::error::Result;

/// True if the document carries a tombstone and holds a change that none of
/// the changes writing the tombstone saw and that did not see them either (an
/// edit concurrent with the delete).
///
/// Costs one walk over the changes made since the delete; asked only of
/// tombstoned documents of update-wins collections when a peer's changes
/// arrive.
pub(crate) fn edited_concurrently_with_delete(doc: &Automerge) -> bool {
    let Ok(values) = doc.get_all(ROOT, TOMBSTONE_KEY) else {
        return false;
    };
    let deletes: Vec<ChangeHash> = values
        .iter()
        .filter_map(|(_, id)| doc.hash_for_opid(id))
        .collect();
    if deletes.is_empty() {
        return false;
    }
    // Changes not in the deletes' past, in causal order: each either saw a
    // delete (directly or through another such change) or is concurrent.
    let mut saw: HashSet<ChangeHash> = deletes.iter().copied().collect();
    for c in doc.get_changes(&deletes) {
        if c.deps().iter().any(|d| saw.contains(d)) {
            saw.insert(c.hash());
        } else {
            return true;
        }
    }
    false
}

/// Removes the tombstone (the document is live again with what it holds).
pub(crate) fn lift_tombstone<T: Transactable>(tx: &mut T) -> Result<()> {
    tx.delete(ROOT, TOMBSTONE_KEY)?;
    Ok(())
}

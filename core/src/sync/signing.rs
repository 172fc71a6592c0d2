//! Signatures on the wire (sync v3): the [`Frame::Signatures`] that goes
//! right before the frame carrying the changes it signs, cut to match when a
//! large reply is split into several frames.

use crate::error::Result;
use crate::storage::{DocKey, SigRow, Store};
use crate::wire::{split_changes, ChangeSig, Frame, Hash32};

/// The first sync version whose sessions carry change signatures.
pub(super) const SIGNATURES_VERSION: u16 = 3;

/// A `Changes` frame, preceded (with a peer of `version` 3 or later) by the
/// `Signatures` of those of its changes this node holds signatures of.
pub(super) fn signed_changes(
    store: &Store,
    version: u16,
    key: &DocKey,
    changes: Vec<Vec<u8>>,
    hashes: &[Hash32],
    heads: Vec<Hash32>,
) -> Result<Vec<Frame>> {
    let mut out = Vec::with_capacity(2);
    if version >= SIGNATURES_VERSION {
        let rows = store.signatures(key, hashes)?;
        out.extend(signatures_frame(key, &rows));
    }
    out.push(Frame::Changes {
        collection: key.collection().to_string(),
        id: key.id().to_string(),
        changes,
        heads,
    });
    Ok(out)
}

/// The `Signatures` frame for changes of `key` with these rows (one per
/// change, `None` for an unsigned one), or `None` when none is signed.
pub(super) fn signatures_frame(key: &DocKey, rows: &[Option<SigRow>]) -> Option<Frame> {
    if rows.iter().all(Option::is_none) {
        return None;
    }
    let mut authors: Vec<[u8; 32]> = Vec::new();
    let entries = rows
        .iter()
        .map(|r| {
            r.map(|r| {
                let mut author = [0u8; 32];
                author.copy_from_slice(&r[..32]);
                // Few authors per document: a linear look-up.
                let i = match authors.iter().position(|a| *a == author) {
                    Some(i) => i,
                    None => {
                        authors.push(author);
                        authors.len() - 1
                    }
                };
                ChangeSig {
                    author: i as u16,
                    sig: r[32..].to_vec(),
                }
            })
        })
        .collect();
    Some(Frame::Signatures {
        collection: key.collection().to_string(),
        id: key.id().to_string(),
        authors,
        entries,
    })
}

/// The frames that carry `changes` (split like [`split_changes`]), each
/// preceded by the part of `sigs` (a `Signatures` frame for exactly those
/// changes) that signs its changes, when any of that part is signed.
pub(super) fn split_signed(sigs: Frame, changes: Frame) -> Vec<Frame> {
    let Frame::Signatures {
        collection,
        id,
        authors,
        entries,
    } = sigs
    else {
        return split_changes(changes);
    };
    let mut entries = entries.into_iter();
    let mut out = Vec::new();
    for f in split_changes(changes) {
        let n = match &f {
            Frame::Changes { changes, .. } | Frame::MoreChanges { changes, .. } => changes.len(),
            // A change in pieces: its signature goes before its first piece.
            Frame::ChangePiece { .. } if !in_pieces(&out) => 1,
            _ => 0,
        };
        let part: Vec<Option<ChangeSig>> = entries.by_ref().take(n).collect();
        if part.iter().any(Option::is_some) {
            out.push(Frame::Signatures {
                collection: collection.clone(),
                id: id.clone(),
                authors: authors.clone(),
                entries: part,
            });
        }
        out.push(f);
    }
    out
}

/// Whether the frames so far end inside a change's pieces (the last one is a
/// piece that is not the change's last).
fn in_pieces(out: &[Frame]) -> bool {
    matches!(out.last(), Some(Frame::ChangePiece { last: false, .. }))
}

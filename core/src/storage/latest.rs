//! Latest-only and windowed documents (see [`crate::policy::SyncMode`]): a
//! document re-based on its current state (one change, no history behind
//! it), and the rule that merges versions of different bases.
//!
//! Windowed documents are re-based at the first write after their base is
//! older than the window; until then they keep (and sync) their history and
//! merge field by field like any document.
//!
//! Every local write replaces the document by a fresh one: the state after the
//! write, written as a single change (with this node's actor and the write's
//! time) that depends on nothing. So the stored document and everything sync
//! sends of it stay the size of its current state however often it changes.
//!
//! Merge rule across bases: **last writer wins, per document.** Of two
//! versions that share no change (two bases), the one
//! whose change is newer wins whole (ties: the greater change hash); the
//! other is dropped. Every node orders versions the same way, so two nodes
//! that both edit converge on the newer edit. Fields written concurrently are
//! not merged (use a full-history collection for that).
//!
//! The state is carried as JSON (what the document API writes); Automerge
//! types beyond JSON (text objects, counters) become their JSON values.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc, ROOT};
use serde_json::Value as Json;

use super::json::{is_tombstoned, put_map, read_doc, tombstone};
use crate::error::{Error, Result};

/// The document's state as a fresh document of one change at `time_ms`, or
/// `None` when there is nothing to write (an empty document) or the state
/// cannot be read as JSON (the history is kept then).
pub(crate) fn compacted(doc: &Automerge, actor: &ActorId, time_ms: i64) -> Option<Automerge> {
    let value = if is_tombstoned(doc) {
        None
    } else {
        match read_doc(doc) {
            Ok(Json::Object(m)) => Some(m),
            _ => return None,
        }
    };
    let mut fresh = Automerge::new().with_actor(actor.clone());
    fresh
        .transact_with(
            |_| CommitOptions::default().with_time(time_ms),
            |tx| match &value {
                Some(m) => put_map(tx, &ROOT, m),
                None => tombstone(tx),
            },
        )
        .ok()?;
    (!fresh.get_heads().is_empty()).then_some(fresh)
}

/// The time to stamp a local write of a re-based document with: `now`, and
/// at least one past the document's newest change, so a node's own
/// successive versions are ordered by time as they are by causality.
pub(crate) fn next_write_time(doc: &Automerge, now: i64) -> i64 {
    newest_time(doc).map_or(now, |t| now.max(t.saturating_add(1)))
}

/// The newest change time of the document (a walk over its history).
pub(crate) fn newest_time(doc: &Automerge) -> Option<i64> {
    doc.get_changes(&[]).iter().map(|c| c.timestamp()).max()
}

/// The version order of the merge rule: newest change time, then hash.
fn version(doc: &Automerge) -> (i64, Option<ChangeHash>) {
    let newest = newest_time(doc).unwrap_or(i64::MIN);
    (newest, doc.get_heads().into_iter().max())
}

/// What a peer's changes do to a latest-only document.
pub(crate) enum Incoming {
    /// A whole version newer than ours: it replaces ours.
    Wins(Box<Automerge>),
    /// A whole version not newer than ours: dropped.
    Loses,
    /// Not a whole version (changes depending on others: a history from a
    /// node that keeps one): merged as usual.
    Partial(Vec<Change>),
}

/// The time of the document's base (its first change), if it has one.
/// Costs a walk over its history (bounded by the window for windowed
/// documents, one change for latest-only ones).
pub(crate) fn base_time(doc: &Automerge) -> Option<i64> {
    doc.get_changes(&[]).first().map(|c| c.timestamp())
}

/// Judges a peer's changes against `ours` by the merge rule.
pub(crate) fn judge(ours: &Automerge, changes: Vec<Change>, actor: &ActorId) -> Result<Incoming> {
    if !ours.get_heads().is_empty() {
        // Changes of our base (some we hold already): merged as usual.
        let hashes: Vec<crate::wire::Hash32> = changes.iter().map(|c| c.hash().0).collect();
        if super::unknown_hashes(ours, &hashes).len() < hashes.len() {
            return Ok(Incoming::Partial(changes));
        }
    }
    let mut theirs = Automerge::new();
    theirs
        .apply_changes(changes.iter().cloned())
        .map_err(|e| Error::Protocol(format!("a latest-only version: {e}")))?;
    if !theirs.get_missing_deps(&[]).is_empty() {
        return Ok(Incoming::Partial(changes));
    }
    if ours.get_heads().is_empty() || version(&theirs) > version(ours) {
        Ok(Incoming::Wins(Box::new(theirs.with_actor(actor.clone()))))
    } else {
        Ok(Incoming::Loses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn doc_at(v: i64, time: i64) -> Automerge {
        let mut d = Automerge::new();
        d.transact_with(
            |_| CommitOptions::default().with_time(time),
            |tx| tx.put(ROOT, "v", v),
        )
        .unwrap();
        d
    }

    #[test]
    fn compaction_keeps_the_state_in_one_change() {
        let mut d = doc_at(1, 10);
        for i in 2..50 {
            d.transact_with(
                |_| CommitOptions::default().with_time(10 + i),
                |tx| tx.put(ROOT, "v", i),
            )
            .unwrap();
        }
        let actor = ActorId::random();
        let c = compacted(&d, &actor, 99).unwrap();
        assert_eq!(c.get_changes(&[]).len(), 1);
        assert_eq!(read_doc(&c).unwrap(), serde_json::json!({"v": 49}));
        assert!(c.save().len() < d.save().len());
        // nothing to write: kept as it is
        assert!(compacted(&Automerge::new(), &actor, 1).is_none());
    }

    #[test]
    fn the_newer_version_wins_whole_and_every_node_agrees() {
        let actor = ActorId::random();
        let (older, newer) = (doc_at(1, 100), doc_at(2, 200));
        let changes = |d: &Automerge| d.get_changes(&[]).into_iter().collect::<Vec<_>>();
        assert!(matches!(
            judge(&older, changes(&newer), &actor).unwrap(),
            Incoming::Wins(_)
        ));
        assert!(matches!(
            judge(&newer, changes(&older), &actor).unwrap(),
            Incoming::Loses
        ));
        // the same time: the greater hash wins, on both sides
        let (x, y) = (doc_at(3, 300), doc_at(4, 300));
        let x_wins = matches!(judge(&y, changes(&x), &actor).unwrap(), Incoming::Wins(_));
        let y_wins = matches!(judge(&x, changes(&y), &actor).unwrap(), Incoming::Wins(_));
        assert_ne!(x_wins, y_wins);
        // two writes in one millisecond: the second is stamped later, and
        // so wins everywhere whatever the hashes
        let first = compacted(&doc_at(7, 700), &actor, 700).unwrap();
        let t = next_write_time(&first, 700);
        assert_eq!(t, 701);
        let second = compacted(&doc_at(8, 700), &actor, t).unwrap();
        assert!(matches!(
            judge(&first, changes(&second), &actor).unwrap(),
            Incoming::Wins(_)
        ));
        assert!(matches!(
            judge(&second, changes(&first), &actor).unwrap(),
            Incoming::Loses
        ));
        // our own version sent back is ours: merged (a no-op)
        assert!(matches!(
            judge(&newer, changes(&newer), &actor).unwrap(),
            Incoming::Partial(_)
        ));
        // a change depending on another this node lacks is not a whole version
        let mut d = doc_at(5, 500);
        d.transact_with(
            |_| CommitOptions::default().with_time(501),
            |tx| tx.put(ROOT, "v", 6),
        )
        .unwrap();
        let last = d.get_changes(&[]).last().cloned().unwrap();
        assert!(matches!(
            judge(&older, vec![last], &actor).unwrap(),
            Incoming::Partial(_)
        ));
    }
}

//! One garbage-collection pass over the stored documents: expired documents
//! and tombstones removed, then each collection with a retention rule cut
//! down to it, oldest (by newest change) first.
//!
//! Memory stays bounded whatever the store holds: the metadata is walked
//! [`SCAN_PAGE`] rows per read transaction, a page's removals are committed
//! together before the next page is read, and retention looks at the [`RETENTION_WINDOW`] oldest documents
//! of a collection per pass (a collection further over its bound is cut down
//! over several passes).

use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{budget, removal, GarbageReport, Lifecycle, Removal};
use crate::clock::unix_ms;
use crate::error::Result;
use crate::locks::LockExt;
use crate::policy::Retention;
use crate::storage::{DocKey, Meta, Store};

/// Metadata rows read per read transaction.
pub(crate) const SCAN_PAGE: usize = 4096;

/// Oldest documents of one collection considered for retention per pass.
pub(crate) const RETENTION_WINDOW: usize = 10_000;

/// A collection's live documents as retention sees them in one pass.
#[derive(Default)]
struct Tally {
    documents: u64,
    bytes: u64,
    /// The oldest documents seen, newest on top (so the newest of them is the
    /// one dropped when a still older one comes).
    oldest: BinaryHeap<(u64, String, u64)>,
}

/// Runs one pass (blocking: call it off the runtime) and returns once its
/// removals are durable. One pass at a time.
pub(crate) fn collect(lc: &Lifecycle, store: &Store) -> Result<GarbageReport> {
    collect_within(lc, store, RETENTION_WINDOW)
}

/// [`collect`] considering the `window` oldest documents per collection.
pub(super) fn collect_within(
    lc: &Lifecycle,
    store: &Store,
    window: usize,
) -> Result<GarbageReport> {
    let _one = lc.running.locked();
    let started = Instant::now();
    let policies = lc.policies.get();
    lc.prune_floors(&policies);
    let mut report = GarbageReport::default();
    let mut tallies: HashMap<String, (Retention, Tally)> = HashMap::new();
    let mut candidates = budget::Candidates::new(window);
    // Bytes the documents take after this pass's expiry (for the budget).
    let mut total: u64 = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.meta_page(after.as_deref(), SCAN_PAGE)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        let now = unix_ms();
        let mut doomed = Vec::new();
        for (skey, meta) in page {
            let key = DocKey::from_storage_key(&skey)?;
            let policy = *policies.for_collection(key.collection());
            if removal(&policy, &meta, now).is_some() {
                doomed.push(key);
                continue;
            }
            total += meta.bytes;
            if !meta.deleted && lc.budget.is_some() {
                candidates.offer(policy.priority, &skey, &meta);
            }
            if meta.deleted || policy.retention == Retention::default() {
                continue;
            }
            let (_, tally) = tallies
                .entry(key.collection().to_string())
                .or_insert_with(|| (policy.retention, Tally::default()));
            tally.documents += 1;
            tally.bytes += meta.bytes;
            tally.oldest.push((meta.ts, skey, meta.bytes));
            if tally.oldest.len() > window {
                tally.oldest.pop();
            }
        }
        // Checked again under each document's lock: a change since can save it.
        let why = |key: &DocKey, m: &Meta| {
            removal(policies.for_collection(key.collection()), m, unix_ms())
        };
        for (key, meta) in store.purge_many(&doomed, |k, m| why(k, m).is_some())? {
            match why(&key, &meta) {
                Some(Removal::Tombstone) => report.purged_tombstones += 1,
                _ => report.expired_documents += 1,
            }
            tracing::debug!(%key, "document removed past its lifetime");
        }
        // One page's removals in the writer's queue at a time (and the empty
        // cells they pin in the cache): wait until they commit.
        if !store.flush_blocking() {
            return Err(crate::error::Error::Closed);
        }
    }
    for (collection, (retention, tally)) in tallies {
        let (n, bytes) = enforce(lc, store, &collection, retention, tally)?;
        report.evicted_documents += n;
        total = total.saturating_sub(bytes);
    }
    if let Some(b) = &lc.budget {
        (report.budget_evicted, report.stored_bytes) =
            budget::enforce(lc, store, b, total, candidates)?;
    }
    // Returns once the removals are durable (listings read committed rows).
    if !store.flush_blocking() {
        return Err(crate::error::Error::Closed);
    }
    store.check_not_failed()?;
    let c = &lc.counters;
    c.expired
        .fetch_add(report.expired_documents, Ordering::Relaxed);
    c.tombstones
        .fetch_add(report.purged_tombstones, Ordering::Relaxed);
    c.evicted
        .fetch_add(report.evicted_documents, Ordering::Relaxed);
    c.runs.fetch_add(1, Ordering::Relaxed);
    report.took = started.elapsed();
    if report
        != (GarbageReport {
            took: report.took,
            ..Default::default()
        })
    {
        tracing::debug!(?report, "garbage collected");
    }
    Ok(report)
}

/// Removes a collection's oldest documents until it is within `retention`.
/// Returns the documents removed and the bytes they took.
fn enforce(
    lc: &Lifecycle,
    store: &Store,
    collection: &str,
    retention: Retention,
    tally: Tally,
) -> Result<(u64, u64)> {
    let (mut documents, mut bytes) = (tally.documents, tally.bytes);
    let over = |d: u64, b: u64| {
        retention.max_documents.is_some_and(|m| d > m) || retention.max_bytes.is_some_and(|m| b > m)
    };
    let (mut evicted, mut freed) = (0, 0);
    for (ts, skey, size) in tally.oldest.into_sorted_vec() {
        if !over(documents, bytes) {
            break;
        }
        let key = DocKey::from_storage_key(&skey)?;
        // Only if it has not changed since it was counted.
        let unchanged = |m: &Meta| !m.deleted && m.ts == ts;
        if store.purge_if(&key, unchanged)?.is_some() {
            evicted += 1;
            freed += size;
            lc.raise_floor(collection, ts);
            tracing::debug!(%key, "document removed by retention");
        }
        documents -= 1;
        bytes = bytes.saturating_sub(size);
    }
    Ok((evicted, freed))
}

/// (live documents, tombstones, bytes) stored now: one walk over the metadata.
pub(crate) fn census(store: &Store) -> Result<(u64, u64, u64)> {
    let (mut live, mut dead, mut bytes) = (0, 0, 0);
    let mut after: Option<String> = None;
    loop {
        let page = store.meta_page(after.as_deref(), SCAN_PAGE)?;
        let Some((last, _)) = page.last() else {
            return Ok((live, dead, bytes));
        };
        after = Some(last.clone());
        for (_, m) in &page {
            if m.deleted {
                dead += 1;
            } else {
                live += 1;
            }
            bytes += m.bytes;
        }
    }
}

//! The node-wide storage budget ([`crate::NodeConfig::storage_budget`]): when
//! the documents take more than the high-water mark of the budget, garbage
//! collection removes documents until they take no more than the low-water
//! mark — bulk before low before normal before high, oldest first within a
//! class; critical documents never. What it removed is refused from peers
//! unless newer, like retention.
//!
//! Counted in documents' stored bytes (snapshots and change rows; blobs have
//! their own garbage collection). A pass looks at the [`super::gc::RETENTION_WINDOW`]
//! most removable documents; a store further over its budget is cut down over
//! several passes.

use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

use super::Lifecycle;
use crate::error::{Error, Result};
use crate::policy::Priority;
use crate::storage::{DocKey, Meta, Store};

/// A node-wide byte budget for documents, with its water marks (percent of
/// `max_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageBudget {
    pub max_bytes: u64,
    /// Past this share of `max_bytes`, garbage collection evicts. Default 90.
    pub high_water_pct: u8,
    /// Eviction stops at this share. Default 80.
    pub low_water_pct: u8,
}

impl StorageBudget {
    /// A budget of `max_bytes` with the default marks (90 % and 80 %).
    pub fn new(max_bytes: u64) -> StorageBudget {
        StorageBudget {
            max_bytes,
            high_water_pct: 90,
            low_water_pct: 80,
        }
    }

    /// Checks the marks: 0 < low ≤ high ≤ 100, and a budget above zero.
    pub fn check(&self) -> Result<()> {
        let (lo, hi) = (self.low_water_pct, self.high_water_pct);
        if self.max_bytes == 0 || lo == 0 || lo > hi || hi > 100 {
            return Err(Error::InvalidArgument(format!(
                "a storage budget of {} bytes with marks {lo}%..{hi}%: needs bytes above 0 and 0 < low <= high <= 100",
                self.max_bytes
            )));
        }
        Ok(())
    }

    fn mark(&self, pct: u8) -> u64 {
        (self.max_bytes as u128 * pct as u128 / 100) as u64
    }
}

/// The most removable documents seen in one pass, bounded: the least
/// removable of them on top, dropped when a more removable one comes.
pub(super) struct Candidates {
    heap: BinaryHeap<(usize, u64, String, u64)>,
    window: usize,
}

impl Candidates {
    pub(super) fn new(window: usize) -> Candidates {
        Candidates {
            heap: BinaryHeap::new(),
            window,
        }
    }

    /// Offers a live document of `class` (critical ones are never taken).
    pub(super) fn offer(&mut self, class: Priority, skey: &str, meta: &Meta) {
        if class == Priority::Critical {
            return;
        }
        // Smaller goes first: bulk (4) is 0, high (1) is 3.
        let rank = Priority::Bulk.index() - class.index();
        self.heap
            .push((rank, meta.ts, skey.to_string(), meta.bytes));
        if self.heap.len() > self.window {
            self.heap.pop();
        }
    }
}

/// Evicts from `candidates` until `total` (bytes stored after the pass's
/// other removals) is at the budget's low-water mark, if it is past its
/// high-water mark. Returns the documents evicted and the bytes stored after.
pub(super) fn enforce(
    lc: &Lifecycle,
    store: &Store,
    budget: &StorageBudget,
    mut total: u64,
    candidates: Candidates,
) -> Result<(u64, u64)> {
    if total <= budget.mark(budget.high_water_pct) {
        return Ok((0, total));
    }
    let low = budget.mark(budget.low_water_pct);
    let mut evicted = 0;
    let mut kept_undelivered = 0u64;
    for (_, ts, skey, bytes) in candidates.heap.into_sorted_vec() {
        if total <= low {
            break;
        }
        let key = DocKey::from_storage_key(&skey)?;
        if lc.must_keep(&key) {
            kept_undelivered += 1;
            continue;
        }
        let unchanged = |m: &Meta| !m.deleted && m.ts == ts;
        if store.purge_if(&key, unchanged)?.is_some() {
            evicted += 1;
            total = total.saturating_sub(bytes);
            lc.raise_floor(key.collection(), ts);
            tracing::debug!(%key, "document evicted by the storage budget");
        }
    }
    if evicted > 0 {
        lc.counters
            .budget_evicted
            .fetch_add(evicted, Ordering::Relaxed);
        tracing::info!(
            evicted,
            bytes_now = total,
            budget = budget.max_bytes,
            "storage budget: documents evicted"
        );
    }
    if kept_undelivered > 0 {
        tracing::info!(
            kept_undelivered,
            "storage budget: documents no peer holds yet were kept (their collections keep them until delivered)"
        );
    }
    Ok((evicted, total))
}

//! Data lifecycle: documents past their collection's TTL, tombstones past
//! theirs and documents beyond a collection's retention are removed from this
//! node ([`gc`]); documents a peer offers that this node would remove at once
//! are refused ([`Lifecycle::refusal`]), so nothing removed comes back.
//!
//! Removal is local (nothing syncs): every node applies the same policies to
//! the same newest-change times (see [`crate::policy`]). What removes what is
//! counted ([`StorageStats`]) and logged at debug level. The storage budget
//! never evicts a document its collection keeps until delivered while no peer
//! is known to hold it ([`delivery`]).

mod budget;
mod delivery;
mod gc;

pub use budget::StorageBudget;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;

use crate::clock::unix_ms;
use crate::locks::LockExt;
use crate::policy::{CollectionPolicy, Policies, PolicyTable, CLOCK_SKEW};
use crate::storage::Meta;
use crate::wire::Hash32;

pub(crate) use gc::{census, collect};

/// Version ids of refused documents remembered, so reconciliation does not
/// ask for them again (65,536 × 8 bytes). Past it the oldest are forgotten:
/// such a document is fetched once more and refused again.
pub(crate) const REFUSED_MEMORY: usize = 65_536;

/// What one garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GarbageReport {
    /// Documents past their collection's TTL.
    pub expired_documents: u64,
    /// Tombstones past their collection's tombstone TTL.
    pub purged_tombstones: u64,
    /// Documents beyond their collection's retention (oldest first).
    pub evicted_documents: u64,
    /// Documents evicted by the node's storage budget.
    pub budget_evicted: u64,
    /// With a storage budget: the bytes documents take after the pass (0 without one).
    pub stored_bytes: u64,
    /// Blobs no live document refers to (past the blob grace period).
    pub removed_blobs: u64,
    /// Bytes those blobs held.
    pub blob_bytes_freed: u64,
    /// How long the pass took.
    pub took: Duration,
}

/// The node's storage and lifecycle counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Live documents stored.
    pub documents: u64,
    /// Tombstones (deleted documents not yet purged).
    pub tombstones: u64,
    /// Bytes the documents and tombstones take (snapshots and change rows).
    pub document_bytes: u64,
    /// Since open: documents removed past their TTL.
    pub expired_total: u64,
    /// Since open: tombstones removed past their tombstone TTL.
    pub tombstones_purged_total: u64,
    /// Since open: documents removed by retention.
    pub evicted_total: u64,
    /// Since open: documents evicted by the storage budget.
    pub budget_evicted_total: u64,
    /// Since open: documents a peer offered that had expired here.
    pub refused_expired_total: u64,
    /// Since open: documents a peer offered that retention had removed here.
    pub refused_evicted_total: u64,
    /// Since open: deleted documents brought back by an edit the delete did
    /// not see, in update-wins collections.
    pub revived_total: u64,
    /// Since open: garbage collections run.
    pub gc_runs: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub expired: AtomicU64,
    pub tombstones: AtomicU64,
    pub evicted: AtomicU64,
    pub budget_evicted: AtomicU64,
    pub refused_expired: AtomicU64,
    pub refused_evicted: AtomicU64,
    pub revived: AtomicU64,
    pub runs: AtomicU64,
}

/// Why a peer's document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Expired,
    Evicted,
}

/// The node's lifecycle state: its policies, counters and memory of what it
/// removed.
pub(crate) struct Lifecycle {
    pub policies: PolicyTable,
    pub counters: Counters,
    /// Per collection with retention, the newest change time of the documents
    /// retention removed: an unknown document no newer is refused. At most one
    /// entry per policy.
    floors: Mutex<HashMap<String, u64>>,
    refused: Mutex<LruCache<[u8; 8], ()>>,
    /// One garbage-collection pass at a time.
    pub(crate) running: Mutex<()>,
    /// The node-wide storage budget, if any.
    pub(crate) budget: Option<StorageBudget>,
    /// Documents written here no peer is known to hold yet.
    pub(crate) delivery: delivery::Delivery,
}

impl Lifecycle {
    pub(crate) fn new(policies: Policies) -> Lifecycle {
        Lifecycle {
            policies: PolicyTable::new(policies),
            counters: Counters::default(),
            floors: Mutex::new(HashMap::new()),
            refused: Mutex::new(LruCache::new(
                NonZeroUsize::new(REFUSED_MEMORY).unwrap_or(NonZeroUsize::MIN),
            )),
            running: Mutex::new(()),
            budget: None,
            delivery: delivery::Delivery::new(),
        }
    }

    /// A document was written here: tracked for delivery if its collection
    /// keeps documents until delivered.
    pub(crate) fn wrote_locally(&self, key: &crate::storage::DocKey) {
        if self
            .policies
            .get()
            .for_collection(key.collection())
            .keep_until_delivered
        {
            self.delivery.wrote(key);
        }
    }

    /// Whether the storage budget must keep `key`: its collection keeps
    /// documents until delivered, and no peer is known to hold it.
    pub(crate) fn must_keep(&self, key: &crate::storage::DocKey) -> bool {
        self.policies
            .get()
            .for_collection(key.collection())
            .keep_until_delivered
            && self.delivery.undelivered(key)
    }

    /// Whether a reconciliation round would prove something: a collection
    /// keeps documents until delivered and some may not be.
    pub(crate) fn needs_delivery_proof(&self) -> bool {
        let policies = self.policies.get();
        self.budget.is_some()
            && (policies.default_policy().keep_until_delivered
                || policies.iter().any(|(_, p)| p.keep_until_delivered))
            && self.delivery.unproven()
    }

    /// With a node-wide storage budget.
    pub(crate) fn with_budget(mut self, budget: Option<StorageBudget>) -> Lifecycle {
        self.budget = budget;
        self
    }

    /// Whether a document this node does not hold, whose newest offered change
    /// is `newest_ms`, is refused.
    pub(crate) fn refusal(&self, collection: &str, newest_ms: u64) -> Option<Refusal> {
        let policies = self.policies.get();
        let p = policies.for_collection(collection);
        if expired(p.ttl, newest_ms, unix_ms(), CLOCK_SKEW) {
            return Some(Refusal::Expired);
        }
        if p.retention != Default::default() || self.budget.is_some() {
            let floor = self.floors.locked().get(collection).copied();
            if floor.is_some_and(|f| newest_ms <= f) {
                return Some(Refusal::Evicted);
            }
        }
        None
    }

    /// Counts a refusal and remembers the refused version, so reconciliation
    /// does not ask for it again.
    pub(crate) fn refused(&self, why: Refusal, vid: &Hash32) {
        let c = match why {
            Refusal::Expired => &self.counters.refused_expired,
            Refusal::Evicted => &self.counters.refused_evicted,
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.remember_refused(vid);
    }

    /// Remembers a version this node refused (or refused part of), so that
    /// reconciliation does not ask for it again (bounded like every refusal).
    pub(crate) fn remember_refused(&self, vid: &Hash32) {
        let mut p = [0u8; 8];
        p.copy_from_slice(&vid[..8]);
        self.refused.locked().put(p, ());
    }

    /// Whether a version with this id prefix was refused.
    pub(crate) fn was_refused(&self, prefix: &[u8; 8]) -> bool {
        self.refused.locked().contains(prefix)
    }

    /// Whether a stored document still takes part in sync (not past its
    /// collection's TTL or tombstone TTL: those are about to be removed).
    pub(crate) fn is_live(&self, policies: &Policies, key: &str, meta: &Meta, now: u64) -> bool {
        let collection = key.split('\0').next().unwrap_or_default();
        removal(policies.for_collection(collection), meta, now).is_none()
    }

    pub(crate) fn raise_floor(&self, collection: &str, ts: u64) {
        let mut f = self.floors.locked();
        let e = f.entry(collection.to_string()).or_insert(0);
        *e = (*e).max(ts);
    }

    /// Floors of collections that no longer have a retention rule are
    /// dropped (all are kept while the node has a storage budget).
    pub(crate) fn prune_floors(&self, policies: &Policies) {
        if self.budget.is_some() {
            return;
        }
        self.floors
            .locked()
            .retain(|c, _| policies.for_collection(c).retention != Default::default());
    }

    pub(crate) fn stats(&self) -> StorageStats {
        let c = &self.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StorageStats {
            expired_total: n(&c.expired),
            tombstones_purged_total: n(&c.tombstones),
            evicted_total: n(&c.evicted),
            budget_evicted_total: n(&c.budget_evicted),
            refused_expired_total: n(&c.refused_expired),
            refused_evicted_total: n(&c.refused_evicted),
            revived_total: n(&c.revived),
            gc_runs: n(&c.runs),
            ..StorageStats::default()
        }
    }
}

/// Why a stored document is to be removed now, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    Expired,
    Tombstone,
}

pub(crate) fn removal(p: &CollectionPolicy, meta: &Meta, now: u64) -> Option<Removal> {
    if meta.deleted {
        return expired(Some(p.tombstone_ttl), meta.ts, now, Duration::ZERO)
            .then_some(Removal::Tombstone);
    }
    expired(p.ttl, meta.ts, now, Duration::ZERO).then_some(Removal::Expired)
}

/// Whether something last changed at `ts` (ms) is past `ttl` (+ `slack`) at `now`.
fn expired(ttl: Option<Duration>, ts: u64, now: u64, slack: Duration) -> bool {
    let Some(ttl) = ttl else {
        return false;
    };
    let limit = (ttl + slack).as_millis() as u64;
    now.saturating_sub(ts) > limit
}

/// Documents queued for their blobs ([`crate::CollectionPolicy::eager_blobs`]), at most.
pub(crate) const EAGER_QUEUE: usize = 1024;

/// The sending half of the eager-blob queue (its task is the node's): the
/// sync engine queues documents of eager collections as peers' changes
/// arrive. Past [`EAGER_QUEUE`] it notes the overflow instead of growing,
/// and the task walks the eager collections once drained.
pub(crate) struct EagerQueue {
    tx: tokio::sync::mpsc::Sender<crate::storage::DocKey>,
    overflowed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EagerQueue {
    pub(crate) fn new(
        tx: tokio::sync::mpsc::Sender<crate::storage::DocKey>,
        overflowed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> EagerQueue {
        EagerQueue { tx, overflowed }
    }

    /// Queues a document for its blobs (never blocks).
    pub(crate) fn push(&self, key: &crate::storage::DocKey) {
        if self.tx.try_send(key.clone()).is_err() {
            self.overflowed.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;

//! The policy and lifecycle API of [`Node`]: per-collection policies at
//! runtime, garbage collection on demand and on a schedule, storage counters.

use std::sync::Arc;
use std::time::Duration;

use crate::blobs::Blobs;
use crate::error::{Error, Result};
use crate::lifecycle::{self, GarbageReport, StorageStats};
use crate::policy::{CollectionPolicy, Policies};
use crate::sync::Engine;

use super::Node;

impl Node {
    /// The policy `collection` follows now (its own or the default).
    pub fn policy(&self, collection: &str) -> CollectionPolicy {
        *self
            .inner
            .engine
            .lifecycle
            .policies
            .get()
            .for_collection(collection)
    }

    /// Every policy in force now.
    pub fn policies(&self) -> Policies {
        (*self.inner.engine.lifecycle.policies.get()).clone()
    }

    /// Sets `collection`'s policy; it applies from the next write, sync and
    /// garbage collection on. At most [`crate::policy::MAX_POLICIES`]
    /// collections have their own.
    pub fn set_policy(&self, collection: &str, policy: CollectionPolicy) -> Result<()> {
        self.check_open()?;
        self.inner
            .engine
            .lifecycle
            .policies
            .update(|p| p.set(collection, policy))
    }

    /// Sets the policy of every collection without its own.
    pub fn set_default_policy(&self, policy: CollectionPolicy) -> Result<()> {
        self.check_open()?;
        self.inner
            .engine
            .lifecycle
            .policies
            .update(|p| p.set_default(policy))
    }

    /// Removes `collection`'s own policy (it follows the default again).
    /// False if it had none.
    pub fn remove_policy(&self, collection: &str) -> Result<bool> {
        self.check_open()?;
        self.inner
            .engine
            .lifecycle
            .policies
            .update(|p| Ok(p.remove(collection)))
    }

    /// Runs garbage collection now: expired documents and tombstones,
    /// retention, then unreferenced blobs. Returns what it removed.
    pub async fn collect_garbage(&self) -> Result<GarbageReport> {
        self.check_open()?;
        collect(&self.inner.engine, &self.blobs(), true).await
    }

    /// Storage counters: what is stored now (one walk over the documents'
    /// metadata, not their content) and what lifecycle removed or refused.
    pub async fn storage_stats(&self) -> Result<StorageStats> {
        self.check_open()?;
        let engine = self.inner.engine.clone();
        tokio::task::spawn_blocking(move || {
            let mut stats = engine.lifecycle.stats();
            let (documents, tombstones, bytes) = lifecycle::census(&engine.store)?;
            stats.documents = documents;
            stats.tombstones = tombstones;
            stats.document_bytes = bytes;
            Ok(stats)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }
}

async fn collect(engine: &Arc<Engine>, blobs: &Blobs, with_blobs: bool) -> Result<GarbageReport> {
    let e = engine.clone();
    let mut report =
        tokio::task::spawn_blocking(move || lifecycle::collect(&e.lifecycle, &e.store))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
    if report.budget_evicted > 0 {
        let event = crate::PeerEvent::StorageEvicted {
            documents: report.budget_evicted,
            stored_bytes: report.stored_bytes,
        };
        engine.ctx.peer_hub.publish(&event, |_| true);
    }
    if with_blobs {
        let started = std::time::Instant::now();
        let blob_report = blobs.gc().await?;
        report.removed_blobs = blob_report.removed.len() as u64;
        report.blob_bytes_freed = blob_report.bytes_freed;
        report.took += started.elapsed();
    }
    Ok(report)
}

/// Starts the lifecycle tasks: eager blobs and garbage collection.
pub(super) fn start(
    ctx: &crate::transport::NodeContext,
    engine: Arc<Engine>,
    blobs: Blobs,
    gc_interval: Duration,
) {
    let (queue, eager) = super::eager::start(engine.clone(), blobs.clone(), ctx.cancel.clone());
    let _ = engine.eager.set(queue);
    ctx.tasks.spawn(eager);
    ctx.tasks
        .spawn(run_gc(engine, blobs, gc_interval, ctx.cancel.clone()));
}

/// Garbage collection every `interval` (the first pass one interval after
/// open) until the node closes. The blob pass (which reads every document)
/// runs only while blobs are stored. Until a pass runs, expired documents are
/// already left out of sync and refused from peers.
async fn run_gc(
    engine: Arc<Engine>,
    blobs: Blobs,
    interval: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    let period = interval.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let with_blobs = blobs.list().map(|l| !l.is_empty()).unwrap_or(false);
        match collect(&engine, &blobs, with_blobs).await {
            Ok(_) => {}
            Err(e) if e.kind() == crate::ErrorKind::Closed => return,
            Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
        }
    }
}

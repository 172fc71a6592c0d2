//! Eager blobs ([`crate::CollectionPolicy::eager_blobs`]): when a peer's
//! changes to a document of such a collection arrive, the blobs it refers to
//! that are not here are fetched at once, at most [`IN_FLIGHT`] at a time.
//!
//! Bound: the documents waiting to be looked at are a queue of
//! [`EAGER_QUEUE`]; past it, instead of growing, the queue notes that it
//! overflowed and, once drained, walks the eager collections' documents for
//! references still missing (nothing is skipped, only done later).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::blobs::{BlobStatus, Blobs, FetchOptions, Transfer};
use crate::lifecycle::EagerQueue;
use crate::storage::DocKey;
use crate::sync::Engine;

use crate::lifecycle::EAGER_QUEUE;

/// Blob fetches the eager task runs at once, at most.
pub(crate) const IN_FLIGHT: usize = 4;

/// The queue and the task that serves it (until the node closes).
pub(super) fn start(
    engine: Arc<Engine>,
    blobs: Blobs,
    cancel: tokio_util::sync::CancellationToken,
) -> (EagerQueue, impl std::future::Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(EAGER_QUEUE);
    let overflowed = Arc::new(AtomicBool::new(false));
    let queue = EagerQueue::new(tx, overflowed.clone());
    let task = async move {
        tokio::select! {
            _ = serve(engine, blobs, rx, overflowed) => {}
            _ = cancel.cancelled() => {}
        }
    };
    (queue, task)
}

async fn serve(
    engine: Arc<Engine>,
    blobs: Blobs,
    mut rx: mpsc::Receiver<DocKey>,
    overflowed: Arc<AtomicBool>,
) {
    let mut running: Vec<Transfer> = Vec::new();
    let class = |key: &DocKey| {
        engine
            .lifecycle
            .policies
            .get()
            .for_collection(key.collection())
            .priority
    };
    while let Some(key) = rx.recv().await {
        fetch_refs(&blobs, &key, class(&key), &mut running).await;
        if rx.is_empty() && overflowed.swap(false, Ordering::Relaxed) {
            for key in eager_documents(&engine) {
                fetch_refs(&blobs, &key, class(&key), &mut running).await;
            }
        }
    }
}

/// Starts fetches for the document's missing blobs in its collection's
/// class, waiting for the oldest running one while [`IN_FLIGHT`] are.
async fn fetch_refs(
    blobs: &Blobs,
    key: &DocKey,
    class: crate::Priority,
    running: &mut Vec<Transfer>,
) {
    let refs = match blobs.refs_of(key.collection(), key.id()) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%key, error = %e, "eager blobs: document unreadable");
            return;
        }
    };
    for r in refs {
        if matches!(blobs.status(r.hash), Ok(BlobStatus::Complete(_))) {
            continue;
        }
        while running.len() >= IN_FLIGHT {
            let t = running.remove(0);
            if let Err(e) = t.wait().await {
                tracing::debug!(error = %e, "eager blob fetch failed (fetched on demand later)");
            }
        }
        let opts = FetchOptions::default()
            .expected_size(r.size)
            .priority(class);
        running.push(blobs.fetch(r.hash, opts));
        tracing::debug!(%key, blob = %r.hash, "fetching a referenced blob eagerly");
    }
}

/// Every live document of the collections with eager blobs now.
fn eager_documents(engine: &Engine) -> Vec<DocKey> {
    let policies = engine.lifecycle.policies.get();
    let mut out = Vec::new();
    let mut collections: Vec<&str> = policies
        .iter()
        .filter(|(_, p)| p.eager_blobs)
        .map(|(c, _)| c)
        .collect();
    collections.dedup();
    for c in collections {
        let _ = engine.store.scan(c, "", None, |id, meta| {
            if !meta.deleted {
                if let Ok(k) = DocKey::new(c, id) {
                    out.push(k);
                }
            }
            Ok(true)
        });
    }
    out
}

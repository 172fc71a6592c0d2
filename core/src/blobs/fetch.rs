//! Fetching a blob: providers, verification, resume, pacing and progress.
//!
//! One task drives a [`Transfer`]. Each provider gets a worker that takes
//! batches of missing chunks from a shared queue and streams them over one
//! request; every piece goes to a single sink thread that checks each 64 KiB
//! leaf against the outboard and only then writes it (or hands it on, for
//! [`super::Blobs::stream`]). A provider whose bytes fail the check is dropped
//! and its batch goes back to the queue for the others; a provider whose link
//! drops is waited for (up to [`FetchOptions::reconnect_wait`]) and resumes
//! where it stopped.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::hash::BlobHash;
use super::partial::Partial;
use super::providers::{fetch_outboard, find_providers, FetchEnv};
use super::pump::pump;
use super::sink::Target;
use super::store::BlobInfo;
pub(crate) use super::transfer::Counters;
use super::transfer::{FetchOptions, Outcome, Progress, Transfer};
use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::NodeId;

/// Starts a transfer task; returns its handle at once.
pub(crate) fn start(ctx: FetchEnv, hash: BlobHash, opts: FetchOptions) -> Transfer {
    let cancel = ctx.node.cancel.child_token();
    let (ptx, prx) = watch::channel(Progress::default());
    let (otx, orx) = watch::channel(Outcome::Running);
    let t = Transfer {
        hash,
        cancel: cancel.clone(),
        progress: prx,
        outcome: orx,
    };
    let ptx = Arc::new(ptx);
    let shared = ctx.shared.clone();
    let rt = shared.rt.clone();
    ctx.node.tasks.clone().spawn_on(
        async move {
            let r = run(&ctx, hash, &opts, &cancel, &ptx).await;
            ptx.send_modify(|p| p.finished = true);
            shared.active.locked().remove(&hash);
            let _ = otx.send(match r {
                Ok(i) => Outcome::Done(i),
                Err(e) => Outcome::Failed(e.kind(), e.detail()),
            });
        },
        &rt,
    );
    t
}

pub(super) async fn run(
    ctx: &FetchEnv,
    hash: BlobHash,
    opts: &FetchOptions,
    cancel: &CancellationToken,
    progress: &Arc<watch::Sender<Progress>>,
) -> Result<BlobInfo> {
    opts.profile.validate()?;
    let store = ctx.shared.store.clone();
    if let Some(i) = store.info(&hash)? {
        progress.send_modify(|p| {
            p.done = i.size;
            p.total = i.size;
        });
        return Ok(i);
    }
    let providers: Vec<NodeId> = if opts.providers.is_empty() {
        let all = ctx.connections.peers();
        find_providers(&ctx.connections, hash, &all)
            .await
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    } else {
        opts.providers.clone()
    };
    if providers.is_empty() {
        return Err(Error::NotFound(format!(
            "no connected peer has blob {hash}"
        )));
    }
    let st = store.clone();
    let partial = blocking(move || Partial::open(&st, hash)).await?;
    // Bytes this transfer has already received (the last leaf that proved the size).
    let mut fresh = 0;
    let partial = match partial {
        Some(p) => p,
        None => {
            let (ob, last) = fetch_outboard(ctx, hash, &providers, opts, cancel).await?;
            fresh = last.as_ref().map_or(0, |(_, d)| d.len() as u64);
            let st = store.clone();
            blocking(move || {
                let mut p = Partial::create(&st, ob)?;
                if let Some((leaf, data)) = last {
                    p.write_verified(leaf, &data)?;
                }
                Ok(p)
            })
            .await?
        }
    };
    if let Some(want) = opts.expected_size.filter(|w| *w != partial.size()) {
        return Err(Error::Corrupt(format!(
            "a partial of blob {hash} holds {} bytes, the reference says {want}",
            partial.size()
        )));
    }
    let size = partial.size();
    let done = partial.present();
    let resumed = done - fresh.min(done);
    progress.send_modify(|p| {
        p.total = size;
        p.received = fresh;
        p.done = done;
        p.resumed = resumed;
    });
    let target = Target::Store(Box::new(partial));
    let (target, res) = pump(ctx, target, &providers, opts, cancel, progress).await?;
    let Target::Store(partial) = target else {
        return Err(Error::Internal("sink changed kind".into()));
    };
    if partial.is_complete() {
        let st = store.clone();
        let info = blocking(move || partial.finish(&st)).await?;
        progress.send_modify(|p| p.done = info.size);
        return Ok(info);
    }
    Err(res.unwrap_or_else(|| Error::Internal("transfer ended incomplete".into())))
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

//! The sink of a transfer: one thread that checks each received leaf against
//! the outboard and only then writes it (or hands it on).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::hash::{leaf_count, Outboard, LEAF_SIZE};
use super::partial::Partial;
use super::transfer::{Counters, Progress};
use crate::error::{Error, Result};
use crate::locks::LockExt;

pub(super) enum SinkMsg {
    Piece {
        worker: usize,
        first_leaf: u64,
        data: Bytes,
    },
    Flush(oneshot::Sender<()>),
}

/// Where verified bytes go.
pub(crate) enum Target {
    /// Into a partial download on disk.
    Store(Box<Partial>),
    /// In order to a reader ([`super::Blobs::stream`]); nothing is stored.
    Forward {
        outboard: Outboard,
        out: mpsc::Sender<Result<Bytes>>,
    },
}

pub(super) struct SinkState {
    /// Chunks fully verified.
    pub(super) done: Mutex<Vec<bool>>,
    /// Workers whose provider sent bytes that failed verification.
    pub(super) liars: Mutex<HashSet<usize>>,
    pub(super) present: AtomicU64,
    pub(super) failed: Mutex<Option<Error>>,
}

pub(super) struct Sink {
    pub(super) tx: mpsc::Sender<SinkMsg>,
    pub(super) state: Arc<SinkState>,
    pub(super) thread: std::thread::JoinHandle<Target>,
}

pub(super) fn spawn_sink(
    mut target: Target,
    leaves_per_chunk: u64,
    checkpoint_every: Duration,
    counters: Arc<Counters>,
    progress: Arc<watch::Sender<Progress>>,
    received: Arc<AtomicU64>,
) -> Result<Sink> {
    let outboard = match &target {
        Target::Store(p) => p.outboard.clone(),
        Target::Forward { outboard, .. } => outboard.clone(),
    };
    let size = outboard.size();
    let chunks = leaf_count(size).div_ceil(leaves_per_chunk);
    let mut done = vec![false; chunks as usize];
    let present0 = match &target {
        Target::Store(p) => {
            for (c, d) in done.iter_mut().enumerate() {
                let a = c as u64 * leaves_per_chunk;
                let b = (a + leaves_per_chunk).min(leaf_count(size));
                *d = (a..b).all(|l| p.has(l));
            }
            p.present()
        }
        Target::Forward { .. } => 0,
    };
    let state = Arc::new(SinkState {
        done: Mutex::new(done),
        liars: Mutex::new(HashSet::new()),
        present: AtomicU64::new(present0),
        failed: Mutex::new(None),
    });
    let (tx, mut rx) = mpsc::channel::<SinkMsg>(2);
    let st = state.clone();
    let thread = std::thread::Builder::new()
        .name("peat-blob-sink".into())
        .spawn(move || {
            let mut last_ckpt = Instant::now();
            while let Some(msg) = rx.blocking_recv() {
                let (worker, first_leaf, data) = match msg {
                    SinkMsg::Flush(reply) => {
                        let _ = reply.send(());
                        continue;
                    }
                    SinkMsg::Piece {
                        worker,
                        first_leaf,
                        data,
                    } => (worker, first_leaf, data),
                };
                if let Err(bad) = outboard.check_leaves(first_leaf, &data) {
                    tracing::warn!(
                        leaf = bad,
                        "blob data failed verification; dropping provider"
                    );
                    counters
                        .bytes_rejected
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    st.liars.locked().insert(worker);
                    continue;
                }
                let piece_leaves = (data.len() as u64).div_ceil(LEAF_SIZE).max(1);
                let res = match &mut target {
                    Target::Store(p) => p.write_verified(first_leaf, &data).map(|_| {
                        if last_ckpt.elapsed() >= checkpoint_every {
                            last_ckpt = Instant::now();
                            if let Err(e) = p.checkpoint() {
                                tracing::warn!(error = %e, "blob checkpoint failed");
                            }
                        }
                        p.present()
                    }),
                    Target::Forward { out, .. } => {
                        let n = data.len() as u64;
                        out.blocking_send(Ok(data))
                            .map(|_| st.present.load(Ordering::Relaxed) + n)
                            .map_err(|_| Error::Cancelled("blob reader dropped".into()))
                    }
                };
                match res {
                    Ok(present) => {
                        st.present.store(present, Ordering::Relaxed);
                        // Published per piece, so a watcher sees every verified chunk.
                        progress.send_modify(|p| {
                            p.done = present;
                            p.received = received.load(Ordering::Relaxed);
                        });
                        // A piece may start inside a chunk (leaves held before
                        // are not asked for) or end in the next one: a chunk is
                        // done once all its leaves are held.
                        let n_leaves = leaf_count(size);
                        let last_leaf = first_leaf + piece_leaves - 1;
                        let mut done = st.done.locked();
                        for c in first_leaf / leaves_per_chunk..=last_leaf / leaves_per_chunk {
                            let whole = match &target {
                                Target::Store(p) => (c * leaves_per_chunk
                                    ..((c + 1) * leaves_per_chunk).min(n_leaves))
                                    .all(|l| p.has(l)),
                                Target::Forward { .. } => true,
                            };
                            if let (true, Some(d)) = (whole, done.get_mut(c as usize)) {
                                *d = true;
                            }
                        }
                    }
                    Err(e) => {
                        *st.failed.locked() = Some(e);
                        break;
                    }
                }
            }
            if let Target::Store(p) = &mut target {
                if !p.is_complete() {
                    if let Err(e) = p.checkpoint() {
                        tracing::warn!(error = %e, "blob checkpoint failed");
                    }
                }
            }
            target
        })?;
    Ok(Sink { tx, state, thread })
}

pub(super) async fn flush(tx: &mpsc::Sender<SinkMsg>) {
    let (reply, rx) = oneshot::channel();
    if tx.send(SinkMsg::Flush(reply)).await.is_ok() {
        let _ = rx.await;
    }
}

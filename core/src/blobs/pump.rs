//! Moving missing chunks: a shared queue of chunk batches and one worker per
//! provider streaming them into the sink.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use iroh::endpoint::VarInt;
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::hash::{leaf_count, BlobHash, LEAF_SIZE};
use super::pace::Pacer;
use super::protocol::{read_response, write_request, BlobRequest, BlobResponse, MAX_RANGES};
use super::providers::{open, read_exact_error, FetchEnv};
use super::sink::{flush, spawn_sink, Sink, SinkMsg, SinkState, Target};
use super::transfer::{Counters, FetchOptions, Progress};
use crate::error::{Error, ErrorKind, Result};
use crate::locks::LockExt;
use crate::security::Admitted;
use crate::transport::Connections;
use crate::NodeId;

pub(super) struct Queue {
    pub(super) pending: Mutex<(BTreeSet<u64>, usize)>,
    pub(super) notify: Notify,
}

impl Queue {
    /// The next batch of up to `max` consecutive chunks; `None` when nothing is
    /// pending or in flight any more.
    async fn take(&self, max: u64, cancel: &CancellationToken) -> Option<Vec<u64>> {
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            let notified = self.notify.notified();
            {
                let mut g = self.pending.locked();
                let (set, inflight) = &mut *g;
                if let Some(&first) = set.iter().next() {
                    let mut batch = vec![first];
                    while (batch.len() as u64) < max {
                        let next = batch[batch.len() - 1] + 1;
                        if !set.contains(&next) {
                            break;
                        }
                        batch.push(next);
                    }
                    for c in &batch {
                        set.remove(c);
                    }
                    *inflight += 1;
                    return Some(batch);
                }
                if *inflight == 0 {
                    return None;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = cancel.cancelled() => return None,
            }
        }
    }

    fn give_back(&self, chunks: impl IntoIterator<Item = u64>) {
        let mut g = self.pending.locked();
        g.0.extend(chunks);
        g.1 = g.1.saturating_sub(1);
        drop(g);
        self.notify.notify_waiters();
    }
}

/// Moves every missing chunk from the providers into `target`. Returns the
/// target and, if chunks are still missing, why.
pub(crate) async fn pump(
    ctx: &FetchEnv,
    target: Target,
    providers: &[NodeId],
    opts: &FetchOptions,
    cancel: &CancellationToken,
    progress: &Arc<watch::Sender<Progress>>,
) -> Result<(Target, Option<Error>)> {
    let (hash, size) = match &target {
        Target::Store(p) => (p.hash(), p.size()),
        Target::Forward { outboard, .. } => (outboard.hash(), outboard.size()),
    };
    let lpc = opts.profile.leaves_per_chunk();
    // Leaves already held (a resumed partial, the last leaf that proved the
    // size): requests leave them out, whatever the chunking of the earlier
    // transfer was. One byte per 64 KiB leaf (1 MiB for the largest blob).
    let held: Arc<Vec<bool>> = Arc::new(match &target {
        Target::Store(p) => (0..leaf_count(p.size())).map(|l| p.has(l)).collect(),
        Target::Forward { .. } => Vec::new(),
    });
    let counters = ctx.shared.counters.clone();
    // Counted on from what the transfer already received before the pump.
    let received = Arc::new(AtomicU64::new(progress.borrow().received));
    let sink = spawn_sink(
        target,
        lpc,
        opts.profile.checkpoint_interval,
        counters.clone(),
        progress.clone(),
        received.clone(),
    )?;
    let missing: BTreeSet<u64> = sink
        .state
        .done
        .locked()
        .iter()
        .enumerate()
        .filter(|(_, d)| !**d)
        .map(|(c, _)| c as u64)
        .collect();
    let queue = Arc::new(Queue {
        pending: Mutex::new((missing, 0)),
        notify: Notify::new(),
    });
    // Batches big enough that a request's round trip is noise, small enough
    // that two providers share the work; small under a rate cap.
    let batch = ((32 << 20) / opts.profile.chunk_size).max(1);
    let batch = if opts.rate_limit.is_some() {
        batch.min(16)
    } else {
        batch
    };
    // Providers pace what they send; the fetcher only steps in if one does not.
    let pacer = opts
        .rate_limit
        .map(|r| Arc::new(Pacer::with_slack(r, Duration::from_millis(250))));
    let per_provider_rate = opts
        .rate_limit
        .map(|r| (r / providers.len().max(1) as u64).max(1))
        .unwrap_or(0);
    let started = Instant::now();
    let ticker = tokio::spawn(tick_progress(sink.state.clone(), progress.clone()));
    let mut workers = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        let w = Worker {
            id: i,
            peer: *p,
            connections: ctx.connections.clone(),
            shared: ctx.shared.clone(),
            hash,
            size,
            lpc,
            held: held.clone(),
            chunk: opts.profile.chunk_size,
            batch,
            rate: per_provider_rate,
            class: opts.priority,
            pacer: pacer.clone(),
            queue: queue.clone(),
            sink_tx: sink.tx.clone(),
            state: sink.state.clone(),
            received: received.clone(),
            counters: counters.clone(),
            reconnect_wait: opts.reconnect_wait,
            cancel: cancel.clone(),
        };
        workers.push(tokio::spawn(w.run()));
    }
    let mut errors = Vec::new();
    for w in workers {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(Error::Internal(e.to_string())),
        }
    }
    ticker.abort();
    let Sink { tx, state, thread } = sink;
    drop(tx);
    let target = tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|_| Error::Internal("blob sink panicked".into()))?;
    let present = state.present.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    progress.send_modify(|p| {
        p.done = present.max(p.done);
        p.received = received.load(Ordering::Relaxed);
        // At the end, the rate is the average over the whole transfer.
        p.rate = p.received as f64 / secs;
    });
    let sink_err = state.failed.locked().take();
    let why = if let Some(e) = sink_err {
        Some(e)
    } else if cancel.is_cancelled() {
        Some(Error::Cancelled("fetch cancelled".into()))
    } else {
        // Bad data is worth more to the user than a mere disconnect.
        errors.sort_by_key(|e| (e.kind() != ErrorKind::Corrupt) as u8);
        errors.into_iter().next()
    };
    Ok((target, why))
}

pub(super) async fn tick_progress(st: Arc<SinkState>, progress: Arc<watch::Sender<Progress>>) {
    let mut last = (Instant::now(), st.present.load(Ordering::Relaxed));
    let mut rate = 0.0f64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Instant::now();
        let present = st.present.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64().max(1e-3);
        let inst = present.saturating_sub(last.1) as f64 / dt;
        rate = if rate == 0.0 {
            inst
        } else {
            0.5 * rate + 0.5 * inst
        };
        last = (now, present);
        progress.send_modify(|p| p.rate = rate);
    }
}

/// Fetches batches from one provider.
pub(super) struct Worker {
    pub(super) id: usize,
    pub(super) peer: NodeId,
    pub(super) connections: Arc<Connections>,
    /// The blob state: its link policy may keep this provider's bytes off
    /// the link the peer is on now.
    pub(super) shared: Arc<super::BlobState>,
    pub(super) hash: BlobHash,
    pub(super) size: u64,
    pub(super) lpc: u64,
    /// Leaves held before this transfer's pump started (empty: none).
    pub(super) held: Arc<Vec<bool>>,
    pub(super) chunk: u64,
    pub(super) batch: u64,
    pub(super) rate: u64,
    /// The class providers are asked to send in.
    pub(super) class: crate::Priority,
    pub(super) pacer: Option<Arc<Pacer>>,
    pub(super) queue: Arc<Queue>,
    pub(super) sink_tx: mpsc::Sender<SinkMsg>,
    pub(super) state: Arc<SinkState>,
    pub(super) received: Arc<AtomicU64>,
    pub(super) counters: Arc<Counters>,
    pub(super) reconnect_wait: Duration,
    pub(super) cancel: CancellationToken,
}

impl Worker {
    async fn run(self) -> Result<()> {
        let mut down_since: Option<Instant> = None;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            // A provider whose link is down, or on a link the policy keeps
            // blobs off, is waited for, within reason.
            let refused = self.shared.bulk_refused(&self.peer);
            let conn = match self
                .connections
                .get(&self.peer)
                .filter(|_| refused.is_none())
            {
                Some(c) => {
                    down_since = None;
                    c
                }
                None => {
                    let since = *down_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.reconnect_wait {
                        return Err(Error::Network(match refused {
                            Some(why) => format!("provider {}: {why}", self.peer.short()),
                            None => format!("provider {} stayed unreachable", self.peer.short()),
                        }));
                    }
                    if self.queue_is_drained() {
                        return Ok(());
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        _ = self.cancel.cancelled() => return Ok(()),
                    }
                }
            };
            let Some(batch) = self.queue.take(self.batch, &self.cancel).await else {
                return Ok(());
            };
            let res = tokio::select! {
                r = self.fetch_batch(&conn, &batch) => r,
                _ = self.cancel.cancelled() => Ok(()),
            };
            // Whatever the outcome, only chunks the sink verified count as done.
            flush(&self.sink_tx).await;
            let back: Vec<u64> = {
                let done = self.state.done.locked();
                batch
                    .iter()
                    .copied()
                    .filter(|c| !done.get(*c as usize).copied().unwrap_or(true))
                    .collect()
            };
            self.queue.give_back(back);
            if self.state.liars.locked().contains(&self.id) {
                return Err(Error::Corrupt(format!(
                    "provider {} sent data that does not match blob {}",
                    self.peer.short(),
                    self.hash
                )));
            }
            match res {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Network => {
                    tracing::debug!(peer = %self.peer.short(), error = %e, "blob link dropped; waiting");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn queue_is_drained(&self) -> bool {
        let g = self.queue.pending.locked();
        g.0.is_empty() && g.1 == 0
    }

    async fn fetch_batch(&self, conn: &Admitted, batch: &[u64]) -> Result<()> {
        let n_leaves = leaf_count(self.size);
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for &c in batch {
            for leaf in c * self.lpc..((c + 1) * self.lpc).min(n_leaves) {
                if self.held.get(leaf as usize).copied().unwrap_or(false) {
                    continue;
                }
                match ranges.last_mut() {
                    Some(r) if r.1 == leaf => r.1 = leaf + 1,
                    _ => ranges.push((leaf, leaf + 1)),
                }
            }
        }
        ranges.truncate(MAX_RANGES);
        if ranges.is_empty() {
            return Ok(());
        }
        let (mut send, mut recv) = open(conn).await?;
        let class = super::providers::class_for(conn, self.class);
        write_request(
            &mut send,
            &BlobRequest::get(self.hash, false, ranges.clone(), self.rate, class),
        )
        .await?;
        let _ = send.finish();
        match read_response(&mut recv).await? {
            BlobResponse::Found { size } if size == self.size => {}
            BlobResponse::Found { size } => {
                return Err(Error::Corrupt(format!(
                    "provider {} reports size {size} for a {} byte blob",
                    self.peer.short(),
                    self.size
                )))
            }
            BlobResponse::NotFound => {
                return Err(Error::NotFound(format!(
                    "{} no longer has blob {}",
                    self.peer.short(),
                    self.hash
                )))
            }
            BlobResponse::Refused { reason } => return Err(Error::Protocol(reason)),
        }
        for (a, b) in ranges {
            let mut leaf = a;
            while leaf < b {
                let next = (leaf + self.chunk / LEAF_SIZE).min(b);
                let start = leaf * LEAF_SIZE;
                let len = ((next * LEAF_SIZE).min(self.size) - start) as usize;
                let mut buf = BytesMut::zeroed(len);
                recv.read_exact(&mut buf).await.map_err(read_exact_error)?;
                self.received.fetch_add(len as u64, Ordering::Relaxed);
                self.counters
                    .bytes_received
                    .fetch_add(len as u64, Ordering::Relaxed);
                if let Some(p) = &self.pacer {
                    p.take(len as u64).await;
                }
                self.sink_tx
                    .send(SinkMsg::Piece {
                        worker: self.id,
                        first_leaf: leaf,
                        data: buf.freeze(),
                    })
                    .await
                    .map_err(|_| Error::Cancelled("blob sink stopped".into()))?;
                // Wait until the piece is checked and written before reading the
                // next: a crash then loses at most the chunk being received. QUIC
                // keeps receiving into the stream window meanwhile, so the link
                // does not idle.
                flush(&self.sink_tx).await;
                if self.state.liars.locked().contains(&self.id) {
                    let _ = recv.stop(VarInt::from_u32(1));
                    return Ok(());
                }
                leaf = next;
            }
        }
        Ok(())
    }
}

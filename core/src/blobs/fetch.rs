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

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use iroh::endpoint::{RecvStream, VarInt};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::hash::{has_outboard, leaf_count, leaf_len, BlobHash, Outboard, LEAF_SIZE};
use super::profile::TransferProfile;
use super::protocol::{read_response, write_request, BlobRequest, BlobResponse, MAX_RANGES};
use super::provider::BLOB_PRIORITY;
use super::store::{BlobInfo, Partial};
use super::BlobShared;
use crate::error::{Error, ErrorKind, Result};
use crate::security::Admitted;
use crate::transport::Connections;
use crate::transport::NodeContext;
use crate::NodeId;

/// How to fetch a blob.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Peers to fetch from. Empty: every connected peer that has the blob.
    pub providers: Vec<NodeId>,
    /// Chunk size and checkpoint interval.
    pub profile: TransferProfile,
    /// Cap on this transfer's rate, in bytes per second.
    pub rate_limit: Option<u64>,
    /// How long to wait for a provider whose link dropped to come back.
    pub reconnect_wait: Duration,
    /// The size the blob must have (a [`super::BlobRef`] states it): a
    /// provider claiming another size is not used.
    pub expected_size: Option<u64>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            providers: Vec::new(),
            profile: TransferProfile::default(),
            rate_limit: None,
            reconnect_wait: Duration::from_secs(60),
            expected_size: None,
        }
    }
}

impl FetchOptions {
    /// Fetch from these peers only.
    pub fn from(mut self, providers: impl IntoIterator<Item = NodeId>) -> Self {
        self.providers = providers.into_iter().collect();
        self
    }

    /// Use this profile.
    pub fn profile(mut self, p: TransferProfile) -> Self {
        self.profile = p;
        self
    }

    /// Cap the rate at `bytes_per_sec`.
    pub fn rate_limit(mut self, bytes_per_sec: u64) -> Self {
        self.rate_limit = Some(bytes_per_sec);
        self
    }

    /// Accept only a blob of exactly `bytes` bytes.
    pub fn expected_size(mut self, bytes: u64) -> Self {
        self.expected_size = Some(bytes);
        self
    }
}

/// A snapshot of a transfer's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Verified bytes held locally (including what was resumed).
    pub done: u64,
    /// Blob size; 0 until the first provider answered.
    pub total: u64,
    /// Bytes per second recently (sampled every 100 ms, smoothed); once
    /// finished, the average over the transfer.
    pub rate: f64,
    /// Bytes found already verified on disk when the transfer started.
    pub resumed: u64,
    /// Bytes received from the network by this transfer (including any rejected).
    pub received: u64,
    /// True once the transfer has ended (see [`Transfer::wait`] for how).
    pub finished: bool,
}

#[derive(Clone)]
enum Outcome {
    Running,
    Done(BlobInfo),
    Failed(ErrorKind, String),
}

/// A fetch in progress: progress, cancel, and completion.
///
/// Cloning gives another handle to the same transfer.
#[derive(Clone)]
pub struct Transfer {
    hash: BlobHash,
    cancel: CancellationToken,
    progress: watch::Receiver<Progress>,
    outcome: watch::Receiver<Outcome>,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("hash", &self.hash)
            .field("progress", &self.progress())
            .finish()
    }
}

impl Transfer {
    /// The blob being fetched.
    pub fn hash(&self) -> BlobHash {
        self.hash
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// A receiver that sees every progress update (each verified chunk, and the rate every 100 ms).
    pub fn watch(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stops the transfer. What was verified stays on disk and a later fetch
    /// of the same blob resumes from it.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for the end: the stored blob, or why it failed
    /// ([`ErrorKind::Cancelled`], `Corrupt` when providers sent bad data, ...).
    pub async fn wait(&self) -> Result<BlobInfo> {
        let mut rx = self.outcome.clone();
        loop {
            match rx.borrow_and_update().clone() {
                Outcome::Running => {}
                Outcome::Done(i) => return Ok(i),
                Outcome::Failed(kind, msg) => return Err(Error::from_kind(kind, msg)),
            }
            if rx.changed().await.is_err() {
                return Err(Error::Internal("transfer task vanished".into()));
            }
        }
    }

    /// True once the transfer has ended.
    pub fn is_finished(&self) -> bool {
        !matches!(*self.outcome.borrow(), Outcome::Running)
    }
}

/// Paces a sender or receiver to a byte rate ("virtual clock": each byte has a
/// due time; waits when ahead). Idle time does not build up a burst credit
/// beyond a tenth of a second.
pub(crate) struct Pacer {
    rate: f64,
    slack: Duration,
    state: Mutex<(Instant, f64)>,
}

impl Pacer {
    pub(crate) fn new(rate: u64) -> Pacer {
        Pacer::with_slack(rate, Duration::ZERO)
    }

    /// A pacer that only waits once more than `slack` ahead of the rate: a
    /// guard against a sender that ignores the rate, which does not queue data
    /// behind a sender that honours it.
    pub(crate) fn with_slack(rate: u64, slack: Duration) -> Pacer {
        Pacer {
            rate: rate.max(1) as f64,
            slack,
            state: Mutex::new((Instant::now(), 0.0)),
        }
    }

    pub(crate) async fn take(&self, n: u64) {
        let due = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let (start, sent) = &mut *st;
            let elapsed = now.duration_since(*start).as_secs_f64();
            if *sent / self.rate < elapsed - 0.1 {
                *sent = (elapsed - 0.1) * self.rate;
            }
            *sent += n as f64;
            (*start + Duration::from_secs_f64(*sent / self.rate)).checked_sub(self.slack)
        };
        let Some(due) = due else { return };
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Counters shared by all transfers of a node.
#[derive(Default)]
pub(crate) struct Counters {
    pub bytes_served: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_rejected: AtomicU64,
}

// ----- the sink: verify, then write or forward -----

enum SinkMsg {
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

struct SinkState {
    /// Chunks fully verified.
    done: Mutex<Vec<bool>>,
    /// Workers whose provider sent bytes that failed verification.
    liars: Mutex<HashSet<usize>>,
    present: AtomicU64,
    failed: Mutex<Option<Error>>,
}

struct Sink {
    tx: mpsc::Sender<SinkMsg>,
    state: Arc<SinkState>,
    thread: std::thread::JoinHandle<Target>,
}

fn spawn_sink(
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
                    lock(&st.liars).insert(worker);
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
                        let mut done = lock(&st.done);
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
                        *lock(&st.failed) = Some(e);
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ----- the work queue -----

struct Queue {
    pending: Mutex<(BTreeSet<u64>, usize)>,
    notify: Notify,
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
                let mut g = lock(&self.pending);
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
        let mut g = lock(&self.pending);
        g.0.extend(chunks);
        g.1 = g.1.saturating_sub(1);
        drop(g);
        self.notify.notify_waiters();
    }
}

// ----- the transfer -----

pub(crate) struct Ctx {
    pub node: Arc<NodeContext>,
    pub connections: Arc<Connections>,
    pub shared: Arc<BlobShared>,
}

/// Starts a transfer task; returns its handle at once.
pub(crate) fn start(ctx: Ctx, hash: BlobHash, opts: FetchOptions) -> Transfer {
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
            lock(&shared.active).remove(&hash);
            let _ = otx.send(match r {
                Ok(i) => Outcome::Done(i),
                Err(e) => Outcome::Failed(e.kind(), e.detail()),
            });
        },
        &rt,
    );
    t
}

/// Asks every candidate at once whether it holds the blob; returns those that
/// do. A dead candidate costs its timeout once, not once per candidate.
pub(crate) async fn find_providers(
    connections: &Connections,
    hash: BlobHash,
    candidates: &[NodeId],
) -> Vec<(NodeId, u64)> {
    let mut asks = tokio::task::JoinSet::new();
    for p in candidates {
        let Some(conn) = connections.get(p) else {
            continue;
        };
        let p = *p;
        asks.spawn(async move {
            let q = async {
                let (mut send, mut recv) = open(&conn).await?;
                write_request(&mut send, &BlobRequest::Query { hash }).await?;
                let _ = send.finish();
                read_response(&mut recv).await
            };
            match tokio::time::timeout(Duration::from_secs(5), q).await {
                Ok(Ok(BlobResponse::Found { size })) => Some((p, size)),
                _ => None,
            }
        });
    }
    let mut found = Vec::new();
    while let Some(r) = asks.join_next().await {
        if let Ok(Some(x)) = r {
            found.push(x);
        }
    }
    // In the order the caller listed them, whatever order they answered in.
    found.sort_by_key(|(p, _)| candidates.iter().position(|c| c == p));
    found
}

async fn run(
    ctx: &Ctx,
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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

/// The last leaf of a blob (index, bytes), verified.
pub(crate) type LastLeaf = Option<(u64, Bytes)>;

/// Gets the outboard (and size) from the first provider that gives a valid one.
/// The size is proven before it is returned: the same request carries the last
/// leaf, which only verifies if the size is true (see [`Outboard::verify`]).
pub(crate) async fn fetch_outboard(
    ctx: &Ctx,
    hash: BlobHash,
    providers: &[NodeId],
    opts: &FetchOptions,
    cancel: &CancellationToken,
) -> Result<(Outboard, LastLeaf)> {
    let deadline = Instant::now() + opts.reconnect_wait;
    let mut last = Error::NotFound(format!("no provider has blob {hash}"));
    loop {
        // Corrupt answers end the search only once every provider answered.
        let mut all_answered = true;
        for p in providers {
            let Some(conn) = ctx.connections.get(p) else {
                all_answered = false;
                continue;
            };
            let r = async {
                let (mut send, mut recv) = open(&conn).await?;
                write_request(
                    &mut send,
                    &BlobRequest::Get {
                        hash,
                        outboard: true,
                        ranges: Vec::new(),
                        rate: 0,
                    },
                )
                .await?;
                let _ = send.finish();
                let size = match read_response(&mut recv).await? {
                    BlobResponse::Found { size } => size,
                    BlobResponse::NotFound => {
                        return Err(Error::NotFound(format!(
                            "{} does not have blob {hash}",
                            p.short()
                        )))
                    }
                    BlobResponse::Refused { reason } => return Err(Error::Protocol(reason)),
                };
                if size > super::hash::MAX_BLOB_SIZE {
                    return Err(Error::Corrupt(format!(
                        "provider claims a {size} byte blob"
                    )));
                }
                let ob_len = if has_outboard(size) {
                    leaf_count(size) as usize * 32
                } else {
                    0
                };
                if opts.expected_size.is_some_and(|want| want != size) {
                    return Err(Error::Corrupt(format!(
                        "{} offers blob {hash} as {size} bytes, the reference says otherwise",
                        p.short()
                    )));
                }
                let mut ob = vec![0u8; ob_len];
                recv.read_exact(&mut ob).await.map_err(read_exact_error)?;
                let ob = Outboard::verify(hash, size, &ob)?;
                let last = match leaf_count(size) {
                    0 => None,
                    n => Some((n - 1, fetch_leaf(&conn, &ob, n - 1).await?)),
                };
                Ok((ob, last))
            };
            let r = tokio::select! {
                r = r => r,
                _ = cancel.cancelled() => return Err(Error::Cancelled("fetch cancelled".into())),
            };
            match r {
                Ok(ob) => return Ok(ob),
                Err(e) => {
                    tracing::debug!(peer = %p.short(), error = %e, "outboard request failed");
                    last = e;
                }
            }
        }
        if (last.kind() == ErrorKind::Corrupt && all_answered) || Instant::now() >= deadline {
            return Err(last);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = cancel.cancelled() => return Err(Error::Cancelled("fetch cancelled".into())),
        }
    }
}

/// Fetches one leaf and checks it against the outboard (for the last leaf,
/// that proves the blob's size).
async fn fetch_leaf(conn: &Admitted, ob: &Outboard, leaf: u64) -> Result<Bytes> {
    let (mut send, mut recv) = open(conn).await?;
    write_request(
        &mut send,
        &BlobRequest::Get {
            hash: ob.hash(),
            outboard: false,
            ranges: vec![(leaf, leaf + 1)],
            rate: 0,
        },
    )
    .await?;
    let _ = send.finish();
    match read_response(&mut recv).await? {
        BlobResponse::Found { size } if size == ob.size() => {}
        BlobResponse::Found { size } => {
            return Err(Error::Corrupt(format!(
                "provider changed the size of blob {} from {} to {size}",
                ob.hash(),
                ob.size()
            )))
        }
        BlobResponse::NotFound => return Err(Error::NotFound(format!("blob {}", ob.hash()))),
        BlobResponse::Refused { reason } => return Err(Error::Protocol(reason)),
    }
    let mut buf = BytesMut::zeroed(leaf_len(ob.size(), leaf) as usize);
    recv.read_exact(&mut buf).await.map_err(read_exact_error)?;
    if !ob.check_leaf(leaf, &buf) {
        return Err(Error::Corrupt(format!(
            "the last leaf of blob {} does not match its hash: the provider lied about its size or content",
            ob.hash()
        )));
    }
    Ok(buf.freeze())
}

/// Opens a blob stream on an admitted connection (in the blob protocol's
/// negotiated version).
async fn open(conn: &Admitted) -> Result<(iroh::endpoint::SendStream, RecvStream)> {
    let (send, recv) =
        crate::transport::router::open_stream(conn, "blobs", super::provider::VERSIONS).await?;
    let _ = send.set_priority(BLOB_PRIORITY);
    Ok((send, recv))
}

/// Moves every missing chunk from the providers into `target`. Returns the
/// target and, if chunks are still missing, why.
pub(crate) async fn pump(
    ctx: &Ctx,
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
    let missing: BTreeSet<u64> = lock(&sink.state.done)
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
            hash,
            size,
            lpc,
            held: held.clone(),
            chunk: opts.profile.chunk_size,
            batch,
            rate: per_provider_rate,
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
    let sink_err = lock(&state.failed).take();
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

async fn tick_progress(st: Arc<SinkState>, progress: Arc<watch::Sender<Progress>>) {
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
struct Worker {
    id: usize,
    peer: NodeId,
    connections: Arc<Connections>,
    hash: BlobHash,
    size: u64,
    lpc: u64,
    /// Leaves held before this transfer's pump started (empty: none).
    held: Arc<Vec<bool>>,
    chunk: u64,
    batch: u64,
    rate: u64,
    pacer: Option<Arc<Pacer>>,
    queue: Arc<Queue>,
    sink_tx: mpsc::Sender<SinkMsg>,
    state: Arc<SinkState>,
    received: Arc<AtomicU64>,
    counters: Arc<Counters>,
    reconnect_wait: Duration,
    cancel: CancellationToken,
}

impl Worker {
    async fn run(self) -> Result<()> {
        let mut down_since: Option<Instant> = None;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            // A provider whose link is down is waited for, within reason.
            let conn = match self.connections.get(&self.peer) {
                Some(c) => {
                    down_since = None;
                    c
                }
                None => {
                    let since = *down_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.reconnect_wait {
                        return Err(Error::Network(format!(
                            "provider {} stayed unreachable",
                            self.peer.short()
                        )));
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
                let done = lock(&self.state.done);
                batch
                    .iter()
                    .copied()
                    .filter(|c| !done.get(*c as usize).copied().unwrap_or(true))
                    .collect()
            };
            self.queue.give_back(back);
            if lock(&self.state.liars).contains(&self.id) {
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
        let g = lock(&self.queue.pending);
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
        write_request(
            &mut send,
            &BlobRequest::Get {
                hash: self.hash,
                outboard: false,
                ranges: ranges.clone(),
                rate: self.rate,
            },
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
                if lock(&self.state.liars).contains(&self.id) {
                    let _ = recv.stop(VarInt::from_u32(1));
                    return Ok(());
                }
                leaf = next;
            }
        }
        Ok(())
    }
}

fn read_exact_error(e: iroh::endpoint::ReadExactError) -> Error {
    match e {
        iroh::endpoint::ReadExactError::FinishedEarly(n) => {
            Error::Protocol(format!("blob stream ended {n} bytes early"))
        }
        iroh::endpoint::ReadExactError::ReadError(e) => Error::network(e),
    }
}

async fn flush(tx: &mpsc::Sender<SinkMsg>) {
    let (reply, rx) = oneshot::channel();
    if tx.send(SinkMsg::Flush(reply)).await.is_ok() {
        let _ = rx.await;
    }
}

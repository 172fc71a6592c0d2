//! Serving blob requests that arrive on an admitted connection.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iroh::endpoint::{RecvStream, SendStream, VarInt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hash::{has_outboard, LEAF_SIZE};
use super::pace::Pacer;
use super::protocol::VERSIONS;
use super::protocol::{
    check_ranges, read_request, served_class, write_response, BlobRequest, BlobResponse,
};
use super::BlobState;
use crate::bandwidth::Throttle;
use crate::error::{Error, Result};
use crate::policy::Priority;
use crate::security::Admitted;
use crate::transport::router::{IncomingStream, Protocol, ProtocolTask};

/// Blob requests served at once per connection; further streams wait to be
/// accepted (QUIC flow control holds the peer back).
pub(crate) const MAX_STREAMS_PER_PEER: usize = 8;

/// Blob requests served at once by the node; past it a request is refused
/// with "busy" and the fetcher tries another provider or later.
pub(crate) const MAX_STREAMS_TOTAL: usize = 64;

/// Slowest rate a fetcher may ask to be served at (bytes per second).
pub(crate) const MIN_SERVE_RATE: u64 = 1024;

/// Bytes sent at a time under a bandwidth budget.
pub(crate) const BUDGET_PIECE: u64 = 4 * 1024;

/// Bytes read from disk at a time for a full-speed answer.
pub(crate) const SERVE_PIECE: u64 = 256 * 1024;

/// A fetcher that takes no bytes for this long loses its request. (Unit tests
/// drive the stall with a shorter value: iroh runs on real time.)
#[cfg(not(test))]
pub(crate) const SERVE_STALL: Duration = Duration::from_secs(30);
#[cfg(test)]
pub(crate) const SERVE_STALL: Duration = Duration::from_secs(2);

/// Stream reset code when the provider gives up on a fetcher.
const RESET_STALLED: u32 = 1;
/// Stream reset code when the fetcher moved to a link blobs may not use.
const RESET_LINK_POLICY: u32 = 2;

async fn write_or_stall(send: &mut SendStream, bytes: Bytes) -> Result<()> {
    let Ok(written) = tokio::time::timeout(SERVE_STALL, send.write_chunk(bytes)).await else {
        // Reset, not finish (what dropping the stream does): the fetcher must
        // not take what it got for the whole answer.
        let _ = send.reset(VarInt::from_u32(RESET_STALLED));
        return Err(Error::Timeout(format!(
            "fetcher took no blob bytes for {} s",
            SERVE_STALL.as_secs()
        )));
    };
    written.map_err(Error::network)
}

/// The blob protocol of a node: serves blob requests from the streams peers
/// open for it.
pub(crate) struct BlobProtocol {
    pub shared: Arc<BlobState>,
    /// The node's bandwidth budgets: each piece waits for them.
    pub throttle: Arc<Throttle>,
    pub tasks: TaskTracker,
    pub cancel: CancellationToken,
}

impl Protocol for BlobProtocol {
    fn name(&self) -> &'static str {
        "blobs"
    }

    fn versions(&self) -> &'static [u16] {
        VERSIONS
    }

    fn run(
        self: Arc<Self>,
        conn: Arc<Admitted>,
        _version: u16,
        incoming: mpsc::Receiver<IncomingStream>,
    ) -> ProtocolTask {
        Box::pin(serve_connection(
            conn.peer(),
            self.shared.clone(),
            self.throttle.clone(),
            incoming,
            self.tasks.clone(),
            self.cancel.clone(),
        ))
    }
}

/// Serves the blob requests of one connection until it closes, at most
/// [`MAX_STREAMS_PER_PEER`] at once (further streams wait in the router).
async fn serve_connection(
    peer: crate::NodeId,
    shared: Arc<BlobState>,
    throttle: Arc<Throttle>,
    mut incoming: mpsc::Receiver<IncomingStream>,
    tasks: TaskTracker,
    cancel: CancellationToken,
) {
    let per_peer = Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS_PER_PEER));
    loop {
        let Ok(peer_permit) = per_peer.clone().acquire_owned().await else {
            return;
        };
        let (mut send, recv) = tokio::select! {
            _ = cancel.cancelled() => return,
            s = incoming.recv() => match s {
                Some(s) => (s.send, s.recv),
                None => return,
            },
        };
        let Ok(node_permit) = shared.serving.clone().try_acquire_owned() else {
            tasks.spawn(async move {
                let busy = BlobResponse::Refused {
                    reason: "provider busy".into(),
                };
                let _ = write_response(&mut send, &busy).await;
                let _ = send.finish();
                drop((recv, peer_permit));
            });
            continue;
        };
        let (shared, throttle) = (shared.clone(), throttle.clone());
        let cancel = cancel.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = serve_stream(&shared, &throttle, peer, send, recv) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "blob request ended");
                    }
                }
            }
            drop((peer_permit, node_permit));
        });
    }
}

async fn serve_stream(
    shared: &BlobState,
    throttle: &Throttle,
    peer: crate::NodeId,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<()> {
    let _ = send.set_priority(shared.priority());
    let req = tokio::time::timeout(Duration::from_secs(30), read_request(&mut recv))
        .await
        .map_err(|_| Error::Timeout("blob request".into()))??;
    let (hash, outboard, ranges, rate, class) = match req {
        BlobRequest::Query { hash } => {
            let r = match shared.store.info(&hash)? {
                Some(i) => BlobResponse::Found { size: i.size },
                None => BlobResponse::NotFound,
            };
            write_response(&mut send, &r).await?;
            let _ = send.finish();
            return Ok(());
        }
        BlobRequest::Get {
            hash,
            outboard,
            ranges,
            rate,
        } => (hash, outboard, ranges, rate, served_class(None)?),
        BlobRequest::GetInClass {
            hash,
            outboard,
            ranges,
            rate,
            class,
        } => (hash, outboard, ranges, rate, served_class(Some(class))?),
    };
    // Normal and high classes go at the documents' QUIC priority, the low
    // and bulk classes below it.
    if class < Priority::Low {
        let _ = send.set_priority(0);
    }
    let store = shared.store.clone();
    let Some((file, ob)) = tokio::task::spawn_blocking(move || store.open_complete(&hash))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??
    else {
        write_response(&mut send, &BlobResponse::NotFound).await?;
        let _ = send.finish();
        return Ok(());
    };
    let policy = shared.bulk_refused(&peer).map(Error::Protocol);
    if let Err(e) = policy.map_or_else(|| check_ranges(&ranges, ob.size()), Err) {
        write_response(
            &mut send,
            &BlobResponse::Refused {
                reason: e.to_string(),
            },
        )
        .await?;
        let _ = send.finish();
        return Err(e);
    }
    write_response(&mut send, &BlobResponse::Found { size: ob.size() }).await?;
    let pacer = (rate > 0).then(|| Pacer::new(rate.max(MIN_SERVE_RATE)));
    if outboard && has_outboard(ob.size()) {
        let bytes = Bytes::from(ob.to_bytes());
        throttle.take(&peer, class, bytes.len() as u64).await;
        write_or_stall(&mut send, bytes).await?;
    }
    // Each piece is read by a short blocking task, one piece ahead of the
    // network: a slow fetcher holds no thread, only this task's two pieces
    // (at most 2 × SERVE_PIECE per stream, so MAX_STREAMS_TOTAL × 512 KiB =
    // 32 MiB for the node however many fetchers stop reading).
    // Small pieces when paced, smaller under a budget: each waits for its
    // tokens and goes to QUIC at once, so a piece is what a radio's queue
    // holds of it at worst (4 KiB: 33 ms at 1 Mbit/s).
    let piece = if throttle.is_limited() {
        BUDGET_PIECE
    } else if rate > 0 {
        16 * 1024
    } else {
        SERVE_PIECE
    };
    let size = ob.size();
    let file = Arc::new(file);
    let mut pieces = ranges.into_iter().flat_map(move |(a, b)| {
        let (start, end) = (a * LEAF_SIZE, (b * LEAF_SIZE).min(size));
        (start..end)
            .step_by(piece as usize)
            .map(move |off| (off, piece.min(end - off) as usize))
    });
    let read = |file: Arc<std::fs::File>, (off, n): (u64, usize)| {
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            file.read_exact_at(&mut buf, off).map(|_| Bytes::from(buf))
        })
    };
    let mut next = pieces.next().map(|p| read(file.clone(), p));
    while let Some(reading) = next.take() {
        let bytes = reading
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        next = pieces.next().map(|p| read(file.clone(), p));
        if let Some(why) = shared.bulk_refused(&peer) {
            // The peer moved to a link the policy keeps blobs off: stop here
            // (a reset: the fetcher keeps the verified part and resumes).
            let _ = send.reset(VarInt::from_u32(RESET_LINK_POLICY));
            return Err(Error::Protocol(why));
        }
        let n = bytes.len() as u64;
        throttle.take(&peer, class, n).await;
        write_or_stall(&mut send, bytes).await?;
        shared.counters.bytes_served.fetch_add(n, Ordering::Relaxed);
        if let Some(p) = &pacer {
            p.take(n).await;
        }
    }
    let _ = send.finish();
    // Wait (bounded) for the fetcher to take the last bytes before dropping the stream.
    let _ = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await;
    let _ = recv.stop(VarInt::from_u32(0));
    Ok(())
}

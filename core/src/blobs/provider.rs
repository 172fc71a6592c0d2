//! Serving blob requests that arrive on an admitted connection.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hash::{has_outboard, LEAF_SIZE};
use super::protocol::{check_ranges, read_request, write_response, BlobRequest, BlobResponse};
use super::store::IO_PIECE;
use super::BlobShared;
use crate::error::{Error, Result};

/// Priority of blob streams: below document sync (0), so documents overtake bulk data.
pub(crate) const BLOB_PRIORITY: i32 = -1;

/// Accepts blob request streams on `conn` until it closes. The first bi-stream
/// of a connection is the sync session; every later one is a blob request.
pub(crate) async fn serve_connection(
    shared: Arc<BlobShared>,
    conn: Connection,
    tasks: TaskTracker,
    cancel: CancellationToken,
) {
    loop {
        let (send, recv) = tokio::select! {
            _ = cancel.cancelled() => return,
            s = conn.accept_bi() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        let shared = shared.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = serve_stream(&shared, send, recv) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "blob request ended");
                    }
                }
            }
        });
    }
}

async fn serve_stream(
    shared: &BlobShared,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<()> {
    let _ = send.set_priority(BLOB_PRIORITY);
    let req = tokio::time::timeout(Duration::from_secs(30), read_request(&mut recv))
        .await
        .map_err(|_| Error::Timeout("blob request".into()))??;
    let (hash, outboard, ranges, rate) = match req {
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
        } => (hash, outboard, ranges, rate),
    };
    let store = shared.store.clone();
    let Some((file, ob)) = tokio::task::spawn_blocking(move || store.open_complete(&hash))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??
    else {
        write_response(&mut send, &BlobResponse::NotFound).await?;
        let _ = send.finish();
        return Ok(());
    };
    if let Err(e) = check_ranges(&ranges, ob.size()) {
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
    let pacer = (rate > 0).then(|| super::fetch::Pacer::new(rate));
    if outboard && has_outboard(ob.size()) {
        let bytes = Bytes::from(ob.to_bytes());
        send.write_chunk(bytes).await.map_err(Error::network)?;
    }
    // A reader thread stays one piece ahead of the network.
    let piece = if rate > 0 { 16 * 1024 } else { IO_PIECE as u64 };
    let size = ob.size();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(2);
    let reader = tokio::task::spawn_blocking(move || {
        for (a, b) in ranges {
            let (start, end) = (a * LEAF_SIZE, (b * LEAF_SIZE).min(size));
            let mut off = start;
            while off < end {
                let n = piece.min(end - off) as usize;
                let mut buf = vec![0u8; n];
                let r = file.read_exact_at(&mut buf, off).map(|_| Bytes::from(buf));
                if tx.blocking_send(r.map_err(Error::from)).is_err() {
                    return;
                }
                off += n as u64;
            }
        }
    });
    while let Some(piece) = rx.recv().await {
        let piece = piece?;
        let n = piece.len() as u64;
        send.write_chunk(piece).await.map_err(Error::network)?;
        shared.counters.bytes_served.fetch_add(n, Ordering::Relaxed);
        if let Some(p) = &pacer {
            p.take(n).await;
        }
    }
    let _ = reader.await;
    let _ = send.finish();
    // Wait (bounded) for the fetcher to take the last bytes before dropping the stream.
    let _ = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await;
    let _ = recv.stop(VarInt::from_u32(0));
    Ok(())
}

//! Talking to providers: which connected peers hold a blob, its outboard and
//! proven size, single leaves, and opening blob streams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use iroh::endpoint::RecvStream;
use tokio_util::sync::CancellationToken;

use super::hash::{has_outboard, leaf_count, leaf_len, BlobHash, Outboard};
use super::protocol::{read_response, write_request, BlobRequest, BlobResponse};
use super::protocol::{BLOB_PRIORITY, VERSIONS};
use super::transfer::FetchOptions;
use super::BlobState;
use crate::error::{Error, ErrorKind, Result};
use crate::security::Admitted;
use crate::transport::Connections;
use crate::transport::NodeContext;
use crate::NodeId;

/// What a fetch needs of the node: its lifetime and tasks, the admitted
/// connections to ask providers on, and the blob state to write into.
pub(crate) struct FetchEnv {
    pub node: Arc<NodeContext>,
    pub connections: Arc<Connections>,
    pub shared: Arc<BlobState>,
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

/// The last leaf of a blob (index, bytes), verified.
pub(crate) type LastLeaf = Option<(u64, Bytes)>;

/// Gets the outboard (and size) from the first provider that gives a valid one.
/// The size is proven before it is returned: the same request carries the last
/// leaf, which only verifies if the size is true (see [`Outboard::verify`]).
pub(crate) async fn fetch_outboard(
    ctx: &FetchEnv,
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
            if let Some(why) = ctx.shared.bulk_refused(p) {
                last = Error::Network(format!("provider {}: {why}", p.short()));
                all_answered = false;
                continue;
            }
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
pub(super) async fn fetch_leaf(conn: &Admitted, ob: &Outboard, leaf: u64) -> Result<Bytes> {
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
pub(super) async fn open(conn: &Admitted) -> Result<(iroh::endpoint::SendStream, RecvStream)> {
    let (send, recv) = crate::transport::router::open_stream(conn, "blobs", VERSIONS).await?;
    let _ = send.set_priority(BLOB_PRIORITY);
    Ok((send, recv))
}

/// `class` if the peer on `conn` speaks blob protocol version 2 (which
/// carries it), else `None`.
pub(super) fn class_for(conn: &Admitted, class: crate::Priority) -> Option<crate::Priority> {
    (conn.version_of("blobs", VERSIONS)? >= 2).then_some(class)
}

pub(super) fn read_exact_error(e: iroh::endpoint::ReadExactError) -> Error {
    match e {
        iroh::endpoint::ReadExactError::FinishedEarly(n) => {
            Error::Protocol(format!("blob stream ended {n} bytes early"))
        }
        iroh::endpoint::ReadExactError::ReadError(e) => Error::network(e),
    }
}

//! The `revocations` protocol on one admitted connection (see the module
//! docs of [`super`]).

use std::collections::HashSet;
use std::sync::Arc;

use iroh::endpoint::{RecvStream, SendStream, VarInt};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::IDS_PER_FRAME;
use crate::bandwidth::Throttle;
use crate::error::{Error, Result};
use crate::policy::Priority;
use crate::security::{Admitted, Gate, News};
use crate::transport::close_code;
use crate::transport::router::{open_stream, IncomingStream, Protocol, ProtocolTask};
use crate::trust::{RevocationRecord, MAX_RECORD_LEN, MAX_REVOCATIONS};
use crate::wire::{encode, read_frame_max, Frame, Hash32};

pub(crate) const NAME: &str = "revocations";
const VERSIONS: &[u16] = &[1];

/// Records from one connection that do not check out before it is closed:
/// each costs signature checks, so a captured peer flooding forged ones is
/// cut off after this many (an honest peer sends a stale one rarely).
pub(crate) const MAX_REFUSED_PER_CONNECTION: usize = 64;

/// Largest frame read: a page of ids or one record, with room to spare.
const MAX_FRAME: usize = IDS_PER_FRAME * 33 + MAX_RECORD_LEN + 64;

pub(crate) struct RevocationProtocol {
    pub gate: Arc<Gate>,
    pub throttle: Arc<Throttle>,
    pub cancel: CancellationToken,
}

impl Protocol for RevocationProtocol {
    fn name(&self) -> &'static str {
        NAME
    }

    fn versions(&self) -> &'static [u16] {
        VERSIONS
    }

    fn run(
        self: Arc<Self>,
        conn: Arc<Admitted>,
        _version: u16,
        mut incoming: mpsc::Receiver<IncomingStream>,
    ) -> ProtocolTask {
        // Listening from now: nothing learnt while the stream opens is missed.
        let news = self.gate.subscribe();
        Box::pin(async move {
            let stream = if conn.outbound() {
                open_stream(&conn, NAME, VERSIONS).await.ok()
            } else {
                tokio::select! {
                    s = incoming.recv() => s.map(|s| (s.send, s.recv)),
                    _ = conn.conn().closed() => None,
                }
            };
            let Some((send, recv)) = stream else { return };
            // One stream per connection: any further one is refused.
            let extra = async {
                while let Some(mut s) = incoming.recv().await {
                    let _ = s.send.reset(VarInt::from_u32(close_code::PROTOCOL));
                }
                std::future::pending::<()>().await
            };
            let (theirs_tx, theirs_rx) = oneshot::channel();
            let res = tokio::select! {
                r = read_side(&self.gate, &conn, recv, theirs_tx) => r,
                r = write_side(&self, &conn, send, theirs_rx, news) => r,
                _ = extra => Ok(()),
                _ = self.cancel.cancelled() => Ok(()),
            };
            if let Err(e @ Error::Protocol(_)) = res {
                tracing::warn!(peer = %conn.peer().short(), error = %e, "revocations protocol error");
                conn.close(close_code::PROTOCOL, &e.to_string());
            }
        })
    }
}

/// Reads the peer's id list (handing it to the writer) and the records it
/// sends, keeping those that check out.
async fn read_side(
    gate: &Gate,
    conn: &Admitted,
    mut recv: RecvStream,
    theirs_tx: oneshot::Sender<HashSet<Hash32>>,
) -> Result<()> {
    let peer = conn.peer();
    let mut theirs = HashSet::new();
    let mut tx = Some(theirs_tx);
    let mut refused = 0usize;
    while let Some((frame, _)) = read_frame_max(&mut recv, MAX_FRAME).await? {
        match frame {
            Frame::RevocationIds { ids, last } => {
                if tx.is_none() {
                    return Err(Error::Protocol(
                        "revocation ids after the list ended".into(),
                    ));
                }
                if ids.len() > IDS_PER_FRAME || theirs.len() + ids.len() > MAX_REVOCATIONS {
                    return Err(Error::Protocol(
                        "revocation id list beyond its bounds".into(),
                    ));
                }
                theirs.extend(ids);
                if last {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(std::mem::take(&mut theirs));
                    }
                }
            }
            Frame::RevocationRecord { record } => {
                let learnt = match RevocationRecord::from_bytes(&record) {
                    Ok(r) => gate.learn(r, Some(peer)).await,
                    Err(e) => {
                        gate.note_refused();
                        Err(Error::InvalidArgument(e.to_string()))
                    }
                };
                if let Err(e) = learnt {
                    // A stale or forged record: dropped, counted, not passed on.
                    tracing::debug!(peer = %peer.short(), error = %e, "revocation from a peer refused");
                    refused += 1;
                    if refused > MAX_REFUSED_PER_CONNECTION {
                        return Err(Error::Protocol(format!(
                            "more than {MAX_REFUSED_PER_CONNECTION} revocations that do not check out"
                        )));
                    }
                }
            }
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected {} on the revocations stream",
                    other.name()
                )))
            }
        }
    }
    Ok(())
}

/// Sends this node's id list, then what the peer lacks, then every
/// revocation learnt from now on (except from this peer).
async fn write_side(
    p: &RevocationProtocol,
    conn: &Admitted,
    mut send: SendStream,
    theirs_rx: oneshot::Receiver<HashSet<Hash32>>,
    mut news: broadcast::Receiver<News>,
) -> Result<()> {
    let peer = conn.peer();
    let ids = p.gate.revoked_ids();
    // At least one page: an empty list is one empty last page.
    let pages: Vec<&[Hash32]> = ids.chunks(IDS_PER_FRAME).collect();
    let count = pages.len().max(1);
    for i in 0..count {
        let frame = Frame::RevocationIds {
            ids: pages.get(i).map(|p| p.to_vec()).unwrap_or_default(),
            last: i + 1 == count,
        };
        write(p, &peer, &mut send, &frame).await?;
    }
    let mut theirs_rx = Some(theirs_rx);
    loop {
        tokio::select! {
            theirs = async { theirs_rx.as_mut().expect("guarded").await }, if theirs_rx.is_some() => {
                theirs_rx = None;
                // Ended without a list: the reader failed and ends the protocol.
                let Ok(theirs) = theirs else { continue };
                for id in p.gate.revoked_ids() {
                    if !theirs.contains(&id) {
                        send_record(p, &peer, &mut send, &id).await?;
                    }
                }
            }
            n = news.recv() => match n {
                Ok(News { record, from }) => {
                    if from != Some(peer) {
                        let frame = Frame::RevocationRecord { record: record.to_bytes() };
                        write(p, &peer, &mut send, &frame).await?;
                    }
                }
                // Too far behind to know what was missed: pass on all.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    for id in p.gate.revoked_ids() {
                        send_record(p, &peer, &mut send, &id).await?;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}

async fn send_record(
    p: &RevocationProtocol,
    peer: &crate::NodeId,
    send: &mut SendStream,
    id: &Hash32,
) -> Result<()> {
    match p.gate.record(id) {
        // Not back to the peer it came from.
        Some((_, from)) if from == Some(*peer) => Ok(()),
        Some((r, _)) => {
            let frame = Frame::RevocationRecord {
                record: r.to_bytes(),
            };
            write(p, peer, send, &frame).await
        }
        // Forgotten since (expired): nothing to send.
        None => Ok(()),
    }
}

/// Writes a frame after the peer's budget allows it (revocations go in the
/// critical class).
async fn write(
    p: &RevocationProtocol,
    peer: &crate::NodeId,
    send: &mut SendStream,
    frame: &Frame,
) -> Result<()> {
    let bytes = encode(frame)?;
    p.throttle
        .take(peer, Priority::Critical, bytes.len() as u64)
        .await;
    send.write_all(&bytes).await.map_err(Error::network)
}

//! The writing side of a session: drains one lane of its outbox into that
//! lane's stream, owed replies first (rendered a batch at a time from the
//! store), then live updates, and at close everything queued before the
//! stream is finished.

use std::sync::Arc;

use iroh::endpoint::SendStream;

use super::outbox::BULK;
use super::replies::{Owed, Reply};
use super::session::Session;
use crate::error::{Error, Result};
use crate::policy::Priority;
use crate::wire::{encode, split_changes, Frame};

/// Writes frames of `lane`, each split into several if its change data is
/// too large for one; a `Signatures` frame is held until the changes it
/// signs and cut to match their frames (dropped for a peer before sync v3).
/// The main lane leaves a starved bulk lane its slice first
/// (see [`super::outbox::BULK_STARVED`]); every frame waits for the node's
/// bandwidth budgets in its class (a document's frames in its collection's
/// class, protocol frames as critical).
async fn send_frames(
    session: &Session,
    lane: usize,
    send: &mut SendStream,
    frames: Vec<Frame>,
) -> Result<()> {
    let mut sigs = None;
    for f in frames {
        if matches!(f, Frame::Signatures { .. }) {
            if session.version >= super::signing::SIGNATURES_VERSION {
                sigs = Some(f);
            }
            continue;
        }
        let parts = match sigs.take() {
            Some(s) => super::signing::split_signed(s, f),
            None => split_changes(f),
        };
        send_parts(session, lane, send, parts).await?;
    }
    Ok(())
}

async fn send_parts(
    session: &Session,
    lane: usize,
    send: &mut SendStream,
    parts: Vec<Frame>,
) -> Result<()> {
    let outbox = &session.outbox;
    let throttle = &session.engine.ctx.throttle;
    let mut sent = 0u64;
    for f in &parts {
        let bytes = encode(f)?;
        let class = match f {
            Frame::Changes { collection, .. } | Frame::Signatures { collection, .. } => {
                outbox.class_of(collection)
            }
            _ => Priority::Critical,
        };
        if lane == BULK {
            outbox.bulk_writing(true);
        } else {
            outbox.yield_to_bulk().await;
        }
        throttle
            .take(&session.peer, class, bytes.len() as u64)
            .await;
        let n = send.write_all(&bytes).await.map_err(Error::network);
        if lane == BULK {
            outbox.bulk_writing(false);
        }
        if n.is_err() {
            session.engine.ctx.peers.traffic(session.peer, sent, 0);
        }
        n?;
        session.engine.counters.sent(f, bytes.len());
        sent += bytes.len() as u64;
    }
    session.engine.ctx.peers.traffic(session.peer, sent, 0);
    Ok(())
}

/// Replies rendered in one blocking batch, at most.
const RENDER_BATCH: usize = 512;

/// Renders owed replies on a blocking thread (they read the store), stopping
/// once about one frame budget of change data is rendered: the rest go back to
/// the front of the queue, so memory holds at most one batch of rendered
/// frames whatever the peer asked for.
async fn render_blocking(
    session: &Arc<Session>,
    lane: usize,
    replies: Vec<Owed>,
) -> Result<Vec<Frame>> {
    let s = session.clone();
    let (frames, rest) = tokio::task::spawn_blocking(move || {
        let mut frames = Vec::new();
        let mut bytes = 0usize;
        let mut replies = replies.into_iter();
        for (r, _) in replies.by_ref() {
            for f in s.render(r)? {
                if let Frame::Changes { changes, .. } = &f {
                    bytes += changes.iter().map(Vec::len).sum::<usize>();
                }
                frames.push(f);
            }
            if bytes >= crate::wire::CHANGE_FRAME_BUDGET {
                break;
            }
        }
        Ok::<_, Error>((frames, replies.collect::<Vec<_>>()))
    })
    .await
    .map_err(|e| Error::Internal(format!("render: {e}")))??;
    if !rest.is_empty() {
        session.outbox.lane(lane).replies.put_back(rest);
    }
    Ok(frames)
}

/// A coalesced document's heads offer, as an owed reply of its class.
fn offer(session: &Session, key: crate::storage::DocKey) -> Vec<Owed> {
    let class = session.outbox.class_of(key.collection());
    vec![(Reply::Offer(key), Some(class))]
}

/// Drains the outboxes into the stream until it fails or the node closes:
/// owed replies first (rendered a batch at a time, only when the stream has
/// taken the previous batch), then live updates.
///
/// When the node closes (`closing`), everything already queued is sent, the
/// stream is finished and the peer's receipt awaited briefly, so writes made
/// just before `close` still reach connected peers.
pub(crate) async fn write_loop(
    session: &Arc<Session>,
    lane: usize,
    mut send: SendStream,
    closing: &tokio_util::sync::CancellationToken,
) -> Result<()> {
    let queues = session.outbox.lane(lane);
    // Bulk batches stay small, so a lane's writer looks at its queue (and its
    // higher classes) often.
    let batch = if lane == BULK { 8 } else { RENDER_BATCH };
    loop {
        let owed = queues.replies.take(batch);
        if !owed.is_empty() {
            let frames = render_blocking(session, lane, owed).await?;
            send_frames(session, lane, &mut send, frames).await?;
            continue;
        }
        if closing.is_cancelled() {
            while let Some(item) = queues.pop_live() {
                let frames = match item {
                    Ok(f) => f,
                    Err(key) => render_blocking(session, lane, offer(session, key)).await?,
                };
                send_frames(session, lane, &mut send, frames).await?;
            }
            let _ = send.finish();
            // The peer acknowledging the bytes (`stopped`) is not the peer having
            // applied them: wait until it ends the session itself, which it does
            // after it has read up to the end of the stream and worked through
            // every frame before it (bounded, for a peer that never does).
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(1500),
                session.conn.closed(),
            )
            .await;
            return Ok(());
        }
        if queues.replies.take_resync() {
            // Answers were dropped at the budget: a new round finds what they
            // would have sent.
            if let Err(e) = session.start_reconcile().await {
                tracing::warn!(error = %e, "reconciliation after dropped answers failed to start");
            }
            continue;
        }
        if let Some(item) = queues.pop_live() {
            let frames = match item {
                Ok(f) => f,
                Err(key) => render_blocking(session, lane, offer(session, key)).await?,
            };
            send_frames(session, lane, &mut send, frames).await?;
            continue;
        }
        tokio::select! {
            _ = queues.wake.notified() => {}
            _ = closing.cancelled() => {}
        }
    }
}

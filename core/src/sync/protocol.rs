//! Document sync as a protocol of the router: the dialling side opens the
//! sync streams of a connection and both sides run the session over them.
//! Version 1 has one stream; version 2 two lanes (see [`super::outbox`]):
//! the main stream and the bulk lane, each opened with a one-byte lane tag,
//! the bulk lane sent at a lower QUIC priority. Version 3 adds the
//! signatures of changes ([`crate::authorship`]).

use std::sync::Arc;

use iroh::endpoint::{RecvStream, SendStream, VarInt};
use tokio::sync::mpsc;

use super::outbox::{Outbox, BULK, MAIN};
use super::session::Session;
use super::writer::write_loop;
use super::Engine;
use crate::error::Result;
use crate::security::Admitted;
use crate::transport::close_code;
use crate::transport::router::{open_stream, IncomingStream, Protocol, ProtocolTask};

/// Versions of the sync protocol this node speaks.
const VERSIONS: &[u16] = &[1, 2, 3];

/// The QUIC send priority of the bulk lane: below the main stream (0), like
/// blob transfers.
const BULK_LANE_PRIORITY: i32 = -1;

/// A session's streams: the main one, and the bulk lane with a v2 peer.
type Streams = Vec<(SendStream, RecvStream)>;

/// Opens the session's streams (dialling side): each starts with its lane tag.
async fn open_lanes(conn: &Admitted, lanes: usize) -> Result<Streams> {
    let mut out = Vec::with_capacity(lanes);
    for lane in 0..lanes {
        let (mut send, recv) = open_stream(conn, "sync", VERSIONS).await?;
        if lanes > 1 {
            send.write_all(&[lane as u8])
                .await
                .map_err(crate::Error::network)?;
        }
        out.push((send, recv));
    }
    Ok(out)
}

/// Takes the session's streams the peer opens (accepting side), placed by
/// their lane tags. `None` if the connection ends first or a tag is bad.
async fn accept_lanes(
    incoming: &mut mpsc::Receiver<IncomingStream>,
    lanes: usize,
) -> Option<Streams> {
    let mut slots: Vec<Option<(SendStream, RecvStream)>> = (0..lanes).map(|_| None).collect();
    while slots.iter().any(Option::is_none) {
        let mut s = incoming.recv().await?;
        let lane = if lanes > 1 {
            let mut tag = [0u8; 1];
            s.recv.read_exact(&mut tag).await.ok()?;
            tag[0] as usize
        } else {
            MAIN
        };
        match slots.get_mut(lane) {
            Some(slot @ None) => *slot = Some((s.send, s.recv)),
            _ => {
                // An unknown lane or a second stream for one: refused.
                let _ = s.send.reset(VarInt::from_u32(close_code::PROTOCOL));
                return None;
            }
        }
    }
    slots.into_iter().collect()
}

/// The sync protocol of a node.
pub(crate) struct SyncProtocol(pub Arc<Engine>);

impl Protocol for SyncProtocol {
    fn name(&self) -> &'static str {
        "sync"
    }

    fn versions(&self) -> &'static [u16] {
        VERSIONS
    }

    fn run(
        self: Arc<Self>,
        conn: Arc<Admitted>,
        version: u16,
        mut incoming: mpsc::Receiver<IncomingStream>,
    ) -> ProtocolTask {
        // Registered for fan-out now, not when the task first runs: a write
        // made right after `connect` returns is queued for this peer. The
        // outbox is bounded (live queue, then coalesced documents).
        let engine = self.0.clone();
        let lanes = if version >= 2 { 2 } else { 1 };
        let outbox = Outbox::new(
            engine.peer_queue,
            lanes > 1,
            engine.lifecycle.clone(),
            engine.qos,
        );
        let registration = engine.register(conn.peer(), outbox.clone());
        Box::pin(async move {
            let engine = &engine;
            let streams = if conn.outbound() {
                open_lanes(&conn, lanes).await.ok()
            } else {
                tokio::select! {
                    s = accept_lanes(&mut incoming, lanes) => s,
                    _ = conn.conn().closed() => None,
                }
            };
            let Some(streams) = streams else {
                engine.forget(conn.peer(), registration);
                conn.close(close_code::PROTOCOL, "the sync streams did not open");
                return;
            };
            if let Some((send, _)) = streams.get(BULK) {
                let _ = send.set_priority(BULK_LANE_PRIORITY);
            }
            // The session's streams only: any further one is refused.
            let extra = async {
                while let Some(mut s) = incoming.recv().await {
                    let _ = s.send.reset(VarInt::from_u32(close_code::PROTOCOL));
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                _ = run_session(engine, &conn, outbox, streams, version) => {}
                _ = extra => {}
            }
            engine.forget(conn.peer(), registration);
        })
    }
}

/// Runs the sync session of an admitted connection over its sync streams
/// until either side ends it, then closes the connection (with the session's
/// reason). Each lane has its reader and its writer; the session ends when
/// the peer has finished every lane (or one fails).
///
/// The session's outbox was registered for fan-out when the connection was
/// attached, so every change committed from then on is pushed live, and every
/// change committed before is covered by the reconciliation snapshot, which is
/// taken after this (see `Session::start_reconcile`).
async fn run_session(
    engine: &Arc<Engine>,
    conn: &Arc<Admitted>,
    outbox: Arc<Outbox>,
    streams: Streams,
    version: u16,
) {
    let peer = conn.peer();
    let session = Arc::new(Session::new(
        engine.clone(),
        peer,
        outbox,
        conn.conn().clone(),
        version,
    ));
    let outbound = conn.outbound();
    let c = conn.conn();
    let ended = |r: Result<()>, clean: &str| match r {
        Ok(()) => (close_code::NORMAL, clean.to_string()),
        Err(e) if e.kind() == crate::ErrorKind::Protocol => (close_code::PROTOCOL, e.to_string()),
        Err(e) => (close_code::NORMAL, e.to_string()),
    };
    let (sends, recvs): (Vec<SendStream>, Vec<RecvStream>) = streams.into_iter().unzip();
    let reads = all_ok(
        recvs
            .into_iter()
            .enumerate()
            .map(|(lane, recv)| session.read_loop(recv, lane)),
    );
    let writes = all_ok(
        sends
            .into_iter()
            .enumerate()
            .map(|(lane, send)| write_loop(&session, lane, send, &engine.ctx.cancel)),
    );
    let (code, reason) = tokio::select! {
        r = reads => ended(r, "peer closed the stream"),
        r = writes => ended(r, "session ended"),
        _ = anti_entropy(&session, outbound) => (close_code::NORMAL, "anti-entropy stopped".into()),
        e = c.closed() => (close_code::NORMAL, format!("connection closed: {e}")),
    };
    conn.close(code, &reason);
}

/// The dialling side reconciles at once, then periodically as a safety net;
/// either side also starts a round when asked to (its link to the peer got
/// better and documents were held back). The other side also starts one
/// each period while it has documents to prove delivered (see
/// [`crate::lifecycle`]'s delivery tracking): only the side that starts a
/// round learns what the peer lacks.
async fn anti_entropy(session: &Session, outbound: bool) {
    let period = session.engine.anti_entropy;
    let asked = &session.outbox.reconcile;
    let mut start = outbound;
    loop {
        if start {
            if let Err(e) = session.start_reconcile().await {
                tracing::warn!(error = %e, "reconciliation failed to start");
            }
        }
        start = tokio::select! {
            _ = tokio::time::sleep(period) => {
                outbound || session.engine.lifecycle.needs_delivery_proof()
            }
            _ = asked.notified() => true,
        };
    }
}

/// Runs the futures together: the first error, or `Ok` once all are done.
async fn all_ok<F>(futures: impl Iterator<Item = F>) -> Result<()>
where
    F: std::future::Future<Output = Result<()>>,
{
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        let mut i = 0;
        while i < set.len() {
            match set[i].as_mut().poll(cx) {
                std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                std::task::Poll::Ready(Ok(())) => {
                    set.swap_remove(i);
                }
                std::task::Poll::Pending => i += 1,
            }
        }
        if set.is_empty() {
            std::task::Poll::Ready(Ok(()))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

//! Document sync as a protocol of the router: the dialling side opens one sync
//! stream per connection and both sides run the session over it.

use std::sync::Arc;

use iroh::endpoint::{RecvStream, SendStream, VarInt};
use tokio::sync::mpsc;

use super::outbox::Outbox;
use super::session::Session;
use super::writer::write_loop;
use super::Engine;
use crate::error::Result;
use crate::security::Admitted;
use crate::transport::close_code;
use crate::transport::router::{open_stream, IncomingStream, Protocol, ProtocolTask};

/// Versions of the sync protocol this node speaks.
const VERSIONS: &[u16] = &[1];

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
        _version: u16,
        mut incoming: mpsc::Receiver<IncomingStream>,
    ) -> ProtocolTask {
        // Registered for fan-out now, not when the task first runs: a write
        // made right after `connect` returns is queued for this peer. The
        // outbox is bounded (live queue, then coalesced documents).
        let engine = self.0.clone();
        let outbox = Outbox::new(engine.peer_queue);
        let registration = engine.register(conn.peer(), outbox.clone());
        Box::pin(async move {
            let engine = &engine;
            let streams = if conn.outbound() {
                open_stream(&conn, "sync", VERSIONS).await.ok()
            } else {
                tokio::select! {
                    s = incoming.recv() => s.map(|s| (s.send, s.recv)),
                    _ = conn.conn().closed() => None,
                }
            };
            let Some((send, recv)) = streams else {
                engine.forget(conn.peer(), registration);
                return;
            };
            // One sync stream per connection: any further one is refused.
            let extra = async {
                while let Some(mut s) = incoming.recv().await {
                    let _ = s.send.reset(VarInt::from_u32(close_code::PROTOCOL));
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                _ = run_session(engine, &conn, outbox, send, recv) => {}
                _ = extra => {}
            }
            engine.forget(conn.peer(), registration);
        })
    }
}

/// Runs the sync session of an admitted connection over its sync stream
/// until either side ends it, then closes the connection (with the session's
/// reason).
///
/// The session's outbox was registered for fan-out when the connection was
/// attached, so every change committed from then on is pushed live, and every
/// change committed before is covered by the reconciliation snapshot, which is
/// taken after this (see `Session::start_reconcile`).
async fn run_session(
    engine: &Arc<Engine>,
    conn: &Arc<Admitted>,
    outbox: Arc<Outbox>,
    send: SendStream,
    recv: RecvStream,
) {
    let peer = conn.peer();
    let session = Arc::new(Session::new(
        engine.clone(),
        peer,
        outbox,
        conn.conn().clone(),
    ));
    let outbound = conn.outbound();
    let c = conn.conn();
    let ended = |r: Result<()>, clean: &str| match r {
        Ok(()) => (close_code::NORMAL, clean.to_string()),
        Err(e) if e.kind() == crate::ErrorKind::Protocol => (close_code::PROTOCOL, e.to_string()),
        Err(e) => (close_code::NORMAL, e.to_string()),
    };
    let (code, reason) = tokio::select! {
        r = session.read_loop(recv) => ended(r, "peer closed the stream"),
        r = write_loop(&session, send, &engine.ctx.cancel) => ended(r, "session ended"),
        _ = anti_entropy(&session, outbound) => (close_code::NORMAL, "anti-entropy stopped".into()),
        e = c.closed() => (close_code::NORMAL, format!("connection closed: {e}")),
    };
    conn.close(code, &reason);
}

/// The dialling side reconciles at once, then periodically as a safety net;
/// either side also starts a round when asked to (its link to the peer got
/// better and documents were held back).
async fn anti_entropy(session: &Session, outbound: bool) {
    let period = session.engine.anti_entropy;
    let asked = &session.outbox.reconcile;
    if !outbound {
        asked.notified().await;
    }
    loop {
        if let Err(e) = session.start_reconcile().await {
            tracing::warn!(error = %e, "reconciliation failed to start");
        }
        if outbound {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = asked.notified() => {}
            }
        } else {
            asked.notified().await;
        }
    }
}

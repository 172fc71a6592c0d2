//! The sync engine: runs a session per connection, applies remote changes,
//! and fans local and remote changes out to peers and subscribers.
//!
//! The engine keeps only each session's outbox (what fan-out needs), never the
//! session itself, so sessions (which hold the engine) form no reference cycle
//! with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use automerge::{Change, ReadDoc};
use iroh::endpoint::{RecvStream, SendStream};

use super::session::{write_loop, Outbox, Session};
use crate::context::NodeContext;
use crate::documents::{DocEvent, DocFilter, Origin};
use crate::error::{Error, Result};
use crate::events::Hub;
use crate::security::Admitted;
use crate::storage::{read_doc, Committed, DocKey, Store};
use crate::transport::close_code;
use crate::NodeId;

/// A running session, as fan-out sees it.
struct Running {
    id: u64,
    outbox: Arc<Outbox>,
}

/// The node's sync machinery.
pub(crate) struct Engine {
    pub ctx: Arc<NodeContext>,
    pub store: Arc<Store>,
    pub doc_hub: Hub<DocEvent, DocFilter>,
    pub anti_entropy: Duration,
    peer_queue: usize,
    sessions: Mutex<HashMap<NodeId, Running>>,
    next_session: AtomicU64,
    pub counters: super::stats::Counters,
}

impl Engine {
    pub(crate) fn new(
        ctx: Arc<NodeContext>,
        store: Arc<Store>,
        sub_capacity: usize,
        peer_queue: usize,
        anti_entropy: Duration,
    ) -> Self {
        Engine {
            ctx,
            store,
            doc_hub: Hub::new(sub_capacity),
            anti_entropy,
            peer_queue,
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            counters: Default::default(),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<NodeId, Running>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes of answers queued for `peer`'s session.
    #[cfg(test)]
    pub(crate) fn queued_reply_bytes(&self, peer: &NodeId) -> Option<usize> {
        self.sessions()
            .get(peer)
            .map(|r| r.outbox.queued_reply_bytes())
    }

    /// Queues a committed change to every session except `except`'s.
    /// Called with the document locked, so per-document order is commit order.
    pub(crate) fn fan_out(&self, c: &Committed, except: Option<NodeId>) {
        let outboxes: Vec<Arc<Outbox>> = self
            .sessions()
            .iter()
            .filter(|(id, _)| Some(**id) != except)
            .map(|(_, r)| r.outbox.clone())
            .collect();
        for o in outboxes {
            o.push_live(&c.key, &c.changes, &c.heads);
        }
    }

    /// Publishes a change to subscribers. Called with the document locked (from
    /// the store's update), so a document's events are queued in commit order
    /// and the last one is its latest state.
    pub(crate) fn publish(&self, c: &Committed, doc: &automerge::Automerge, origin: Origin) {
        if !self.doc_hub.wants(|f| f.matches(&c.key)) {
            return;
        }
        let value = if c.deleted {
            None
        } else {
            match read_doc(doc) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(key = %c.key, error = %e, "cannot render changed document");
                    return;
                }
            }
        };
        let ev = DocEvent {
            key: c.key.clone(),
            value,
            origin,
        };
        self.doc_hub.publish(&ev, |f| f.matches(&ev.key));
    }

    /// Applies changes received from `from`. Returns true if some were left out
    /// because what they depend on has not arrived (the caller asks again).
    pub(crate) fn apply_remote(
        &self,
        key: &DocKey,
        changes: Vec<Change>,
        from: NodeId,
    ) -> Result<bool> {
        let r = self.store.update(
            key,
            true,
            |doc| {
                // Only what can be applied now: Automerge's own queue for
                // changes awaiting dependencies has no bound.
                let (ready, left_out) = crate::storage::causally_ready(doc, changes);
                doc.apply_changes(ready)
                    .map_err(|e| Error::Protocol(format!("changes for {key} rejected: {e}")))?;
                Ok(left_out > 0 || !doc.get_missing_deps(&[]).is_empty())
            },
            |c| self.fan_out(c, Some(from)),
            |c, doc| self.publish(c, doc, Origin::Peer(from)),
        )?;
        let Some((missing, _)) = r else {
            return Ok(false);
        };
        Ok(missing)
    }

    /// Runs the sync session of an admitted connection over its sync stream
    /// until either side ends it, then closes the connection (with the
    /// session's reason when it failed).
    ///
    /// The session is registered for fan-out before anything else happens on
    /// it, so every change committed from then on is pushed live, and every
    /// change committed before is covered by the reconciliation snapshot,
    /// which is taken after this (see [`Session::start_reconcile`]).
    pub(crate) async fn run_session(
        self: &Arc<Self>,
        conn: &Arc<Admitted>,
        send: SendStream,
        recv: RecvStream,
    ) {
        let peer = conn.peer();
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let outbox = Outbox::new(self.peer_queue);
        let session = Arc::new(Session::new(
            self.clone(),
            peer,
            outbox.clone(),
            conn.conn().clone(),
        ));
        // A newer connection's session replaces an older one's.
        self.sessions().insert(peer, Running { id, outbox });
        let outbound = conn.outbound();
        let c = conn.conn();
        let ended = |r: Result<()>, clean: &str| match r {
            Ok(()) => (close_code::NORMAL, clean.to_string()),
            Err(e) if e.kind() == crate::ErrorKind::Protocol => {
                (close_code::PROTOCOL, e.to_string())
            }
            Err(e) => (close_code::NORMAL, e.to_string()),
        };
        let (code, reason) = tokio::select! {
            r = session.read_loop(recv) => ended(r, "peer closed the stream"),
            r = write_loop(&session, send, &self.ctx.cancel) => ended(r, "session ended"),
            _ = anti_entropy(&session, outbound) => (close_code::NORMAL, "anti-entropy stopped".into()),
            e = c.closed() => (close_code::NORMAL, format!("connection closed: {e}")),
        };
        {
            let mut sessions = self.sessions();
            if sessions.get(&peer).is_some_and(|r| r.id == id) {
                sessions.remove(&peer);
            }
        }
        conn.close(code, &reason);
    }
}

/// The dialling side reconciles at once, then periodically as a safety net.
async fn anti_entropy(session: &Session, outbound: bool) {
    if !outbound {
        return std::future::pending().await;
    }
    let period = session.engine.anti_entropy;
    loop {
        if let Err(e) = session.start_reconcile().await {
            tracing::warn!(error = %e, "reconciliation failed to start");
        }
        tokio::time::sleep(period).await;
    }
}

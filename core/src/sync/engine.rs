//! The sync engine: admits connections, runs sessions, applies remote changes,
//! and fans local and remote changes out to peers and subscribers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::{Change, ReadDoc};
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::session::{write_loop, Outbox, Session};
use crate::documents::{DocEvent, DocFilter, Origin};
use crate::error::{Error, Result};
use crate::events::Hub;
use crate::security::{Admitted, Control, Formation};
use crate::storage::{read_doc, Committed, DocKey, Store};
use crate::transport::{PeerEvent, PeerTable};
use crate::NodeId;

/// QUIC application close codes.
pub(crate) mod close_code {
    pub const NORMAL: u32 = 0;
    pub const ADMISSION_REFUSED: u32 = 1;
    pub const PROTOCOL: u32 = 2;
    pub const DUPLICATE: u32 = 3;
    pub const PEER_LIMIT: u32 = 4;
}

struct SessionEntry {
    id: u64,
    outbound: bool,
    session: Arc<Session>,
    admitted: Arc<Admitted>,
    started: tokio::time::Instant,
}

/// What [`Engine::register_connection`] decided.
pub(crate) enum Registration {
    /// Registered under this id; its sync session.
    Accepted(u64, Arc<Session>),
    /// It duplicates a connection made moments ago: keep that one if it still
    /// answers this probe, else register again with `probed`.
    Probe(Arc<Session>),
}

/// Two connections between the same pair admitted within this window are a
/// simultaneous dial, settled by the node-id rule; a connection arriving later
/// than this after the session it duplicates replaces it (the peer restarted, or
/// re-dialled a link it saw die).
const DIAL_RACE_WINDOW: Duration = Duration::from_secs(10);

/// Shared state of a running node's sync machinery.
pub(crate) struct Engine {
    pub me: NodeId,
    pub formation: Formation,
    pub store: Arc<Store>,
    pub peers: PeerTable,
    pub doc_hub: Hub<DocEvent, DocFilter>,
    pub peer_hub: Hub<PeerEvent, ()>,
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
    pub anti_entropy: Duration,
    /// How long a silent link lives (keep-alives go every quarter of it).
    pub link_timeout: Duration,
    peer_queue: usize,
    sessions: Mutex<HashMap<NodeId, SessionEntry>>,
    next_session: AtomicU64,
    pub counters: super::stats::Counters,
    refusals: RefusalLimiter,
}

/// At most one `AdmissionRefused` event (and log line) per peer id per
/// [`RefusalLimiter::PERIOD`], so a peer failing admission in a loop cannot
/// flood subscribers. Remembers at most [`RefusalLimiter::MAX_PEERS`] ids; when
/// full it forgets them all (a flood of fresh ids then costs one event each,
/// which the subscription queue bounds).
#[derive(Default)]
struct RefusalLimiter {
    last: Mutex<HashMap<NodeId, tokio::time::Instant>>,
}

impl RefusalLimiter {
    const PERIOD: Duration = Duration::from_secs(10);
    const MAX_PEERS: usize = 1024;

    fn allow(&self, peer: NodeId) -> bool {
        let now = tokio::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.len() >= Self::MAX_PEERS {
            last.retain(|_, t| now.duration_since(*t) < Self::PERIOD);
            if last.len() >= Self::MAX_PEERS {
                last.clear();
            }
        }
        match last.get(&peer) {
            Some(t) if now.duration_since(*t) < Self::PERIOD => false,
            _ => {
                last.insert(peer, now);
                true
            }
        }
    }
}

impl Engine {
    pub(crate) fn new(
        me: NodeId,
        formation: Formation,
        store: Arc<Store>,
        sub_capacity: usize,
        peer_queue: usize,
        anti_entropy: Duration,
        link_timeout: Duration,
    ) -> Self {
        Engine {
            me,
            formation,
            store,
            peers: PeerTable::default(),
            doc_hub: Hub::new(sub_capacity),
            peer_hub: Hub::new(sub_capacity),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            anti_entropy,
            link_timeout,
            peer_queue,
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            counters: Default::default(),
            refusals: RefusalLimiter::default(),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, SessionEntry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True if an admitted session with `peer` is running.
    pub(crate) fn is_connected(&self, peer: &NodeId) -> bool {
        self.sessions().contains_key(peer)
    }

    /// True if a session with `peer` is running and its link has carried
    /// packets from the peer within half the link timeout (two keep-alive
    /// periods). A session whose peer died or restarted is not alive, though it
    /// stays registered until the link times out.
    pub(crate) fn is_alive(&self, peer: &NodeId) -> bool {
        self.sessions()
            .get(peer)
            .is_some_and(|e| self.session_alive(&e.session))
    }

    fn session_alive(&self, s: &Session) -> bool {
        s.conn.close_reason().is_none() && s.liveness.quiet_for(&s.conn) < self.link_timeout / 2
    }

    /// The admitted connection to `peer`, if one is up. Other protocols (blobs)
    /// open their own streams on it, so they inherit its admission.
    pub(crate) fn connection(&self, peer: &NodeId) -> Option<Arc<Admitted>> {
        self.sessions().get(peer).map(|e| e.admitted.clone())
    }

    /// Bytes of answers queued for `peer`'s session.
    #[cfg(test)]
    pub(crate) fn queued_reply_bytes(&self, peer: &NodeId) -> Option<usize> {
        self.sessions()
            .get(peer)
            .map(|e| e.session.outbox.queued_reply_bytes())
    }

    /// Ids of every connected peer.
    pub(crate) fn connected_peers(&self) -> Vec<NodeId> {
        self.sessions().keys().copied().collect()
    }

    /// Number of admitted sessions.
    pub(crate) fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Queues a committed change to every connected peer except `except`.
    /// Called with the document locked, so per-document order is commit order.
    pub(crate) fn fan_out(&self, c: &Committed, except: Option<NodeId>) {
        let outboxes: Vec<Arc<Outbox>> = self
            .sessions()
            .iter()
            .filter(|(id, _)| Some(**id) != except)
            .map(|(_, e)| e.session.outbox.clone())
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

    /// Runs admission on a fresh connection, offering `offers`. On failure the
    /// connection is closed and an `AdmissionRefused` event is published.
    pub(crate) async fn admit(
        &self,
        conn: Connection,
        outbound: bool,
        offers: &[crate::wire::ProtocolOffer],
    ) -> Result<(Arc<Admitted>, Control)> {
        let peer = NodeId(conn.remote_id());
        let res = crate::security::admit(conn.clone(), outbound, &self.formation, &self.me, offers);
        match tokio::time::timeout(Duration::from_secs(10), res).await {
            Ok(Ok((admitted, control))) => Ok((Arc::new(admitted), control)),
            Ok(Err(e)) => {
                let reason = crate::wire::sanitize_reason(&e.to_string());
                if matches!(e, Error::AdmissionRefused(_) | Error::Protocol(_)) {
                    if self.refusals.allow(peer) {
                        tracing::warn!(peer = %peer.short(), %reason, "admission refused");
                        self.peer_hub.publish(
                            &PeerEvent::AdmissionRefused {
                                peer,
                                reason: reason.clone(),
                            },
                            |_| true,
                        );
                    }
                    // Give the Refused frame a moment to reach the peer before closing.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                conn.close(
                    VarInt::from_u32(close_code::ADMISSION_REFUSED),
                    reason.as_bytes(),
                );
                Err(e)
            }
            Err(_) => {
                conn.close(
                    VarInt::from_u32(close_code::ADMISSION_REFUSED),
                    b"admission timed out",
                );
                Err(Error::Timeout("admission".into()))
            }
        }
    }

    /// Registers an admitted connection as the one with its peer. One
    /// connection per peer pair: both sides keep the connection dialled by the
    /// smaller node id, so simultaneous dials settle on the same one. A newcomer
    /// that this rule would refuse is refused only if the connection it
    /// duplicates still answers (`Probe`: the caller probes and calls again with
    /// `probed`): a peer that crashed and came back is taken back at once
    /// instead of waiting for the dead link to time out.
    pub(crate) fn register_connection(
        self: &Arc<Self>,
        conn: &Arc<Admitted>,
        probed: bool,
    ) -> Registration {
        let peer = conn.peer();
        let outbound = conn.outbound();
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let session = {
            let mut sessions = self.sessions();
            if let Some(old) = sessions.get(&peer) {
                let preferred_outbound = self.me < peer;
                let racing =
                    old.started.elapsed() < DIAL_RACE_WINDOW && self.session_alive(&old.session);
                let keep_old = !probed
                    && racing
                    && old.outbound != outbound
                    && old.outbound == preferred_outbound;
                if keep_old {
                    return Registration::Probe(old.session.clone());
                }
                old.session.conn.close(
                    VarInt::from_u32(close_code::DUPLICATE),
                    b"duplicate connection",
                );
            }
            let outbox = Outbox::new(self.peer_queue);
            let session = Arc::new(Session::new(
                self.clone(),
                peer,
                outbox,
                conn.conn().clone(),
            ));
            sessions.insert(
                peer,
                SessionEntry {
                    id,
                    outbound,
                    session: session.clone(),
                    admitted: conn.clone(),
                    started: tokio::time::Instant::now(),
                },
            );
            session
        };
        let addr = conn
            .conn()
            .paths()
            .iter()
            .find(|p| p.is_selected())
            .and_then(|p| match p.remote_addr() {
                iroh::TransportAddr::Ip(a) => Some(*a),
                _ => None,
            });
        self.peers.connected(peer, addr, outbound);
        self.peer_hub
            .publish(&PeerEvent::Connected { peer }, |_| true);
        tracing::info!(me = %self.me.short(), peer = %peer.short(), outbound, "peer connected");
        Registration::Accepted(id, session)
    }

    /// Runs the sync session of a registered connection over its sync stream,
    /// until either side ends it; then closes the connection (its reason is
    /// kept for the `Disconnected` event).
    pub(crate) async fn run_session(
        self: &Arc<Self>,
        conn: &Arc<Admitted>,
        send: SendStream,
        recv: RecvStream,
    ) {
        let Some(session) = self.session_of(conn) else {
            return; // replaced meanwhile
        };
        let outbound = conn.outbound();
        let conn = conn.conn();
        let reason = tokio::select! {
            r = session.read_loop(recv) => match r {
                Ok(()) => "peer closed the stream".to_string(),
                Err(e) => {
                    if e.kind() == crate::ErrorKind::Protocol {
                        session.end(e.to_string());
                        conn.close(VarInt::from_u32(close_code::PROTOCOL), e.to_string().as_bytes());
                    }
                    e.to_string()
                }
            },
            r = write_loop(&session, send, &self.cancel) => match r {
                Ok(()) => "session ended".to_string(),
                Err(e) => e.to_string(),
            },
            _ = anti_entropy(&session, outbound) => "anti-entropy stopped".to_string(),
            e = conn.closed() => format!("connection closed: {e}"),
        };
        session.end(reason);
        conn.close(VarInt::from_u32(close_code::NORMAL), b"session ended");
    }

    /// The session registered for exactly this connection.
    fn session_of(&self, conn: &Arc<Admitted>) -> Option<Arc<Session>> {
        self.sessions()
            .get(&conn.peer())
            .filter(|e| Arc::ptr_eq(&e.admitted, conn))
            .map(|e| e.session.clone())
    }

    /// A registered connection ended: it is forgotten (unless a newer one
    /// replaced it) and `Disconnected` is published with the session's reason.
    pub(crate) fn connection_ended(&self, peer: NodeId, id: u64, session: &Session, why: String) {
        let removed = {
            let mut sessions = self.sessions();
            match sessions.get(&peer) {
                Some(e) if e.id == id => {
                    sessions.remove(&peer);
                    true
                }
                _ => false,
            }
        };
        if removed {
            let reason = session.end_reason().unwrap_or(why);
            self.peers.disconnected(peer);
            tracing::info!(me = %self.me.short(), peer = %peer.short(), %reason, "peer disconnected");
            self.peer_hub
                .publish(&PeerEvent::Disconnected { peer, reason }, |_| true);
        }
    }

    /// Closes the session with `peer`. Returns false if there was none.
    pub(crate) fn disconnect(&self, peer: &NodeId) -> bool {
        match self.sessions().get(peer) {
            Some(e) => {
                e.session.conn.close(
                    VarInt::from_u32(close_code::NORMAL),
                    b"disconnected by application",
                );
                true
            }
            None => false,
        }
    }

    /// Closes every session.
    pub(crate) fn close_sessions(&self) {
        for e in self.sessions().values() {
            e.session
                .conn
                .close(VarInt::from_u32(close_code::NORMAL), b"node closing");
        }
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

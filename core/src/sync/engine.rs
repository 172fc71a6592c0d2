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
use crate::security::{admit_inbound, admit_outbound, Formation};
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
    started: tokio::time::Instant,
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
    pub(crate) fn connection(&self, peer: &NodeId) -> Option<Connection> {
        self.sessions().get(peer).map(|e| e.session.conn.clone())
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

    /// Runs admission on a fresh connection. On failure the connection is closed
    /// and an `AdmissionRefused` event is published.
    pub(crate) async fn admit(
        &self,
        conn: &Connection,
        outbound: bool,
    ) -> Result<(SendStream, RecvStream)> {
        let peer = NodeId(conn.remote_id());
        let res = async {
            let (mut send, mut recv) = if outbound {
                conn.open_bi().await.map_err(Error::network)?
            } else {
                conn.accept_bi().await.map_err(Error::network)?
            };
            if outbound {
                admit_outbound(&mut recv, &mut send, &self.formation, &self.me, &peer).await?;
            } else {
                admit_inbound(&mut recv, &mut send, &self.formation, &self.me, &peer).await?;
            }
            Ok::<_, Error>((send, recv))
        };
        match tokio::time::timeout(Duration::from_secs(10), res).await {
            Ok(Ok(streams)) => Ok(streams),
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

    /// Runs an admitted connection until it ends. Spawned on the engine's tracker.
    pub(crate) fn spawn_session(
        self: &Arc<Self>,
        conn: Connection,
        streams: (SendStream, RecvStream),
        outbound: bool,
    ) {
        self.register_session(conn, streams, outbound, false)
    }

    /// `probed`: the session this connection duplicates failed a liveness
    /// probe, so the new connection replaces it whatever the race rule says.
    fn register_session(
        self: &Arc<Self>,
        conn: Connection,
        streams: (SendStream, RecvStream),
        outbound: bool,
        probed: bool,
    ) {
        let peer = NodeId(conn.remote_id());
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        // One connection per peer pair. Both sides keep the connection dialled by
        // the smaller node id, so simultaneous dials settle on the same one. A
        // newcomer that this rule would refuse is refused only if the session
        // it duplicates still answers: a peer that crashed and came back is
        // taken back at once instead of waiting for the dead link to time out.
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
                    let old = old.session.clone();
                    drop(sessions);
                    let engine = self.clone();
                    self.tasks.spawn(async move {
                        if old.answers_probe().await {
                            conn.close(
                                VarInt::from_u32(close_code::DUPLICATE),
                                b"duplicate connection",
                            );
                        } else {
                            tracing::info!(peer = %peer.short(), "old session did not answer; taking the new connection");
                            engine.register_session(conn, streams, outbound, true);
                        }
                    });
                    return;
                }
                old.session.conn.close(
                    VarInt::from_u32(close_code::DUPLICATE),
                    b"duplicate connection",
                );
            }
            let outbox = Outbox::new(self.peer_queue);
            let session = Arc::new(Session::new(self.clone(), peer, outbox, conn.clone()));
            sessions.insert(
                peer,
                SessionEntry {
                    id,
                    outbound,
                    session: session.clone(),
                    started: tokio::time::Instant::now(),
                },
            );
            session
        };
        let addr =
            conn.paths()
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

        let engine = self.clone();
        self.tasks.spawn(async move {
            let (send, recv) = streams;
            let reason = tokio::select! {
                r = session.read_loop(recv) => match r {
                    Ok(()) => "peer closed the stream".to_string(),
                    Err(e) => {
                        if e.kind() == crate::ErrorKind::Protocol {
                            conn.close(VarInt::from_u32(close_code::PROTOCOL), e.to_string().as_bytes());
                        }
                        e.to_string()
                    }
                },
                r = write_loop(&session, send, &engine.cancel) => match r {
                    Ok(()) => "session ended".to_string(),
                    Err(e) => e.to_string(),
                },
                _ = anti_entropy(&session, outbound) => "anti-entropy stopped".to_string(),
                _ = session.liveness.watch(&session.conn, engine.link_timeout / 4) => "liveness stopped".to_string(),
                e = conn.closed() => format!("connection closed: {e}"),
                // The writer drains on close (and waits up to 1.5 s for the peer to read
                // it all); a peer too stuck to take it is cut off after 1.8 s.
                _ = async {
                    engine.cancel.cancelled().await;
                    tokio::time::sleep(Duration::from_millis(1800)).await;
                } => {
                    conn.close(VarInt::from_u32(close_code::NORMAL), b"node closing");
                    "node closing".to_string()
                }
            };
            let removed = {
                let mut sessions = engine.sessions();
                match sessions.get(&peer) {
                    Some(e) if e.id == id => {
                        sessions.remove(&peer);
                        true
                    }
                    _ => false,
                }
            };
            if removed {
                engine.peers.disconnected(peer);
                tracing::info!(me = %engine.me.short(), peer = %peer.short(), %reason, "peer disconnected");
                engine
                    .peer_hub
                    .publish(&PeerEvent::Disconnected { peer, reason }, |_| true);
            }
            conn.close(VarInt::from_u32(close_code::NORMAL), b"session ended");
        });
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

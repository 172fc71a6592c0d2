//! The registry of admitted connections: one per peer pair, with its health.
//!
//! Admission hands every connection here ([`Connections::admit`], then
//! [`Connections::run`]). The registry keeps one connection per peer, publishes
//! `Connected`/`Disconnected`, watches each link's liveness, and gives the
//! router the connection to serve. Protocols find a peer's connection here
//! ([`Connections::get`]); nothing here knows what the protocols do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use iroh::endpoint::{Connection, SendStream, VarInt};

use super::router::Router;
use super::PeerEvent;
use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::security::{Admitted, Control};
use crate::transport::NodeContext;
use crate::wire::{read_frame_max, write_frame, Frame, ProtocolOffer, MAX_ADMISSION_FRAME};
use crate::NodeId;

/// QUIC application close codes.
pub(crate) mod close_code {
    pub const NORMAL: u32 = 0;
    pub const ADMISSION_REFUSED: u32 = 1;
    pub const PROTOCOL: u32 = 2;
    pub const DUPLICATE: u32 = 3;
    pub const PEER_LIMIT: u32 = 4;
    pub const REVOKED: u32 = 5;
}

/// Two connections between the same pair admitted within this window are a
/// simultaneous dial, settled by the node-id rule; a connection arriving later
/// than this after the one it duplicates replaces it (the peer restarted, or
/// re-dialled a link it saw die).
const DIAL_RACE_WINDOW: Duration = Duration::from_secs(10);

/// How long admission may take.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);

struct Entry {
    id: u64,
    conn: Arc<Admitted>,
    link: Arc<Link>,
    started: tokio::time::Instant,
}

/// One registered connection's health and control stream.
struct Link {
    /// When packets from the peer last arrived, sampled from the connection's
    /// counters (QUIC keep-alives count: a live but idle peer acknowledges them).
    seen: Mutex<(u64, tokio::time::Instant)>,
    control: tokio::sync::Mutex<Option<SendStream>>,
}

impl Link {
    fn quiet_for(&self, conn: &Connection) -> Duration {
        let n = conn.stats().udp_rx.datagrams;
        let mut s = self.seen.locked();
        if n != s.0 {
            *s = (n, tokio::time::Instant::now());
        }
        s.1.elapsed()
    }

    /// Samples every `every`; never returns.
    async fn watch(&self, conn: &Connection, every: Duration) {
        let every = every.max(Duration::from_millis(50));
        loop {
            self.quiet_for(conn);
            tokio::time::sleep(every).await;
        }
    }
}

/// A network error because the peer closed the connection as a refusal of
/// admission is that refusal, with the reason it gave in the close.
fn refused_by_close(conn: &Connection, e: Error) -> Error {
    if !matches!(e, Error::Network(_)) {
        return e;
    }
    match conn.close_reason() {
        Some(iroh::endpoint::ConnectionError::ApplicationClosed(c))
            if c.error_code == VarInt::from_u32(close_code::ADMISSION_REFUSED) =>
        {
            Error::AdmissionRefused(format!(
                "peer refused: {}",
                crate::wire::sanitize_reason(&String::from_utf8_lossy(&c.reason))
            ))
        }
        _ => e,
    }
}

/// The node's admitted connections.
pub(crate) struct Connections {
    ctx: Arc<NodeContext>,
    router: Arc<Router>,
    map: Mutex<HashMap<NodeId, Entry>>,
    next_id: AtomicU64,
    refusals: RefusalLimiter,
}

impl Connections {
    pub(crate) fn new(ctx: Arc<NodeContext>, router: Arc<Router>) -> Self {
        Connections {
            ctx,
            router,
            map: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            refusals: RefusalLimiter::default(),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<NodeId, Entry>> {
        self.map.locked()
    }

    /// What this node offers at admission.
    pub(crate) fn offers(&self) -> Vec<ProtocolOffer> {
        self.router.offers()
    }

    /// Runs admission on a fresh connection. On failure the connection is
    /// closed and an `AdmissionRefused` event is published (at most one per
    /// peer per 10 s).
    pub(crate) async fn admit(
        &self,
        conn: Connection,
        outbound: bool,
    ) -> Result<(Arc<Admitted>, Control)> {
        let peer = NodeId(conn.remote_id());
        let offers = self.offers();
        let res = crate::security::admit(
            conn.clone(),
            outbound,
            &self.ctx.formation,
            &self.ctx.gate,
            &self.ctx.me,
            &offers,
        );
        match tokio::time::timeout(ADMISSION_TIMEOUT, res).await {
            Ok(Ok((admitted, control))) => Ok((Arc::new(admitted), control)),
            Ok(Err(e)) => {
                let e = refused_by_close(&conn, e);
                let reason = crate::wire::sanitize_reason(&e.to_string());
                if matches!(e, Error::AdmissionRefused(_) | Error::Protocol(_)) {
                    if self.refusals.allow(peer) {
                        tracing::warn!(peer = %peer.short(), %reason, "admission refused");
                        self.ctx.peer_hub.publish(
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

    /// Registers an admitted connection and serves it on the node's tasks.
    ///
    /// One connection per peer pair: both sides keep the connection dialled by
    /// the smaller node id, so simultaneous dials settle on the same one. A
    /// newcomer that this rule would refuse is refused only if the connection
    /// it duplicates still answers a probe: a peer that crashed and came back
    /// is taken back at once instead of waiting for the dead link to time out.
    ///
    /// Registration happens before this returns (unless the connection it
    /// duplicates must be probed first), so a caller that dialled can use the
    /// connection at once.
    pub(crate) fn start(self: &Arc<Self>, conn: Arc<Admitted>, control: Control) {
        // A revocation learnt while this connection was in admission.
        if let Some(reason) = conn.membership().and_then(|m| self.ctx.gate.revoked(m)) {
            conn.close(close_code::REVOKED, &reason);
            return;
        }
        let Control { send, recv } = control;
        let mut send = Some(send);
        match self.register(&conn, &mut send, false) {
            Ok((id, link)) => {
                // Protocols attach now, before the dialler's `connect` returns.
                let routing = self.router.serve(conn.clone(), &self.ctx.tasks);
                self.announce(&conn);
                self.ctx
                    .tasks
                    .spawn(self.clone().serve(conn, recv, id, link, routing));
            }
            Err((old, old_link)) => {
                let me = self.clone();
                self.ctx.tasks.spawn(async move {
                    if answers_probe(&old, &old_link).await {
                        conn.close(close_code::DUPLICATE, "duplicate connection");
                        return;
                    }
                    tracing::info!(peer = %conn.peer().short(), "old connection did not answer; taking the new one");
                    // `probed`: registration replaces the old connection.
                    if let Ok((id, link)) = me.register(&conn, &mut send, true) {
                        let routing = me.router.serve(conn.clone(), &me.ctx.tasks);
                        me.announce(&conn);
                        me.serve(conn, recv, id, link, routing).await;
                    }
                });
            }
        }
    }

    /// Serves a registered connection until it ends, then forgets it.
    async fn serve(
        self: Arc<Self>,
        conn: Arc<Admitted>,
        recv: iroh::endpoint::RecvStream,
        id: u64,
        link: Arc<Link>,
        routing: impl std::future::Future<Output = ()>,
    ) {
        let ctx = &self.ctx;
        let reason = tokio::select! {
            _ = routing => "connection closed".to_string(),
            r = control_loop(recv) => {
                let e = r.err().map(|e| e.to_string()).unwrap_or_default();
                conn.close(close_code::PROTOCOL, &e);
                e
            }
            _ = link.watch(conn.conn(), ctx.link_timeout / 4) => "liveness stopped".to_string(),
            // Protocols drain on close (sync waits up to 1.5 s for the peer to
            // read what it sent); a peer too stuck to take it is cut off after 1.8 s.
            _ = async {
                ctx.cancel.cancelled().await;
                tokio::time::sleep(Duration::from_millis(1800)).await;
            } => {
                conn.close(close_code::NORMAL, "node closing");
                "node closing".to_string()
            }
        };
        let reason = match (conn.closed_because(), conn.conn().close_reason()) {
            (Some(r), _) => r,
            (None, Some(e)) => format!("connection closed: {e}"),
            (None, None) => reason,
        };
        let removed = {
            let mut map = self.map();
            match map.get(&conn.peer()) {
                Some(e) if e.id == id => {
                    map.remove(&conn.peer());
                    true
                }
                _ => false,
            }
        };
        let peer = conn.peer();
        if removed {
            ctx.peers.disconnected(peer);
            tracing::info!(me = %ctx.me.short(), peer = %peer.short(), %reason, "peer disconnected");
            ctx.peer_hub
                .publish(&PeerEvent::Disconnected { peer, reason }, |_| true);
        }
        conn.conn()
            .close(VarInt::from_u32(close_code::NORMAL), b"session ended");
    }

    /// `Ok` with the new entry's id, or `Err` with the connection it
    /// duplicates when that one must be probed first.
    #[allow(clippy::type_complexity)]
    fn register(
        &self,
        conn: &Arc<Admitted>,
        control: &mut Option<SendStream>,
        probed: bool,
    ) -> std::result::Result<(u64, Arc<Link>), (Arc<Admitted>, Arc<Link>)> {
        let peer = conn.peer();
        let outbound = conn.outbound();
        let (id, link) = {
            let mut map = self.map();
            if let Some(old) = map.get(&peer) {
                let preferred_outbound = self.ctx.me < peer;
                let racing = old.started.elapsed() < DIAL_RACE_WINDOW && self.alive(old);
                let keep_old = !probed
                    && racing
                    && old.conn.outbound() != outbound
                    && old.conn.outbound() == preferred_outbound;
                if keep_old {
                    return Err((old.conn.clone(), old.link.clone()));
                }
                old.conn
                    .close(close_code::DUPLICATE, "duplicate connection");
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let link = Arc::new(Link {
                seen: Mutex::new((0, tokio::time::Instant::now())),
                control: tokio::sync::Mutex::new(control.take()),
            });
            map.insert(
                peer,
                Entry {
                    id,
                    conn: conn.clone(),
                    link: link.clone(),
                    started: tokio::time::Instant::now(),
                },
            );
            (id, link)
        };
        Ok((id, link))
    }

    /// Marks a registered connection's peer connected and publishes
    /// `Connected`: after its protocols attached, so that on either side a
    /// `Connected` event means a publish or write now reaches the peer.
    fn announce(&self, conn: &Admitted) {
        let peer = conn.peer();
        let addr = conn
            .conn()
            .paths()
            .iter()
            .find(|p| p.is_selected())
            .and_then(|p| match p.remote_addr() {
                iroh::TransportAddr::Ip(a) => Some(*a),
                _ => None,
            });
        self.ctx.peers.connected(peer, addr, conn.outbound());
        self.ctx
            .peer_hub
            .publish(&PeerEvent::Connected { peer }, |_| true);
        tracing::info!(me = %self.ctx.me.short(), peer = %peer.short(), outbound = conn.outbound(), "peer connected");
    }

    fn alive(&self, e: &Entry) -> bool {
        e.conn.conn().close_reason().is_none()
            && e.link.quiet_for(e.conn.conn()) < self.ctx.link_timeout / 2
    }

    /// The admitted connection to `peer`, if one is up.
    pub(crate) fn get(&self, peer: &NodeId) -> Option<Arc<Admitted>> {
        self.map().get(peer).map(|e| e.conn.clone())
    }

    /// True if a connection with `peer` is registered.
    pub(crate) fn is_connected(&self, peer: &NodeId) -> bool {
        self.map().contains_key(peer)
    }

    /// True if a connection with `peer` is registered and its link has carried
    /// packets from the peer within half the link timeout (two keep-alive
    /// periods). A connection whose peer died or restarted is not alive,
    /// though it stays registered until the link times out.
    pub(crate) fn is_alive(&self, peer: &NodeId) -> bool {
        self.map().get(peer).is_some_and(|e| self.alive(e))
    }

    /// Number of registered connections.
    pub(crate) fn count(&self) -> usize {
        self.map().len()
    }

    /// Every registered connection.
    pub(crate) fn admitted(&self) -> Vec<Arc<Admitted>> {
        self.map().values().map(|e| e.conn.clone()).collect()
    }

    /// Every connected peer.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.map().keys().copied().collect()
    }

    /// Sends a `Ping` on `peer`'s control stream. After the bond moved the
    /// peer to another link, this packet and its acknowledgement let QUIC see
    /// at once what the dead link lost (and resend it), instead of at its
    /// next probe timeout, which backs off while a link is silent.
    pub(crate) fn nudge(&self, peer: &NodeId) {
        let Some(link) = self.map().get(peer).map(|e| e.link.clone()) else {
            return;
        };
        self.ctx.tasks.spawn(async move {
            let mut control = link.control.lock().await;
            if let Some(send) = control.as_mut() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), write_frame(send, &Frame::Ping))
                        .await;
            }
        });
    }

    /// Closes the connection with `peer`. Returns false if there was none.
    pub(crate) fn disconnect(&self, peer: &NodeId) -> bool {
        match self.map().get(peer) {
            Some(e) => {
                e.conn
                    .close(close_code::NORMAL, "disconnected by application");
                true
            }
            None => false,
        }
    }

    /// Closes every connection.
    pub(crate) fn close_all(&self) {
        for e in self.map().values() {
            e.conn.close(close_code::NORMAL, "node closing");
        }
    }
}

/// True if the peer still answers on `conn`: a `Ping` goes out on the control
/// stream and the link must carry packets back (its acknowledgement) within a
/// few round trips.
async fn answers_probe(conn: &Admitted, link: &Link) -> bool {
    let c = conn.conn();
    let rtt = c
        .paths()
        .iter()
        .find(|p| p.is_selected())
        .map(|p| p.rtt())
        .unwrap_or(Duration::from_millis(100));
    let limit = (rtt * 4).clamp(Duration::from_millis(300), Duration::from_secs(3));
    let before = c.stats().udp_rx.datagrams;
    {
        let mut control = link.control.lock().await;
        let Some(send) = control.as_mut() else {
            return false;
        };
        match tokio::time::timeout(limit, write_frame(send, &Frame::Ping)).await {
            Ok(Ok(_)) => {}
            _ => return false,
        }
    }
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if c.close_reason().is_some() {
            return false;
        }
        if c.stats().udp_rx.datagrams != before {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Reads the control stream of an admitted connection: `Ping`s (their
/// acknowledgement is all they ask for). Anything else is a protocol error; a
/// clean end is not (the peer may have nothing more to say on it).
async fn control_loop(recv: iroh::endpoint::RecvStream) -> Result<()> {
    let mut recv = recv;
    loop {
        match read_frame_max(&mut recv, MAX_ADMISSION_FRAME)
            .await?
            .map(|(f, _)| f)
        {
            Some(Frame::Ping) => {}
            Some(other) => {
                return Err(Error::Protocol(format!(
                    "{} on the control stream",
                    other.name()
                )))
            }
            None => return std::future::pending().await,
        }
    }
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
        let mut last = self.last.locked();
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

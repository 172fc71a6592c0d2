//! The connection manager: one dialling task per wanted peer, and the accept
//! loop. Discovery tells it which peers are wanted where ([`Manager::want`],
//! [`Manager::unwant`]); it dials, runs admission and hands admitted
//! connections to the registry ([`super::Connections`]).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::{Endpoint, EndpointAddr, TransportAddr};
use tokio_util::sync::CancellationToken;

use super::{close_code, Connections, PeerEvent, Source};
use crate::config::PeerAddr;
use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::security::{Admitted, Control};
use crate::transport::NodeContext;
use crate::NodeId;

/// Re-dial delays: from `BACKOFF_MIN`, doubling to `BACKOFF_MAX`, each with
/// ±25% jitter so that peers cut off together do not re-dial in lockstep.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Inbound connections in handshake or admission at once; more are refused at
/// once (admission takes at most 10 s, so this bounds the work strangers cause).
const MAX_PENDING_ADMISSIONS: usize = 32;

/// Peers wanted by mDNS alone, at most: anyone on the LAN can announce our
/// public formation tag, so further announcements are ignored (logged).
pub(crate) const MAX_MDNS_PEERS: usize = 64;

/// Peers wanted by Kubernetes discovery alone, at most (one per ready
/// endpoint of the Service; a larger formation is not expected in one
/// namespace). Further endpoints are refused with an error to the caller.
pub const MAX_KUBERNETES_PEERS: usize = 256;

/// The bound on peers wanted by `source` alone, for the discoveries that
/// others feed (static and direct peers are the application's own choice).
fn discovery_limit(source: Source) -> Option<usize> {
    match source {
        Source::Mdns => Some(MAX_MDNS_PEERS),
        Source::Kubernetes => Some(MAX_KUBERNETES_PEERS),
        Source::Static | Source::Direct => None,
    }
}

/// Addresses kept per wanted peer (the newest).
const MAX_ADDRS_PER_PEER: usize = 8;

/// An mDNS peer that fails admission this many times in a row is no longer
/// dialled, and its announcements are ignored for [`SHUN_FOR`].
const MAX_ADMISSION_FAILURES: u32 = 3;
const SHUN_FOR: Duration = Duration::from_secs(600);
/// Shunned ids remembered at most (the oldest are forgotten first).
const MAX_SHUNNED: usize = 1024;

struct Wanted {
    addrs: Vec<SocketAddr>,
    links: Vec<crate::links::LinkAddr>,
    sources: BTreeSet<Source>,
    stop: CancellationToken,
}

/// Dials peers, runs admitted connections, and keeps wanted peers connected.
pub(crate) struct Manager {
    pub ctx: Arc<NodeContext>,
    pub connections: Arc<Connections>,
    pub endpoint: Endpoint,
    pub max_peers: usize,
    wanted: Mutex<HashMap<NodeId, Wanted>>,
    /// mDNS peers that kept failing admission, with when they were shunned.
    shunned: Mutex<HashMap<NodeId, tokio::time::Instant>>,
    /// The runtime the node was opened on: dialling tasks run there even when
    /// `want` is called from another thread.
    rt: tokio::runtime::Handle,
}

impl Manager {
    pub(crate) fn new(
        ctx: Arc<NodeContext>,
        connections: Arc<Connections>,
        endpoint: Endpoint,
        max_peers: usize,
    ) -> Arc<Manager> {
        Arc::new(Manager {
            ctx,
            connections,
            endpoint,
            max_peers,
            wanted: Mutex::new(HashMap::new()),
            shunned: Mutex::new(HashMap::new()),
            rt: tokio::runtime::Handle::current(),
        })
    }

    fn wanted(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Wanted>> {
        self.wanted.locked()
    }

    /// The discovery sources that currently want `peer`.
    pub(crate) fn sources(&self, peer: &NodeId) -> Vec<Source> {
        self.wanted()
            .get(peer)
            .map(|w| w.sources.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Records that `source` wants `peer` connected at `peer.addrs` (merged with
    /// addresses already known), starting its dialling task if it had none.
    /// Returns false if the peer was not taken: this node itself, a shunned
    /// mDNS peer, or a new peer beyond the source's [`discovery_limit`].
    pub(crate) fn want(self: &Arc<Self>, peer: PeerAddr, source: Source) -> bool {
        if peer.id == self.ctx.me {
            return false;
        }
        if source == Source::Mdns && self.is_shunned(&peer.id) {
            return false;
        }
        let mut wanted = self.wanted();
        let full = discovery_limit(source).filter(|limit| {
            !wanted.contains_key(&peer.id)
                && wanted
                    .values()
                    .filter(|w| w.sources.iter().all(|s| *s == source))
                    .count()
                    >= *limit
        });
        let new_source;
        match wanted.get_mut(&peer.id) {
            Some(w) => {
                new_source = w.sources.insert(source);
                for a in peer.addrs {
                    if !w.addrs.contains(&a) {
                        w.addrs.push(a);
                    }
                }
                let excess = w.addrs.len().saturating_sub(MAX_ADDRS_PER_PEER);
                w.addrs.drain(..excess);
                for l in peer.links {
                    if !w.links.contains(&l) {
                        w.links.push(l);
                    }
                }
                let excess = w.links.len().saturating_sub(MAX_ADDRS_PER_PEER);
                w.links.drain(..excess);
            }
            None if full.is_some() => {
                tracing::debug!(peer = %peer.id.short(), %source, limit = full, "discovery peer limit reached; peer ignored");
                return false;
            }
            None => {
                new_source = true;
                let stop = self.ctx.cancel.child_token();
                let mut addrs = peer.addrs.clone();
                let excess = addrs.len().saturating_sub(MAX_ADDRS_PER_PEER);
                addrs.drain(..excess);
                let mut links = peer.links.clone();
                let excess = links.len().saturating_sub(MAX_ADDRS_PER_PEER);
                links.drain(..excess);
                wanted.insert(
                    peer.id,
                    Wanted {
                        addrs,
                        links,
                        sources: [source].into(),
                        stop: stop.clone(),
                    },
                );
                let me = self.clone();
                self.ctx.tasks.spawn_on(
                    async move { me.keep_dialling(peer.id, stop).await },
                    &self.rt,
                );
            }
        }
        drop(wanted);
        if new_source {
            self.ctx.peers.discovered(peer.id, source);
            if source == Source::Direct {
                return true; // the application's own choice, not a discovery
            }
            self.ctx.peer_hub.publish(
                &PeerEvent::Discovered {
                    peer: peer.id,
                    source,
                },
                |_| true,
            );
        }
        true
    }

    /// Withdraws `source`'s interest in `peer`; once no source wants it, its
    /// dialling stops (an existing connection stays until it ends). Returns
    /// true if `source` had wanted it.
    pub(crate) fn unwant(&self, peer: &NodeId, source: Source) -> bool {
        let mut wanted = self.wanted();
        let Some(w) = wanted.get_mut(peer) else {
            return false;
        };
        if !w.sources.remove(&source) {
            return false;
        }
        if w.sources.is_empty() {
            if let Some(w) = wanted.remove(peer) {
                w.stop.cancel();
            }
        }
        drop(wanted);
        self.ctx.peers.lost(*peer, source);
        if source == Source::Direct {
            return true;
        }
        self.ctx.peer_hub.publish(
            &PeerEvent::Lost {
                peer: *peer,
                source,
            },
            |_| true,
        );
        true
    }

    fn is_shunned(&self, peer: &NodeId) -> bool {
        let mut shunned = self.shunned.locked();
        match shunned.get(peer) {
            Some(at) if at.elapsed() < SHUN_FOR => true,
            Some(_) => {
                shunned.remove(peer);
                false
            }
            None => false,
        }
    }

    /// Stops dialling an mDNS-only peer that keeps failing admission.
    fn shun(&self, peer: NodeId) {
        {
            let mut shunned = self.shunned.locked();
            if shunned.len() >= MAX_SHUNNED {
                if let Some(oldest) = shunned.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                    shunned.remove(&oldest);
                }
            }
            shunned.insert(peer, tokio::time::Instant::now());
        }
        tracing::info!(peer = %peer.short(), "mDNS peer failed admission {MAX_ADMISSION_FAILURES} times; not dialled for {SHUN_FOR:?}");
        self.unwant(&peer, Source::Mdns);
    }

    fn mdns_only(&self, peer: &NodeId) -> bool {
        self.wanted()
            .get(peer)
            .is_some_and(|w| w.sources.iter().all(|s| *s == Source::Mdns))
    }

    fn addrs_of(&self, peer: &NodeId) -> Option<PeerAddr> {
        self.wanted().get(peer).map(|w| PeerAddr {
            id: *peer,
            addrs: w.addrs.clone(),
            links: w.links.clone(),
        })
    }

    async fn keep_dialling(self: Arc<Self>, peer: NodeId, stop: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        let mut refused = 0;
        loop {
            let connected = self.connections.is_connected(&peer);
            let wait = if connected {
                backoff = BACKOFF_MIN;
                Duration::from_millis(250)
            } else if self.connections.count() >= self.max_peers {
                Duration::from_secs(1)
            } else {
                let Some(target) = self.addrs_of(&peer) else {
                    return;
                };
                // The dial (connect and admission, up to 10 s each) ends with
                // the node or when the peer is no longer wanted.
                let dialled = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.dial(&target) => r,
                };
                match dialled {
                    Ok(()) => {
                        backoff = BACKOFF_MIN;
                        refused = 0;
                        Duration::from_millis(250)
                    }
                    Err(e) if e.kind() == crate::ErrorKind::AdmissionRefused => {
                        refused += 1;
                        if refused >= MAX_ADMISSION_FAILURES && self.mdns_only(&peer) {
                            self.shun(peer);
                            return;
                        }
                        let w = jitter(backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        w
                    }
                    Err(e) => {
                        tracing::debug!(peer = %peer.short(), error = %e, ?backoff, "dial failed");
                        let w = jitter(backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        w
                    }
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Dials a peer and waits until it is admitted (or refused).
    pub(crate) async fn dial(&self, peer: &PeerAddr) -> Result<()> {
        if peer.id == self.ctx.me {
            return Err(Error::InvalidArgument("cannot connect to self".into()));
        }
        if self.connections.is_alive(&peer.id) {
            return Ok(());
        }
        if self.connections.count() >= self.max_peers {
            return Err(Error::InvalidArgument(format!(
                "peer limit of {} reached",
                self.max_peers
            )));
        }
        let addr = EndpointAddr::from_parts(
            peer.id.0,
            peer.addrs.iter().map(|a| TransportAddr::Ip(*a)).chain(
                peer.links
                    .iter()
                    .map(|l| TransportAddr::Custom(l.0.clone())),
            ),
        );
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            self.endpoint.connect(addr, crate::transport::MESH_ALPN),
        )
        .await
        .map_err(|_| Error::Timeout(format!("connect to {}", peer.id.short())))?
        .map_err(Error::network)?;
        let (conn, control) = self.connections.admit(conn, true).await?;
        self.start_connection(conn, control);
        Ok(())
    }

    /// Runs an admitted connection on the node's tasks: the registry keeps it
    /// and hands its streams to the router.
    pub(crate) fn start_connection(&self, conn: Arc<Admitted>, control: Control) {
        self.connections.start(conn, control);
    }

    /// Accepts incoming connections until the node closes. Beyond the peer
    /// limit, new connections are refused before admission.
    pub(crate) async fn accept_loop(self: Arc<Self>) {
        // Connections still in the handshake or in admission, at most.
        let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_ADMISSIONS));
        loop {
            let incoming = tokio::select! {
                _ = self.ctx.cancel.cancelled() => return,
                i = self.endpoint.accept() => match i {
                    Some(i) => i,
                    None => return,
                },
            };
            let Ok(permit) = pending.clone().try_acquire_owned() else {
                tracing::debug!("too many connections in admission; refusing one");
                incoming.refuse();
                continue;
            };
            let me = self.clone();
            self.ctx.tasks.spawn(async move {
                let _permit = permit;
                let conn = match incoming.await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(error = %e, "incoming connection failed");
                        return;
                    }
                };
                let peer = NodeId(conn.remote_id());
                if me.connections.count() >= me.max_peers && !me.connections.is_connected(&peer) {
                    tracing::info!(peer = %peer.short(), limit = me.max_peers, "peer limit reached; refusing");
                    conn.close(
                        iroh::endpoint::VarInt::from_u32(close_code::PEER_LIMIT),
                        b"peer limit reached",
                    );
                    return;
                }
                if let Ok((conn, control)) = me.connections.admit(conn, false).await {
                    me.start_connection(conn, control);
                }
            });
        }
    }
}

/// `d` ±25%.
fn jitter(d: Duration) -> Duration {
    let f = 0.75 + rand::random::<f64>() * 0.5;
    d.mul_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(4));
            assert!(j >= Duration::from_secs(3) && j <= Duration::from_secs(5));
        }
    }
}

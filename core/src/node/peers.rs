//! Peers: dialling, static and discovered peers, their state, and
//! disconnecting. Discovery decides who is wanted; the connection manager
//! (`transport::manager`) dials them.

use super::Node;
use crate::config::PeerAddr;
use crate::discovery::{Source, MAX_KUBERNETES_PEERS};
use crate::error::{Error, Result};
use crate::transport::PeerInfo;
use crate::NodeId;

impl Node {
    /// Dials a peer and waits until it is admitted (or refused). Returns at once
    /// if a live session with the peer is up; a session whose link went silent
    /// (the peer died or restarted) does not count, and the peer is dialled
    /// afresh. Once connected, the peer is re-dialled (with backoff, like a
    /// static peer, source [`Source::Direct`]) whenever the link drops, until
    /// [`Node::disconnect`] or [`Node::remove_peer`].
    pub async fn connect(&self, peer: &PeerAddr) -> Result<()> {
        self.check_open()?;
        self.inner.manager.dial(peer).await?;
        self.inner.manager.want(peer.clone(), Source::Direct);
        Ok(())
    }

    /// Adds a static peer at runtime: it is dialled now and re-dialled (with
    /// backoff and jitter) whenever its link drops, until [`Node::remove_peer`].
    pub fn add_peer(&self, peer: PeerAddr) -> Result<()> {
        self.check_open()?;
        if peer.id == self.id() {
            return Err(Error::InvalidArgument("cannot add self as a peer".into()));
        }
        self.inner.manager.want(peer, Source::Static);
        Ok(())
    }

    /// Removes a static peer: stops re-dialling it and closes its connection
    /// unless another discovery (mDNS) still wants it. Returns false if it was
    /// not a static peer.
    pub fn remove_peer(&self, peer: &NodeId) -> bool {
        let direct = self.inner.manager.unwant(peer, Source::Direct);
        let had = self.inner.manager.unwant(peer, Source::Static) || direct;
        if had && self.inner.manager.sources(peer).is_empty() {
            self.inner.connections.disconnect(peer);
        }
        had
    }

    /// Reports a peer found by a discovery that runs outside the core (today
    /// only [`Source::Kubernetes`], fed by `peat-mesh-k8s`): it is dialled like
    /// an mDNS peer, re-dialled while the source wants it, and published as
    /// [`PeerEvent::Discovered`](crate::PeerEvent::Discovered) the first time.
    /// Reporting a known peer again merges its addresses.
    ///
    /// `InvalidArgument` for another source, this node's own id, or a new peer
    /// beyond the source's bound ([`MAX_KUBERNETES_PEERS`] peers wanted by
    /// Kubernetes alone).
    pub fn discovered(&self, peer: PeerAddr, source: Source) -> Result<()> {
        self.check_open()?;
        if source != Source::Kubernetes {
            return Err(Error::InvalidArgument(format!(
                "{source} peers are not reported from outside the node"
            )));
        }
        if peer.id == self.id() {
            return Err(Error::InvalidArgument("this node's own id".into()));
        }
        if self.inner.manager.want(peer, source) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "more than {MAX_KUBERNETES_PEERS} peers from {source}"
            )))
        }
    }

    /// Withdraws a peer reported by [`Node::discovered`]: it is no longer
    /// dialled once no source wants it, and its connection closes then.
    /// Returns false if `source` did not want it.
    pub fn lost(&self, peer: &NodeId, source: Source) -> bool {
        if source != Source::Kubernetes || !self.inner.manager.unwant(peer, source) {
            return false;
        }
        if self.inner.manager.sources(peer).is_empty() {
            self.inner.connections.disconnect(peer);
        }
        true
    }

    /// True if mDNS discovery is running.
    pub fn mdns_enabled(&self) -> bool {
        self.inner.mdns.is_some()
    }

    /// Every peer seen, with state and health (and, with links, each link's
    /// health towards it).
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut peers = self.inner.ctx.peers.list();
        for (id, updates, reply_bytes) in self.inner.engine.queues() {
            if let Some(p) = peers.iter_mut().find(|p| p.id == id) {
                p.sync_queued_updates = updates as u64;
                p.sync_queued_reply_bytes = reply_bytes as u64;
            }
        }
        if let Some(bond) = &self.inner.bond {
            for p in &mut peers {
                p.links = bond.links_to(&p.id);
            }
        }
        peers
    }

    /// Silences the link `name` or lets it speak again (emission control; see
    /// [`crate::links::Bond::set_silent`]). Peers on a silenced link move to
    /// another one at once, each with a [`PeerEvent::LinkChanged`].
    /// `InvalidArgument` if the node has no link of that name.
    pub fn set_link_silent(&self, name: &str, silent: bool) -> Result<()> {
        self.check_open()?;
        let known = self
            .inner
            .bond
            .as_ref()
            .is_some_and(|b| b.set_silent(name, silent));
        if known {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "no link named {name:?} (links: {:?})",
                self.inner
                    .bond
                    .as_ref()
                    .map(|b| b.link_names())
                    .unwrap_or_default()
            )))
        }
    }

    /// Number of peers currently connected.
    pub fn connected_peers(&self) -> usize {
        self.inner.connections.count()
    }

    /// Closes the connection to `peer`, if any. A static peer will be re-dialled.
    pub fn disconnect(&self, peer: &NodeId) -> bool {
        // A peer we connected to is no longer re-dialled; static and mDNS
        // peers are (remove them with `remove_peer`), and the peer may dial back.
        self.inner.manager.unwant(peer, Source::Direct);
        self.inner.connections.disconnect(peer)
    }
}

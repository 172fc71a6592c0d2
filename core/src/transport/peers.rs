//! The peer table: every peer this node has seen, with state and health.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::Source;
use crate::locks::LockExt;
use crate::NodeId;

/// Connection state of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Admitted and syncing.
    Connected,
    /// Was connected; not now.
    Disconnected,
    /// Found by discovery, not connected yet.
    Discovered,
    /// Seen on the network announcing another formation (or protocol
    /// version); never dialled.
    OtherFormation,
}

/// What the node knows about one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// The peer's node id.
    pub id: NodeId,
    /// Current state.
    pub state: PeerState,
    /// The address the connection runs over (or last ran over).
    pub addr: Option<SocketAddr>,
    /// Latest round-trip time estimate, while connected.
    pub rtt: Option<Duration>,
    /// When a frame last arrived from the peer.
    pub last_seen: Option<SystemTime>,
    /// True if this node dialled the current (or last) connection.
    pub outbound: bool,
    /// Which discoveries currently want this peer (empty for one that only
    /// dialled us or was dialled once with [`crate::Node::connect`]).
    pub sources: Vec<Source>,
    /// Each link's health towards the peer (empty without links besides UDP,
    /// or before the bond has met the peer).
    pub links: Vec<crate::links::LinkHealth>,
    /// Sync bytes (encoded frames) sent to the peer, over all its sessions
    /// since this node opened.
    pub sync_bytes_sent: u64,
    /// Sync bytes received from the peer, likewise.
    pub sync_bytes_received: u64,
    /// Live updates waiting in the peer's sync queues now (a document
    /// coalesced at the queue's bound counts once); 0 when not connected.
    pub sync_queued_updates: u64,
    /// Bytes of answers owed to the peer and queued now (bounded by the
    /// session's reply budget); 0 when not connected.
    pub sync_queued_reply_bytes: u64,
}

/// A change in a peer's state.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerEvent {
    /// The peer was admitted and sync started.
    Connected {
        /// The peer.
        peer: NodeId,
    },
    /// The connection ended.
    Disconnected {
        /// The peer.
        peer: NodeId,
        /// Why it ended.
        reason: String,
    },
    /// This node learnt that a certificate of `peer` was revoked (from the
    /// application or a peer); its connection with `peer`, if any, is
    /// closed and admission refuses it from now on.
    Revoked {
        /// The node whose certificate was revoked.
        peer: NodeId,
    },
    /// Admission failed in either direction; the connection was closed.
    AdmissionRefused {
        /// The peer (as authenticated by QUIC).
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// A discovery source found the peer (or was told about it); it will be
    /// dialled and kept connected while a source wants it.
    Discovered {
        /// The peer.
        peer: NodeId,
        /// Which discovery.
        source: Source,
    },
    /// A discovery source no longer sees the peer (mDNS goodbye or expiry,
    /// or [`crate::Node::remove_peer`]).
    Lost {
        /// The peer.
        peer: NodeId,
        /// Which discovery.
        source: Source,
    },
    /// mDNS saw a node announcing another formation (or protocol version); it
    /// is not dialled.
    SeenOtherFormation {
        /// The peer.
        peer: NodeId,
    },
    /// Not about a peer: this node's store failed a commit (a full disk, an
    /// I/O error) and takes no more writes until the node is closed and
    /// reopened. Published once.
    StorageFailed {
        /// The error.
        reason: String,
    },
    /// Not about a peer: a garbage-collection pass evicted documents to keep
    /// the node within its storage budget ([`crate::StorageBudget`]).
    /// Published once per pass that evicted any.
    StorageEvicted {
        /// Documents evicted in the pass.
        documents: u64,
        /// Bytes the documents take after it.
        stored_bytes: u64,
    },
    /// The link carrying the peer's traffic changed (PACE failover or
    /// fail-back, a silenced link, or the first link chosen). The connection
    /// and its sync session go on.
    LinkChanged {
        /// The peer.
        peer: NodeId,
        /// The link used before; `None` at first use.
        from: Option<String>,
        /// The link used now; `None` when no link can carry the traffic
        /// (every link to the peer silenced).
        to: Option<String>,
        /// The PACE level of `to` (0 is primary).
        level: Option<usize>,
    },
}

/// Thread-safe peer table.
/// Peers remembered at most beyond those connected or wanted: the
/// longest-unseen of the rest are forgotten first.
pub(crate) const MAX_ENTRIES: usize = 1024;

#[derive(Default)]
pub(crate) struct PeerTable {
    peers: Mutex<HashMap<NodeId, PeerInfo>>,
}

impl PeerTable {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<NodeId, PeerInfo>) -> R) -> R {
        f(&mut self.peers.locked())
    }

    fn entry(m: &mut HashMap<NodeId, PeerInfo>, id: NodeId) -> &mut PeerInfo {
        if m.len() >= MAX_ENTRIES && !m.contains_key(&id) {
            // Forget the longest-unseen peer that nothing wants and that is not
            // connected (seen by mDNS, of another formation, long gone).
            if let Some(old) = m
                .values()
                .filter(|p| p.state != PeerState::Connected && p.sources.is_empty())
                .min_by_key(|p| p.last_seen)
                .map(|p| p.id)
            {
                m.remove(&old);
            }
        }
        m.entry(id).or_insert_with(|| PeerInfo {
            id,
            state: PeerState::Discovered,
            addr: None,
            rtt: None,
            last_seen: None,
            outbound: false,
            sources: Vec::new(),
            links: Vec::new(),
            sync_bytes_sent: 0,
            sync_bytes_received: 0,
            sync_queued_updates: 0,
            sync_queued_reply_bytes: 0,
        })
    }

    pub fn connected(&self, id: NodeId, addr: Option<SocketAddr>, outbound: bool) {
        self.with(|m| {
            let p = Self::entry(m, id);
            p.state = PeerState::Connected;
            p.addr = addr;
            p.rtt = None;
            p.last_seen = Some(SystemTime::now());
            p.outbound = outbound;
        })
    }

    pub fn discovered(&self, id: NodeId, source: Source) {
        self.with(|m| {
            let p = Self::entry(m, id);
            if !p.sources.contains(&source) {
                p.sources.push(source);
                p.sources.sort();
            }
            if p.state == PeerState::OtherFormation {
                p.state = PeerState::Discovered;
            }
        })
    }

    pub fn lost(&self, id: NodeId, source: Source) {
        self.with(|m| {
            if let Some(p) = m.get_mut(&id) {
                p.sources.retain(|s| *s != source);
            }
        })
    }

    pub fn other_formation(&self, id: NodeId) {
        self.with(|m| {
            let p = Self::entry(m, id);
            if p.state != PeerState::Connected {
                p.state = PeerState::OtherFormation;
            }
            p.last_seen = Some(SystemTime::now());
        })
    }

    pub fn disconnected(&self, id: NodeId) {
        self.with(|m| {
            if let Some(p) = m.get_mut(&id) {
                p.state = PeerState::Disconnected;
                p.rtt = None;
            }
        })
    }

    pub fn seen(&self, id: NodeId, rtt: Option<Duration>) {
        self.with(|m| {
            if let Some(p) = m.get_mut(&id) {
                p.last_seen = Some(SystemTime::now());
                if rtt.is_some() {
                    p.rtt = rtt;
                }
            }
        })
    }

    /// Counts sync bytes sent to and received from a known peer.
    pub fn traffic(&self, id: NodeId, sent: u64, received: u64) {
        self.with(|m| {
            if let Some(p) = m.get_mut(&id) {
                p.sync_bytes_sent += sent;
                p.sync_bytes_received += received;
            }
        })
    }

    pub fn list(&self) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = self.with(|m| m.values().cloned().collect());
        v.sort_by_key(|p| p.id);
        v
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    fn id() -> NodeId {
        NodeId(iroh::SecretKey::generate().public())
    }

    #[test]
    fn the_table_forgets_strangers_beyond_its_bound_but_never_connected_or_wanted_peers() {
        let t = PeerTable::default();
        let (connected, wanted) = (id(), id());
        t.connected(connected, None, true);
        t.discovered(wanted, Source::Static);
        for _ in 0..3 * MAX_ENTRIES {
            t.other_formation(id());
        }
        let list = t.list();
        assert!(list.len() <= MAX_ENTRIES, "{} entries", list.len());
        assert!(list.iter().any(|p| p.id == connected));
        assert!(list.iter().any(|p| p.id == wanted));
    }
}

//! The peer table: every peer this node has seen, with state and health.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::NodeId;

/// Connection state of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Admitted and syncing.
    Connected,
    /// Known but not connected now.
    Disconnected,
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
    /// Admission failed in either direction; the connection was closed.
    AdmissionRefused {
        /// The peer (as authenticated by QUIC).
        peer: NodeId,
        /// Why.
        reason: String,
    },
}

/// Thread-safe peer table.
#[derive(Default)]
pub(crate) struct PeerTable {
    peers: Mutex<HashMap<NodeId, PeerInfo>>,
}

impl PeerTable {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<NodeId, PeerInfo>) -> R) -> R {
        f(&mut self.peers.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn connected(&self, id: NodeId, addr: Option<SocketAddr>, outbound: bool) {
        self.with(|m| {
            m.insert(
                id,
                PeerInfo {
                    id,
                    state: PeerState::Connected,
                    addr,
                    rtt: None,
                    last_seen: Some(SystemTime::now()),
                    outbound,
                },
            );
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

    pub fn list(&self) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = self.with(|m| m.values().cloned().collect());
        v.sort_by_key(|p| p.id);
        v
    }
}

//! Peer events as the bindings see them.

use peat_mesh::{Event, PeerEvent};

use super::PeerSource;

/// A peer event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PeerEventRecord {
    /// Admitted and syncing.
    Connected {
        /// Node id.
        peer: String,
    },
    /// Connection ended.
    Disconnected {
        /// Node id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// Admission failed.
    AdmissionRefused {
        /// Node id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A discovery found the peer; it will be dialled.
    Discovered {
        /// Node id.
        peer: String,
        /// The discovery.
        source: PeerSource,
    },
    /// A discovery no longer sees the peer.
    Lost {
        /// Node id.
        peer: String,
        /// The discovery.
        source: PeerSource,
    },
    /// mDNS saw a node of another formation; not dialled.
    SeenOtherFormation {
        /// Node id.
        peer: String,
    },
    /// Not about a peer: this node's store failed a commit (a full disk, an
    /// I/O error) and refuses every write (an `Io` error) until the node is
    /// closed and reopened. Published once.
    StorageFailed {
        /// The store's error.
        reason: String,
    },
    /// Not about a peer: a garbage-collection pass evicted documents to keep
    /// the node within its storage budget. Once per pass that evicted any.
    StorageEvicted {
        /// Documents evicted in the pass.
        documents: u64,
        /// Bytes the documents take after it.
        stored_bytes: u64,
    },
    /// The link carrying the peer's traffic changed (PACE failover or
    /// fail-back, a silenced link, or the first link chosen); the connection
    /// and its sync session go on.
    LinkChanged {
        /// Node id.
        peer: String,
        /// The link used before; `None` at first use.
        from: Option<String>,
        /// The link used now; `None` when no link can carry the traffic.
        to: Option<String>,
        /// The PACE level of `to` (0 primary).
        level: Option<u32>,
    },
    /// This many events were dropped.
    Lagged(u64),
    /// A certificate of the peer was revoked: its connection (if any) is
    /// closed and admission refuses it from now on.
    Revoked {
        /// Node id.
        peer: String,
    },
}

impl From<Event<PeerEvent>> for PeerEventRecord {
    fn from(e: Event<PeerEvent>) -> Self {
        let e = match e {
            Event::Item(e) => e,
            Event::Lagged(n) => return PeerEventRecord::Lagged(n),
        };
        match e {
            PeerEvent::Connected { peer } => PeerEventRecord::Connected {
                peer: peer.to_string(),
            },
            PeerEvent::Disconnected { peer, reason } => PeerEventRecord::Disconnected {
                peer: peer.to_string(),
                reason,
            },
            PeerEvent::Revoked { peer } => PeerEventRecord::Revoked {
                peer: peer.to_string(),
            },
            PeerEvent::AdmissionRefused { peer, reason } => PeerEventRecord::AdmissionRefused {
                peer: peer.to_string(),
                reason,
            },
            PeerEvent::Discovered { peer, source } => PeerEventRecord::Discovered {
                peer: peer.to_string(),
                source: source.into(),
            },
            PeerEvent::Lost { peer, source } => PeerEventRecord::Lost {
                peer: peer.to_string(),
                source: source.into(),
            },
            PeerEvent::SeenOtherFormation { peer } => PeerEventRecord::SeenOtherFormation {
                peer: peer.to_string(),
            },
            PeerEvent::StorageFailed { reason } => PeerEventRecord::StorageFailed { reason },
            PeerEvent::StorageEvicted {
                documents,
                stored_bytes,
            } => PeerEventRecord::StorageEvicted {
                documents,
                stored_bytes,
            },
            PeerEvent::LinkChanged {
                peer,
                from,
                to,
                level,
            } => PeerEventRecord::LinkChanged {
                peer: peer.to_string(),
                from,
                to,
                level: level.map(|l| l as u32),
            },
        }
    }
}

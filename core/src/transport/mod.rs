//! Transports: the iroh QUIC endpoint every connection runs over, the router
//! that hands each stream of an admitted connection to its protocol, and the
//! table of known peers with their health.

mod connections;
mod context;
mod endpoint;
pub(crate) mod manager;
mod peers;
pub(crate) mod router;

use std::fmt;

pub(crate) use connections::{close_code, Connections};
pub(crate) use context::NodeContext;

/// Which discovery found a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// From [`crate::NodeConfig::static_peers`] or [`crate::Node::add_peer`].
    Static,
    /// Announced on the local network by mDNS.
    Mdns,
    /// Connected with [`crate::Node::connect`]: re-dialled until
    /// [`crate::Node::disconnect`] or [`crate::Node::remove_peer`]. Wanting or
    /// dropping such a peer publishes no `Discovered`/`Lost` event.
    Direct,
    /// A ready endpoint of the node's Kubernetes Service, reported through
    /// [`crate::Node::discovered`] by the discovery in `peat-mesh-k8s` (the
    /// core has no Kubernetes client).
    Kubernetes,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Static => "static",
            Source::Mdns => "mdns",
            Source::Direct => "direct",
            Source::Kubernetes => "kubernetes",
        })
    }
}

#[cfg(test)]
pub(crate) use endpoint::bind_small_window_endpoint;
pub(crate) use endpoint::{bind_endpoint, MESH_ALPN};
pub(crate) use peers::PeerTable;
#[cfg(test)]
pub(crate) use peers::MAX_ENTRIES as MAX_PEER_ENTRIES;
pub use peers::{PeerEvent, PeerInfo, PeerState};

//! Transports: the iroh QUIC endpoint every connection runs over, the router
//! that hands each stream of an admitted connection to its protocol, and the
//! table of known peers with their health.

mod endpoint;
mod peers;
pub(crate) mod router;

#[cfg(test)]
pub(crate) use endpoint::bind_small_window_endpoint;
pub(crate) use endpoint::{bind_endpoint, MESH_ALPN};
pub(crate) use peers::PeerTable;
#[cfg(test)]
pub(crate) use peers::MAX_ENTRIES as MAX_PEER_ENTRIES;
pub use peers::{PeerEvent, PeerInfo, PeerState};

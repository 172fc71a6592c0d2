//! Transports: the iroh QUIC endpoint every connection runs over, and the table
//! of known peers with their health.

mod endpoint;
mod peers;

#[cfg(test)]
pub(crate) use endpoint::bind_small_window_endpoint;
pub(crate) use endpoint::{bind_endpoint, SYNC_ALPN};
pub(crate) use peers::PeerTable;
#[cfg(test)]
pub(crate) use peers::MAX_ENTRIES as MAX_PEER_ENTRIES;
pub use peers::{PeerEvent, PeerInfo, PeerState};

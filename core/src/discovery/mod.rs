//! Discovery: where peers come from (static configuration, runtime additions,
//! mDNS on the LAN). It only discovers: a source says "this peer may be at
//! these addresses" or "gone" to the connection manager
//! (`transport::manager`), which decides to dial, runs admission and hands the
//! connection on; discovery never dials.

pub(crate) mod mdns;

pub use crate::transport::manager::MAX_KUBERNETES_PEERS;
pub use crate::transport::Source;

/// The DNS-SD service type nodes announce and browse.
pub const MDNS_SERVICE: &str = "_peat-mesh._udp.local.";

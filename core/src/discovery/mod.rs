//! Discovery and connection management: where peers come from (static
//! configuration, runtime additions, mDNS on the LAN) and the manager that keeps
//! every wanted peer connected, re-dialling lost links with backoff and jitter.
//!
//! Data flows one way: a discovery source says "this peer is at these
//! addresses" ([`manager::Manager::want`]) or "gone" ([`manager::Manager::unwant`]);
//! the manager dials, admission and sync take over from there.

pub(crate) mod manager;
pub(crate) mod mdns;

use std::fmt;

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
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Static => "static",
            Source::Mdns => "mdns",
            Source::Direct => "direct",
        })
    }
}

/// The DNS-SD service type nodes announce and browse.
pub const MDNS_SERVICE: &str = "_peat-mesh._udp.local.";

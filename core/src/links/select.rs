//! iroh's choice between a peer's UDP path and its bond path: the bond first.
//!
//! The bond already picks the best link (PACE); iroh only has to send through
//! it while the bond path is open. When the bond path has died (iroh abandons
//! a path silent for the link timeout), the lowest-RTT path left carries the
//! connection, as iroh would choose itself.
//!
//! What iroh 1.4 does not allow: it asks its path selector only on path
//! events (a path established or abandoned, a connection added), never on
//! demand, so the bond cannot hand the connection to the UDP path the moment
//! PACE finds every link to a peer dead. With the node's UDP socket open too,
//! that move waits for iroh to abandon the silent bond path (the link
//! timeout, default 5 s). Nodes that must fail over faster put their LAN in
//! the bond as a UDP link ([`super::Link::udp`]), where PACE moves within
//! its dead-link time.

use iroh::endpoint::transports::{FourTuple, PathSelection, PathSelectionContext, PathSelector};

use super::addr::BOND_TRANSPORT_ID;

#[derive(Debug, Default)]
pub(crate) struct BondFirst;

fn is_bond(p: &FourTuple) -> bool {
    matches!(p, FourTuple::Custom { remote, .. } if remote.id() == BOND_TRANSPORT_ID)
}

impl PathSelector for BondFirst {
    fn select(&self, ctx: &PathSelectionContext<'_>) -> PathSelection {
        let mut selection = PathSelection::none();
        let best = ctx
            .paths()
            .filter_map(|p| p.stats().map(|s| (is_bond(p.network_path()), s.rtt, p)))
            .min_by_key(|(bond, rtt, _)| (!*bond, *rtt));
        if let Some((_, _, p)) = best {
            selection.set(&p);
        }
        selection
    }
}

//! Tasks that turn what the node's parts notice into peer events.

use std::sync::Arc;

use crate::sync::Engine;
use crate::transport::{Connections, NodeContext, PeerEvent};
use crate::NodeId;

/// Publishes [`PeerEvent::StorageFailed`] once if the store fails a commit.
pub(super) async fn report_store_failure(
    ctx: Arc<NodeContext>,
    mut failure: tokio::sync::watch::Receiver<Option<String>>,
) {
    let reason = tokio::select! {
        r = failure.wait_for(Option::is_some) => match r {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => return,
        },
        _ = ctx.cancel.cancelled() => return,
    };
    ctx.peer_hub
        .publish(&PeerEvent::StorageFailed { reason }, |_| true);
}

/// Reports the bond's link switches as [`PeerEvent::LinkChanged`] for peers
/// this node knows, and nudges the connection of a peer moved from one link
/// to another (see [`Connections::nudge`]). A first-use switch towards a peer
/// not in the peer table yet (an inbound peer before its admission) is not
/// reported: once connected, the peer list shows its link.
pub(super) async fn report_link_switches(
    ctx: Arc<NodeContext>,
    connections: Arc<Connections>,
    engine: Arc<Engine>,
    mut switches: tokio::sync::mpsc::Receiver<crate::links::LinkSwitch>,
) {
    loop {
        let s = tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            s = switches.recv() => match s { Some(s) => s, None => return },
        };
        let peers: Vec<NodeId> = ctx
            .peers
            .list()
            .into_iter()
            .map(|p| p.id)
            .filter(|id| crate::links::bond_id(id) == s.peer)
            .collect();
        for peer in peers {
            if s.from.is_some() && s.to.is_some() {
                connections.nudge(&peer);
                // Documents held back on the old link may go on this one.
                engine.reconcile_with(&peer);
            }
            let event = PeerEvent::LinkChanged {
                peer,
                from: s.from.clone(),
                to: s.to.clone(),
                level: s.level,
            };
            ctx.peer_hub.publish(&event, |_| true);
        }
    }
}

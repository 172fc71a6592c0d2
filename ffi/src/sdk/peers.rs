//! Peers: dialling, static peers, the peer table, and the node's counters.

use super::args::{ms, parse_peer};
use crate::error::{SdkError, SdkResult};
use crate::handles;
use crate::records::{NodeStats, PeerRecord};
use crate::runtime;

/// Dials a peer (`NODEID@HOST:PORT`) and waits for admission.
pub fn connect(node: u64, peer: &str, timeout_ms: u64, cancel: u64) -> SdkResult<()> {
    let n = handles::node(node)?;
    let p = parse_peer(peer)?;
    let token = handles::cancel_token(cancel)?;
    runtime::block_on_cancellable(ms(timeout_ms), token, async move {
        n.connect(&p).await.map_err(SdkError::from)
    })
}

/// Adds a static peer (`NODEID@HOST:PORT`) at runtime: dialled now and
/// re-dialled whenever its link drops, until [`remove_peer`].
pub fn add_peer(node: u64, peer: &str) -> SdkResult<()> {
    let n = handles::node(node)?;
    n.add_peer(parse_peer(peer)?).map_err(SdkError::from)
}

/// Removes a static peer (by node id); returns false if it was not one.
pub fn remove_peer(node: u64, peer_id: &str) -> SdkResult<bool> {
    let n = handles::node(node)?;
    let id = peer_id.parse::<peat_mesh::NodeId>()?;
    Ok(n.remove_peer(&id))
}

/// Every peer seen.
pub fn peers(node: u64) -> SdkResult<Vec<PeerRecord>> {
    let n = handles::node(node)?;
    Ok(n.peers().into_iter().map(PeerRecord::from).collect())
}

/// The node's counters.
pub fn stats(node: u64) -> SdkResult<NodeStats> {
    let n = handles::node(node)?;
    let s = n.sync_stats();
    Ok(NodeStats {
        documents: n.document_count()?,
        connected_peers: n.connected_peers() as u64,
        subscriptions: n.subscription_count() as u64,
        frames_sent: s.sent.frames(),
        bytes_sent: s.sent.bytes(),
        frames_received: s.received.frames(),
        bytes_received: s.received.bytes(),
        refused_documents: s.refused_documents,
        queued_events: n.queued_events() + crate::backlog::held(node),
        update_latency_count: s.update_latency.count,
        update_latency_sum_ms: s.update_latency.sum_ms,
    })
}

//! What every part of a running node shares: who it is, which formation it
//! belongs to, the table of peers it knows and the stream of peer events, and
//! the lifetime of its tasks. Nothing here refers back to the parts that use it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{PeerEvent, PeerTable};
use crate::bandwidth::Throttle;
use crate::events::Hub;
use crate::security::{Formation, Gate};
use crate::NodeId;

/// Shared state of one running node.
pub(crate) struct NodeContext {
    /// This node's id.
    pub me: NodeId,
    /// The formation it admits peers of.
    pub formation: Formation,
    /// What admission checks beyond the secret, and the revocations known.
    pub gate: Arc<Gate>,
    /// Every peer known, with its state and sources.
    pub peers: PeerTable,
    /// Peer (and node) events for subscribers.
    pub peer_hub: Hub<PeerEvent, ()>,
    /// Cancelled when the node closes.
    pub cancel: CancellationToken,
    /// Every task of the node, awaited at close.
    pub tasks: TaskTracker,
    /// How long a silent link lives (keep-alives go every quarter of it).
    pub link_timeout: Duration,
    /// The bandwidth budgets every sender waits on.
    pub throttle: Arc<Throttle>,
}

impl NodeContext {
    pub(crate) fn new(
        me: NodeId,
        formation: Formation,
        gate: Arc<Gate>,
        event_capacity: usize,
        link_timeout: Duration,
        throttle: Arc<Throttle>,
    ) -> Self {
        NodeContext {
            me,
            formation,
            gate,
            peers: PeerTable::default(),
            peer_hub: Hub::new(event_capacity),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            link_timeout,
            throttle,
        }
    }
}

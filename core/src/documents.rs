//! Document change events delivered to subscribers.

use crate::storage::DocKey;
use crate::NodeId;

/// Where a document change came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Part of the initial snapshot a subscription starts with.
    Snapshot,
    /// Written on this node.
    Local,
    /// Received from this peer.
    Peer(NodeId),
}

/// A document's new state.
#[derive(Debug, Clone, PartialEq)]
pub struct DocEvent {
    /// Which document.
    pub key: DocKey,
    /// Its content as JSON, or `None` if it was deleted.
    pub value: Option<serde_json::Value>,
    /// Where the change came from.
    pub origin: Origin,
}

/// Which documents a subscription covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocFilter {
    pub collection: String,
    pub id: Option<String>,
}

impl DocFilter {
    pub fn matches(&self, key: &DocKey) -> bool {
        self.collection == key.collection() && self.id.as_deref().is_none_or(|i| i == key.id())
    }
}

//! Bandwidth budgets: bytes per second to each peer and over each link, as
//! JSON text in the core's form (see [`peat_mesh::Bandwidth::from_json`]), at
//! open and at runtime, and what they did.

use peat_mesh::{Bandwidth, NodeConfig};

use crate::error::SdkResult;
use crate::handles;
use crate::records::{BandwidthStatsRecord, NodeOptions};

/// Applies the budgets given at open (empty text: none).
pub(crate) fn apply(o: &NodeOptions, cfg: NodeConfig) -> SdkResult<NodeConfig> {
    if o.bandwidth_json.is_empty() {
        return Ok(cfg);
    }
    Ok(cfg.bandwidth(Bandwidth::from_json(&o.bandwidth_json)?))
}

/// Replaces the node's budgets from JSON text (`{"per_peer": 125000,
/// "links": {"socket": 1000000}}`; `{}` lifts them).
pub fn node_set_bandwidth(node: u64, bandwidth_json: &str) -> SdkResult<()> {
    let n = handles::node(node)?;
    n.set_bandwidth(Bandwidth::from_json(bandwidth_json)?)?;
    Ok(())
}

/// The budgets in force, as JSON text.
pub fn node_bandwidth(node: u64) -> SdkResult<String> {
    Ok(handles::node(node)?.bandwidth().to_json())
}

/// What the budgets did since the node opened.
pub fn node_bandwidth_stats(node: u64) -> SdkResult<BandwidthStatsRecord> {
    Ok(handles::node(node)?.bandwidth_stats().into())
}

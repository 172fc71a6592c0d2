//! The bandwidth API of [`Node`]: budgets per peer and per link, at open and
//! while the node runs, and what they did.

use std::sync::Arc;

use crate::bandwidth::{Bandwidth, BandwidthStats, Throttle};
use crate::config::NodeConfig;
use crate::error::{Error, Result};

use super::Node;

/// The throttle of a node opening with `config` (its budgets checked against
/// the configured links; a link may not take the socket's name).
pub(super) fn throttle(config: &NodeConfig) -> Result<Arc<Throttle>> {
    let names: Vec<String> = config.links.iter().map(|l| l.name().to_string()).collect();
    if names.iter().any(|n| n == crate::bandwidth::SOCKET_LINK) {
        return Err(Error::InvalidArgument(format!(
            "a link may not be named {:?}: that name is the UDP socket's in bandwidth budgets",
            crate::bandwidth::SOCKET_LINK
        )));
    }
    Ok(Arc::new(Throttle::new(config.bandwidth.clone(), names)?))
}

impl Node {
    /// The bandwidth budgets in force.
    pub fn bandwidth(&self) -> Bandwidth {
        self.inner.ctx.throttle.get()
    }

    /// Replaces the bandwidth budgets (from the next byte sent on; buckets
    /// start full). A budget naming a link the node does not have, or a rate
    /// below [`crate::bandwidth::MIN_RATE`], is refused and the old one stays.
    pub fn set_bandwidth(&self, bandwidth: Bandwidth) -> Result<()> {
        self.check_open()?;
        self.inner.ctx.throttle.set(bandwidth)
    }

    /// What the budgets did since the node opened.
    pub fn bandwidth_stats(&self) -> BandwidthStats {
        self.inner.ctx.throttle.stats()
    }
}

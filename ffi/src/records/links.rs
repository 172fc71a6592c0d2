//! The records of links: their options at open, PACE thresholds, and each
//! link's health towards a peer.

/// A link besides the node's UDP socket: a UDP socket of its own bound to one
/// interface's address (a second LAN, an IP radio; it carries traffic to
/// peers' links of the same name only), or a Bluetooth LE link (Linux).
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct LinkOptions {
    /// The link's name (unique per node; peers' links pair by name).
    pub name: String,
    /// The address to bind, e.g. `10.0.2.1:0`; or `ble` / `ble:ADAPTER` for
    /// a BLE link on the first Bluetooth adapter or the one named.
    pub bind: String,
    /// Its PACE level: 0 primary, 1 alternate, 2 contingency, 3 emergency
    /// (any number of levels; links of one level are tried in order).
    pub level: u32,
}

/// A per-collection link rule: documents of `collection` go to a peer only
/// over links of a level below `below_level` (1–8; e.g. 3 keeps them off
/// emergency links). The other collections sync over any link.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct CollectionRule {
    /// The collection's name.
    pub collection: String,
    /// Its documents only over links of a level below this (1–8).
    pub below_level: u32,
}

/// PACE thresholds; a zero field takes the default.
#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct PaceOptions {
    /// How often each link to each peer is probed (default 500 ms).
    pub probe_interval_ms: u64,
    /// A link that answers no probe for this long is dead (default 2,000 ms).
    pub dead_after_ms: u64,
    /// Smoothed RTT past which a link is degraded (default 2,000 ms).
    pub degraded_rtt_ms: u64,
    /// Probe loss (0.0–1.0) past which a link is degraded (default 0.25).
    pub degraded_loss: f64,
    /// How long a better level must stay healthy before traffic goes back
    /// to it (default 10,000 ms).
    pub hold_down_ms: u64,
    /// Blob transfers only over links of a level below this (3 keeps them
    /// off emergency links; 1 on the primary only); 0: any level. At most 8.
    pub blobs_below_level: u32,
    /// Per-collection link rules (empty: every collection over any link).
    pub collection_rules: Vec<CollectionRule>,
}

/// How a link to a peer is judged from its probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum LinkState {
    /// Answering within the thresholds.
    Healthy,
    /// Answering, but lossy or slow past the thresholds.
    Degraded,
    /// Not proven yet, or missed its last answer.
    Suspect,
    /// No answer for the dead-link time (or silenced).
    Dead,
}

impl LinkState {
    /// The stable lower-case name (`healthy`, `degraded`, `suspect`, `dead`).
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Healthy => "healthy",
            LinkState::Degraded => "degraded",
            LinkState::Suspect => "suspect",
            LinkState::Dead => "dead",
        }
    }
}

impl From<peat_mesh::links::LinkState> for LinkState {
    fn from(s: peat_mesh::links::LinkState) -> Self {
        match s {
            peat_mesh::links::LinkState::Healthy => LinkState::Healthy,
            peat_mesh::links::LinkState::Degraded => LinkState::Degraded,
            peat_mesh::links::LinkState::Suspect => LinkState::Suspect,
            peat_mesh::links::LinkState::Dead => LinkState::Dead,
        }
    }
}

/// One link's health towards a peer, measured from its own probes.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LinkHealthRecord {
    /// The link's name.
    pub name: String,
    /// Its PACE level (0 primary); `None` if the policy does not use it.
    pub level: Option<u32>,
    /// Healthy, degraded, suspect or dead.
    pub state: LinkState,
    /// Smoothed probe RTT in microseconds, once measured.
    pub rtt_us: Option<u64>,
    /// The RTT's smoothed mean deviation in microseconds, once measured.
    pub rtt_var_us: Option<u64>,
    /// Share of recent probes not answered (0.0–1.0).
    pub loss: f64,
    /// Milliseconds since the link last answered a probe; `None` if never.
    pub last_answer_ms: Option<u64>,
    /// Whether this link carries the peer's traffic now.
    pub in_use: bool,
    /// Whether this node has silenced the link.
    pub silent: bool,
}

impl From<peat_mesh::links::LinkHealth> for LinkHealthRecord {
    fn from(l: peat_mesh::links::LinkHealth) -> Self {
        LinkHealthRecord {
            name: l.name,
            level: l.level.map(|v| v as u32),
            state: l.state.into(),
            rtt_us: l.rtt.map(|d| d.as_micros() as u64),
            rtt_var_us: l.rtt_var.map(|d| d.as_micros() as u64),
            loss: l.loss,
            last_answer_ms: l.last_answer.map(|d| d.as_millis() as u64),
            in_use: l.in_use,
            silent: l.silent,
        }
    }
}

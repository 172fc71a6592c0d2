//! Links besides UDP as C sees them: their options at open, their health in
//! the peer list, silencing one at runtime.

use std::ffi::c_char;

use super::boundary::{c_string, call, free_c_string, into_raw_slice, str_arg, take_raw_slice};
use super::types::{PeatError, PeatNode, PeatStr};
use crate::error::{SdkError, SdkResult};
use crate::records::{CollectionRule, LinkHealthRecord, LinkOptions, LinkState, PaceOptions};
use crate::sdk;

/// A link besides the UDP socket ([`PeatNodeOptions::links`]): a UDP socket
/// of its own bound to one interface's address (it carries traffic to peers'
/// links of the same name only), or a Bluetooth LE link (Linux).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatLinkOptions {
    /// The link's name, unique per node.
    pub name: PeatStr,
    /// The address to bind, e.g. "10.0.2.1:0"; or "ble" / "ble:ADAPTER" for
    /// a BLE link on the first Bluetooth adapter or the one named (where
    /// there is none, the open fails with `PEAT_STATUS_NETWORK`).
    pub bind: PeatStr,
    /// PACE level: 0 primary, 1 alternate, 2 contingency, 3 emergency (at
    /// most 7); links of one level are tried in the order given.
    pub level: u32,
}

/// PACE thresholds ([`PeatNodeOptions::pace`]); a zero field takes the
/// default, so a zeroed struct is the default policy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatPaceOptions {
    /// How often each link to each peer is probed (default 500 ms).
    pub probe_interval_ms: u64,
    /// A link answering no probe for this long is dead (default 2,000 ms).
    pub dead_after_ms: u64,
    /// Smoothed RTT past which a link is degraded (default 2,000 ms).
    pub degraded_rtt_ms: u64,
    /// Probe loss (0.0–1.0) past which a link is degraded (default 0.25).
    pub degraded_loss: f64,
    /// How long a better level must stay healthy before traffic goes back to
    /// it (default 10,000 ms).
    pub hold_down_ms: u64,
    /// Blob transfers only over links of a level below this (3 keeps them
    /// off emergency links; 1 on the primary only); 0: any level. At most 8.
    pub blobs_below_level: u32,
    /// Per-collection link rules; may be NULL when `collection_rules_len`
    /// is 0 (every collection over any link). Borrowed for the call.
    pub collection_rules: *const PeatCollectionRule,
    /// Number of rules.
    pub collection_rules_len: usize,
}

/// A per-collection link rule ([`PeatPaceOptions::collection_rules`]):
/// documents of `collection` go to a peer only over links of a level below
/// `below_level` (1–8; 3 keeps them off emergency links).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatCollectionRule {
    /// The collection's name.
    pub collection: PeatStr,
    /// Its documents only over links of a level below this (1–8).
    pub below_level: u32,
}

/// The SDK's PACE options from the C struct (its rules read for the call).
pub(crate) fn pace_options(p: &PeatPaceOptions) -> SdkResult<PaceOptions> {
    let rules = if p.collection_rules_len == 0 {
        &[][..]
    } else if p.collection_rules.is_null() {
        return Err(SdkError::invalid(
            "pace.collection_rules: NULL pointer with non-zero length",
        ));
    } else {
        // SAFETY: the caller guarantees `collection_rules_len` readable
        // PeatCollectionRule values at `collection_rules` for the call
        // (borrowed input, the header's ownership rule).
        unsafe { std::slice::from_raw_parts(p.collection_rules, p.collection_rules_len) }
    };
    Ok(PaceOptions {
        probe_interval_ms: p.probe_interval_ms,
        dead_after_ms: p.dead_after_ms,
        degraded_rtt_ms: p.degraded_rtt_ms,
        degraded_loss: p.degraded_loss,
        hold_down_ms: p.hold_down_ms,
        blobs_below_level: p.blobs_below_level,
        collection_rules: rules
            .iter()
            .map(|r| {
                Ok(CollectionRule {
                    collection: str_arg(r.collection, "collection rule")?.to_string(),
                    below_level: r.below_level,
                })
            })
            .collect::<SdkResult<_>>()?,
    })
}

/// The borrowed array of `len` link options; NULL only when `len` is 0.
pub(crate) fn link_options(
    items: *const PeatLinkOptions,
    len: usize,
) -> SdkResult<Vec<LinkOptions>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(SdkError::invalid(
            "links: NULL pointer with non-zero length",
        ));
    }
    // SAFETY: the caller guarantees `len` readable PeatLinkOptions at `items`
    // for the duration of this call (borrowed input).
    let items = unsafe { std::slice::from_raw_parts(items, len) };
    items
        .iter()
        .map(|l| {
            Ok(LinkOptions {
                name: str_arg(l.name, "link name")?.to_string(),
                bind: str_arg(l.bind, "link bind")?.to_string(),
                level: l.level,
            })
        })
        .collect()
}

/// How a link to a peer is judged ([`PeatLinkHealth::state`]).
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatLinkState {
    /// Answering within the thresholds.
    Healthy = 1,
    /// Answering, but lossy or slow past the thresholds.
    Degraded = 2,
    /// Not proven yet, or missed its last answer.
    Suspect = 3,
    /// No answer for the dead-link time (or silenced).
    Dead = 4,
}

impl From<LinkState> for PeatLinkState {
    fn from(s: LinkState) -> Self {
        match s {
            LinkState::Healthy => PeatLinkState::Healthy,
            LinkState::Degraded => PeatLinkState::Degraded,
            LinkState::Suspect => PeatLinkState::Suspect,
            LinkState::Dead => PeatLinkState::Dead,
        }
    }
}

/// One link's health towards a peer ([`PeatPeerInfo::links`]), measured from
/// its own probes.
#[repr(C)]
pub struct PeatLinkHealth {
    /// The link's name.
    pub name: *mut c_char,
    /// Its PACE level (0 primary); -1 if the policy does not use it.
    pub level: i32,
    /// Healthy, degraded, suspect or dead.
    pub state: PeatLinkState,
    /// Smoothed probe RTT in microseconds; -1 until measured.
    pub rtt_us: i64,
    /// The RTT's smoothed mean deviation in microseconds; -1 until measured.
    pub rtt_var_us: i64,
    /// Share of recent probes not answered (0.0–1.0).
    pub loss: f64,
    /// Milliseconds since the link last answered a probe; -1 if never.
    pub last_answer_ms: i64,
    /// Whether this link carries the peer's traffic now.
    pub in_use: bool,
    /// Whether this node has silenced the link.
    pub silent: bool,
}

/// The peer list's links: an owned array (NULL when empty) and its length.
pub(crate) fn link_health_list(links: Vec<LinkHealthRecord>) -> (*mut PeatLinkHealth, usize) {
    let items: Vec<PeatLinkHealth> = links
        .into_iter()
        .map(|l| PeatLinkHealth {
            name: c_string(l.name),
            level: l.level.map(|v| v as i32).unwrap_or(-1),
            state: l.state.into(),
            rtt_us: l.rtt_us.map(|v| v as i64).unwrap_or(-1),
            rtt_var_us: l.rtt_var_us.map(|v| v as i64).unwrap_or(-1),
            loss: l.loss,
            last_answer_ms: l.last_answer_ms.map(|v| v as i64).unwrap_or(-1),
            in_use: l.in_use,
            silent: l.silent,
        })
        .collect();
    into_raw_slice(items)
}

/// Frees what [`link_health_list`] made.
///
/// # Safety
/// `items`/`len` are NULL/0 or exactly as [`link_health_list`] returned them,
/// and are freed once.
pub(crate) unsafe fn free_link_health_list(items: *mut PeatLinkHealth, len: usize) {
    // SAFETY: per this function's contract.
    let Some(items) = (unsafe { take_raw_slice(items, len) }) else {
        return;
    };
    for l in items {
        // SAFETY: a string made by `c_string` above, freed once.
        unsafe { free_c_string(l.name) };
    }
}

/// Silences the node's link `name` (emission control: it sends nothing, not
/// even probe answers; peers on it move to another link at once, each with a
/// `PEAT_EVENT_KIND_PEER_LINK_CHANGED` event) when `silent` is true, or lets
/// it speak again (it carries traffic again once its probes prove it, after
/// the hold-down if it is a better level). `PEAT_STATUS_INVALID_ARGUMENT` if
/// the node has no link of that name.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_set_link_silent(
    node: PeatNode,
    name: PeatStr,
    silent: bool,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        sdk::set_link_silent(node.id, str_arg(name, "name")?, silent)
    })
}

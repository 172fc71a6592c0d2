//! Connecting, static peers, the peer table and the node's counters.

use std::ffi::c_char;

use super::boundary::{
    c_string, call, call_out, free_c_string, into_raw_slice, opt_c_string, str_arg, string_list,
    take_raw_slice, write_opt,
};
use super::links::{free_link_health_list, link_health_list, PeatLinkHealth};
use super::types::{PeatCancel, PeatError, PeatNode, PeatPeerSource, PeatStr, PeatStringList};
use crate::records::{self, PeerState};
use crate::sdk;

/// Dials a peer ("NODEID@HOST:PORT") and waits for admission.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_connect(
    node: PeatNode,
    peer: PeatStr,
    timeout_ms: u64,
    cancel: PeatCancel,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        sdk::connect(node.id, str_arg(peer, "peer")?, timeout_ms, cancel.id)
    })
}

/// Adds a static peer ("NODEID@HOST:PORT") at runtime: dialled now and
/// re-dialled (backoff with jitter) whenever its link drops.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_add_peer(
    node: PeatNode,
    peer: PeatStr,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || sdk::add_peer(node.id, str_arg(peer, "peer")?))
}

/// Removes a static peer by node id; `*out_removed` (may be NULL) says whether
/// it was one. Its connection closes unless mDNS still wants it.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_remove_peer(
    node: PeatNode,
    peer_id: PeatStr,
    out_removed: *mut bool,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let removed = sdk::remove_peer(node.id, str_arg(peer_id, "peer_id")?)?;
        write_opt(out_removed, removed);
        Ok(())
    })
}

/// Ids of connected peers. Free with [`peat_string_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_connected_peers(
    node: PeatNode,
    out: *mut PeatStringList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let ids = sdk::peers(node.id)?
            .into_iter()
            .filter(|p| p.connected)
            .map(|p| p.id)
            .collect();
        Ok(string_list(ids))
    })
}

/// One peer in [`PeatPeerList`].
#[repr(C)]
pub struct PeatPeerInfo {
    /// Node id (64 hex digits).
    pub id: *mut c_char,
    /// True while connected.
    pub connected: bool,
    /// "HOST:PORT", or NULL if unknown.
    pub addr: *mut c_char,
    /// Round-trip time in microseconds; -1 when unknown.
    pub rtt_us: i64,
    /// Milliseconds since the Unix epoch of the last frame; -1 when never.
    pub last_seen_ms: i64,
    /// Where this node stands with the peer.
    pub state: PeatPeerState,
    /// The discoveries that want this peer: an OR of `PeatPeerSource` bits
    /// (0: none).
    pub sources: u32,
    /// Each link's health towards the peer; NULL when `links_len` is 0 (no
    /// links besides UDP). Owned by the list.
    pub links: *mut PeatLinkHealth,
    /// Number of links.
    pub links_len: usize,
    /// Sync bytes sent to the peer since this node opened (all sessions).
    pub sync_bytes_sent: u64,
    /// Sync bytes received from the peer since this node opened.
    pub sync_bytes_received: u64,
    /// Live updates waiting in the peer's sync queues now (0 when not connected).
    pub sync_queued_updates: u64,
    /// Bytes of answers queued for the peer now (0 when not connected).
    pub sync_queued_reply_bytes: u64,
}

/// Where a node stands with a peer ([`PeatPeerInfo::state`]).
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatPeerState {
    /// Admitted and syncing.
    Connected = 1,
    /// Was connected; not now.
    Disconnected = 2,
    /// Found by a discovery, not connected yet.
    Discovered = 3,
    /// Seen announcing another formation; never dialled.
    OtherFormation = 4,
}

impl From<PeerState> for PeatPeerState {
    fn from(s: PeerState) -> Self {
        match s {
            PeerState::Connected => PeatPeerState::Connected,
            PeerState::Disconnected => PeatPeerState::Disconnected,
            PeerState::Discovered => PeatPeerState::Discovered,
            PeerState::OtherFormation => PeatPeerState::OtherFormation,
        }
    }
}

/// Peers owned by the library. Free with [`peat_peer_list_free`] (which
/// accepts a zeroed list).
#[repr(C)]
pub struct PeatPeerList {
    /// `len` peers; NULL when `len` is 0.
    pub items: *mut PeatPeerInfo,
    /// Number of peers.
    pub len: usize,
}

/// Every peer seen, with state and health. Free with [`peat_peer_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_peers(
    node: PeatNode,
    out: *mut PeatPeerList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let items: Vec<PeatPeerInfo> = sdk::peers(node.id)?
            .into_iter()
            .map(|p| {
                let (links, links_len) = link_health_list(p.links);
                PeatPeerInfo {
                    id: c_string(p.id),
                    connected: p.connected,
                    addr: opt_c_string(p.addr),
                    rtt_us: p.rtt_us.map(|v| v as i64).unwrap_or(-1),
                    last_seen_ms: p.last_seen_ms.map(|v| v as i64).unwrap_or(-1),
                    state: p.state.into(),
                    sources: p
                        .sources
                        .iter()
                        .map(|s| PeatPeerSource::from(*s) as u32)
                        .fold(0, |bits, b| bits | b),
                    links,
                    links_len,
                    sync_bytes_sent: p.sync_bytes_sent,
                    sync_bytes_received: p.sync_bytes_received,
                    sync_queued_updates: p.sync_queued_updates,
                    sync_queued_reply_bytes: p.sync_queued_reply_bytes,
                }
            })
            .collect();
        let (items, len) = into_raw_slice(items);
        Ok(PeatPeerList { items, len })
    })
}

/// Frees a peer list. Accepts a zeroed list.
///
/// # Safety
/// `list` must be zeroed or exactly as returned by [`peat_node_peers`].
#[no_mangle]
pub unsafe extern "C" fn peat_peer_list_free(list: PeatPeerList) {
    // SAFETY: `items`/`len` are NULL or came from `into_raw_slice` in
    // `peat_node_peers`, and are freed once (the header's ownership rule).
    let Some(items) = (unsafe { take_raw_slice(list.items, list.len) }) else {
        return;
    };
    for p in items {
        // SAFETY: strings made by `c_string` in `peat_node_peers`, freed once.
        unsafe {
            free_c_string(p.id);
            free_c_string(p.addr);
            free_link_health_list(p.links, p.links_len);
        }
    }
}

/// The node's counters.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_stats(
    node: PeatNode,
    out: *mut records::NodeStats,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || sdk::stats(node.id))
}

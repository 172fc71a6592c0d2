//! Collection policies (JSON text in and out), garbage collection on demand
//! the node's storage counters, and bandwidth budgets (JSON text in and out)
//! with their counters.

use std::ffi::c_char;

use super::boundary::{c_string, call, call_out, str_arg, write_opt};
use super::types::{PeatError, PeatNode, PeatStr};
use crate::records::{BandwidthStatsRecord, GarbageReportRecord, StorageStatsRecord};
use crate::sdk;

/// Sets `collection`'s policy from JSON text; an empty `collection` sets the
/// default policy (every collection without its own). The fields, all
/// optional (absent: the default's value): `priority` ("critical", "high",
/// "normal", "low", "bulk"), `sync` ("full", "latest_only", "windowed" with
/// `window_secs`), `ttl_secs`, `tombstone_ttl_secs`, `max_documents`,
/// `max_bytes`, `eager_blobs`, `delete` ("delete_wins", "update_wins"),
/// `keep_until_delivered` (the storage budget never evicts a document
/// written here until a peer is known to hold its current version).
/// Unknown fields, bad values and a 1,025th collection are
/// `PEAT_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_set_policy(
    node: PeatNode,
    collection: PeatStr,
    policy_json: PeatStr,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let c = str_arg(collection, "collection")?;
        let p = str_arg(policy_json, "policy_json")?;
        sdk::node_set_policy(node.id, (!c.is_empty()).then_some(c), p)
    })
}

/// Removes `collection`'s own policy (it follows the default again);
/// `*out_removed` (may be NULL) says whether it had one.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_remove_policy(
    node: PeatNode,
    collection: PeatStr,
    out_removed: *mut bool,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let removed = sdk::node_remove_policy(node.id, str_arg(collection, "collection")?)?;
        write_opt(out_removed, removed);
        Ok(())
    })
}

/// The policy `collection` follows now, as JSON with every field. Free
/// `*out` with [`peat_string_free`](super::peat_string_free).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_policy(
    node: PeatNode,
    collection: PeatStr,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(c_string(sdk::node_policy(
            node.id,
            str_arg(collection, "collection")?,
        )?))
    })
}

/// Every policy in force as JSON (`{"default": ..., "collections": {...}}`).
/// Free `*out` with [`peat_string_free`](super::peat_string_free).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_policies(
    node: PeatNode,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(c_string(sdk::node_policies(node.id)?))
    })
}

/// Runs garbage collection now (expired documents and tombstones, retention,
/// unreferenced blobs), waiting at most `timeout_ms`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_collect_garbage(
    node: PeatNode,
    timeout_ms: u64,
    out: *mut GarbageReportRecord,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        sdk::collect_garbage(node.id, timeout_ms)
    })
}

/// What the node stores now and what its lifecycle removed or refused since
/// open (waits at most `timeout_ms`: one walk over the documents' metadata).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_storage_stats(
    node: PeatNode,
    timeout_ms: u64,
    out: *mut StorageStatsRecord,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || sdk::storage_stats(node.id, timeout_ms))
}

/// Replaces the node's bandwidth budgets from JSON text: `{"per_peer":
/// BYTES_PER_SEC, "links": {"NAME": BYTES_PER_SEC}}`, both optional (`{}`
/// lifts every limit). A link is one of the node's links by name, or
/// "socket" for its UDP socket. Every byte sent to a peer waits for the
/// peer's budget and for the budget of the link carrying it, higher classes
/// first; ephemeral messages a budget has no room for are dropped and
/// counted. A rate below 1024 bytes/s, an unknown link, an unknown field or
/// bad JSON is `PEAT_STATUS_INVALID_ARGUMENT`, and the old budgets stay.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_set_bandwidth(
    node: PeatNode,
    bandwidth_json: PeatStr,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        sdk::node_set_bandwidth(node.id, str_arg(bandwidth_json, "bandwidth_json")?)
    })
}

/// The bandwidth budgets in force, as JSON. Free `*out` with
/// [`peat_string_free`](super::peat_string_free).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_bandwidth(
    node: PeatNode,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(c_string(sdk::node_bandwidth(node.id)?))
    })
}

/// What the bandwidth budgets did since the node opened.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_bandwidth_stats(
    node: PeatNode,
    out: *mut BandwidthStatsRecord,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || sdk::node_bandwidth_stats(node.id))
}

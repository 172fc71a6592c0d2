//! Collection policies (JSON text in and out), garbage collection on demand
//! and the node's storage counters.

use std::ffi::c_char;

use super::boundary::{c_string, call, call_out, str_arg, write_opt};
use super::types::{PeatError, PeatNode, PeatStr};
use crate::records::{GarbageReportRecord, StorageStatsRecord};
use crate::sdk;

/// Sets `collection`'s policy from JSON text; an empty `collection` sets the
/// default policy (every collection without its own). The fields, all
/// optional (absent: the default's value): `priority` ("critical", "high",
/// "normal", "low", "bulk"), `sync` ("full", "latest_only", "windowed" with
/// `window_secs`), `ttl_secs`, `tombstone_ttl_secs`, `max_documents`,
/// `max_bytes`, `eager_blobs`, `delete` ("delete_wins", "update_wins").
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

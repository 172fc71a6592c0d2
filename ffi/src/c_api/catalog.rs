//! Listings of what a node holds and is doing: `peat_node_collections` and
//! `peat_blob_transfers`, with their lists.

use std::ffi::c_char;

use super::boundary::{c_string, call_out, free_c_string, into_raw_slice, str_arg, take_raw_slice};
use super::types::{PeatError, PeatNode, PeatStr};
use crate::records::{fixed_text as text, TransferProgress};
use crate::sdk;

/// A collection and its live documents. `name` is owned by the list.
#[repr(C)]
pub struct PeatCollectionInfo {
    /// The collection's name (NUL-terminated UTF-8).
    pub name: *mut c_char,
    /// Live (not deleted) documents in it.
    pub documents: u64,
}

/// Collections, owned by the library. Free with
/// [`peat_collection_list_free`].
#[repr(C)]
pub struct PeatCollectionList {
    /// `len` collections in name order; NULL when `len` is 0.
    pub items: *mut PeatCollectionInfo,
    /// Number of collections.
    pub len: usize,
}

/// `*out` receives the collections holding live documents, in name order,
/// with their counts: at most `limit` (1 to 1,024), after `after` (empty for
/// the first page; else the last name of the previous page). Walks the
/// documents of the collections it returns. Free with
/// [`peat_collection_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_collections(
    node: PeatNode,
    after: PeatStr,
    limit: usize,
    out: *mut PeatCollectionList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let after = str_arg(after, "after")?;
        let list = sdk::collections(node.id, (!after.is_empty()).then_some(after), limit)?;
        let items = list
            .into_iter()
            .map(|c| PeatCollectionInfo {
                name: c_string(c.name),
                documents: c.documents,
            })
            .collect();
        let (items, len) = into_raw_slice(items);
        Ok(PeatCollectionList { items, len })
    })
}

/// Frees a collection list and its names. Accepts a zeroed list.
///
/// # Safety
/// `list` must be zeroed or exactly as returned by [`peat_node_collections`].
#[no_mangle]
pub unsafe extern "C" fn peat_collection_list_free(list: PeatCollectionList) {
    // SAFETY: `items`/`len` are NULL or came from `into_raw_slice` in
    // `peat_node_collections`, and are freed once (the header's ownership rule).
    let Some(items) = (unsafe { take_raw_slice(list.items, list.len) }) else {
        return;
    };
    for c in items {
        // SAFETY: made by `c_string` in `peat_node_collections`, freed once.
        unsafe { free_c_string(c.name) };
    }
}

/// A blob fetch running now. Plain data: nothing inside to free.
#[repr(C)]
pub struct PeatTransferStatus {
    /// The blob's BLAKE3 hash, 64 hex digits and a NUL.
    pub hash: [c_char; 65],
    /// Its progress.
    pub progress: TransferProgress,
}

/// Running fetches, owned by the library. Free with
/// [`peat_transfer_status_list_free`].
#[repr(C)]
pub struct PeatTransferStatusList {
    /// `len` fetches in hash order; NULL when `len` is 0.
    pub items: *mut PeatTransferStatus,
    /// Number of fetches.
    pub len: usize,
}

/// `*out` receives the blob fetches running on the node now (one per blob),
/// in hash order, with their progress. Free with
/// [`peat_transfer_status_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_blob_transfers(
    node: PeatNode,
    out: *mut PeatTransferStatusList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let items = crate::blobs::blob_transfers(node.id)?
            .into_iter()
            .map(|t| PeatTransferStatus {
                hash: text(&t.hash),
                progress: t.progress,
            })
            .collect();
        let (items, len) = into_raw_slice(items);
        Ok(PeatTransferStatusList { items, len })
    })
}

/// Frees a transfer status list. Accepts a zeroed list.
///
/// # Safety
/// `list` must be zeroed or exactly as returned by [`peat_blob_transfers`].
#[no_mangle]
pub unsafe extern "C" fn peat_transfer_status_list_free(list: PeatTransferStatusList) {
    // SAFETY: `items`/`len` are NULL or came from `into_raw_slice`, freed once.
    drop(unsafe { take_raw_slice(list.items, list.len) });
}

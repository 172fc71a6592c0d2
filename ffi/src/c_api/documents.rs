//! Document writes, reads, listing and Automerge bytes.

use std::ffi::c_char;
use std::ptr;

use super::boundary::{
    bytes_arg, c_string, call, call_out, into_raw_slice, opt_c_string, out_ptr, str_arg,
    string_list,
};
use super::types::{PeatBytes, PeatError, PeatNode, PeatStr, PeatStringList};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::sdk;

/// Shared body of the JSON-writing calls (put, merge patch).
fn write_doc(
    err: *mut *mut PeatError,
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    json: PeatStr,
    write: fn(u64, &str, &str, &str) -> SdkResult<()>,
) -> i32 {
    call(err, || {
        write(
            node.id,
            str_arg(collection, "collection")?,
            str_arg(id, "id")?,
            str_arg(json, "json")?,
        )
    })
}

/// "no document c/i" (`PEAT_STATUS_NOT_FOUND`).
fn not_found(collection: &str, id: &str) -> SdkError {
    SdkError::new(
        ErrorCode::NotFound,
        format!("no document {collection}/{id}"),
    )
}

/// Writes a document (a JSON object); returns once durable.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_doc_put(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    json: PeatStr,
    err: *mut *mut PeatError,
) -> i32 {
    write_doc(err, node, collection, id, json, sdk::put)
}

/// Applies an RFC 7386 JSON merge patch; returns once durable.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_doc_merge_patch(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    json: PeatStr,
    err: *mut *mut PeatError,
) -> i32 {
    write_doc(err, node, collection, id, json, sdk::merge_patch)
}

/// Reads a document as JSON into `*out` (free with [`peat_string_free`]).
/// Returns `PEAT_STATUS_NOT_FOUND` if it does not exist.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_doc_get(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        // Not `call_out`: `*out` is NULL after any failure, NOT_FOUND included.
        let out = out_ptr(out, "out")?;
        *out = ptr::null_mut();
        let (c, i) = (str_arg(collection, "collection")?, str_arg(id, "id")?);
        let json = sdk::get(node.id, c, i)?.ok_or_else(|| not_found(c, i))?;
        *out = c_string(json);
        Ok(())
    })
}

/// Deletes a document (a tombstone that syncs). `*deleted` tells whether there was one.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_doc_delete(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    deleted: *mut bool,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, deleted, "deleted", || {
        sdk::delete(
            node.id,
            str_arg(collection, "collection")?,
            str_arg(id, "id")?,
        )
    })
}

/// Lists document ids of a collection. `after` empty for the first page; `*next`
/// receives the cursor for the next page or NULL at the end (free with
/// [`peat_string_free`]); `*ids` with [`peat_string_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn peat_doc_list(
    node: PeatNode,
    collection: PeatStr,
    prefix: PeatStr,
    after: PeatStr,
    limit: usize,
    ids: *mut PeatStringList,
    next: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let ids = out_ptr(ids, "ids")?;
        let next = out_ptr(next, "next")?;
        let after = str_arg(after, "after")?;
        let (page, cursor) = sdk::list(
            node.id,
            str_arg(collection, "collection")?,
            str_arg(prefix, "prefix")?,
            (!after.is_empty()).then_some(after),
            limit,
        )?;
        *ids = string_list(page);
        *next = opt_c_string(cursor);
        Ok(())
    })
}

/// The document's raw Automerge bytes (free with [`peat_bytes_free`]);
/// `PEAT_STATUS_NOT_FOUND` if it does not exist.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_doc_export(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    out: *mut PeatBytes,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let (c, i) = (str_arg(collection, "collection")?, str_arg(id, "id")?);
        let bytes = sdk::export(node.id, c, i)?.ok_or_else(|| not_found(c, i))?;
        let (ptr, len) = into_raw_slice(bytes);
        Ok(PeatBytes { ptr, len })
    })
}

/// Merges raw Automerge bytes (from any implementation) into a document.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_doc_import(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    bytes: *const u8,
    len: usize,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        if bytes.is_null() {
            return Err(SdkError::invalid("bytes: NULL"));
        }
        sdk::import(
            node.id,
            str_arg(collection, "collection")?,
            str_arg(id, "id")?,
            bytes_arg(bytes, len, "bytes")?,
        )
    })
}

//! The C ABI for blobs: thin wrappers over [`crate::blobs`].

use crate::blobs::{self, BlobInfoRecord, BlobStatusRecord, TransferProgress};
use crate::c_api::{
    call, cleanup_hook, out_ptr, str_arg, CleanupHook, PeatCancel, PeatError, PeatNode, PeatStr,
    PeatSubscription,
};
use crate::dispatch::{EventSink, SubEvent};
use crate::error::SdkResult;

/// A blob transfer handle. `id == 0` is never valid. Free with [`peat_transfer_free`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatTransfer {
    /// Opaque id.
    pub id: u64,
}

/// Push delivery of a transfer's progress: `on_progress` runs on the SDK's
/// dispatcher thread for every change, the last one with `finished` set. When
/// [`peat_transfer_on_progress`] succeeds, `on_drop` (may be NULL) runs exactly
/// once, after the subscription is closed; when it fails, neither function ever
/// runs and the caller still owns `ctx`.
#[repr(C)]
pub struct PeatProgressCallback {
    /// Caller's context.
    pub ctx: *mut std::ffi::c_void,
    /// Called for each progress change; the record is valid during the call.
    pub on_progress:
        Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void, progress: *const TransferProgress)>,
    /// Cleanup hook; may be NULL.
    pub on_drop: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void)>,
}

struct ProgressSink {
    ctx: *mut std::ffi::c_void,
    on_progress:
        Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void, progress: *const TransferProgress)>,
    _hook: CleanupHook,
}

// SAFETY: the header requires callbacks and their ctx to be callable from the
// SDK's dispatcher thread; the SDK never calls them from two threads at once.
unsafe impl Send for ProgressSink {}

impl EventSink for ProgressSink {
    fn on_event(&self, event: &SubEvent) {
        if let (Some(f), SubEvent::Progress(p)) = (self.on_progress, event) {
            // SAFETY: the caller's callback; `p` outlives the call.
            unsafe { f(self.ctx, p) };
        }
    }
}

fn strs<'a>(items: *const PeatStr, len: usize) -> SdkResult<Vec<&'a str>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(crate::SdkError::invalid(
            "providers: NULL with non-zero length",
        ));
    }
    // SAFETY: the caller guarantees `len` readable PeatStr values for the call.
    let items = unsafe { std::slice::from_raw_parts(items, len) };
    items.iter().map(|s| str_arg(*s, "provider")).collect()
}

/// Adds a file's contents to the node's blob store (streamed, hashed, synced).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_blob_add_file(
    node: PeatNode,
    path: PeatStr,
    timeout_ms: u64,
    cancel: PeatCancel,
    out: *mut BlobInfoRecord,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let out = out_ptr(out, "out")?;
        *out = blobs::blob_add_file(node.id, str_arg(path, "path")?, timeout_ms, cancel.id)?;
        Ok(())
    })
}

/// Starts fetching a blob (`hash`: 64 hex digits) and returns a transfer at once.
/// `providers` are node ids (`providers_len` 0: every connected peer that has
/// it); `profile` is "datacenter", "tactical" (also for "") or "edge";
/// `rate_limit` is bytes per second, 0 for none; `expected_size` is the size the
/// blob must have (a blob reference states it), 0 for unknown: a provider
/// claiming another size is not used, and when every provider does the
/// transfer ends with `PEAT_STATUS_CORRUPT` without storing anything.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_blob_fetch(
    node: PeatNode,
    hash: PeatStr,
    providers: *const PeatStr,
    providers_len: usize,
    profile: PeatStr,
    rate_limit: u64,
    expected_size: u64,
    out: *mut PeatTransfer,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let out = out_ptr(out, "out")?;
        out.id = blobs::blob_fetch(
            node.id,
            str_arg(hash, "hash")?,
            &strs(providers, providers_len)?,
            str_arg(profile, "profile")?,
            rate_limit,
            expected_size,
        )?;
        Ok(())
    })
}

/// Current progress of a transfer.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_transfer_progress(
    transfer: PeatTransfer,
    out: *mut TransferProgress,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        *out_ptr(out, "out")? = blobs::transfer_progress(transfer.id)?;
        Ok(())
    })
}

/// Waits for a transfer to end. On PEAT_STATUS_TIMEOUT the transfer goes on;
/// when `cancel` fires the transfer is cancelled (PEAT_STATUS_CANCELLED) and
/// what it verified stays for a later fetch to resume.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_transfer_wait(
    transfer: PeatTransfer,
    timeout_ms: u64,
    cancel: PeatCancel,
    out: *mut BlobInfoRecord,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        *out_ptr(out, "out")? = blobs::transfer_wait(transfer.id, timeout_ms, cancel.id)?;
        Ok(())
    })
}

/// Cancels a transfer; the handle stays valid until freed.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_transfer_cancel(
    transfer: PeatTransfer,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || blobs::transfer_cancel(transfer.id))
}

/// Frees a transfer handle; a running transfer goes on (cancel it first to stop
/// it). A zeroed handle (`{0}`) is accepted and does nothing; freeing twice is
/// `PEAT_STATUS_INVALID_HANDLE`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_transfer_free(
    transfer: PeatTransfer,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || blobs::transfer_free(transfer.id))
}

/// Pushes a transfer's progress to `callback`. Close the returned subscription
/// with `peat_subscription_close`. On failure `on_drop` is not called and the
/// caller keeps ownership of `ctx`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_transfer_on_progress(
    transfer: PeatTransfer,
    callback: PeatProgressCallback,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    let (hook, arming) = cleanup_hook(callback.on_drop, callback.ctx);
    let sink = Box::new(ProgressSink {
        ctx: callback.ctx,
        on_progress: callback.on_progress,
        _hook: hook,
    });
    arming.settle(call(err, || {
        let out = out_ptr(out, "out")?;
        out.id = blobs::transfer_subscribe_progress(transfer.id, sink)?;
        Ok(())
    }))
}

/// Copies a complete blob to `path` (synced, renamed into place); `*out_size`
/// receives its size (may be NULL).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_blob_export(
    node: PeatNode,
    hash: PeatStr,
    path: PeatStr,
    timeout_ms: u64,
    cancel: PeatCancel,
    out_size: *mut u64,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let n = blobs::blob_export(
            node.id,
            str_arg(hash, "hash")?,
            str_arg(path, "path")?,
            timeout_ms,
            cancel.id,
        )?;
        // SAFETY: a non-NULL out-pointer points to a writable u64.
        if let Some(o) = unsafe { out_size.as_mut() } {
            *o = n;
        }
        Ok(())
    })
}

/// Throws away the partial download of a blob (what earlier fetches verified),
/// so that the next fetch starts from nothing; `*out_had` (may be NULL) is set
/// to whether there was one. A complete blob is never touched. While a fetch of
/// the blob is running this fails with `PEAT_STATUS_INVALID_ARGUMENT`: cancel
/// it and wait for it to end first.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_blob_discard_partial(
    node: PeatNode,
    hash: PeatStr,
    out_had: *mut bool,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let had = blobs::blob_discard_partial(node.id, str_arg(hash, "hash")?)?;
        // SAFETY: a non-NULL out-pointer points to a writable bool.
        if let Some(o) = unsafe { out_had.as_mut() } {
            *o = had;
        }
        Ok(())
    })
}

/// How much of a blob is here: state 0 missing, 1 partial, 2 complete.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_blob_status(
    node: PeatNode,
    hash: PeatStr,
    out: *mut BlobStatusRecord,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        *out_ptr(out, "out")? = blobs::blob_status(node.id, str_arg(hash, "hash")?)?;
        Ok(())
    })
}

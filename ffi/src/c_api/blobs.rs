//! The C ABI for blobs: thin wrappers over [`crate::blobs`].

use std::ffi::c_void;

use super::boundary::{call, call_out, out_ptr, str_arg, str_list_arg, write_opt};
use super::hook::{call_with_callback, CallbackStruct, CleanupHook, OnDrop};
use super::types::{PeatCancel, PeatError, PeatNode, PeatStr, PeatSubscription};
use crate::blobs;
use crate::dispatch::EventSink;
use crate::error::{SdkError, SdkResult};
use crate::records::{
    BlobInfoRecord, BlobStatusRecord, SubEvent, TransferProfile, TransferProgress,
};

/// How a blob fetch uses the network ([`peat_blob_fetch`]'s `profile`; 0, the
/// default, is `PEAT_TRANSFER_PROFILE_TACTICAL`).
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatTransferProfile {
    /// Lossy, shared links (the default).
    Tactical = 0,
    /// Fast, reliable links.
    Datacenter = 1,
    /// Slow, intermittent links.
    Edge = 2,
}

/// A `PeatTransferProfile` passed as an `int32_t`: any other value is an
/// invalid argument (never a Rust enum made of an unchecked C integer).
fn profile_arg(p: i32) -> SdkResult<TransferProfile> {
    const TACTICAL: i32 = PeatTransferProfile::Tactical as i32;
    const DATACENTER: i32 = PeatTransferProfile::Datacenter as i32;
    const EDGE: i32 = PeatTransferProfile::Edge as i32;
    match p {
        TACTICAL => Ok(TransferProfile::Tactical),
        DATACENTER => Ok(TransferProfile::Datacenter),
        EDGE => Ok(TransferProfile::Edge),
        _ => Err(SdkError::invalid(format!(
            "profile {p} is not a PeatTransferProfile"
        ))),
    }
}

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
    ctx: *mut c_void,
    on_progress: Option<unsafe extern "C" fn(ctx: *mut c_void, progress: *const TransferProgress)>,
    _hook: CleanupHook,
}

// SAFETY: the header requires callbacks and their ctx to be callable from the
// SDK's dispatcher thread; the SDK never calls them from two threads at once.
unsafe impl Send for ProgressSink {}

impl CallbackStruct for PeatProgressCallback {
    fn cleanup(&self) -> (OnDrop, *mut c_void) {
        (self.on_drop, self.ctx)
    }

    fn into_sink(self, hook: CleanupHook) -> Box<dyn EventSink> {
        Box::new(ProgressSink {
            ctx: self.ctx,
            on_progress: self.on_progress,
            _hook: hook,
        })
    }
}

impl EventSink for ProgressSink {
    fn on_event(&self, event: &SubEvent) {
        if let (Some(f), SubEvent::Progress(p)) = (self.on_progress, event) {
            // SAFETY: the caller's callback; `p` outlives the call.
            unsafe { f(self.ctx, p) };
        }
    }
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
    call_out(err, out, "out", || {
        blobs::blob_add_file(node.id, str_arg(path, "path")?, timeout_ms, cancel.id)
    })
}

/// Starts fetching a blob (`hash`: 64 hex digits) and returns a transfer at once.
/// `providers` are node ids (`providers_len` 0: every connected peer that has
/// it); `profile` is a `PeatTransferProfile` (0: tactical, the default);
/// `rate_limit` is bytes per second, 0 for none; `expected_size` is the size the
/// blob must have (a blob reference states it), 0 for unknown: a provider
/// claiming another size is not used, and when every provider does the
/// transfer ends with `PEAT_STATUS_CORRUPT` without storing anything.
/// `priority` is the transfer's class: "critical", "high", "normal", "low"
/// or "bulk" (empty: bulk, the default); providers send its pieces in that
/// class (never above normal: the higher classes are for documents), so under a bandwidth
/// budget a higher-class fetch overtakes a bulk one. Another name is
/// `PEAT_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_blob_fetch(
    node: PeatNode,
    hash: PeatStr,
    providers: *const PeatStr,
    providers_len: usize,
    profile: i32,
    rate_limit: u64,
    expected_size: u64,
    priority: PeatStr,
    out: *mut PeatTransfer,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let id = blobs::blob_fetch(
            node.id,
            str_arg(hash, "hash")?,
            &str_list_arg(providers, providers_len, "providers", "provider")?,
            profile_arg(profile)?,
            rate_limit,
            expected_size,
            str_arg(priority, "priority")?,
        )?;
        Ok(PeatTransfer { id })
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
    call_out(err, out, "out", || blobs::transfer_progress(transfer.id))
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
    call_out(err, out, "out", || {
        blobs::transfer_wait(transfer.id, timeout_ms, cancel.id)
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
    call_with_callback(err, callback, |sink| {
        let out = out_ptr(out, "out")?;
        out.id = blobs::transfer_subscribe_progress(transfer.id, sink)?;
        Ok(())
    })
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
        write_opt(out_size, n);
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
        write_opt(out_had, had);
        Ok(())
    })
}

/// How much of a blob is here (`state`: a `PeatBlobState`).
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
    call_out(err, out, "out", || {
        blobs::blob_status(node.id, str_arg(hash, "hash")?)
    })
}

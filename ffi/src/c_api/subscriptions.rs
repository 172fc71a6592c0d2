//! Subscriptions, polled ([`peat_subscription_next`]) or pushed to a
//! [`PeatCallback`], and the log callback.

use std::ffi::{c_char, c_void, CString};

use super::boundary::{call, call_out, out_ptr, str_arg};
use super::events::{free_event_strings, to_c_event, PeatEvent};
use super::hook::{call_with_callback, CallbackStruct, CleanupHook, OnDrop};
use super::types::{PeatError, PeatNode, PeatStr, PeatSubscription};
use crate::dispatch::EventSink;
use crate::error::{ErrorCode, SdkError};
use crate::records::SubEvent;
use crate::sdk;

/// Push delivery of a subscription's events. `on_event` runs on the SDK's
/// dispatcher thread (never a runtime worker), one event at a time, in order; it
/// may call any SDK function. The event and its strings are valid only during the
/// call. `ctx` is passed back unchanged.
///
/// Ownership of `ctx`: when the call that takes the callback succeeds, `on_drop`
/// (may be NULL) runs exactly once, after the subscription is closed and the last
/// `on_event` has returned. When that call fails, neither `on_event` nor
/// `on_drop` ever runs and the caller still owns `ctx` (free it yourself).
#[repr(C)]
pub struct PeatCallback {
    /// Caller's context.
    pub ctx: *mut std::ffi::c_void,
    /// Called for each event.
    pub on_event: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void, event: *const PeatEvent)>,
    /// Cleanup hook; may be NULL.
    pub on_drop: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void)>,
}

/// Receives the SDK's log records (level 1 error … 5 trace) on the dispatcher
/// thread; strings are valid only during the call. When
/// [`peat_log_set_callback`] succeeds, `on_drop` (may be NULL) runs exactly once,
/// when the callback is replaced or cleared; when it fails, neither function ever
/// runs and the caller still owns `ctx`.
#[repr(C)]
pub struct PeatLogCallback {
    /// Caller's context.
    pub ctx: *mut std::ffi::c_void,
    /// Called for each record.
    pub on_log: Option<
        unsafe extern "C" fn(
            ctx: *mut std::ffi::c_void,
            level: i32,
            target: *const c_char,
            message: *const c_char,
        ),
    >,
    /// Cleanup hook; may be NULL.
    pub on_drop: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void)>,
}

/// Readiness of a queued subscription ([`peat_doc_subscribe_queued`],
/// [`peat_peer_subscribe_queued`]): `on_ready` runs on the SDK's dispatcher
/// thread when events wait to be read, and once more when the subscription
/// has ended on its own (its node closed). After it, read with
/// [`peat_subscription_next`] and `timeout_ms` 0 until it returns
/// `PEAT_STATUS_TIMEOUT` (none left; only then does `on_ready` run again) or
/// `PEAT_STATUS_CLOSED` (the end). `on_ready` may call any SDK function; it
/// should not wait long, since every subscription's callbacks share the
/// dispatcher. `on_drop` (may be NULL) runs exactly once, after the
/// subscription is closed, when the call taking the callback succeeded; when
/// it fails, neither function ever runs and the caller still owns `ctx`.
#[repr(C)]
pub struct PeatReadyCallback {
    /// Caller's context.
    pub ctx: *mut std::ffi::c_void,
    /// Called when events wait, and at the end.
    pub on_ready: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void)>,
    /// Cleanup hook; may be NULL.
    pub on_drop: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void)>,
}

/// A C callback as an [`EventSink`]; its cleanup hook runs when it is dropped
/// after a successful subscribe.
struct CSink {
    ctx: *mut c_void,
    on_event: Option<unsafe extern "C" fn(ctx: *mut c_void, event: *const PeatEvent)>,
    _hook: CleanupHook,
}

// SAFETY: the header requires callbacks and their ctx to be callable from the
// SDK's dispatcher thread; the SDK never calls them from two threads at once.
unsafe impl Send for CSink {}

impl CallbackStruct for PeatCallback {
    fn cleanup(&self) -> (OnDrop, *mut c_void) {
        (self.on_drop, self.ctx)
    }

    fn into_sink(self, hook: CleanupHook) -> Box<dyn EventSink> {
        Box::new(CSink {
            ctx: self.ctx,
            on_event: self.on_event,
            _hook: hook,
        })
    }
}

impl EventSink for CSink {
    fn on_event(&self, event: &SubEvent) {
        let Some(f) = self.on_event else { return };
        let mut ev = to_c_event(event);
        // SAFETY: `f` is the caller's callback; `ev` lives until after it returns.
        unsafe { f(self.ctx, &ev) };
        // SAFETY: the strings in `ev` were made by `to_c_event` and are freed once.
        unsafe { free_event_strings(&mut ev) };
    }
}

type OnLog = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        level: i32,
        target: *const c_char,
        message: *const c_char,
    ),
>;

struct CLogSink {
    ctx: *mut c_void,
    on_log: OnLog,
    _hook: CleanupHook,
}

// SAFETY: as for CSink.
unsafe impl Send for CLogSink {}

impl CallbackStruct for PeatLogCallback {
    fn cleanup(&self) -> (OnDrop, *mut c_void) {
        (self.on_drop, self.ctx)
    }

    fn into_sink(self, hook: CleanupHook) -> Box<dyn EventSink> {
        Box::new(CLogSink {
            ctx: self.ctx,
            on_log: self.on_log,
            _hook: hook,
        })
    }
}

impl EventSink for CLogSink {
    fn on_event(&self, event: &SubEvent) {
        if let (
            Some(f),
            SubEvent::Log {
                level,
                target,
                message,
            },
        ) = (self.on_log, event)
        {
            let t = CString::new(target.replace('\0', " ")).unwrap_or_default();
            let m = CString::new(message.replace('\0', " ")).unwrap_or_default();
            // SAFETY: the caller's callback; the strings outlive the call.
            unsafe { f(self.ctx, *level as i32, t.as_ptr(), m.as_ptr()) };
        }
    }
}

/// A [`PeatReadyCallback`] as an [`EventSink`]: the ready signal and the end
/// both call `on_ready`.
struct ReadySink {
    ctx: *mut c_void,
    on_ready: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
    _hook: CleanupHook,
}

// SAFETY: as for CSink.
unsafe impl Send for ReadySink {}

impl CallbackStruct for PeatReadyCallback {
    fn cleanup(&self) -> (OnDrop, *mut c_void) {
        (self.on_drop, self.ctx)
    }

    fn into_sink(self, hook: CleanupHook) -> Box<dyn EventSink> {
        Box::new(ReadySink {
            ctx: self.ctx,
            on_ready: self.on_ready,
            _hook: hook,
        })
    }
}

impl EventSink for ReadySink {
    fn on_event(&self, event: &SubEvent) {
        if let (Some(f), SubEvent::Ready | SubEvent::Closed) = (self.on_ready, event) {
            // SAFETY: the caller's callback with its own ctx.
            unsafe { f(self.ctx) };
        }
    }
}

/// Subscribes to a collection (`id` empty) or one document. With `snapshot`,
/// current documents arrive first.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_doc_subscribe(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    snapshot: bool,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let id = str_arg(id, "id")?;
        let id = sdk::subscribe_docs(
            node.id,
            str_arg(collection, "collection")?,
            (!id.is_empty()).then_some(id),
            snapshot,
        )?;
        Ok(PeatSubscription { id })
    })
}

/// Subscribes to peer events.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_peer_subscribe(
    node: PeatNode,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(PeatSubscription {
            id: sdk::subscribe_peers(node.id)?,
        })
    })
}

/// Waits up to `timeout_ms` for the next event of a subscription. Returns
/// `PEAT_STATUS_TIMEOUT` when none came, `PEAT_STATUS_CLOSED` once the subscription or its node
/// has closed and every event was read. Free the event with [`peat_event_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_subscription_next(
    sub: PeatSubscription,
    timeout_ms: u64,
    out: *mut PeatEvent,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let ev = sdk::next_event(sub.id, timeout_ms)?
            .ok_or_else(|| SdkError::new(ErrorCode::Timeout, "no event within the timeout"))?;
        Ok(to_c_event(&ev))
    })
}

/// Subscribes to a collection (`id` empty) or one document with push delivery
/// to `callback` (see [`PeatCallback`]). Close it with [`peat_subscription_close`];
/// `on_drop` runs exactly once after that. On failure `on_drop` is not called and
/// the caller keeps ownership of `ctx`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_doc_subscribe_callback(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    snapshot: bool,
    callback: PeatCallback,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call_with_callback(err, callback, |sink| {
        let out = out_ptr(out, "out")?;
        let id = str_arg(id, "id")?;
        out.id = sdk::subscribe_docs_push(
            node.id,
            str_arg(collection, "collection")?,
            (!id.is_empty()).then_some(id),
            snapshot,
            sink,
        )?;
        Ok(())
    })
}

/// Subscribes to peer events with push delivery to `callback` (see
/// [`PeatCallback`]). On failure `on_drop` is not called and the caller keeps
/// ownership of `ctx`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_peer_subscribe_callback(
    node: PeatNode,
    callback: PeatCallback,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call_with_callback(err, callback, |sink| {
        let out = out_ptr(out, "out")?;
        out.id = sdk::subscribe_peers_push(node.id, sink)?;
        Ok(())
    })
}

/// Subscribes to a collection (`id` empty) or one document, queued: the events
/// wait in a queue the library bounds to `capacity` (0 for 256; at most 65536,
/// more is `PEAT_STATUS_INVALID_ARGUMENT`), read with
/// [`peat_subscription_next`]; `callback` says when to read (see
/// [`PeatReadyCallback`]). Past `capacity` the oldest waiting event is dropped
/// and the next event read is `PEAT_EVENT_KIND_LAGGED` with the count;
/// snapshot events are never dropped. For a binding that hands events to a
/// reader of its own without blocking the dispatcher (a Go channel). Close it
/// with [`peat_subscription_close`]; on failure `on_drop` is not called and the
/// caller keeps ownership of `ctx`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn peat_doc_subscribe_queued(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    snapshot: bool,
    capacity: usize,
    callback: PeatReadyCallback,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call_with_callback(err, callback, |ready| {
        let out = out_ptr(out, "out")?;
        let id = str_arg(id, "id")?;
        out.id = sdk::subscribe_docs_queued(
            node.id,
            str_arg(collection, "collection")?,
            (!id.is_empty()).then_some(id),
            snapshot,
            capacity,
            ready,
        )?;
        Ok(())
    })
}

/// Subscribes to peer events, queued; see [`peat_doc_subscribe_queued`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_peer_subscribe_queued(
    node: PeatNode,
    capacity: usize,
    callback: PeatReadyCallback,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call_with_callback(err, callback, |ready| {
        let out = out_ptr(out, "out")?;
        out.id = sdk::subscribe_peers_queued(node.id, capacity, ready)?;
        Ok(())
    })
}

/// Sends the SDK's log records at `max_level` (1 error … 5 trace) and more
/// severe to `callback`, replacing any previous log callback (whose `on_drop`
/// then runs).
///
/// Refused, before anything is installed, with `PEAT_STATUS_INVALID_ARGUMENT`
/// when the process already has another global `tracing` subscriber (the SDK's
/// records go there) and with `PEAT_STATUS_SHUT_DOWN` after [`peat_shutdown`].
/// On failure the previous callback stays, this callback's `on_drop` is not
/// called and the caller keeps ownership of its `ctx`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_log_set_callback(
    callback: PeatLogCallback,
    max_level: i32,
    err: *mut *mut PeatError,
) -> i32 {
    call_with_callback(err, callback, |sink| {
        crate::log::set_log_sink(sink, max_level.clamp(0, 5) as u8)
    })
}

/// Stops forwarding logs (the callback's `on_drop` runs).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_log_clear_callback(err: *mut *mut PeatError) -> i32 {
    call(err, || {
        crate::log::clear_log_sink();
        Ok(())
    })
}

/// Ends a subscription and frees its handle.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_subscription_close(
    sub: PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || sdk::unsubscribe(sub.id))
}

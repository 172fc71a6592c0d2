//! The C ABI over [`crate::sdk`]. See `include/peat_mesh.h` for the ownership rule.
//!
//! Every function returns a status ([`ErrorCode`] as `int32_t`, 0 on success)
//! and, on failure, stores an owned [`PeatError`] in `*err` when `err` is not
//! NULL. Panics are caught at the boundary and reported as `PEAT_STATUS_INTERNAL`.

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use crate::dispatch::{EventSink, SubEvent};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::sdk::{self, DocEventRecord, NodeOptions, PeerEventRecord};

/// Version of this C ABI; bumped on any incompatible change.
pub const PEAT_ABI_VERSION: u32 = 4;

/// An error returned by the library. Free with [`peat_error_free`].
pub struct PeatError {
    code: i32,
    message: CString,
}

/// A borrowed UTF-8 string: `ptr` may be NULL only when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatStr {
    /// First byte (need not be NUL-terminated).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// Bytes owned by the library. Free with [`peat_bytes_free`] (which accepts a
/// zeroed value).
#[repr(C)]
pub struct PeatBytes {
    /// First byte; NULL when `len` is 0.
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
}

/// A list of NUL-terminated strings owned by the library. Free with
/// [`peat_string_list_free`] (which accepts a zeroed list).
#[repr(C)]
pub struct PeatStringList {
    /// `len` strings; NULL when `len` is 0.
    pub items: *mut *mut c_char,
    /// Number of strings.
    pub len: usize,
}

/// A node handle. `id == 0` is never valid.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatNode {
    /// Opaque id.
    pub id: u64,
}

/// A subscription handle (documents or peer events). `id == 0` is never valid.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatSubscription {
    /// Opaque id.
    pub id: u64,
}

/// A cancel token for long operations; `id == 0` means "no token".
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatCancel {
    /// Opaque id.
    pub id: u64,
}

/// Options for [`peat_node_open`].
#[repr(C)]
pub struct PeatNodeOptions {
    /// Data directory (created if missing).
    pub data_dir: PeatStr,
    /// Public formation id.
    pub formation_id: PeatStr,
    /// Pointer to the 32-byte formation secret; all zeros is refused
    /// (`PEAT_STATUS_INVALID_ARGUMENT`). Make one with
    /// [`peat_formation_secret_generate`].
    pub formation_secret: *const u8,
    /// Must be 32.
    pub formation_secret_len: usize,
    /// Listen address such as "127.0.0.1:0"; empty for "0.0.0.0:0".
    pub listen: PeatStr,
    /// Static peers as "NODEID@HOST:PORT"; may be NULL when `peers_len` is 0.
    pub peers: *const PeatStr,
    /// Number of peers.
    pub peers_len: usize,
    /// Announce and discover peers of the formation on the LAN by mDNS.
    pub mdns: bool,
}

/// Event kinds in [`PeatEvent::kind`].
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatEventKind {
    /// A document changed: `collection`, `id`, `json`, `origin` are set.
    DocChanged = 1,
    /// A document was deleted: `collection`, `id`, `origin` are set.
    DocDeleted = 2,
    /// `lagged` events were dropped because the reader fell behind.
    Lagged = 3,
    /// A peer connected: `peer` is set.
    PeerConnected = 4,
    /// A peer disconnected: `peer` and `reason` are set.
    PeerDisconnected = 5,
    /// Admission failed: `peer` and `reason` are set.
    PeerAdmissionRefused = 6,
    /// The subscription ended on its own (its node closed); nothing follows.
    /// Only delivered to callbacks.
    Closed = 7,
    /// A discovery found a peer: `peer` is set, `reason` names the discovery
    /// (`static`, `mdns`, `direct`).
    PeerDiscovered = 8,
    /// A discovery no longer sees a peer: `peer` and `reason` (the discovery) are set.
    PeerLost = 9,
    /// mDNS saw a node of another formation (not dialled): `peer` is set.
    PeerOtherFormation = 10,
    /// Not about a peer (`peer` is NULL): this node's store failed a commit (a
    /// full disk, an I/O error) and refuses every write with `PEAT_STATUS_IO`
    /// until the node is closed and reopened; `reason` is the store's error.
    /// Delivered once, to peer-event subscriptions.
    StorageFailed = 11,
}

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

/// The caller's cleanup hook (`on_drop` with its `ctx`), shared between the sink
/// that holds it and the call that took it. It runs exactly once, and only if
/// that call succeeded: a sink dropped while the call is still settling (or
/// because it failed) leaves the hook to [`HookArming::settle`].
struct HookShared {
    state: std::sync::Mutex<HookState>,
    on_drop: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void)>,
    ctx: *mut std::ffi::c_void,
}

// SAFETY: the header requires `on_drop` and its ctx to be callable from any
// thread (the dispatcher or the one closing the subscription); the state mutex
// makes sure it is called at most once.
unsafe impl Send for HookShared {}
// SAFETY: as above; the raw ctx is only passed back to the caller's hook.
unsafe impl Sync for HookShared {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HookState {
    /// The call is running.
    Pending,
    /// The call succeeded: the sink's drop runs the hook.
    Armed,
    /// The sink was dropped while the call was running.
    DroppedPending,
    /// Ran, or never will (the call failed).
    Done,
}

impl HookShared {
    fn run(&self) {
        if let Some(f) = self.on_drop {
            // SAFETY: the caller's cleanup hook, called at most once (the state
            // moved to Done under the lock before this call).
            unsafe { f(self.ctx) };
        }
    }
}

/// Held by the sink: dropping it runs the hook once the call has succeeded.
pub(crate) struct CleanupHook(std::sync::Arc<HookShared>);

/// Held by the call that takes a callback; [`HookArming::settle`] with its
/// outcome decides whether the hook may ever run.
pub(crate) struct HookArming(Option<std::sync::Arc<HookShared>>);

/// A cleanup hook for `on_drop(ctx)`, pending until the call settles it.
pub(crate) fn cleanup_hook(
    on_drop: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void)>,
    ctx: *mut std::ffi::c_void,
) -> (CleanupHook, HookArming) {
    let shared = std::sync::Arc::new(HookShared {
        state: std::sync::Mutex::new(HookState::Pending),
        on_drop,
        ctx,
    });
    (CleanupHook(shared.clone()), HookArming(Some(shared)))
}

impl Drop for CleanupHook {
    fn drop(&mut self) {
        let run = {
            let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
            match *st {
                HookState::Armed => {
                    *st = HookState::Done;
                    true
                }
                HookState::Pending => {
                    *st = HookState::DroppedPending;
                    false
                }
                HookState::DroppedPending | HookState::Done => false,
            }
        };
        if run {
            self.0.run();
        }
    }
}

impl HookArming {
    /// Settles the call: on success (`status == 0`) the hook runs when the sink
    /// is dropped (now, if it already was); on failure it never runs.
    pub(crate) fn settle(mut self, status: i32) -> i32 {
        if let Some(shared) = self.0.take() {
            let run = {
                let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
                let (next, run) = match (*st, status == 0) {
                    (HookState::Pending, true) => (HookState::Armed, false),
                    (HookState::DroppedPending, true) => (HookState::Done, true),
                    (HookState::Armed, _) | (HookState::Done, _) => (*st, false),
                    (_, false) => (HookState::Done, false),
                };
                *st = next;
                run
            };
            if run {
                shared.run();
            }
        }
        status
    }
}

impl Drop for HookArming {
    fn drop(&mut self) {
        // Not settled (a panic on the way): treat as failed, never run the hook.
        if let Some(shared) = self.0.take() {
            *shared.state.lock().unwrap_or_else(|p| p.into_inner()) = HookState::Done;
        }
    }
}

/// A C callback as an [`EventSink`]; its cleanup hook runs when it is dropped
/// after a successful subscribe.
struct CSink {
    ctx: *mut std::ffi::c_void,
    on_event: Option<unsafe extern "C" fn(ctx: *mut std::ffi::c_void, event: *const PeatEvent)>,
    _hook: CleanupHook,
}

// SAFETY: the header requires callbacks and their ctx to be callable from the
// SDK's dispatcher thread; the SDK never calls them from two threads at once.
unsafe impl Send for CSink {}

impl CSink {
    fn new(cb: PeatCallback) -> (Box<Self>, HookArming) {
        let (hook, arming) = cleanup_hook(cb.on_drop, cb.ctx);
        let sink = CSink {
            ctx: cb.ctx,
            on_event: cb.on_event,
            _hook: hook,
        };
        (Box::new(sink), arming)
    }
}

impl EventSink for CSink {
    fn on_event(&self, event: &SubEvent) {
        let Some(f) = self.on_event else { return };
        let mut ev = to_c_event(event);
        // SAFETY: `f` is the caller's callback; `ev` lives until after it returns.
        unsafe { f(self.ctx, &ev) };
        // SAFETY: the strings in `ev` were made by `to_c_event` and are freed once.
        unsafe { peat_event_free(&mut ev) };
    }
}

struct CLogSink {
    ctx: *mut std::ffi::c_void,
    on_log: Option<
        unsafe extern "C" fn(
            ctx: *mut std::ffi::c_void,
            level: i32,
            target: *const c_char,
            message: *const c_char,
        ),
    >,
    _hook: CleanupHook,
}

// SAFETY: as for CSink.
unsafe impl Send for CLogSink {}

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

fn to_c_event(event: &SubEvent) -> PeatEvent {
    match event {
        SubEvent::Doc(d) => doc_event(d.clone()),
        SubEvent::Peer(p) => peer_event(p.clone()),
        SubEvent::Closed | SubEvent::Log { .. } | SubEvent::Progress(_) => {
            empty_event(PeatEventKind::Closed)
        }
    }
}

fn doc_event(e: DocEventRecord) -> PeatEvent {
    match e {
        DocEventRecord::Changed {
            collection,
            id,
            json,
            origin,
        } => {
            let mut ev = empty_event(if json.is_some() {
                PeatEventKind::DocChanged
            } else {
                PeatEventKind::DocDeleted
            });
            ev.collection = c_string(collection);
            ev.id = c_string(id);
            ev.json = opt_c_string(json);
            ev.origin = c_string(origin);
            ev
        }
        DocEventRecord::Lagged(n) => {
            let mut ev = empty_event(PeatEventKind::Lagged);
            ev.lagged = n;
            ev
        }
    }
}

fn peer_event(e: PeerEventRecord) -> PeatEvent {
    let (kind, peer, reason) = match e {
        PeerEventRecord::Connected { peer } => (PeatEventKind::PeerConnected, Some(peer), None),
        PeerEventRecord::Disconnected { peer, reason } => {
            (PeatEventKind::PeerDisconnected, Some(peer), Some(reason))
        }
        PeerEventRecord::AdmissionRefused { peer, reason } => (
            PeatEventKind::PeerAdmissionRefused,
            Some(peer),
            Some(reason),
        ),
        PeerEventRecord::Discovered { peer, source } => {
            (PeatEventKind::PeerDiscovered, Some(peer), Some(source))
        }
        PeerEventRecord::Lost { peer, source } => {
            (PeatEventKind::PeerLost, Some(peer), Some(source))
        }
        PeerEventRecord::SeenOtherFormation { peer } => {
            (PeatEventKind::PeerOtherFormation, Some(peer), None)
        }
        PeerEventRecord::StorageFailed { reason } => {
            (PeatEventKind::StorageFailed, None, Some(reason))
        }
        PeerEventRecord::Lagged(n) => {
            let mut ev = empty_event(PeatEventKind::Lagged);
            ev.lagged = n;
            return ev;
        }
    };
    let mut ev = empty_event(kind);
    ev.peer = opt_c_string(peer);
    ev.reason = opt_c_string(reason);
    ev
}

/// One event. String fields not used by the kind are NULL. Free the strings
/// with [`peat_event_free`].
#[repr(C)]
pub struct PeatEvent {
    /// What happened.
    pub kind: PeatEventKind,
    /// Collection (document events).
    pub collection: *mut c_char,
    /// Document id (document events).
    pub id: *mut c_char,
    /// New content as JSON (DocChanged).
    pub json: *mut c_char,
    /// "snapshot", "local" or a peer's node id (document events).
    pub origin: *mut c_char,
    /// Peer node id (peer events; NULL for StorageFailed).
    pub peer: *mut c_char,
    /// Reason (disconnects, refusals, StorageFailed) or the discovery
    /// (PeerDiscovered, PeerLost).
    pub reason: *mut c_char,
    /// Dropped event count (Lagged).
    pub lagged: u64,
}

fn set_err(err: *mut *mut PeatError, e: &SdkError) -> i32 {
    if !err.is_null() {
        let message = CString::new(e.to_string().replace('\0', " ")).unwrap_or_default();
        let boxed = Box::new(PeatError {
            code: e.code as i32,
            message,
        });
        // SAFETY: `err` is non-NULL and, per the header, points to writable storage
        // for one pointer owned by the caller.
        unsafe { *err = Box::into_raw(boxed) };
    }
    e.code as i32
}

/// Runs `f`, catching panics, and turns its result into a status code.
pub(crate) fn call(err: *mut *mut PeatError, f: impl FnOnce() -> SdkResult<()>) -> i32 {
    if !err.is_null() {
        // SAFETY: non-NULL `err` points to caller-owned storage for one pointer.
        unsafe { *err = ptr::null_mut() };
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => set_err(err, &e),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            set_err(
                err,
                &SdkError::new(ErrorCode::Internal, format!("panic in SDK: {msg}")),
            )
        }
    }
}

pub(crate) fn str_arg<'a>(s: PeatStr, what: &str) -> SdkResult<&'a str> {
    if s.ptr.is_null() {
        return if s.len == 0 {
            Ok("")
        } else {
            Err(SdkError::invalid(format!(
                "{what}: NULL pointer with non-zero length"
            )))
        };
    }
    // SAFETY: the caller guarantees `ptr` points to `len` readable bytes for the
    // duration of this call (borrowed input, see the header).
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    std::str::from_utf8(bytes).map_err(|_| SdkError::invalid(format!("{what}: not valid UTF-8")))
}

pub(crate) fn out_ptr<'a, T>(p: *mut T, what: &str) -> SdkResult<&'a mut T> {
    // SAFETY: a non-NULL out-pointer points to caller-owned writable storage for one T.
    unsafe { p.as_mut() }.ok_or_else(|| SdkError::invalid(format!("{what}: NULL out-pointer")))
}

fn c_string(s: String) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

fn opt_c_string(s: Option<String>) -> *mut c_char {
    s.map(c_string).unwrap_or(ptr::null_mut())
}

/// Hands a vector to C as (pointer, length): a boxed slice, or (NULL, 0) when empty.
/// Taken back only by [`take_raw_slice`].
fn into_raw_slice<T>(v: Vec<T>) -> (*mut T, usize) {
    if v.is_empty() {
        return (ptr::null_mut(), 0);
    }
    let b = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b) as *mut T, len)
}

/// Takes back what [`into_raw_slice`] handed out; `None` for a NULL pointer.
///
/// # Safety
/// `p`/`len` must be NULL or exactly a pair returned by [`into_raw_slice`], not
/// yet taken back.
unsafe fn take_raw_slice<T>(p: *mut T, len: usize) -> Option<Box<[T]>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per this function's contract, `p`/`len` came from Box::into_raw of
    // a boxed slice of exactly `len` elements and are taken back once.
    Some(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, len)) })
}

fn string_list(v: Vec<String>) -> PeatStringList {
    let (items, len) = into_raw_slice(v.into_iter().map(c_string).collect());
    PeatStringList { items, len }
}

/// The C ABI version ([`PEAT_ABI_VERSION`]).
#[no_mangle]
pub extern "C" fn peat_abi_version() -> u32 {
    PEAT_ABI_VERSION
}

/// Writes a new random formation secret to `out` (`out_len` must be 32): 32
/// bytes from a cryptographically secure generator, never all zeros. Share it
/// with the formation's nodes out of band, and keep it off command lines.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_formation_secret_generate(
    out: *mut u8,
    out_len: usize,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        if out.is_null() {
            return Err(SdkError::invalid("out: NULL out-pointer"));
        }
        if out_len != 32 {
            return Err(SdkError::invalid(format!(
                "out_len is {out_len}: a formation secret is 32 bytes"
            )));
        }
        let secret = zeroize::Zeroizing::new(sdk::generate_formation_secret());
        // SAFETY: `out` is non-NULL and, per the header, points to `out_len` (32)
        // writable bytes owned by the caller.
        unsafe { std::slice::from_raw_parts_mut(out, 32) }.copy_from_slice(&*secret);
        Ok(())
    })
}

/// Sets the SDK runtime's worker count (1–16) before first use.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_runtime_configure(workers: u32, err: *mut *mut PeatError) -> i32 {
    call(err, || crate::runtime::configure(workers as usize))
}

/// Shuts the SDK down: frees every handle (subscriptions end, no callback starts
/// after it returns), closes every open node as `peat_node_close` does (all at
/// once, each within `timeout_ms` but at most 5 s; the store is flushed and its
/// database file released, so the data dir can be reopened at once), then stops
/// the runtime, waiting up to `timeout_ms`. Afterwards every call returns
/// `PEAT_STATUS_SHUT_DOWN`. Idempotent.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_shutdown(timeout_ms: u64, err: *mut *mut PeatError) -> i32 {
    call(err, || {
        crate::runtime::shutdown(std::time::Duration::from_millis(timeout_ms))
    })
}

/// Number of live handles (nodes and subscriptions), for leak checks.
#[no_mangle]
pub extern "C" fn peat_live_handles() -> u64 {
    crate::handles::live_handles() as u64
}

/// Opens a node.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_open(
    options: *const PeatNodeOptions,
    timeout_ms: u64,
    cancel: PeatCancel,
    out: *mut PeatNode,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        // SAFETY: a non-NULL `options` points to a valid PeatNodeOptions for this call.
        let o = unsafe { options.as_ref() }.ok_or_else(|| SdkError::invalid("options: NULL"))?;
        let out = out_ptr(out, "out")?;
        if o.formation_secret.is_null() && o.formation_secret_len != 0 {
            return Err(SdkError::invalid("formation_secret: NULL pointer"));
        }
        let secret = if o.formation_secret.is_null() {
            Vec::new()
        } else {
            // SAFETY: the caller guarantees `formation_secret_len` readable bytes.
            unsafe { std::slice::from_raw_parts(o.formation_secret, o.formation_secret_len) }
                .to_vec()
        };
        let peers = if o.peers_len == 0 {
            Vec::new()
        } else if o.peers.is_null() {
            return Err(SdkError::invalid(
                "peers: NULL pointer with non-zero length",
            ));
        } else {
            // SAFETY: the caller guarantees `peers_len` readable PeatStr values.
            unsafe { std::slice::from_raw_parts(o.peers, o.peers_len) }
                .iter()
                .map(|p| str_arg(*p, "peer").map(str::to_string))
                .collect::<SdkResult<Vec<_>>>()?
        };
        let opts = NodeOptions {
            data_dir: str_arg(o.data_dir, "data_dir")?.to_string(),
            formation_id: str_arg(o.formation_id, "formation_id")?.to_string(),
            formation_secret: secret,
            listen: str_arg(o.listen, "listen")?.to_string(),
            peers,
            mdns: o.mdns,
        };
        out.id = sdk::node_open(&opts, timeout_ms, cancel.id)?;
        Ok(())
    })
}

/// Creates a cancel token. Pass it to [`peat_node_open`] or [`peat_node_connect`]
/// (`{0}` for none); [`peat_cancel`] from any thread ends them with
/// `PEAT_STATUS_CANCELLED`. Free with [`peat_cancel_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_cancel_new(out: *mut PeatCancel, err: *mut *mut PeatError) -> i32 {
    call(err, || {
        out_ptr(out, "out")?.id = sdk::cancel_new();
        Ok(())
    })
}

/// Triggers a cancel token.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_cancel(token: PeatCancel, err: *mut *mut PeatError) -> i32 {
    call(err, || sdk::cancel(token.id))
}

/// Frees a cancel token's handle. A zeroed token (`{0}`) is accepted and does
/// nothing; freeing a token twice is `PEAT_STATUS_INVALID_HANDLE`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_cancel_free(token: PeatCancel, err: *mut *mut PeatError) -> i32 {
    call(err, || sdk::cancel_free(token.id))
}

/// Closes a node and frees its handle (within `timeout_ms`).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_close(
    node: PeatNode,
    timeout_ms: u64,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || sdk::node_close(node.id, timeout_ms))
}

/// The node's id as 64 hex digits. Free `*out` with [`peat_string_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_id(
    node: PeatNode,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let out = out_ptr(out, "out")?;
        *out = c_string(sdk::node_id(node.id)?);
        Ok(())
    })
}

/// "NODEID@HOST:PORT" strings that reach this node. Free with [`peat_string_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_addrs(
    node: PeatNode,
    out: *mut PeatStringList,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let out = out_ptr(out, "out")?;
        *out = string_list(sdk::node_addrs(node.id)?);
        Ok(())
    })
}

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
        // SAFETY: a non-NULL out-pointer points to a writable bool.
        if let Some(o) = unsafe { out_removed.as_mut() } {
            *o = removed;
        }
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
    call(err, || {
        let out = out_ptr(out, "out")?;
        let ids = sdk::peers(node.id)?
            .into_iter()
            .filter(|p| p.connected)
            .map(|p| p.id)
            .collect();
        *out = string_list(ids);
        Ok(())
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
    /// "connected", "disconnected", "discovered" or "other_formation".
    pub state: *mut c_char,
    /// Discoveries that want this peer, comma-separated ("static,mdns"); may be "".
    pub sources: *mut c_char,
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
    call(err, || {
        let out = out_ptr(out, "out")?;
        let items: Vec<PeatPeerInfo> = sdk::peers(node.id)?
            .into_iter()
            .map(|p| PeatPeerInfo {
                id: c_string(p.id),
                connected: p.connected,
                addr: opt_c_string(p.addr),
                rtt_us: p.rtt_us.map(|v| v as i64).unwrap_or(-1),
                last_seen_ms: p.last_seen_ms.map(|v| v as i64).unwrap_or(-1),
                state: c_string(p.state),
                sources: c_string(p.sources),
            })
            .collect();
        let (items, len) = into_raw_slice(items);
        *out = PeatPeerList { items, len };
        Ok(())
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
        // SAFETY: strings made by `c_string` in this library.
        unsafe {
            peat_string_free(p.id);
            peat_string_free(p.addr);
            peat_string_free(p.state);
            peat_string_free(p.sources);
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
    out: *mut sdk::NodeStats,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let out = out_ptr(out, "out")?;
        *out = sdk::stats(node.id)?;
        Ok(())
    })
}

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
        let out = out_ptr(out, "out")?;
        *out = ptr::null_mut();
        let (c, i) = (str_arg(collection, "collection")?, str_arg(id, "id")?);
        match sdk::get(node.id, c, i)? {
            Some(json) => {
                *out = c_string(json);
                Ok(())
            }
            None => Err(SdkError::new(
                ErrorCode::NotFound,
                format!("no document {c}/{i}"),
            )),
        }
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
    call(err, || {
        let out = out_ptr(deleted, "deleted")?;
        *out = sdk::delete(
            node.id,
            str_arg(collection, "collection")?,
            str_arg(id, "id")?,
        )?;
        Ok(())
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
    call(err, || {
        let out = out_ptr(out, "out")?;
        let (c, i) = (str_arg(collection, "collection")?, str_arg(id, "id")?);
        let bytes = sdk::export(node.id, c, i)?
            .ok_or_else(|| SdkError::new(ErrorCode::NotFound, format!("no document {c}/{i}")))?;
        let (ptr, len) = into_raw_slice(bytes);
        *out = PeatBytes { ptr, len };
        Ok(())
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
        // SAFETY: the caller guarantees `len` readable bytes at `bytes` for this call.
        let data = unsafe { std::slice::from_raw_parts(bytes, len) };
        sdk::import(
            node.id,
            str_arg(collection, "collection")?,
            str_arg(id, "id")?,
            data,
        )
    })
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
    call(err, || {
        let out = out_ptr(out, "out")?;
        let id = str_arg(id, "id")?;
        out.id = sdk::subscribe_docs(
            node.id,
            str_arg(collection, "collection")?,
            (!id.is_empty()).then_some(id),
            snapshot,
        )?;
        Ok(())
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
    call(err, || {
        let out = out_ptr(out, "out")?;
        out.id = sdk::subscribe_peers(node.id)?;
        Ok(())
    })
}

fn empty_event(kind: PeatEventKind) -> PeatEvent {
    PeatEvent {
        kind,
        collection: ptr::null_mut(),
        id: ptr::null_mut(),
        json: ptr::null_mut(),
        origin: ptr::null_mut(),
        peer: ptr::null_mut(),
        reason: ptr::null_mut(),
        lagged: 0,
    }
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
    call(err, || {
        let out = out_ptr(out, "out")?;
        let ev = match crate::handles::doc_sub(sub.id) {
            Ok(_) => sdk::next_doc_event(sub.id, timeout_ms)?.map(doc_event),
            Err(_) => sdk::next_peer_event(sub.id, timeout_ms)?.map(peer_event),
        };
        match ev {
            Some(ev) => {
                *out = ev;
                Ok(())
            }
            None => Err(SdkError::new(
                ErrorCode::Timeout,
                "no event within the timeout",
            )),
        }
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
    let (sink, arming) = CSink::new(callback);
    arming.settle(call(err, || {
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
    }))
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
    let (sink, arming) = CSink::new(callback);
    arming.settle(call(err, || {
        let out = out_ptr(out, "out")?;
        out.id = sdk::subscribe_peers_push(node.id, sink)?;
        Ok(())
    }))
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
    let (hook, arming) = cleanup_hook(callback.on_drop, callback.ctx);
    let sink = Box::new(CLogSink {
        ctx: callback.ctx,
        on_log: callback.on_log,
        _hook: hook,
    });
    arming.settle(call(err, || {
        crate::log::set_log_sink(sink, max_level.clamp(0, 5) as u8)
    }))
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

/// The error's code (a `PeatStatus`). 0 for NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_error_code(err: *const PeatError) -> i32 {
    // SAFETY: a non-NULL `err` was returned by this library and not yet freed.
    unsafe { err.as_ref() }.map(|e| e.code).unwrap_or(0)
}

/// The error's message, valid until [`peat_error_free`]. "" for NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_error_message(err: *const PeatError) -> *const c_char {
    // SAFETY: a non-NULL `err` was returned by this library and not yet freed.
    match unsafe { err.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Frees an error. Accepts NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_error_free(err: *mut PeatError) {
    if !err.is_null() {
        // SAFETY: `err` came from Box::into_raw in this library and is freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}

/// Frees a string returned by the library. Accepts NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from CString::into_raw in this library and is freed once.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Frees a string list (and its strings). Accepts an empty/zeroed list.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_string_list_free(list: PeatStringList) {
    // SAFETY: `items`/`len` are NULL or came from `into_raw_slice` in
    // `string_list`, and are freed once (the header's ownership rule).
    let Some(items) = (unsafe { take_raw_slice(list.items, list.len) }) else {
        return;
    };
    for s in items {
        // SAFETY: each item came from CString::into_raw in `string_list`.
        unsafe { peat_string_free(s) };
    }
}

/// Frees bytes returned by the library. Accepts an empty/zeroed value.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_bytes_free(bytes: PeatBytes) {
    // SAFETY: `ptr`/`len` are NULL or came from `into_raw_slice` in this library,
    // and are freed once (the header's ownership rule).
    drop(unsafe { take_raw_slice(bytes.ptr, bytes.len) });
}

/// Frees the strings inside an event (not the event struct itself, which the
/// caller owns). Accepts NULL and a zeroed event; sets the freed fields to NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_event_free(ev: *mut PeatEvent) {
    // SAFETY: a non-NULL `ev` points to a caller-owned PeatEvent filled by this library.
    if let Some(ev) = unsafe { ev.as_mut() } {
        for p in [
            &mut ev.collection,
            &mut ev.id,
            &mut ev.json,
            &mut ev.origin,
            &mut ev.peer,
            &mut ev.reason,
        ] {
            // SAFETY: event strings came from CString::into_raw in this library.
            unsafe { peat_string_free(*p) };
            *p = ptr::null_mut();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RUNS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(ctx: *mut std::ffi::c_void) {
        RUNS.fetch_add(ctx as usize, Ordering::SeqCst);
    }

    /// Each case adds its own weight to RUNS, so the cases can share it.
    fn runs_of(weight: usize, f: impl FnOnce(*mut std::ffi::c_void)) -> usize {
        let before = RUNS.load(Ordering::SeqCst);
        f(weight as *mut std::ffi::c_void);
        (RUNS.load(Ordering::SeqCst) - before) / weight
    }

    #[test]
    fn cleanup_hook_runs_once_and_only_after_success() {
        // success, sink dropped later (close): once, at the drop
        assert_eq!(
            runs_of(1, |ctx| {
                let (hook, arming) = cleanup_hook(Some(count), ctx);
                assert_eq!(arming.settle(0), 0);
                drop(hook);
            }),
            1
        );
        // success, sink already dropped (a concurrent shutdown): once, at settle
        assert_eq!(
            runs_of(10, |ctx| {
                let (hook, arming) = cleanup_hook(Some(count), ctx);
                drop(hook);
                arming.settle(0);
            }),
            1
        );
        // failure, sink dropped inside the call or after it: never
        assert_eq!(
            runs_of(100, |ctx| {
                let (hook, arming) = cleanup_hook(Some(count), ctx);
                drop(hook);
                arming.settle(ErrorCode::InvalidHandle as i32);
                let (hook, arming) = cleanup_hook(Some(count), ctx);
                arming.settle(ErrorCode::InvalidArgument as i32);
                drop(hook);
                let (hook, arming) = cleanup_hook(Some(count), ctx);
                drop(arming); // never settled (a panic): treated as failure
                drop(hook);
            }),
            0
        );
    }
}

//! The cleanup hook of the callback structs (`PeatCallback`,
//! `PeatProgressCallback`, `PeatLogCallback`): `on_drop(ctx)` runs exactly
//! once, and only when the call that took the callback succeeded; when it
//! fails the caller keeps ownership of `ctx`. [`call_with_callback`] is the
//! one place every callback-taking function settles this.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use super::boundary::call;
use super::types::PeatError;
use crate::dispatch::EventSink;
use crate::error::SdkResult;

/// A callback struct's cleanup hook as C declares it.
pub(crate) type OnDrop = Option<unsafe extern "C" fn(ctx: *mut c_void)>;

/// The caller's cleanup hook (`on_drop` with its `ctx`), shared between the sink
/// that holds it and the call that took it. It runs exactly once, and only if
/// that call succeeded: a sink dropped while the call is still settling (or
/// because it failed) leaves the hook to [`HookArming::settle`].
struct HookShared {
    state: Mutex<HookState>,
    on_drop: OnDrop,
    ctx: *mut c_void,
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
pub(crate) struct CleanupHook(Arc<HookShared>);

/// Held by the call that takes a callback; [`HookArming::settle`] with its
/// outcome decides whether the hook may ever run.
pub(crate) struct HookArming(Option<Arc<HookShared>>);

/// A cleanup hook for `on_drop(ctx)`, pending until the call settles it.
pub(crate) fn cleanup_hook(on_drop: OnDrop, ctx: *mut c_void) -> (CleanupHook, HookArming) {
    let shared = Arc::new(HookShared {
        state: Mutex::new(HookState::Pending),
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

/// A C callback struct (`ctx`, its functions, `on_drop`): what the SDK gets
/// from it, and its cleanup hook.
pub(crate) trait CallbackStruct {
    /// The caller's context and cleanup hook.
    fn cleanup(&self) -> (OnDrop, *mut c_void);
    /// The callback as an SDK sink, holding `hook` (dropping it is the cleanup).
    fn into_sink(self, hook: CleanupHook) -> Box<dyn EventSink>;
}

/// [`call`] for a function taking a callback struct: `f` hands the callback,
/// as an SDK sink, to the SDK. Its `on_drop` runs exactly once if the call
/// succeeds (when the SDK drops the sink), and never if it fails.
pub(crate) fn call_with_callback(
    err: *mut *mut PeatError,
    callback: impl CallbackStruct,
    f: impl FnOnce(Box<dyn EventSink>) -> SdkResult<()>,
) -> i32 {
    let (on_drop, ctx) = callback.cleanup();
    let (hook, arming) = cleanup_hook(on_drop, ctx);
    let sink = callback.into_sink(hook);
    arming.settle(call(err, || f(sink)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RUNS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(ctx: *mut c_void) {
        RUNS.fetch_add(ctx as usize, Ordering::SeqCst);
    }

    /// Each case adds its own weight to RUNS, so the cases can share it.
    fn runs_of(weight: usize, f: impl FnOnce(*mut c_void)) -> usize {
        let before = RUNS.load(Ordering::SeqCst);
        f(weight as *mut c_void);
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

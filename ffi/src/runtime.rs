//! The one tokio runtime of the process, owned by the SDK.
//!
//! Created lazily on first use (or configured once before it), named
//! `peat-sdk-N`, never created or dropped on a caller's thread. After
//! [`stop`] (`sdk::shutdown`), every call fails with [`ErrorCode::ShutDown`].

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::error::{ErrorCode, SdkError, SdkResult};

enum State {
    Unstarted { workers: usize },
    Running(tokio::runtime::Runtime),
    ShutDown,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| Mutex::new(State::Unstarted { workers: 2 }))
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    state().lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets the worker count (1–16) before the runtime starts. Fails once it runs.
pub fn configure(workers: usize) -> SdkResult<()> {
    if !(1..=16).contains(&workers) {
        return Err(SdkError::invalid("workers must be 1..=16"));
    }
    let mut s = lock();
    match &*s {
        State::Unstarted { .. } => {
            *s = State::Unstarted { workers };
            Ok(())
        }
        State::Running(_) => Err(SdkError::invalid("the runtime is already running")),
        State::ShutDown => Err(SdkError::new(ErrorCode::ShutDown, "the SDK was shut down")),
    }
}

/// A handle to the runtime, starting it if needed.
pub fn handle() -> SdkResult<tokio::runtime::Handle> {
    let mut s = lock();
    if let State::Unstarted { workers } = &*s {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(*workers)
            .thread_name_fn(|| {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                format!("peat-sdk-{}", N.fetch_add(1, Ordering::Relaxed))
            })
            .enable_all()
            .build()
            .map_err(|e| {
                SdkError::new(ErrorCode::Internal, format!("cannot start runtime: {e}"))
            })?;
        *s = State::Running(rt);
    }
    match &*s {
        State::Running(rt) => Ok(rt.handle().clone()),
        State::ShutDown => Err(SdkError::new(ErrorCode::ShutDown, "the SDK was shut down")),
        State::Unstarted { .. } => Err(SdkError::new(ErrorCode::Internal, "runtime did not start")),
    }
}

/// Runs `fut` on the SDK runtime and waits for it on the calling thread.
/// Refuses (rather than panicking) when called from a runtime thread.
pub fn block_on<F>(fut: F) -> SdkResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    refuse_on_runtime_thread("blocking SDK call made from an async runtime thread")?;
    let h = handle()?;
    // Spawned, not entered: the work runs on the SDK's workers and the caller's
    // thread only waits.
    let task = h.spawn(fut);
    h.block_on(task)
        .map_err(|e| SdkError::new(ErrorCode::Internal, format!("SDK task failed: {e}")))
}

/// Like [`block_on`] with a deadline: on timeout the work is aborted.
pub fn block_on_timeout<F, T>(timeout: Duration, fut: F) -> SdkResult<T>
where
    F: Future<Output = SdkResult<T>> + Send + 'static,
    T: Send + 'static,
{
    block_on_cancellable(timeout, None, fut)
}

/// Like [`block_on_timeout`], also ending (and dropping the work) when `cancel`
/// is triggered from any thread.
pub fn block_on_cancellable<F, T>(
    timeout: Duration,
    cancel: Option<tokio_util::sync::CancellationToken>,
    fut: F,
) -> SdkResult<T>
where
    F: Future<Output = SdkResult<T>> + Send + 'static,
    T: Send + 'static,
{
    block_on(async move {
        let cancelled = async {
            match &cancel {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = tokio::time::timeout(timeout, fut) => match r {
                Ok(r) => r,
                Err(_) => Err(SdkError::new(ErrorCode::Timeout, format!("no result within {timeout:?}"))),
            },
            _ = cancelled => Err(SdkError::new(ErrorCode::Cancelled, "cancelled")),
        }
    })?
}

/// Refuses (with `WouldDeadlock` and `message`) a blocking call made from a
/// runtime thread.
pub(crate) fn refuse_on_runtime_thread(message: &str) -> SdkResult<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SdkError::new(ErrorCode::WouldDeadlock, message));
    }
    Ok(())
}

/// Marks the SDK shut down: from now on every call fails with
/// [`ErrorCode::ShutDown`]. Returns the runtime if it was running, for the
/// caller (`sdk::shutdown`) to finish what runs on it and stop it.
pub(crate) fn stop() -> Option<tokio::runtime::Runtime> {
    match std::mem::replace(&mut *lock(), State::ShutDown) {
        State::Running(rt) => Some(rt),
        State::Unstarted { .. } | State::ShutDown => None,
    }
}

/// True once [`stop`] has run.
pub fn is_shut_down() -> bool {
    matches!(&*lock(), State::ShutDown)
}

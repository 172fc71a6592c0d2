//! The one tokio runtime of the process, owned by the SDK.
//!
//! Created lazily on first use (or configured once before it), named
//! `peat-sdk-N`, never created or dropped on a caller's thread. After
//! [`shutdown`], every call fails with [`ErrorCode::ShutDown`].

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
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SdkError::new(
            ErrorCode::WouldDeadlock,
            "blocking SDK call made from an async runtime thread",
        ));
    }
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

/// The longest [`shutdown`] gives each open node to close (sessions flushed,
/// tasks ended); the store is flushed and released whatever this deadline.
pub const SHUTDOWN_NODE_CLOSE: Duration = Duration::from_secs(5);

/// How much longer than its close deadline [`shutdown`] waits for a node's store
/// to flush and release its database file before leaving it behind.
const SHUTDOWN_STORE_GRACE: Duration = Duration::from_secs(10);

/// Shuts the SDK down. Every handle is freed: subscriptions end and push
/// delivery stops first (no callback starts after this returns), then every
/// open node is closed as [`peat_mesh::Node::close`] does (all at once, each
/// within `timeout` but at most [`SHUTDOWN_NODE_CLOSE`]): connections closed,
/// the store flushed and its database file released, so the data dir can be
/// reopened at once, by this process's successor or another one. Then the
/// runtime stops (waiting up to `timeout` for tasks). Afterwards every call
/// returns [`ErrorCode::ShutDown`]. Idempotent.
pub fn shutdown(timeout: Duration) -> SdkResult<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SdkError::new(
            ErrorCode::WouldDeadlock,
            "shutdown called from an SDK runtime thread",
        ));
    }
    let nodes = crate::handles::clear();
    // Later calls see ShutDown at once, while the nodes close below.
    let old = std::mem::replace(&mut *lock(), State::ShutDown);
    if let State::Running(rt) = old {
        close_nodes(&rt, nodes, timeout.min(SHUTDOWN_NODE_CLOSE));
        rt.shutdown_timeout(timeout);
    }
    Ok(())
}

/// Closes `nodes` on the runtime, concurrently, each within `close`; waits at
/// most `close` + [`SHUTDOWN_STORE_GRACE`] in all. Failures are logged.
fn close_nodes(rt: &tokio::runtime::Runtime, nodes: Vec<peat_mesh::Node>, close: Duration) {
    if nodes.is_empty() {
        return;
    }
    let closing: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            rt.spawn(async move {
                if let Err(e) = n.close(close).await {
                    tracing::warn!(node = %n.id(), "closing the node at shutdown: {e}");
                }
            })
        })
        .collect();
    let all = async move {
        for task in closing {
            let _ = task.await;
        }
    };
    // The timer is made inside the runtime's context, never on the caller's thread.
    let bounded = async move { tokio::time::timeout(close + SHUTDOWN_STORE_GRACE, all).await };
    if rt.block_on(bounded).is_err() {
        tracing::warn!("shutdown: a node did not finish closing; left behind");
    }
}

/// True once [`shutdown`] has run.
pub fn is_shut_down() -> bool {
    matches!(&*lock(), State::ShutDown)
}

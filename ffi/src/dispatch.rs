//! Push delivery, built on the pull subscriptions by one SDK-owned dispatcher
//! thread (`peat-dispatch`, not a tokio worker), so a callback may call back into
//! the SDK, including blocking calls.
//!
//! Guarantees, for every push subscription:
//! - its callbacks run one at a time, in order, on the dispatcher thread, and
//!   never while the SDK holds a lock;
//! - once [`unsubscribe`](crate::sdk::unsubscribe) returns, no further callback
//!   starts (called from inside a callback, the running callback finishes);
//! - the sink is dropped (its cleanup hook runs) exactly once: at unsubscribe, or
//!   right after the callback that was running when it was unsubscribed.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use tokio::sync::mpsc;

use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::records::SubEvent;

/// A receiver of pushed events, implemented by each language binding. Dropping
/// it is the cleanup hook.
pub trait EventSink: Send + 'static {
    /// Called on the dispatcher thread, in order.
    fn on_event(&self, event: &SubEvent);
}

struct State {
    closed: bool,
    running: bool,
    sink: Option<Box<dyn EventSink>>,
}

/// One push subscription's delivery state.
pub(crate) struct Push {
    state: Mutex<State>,
    idle: Condvar,
    forwarder: Mutex<Option<tokio::task::AbortHandle>>,
    /// The node's count of events the SDK holds ([`crate::backlog`]), for a
    /// subscription's events (not for ready signals or logs).
    backlog: Option<Arc<std::sync::atomic::AtomicU64>>,
}

thread_local! {
    static ON_DISPATCHER: Cell<bool> = const { Cell::new(false) };
}

/// True on the dispatcher thread (inside a callback).
pub fn on_dispatcher() -> bool {
    ON_DISPATCHER.with(|c| c.get())
}

type Job = (Arc<Push>, SubEvent);

fn queue() -> SdkResult<&'static mpsc::Sender<Job>> {
    static TX: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    if let Some(tx) = TX.get() {
        return Ok(tx);
    }
    let (tx, mut rx) = mpsc::channel::<Job>(1024);
    std::thread::Builder::new()
        .name("peat-dispatch".into())
        .spawn(move || {
            ON_DISPATCHER.with(|c| c.set(true));
            while let Some((push, ev)) = rx.blocking_recv() {
                push.deliver(&ev);
            }
        })
        .map_err(|e| SdkError::new(ErrorCode::Internal, format!("cannot start dispatcher: {e}")))?;
    Ok(TX.get_or_init(|| tx))
}

impl Push {
    pub(crate) fn new(sink: Box<dyn EventSink>) -> Arc<Self> {
        Self::with_backlog(sink, None)
    }

    /// A push target whose events waiting for the dispatcher count in
    /// `node`'s held events ([`crate::backlog`]).
    pub(crate) fn for_node(sink: Box<dyn EventSink>, node: u64) -> Arc<Self> {
        Self::with_backlog(sink, Some(crate::backlog::counter(node)))
    }

    fn with_backlog(
        sink: Box<dyn EventSink>,
        backlog: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) -> Arc<Self> {
        Arc::new(Push {
            state: Mutex::new(State {
                closed: false,
                running: false,
                sink: Some(sink),
            }),
            idle: Condvar::new(),
            forwarder: Mutex::new(None),
            backlog,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, ev: &SubEvent) {
        if !matches!(ev, SubEvent::Closed | SubEvent::Ready) {
            crate::backlog::release(self.backlog.as_ref(), 1);
        }
        let sink = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            st.running = true;
            st.sink.take()
        };
        if let Some(sink) = &sink {
            // A panicking callback must not take the dispatcher down.
            if catch_unwind(AssertUnwindSafe(|| sink.on_event(ev))).is_err() {
                tracing::error!("a subscription callback panicked");
            }
        }
        let dropped = {
            let mut st = self.lock();
            st.running = false;
            if st.closed {
                sink
            } else {
                st.sink = sink;
                None
            }
        };
        drop(dropped); // cleanup hook, outside the lock
        self.idle.notify_all();
    }

    /// Starts forwarding `next()` results of a pull source to the dispatcher.
    pub(crate) fn start<F, Fut>(self: &Arc<Self>, mut next: F) -> SdkResult<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Option<SubEvent>> + Send,
    {
        let tx = queue()?.clone();
        let me = self.clone();
        let task = crate::runtime::handle()?.spawn(async move {
            loop {
                let ev = next().await;
                let end = ev.is_none();
                // Counted while it waits for the dispatcher; uncounted if the
                // send fails or the forwarder is aborted meanwhile.
                let held = crate::backlog::Held::new(
                    me.backlog
                        .as_ref()
                        .filter(|_| matches!(ev, Some(SubEvent::Doc(_) | SubEvent::Peer(_)))),
                );
                if tx
                    .send((me.clone(), ev.unwrap_or(SubEvent::Closed)))
                    .await
                    .is_err()
                    || end
                {
                    return;
                }
                held.handed_on();
            }
        });
        *self.forwarder.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
        Ok(())
    }

    /// Stops delivery; see the module docs for the guarantees.
    pub(crate) fn stop(&self) {
        if let Some(t) = self
            .forwarder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
        let sink = {
            let mut st = self.lock();
            st.closed = true;
            if st.running && !on_dispatcher() {
                while st.running {
                    st = self.idle.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            }
            st.sink.take()
        };
        drop(sink);
    }
}

/// Queues one event for a push target (used by the log sink).
pub(crate) fn try_push(push: &Arc<Push>, ev: SubEvent) -> bool {
    match queue() {
        Ok(tx) => tx.try_send((push.clone(), ev)).is_ok(),
        Err(_) => false,
    }
}

//! Queued subscriptions: a subscription's events in a queue the SDK bounds,
//! with a readiness signal, for bindings that hand events to a reader of their
//! own (a Go channel) and must never block the dispatcher while doing so.
//!
//! A forwarder task moves every event of the core subscription into the queue
//! as it arrives. At most `capacity` events wait: when a live event arrives at
//! a full queue the oldest one is dropped and counted, and the reader's next
//! event is `Lagged` with that count (the core's own lag is added to it), as in
//! every SDK subscription. Snapshot events are never dropped: while one waits,
//! the forwarder waits for room instead (the core then holds the live events).
//!
//! The `ready` sink is told ([`SubEvent::Ready`], on the dispatcher thread)
//! when events are waiting; the reader then reads without waiting until the
//! queue is empty ([`Queue::next`] returns `Ok(None)`), and only after that is
//! it told again (edge-triggered, so a reader that drains never misses an
//! event and is not woken for each one). When the subscription ends (its node
//! closed) the sink gets [`SubEvent::Closed`]; reading then returns what is
//! left, then `Closed`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peat_mesh::{Event, Subscription};
use tokio::sync::Notify;

use crate::dispatch::{EventSink, Push};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::records::{DocEventRecord, Origin, PeerEventRecord, SubEvent};
use crate::runtime;

/// How many events wait when the binding asks for capacity 0.
pub(crate) const DEFAULT_CAPACITY: usize = 256;

/// The largest capacity a binding may ask for; more is an invalid argument.
/// (The queue grows only as events wait, but a bound that is stated and
/// tested beats one an application can set to anything.)
pub(crate) const MAX_CAPACITY: usize = 1 << 16;

/// An event record a queue can hold.
pub trait Queued: Send + 'static {
    /// `Some(n)` if this record reports `n` dropped events.
    fn lag(&self) -> Option<u64>;
    /// The record reporting `n` dropped events.
    fn lagged(n: u64) -> Self;
    /// True for a snapshot event (never dropped).
    fn is_snapshot(&self) -> bool;
}

impl Queued for DocEventRecord {
    fn lag(&self) -> Option<u64> {
        match self {
            DocEventRecord::Lagged(n) => Some(*n),
            DocEventRecord::Changed { .. } => None,
        }
    }

    fn lagged(n: u64) -> Self {
        DocEventRecord::Lagged(n)
    }

    fn is_snapshot(&self) -> bool {
        matches!(
            self,
            DocEventRecord::Changed {
                origin: Origin::Snapshot,
                ..
            }
        )
    }
}

impl Queued for PeerEventRecord {
    fn lag(&self) -> Option<u64> {
        match self {
            PeerEventRecord::Lagged(n) => Some(*n),
            _ => None,
        }
    }

    fn lagged(n: u64) -> Self {
        PeerEventRecord::Lagged(n)
    }

    fn is_snapshot(&self) -> bool {
        false
    }
}

struct State<R> {
    items: VecDeque<R>,
    /// Dropped since the last `Lagged` the reader got.
    dropped: u64,
    /// Snapshot events among `items`.
    snapshots: usize,
    /// The core subscription ended, or the queue was closed.
    closed: bool,
    /// `ready` was told and the reader has not yet found the queue empty.
    signalled: bool,
}

impl<R> State<R> {
    fn has_data(&self) -> bool {
        self.dropped > 0 || !self.items.is_empty()
    }
}

/// One queued subscription (behind a handle).
pub struct Queue<R> {
    state: Mutex<State<R>>,
    capacity: usize,
    /// Something changed: an event arrived or was taken, the queue closed, or
    /// the reader found it empty. Readers, the forwarder (waiting for room)
    /// and the ready signal all wait on it.
    changed: Notify,
    forwarder: Mutex<Option<tokio::task::AbortHandle>>,
    ready: Arc<Push>,
    /// The node's count of events the SDK holds ([`crate::backlog`]).
    backlog: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl<R: Queued> Queue<R> {
    /// Starts queueing `sub`'s events (converted to records), telling `ready`
    /// when some are waiting. `capacity` 0 means [`DEFAULT_CAPACITY`].
    pub(crate) fn start<T: Send + Sync + 'static>(
        sub: Subscription<T>,
        capacity: usize,
        ready: Box<dyn EventSink>,
        node: u64,
    ) -> SdkResult<Arc<Self>>
    where
        R: From<Event<T>>,
    {
        let q = Self::new(capacity, ready, Some(crate::backlog::counter(node)))?;
        let me = q.clone();
        let task = runtime::handle()?.spawn(async move {
            while let Some(ev) = sub.next().await {
                me.put(R::from(ev)).await;
            }
            me.lock().closed = true;
            me.changed.notify_waiters();
        });
        *q.forwarder.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
        Ok(q)
    }

    /// An empty queue with its ready signal running, fed by [`Queue::put`].
    fn new(
        capacity: usize,
        ready: Box<dyn EventSink>,
        backlog: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) -> SdkResult<Arc<Self>> {
        if capacity > MAX_CAPACITY {
            return Err(SdkError::invalid(format!(
                "a queued subscription holds at most {MAX_CAPACITY} events (asked for {capacity})"
            )));
        }
        let q = Arc::new(Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                dropped: 0,
                snapshots: 0,
                closed: false,
                signalled: false,
            }),
            capacity: if capacity == 0 {
                DEFAULT_CAPACITY
            } else {
                capacity
            },
            changed: Notify::new(),
            forwarder: Mutex::new(None),
            ready: Push::new(ready),
            backlog,
        });
        let me = q.clone();
        q.ready.start(move || {
            let q = me.clone();
            async move { q.next_signal().await }
        })?;
        Ok(q)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one record: a lag adds to the count; a live event at a full
    /// queue drops the oldest; a snapshot event (or any event while a
    /// snapshot event waits) waits for room.
    async fn put(&self, r: R) {
        loop {
            let room = self.changed.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut st = self.lock();
                if let Some(n) = r.lag() {
                    st.dropped += n;
                    break;
                }
                let snapshot = r.is_snapshot();
                if st.items.len() < self.capacity || (!snapshot && st.snapshots == 0) {
                    if st.items.len() >= self.capacity {
                        st.items.pop_front();
                        st.dropped += 1;
                    } else {
                        crate::backlog::add(self.backlog.as_ref());
                    }
                    st.snapshots += usize::from(snapshot);
                    st.items.push_back(r);
                    break;
                }
            }
            room.await;
        }
        self.changed.notify_waiters();
    }

    /// The ready signal's source: `Ready` when events wait and the reader has
    /// not been told yet; the end (`None`, then the sink gets `Closed`) once
    /// the queue is closed.
    async fn next_signal(&self) -> Option<SubEvent> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut st = self.lock();
                if st.closed {
                    return None;
                }
                if st.has_data() && !st.signalled {
                    st.signalled = true;
                    return Some(SubEvent::Ready);
                }
            }
            changed.await;
        }
    }

    /// The next record without waiting: `Ok(None)` when none waits (then the
    /// ready signal is armed again), `Err(Closed)` once closed and drained.
    pub(crate) fn try_next(&self) -> SdkResult<Option<R>> {
        let taken = {
            let mut st = self.lock();
            if st.dropped > 0 {
                Some(R::lagged(std::mem::take(&mut st.dropped)))
            } else if let Some(r) = st.items.pop_front() {
                st.snapshots -= usize::from(r.is_snapshot());
                crate::backlog::release(self.backlog.as_ref(), 1);
                Some(r)
            } else if st.closed {
                return Err(SdkError::new(ErrorCode::Closed, "the subscription ended"));
            } else if std::mem::replace(&mut st.signalled, false) {
                None // found empty after a signal: the signal is armed again
            } else {
                return Ok(None); // nothing changed
            }
        };
        self.changed.notify_waiters();
        Ok(taken)
    }

    /// The next record, waiting up to `timeout`; see [`Queue::try_next`].
    pub(crate) fn next(self: &Arc<Self>, timeout: Duration) -> SdkResult<Option<R>> {
        if let Some(r) = self.try_next()? {
            return Ok(Some(r));
        }
        if timeout.is_zero() {
            return Ok(None);
        }
        let me = self.clone();
        runtime::block_on(async move {
            let wait = async {
                loop {
                    let changed = me.changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    if let Some(r) = me.try_next()? {
                        return Ok(Some(r));
                    }
                    changed.await;
                }
            };
            match tokio::time::timeout(timeout, wait).await {
                Ok(r) => r,
                Err(_) => Ok(None),
            }
        })?
    }

    /// Ends the subscription: no ready signal starts after this returns (one
    /// running elsewhere is waited for) and the sink is dropped; readers get
    /// what is queued, then `Closed`.
    pub(crate) fn close(&self) {
        if let Some(t) = self
            .forwarder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
        self.lock().closed = true;
        self.changed.notify_waiters();
        self.ready.stop();
    }
}

impl<R> Drop for Queue<R> {
    /// What is still queued is no longer held for the node.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        crate::backlog::release(self.backlog.as_ref(), st.items.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every signal the queue sends, in a channel.
    struct Signals(Mutex<std::sync::mpsc::Sender<SubEvent>>);

    impl EventSink for Signals {
        fn on_event(&self, e: &SubEvent) {
            let _ = self.0.lock().unwrap().send(e.clone());
        }
    }

    fn doc(i: u32, origin: &str) -> DocEventRecord {
        DocEventRecord::Changed {
            collection: "c".into(),
            id: i.to_string(),
            json: Some("{}".into()),
            origin: match origin {
                "snapshot" => Origin::Snapshot,
                _ => Origin::Local,
            },
        }
    }

    /// A queue with no forwarder, fed by hand, and its signals.
    fn queue(
        capacity: usize,
    ) -> (
        Arc<Queue<DocEventRecord>>,
        std::sync::mpsc::Receiver<SubEvent>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel();
        let q = Queue::new(capacity, Box::new(Signals(Mutex::new(tx))), None).unwrap();
        (q, rx)
    }

    fn put(q: &Arc<Queue<DocEventRecord>>, r: DocEventRecord) {
        let q = q.clone();
        runtime::block_on(async move { q.put(r).await }).unwrap();
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn held_events_are_counted_for_the_node_until_taken_or_dropped() {
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let held = || counter.load(std::sync::atomic::Ordering::Relaxed);
        let (tx, _rx) = std::sync::mpsc::channel();
        let q = Queue::new(2, Box::new(Signals(Mutex::new(tx))), Some(counter.clone())).unwrap();
        for i in 0..3 {
            put(&q, doc(i, "local"));
        }
        assert_eq!(
            held(),
            2,
            "at the bound the oldest is dropped, not counted twice"
        );
        assert!(q.try_next().unwrap().is_some_and(|r| r.lag().is_some()));
        assert!(q.try_next().unwrap().is_some());
        assert_eq!(held(), 1);
        assert!(q.try_next().unwrap().is_some());
        assert_eq!(held(), 0);
        q.close();
    }

    #[test]
    fn a_capacity_past_the_bound_is_refused() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let err =
            Queue::<DocEventRecord>::new(MAX_CAPACITY + 1, Box::new(Signals(Mutex::new(tx))), None)
                .err()
                .expect("refused");
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        let (q, _rx) = queue(MAX_CAPACITY);
        assert_eq!(q.capacity, MAX_CAPACITY);
    }

    #[test]
    fn live_events_past_capacity_are_dropped_oldest_first_and_reported() {
        let (q, signals) = queue(3);
        for i in 0..10 {
            put(&q, doc(i, "local"));
        }
        put(&q, DocEventRecord::Lagged(5)); // the core's own lag adds up
        assert_eq!(signals.recv_timeout(WAIT).unwrap(), SubEvent::Ready);
        assert_eq!(q.try_next().unwrap(), Some(DocEventRecord::Lagged(12)));
        for i in 7..10 {
            assert_eq!(q.try_next().unwrap(), Some(doc(i, "local")));
        }
        assert_eq!(q.try_next().unwrap(), None);
        q.close();
        assert!(matches!(q.try_next(), Err(e) if e.code == ErrorCode::Closed));
    }

    #[test]
    fn ready_is_signalled_once_per_drain() {
        let (q, signals) = queue(8);
        put(&q, doc(1, "local"));
        assert_eq!(signals.recv_timeout(WAIT).unwrap(), SubEvent::Ready);
        put(&q, doc(2, "local"));
        // not drained yet: no second signal
        assert!(signals.recv_timeout(Duration::from_millis(100)).is_err());
        assert_eq!(q.try_next().unwrap(), Some(doc(1, "local")));
        assert_eq!(q.try_next().unwrap(), Some(doc(2, "local")));
        assert_eq!(q.try_next().unwrap(), None); // drained: armed again
        put(&q, doc(3, "local"));
        assert_eq!(signals.recv_timeout(WAIT).unwrap(), SubEvent::Ready);
        assert_eq!(q.next(WAIT).unwrap(), Some(doc(3, "local")));
        q.close();
    }

    #[test]
    fn snapshot_events_wait_for_room_instead_of_being_dropped() {
        let (q, _signals) = queue(2);
        let feeder = {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    put(&q, doc(i, "snapshot"));
                }
                put(&q, doc(5, "local"));
            })
        };
        let mut got = Vec::new();
        while got.len() < 6 {
            if let Some(r) = q.next(WAIT).unwrap() {
                got.push(r);
            }
        }
        feeder.join().unwrap();
        let mut want: Vec<_> = (0..5).map(|i| doc(i, "snapshot")).collect();
        want.push(doc(5, "local"));
        assert_eq!(got, want);
        q.close();
    }
}

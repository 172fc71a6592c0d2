//! Subscriptions: bounded per-subscriber queues with an explicit lag signal.
//!
//! A publisher never blocks and memory never grows without bound: when a
//! subscriber's queue is full the oldest event is dropped and counted, and the
//! subscriber's next read returns [`Event::Lagged`] with that count before any
//! further item.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::locks::LockExt;
use tokio::sync::Notify;

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<T> {
    /// The next item.
    Item(T),
    /// This many items were dropped because the subscriber fell behind.
    Lagged(u64),
}

struct Queue<T> {
    items: VecDeque<T>,
    dropped: u64,
    closed: bool,
}

/// Says whether two items are versions of the same thing (for a coalescing
/// subscription, which keeps only the newest version queued).
pub(crate) type SameKey<T> = fn(&T, &T) -> bool;

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    notify: Notify,
    cap: usize,
    coalesce: Option<SameKey<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T>> {
        self.queue.locked()
    }

    fn push(&self, item: T) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        if let Some(same) = self.coalesce {
            // Coalescing: a newer version replaces the queued one and moves
            // to the back; not a loss, so not counted as lag.
            if let Some(i) = q.items.iter().position(|old| same(old, &item)) {
                q.items.remove(i);
            }
        }
        if q.items.len() >= self.cap {
            q.items.pop_front();
            q.dropped += 1;
        }
        q.items.push_back(item);
        drop(q);
        self.notify.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

type Entry<T, F> = (u64, F, Weak<Shared<T>>);

/// The publishing side: a set of subscribers, each with a filter `F`.
pub(crate) struct Hub<T, F> {
    subs: Mutex<(u64, Vec<Entry<T, F>>)>,
    cap: usize,
}

impl<T: Clone, F> Hub<T, F> {
    pub fn new(cap: usize) -> Self {
        Hub {
            subs: Mutex::new((0, Vec::new())),
            cap: cap.max(1),
        }
    }

    /// Adds a subscriber.
    pub fn subscribe(&self, filter: F) -> Subscription<T> {
        self.subscribe_with(filter, None)
    }

    /// Adds a subscriber whose queue holds at most one item per key of
    /// `coalesce` (the newest); its bound still holds across keys.
    pub fn subscribe_with(&self, filter: F, coalesce: Option<SameKey<T>>) -> Subscription<T> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                dropped: 0,
                closed: false,
            }),
            notify: Notify::new(),
            cap: self.cap,
            coalesce,
        });
        let mut g = self.subs.locked();
        g.0 += 1;
        let id = g.0;
        g.1.push((id, filter, Arc::downgrade(&shared)));
        Subscription {
            shared,
            snapshot: Mutex::new(None),
        }
    }

    /// True if any live subscriber's filter accepts.
    pub fn wants(&self, accept: impl Fn(&F) -> bool) -> bool {
        let g = self.subs.locked();
        g.1.iter()
            .any(|(_, f, w)| w.strong_count() > 0 && accept(f))
    }

    /// Delivers `item` to every subscriber whose filter accepts it. Never blocks.
    pub fn publish(&self, item: &T, accept: impl Fn(&F) -> bool) {
        let targets: Vec<Arc<Shared<T>>> = {
            let mut g = self.subs.locked();
            g.1.retain(|(_, _, w)| w.strong_count() > 0);
            g.1.iter()
                .filter(|(_, f, _)| accept(f))
                .filter_map(|(_, _, w)| w.upgrade())
                .collect()
        };
        for t in targets {
            t.push(item.clone());
        }
    }

    /// Ends every subscription: readers drain what is queued, then get `None`.
    pub fn close_all(&self) {
        let g = self.subs.locked();
        for (_, _, w) in &g.1 {
            if let Some(s) = w.upgrade() {
                s.close();
            }
        }
    }

    /// Items waiting in the live subscribers' queues (each queue holds at
    /// most the hub's capacity).
    pub fn queued(&self) -> usize {
        let subs: Vec<Arc<Shared<T>>> = {
            let g = self.subs.locked();
            g.1.iter().filter_map(|(_, _, w)| w.upgrade()).collect()
        };
        subs.iter().map(|s| s.lock().items.len()).sum()
    }

    /// Number of live subscribers.
    pub fn len(&self) -> usize {
        let g = self.subs.locked();
        g.1.iter().filter(|(_, _, w)| w.strong_count() > 0).count()
    }
}

/// Produces a subscription's initial snapshot one page at a time, as the
/// subscriber reads it (`Ok(None)` at the end). Only one page is held at once.
pub(crate) type SnapshotPages<T> = Box<dyn FnMut() -> crate::Result<Option<Vec<T>>> + Send>;

struct Snapshot<T> {
    page: VecDeque<T>,
    next: Option<SnapshotPages<T>>,
}

/// The receiving side of a subscription. Dropping it unsubscribes.
pub struct Subscription<T> {
    shared: Arc<Shared<T>>,
    /// Read before the live queue: the snapshot is never lost to lag, and
    /// since the live events of a document are queued in commit order, the
    /// last event a subscriber sees for a document is its latest state.
    snapshot: Mutex<Option<Snapshot<T>>>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl<T> Subscription<T> {
    /// Starts the subscription with a snapshot read lazily from `pages`.
    pub(crate) fn with_snapshot(self, pages: SnapshotPages<T>) -> Self {
        *self.snapshot.locked() = Some(Snapshot {
            page: VecDeque::new(),
            next: Some(pages),
        });
        self
    }

    fn next_snapshot_item(&self) -> Option<T> {
        let mut g = self.snapshot.locked();
        let snap = g.as_mut()?;
        loop {
            if let Some(item) = snap.page.pop_front() {
                return Some(item);
            }
            let Some(next) = snap.next.as_mut() else {
                *g = None;
                return None;
            };
            match next() {
                Ok(Some(page)) => snap.page.extend(page),
                Ok(None) => snap.next = None,
                Err(e) => {
                    tracing::warn!(error = %e, "subscription snapshot ended early");
                    snap.next = None;
                }
            }
        }
    }

    /// The next event without waiting; `None` if none is queued. Snapshot
    /// items come first, then live events.
    pub fn try_next(&self) -> Option<Event<T>> {
        if self.shared.lock().closed {
            *self.snapshot.locked() = None;
        } else if let Some(item) = self.next_snapshot_item() {
            return Some(Event::Item(item));
        }
        let mut q = self.shared.lock();
        if q.dropped > 0 {
            let n = q.dropped;
            q.dropped = 0;
            return Some(Event::Lagged(n));
        }
        q.items.pop_front().map(Event::Item)
    }

    /// Waits for the next event. `None` once the subscription is closed and drained.
    pub async fn next(&self) -> Option<Event<T>> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = self.try_next() {
                return Some(e);
            }
            if self.shared.lock().closed {
                return None;
            }
            notified.await;
        }
    }

    /// Waits up to `timeout` for the next event. `Ok(None)` on timeout;
    /// `Err(Closed)` once the subscription is closed and drained.
    pub async fn next_timeout(&self, timeout: Duration) -> crate::Result<Option<Event<T>>> {
        match tokio::time::timeout(timeout, self.next()).await {
            Ok(Some(e)) => Ok(Some(e)),
            Ok(None) => Err(crate::Error::Closed),
            Err(_) => Ok(None),
        }
    }

    /// Ends this subscription; queued events can still be read.
    pub fn close(&self) {
        self.shared.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lag_is_reported_and_queue_is_bounded() {
        let hub: Hub<u32, ()> = Hub::new(3);
        let sub = hub.subscribe(());
        for i in 0..10 {
            hub.publish(&i, |_| true);
        }
        assert_eq!(sub.next().await, Some(Event::Lagged(7)));
        assert_eq!(sub.next().await, Some(Event::Item(7)));
        assert_eq!(sub.try_next(), Some(Event::Item(8)));
        assert_eq!(sub.try_next(), Some(Event::Item(9)));
        assert_eq!(sub.try_next(), None);
        assert_eq!(
            sub.next_timeout(Duration::from_millis(10)).await.unwrap(),
            None
        );
    }

    #[test]
    fn a_coalescing_queue_keeps_the_newest_of_each_key() {
        let hub: Hub<(u8, u32), ()> = Hub::new(2);
        let sub = hub.subscribe_with((), Some(|a, b| a.0 == b.0));
        for (k, v) in [(1, 1), (2, 1), (1, 2), (1, 3)] {
            hub.publish(&(k, v), |_| true);
        }
        assert_eq!(sub.try_next(), Some(Event::Item((2, 1))));
        assert_eq!(sub.try_next(), Some(Event::Item((1, 3))));
        assert_eq!(sub.try_next(), None);
        // the bound holds across keys: a third key drops the oldest, with lag
        for k in [1, 2, 3] {
            hub.publish(&(k, 9), |_| true);
        }
        assert_eq!(sub.try_next(), Some(Event::Lagged(1)));
    }

    #[tokio::test]
    async fn drop_unsubscribes_and_close_ends() {
        let hub: Hub<u32, u32> = Hub::new(8);
        let a = hub.subscribe(1);
        let b = hub.subscribe(2);
        hub.publish(&5, |f| *f == 2);
        assert_eq!(a.try_next(), None);
        assert_eq!(b.try_next(), Some(Event::Item(5)));
        drop(a);
        assert_eq!(hub.len(), 1);
        let waiter = tokio::spawn(async move { b.next().await });
        tokio::task::yield_now().await;
        hub.close_all();
        assert_eq!(waiter.await.unwrap(), None);
    }
}

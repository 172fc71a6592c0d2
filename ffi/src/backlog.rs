//! Events the SDK layer holds for a node's subscribers, counted per node:
//! those moved out of the core's subscription queues into a queued
//! subscription ([`crate::queue`]) or onto the push dispatcher
//! ([`crate::dispatch`]), not yet taken by the application. The node's
//! `queued_events` adds them to the core's own count, so a binding that
//! reads through either path still sees what waits.
//!
//! Bound: one counter per open node handle, forgotten when the node closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

fn counters() -> std::sync::MutexGuard<'static, HashMap<u64, Arc<AtomicU64>>> {
    static C: OnceLock<Mutex<HashMap<u64, Arc<AtomicU64>>>> = OnceLock::new();
    C.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The counter of `node`'s held events.
pub(crate) fn counter(node: u64) -> Arc<AtomicU64> {
    counters().entry(node).or_default().clone()
}

/// Events the SDK holds for `node` now.
pub(crate) fn held(node: u64) -> u64 {
    counters()
        .get(&node)
        .map_or(0, |c| c.load(Ordering::Relaxed))
}

/// Forgets `node`'s counter (the node closed).
pub(crate) fn forget(node: u64) {
    counters().remove(&node);
}

/// One held event: counted from creation until dropped, unless
/// [`Held::handed_on`] passes the count to whoever takes the event next.
pub(crate) struct Held(Option<Arc<AtomicU64>>);

impl Held {
    pub(crate) fn new(c: Option<&Arc<AtomicU64>>) -> Held {
        add(c);
        Held(c.cloned())
    }

    /// The event went on (queued for its reader): it stays counted, and the
    /// reader calls [`release`] when it takes it.
    pub(crate) fn handed_on(mut self) {
        self.0 = None;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        release(self.0.as_ref(), 1);
    }
}

/// An event is held (queued for its reader, who calls [`release`]).
pub(crate) fn add(c: Option<&Arc<AtomicU64>>) {
    if let Some(c) = c {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// `n` held events were taken (or dropped).
pub(crate) fn release(c: Option<&Arc<AtomicU64>>, n: u64) {
    if let Some(c) = c {
        // Never below zero, whatever the order of racing updates.
        let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }
}

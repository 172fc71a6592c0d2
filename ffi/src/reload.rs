//! Plugin reloads for the UniFFI (JVM) bindings: one generation of foreign
//! listeners at a time.
//!
//! UniFFI keeps a single process-wide table of the foreign callback functions,
//! replaced each time the generated Kotlin initialises, and the Kotlin side
//! numbers its listeners from the same start in every class loader. After a
//! plugin reload (new classes, same process, same native library) a listener
//! of the previous classes must therefore never be called, or freed, through
//! the new table: it would reach the wrong object or none.
//!
//! The hand-written Kotlin layer calls [`peat_kotlin_attach`] (plain JNA,
//! before the generated code initialises). It starts a new generation and ends
//! every push subscription (and the log listener) whose listener belongs to an
//! older one. Those listeners are forgotten, not freed: they belong to the old
//! class loader and go away with it. Subscribing with an old generation fails,
//! so a stale copy of the bindings gets an error instead of misrouted events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::error::{ErrorCode, SdkError, SdkResult};

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Push subscriptions made through UniFFI: handle → generation of its listener.
fn subscriptions() -> std::sync::MutexGuard<'static, HashMap<u64, u64>> {
    static SUBS: OnceLock<Mutex<HashMap<u64, u64>>> = OnceLock::new();
    SUBS.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Generation of the foreign log listener, if one is installed.
fn log_listener() -> std::sync::MutexGuard<'static, Option<u64>> {
    static LOG: Mutex<Option<u64>> = Mutex::new(None);
    LOG.lock().unwrap_or_else(|p| p.into_inner())
}

/// The generation of the bindings now attached.
pub(crate) fn current() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Fails unless `generation` is the attached one.
pub(crate) fn check(generation: u64) -> SdkResult<()> {
    if generation == current() {
        Ok(())
    } else {
        Err(SdkError::new(
            ErrorCode::Closed,
            "these bindings were replaced by a newer load of the library's classes (plugin reload)",
        ))
    }
}

/// Starts a new generation and ends everything the older ones left.
pub(crate) fn attach() -> u64 {
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
    let stale: Vec<u64> = {
        let mut subs = subscriptions();
        let stale = subs
            .iter()
            .filter(|(_, g)| **g < generation)
            .map(|(h, _)| *h)
            .collect::<Vec<_>>();
        for h in &stale {
            subs.remove(h);
        }
        stale
    };
    for h in &stale {
        // Waits for a running callback of that listener (still through the
        // old table: the new one is installed after this returns).
        let _ = crate::sdk::unsubscribe(*h);
    }
    let old_log = {
        let mut log = log_listener();
        matches!(*log, Some(g) if g < generation) && log.take().is_some()
    };
    if old_log {
        crate::log::clear_log_sink();
    }
    if !stale.is_empty() || old_log {
        tracing::info!(
            generation,
            subscriptions = stale.len(),
            "bindings reloaded: ended the previous load's listeners"
        );
    }
    generation
}

/// Records a push subscription made with a listener of `generation`.
pub(crate) fn track(handle: u64, generation: u64) {
    subscriptions().insert(handle, generation);
}

/// Forgets a subscription ended through the bindings.
pub(crate) fn untrack(handle: u64) {
    subscriptions().remove(&handle);
}

/// Records that the log listener is a foreign one of `generation` (or none).
pub(crate) fn set_log_listener(generation: Option<u64>) {
    *log_listener() = generation;
}

/// Starts a new generation of UniFFI listeners; called by the Kotlin layer
/// before the generated bindings initialise (see the module docs). Returns the
/// generation, which the layer passes when it subscribes.
#[no_mangle]
pub extern "C" fn peat_kotlin_attach() -> u64 {
    attach()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::live_handles;
    use crate::records::SubEvent;
    use crate::sdk::tests::{opts, serial};
    use crate::uniffi_api::{subscribe_docs, unsubscribe, EventListener, PeatException};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Counts its calls and its drop.
    struct Counting {
        calls: Arc<AtomicUsize>,
        drops: Arc<AtomicUsize>,
    }

    impl EventListener for Counting {
        fn on_event(&self, event: SubEvent) {
            if matches!(event, SubEvent::Doc(_)) {
                self.calls.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    impl Drop for Counting {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<dyn EventListener>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (calls, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let l = Counting {
            calls: calls.clone(),
            drops: drops.clone(),
        };
        (Arc::new(l), calls, drops)
    }

    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn attach_ends_the_previous_generations_listeners_without_freeing_them() -> anyhow::Result<()> {
        let _serial = serial();
        let dir = tempfile::tempdir()?;
        let node = crate::sdk::node_open(&opts(dir.path()), 10_000, 0)?;
        let old = attach();
        let (listener, calls, drops) = counting();
        subscribe_docs(old, node, "c".into(), None, false, listener)?;
        crate::sdk::put(node, "c", "a", r#"{"v":1}"#)?;
        wait_for("the first event", || calls.load(Ordering::SeqCst) == 1);

        let before = live_handles();
        let new = attach();
        assert!(new > old);
        assert_eq!(
            live_handles(),
            before - 1,
            "the old subscription's handle is freed"
        );
        crate::sdk::put(node, "c", "b", r#"{"v":2}"#)?;
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "an old listener is never called again"
        );
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "an old listener is forgotten, not freed"
        );

        let (stale, _, _) = counting();
        let refused = subscribe_docs(old, node, "c".into(), None, false, stale);
        assert!(matches!(refused, Err(PeatException::Closed(_))));

        let (current, calls2, drops2) = counting();
        let sub = subscribe_docs(new, node, "c".into(), None, false, current)?;
        crate::sdk::put(node, "c", "c", r#"{"v":3}"#)?;
        wait_for("the new listener's event", || {
            calls2.load(Ordering::SeqCst) == 1
        });
        unsubscribe(sub)?;
        assert_eq!(
            drops2.load(Ordering::SeqCst),
            1,
            "a current listener is freed once"
        );
        crate::sdk::node_close(node, 5_000)?;
        Ok(())
    }
}

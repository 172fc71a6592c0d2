//! A token bucket whose waiters are served by class.
//!
//! Tokens are bytes; they come back at the bucket's rate up to its burst
//! (a tenth of a second of the rate, at least [`MIN_BURST`]). A sender takes
//! the bytes it is about to hand to QUIC, waiting until the bucket holds them
//! (a write larger than the burst waits for a full bucket and leaves it in
//! debt, so the bucket's rate holds over time whatever the write sizes).
//!
//! **Order.** While a sender of a higher class waits, no lower class takes
//! tokens: a critical update waits only for the tokens of its own bytes.
//! **Starvation guarantee**: a sender that has waited [`STARVED`] goes before
//! every class (once), so a class that higher ones keep out still gets about
//! one write per [`STARVED`] — never zero.
//!
//! Time is tokio's, so tests drive it with paused time.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::locks::LockExt;
use crate::policy::Priority;

/// The smallest burst a bucket allows (bytes): one blob piece or a few sync frames.
pub const MIN_BURST: u64 = 16 * 1024;

/// After waiting this long a sender goes before every class (see the module docs).
pub const STARVED: Duration = Duration::from_millis(900);

pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
    turn: Notify,
}

struct State {
    tokens: f64,
    at: Instant,
    /// Senders waiting, by class.
    waiting: [u32; 5],
    /// Senders waiting past [`STARVED`].
    starved: u32,
}

impl State {
    /// Whether `n` bytes of `class` may go now without waiting: the tokens
    /// are there and no sender of a class as high, nor a starved one, waits.
    fn admits(&self, class: Priority, n: u64) -> bool {
        self.starved == 0
            && self.waiting[..=class.index()].iter().all(|&w| w == 0)
            && self.tokens >= n as f64
    }

    fn refill(&mut self, rate: f64, burst: f64) {
        let now = Instant::now();
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * rate).min(burst);
        self.at = now;
    }
}

/// A waiting sender's place in the bucket's counts, given back if the wait is
/// abandoned (the sending task cancelled).
struct Place<'a> {
    bucket: &'a Bucket,
    class: Option<usize>,
    starved: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.class.is_none() && !self.starved {
            return;
        }
        let mut st = self.bucket.state.locked();
        if let Some(c) = self.class {
            st.waiting[c] -= 1;
        }
        if self.starved {
            st.starved -= 1;
        }
        drop(st);
        self.bucket.turn.notify_waiters();
    }
}

impl Bucket {
    /// A bucket of `rate` bytes per second, full.
    pub(crate) fn new(rate: u64) -> Bucket {
        let rate = rate.max(1) as f64;
        let burst = (rate / 10.0).max(MIN_BURST as f64);
        Bucket {
            rate,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                at: Instant::now(),
                waiting: [0; 5],
                starved: 0,
            }),
            turn: Notify::new(),
        }
    }

    /// Takes `n` bytes' tokens for a sender of `class`, waiting as the module
    /// docs say; returns how long it waited.
    pub(crate) async fn take(&self, class: Priority, n: u64) -> Duration {
        let start = Instant::now();
        let need = (n as f64).min(self.burst);
        let mut place = Place {
            bucket: self,
            class: None,
            starved: false,
        };
        loop {
            let turn = self.turn.notified();
            tokio::pin!(turn);
            turn.as_mut().enable();
            let wait = {
                let mut st = self.state.locked();
                st.refill(self.rate, self.burst);
                let first = if st.starved > 0 {
                    place.starved
                } else {
                    st.waiting[..class.index()].iter().all(|&w| w == 0)
                };
                if first && st.tokens >= need {
                    st.tokens -= n as f64;
                    drop(st);
                    // `place` gives back its counts and wakes the others.
                    return start.elapsed();
                }
                if place.class.is_none() {
                    st.waiting[class.index()] += 1;
                    place.class = Some(class.index());
                }
                let waited = start.elapsed();
                if !place.starved && class != Priority::Critical && waited >= STARVED {
                    st.starved += 1;
                    place.starved = true;
                    // Others re-check: they must now let this one go first.
                    drop(st);
                    self.turn.notify_waiters();
                    continue;
                }
                if first {
                    Duration::from_secs_f64((need - st.tokens) / self.rate)
                } else if place.starved || class == Priority::Critical {
                    // Behind another starved sender: it wakes us when done.
                    Duration::from_secs(3600)
                } else {
                    STARVED - waited
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait.max(Duration::from_micros(100))) => {}
                _ = turn => {}
            }
        }
    }

    /// Whether `n` bytes of `class` may go now without waiting: the tokens are
    /// there and no sender of a class as high (nor a starved one) waits. It
    /// takes nothing (see [`Bucket::take_now`]).
    pub(crate) fn can_take(&self, class: Priority, n: u64) -> bool {
        let mut st = self.state.locked();
        st.refill(self.rate, self.burst);
        st.admits(class, n)
    }

    /// Takes `n` bytes' tokens whatever the bucket holds (after
    /// [`Bucket::can_take`] said yes).
    pub(crate) fn take_now(&self, n: u64) {
        self.state.locked().tokens -= n as f64;
    }

    /// Whether the bucket is full (it then holds nothing anyone is owed:
    /// forgetting it and starting a new one later changes nothing).
    pub(crate) fn is_full(&self) -> bool {
        let mut st = self.state.locked();
        st.refill(self.rate, self.burst);
        st.tokens >= self.burst && st.waiting.iter().all(|&w| w == 0)
    }

    /// Tokens held now (may be negative after a write larger than the burst).
    pub(crate) fn tokens_now(&self) -> f64 {
        let mut st = self.state.locked();
        st.refill(self.rate, self.burst);
        st.tokens
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Takes `n` bytes now if the bucket admits them, as a datagram does.
    fn try_take(b: &Bucket, class: Priority, n: u64) -> bool {
        let ok = b.can_take(class, n);
        if ok {
            b.take_now(n);
        }
        ok
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_holds_over_time_whatever_the_write_sizes() {
        let b = Bucket::new(100_000);
        let start = Instant::now();
        // 1 MB in writes of 64 KiB (larger than the 16 KiB burst) and 300 B
        let mut sent = 0u64;
        let mut i = 0;
        while sent < 1_000_000 {
            let n = if i % 2 == 0 { 65_536 } else { 300 };
            b.take(Priority::Bulk, n).await;
            sent += n;
            i += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        // the first burst is free, and the last write (64 KiB, larger than
        // the burst) leaves a debt not waited for yet: the rest went at the rate
        let expected = (sent as f64 - 65_536.0) / 100_000.0;
        assert!(
            secs >= expected * 0.99 && secs <= expected * 1.01 + 0.01,
            "{secs} s for {sent} B"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_critical_sender_goes_before_waiting_bulk_and_waits_only_for_its_bytes() {
        let b = Arc::new(Bucket::new(100_000));
        // empty the bucket, then queue bulk writes
        b.take(Priority::Bulk, 16_384).await;
        let bulk = {
            let b = b.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    b.take(Priority::Bulk, 16_384).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waited = b.take(Priority::Critical, 200).await;
        // it waited for at most its own 200 B at the rate, not for the bulk
        // writer's 16 KiB
        assert!(waited <= Duration::from_millis(3), "{waited:?}");
        bulk.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_class_kept_out_by_a_saturating_higher_one_still_gets_a_write_per_starved_time() {
        let b = Arc::new(Bucket::new(100_000));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut high = Vec::new();
        for _ in 0..3 {
            let (b, stop) = (b.clone(), stop.clone());
            high.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    b.take(Priority::High, 8_192).await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let start = Instant::now();
        let mut bulk_writes = 0;
        while start.elapsed() < Duration::from_secs(10) {
            b.take(Priority::Bulk, 8_192).await;
            bulk_writes += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for h in high {
            h.await.unwrap();
        }
        // about one per STARVED (900 ms) and its bytes: 8 to 13 in ten seconds, not zero,
        // and not a fair share either (that would be about 30)
        assert!((8..=13).contains(&bulk_writes), "{bulk_writes}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_wait_gives_its_place_back() {
        let b = Arc::new(Bucket::new(10_000));
        b.take(Priority::Critical, 16_384).await;
        let waiting = {
            let b = b.clone();
            tokio::spawn(async move { b.take(Priority::Critical, 10_000).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // a critical sender waits: bulk cannot take
        assert!(!try_take(&b, Priority::Bulk, 1));
        waiting.abort();
        let _ = waiting.await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            try_take(&b, Priority::Bulk, 1),
            "the cancelled waiter still blocks"
        );
        assert!(b.is_full() || b.tokens_now() > 16_000.0);
    }

    #[tokio::test(start_paused = true)]
    async fn try_take_refuses_without_tokens_and_takes_nothing() {
        let b = Bucket::new(1_000);
        assert!(try_take(&b, Priority::High, 16_000));
        assert!(!try_take(&b, Priority::High, 1_000));
        let before = b.tokens_now();
        assert!(!try_take(&b, Priority::High, 1_000));
        assert!((b.tokens_now() - before).abs() < 1.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(try_take(&b, Priority::High, 1_000));
    }
}

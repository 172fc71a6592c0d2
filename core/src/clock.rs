//! Time: the wall clock in Unix ms (timestamps on the wire, key epochs,
//! document lifetimes) and the token bucket that bounds per-peer work.

use tokio::time::Instant;

/// Unix ms on this node's clock.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Refills at `rate` per second up to `rate`; written here because it is ten
/// lines and runs on every datagram.
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
    rate: f64,
}

impl Bucket {
    pub fn new(rate: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rate),
            at: now,
            rate: f64::from(rate),
        }
    }

    pub fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

//! Pacing a sender or a receiver to a byte rate.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::locks::LockExt;

/// Paces a sender or receiver to a byte rate ("virtual clock": each byte has a
/// due time; waits when ahead). Idle time does not build up a burst credit
/// beyond a tenth of a second.
pub(crate) struct Pacer {
    rate: f64,
    slack: Duration,
    state: Mutex<(Instant, f64)>,
}

impl Pacer {
    pub(crate) fn new(rate: u64) -> Pacer {
        Pacer::with_slack(rate, Duration::ZERO)
    }

    /// A pacer that only waits once more than `slack` ahead of the rate: a
    /// guard against a sender that ignores the rate, which does not queue data
    /// behind a sender that honours it.
    pub(crate) fn with_slack(rate: u64, slack: Duration) -> Pacer {
        Pacer {
            rate: rate.max(1) as f64,
            slack,
            state: Mutex::new((Instant::now(), 0.0)),
        }
    }

    pub(crate) async fn take(&self, n: u64) {
        let due = {
            let mut st = self.state.locked();
            let now = Instant::now();
            let (start, sent) = &mut *st;
            let elapsed = now.duration_since(*start).as_secs_f64();
            if *sent / self.rate < elapsed - 0.1 {
                *sent = (elapsed - 0.1) * self.rate;
            }
            *sent += n as f64;
            (*start + Duration::from_secs_f64(*sent / self.rate)).checked_sub(self.slack)
        };
        let Some(due) = due else { return };
        tokio::time::sleep_until(due.into()).await;
    }
}

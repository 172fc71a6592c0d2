//! A subscription to ephemeral topics, as the application reads it.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Counters, Message};
use crate::error::{Error, Result};
use crate::events::{Event, Subscription};

/// A subscription to ephemeral topics. Expired messages are skipped (and
/// counted in [`EphemeralStats::expired_unread`]); a latest-only subscription
/// holds one message per origin and topic, the newest.
pub struct TopicSubscription {
    pub(super) inner: Subscription<Message>,
    pub(super) counters: Arc<Counters>,
}

impl std::fmt::Debug for TopicSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSubscription").finish_non_exhaustive()
    }
}

impl TopicSubscription {
    fn live(&self, e: Event<Message>) -> Option<Event<Message>> {
        match e {
            Event::Item(m) if m.expires_at <= Instant::now() => {
                self.counters.expired_unread.fetch_add(1, Relaxed);
                None
            }
            e => Some(e),
        }
    }

    /// The next event without waiting.
    pub fn try_next(&self) -> Option<Event<Message>> {
        loop {
            let e = self.inner.try_next()?;
            if let Some(e) = self.live(e) {
                return Some(e);
            }
        }
    }

    /// Waits for the next event; `None` once closed and drained.
    pub async fn next(&self) -> Option<Event<Message>> {
        loop {
            let e = self.inner.next().await?;
            if let Some(e) = self.live(e) {
                return Some(e);
            }
        }
    }

    /// Waits up to `timeout`; `Ok(None)` on timeout, `Err(Closed)` once closed.
    pub async fn next_timeout(&self, timeout: Duration) -> Result<Option<Event<Message>>> {
        match tokio::time::timeout(timeout, self.next()).await {
            Ok(Some(e)) => Ok(Some(e)),
            Ok(None) => Err(Error::Closed),
            Err(_) => Ok(None),
        }
    }

    /// Ends the subscription.
    pub fn close(&self) {
        self.inner.close();
    }
}

//! The latest message of each (origin, topic), until it expires: what
//! [`crate::Node::latest`] answers from.
//!
//! Bound: `capacity` entries. A message for a new key in a full table evicts
//! the entry that expires soonest (counted in
//! [`super::EphemeralStats::latest_evicted`]).

use std::collections::{BTreeSet, HashMap};

use tokio::time::Instant;

use std::sync::atomic::Ordering::Relaxed;

use super::{Counters, Message, TopicFilter};

type Key = ([u8; 32], String);

pub(crate) struct Latest {
    by_key: HashMap<Key, Message>,
    by_expiry: BTreeSet<(Instant, Key)>,
    capacity: usize,
}

impl Latest {
    pub fn new(capacity: usize) -> Latest {
        Latest {
            by_key: HashMap::new(),
            by_expiry: BTreeSet::new(),
            capacity: capacity.max(1),
        }
    }

    fn drop_expired(&mut self, now: Instant, c: &Counters) {
        while let Some((at, key)) = self.by_expiry.first().cloned() {
            if at > now {
                break;
            }
            self.by_expiry.pop_first();
            self.by_key.remove(&key);
        }
        c.latest_len.store(self.by_key.len() as u64, Relaxed);
    }

    /// Keeps `m` if it is newer than what is held for its key.
    pub fn put(&mut self, m: &Message, now: Instant, c: &Counters) {
        self.drop_expired(now, c);
        let key = (*m.origin.as_bytes(), m.topic.clone());
        if let Some(old) = self.by_key.get(&key) {
            if old.seq >= m.seq {
                return;
            }
            let at = old.expires_at;
            self.by_expiry.remove(&(at, key.clone()));
        } else if self.by_key.len() >= self.capacity {
            if let Some((_, victim)) = self.by_expiry.pop_first() {
                self.by_key.remove(&victim);
                c.latest_evicted.fetch_add(1, Relaxed);
            }
        }
        self.by_expiry.insert((m.expires_at, key.clone()));
        self.by_key.insert(key, m.clone());
        c.latest_len.store(self.by_key.len() as u64, Relaxed);
    }

    /// The live messages a filter matches, oldest publication first.
    pub fn matching(&mut self, filter: &TopicFilter, now: Instant, c: &Counters) -> Vec<Message> {
        self.drop_expired(now, c);
        let mut v: Vec<Message> = self
            .by_key
            .values()
            .filter(|m| filter.matches(&m.topic))
            .cloned()
            .collect();
        v.sort_by_key(|m| (m.sent_at_ms, m.seq));
        v
    }
}

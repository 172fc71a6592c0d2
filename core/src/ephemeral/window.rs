//! Which messages of each origin were seen: a sliding window over message
//! numbers, per origin, for duplicate suppression (forwarding sends copies
//! along several paths) and for the multicast path's replay defence.
//!
//! A publisher numbers its messages `seq`, one apart, starting from its clock
//! at start-up times 2^20 — so a restarted publisher continues above where it
//! stopped as long as it sent fewer than 2^20 messages per second of its
//! previous run. Per origin the window keeps the highest number seen and a
//! bitmap of the [`WINDOW`] numbers below it: a number above is new, one in
//! the window is new once, one below the window is too old.
//!
//! Bound: at most `capacity` origins; when full, the origin heard from least
//! recently is forgotten (its next message starts a fresh window — on the
//! multicast path the timestamp check still stops old replays).

use std::num::NonZeroUsize;

use lru::LruCache;

/// Messages per origin the window remembers below the newest.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// What a message number is against its origin's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time: accept.
    New,
    /// Already seen.
    Duplicate,
    /// Below the window: cannot tell, so refused.
    TooOld,
}

struct Bits {
    top: u64,
    /// Bit i set: `top - i` seen (bit 0 is `top` itself).
    map: [u64; WORDS],
}

impl Bits {
    fn get(&self, i: u64) -> bool {
        self.map[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: u64) {
        self.map[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// Moves the top up by `by`, shifting the map.
    fn advance(&mut self, by: u64) {
        if by >= WINDOW {
            self.map = [0; WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        let mut out = [0u64; WORDS];
        for (i, o) in out.iter_mut().enumerate() {
            if i < words {
                continue;
            }
            let src = i - words;
            let mut v = self.map[src] << bits;
            if bits > 0 && src > 0 {
                v |= self.map[src - 1] >> (64 - bits);
            }
            *o = v;
        }
        self.map = out;
    }
}

/// Windows of many origins, bounded.
pub struct Windows {
    origins: LruCache<[u8; 32], Bits>,
}

impl Windows {
    /// Remembers at most `capacity` origins (at least 1).
    pub fn new(capacity: usize) -> Windows {
        Windows {
            origins: LruCache::new(NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// Checks `seq` of `origin` without recording it.
    pub fn peek(&self, origin: &[u8; 32], seq: u64) -> Seen {
        match self.origins.peek(origin) {
            None => Seen::New,
            Some(b) if seq > b.top => Seen::New,
            Some(b) if b.top - seq >= WINDOW => Seen::TooOld,
            Some(b) if b.get(b.top - seq) => Seen::Duplicate,
            Some(_) => Seen::New,
        }
    }

    /// Checks `seq` of `origin` and records it if new.
    pub fn check(&mut self, origin: &[u8; 32], seq: u64) -> Seen {
        let seen = self.peek(origin, seq);
        if seen != Seen::New {
            return seen;
        }
        match self.origins.get_mut(origin) {
            Some(b) => {
                if seq > b.top {
                    b.advance(seq - b.top);
                    b.top = seq;
                }
                let i = b.top - seq;
                b.set(i);
            }
            None => {
                let mut b = Bits {
                    top: seq,
                    map: [0; WORDS],
                };
                b.set(0);
                self.origins.push(*origin, b);
            }
        }
        Seen::New
    }

    /// Origins remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.origins.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn duplicates_and_old_numbers_are_refused() {
        let mut w = Windows::new(4);
        let o = [1; 32];
        assert_eq!(w.check(&o, 100), Seen::New);
        assert_eq!(w.check(&o, 100), Seen::Duplicate);
        assert_eq!(w.check(&o, 99), Seen::New);
        assert_eq!(w.check(&o, 100 + WINDOW), Seen::New);
        assert_eq!(w.check(&o, 99), Seen::TooOld);
        assert_eq!(w.check(&o, 101), Seen::New);
        assert_eq!(w.check(&o, 101), Seen::Duplicate);
    }

    #[test]
    fn the_origin_heard_least_recently_is_forgotten_at_the_bound() {
        let mut w = Windows::new(2);
        w.check(&[1; 32], 5);
        w.check(&[2; 32], 5);
        w.check(&[1; 32], 6);
        w.check(&[3; 32], 5);
        assert_eq!(w.len(), 2);
        // [2] was forgotten: its old number reads as new again
        assert_eq!(w.peek(&[2; 32], 5), Seen::New);
        assert_eq!(w.peek(&[1; 32], 5), Seen::Duplicate);
    }

    proptest! {
        /// Against a reference that remembers everything: the window never
        /// accepts a number twice, and accepts every first sighting within
        /// the window of the highest seen so far.
        #[test]
        fn matches_a_reference(seqs in proptest::collection::vec(0u64..4000, 1..400)) {
            let mut w = Windows::new(1);
            let mut all = HashSet::new();
            let mut top = None::<u64>;
            for s in seqs {
                let got = w.check(&[0; 32], s);
                let expect = match top {
                    Some(t) if s + WINDOW <= t => Seen::TooOld,
                    _ if all.contains(&s) => Seen::Duplicate,
                    _ => Seen::New,
                };
                prop_assert_eq!(got, expect, "seq {}", s);
                if got == Seen::New {
                    all.insert(s);
                    top = Some(top.map_or(s, |t| t.max(s)));
                }
            }
        }
    }
}

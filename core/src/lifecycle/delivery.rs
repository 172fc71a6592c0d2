//! Which documents written here no peer is known to hold yet, for
//! collections whose policy keeps them until delivered
//! ([`crate::CollectionPolicy::keep_until_delivered`]): the storage budget
//! skips those.
//!
//! **What "delivered" means.** A reconciliation round this node starts
//! (every anti-entropy interval, and on connect) compares its version set
//! with the peer's and yields the versions only this node holds. Every other
//! version of the round's snapshot is one the peer holds: a document written
//! here before the round started whose version is not among them is
//! delivered. One the peer lacked is sent during the round and confirmed by
//! a later round. So a document stays undelivered until some peer is proven
//! to hold its current version — never on the strength of bytes merely
//! handed to QUIC.
//!
//! Only the side that starts a round learns what the peer lacks. The side
//! that dialled starts rounds every anti-entropy interval; the other side
//! starts its own at that interval too while it has documents to prove
//! ([`Delivery::unproven`] under a keep-until-delivered policy).
//!
//! **Unknown is undelivered.** After open the node does not know what its
//! peers hold (nothing here is persisted), and past [`MAX_PENDING`] tracked
//! documents it stops tracking one by one: in both cases every document of
//! such a collection counts as undelivered until a round started after that
//! point completes; the documents that round found only here become the
//! tracked ones again. The bound costs at most a pause in eviction, never an
//! undelivered document.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::locks::LockExt;
use crate::storage::DocKey;

/// Documents tracked one by one, at most (see the module docs).
pub const MAX_PENDING: usize = 65_536;

pub(crate) struct Delivery {
    state: Mutex<State>,
}

struct State {
    /// Local writes so far (the round snapshot's clock).
    seq: u64,
    /// Documents written here, by the number of their last write.
    pending: HashMap<DocKey, u64>,
    /// Writes before this number are of unknown delivery (since open, or
    /// since tracking overflowed); `None`: every such write is in `pending`.
    unknown_before: Option<u64>,
}

impl Delivery {
    /// After open: everything of unknown delivery until a first round.
    pub(crate) fn new() -> Delivery {
        Delivery {
            state: Mutex::new(State {
                seq: 1,
                pending: HashMap::new(),
                unknown_before: Some(1),
            }),
        }
    }

    /// A document of a keep-until-delivered collection was written here.
    pub(crate) fn wrote(&self, key: &DocKey) {
        let mut st = self.state.locked();
        st.seq += 1;
        let seq = st.seq;
        if st.pending.len() >= MAX_PENDING && !st.pending.contains_key(key) {
            // Stop tracking one by one: everything is unknown until a round
            // that starts after this write completes.
            st.pending.clear();
            st.unknown_before = Some(seq + 1);
            return;
        }
        st.pending.insert(key.clone(), seq);
    }

    /// A round starts: its snapshot covers the writes up to the number returned.
    pub(crate) fn round_started(&self) -> u64 {
        let mut st = self.state.locked();
        st.seq += 1;
        st.seq
    }

    /// A round started at `started` completed; `only_here` are the documents
    /// whose versions the peer lacked.
    pub(crate) fn round_done(&self, started: u64, only_here: &HashSet<DocKey>) {
        let mut st = self.state.locked();
        st.pending
            .retain(|k, seq| *seq > started || only_here.contains(k));
        if st.unknown_before.is_some_and(|u| u <= started) {
            st.unknown_before = None;
            for k in only_here {
                if st.pending.len() >= MAX_PENDING {
                    st.unknown_before = Some(started + 1);
                    break;
                }
                st.pending.entry(k.clone()).or_insert(started);
            }
        }
    }

    /// Whether `key` (of a keep-until-delivered collection) may not be
    /// evicted: no peer is known to hold its current version.
    pub(crate) fn undelivered(&self, key: &DocKey) -> bool {
        let st = self.state.locked();
        st.unknown_before.is_some() || st.pending.contains_key(key)
    }

    /// Whether some document may be undelivered (a round would tell).
    pub(crate) fn unproven(&self) -> bool {
        let st = self.state.locked();
        st.unknown_before.is_some() || !st.pending.is_empty()
    }

    /// Documents tracked now.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.state.locked().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(id: &str) -> DocKey {
        DocKey::new("c", id).unwrap()
    }

    #[test]
    fn unknown_after_open_until_a_first_round_then_only_what_the_peer_lacked() {
        let d = Delivery::new();
        assert!(d.undelivered(&k("old")));
        let r = d.round_started();
        // the peer lacked "old2"
        d.round_done(r, &HashSet::from([k("old2")]));
        assert!(!d.undelivered(&k("old")));
        assert!(d.undelivered(&k("old2")));
        let r = d.round_started();
        d.round_done(r, &HashSet::new());
        assert!(!d.undelivered(&k("old2")));
    }

    #[test]
    fn a_write_after_a_round_started_waits_for_a_later_round() {
        let d = Delivery::new();
        let r = d.round_started();
        d.round_done(r, &HashSet::new());
        d.wrote(&k("a"));
        let r = d.round_started();
        d.wrote(&k("b"));
        // neither was found only here, but "b" came after the snapshot
        d.round_done(r, &HashSet::new());
        assert!(!d.undelivered(&k("a")));
        assert!(d.undelivered(&k("b")));
        // a document the peer lacked stays until a round shows it held
        d.wrote(&k("a"));
        let r = d.round_started();
        d.round_done(r, &HashSet::from([k("a")]));
        assert!(d.undelivered(&k("a")) && !d.undelivered(&k("b")));
    }

    #[test]
    fn past_the_bound_everything_is_undelivered_until_the_next_round() {
        let d = Delivery::new();
        let r = d.round_started();
        d.round_done(r, &HashSet::new());
        for i in 0..MAX_PENDING {
            d.wrote(&k(&format!("d{i}")));
        }
        assert_eq!(d.tracked(), MAX_PENDING);
        assert!(!d.undelivered(&k("never written")));
        d.wrote(&k("one more"));
        // tracking stopped: nothing may be evicted, memory stays bounded
        assert!(d.tracked() <= MAX_PENDING);
        assert!(d.undelivered(&k("never written")));
        // a round that started before the overflow does not clear it
        d.round_done(r, &HashSet::new());
        assert!(d.undelivered(&k("never written")));
        let r = d.round_started();
        d.round_done(r, &HashSet::from([k("d7")]));
        assert!(!d.undelivered(&k("never written")));
        assert!(d.undelivered(&k("d7")));
        assert_eq!(d.tracked(), 1);
    }
}

//! What a session owes its peer, queued lazily and within a byte budget.
//!
//! A request costs the peer a few dozen bytes (`Heads` with no heads, a `Want`
//! of 4,096 prefixes) but its answer can be a document's whole history, so
//! answers are queued as *what to send* (a document key, the peer's heads) and
//! rendered only when the writer can put them on the stream: one batch at a
//! time, whatever the peer asked for. The queue itself is bounded in bytes:
//! - a lazy answer past the budget is dropped and the session notes that it
//!   must reconcile again once the queue drains, which finds whatever the
//!   dropped answers would have sent (nothing is lost, only delayed);
//! - a protocol frame (a reconciliation answer, a heads request) past twice the
//!   budget means the peer keeps asking without reading: the session ends.
//!
//! Protocol frames go first, then answers by their collection's priority
//! class (see [`crate::policy::Priority`]), oldest first within a class.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::policy::Priority;
use crate::storage::DocKey;
use crate::wire::{Frame, Hash32};

/// Bytes of queued answers a session may hold (32 MiB). A reconciliation answer
/// is at most 8 MiB, so honest traffic never comes near it.
pub(crate) const REPLY_BUDGET: usize = 32 << 20;

/// One thing owed to the peer.
pub(crate) enum Reply {
    /// A frame already made (reconciliation answers, heads requests, wants).
    Frame(Frame),
    /// Our heads of this document.
    Offer(DocKey),
    /// The peer lacks this document: the whole of it if small, else our heads.
    Wanted(DocKey),
    /// The peer offered these heads (`answer`: in reply to an offer of ours).
    AnswerHeads {
        key: DocKey,
        theirs: Vec<Hash32>,
        answer: bool,
    },
    /// Our changes beyond the peer's heads.
    Ahead { key: DocKey, theirs: Vec<Hash32> },
}

impl Reply {
    /// Bytes this entry holds while queued.
    fn cost(&self) -> usize {
        let key = |k: &DocKey| k.collection().len() + k.id().len() + 64;
        match self {
            Reply::Frame(Frame::Reconcile { msg, .. }) => msg.len() + 64,
            Reply::Frame(Frame::Want { prefixes }) => prefixes.len() * 8 + 64,
            Reply::Frame(Frame::Heads {
                collection,
                id,
                heads,
                ..
            }) => collection.len() + id.len() + heads.len() * 32 + 64,
            Reply::Frame(_) => 256,
            Reply::Offer(k) | Reply::Wanted(k) => key(k),
            Reply::AnswerHeads { key: k, theirs, .. } | Reply::Ahead { key: k, theirs } => {
                key(k) + theirs.len() * 32
            }
        }
    }

    fn is_frame(&self) -> bool {
        matches!(self, Reply::Frame(_))
    }

    /// The document this answer is about (none for a protocol frame).
    pub(crate) fn key(&self) -> Option<&DocKey> {
        match self {
            Reply::Frame(_) => None,
            Reply::Offer(k)
            | Reply::Wanted(k)
            | Reply::AnswerHeads { key: k, .. }
            | Reply::Ahead { key: k, .. } => Some(k),
        }
    }
}

/// A queued reply and its class (`None`: a protocol frame, sent first).
pub(crate) type Owed = (Reply, Option<Priority>);

/// The queues by class, and their byte count.
#[derive(Default)]
struct Queues {
    frames: VecDeque<(Reply, usize)>,
    classes: [VecDeque<(Reply, usize)>; 5],
    bytes: usize,
}

impl Queues {
    fn queue(&mut self, class: Option<Priority>) -> &mut VecDeque<(Reply, usize)> {
        match class {
            None => &mut self.frames,
            Some(p) => &mut self.classes[p.index()],
        }
    }
}

/// The queue of [`Reply`]s with its byte count.
#[derive(Default)]
pub(crate) struct Replies {
    q: Mutex<Queues>,
    /// Answers were dropped at the budget: reconcile again once drained.
    resync: AtomicBool,
}

impl Replies {
    /// Queues `r` in `class` (`None` for a protocol frame); see the module
    /// docs for what happens at the budget.
    pub(crate) fn push(&self, r: Reply, class: Option<Priority>) -> Result<()> {
        let cost = r.cost();
        let mut q = self.q.locked();
        let limit = if r.is_frame() {
            2 * REPLY_BUDGET
        } else {
            REPLY_BUDGET
        };
        if q.bytes + cost > limit {
            if r.is_frame() {
                return Err(Error::Protocol(format!(
                    "the peer does not read its answers ({} bytes queued)",
                    q.bytes
                )));
            }
            self.resync.store(true, Ordering::Relaxed);
            return Ok(());
        }
        q.bytes += cost;
        let class = if r.is_frame() { None } else { class };
        q.queue(class).push_back((r, cost));
        Ok(())
    }

    /// Up to `max` queued replies: protocol frames first, then by class,
    /// oldest first within each.
    pub(crate) fn take(&self, max: usize) -> Vec<Owed> {
        let mut q = self.q.locked();
        let mut out = Vec::new();
        let order = std::iter::once(None).chain(Priority::ALL.into_iter().map(Some));
        for class in order {
            while out.len() < max {
                let Some((r, cost)) = q.queue(class).pop_front() else {
                    break;
                };
                q.bytes -= cost;
                out.push((r, class));
            }
        }
        out
    }

    /// Returns replies taken but not yet rendered to the front of their
    /// queues, in order (never refused: they were within the budget when queued).
    pub(crate) fn put_back(&self, replies: Vec<Owed>) {
        let mut q = self.q.locked();
        for (r, class) in replies.into_iter().rev() {
            let cost = r.cost();
            q.bytes += cost;
            q.queue(class).push_front((r, cost));
        }
    }

    /// Bytes queued now.
    pub(crate) fn bytes(&self) -> usize {
        self.q.locked().bytes
    }

    /// True once if answers were dropped since the last call.
    pub(crate) fn take_resync(&self) -> bool {
        self.resync.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_answers_past_the_budget_are_dropped_for_a_resync_and_frames_end_the_session() {
        let r = Replies::default();
        let key = DocKey::new("c", "d").unwrap();
        let per = Reply::Offer(key.clone()).cost();
        for _ in 0..REPLY_BUDGET / per + 10 {
            r.push(Reply::Offer(key.clone()), Some(Priority::Normal))
                .unwrap();
        }
        assert!(r.bytes() <= REPLY_BUDGET);
        assert!(r.take_resync());
        assert!(!r.take_resync());
        // frames still fit up to twice the budget, then the peer is cut off
        let big = || {
            Reply::Frame(Frame::Reconcile {
                start: false,
                msg: vec![0; 8 << 20],
            })
        };
        r.push(big(), None).unwrap();
        r.push(big(), None).unwrap();
        r.push(big(), None).unwrap();
        assert!(r.push(big(), None).is_err());
        assert!(r.bytes() <= 2 * REPLY_BUDGET);
        let taken = r.take(10);
        assert_eq!(taken.len(), 10);
    }

    #[test]
    fn frames_go_first_then_answers_by_class() {
        let r = Replies::default();
        let k = |id: &str| DocKey::new("c", id).unwrap();
        r.push(Reply::Offer(k("bulk")), Some(Priority::Bulk))
            .unwrap();
        r.push(Reply::Offer(k("normal")), Some(Priority::Normal))
            .unwrap();
        r.push(Reply::Offer(k("critical")), Some(Priority::Critical))
            .unwrap();
        r.push(Reply::Frame(Frame::Want { prefixes: vec![] }), None)
            .unwrap();
        let taken = r.take(3);
        let names: Vec<String> = taken
            .iter()
            .map(|(r, _)| r.key().map_or("frame".into(), |k| k.id().to_string()))
            .collect();
        assert_eq!(names, ["frame", "critical", "normal"]);
        // put back: the same order again, before what was left
        r.put_back(taken);
        let again: Vec<Option<Priority>> = r.take(10).into_iter().map(|(_, c)| c).collect();
        assert_eq!(
            again,
            [
                None,
                Some(Priority::Critical),
                Some(Priority::Normal),
                Some(Priority::Bulk)
            ]
        );
        assert_eq!(r.bytes(), 0);
    }
}

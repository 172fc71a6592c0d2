//! The sending half of a session: what is owed to the peer (replies, queued
//! lazily within a byte budget, see [`super::replies`]) and live updates, in
//! one or two lanes, each drained by its own writer onto its own stream.
//!
//! **Lanes.** With a peer speaking sync v2, documents of the low and bulk
//! priority classes travel on a second QUIC stream (the bulk lane) sent at a
//! lower QUIC priority than the main stream: a critical update never waits
//! behind bulk bytes already handed to QUIC. Everything else (protocol
//! frames, critical, high and normal documents) goes on the main lane. With
//! a v1 peer there is one lane.
//!
//! **Classes within a lane.** Higher classes go first (see [`LiveQueue`] for
//! the share a waiting lower class still gets).
//!
//! **Bounds.** Live updates go through a bounded queue per lane (its
//! capacity shared by the classes). When it is full, further updates for a
//! document are coalesced into a set of "dirty" documents; once the queue
//! drains the writer offers its heads for each of them, and the normal
//! heads/changes exchange brings the peer up to date. So a slow peer costs
//! bounded memory and never blocks local writes or other peers, and no update
//! is ever dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::replies::{Replies, Reply};
use crate::error::Result;
use crate::lifecycle::Lifecycle;
use crate::locks::LockExt;
use crate::policy::Priority;
use crate::storage::DocKey;
use crate::wire::{Frame, Hash32};

/// The main lane (protocol frames and the critical, high and normal classes).
pub(crate) const MAIN: usize = 0;
/// The bulk lane (the low and bulk classes), with sync v2 peers.
pub(crate) const BULK: usize = 1;

/// The bulk lane's QUIC priority is below the main stream's, so a main lane
/// that keeps the link full would starve it. When the bulk lane has waited
/// this long to hand a frame to QUIC, the main lane's writer pauses for
/// [`BULK_SLICE`]: a saturated link still carries bulk about a tenth of the
/// time, and a link the main lane leaves idle carries bulk all the time.
pub(crate) const BULK_STARVED: std::time::Duration = std::time::Duration::from_millis(900);
/// See [`BULK_STARVED`].
pub(crate) const BULK_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// After this many live updates of higher classes in a row while a lower
/// class waits, one of the lowest waiting class goes: a waiting class gets at
/// least one update in every `FAIR_SHARE + 1`.
pub(crate) const FAIR_SHARE: u32 = 16;

/// One lane's queues.
pub(crate) struct Lane {
    pub(super) replies: Replies,
    live: Mutex<LiveQueue>,
    pub(super) wake: Notify,
}

/// The sending half of a session, shared with the engine for broadcasts.
pub(crate) struct Outbox {
    lanes: Vec<Lane>,
    lifecycle: Arc<Lifecycle>,
    /// Asks the session for a reconciliation round now (a better link came
    /// back and documents were held back from the peer).
    pub(super) reconcile: Notify,
    cap: usize,
    /// Classes on (else every document is of the normal class).
    qos: bool,
    /// Since when the bulk lane's writer has waited for QUIC to take a frame.
    bulk_waiting: Mutex<Option<tokio::time::Instant>>,
}

/// Live updates by class: frames in order, then documents whose updates were
/// coalesced (their heads are offered).
#[derive(Default)]
struct LiveQueue {
    classes: [ClassQueue; 5],
    len: usize,
    /// Updates taken in a row while a lower class waited.
    streak: u32,
}

#[derive(Default)]
struct ClassQueue {
    frames: VecDeque<Frame>,
    dirty: HashSet<DocKey>,
}

impl ClassQueue {
    fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.dirty.is_empty()
    }
}

impl Outbox {
    /// An outbox with one lane, or two (`bulk_lane`) for a sync v2 peer.
    pub(crate) fn new(
        cap: usize,
        bulk_lane: bool,
        lifecycle: Arc<Lifecycle>,
        qos: bool,
    ) -> Arc<Self> {
        let lane = || Lane {
            replies: Replies::default(),
            live: Mutex::new(LiveQueue::default()),
            wake: Notify::new(),
        };
        let lanes = if bulk_lane {
            vec![lane(), lane()]
        } else {
            vec![lane()]
        };
        Arc::new(Outbox {
            lanes,
            lifecycle,
            reconcile: Notify::new(),
            cap: cap.max(1),
            qos,
            bulk_waiting: Mutex::new(None),
        })
    }

    /// The bulk lane's writer starts (`true`) or finishes handing a frame to QUIC.
    pub(super) fn bulk_writing(&self, writing: bool) {
        *self.bulk_waiting.locked() = writing.then(tokio::time::Instant::now);
    }

    /// Called by the main lane's writer before each frame: pauses for
    /// [`BULK_SLICE`] when the bulk lane has been starved for [`BULK_STARVED`].
    pub(super) async fn yield_to_bulk(&self) {
        let starved = {
            let mut w = self.bulk_waiting.locked();
            match *w {
                Some(t) if t.elapsed() >= BULK_STARVED => {
                    *w = Some(tokio::time::Instant::now() + BULK_SLICE);
                    true
                }
                _ => false,
            }
        };
        if starved {
            tokio::time::sleep(BULK_SLICE).await;
        }
    }

    /// The lanes this outbox has (1 or 2).
    #[cfg(test)]
    pub(crate) fn lane_count(&self) -> usize {
        self.lanes.len()
    }

    pub(super) fn lane(&self, i: usize) -> &Lane {
        &self.lanes[i.min(self.lanes.len() - 1)]
    }

    /// The class of a collection's documents now.
    pub(crate) fn class_of(&self, collection: &str) -> Priority {
        if !self.qos {
            return Priority::Normal;
        }
        self.lifecycle
            .policies
            .get()
            .for_collection(collection)
            .priority
    }

    fn lane_of(&self, class: Priority) -> usize {
        if class >= Priority::Low && self.lanes.len() > 1 {
            BULK
        } else {
            MAIN
        }
    }

    /// Queues something owed to the peer (see [`super::replies`] for its bound),
    /// in its document's class and lane.
    pub(crate) fn reply(&self, r: Reply) -> Result<()> {
        let class = r.key().map(|k| self.class_of(k.collection()));
        let lane = self.lane(class.map_or(MAIN, |c| self.lane_of(c)));
        lane.replies.push(r, class)?;
        lane.wake.notify_one();
        Ok(())
    }

    /// Queues a protocol frame owed to the peer (main lane, first).
    pub(crate) fn send(&self, f: Frame) -> Result<()> {
        self.reply(Reply::Frame(f))
    }

    /// Bytes of answers queued for the peer.
    pub(crate) fn queued_reply_bytes(&self) -> usize {
        self.lanes.iter().map(|l| l.replies.bytes()).sum()
    }

    /// Live updates waiting in every lane (a coalesced document counts once).
    pub(crate) fn queued_updates(&self) -> usize {
        self.lanes.iter().map(|l| l.live.locked().len).sum()
    }

    /// Queues a live update, coalescing if its lane's queue is full.
    /// A signed update's `Signatures` frame goes with it (one entry of the
    /// queue's bound).
    pub(crate) fn push_live(
        &self,
        key: &DocKey,
        changes: &[Vec<u8>],
        heads: &[Hash32],
        sigs: &[Option<crate::storage::SigRow>],
    ) {
        let class = self.class_of(key.collection());
        let lane = self.lane(self.lane_of(class));
        let mut q = lane.live.locked();
        let full = q.len >= self.cap;
        let c = &mut q.classes[class.index()];
        if full || c.dirty.contains(key) {
            if c.dirty.insert(key.clone()) {
                q.len += 1;
            }
        } else {
            if let Some(f) = super::signing::signatures_frame(key, sigs) {
                c.frames.push_back(f);
            }
            c.frames.push_back(Frame::Changes {
                collection: key.collection().to_string(),
                id: key.id().to_string(),
                changes: changes.to_vec(),
                heads: heads.to_vec(),
            });
            q.len += 1;
        }
        drop(q);
        lane.wake.notify_one();
    }
}

impl Lane {
    /// The next live update: a queued frame, or a coalesced document whose
    /// heads are to be offered. The highest waiting class goes, except that
    /// after [`FAIR_SHARE`] in a row while a lower class waits, the lowest
    /// waiting class goes once.
    /// A signed update comes as its `Signatures` frame and its `Changes`.
    pub(super) fn pop_live(&self) -> Option<Result<Vec<Frame>, DocKey>> {
        let mut q = self.live.locked();
        let waiting: Vec<usize> = (0..5).filter(|&i| !q.classes[i].is_empty()).collect();
        let (&first, &last) = (waiting.first()?, waiting.last()?);
        let pick = if first != last && q.streak >= FAIR_SHARE {
            q.streak = 0;
            last
        } else {
            if first != last {
                q.streak += 1;
            } else {
                q.streak = 0;
            }
            first
        };
        q.len -= 1;
        let c = &mut q.classes[pick];
        if let Some(f) = c.frames.pop_front() {
            if matches!(f, Frame::Signatures { .. }) {
                // Pushed together with its changes, under this lock.
                let mut v = vec![f];
                v.extend(c.frames.pop_front());
                return Some(Ok(v));
            }
            return Some(Ok(vec![f]));
        }
        let key = c.dirty.iter().next().cloned()?;
        c.dirty.remove(&key);
        Some(Err(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CollectionPolicy, Policies};

    fn outbox(cap: usize, lanes: bool) -> Arc<Outbox> {
        let p = Policies::default()
            .with(
                "crit",
                CollectionPolicy::default().priority(Priority::Critical),
            )
            .unwrap()
            .with("bulk", CollectionPolicy::default().priority(Priority::Bulk))
            .unwrap();
        Outbox::new(cap, lanes, Arc::new(Lifecycle::new(p)), true)
    }

    fn id(item: Option<Result<Vec<Frame>, DocKey>>) -> String {
        match item.map(|r| r.map(|mut v| v.pop())) {
            Some(Ok(Some(Frame::Changes { collection, id, .. }))) => format!("{collection}/{id}"),
            Some(Err(k)) => format!("dirty {k}"),
            other => format!("{:?}", other.is_some()),
        }
    }

    #[test]
    fn higher_classes_go_first_and_a_waiting_class_gets_its_share() {
        let o = outbox(1000, false);
        for i in 0..40 {
            o.push_live(
                &DocKey::new("bulk", format!("b{i}")).unwrap(),
                &[],
                &[],
                &[],
            );
        }
        for i in 0..40 {
            o.push_live(
                &DocKey::new("crit", format!("c{i}")).unwrap(),
                &[],
                &[],
                &[],
            );
        }
        let lane = o.lane(MAIN);
        let order: Vec<String> = (0..40).map(|_| id(lane.pop_live())).collect();
        // 16 critical, one bulk, 16 critical, one bulk, ...
        assert_eq!(order[0], "crit/c0");
        assert_eq!(order[16], "bulk/b0");
        assert_eq!(order[17], "crit/c16");
        assert_eq!(order[33], "bulk/b1");
        let bulk = order.iter().filter(|s| s.starts_with("bulk")).count();
        assert_eq!(bulk, 2);
        // once only bulk waits, it all goes
        let rest: Vec<String> =
            std::iter::from_fn(|| lane.pop_live().map(|x| id(Some(x)))).collect();
        assert_eq!(rest.len(), 40);
        assert!(lane.pop_live().is_none());
    }

    #[test]
    fn the_bulk_lane_takes_low_classes_and_the_bound_coalesces_per_document() {
        let o = outbox(4, true);
        assert_eq!(o.lane_count(), 2);
        let b = DocKey::new("bulk", "x").unwrap();
        o.push_live(&b, &[], &[], &[]);
        o.push_live(&DocKey::new("crit", "y").unwrap(), &[], &[], &[]);
        assert_eq!(id(o.lane(BULK).pop_live()), "bulk/x");
        assert_eq!(id(o.lane(MAIN).pop_live()), "crit/y");
        // past the bound, updates of one document become one heads offer
        for i in 0..10 {
            o.push_live(
                &DocKey::new("bulk", format!("d{}", i % 6)).unwrap(),
                &[],
                &[],
                &[],
            );
        }
        let got: Vec<String> =
            std::iter::from_fn(|| o.lane(BULK).pop_live().map(|x| id(Some(x)))).collect();
        assert_eq!(got.iter().filter(|s| !s.starts_with("dirty")).count(), 4);
        let dirty: HashSet<&String> = got.iter().filter(|s| s.starts_with("dirty")).collect();
        assert_eq!(dirty.len(), got.len() - 4, "{got:?}");
        // a reply goes to its class's lane; frames to the main lane
        o.reply(Reply::Offer(b)).unwrap();
        o.send(Frame::Want { prefixes: vec![] }).unwrap();
        assert_eq!(o.lane(BULK).replies.take(10).len(), 1);
        assert_eq!(o.lane(MAIN).replies.take(10).len(), 1);
    }
}

//! The sending half of a session: what is owed to the peer (replies, queued
//! lazily within a byte budget, see [`super::replies`]) and live updates.
//!
//! Live updates go through a bounded queue. When it is full, further updates for
//! a document are coalesced into a set of "dirty" documents; once the queue drains
//! the writer offers its heads for each of them, and the normal heads/changes
//! exchange brings the peer up to date. So a slow peer costs bounded memory and
//! never blocks local writes or other peers, and no update is ever dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::replies::{Replies, Reply};
use crate::error::Result;
use crate::locks::LockExt;
use crate::storage::DocKey;
use crate::wire::{Frame, Hash32};

/// The sending half of a session, shared with the engine for broadcasts.
pub(crate) struct Outbox {
    pub(super) replies: Replies,
    live: Mutex<LiveQueue>,
    pub(super) wake: Notify,
    /// Asks the session for a reconciliation round now (a better link came
    /// back and documents were held back from the peer).
    pub(super) reconcile: Notify,
    cap: usize,
}

#[derive(Default)]
struct LiveQueue {
    frames: VecDeque<Frame>,
    dirty: HashSet<DocKey>,
}

impl Outbox {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Outbox {
            replies: Replies::default(),
            live: Mutex::new(LiveQueue::default()),
            wake: Notify::new(),
            reconcile: Notify::new(),
            cap: cap.max(1),
        })
    }

    /// Queues something owed to the peer (see [`super::replies`] for its bound).
    pub(crate) fn reply(&self, r: Reply) -> Result<()> {
        self.replies.push(r)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Queues a frame owed to the peer.
    pub(crate) fn send(&self, f: Frame) -> Result<()> {
        self.reply(Reply::Frame(f))
    }

    /// Bytes of answers queued for the peer.
    #[cfg(test)]
    pub(crate) fn queued_reply_bytes(&self) -> usize {
        self.replies.bytes()
    }

    /// Queues a live update, coalescing if the queue is full.
    pub(crate) fn push_live(&self, key: &DocKey, changes: &[Vec<u8>], heads: &[Hash32]) {
        let mut q = self.live.locked();
        if q.frames.len() >= self.cap || q.dirty.contains(key) {
            q.dirty.insert(key.clone());
        } else {
            q.frames.push_back(Frame::Changes {
                collection: key.collection().to_string(),
                id: key.id().to_string(),
                changes: changes.to_vec(),
                heads: heads.to_vec(),
            });
        }
        drop(q);
        self.wake.notify_one();
    }

    /// The next live update: a queued frame, or a coalesced document whose
    /// heads are to be offered.
    pub(super) fn pop_live(&self) -> Option<Result<Frame, DocKey>> {
        let mut q = self.live.locked();
        if let Some(f) = q.frames.pop_front() {
            return Some(Ok(f));
        }
        let key = q.dirty.iter().next().cloned()?;
        q.dirty.remove(&key);
        Some(Err(key))
    }
}

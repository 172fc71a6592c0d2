//! The sync engine: what every session shares. It applies remote changes to
//! the store and fans local and remote changes out to the other sessions'
//! outboxes and to subscribers.
//!
//! The engine keeps only each session's outbox (what fan-out needs), never the
//! session itself, so sessions (which hold the engine) form no reference cycle
//! with it, and this module does not depend on the session module.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use automerge::transaction::CommitOptions;
use automerge::{Change, ReadDoc};

use super::outbox::Outbox;
use crate::documents::{DocEvent, DocFilter, Origin};
use crate::error::{Error, Result};
use crate::events::Hub;
use crate::lifecycle::Lifecycle;
use crate::locks::LockExt;
use crate::policy::{DeleteRule, SyncMode};
use crate::storage::{is_tombstoned, read_doc, Committed, DocKey, Store};
use crate::transport::NodeContext;
use crate::NodeId;

/// A running session, as fan-out sees it.
struct Running {
    id: u64,
    outbox: Arc<Outbox>,
}

/// The node's sync machinery.
pub(crate) struct Engine {
    pub ctx: Arc<NodeContext>,
    pub store: Arc<Store>,
    pub doc_hub: Hub<DocEvent, DocFilter>,
    pub anti_entropy: Duration,
    pub peer_queue: usize,
    sessions: Mutex<HashMap<NodeId, Running>>,
    next_session: AtomicU64,
    pub counters: super::stats::Counters,
    /// The node's bond, when it has links: its policy may hold documents of
    /// some collections back from a peer on a worse link.
    pub links: std::sync::OnceLock<crate::links::Bond>,
    /// Peers something was held back from (at most one entry per session).
    held: Mutex<std::collections::HashSet<NodeId>>,
    /// Policies, and what the node removed and so refuses from peers.
    pub lifecycle: Arc<Lifecycle>,
    /// Priority classes on the wire ([`crate::NodeConfig::qos`]).
    pub qos: bool,
    /// Documents whose blobs are fetched eagerly go here (set at open).
    pub eager: std::sync::OnceLock<crate::lifecycle::EagerQueue>,
    /// Signs changes written here and checks received ones.
    pub authorship: Arc<crate::authorship::Authorship>,
}

impl Engine {
    // One argument per part the node wires in at open.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ctx: Arc<NodeContext>,
        store: Arc<Store>,
        sub_capacity: usize,
        peer_queue: usize,
        anti_entropy: Duration,
        lifecycle: Arc<Lifecycle>,
        qos: bool,
        authorship: Arc<crate::authorship::Authorship>,
    ) -> Self {
        Engine {
            ctx,
            store,
            doc_hub: Hub::new(sub_capacity),
            anti_entropy,
            peer_queue,
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            counters: Default::default(),
            links: std::sync::OnceLock::new(),
            held: Mutex::new(std::collections::HashSet::new()),
            lifecycle,
            qos,
            eager: std::sync::OnceLock::new(),
            authorship,
        }
    }

    pub(crate) fn policy_of(&self, collection: &str) -> crate::policy::CollectionPolicy {
        *self.lifecycle.policies.get().for_collection(collection)
    }

    /// The time (ms) to stamp a local write with: `now`, and for a re-based
    /// (latest-only or windowed) document at least one past its newest
    /// change, so that a node's own successive versions are ordered by time
    /// like they are by causality (two writes in one millisecond would
    /// otherwise be ordered by hash, and the earlier could win).
    pub(crate) fn write_time(&self, collection: &str, doc: &automerge::Automerge, now: i64) -> i64 {
        if self.policy_of(collection).sync == SyncMode::Full {
            return now;
        }
        crate::storage::next_write_time(doc, now)
    }

    /// After a local write at `now` (ms): re-bases a latest-only document on
    /// its state (one change), and a windowed one whose base is older than
    /// its window (see [`crate::storage::compacted`]).
    pub(crate) fn rebase_after_write(
        &self,
        collection: &str,
        doc: &mut automerge::Automerge,
        now: i64,
    ) {
        let due = match self.policy_of(collection).sync {
            SyncMode::Full => false,
            SyncMode::LatestOnly => true,
            SyncMode::Windowed(w) => crate::storage::base_time(doc)
                .is_some_and(|t| now.saturating_sub(t) > w.as_millis() as i64),
        };
        if due {
            if let Some(fresh) = crate::storage::compacted(doc, self.store.actor(), now) {
                *doc = fresh;
            }
        }
    }

    /// The (time, version) items of every document that takes part in sync:
    /// those about to expire are left out (see [`crate::lifecycle`]).
    pub(crate) fn versions(&self) -> Result<Vec<(u64, crate::wire::Hash32)>> {
        let lc = &self.lifecycle;
        let policies = lc.policies.get();
        let now = crate::clock::unix_ms();
        self.store
            .versions(|skey, meta| lc.is_live(&policies, skey, meta, now))
    }

    /// Whether documents of `collection` are held back from `peer` now (see
    /// [`crate::links::PacePolicy::collection_max_level`]).
    /// Remembers that something was held back, so that [`Engine::reconcile_with`]
    /// knows a round is worth it.
    pub(crate) fn holds_back(&self, peer: &NodeId, collection: &str) -> bool {
        let held = self
            .links
            .get()
            .is_some_and(|b| b.holds_back(peer, collection));
        if held {
            self.held.locked().insert(*peer);
        }
        held
    }

    /// When something was held back from `peer`, asks its session for a
    /// reconciliation round now (its link changed: what was held back may
    /// go). Nothing held back, no round.
    pub(crate) fn reconcile_with(&self, peer: &NodeId) {
        if !self.held.locked().remove(peer) {
            return;
        }
        if let Some(r) = self.sessions().get(peer) {
            r.outbox.reconcile.notify_one();
        }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<NodeId, Running>> {
        self.sessions.locked()
    }

    /// Registers a new session's outbox for fan-out (replacing an older
    /// session's with the same peer). Returns its id for [`Engine::forget`].
    pub(crate) fn register(&self, peer: NodeId, outbox: Arc<Outbox>) -> u64 {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.sessions().insert(peer, Running { id, outbox });
        id
    }

    /// Forgets a session's outbox, unless a newer session replaced it.
    pub(crate) fn forget(&self, peer: NodeId, id: u64) {
        let mut sessions = self.sessions();
        if sessions.get(&peer).is_some_and(|r| r.id == id) {
            sessions.remove(&peer);
            self.held.locked().remove(&peer);
        }
    }

    /// Each session's queues now: (peer, live updates waiting, reply bytes).
    pub(crate) fn queues(&self) -> Vec<(NodeId, usize, usize)> {
        self.sessions()
            .iter()
            .map(|(id, r)| {
                (
                    *id,
                    r.outbox.queued_updates(),
                    r.outbox.queued_reply_bytes(),
                )
            })
            .collect()
    }

    /// Bytes of answers queued for `peer`'s session.
    #[cfg(test)]
    pub(crate) fn queued_reply_bytes(&self, peer: &NodeId) -> Option<usize> {
        self.sessions()
            .get(peer)
            .map(|r| r.outbox.queued_reply_bytes())
    }

    /// Queues a committed change to every session except `except`'s.
    /// Called with the document locked, so per-document order is commit order.
    pub(crate) fn fan_out(&self, c: &Committed, except: Option<NodeId>) {
        if except.is_none() {
            self.lifecycle.wrote_locally(&c.key);
        }
        let outboxes: Vec<Arc<Outbox>> = self
            .sessions()
            .iter()
            .filter(|(id, _)| Some(**id) != except)
            .filter(|(id, _)| !self.holds_back(id, c.key.collection()))
            .map(|(_, r)| r.outbox.clone())
            .collect();
        for o in outboxes {
            o.push_live(&c.key, &c.changes, &c.heads, &c.signatures);
        }
    }

    /// Publishes a change to subscribers. Called with the document locked (from
    /// the store's update), so a document's events are queued in commit order
    /// and the last one is its latest state.
    pub(crate) fn publish(&self, c: &Committed, doc: &automerge::Automerge, origin: Origin) {
        if !self.doc_hub.wants(|f| f.matches(&c.key)) {
            return;
        }
        let value = if c.deleted {
            None
        } else {
            match read_doc(doc) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(key = %c.key, error = %e, "cannot render changed document");
                    return;
                }
            }
        };
        let ev = DocEvent {
            key: c.key.clone(),
            value,
            origin,
        };
        self.doc_hub.publish(&ev, |f| f.matches(&ev.key));
    }

    /// Applies changes received from `from`, keeping their checked
    /// signatures (`rows`). Returns true if some were left out because what
    /// they depend on has not arrived (the caller asks again).
    pub(crate) fn apply_remote(
        &self,
        key: &DocKey,
        changes: Vec<Change>,
        rows: &[(crate::wire::Hash32, crate::storage::SigRow)],
        from: NodeId,
    ) -> Result<bool> {
        let policy = self.policy_of(key.collection());
        let update_wins = policy.delete_rule == DeleteRule::UpdateWins;
        let rebased = policy.sync != SyncMode::Full;
        let r = self.store.update_signed(
            key,
            true,
            rows,
            |doc| {
                let changes = if rebased {
                    match crate::storage::judge(doc, changes, self.store.actor())? {
                        crate::storage::Incoming::Wins(theirs) => {
                            *doc = *theirs;
                            return Ok(false);
                        }
                        crate::storage::Incoming::Loses => return Ok(false),
                        crate::storage::Incoming::Partial(changes) => changes,
                    }
                } else {
                    changes
                };
                // Only what can be applied now: Automerge's own queue for
                // changes awaiting dependencies has no bound.
                let (ready, left_out) = crate::storage::causally_ready(doc, changes);
                let stamps: Vec<i64> = ready.iter().map(|c| c.timestamp()).collect();
                doc.apply_changes(ready)
                    .map_err(|e| Error::Protocol(format!("changes for {key} rejected: {e}")))?;
                self.counters
                    .applied(crate::clock::unix_ms() as i64, &stamps);
                if update_wins
                    && is_tombstoned(doc)
                    && crate::storage::edited_concurrently_with_delete(doc)
                {
                    // The edit wins: this node writes the change that says so
                    // (any other node seeing both writes the same; they merge).
                    doc.transact_with(
                        |_| CommitOptions::default().with_time(crate::clock::unix_ms() as i64),
                        |tx| crate::storage::lift_tombstone(tx),
                    )
                    .map_err(|f| f.error)?;
                    self.lifecycle
                        .counters
                        .revived
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%key, "an edit the delete did not see revived the document");
                }
                Ok(left_out > 0 || !doc.get_missing_deps(&[]).is_empty())
            },
            |c| self.fan_out(c, Some(from)),
            |c, doc| self.publish(c, doc, Origin::Peer(from)),
        )?;
        let Some((missing, committed)) = r else {
            return Ok(false);
        };
        if committed.is_some() && policy.eager_blobs {
            if let Some(q) = self.eager.get() {
                q.push(key);
            }
        }
        Ok(missing)
    }
}

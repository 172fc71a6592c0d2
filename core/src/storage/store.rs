//! The redb-backed document store: a bounded cache of loaded documents in front
//! of a group-committing writer thread.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use automerge::ReadDoc;
use automerge::{ActorId, Automerge};
use lru::LruCache;
use redb::{Database, ReadableDatabase};
use tokio::sync::oneshot;

use super::DocKey;
use crate::error::{Error, Result};
use crate::locks::{LockExt, RwLockExt};
use crate::wire::{Hash32, MAX_CHANGE_LEN};

use super::changes::{heads_to_wire, version_id};
use super::maintenance::{compact_if_fragmented, vacuum_if_bloated, vacuum_path};
use super::meta::{Meta, COMPACT_AFTER, INCREMENTS, META, SNAPSHOTS, VIDS};
use super::writer::{writer_loop, WriteData, WriteOp, WriterMsg, WRITER_QUEUE};

/// A loaded document and its metadata (None until first persisted).
pub(crate) struct DocState {
    pub doc: Automerge,
    pub(super) meta: Option<Meta>,
    /// Bytes of the stored snapshot and of the rows after it: compaction waits
    /// until the rows hold as many bytes as the snapshot, so its cost (one save,
    /// proportional to the document) is amortised to a constant per byte written.
    pub(super) snap_len: usize,
    pub(super) incr_bytes: usize,
    /// The document rendered as JSON (`None` inside when deleted), kept until
    /// the next change so repeated reads cost a clone of an `Arc`.
    pub(super) rendered: Option<Option<Arc<str>>>,
}

impl DocState {
    /// A document that does not exist (yet, or any more).
    pub(super) fn empty(actor: &ActorId) -> DocState {
        DocState {
            doc: Automerge::new().with_actor(actor.clone()),
            meta: None,
            snap_len: 0,
            incr_bytes: 0,
            rendered: None,
        }
    }
}

pub(crate) struct DocCell {
    pub(super) state: Mutex<DocState>,
    /// Writes queued for this document but not yet committed; a cell with pending
    /// writes is never evicted (a reload would read stale rows).
    pub(super) pending: Arc<AtomicUsize>,
}

/// The outcome of a change to a document.
pub(crate) struct Committed {
    pub key: DocKey,
    /// The new change chunks, in causal order.
    pub changes: Vec<Vec<u8>>,
    /// The document's heads after the change.
    pub heads: Vec<Hash32>,
    /// The new changes' signatures, in their order (empty: none signed).
    pub signatures: Vec<Option<super::signatures::SigRow>>,
    pub deleted: bool,
    /// Resolves when the change is durable.
    pub durable: oneshot::Receiver<Result<()>>,
}

/// One page of a collection listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Document ids in this page, in id order.
    pub ids: Vec<String>,
    /// Pass as `after` to get the next page; `None` at the end.
    pub next: Option<String>,
}

/// Tunables for [`Store::open`].
#[derive(Debug, Clone)]
pub(crate) struct StoreOptions {
    pub cache_docs: usize,
    pub actor: ActorId,
}

/// The document store. Cheap to share behind an `Arc`.
pub(crate) struct Store {
    /// Taken on close so the file lock is released even while clones of the
    /// node are still alive.
    db: std::sync::RwLock<Option<Arc<Database>>>,
    pub(super) cache: Mutex<LruCache<String, Arc<DocCell>>>,
    cache_cap: usize,
    /// Bounded ([`WRITER_QUEUE`] messages): a writer that outpaces the disk
    /// waits here, and the cells pinned by queued writes stay within it.
    pub(super) writer: Mutex<Option<mpsc::SyncSender<WriterMsg>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) actor: ActorId,
    path: std::path::PathBuf,
    /// Held (shared) while a document is read from disk into the cache, and
    /// (exclusive) while a purge of an uncached document is queued, so that no
    /// load reads rows a queued purge is about to remove.
    pub(super) loading: std::sync::RwLock<()>,
    /// Set by the writer when a commit fails: the store stops taking writes
    /// (fail-stop), since memory is then ahead of disk.
    failed: Arc<std::sync::OnceLock<String>>,
    /// Tells watchers (the node's event stream) when `failed` is set.
    failure: tokio::sync::watch::Receiver<Option<String>>,
    /// Signs changes written with [`Store::actor`] (set at open).
    pub(super) signer: std::sync::OnceLock<super::signatures::Signer>,
    /// Whether any signature was ever stored: reads skip the table until then.
    pub(super) has_signatures: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens (or creates) the database at `path` and starts the writer thread.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Self> {
        // A rewrite interrupted by a crash leaves its unfinished copy behind.
        let _ = std::fs::remove_file(vacuum_path(path));
        let mut db = Database::builder().set_cache_size(32 << 20).create(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        compact_if_fragmented(&mut db, path, 2.0)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(META)?;
            txn.open_table(SNAPSHOTS)?;
            txn.open_table(INCREMENTS)?;
            txn.open_table(VIDS)?;
        }
        let has_signatures = {
            use redb::ReadableTableMetadata;
            txn.open_table(super::signatures::SIGNATURES)?.len()? > 0
        };
        txn.commit()?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::sync_channel(WRITER_QUEUE);
        let wdb = db.clone();
        let failed = Arc::new(std::sync::OnceLock::new());
        let wfailed = failed.clone();
        let (failure_tx, failure) = tokio::sync::watch::channel(None);
        let handle = std::thread::Builder::new()
            .name("peat-store-writer".into())
            .spawn(move || writer_loop(&wdb, rx, &wfailed, &failure_tx))?;
        Ok(Store {
            db: std::sync::RwLock::new(Some(db)),
            cache: Mutex::new(LruCache::unbounded()),
            cache_cap: opts.cache_docs.max(1),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            actor: opts.actor,
            path: path.to_path_buf(),
            loading: std::sync::RwLock::new(()),
            failed,
            failure,
            signer: std::sync::OnceLock::new(),
            has_signatures: std::sync::atomic::AtomicBool::new(has_signatures),
        })
    }

    /// Flushes queued writes, stops the writer and releases the database file.
    /// Later calls fail with `Closed`.
    pub fn close(&self) -> Result<()> {
        self.writer.locked().take();
        if let Some(h) = self.writer_thread.locked().take() {
            let _ = h.join();
        }
        let db = self.db.write_locked().take();
        self.cache.locked().clear();
        let Some(mut db) = db else {
            return Ok(()); // closed before
        };
        // Readers hold the database only for one read; wait (bounded) for them,
        // so that the file is released when close returns.
        let deadline = std::time::Instant::now() + CLOSE_WAIT;
        let db = loop {
            match Arc::try_unwrap(db) {
                Ok(db) => break db,
                Err(still_shared) if std::time::Instant::now() < deadline => {
                    db = still_shared;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(_) => {
                    return Err(Error::Timeout(format!(
                        "the database was still in use {CLOSE_WAIT:?} after close"
                    )))
                }
            }
        };
        if let Err(e) = vacuum_if_bloated(db, &self.path, 1 << 20, 4.0 / 3.0) {
            tracing::warn!(error = %e, "rewriting the store at close failed");
        }
        Ok(())
    }

    /// Waits until every write queued so far is durable, so that reads of the
    /// database (version lists, listings) include them.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let writer = self.writer.locked().clone();
        let sent = writer.map(|w| w.send(WriterMsg::Barrier(tx)).is_ok());
        if sent != Some(true) {
            return Err(Error::Closed);
        }
        rx.await.map_err(|_| Error::Closed)?;
        self.check_not_failed()
    }

    /// Sets the signer for changes written here (once, at open).
    pub(crate) fn set_signer(&self, signer: super::signatures::Signer) {
        let _ = self.signer.set(signer);
    }

    /// The actor this node's changes are written with.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Becomes `Some(why)` when a commit fails (the store is then fail-stop).
    pub fn failure(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.failure.clone()
    }

    /// `Err` once a commit has failed: the store is fail-stop from then on.
    pub fn check_not_failed(&self) -> Result<()> {
        match self.failed.get() {
            Some(why) => Err(Error::Io(std::io::Error::other(format!(
                "the store stopped taking writes after a failed commit ({why}); close and reopen the node once the disk is fixed"
            )))),
            None => Ok(()),
        }
    }

    pub(super) fn db(&self) -> Result<Arc<Database>> {
        self.db.read_locked().clone().ok_or(Error::Closed)
    }

    pub(super) fn load_cell(&self, skey: &str) -> Result<Option<Arc<DocCell>>> {
        if let Some(c) = self.cache.locked().get(skey) {
            return Ok(Some(c.clone()));
        }
        let _loading = self.loading.read_locked();
        let Some(state) = self.read_doc(skey)? else {
            return Ok(None);
        };
        Ok(Some(self.insert_cell(skey, state)))
    }

    fn insert_cell(&self, skey: &str, state: DocState) -> Arc<DocCell> {
        self.insert_new_cell(
            skey,
            Arc::new(DocCell {
                state: Mutex::new(state),
                pending: Arc::new(AtomicUsize::new(0)),
            }),
        )
    }

    /// Caches `cell` under `skey`, unless a cell is there already (returned then).
    pub(super) fn insert_new_cell(&self, skey: &str, cell: Arc<DocCell>) -> Arc<DocCell> {
        let mut cache = self.cache.locked();
        if let Some(c) = cache.get(skey) {
            return c.clone(); // somebody loaded it meanwhile
        }
        cache.put(skey.to_string(), cell.clone());
        // Evict least-recently used cells that have no queued writes. A few
        // looks per insert, not a scan of the cache under its lock: cells pinned
        // by queued writes (a burst from a peer) are skipped and retried on later
        // inserts, so the cache returns to its capacity once the commits land.
        let mut budget = EVICTION_LOOKS;
        while cache.len() > self.cache_cap && budget > 0 {
            budget -= 1;
            if let Some((k, c)) = cache.pop_lru() {
                if c.pending.load(Ordering::Acquire) > 0 || Arc::strong_count(&c) > 1 {
                    cache.put(k, c);
                }
            }
        }
        cell
    }

    /// Reads a document straight from the database (no cache).
    pub(super) fn read_doc(&self, skey: &str) -> Result<Option<DocState>> {
        let txn = self.db()?.begin_read()?;
        let meta_t = txn.open_table(META)?;
        let Some(meta) = meta_t.get(skey)? else {
            return Ok(None);
        };
        let meta = Meta::decode(meta.value())?;
        let mut bytes = Vec::new();
        if let Some(s) = txn.open_table(SNAPSHOTS)?.get(skey)? {
            bytes.extend_from_slice(s.value());
        }
        let snap_len = bytes.len();
        let incr = txn.open_table(INCREMENTS)?;
        for row in incr.range((skey, 0u64)..=(skey, u64::MAX))? {
            let (_, v) = row?;
            bytes.extend_from_slice(v.value());
        }
        let doc = Automerge::load(&bytes)
            .map_err(|e| Error::Corrupt(format!("document {skey:?}: {e}")))?
            .with_actor(self.actor.clone());
        let incr_bytes = bytes.len() - snap_len;
        Ok(Some(DocState {
            doc,
            meta: Some(meta),
            snap_len,
            incr_bytes,
            rendered: None,
        }))
    }

    /// Runs `f` on the document, creating an empty one if `create` and it is missing.
    /// If `f` changed the document, the change is queued for a durable commit and
    /// `fan_out` sees it while the document is still locked, so changes to one
    /// document reach `fan_out` in commit order. `publish` runs next, also in
    /// the lock (so subscribers see a document's changes in commit order, the
    /// last one being its latest state); both run once the change is queued
    /// for its commit, before it is durable (see the README's durability note).
    /// Returns `Ok(None)` (without calling `f`) if the document is missing and not `create`.
    pub fn update<R>(
        &self,
        key: &DocKey,
        create: bool,
        f: impl FnOnce(&mut Automerge) -> Result<R>,
        fan_out: impl FnOnce(&Committed),
        publish: impl FnOnce(&Committed, &Automerge),
    ) -> Result<Option<(R, Option<Committed>)>> {
        self.update_signed(key, create, &[], f, fan_out, publish)
    }

    /// [`Store::update`], also keeping the `received` (checked) signatures
    /// of the new changes; changes written with this node's actor are
    /// signed by its signer. Both are committed with the changes.
    pub fn update_signed<R>(
        &self,
        key: &DocKey,
        create: bool,
        received: &[(Hash32, super::signatures::SigRow)],
        f: impl FnOnce(&mut Automerge) -> Result<R>,
        fan_out: impl FnOnce(&Committed),
        publish: impl FnOnce(&Committed, &Automerge),
    ) -> Result<Option<(R, Option<Committed>)>> {
        self.check_not_failed()?;
        let skey = key.storage_key();
        let cell = match self.load_cell(&skey)? {
            Some(c) => c,
            None if create => self.insert_cell(&skey, DocState::empty(&self.actor)),
            None => return Ok(None),
        };
        let mut st = cell.state.locked();
        if !create && st.meta.is_none() {
            return Ok(None);
        }
        let before = st.doc.get_heads();
        let out = match f(&mut st.doc) {
            Ok(out) => out,
            Err(e) => {
                if st.doc.get_heads() != before || !st.doc.get_missing_deps(&[]).is_empty() {
                    self.roll_back(&skey, &cell, &mut st);
                }
                return Err(e);
            }
        };
        let after = st.doc.get_heads();
        if before == after {
            return Ok(Some((out, None)));
        }
        st.rendered = None;
        // A document replaced by a fresh one (latest-only) is not an extension
        // of the stored rows: all of it is new, and it replaces them.
        let replaced = !before.is_empty()
            && !super::unknown_hashes(&st.doc, &heads_to_wire(&before)).is_empty();
        let new = st.doc.get_changes(if replaced { &[] } else { &before });
        if let Some(big) = new.iter().find(|c| c.raw_bytes().len() > MAX_CHANGE_LEN) {
            let len = big.raw_bytes().len();
            self.roll_back(&skey, &cell, &mut st);
            return Err(Error::InvalidArgument(format!(
                "a change of {len} bytes exceeds the {MAX_CHANGE_LEN} byte limit (write large content as a blob)"
            )));
        }
        if let Err(e) = super::json::check_new_objects(&st.doc, &new) {
            self.roll_back(&skey, &cell, &mut st);
            return Err(e);
        }
        let changes: Vec<Vec<u8>> = new.iter().map(|c| c.raw_bytes().to_vec()).collect();
        let signatures =
            super::signatures::rows_for(self.signer.get(), &self.actor, key, &new, received);
        let sigs: Vec<(Hash32, super::signatures::SigRow)> = new
            .iter()
            .zip(&signatures)
            .filter_map(|(c, r)| r.map(|r| (c.hash().0, r)))
            .collect();
        if !sigs.is_empty() {
            self.has_signatures
                .store(true, std::sync::atomic::Ordering::Release);
        }
        // The version's timestamp is the newest change time in the whole history:
        // the same on every replica with the same changes, and kept incrementally.
        let ts = new
            .iter()
            .map(|c| c.timestamp().max(0) as u64)
            .chain(st.meta.map(|m| m.ts))
            .max()
            .unwrap_or(0);
        let vid = version_id(key, &after);
        let deleted = super::is_tombstoned(&st.doc);
        let old = st.meta;
        let (incr, next_seq) = old.map(|m| (m.incr, m.next_seq)).unwrap_or((0, 0));
        let appended = changes.concat();
        let (data, incr) = if replaced
            || (incr + 1 >= COMPACT_AFTER && st.incr_bytes + appended.len() >= st.snap_len)
        {
            let snap = st.doc.save();
            st.snap_len = snap.len();
            st.incr_bytes = 0;
            (WriteData::Snapshot(snap), 0)
        } else {
            st.incr_bytes += appended.len();
            (WriteData::Append(appended), incr + 1)
        };
        let meta = Meta {
            ts,
            vid,
            deleted,
            incr,
            next_seq: next_seq + 1,
            bytes: (st.snap_len + st.incr_bytes) as u64,
        };
        let (ack, durable) = oneshot::channel();
        let committed = Committed {
            key: key.clone(),
            changes,
            heads: heads_to_wire(&after),
            signatures,
            deleted,
            durable,
        };
        cell.pending.fetch_add(1, Ordering::AcqRel);
        // Cloned out of the lock: a full queue blocks this writer only.
        let writer = self.writer.locked().clone();
        let sent = writer.map(|w| {
            w.send(WriterMsg::Write(Box::new(WriteOp {
                skey,
                old,
                meta,
                data,
                sigs,
                clear_sigs: replaced,
                pending: cell.pending.clone(),
                ack,
            })))
            .is_ok()
        });
        if sent != Some(true) {
            cell.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Closed);
        }
        st.meta = Some(meta);
        fan_out(&committed);
        publish(&committed, &st.doc);
        Ok(Some((out, Some(committed))))
    }

    /// Puts a document whose in-memory state went past what an update may keep
    /// (a failed apply, a refused change) back to its last committed state:
    /// waits until this document's queued writes are durable, then reloads it.
    /// If even that fails the cell is dropped from the cache, so the next access
    /// reloads it.
    fn roll_back(&self, skey: &str, cell: &Arc<DocCell>, st: &mut DocState) {
        while cell.pending.load(Ordering::Acquire) > 0 {
            if !self.flush_blocking() {
                break;
            }
        }
        let reloaded = match self.read_doc(skey) {
            Ok(Some(s)) => Some(s),
            Ok(None) => Some(DocState::empty(&self.actor)),
            Err(e) => {
                tracing::warn!(key = skey, error = %e, "reloading a rolled-back document failed");
                None
            }
        };
        match reloaded {
            Some(s) => *st = s,
            None => {
                self.cache.locked().pop(skey);
            }
        }
    }

    /// Waits (blocking the thread) until every write queued so far is durable.
    /// False if the store is closed.
    pub(crate) fn flush_blocking(&self) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        let writer = self.writer.locked().clone();
        let sent = writer.map(|w| w.send(WriterMsg::BarrierSync(tx)).is_ok());
        sent == Some(true) && rx.recv().is_ok()
    }
}

/// Least-recently used cells looked at per insert when the cache is over its
/// capacity.
const EVICTION_LOOKS: usize = 8;

/// How long [`Store::close`] waits for readers to let go of the database.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for Store {
    fn drop(&mut self) {
        // Normally closed already (Node::close). If not, closing joins the
        // writer and may rewrite the file: never on a runtime worker.
        if self.db.read_locked().is_none() {
            return;
        }
        let writer = self.writer.locked().take();
        let thread = self.writer_thread.locked().take();
        let db = self.db.write_locked().take();
        let path = self.path.clone();
        let finish = move || {
            drop(writer);
            if let Some(h) = thread {
                let _ = h.join();
            }
            if let Some(db) = db.and_then(|d| Arc::try_unwrap(d).ok()) {
                if let Err(e) = vacuum_if_bloated(db, &path, 1 << 20, 4.0 / 3.0) {
                    tracing::warn!(error = %e, "rewriting the store at close failed");
                }
            }
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("peat-store-close".into())
                .spawn(finish);
        } else {
            finish();
        }
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;

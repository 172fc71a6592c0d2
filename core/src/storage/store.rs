//! The redb-backed document store: a bounded cache of loaded documents in front
//! of a group-committing writer thread.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use automerge::ReadDoc;
use automerge::{ActorId, Automerge, Change, ChangeHash};
use lru::LruCache;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use tokio::sync::oneshot;

use super::key::storage_prefix;
use super::DocKey;
use crate::error::{Error, Result};
use crate::locks::{LockExt, RwLockExt};
use crate::wire::{Hash32, MAX_CHANGE_LEN};

/// Incremental rows kept per document before it is compacted into one snapshot.
pub const COMPACT_AFTER: u32 = 64;

/// Storage key → encoded [`Meta`].
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("doc_meta");
/// Storage key → compressed Automerge snapshot.
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("doc_snapshots");
/// (storage key, sequence) → one or more encoded change chunks.
const INCREMENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("doc_increments");
/// First 8 bytes of the version id ‖ storage key → (). Finds documents by the
/// id prefixes that reconciliation yields.
const VIDS: TableDefinition<&[u8], ()> = TableDefinition::new("doc_vid_prefixes");

fn vid_index_key(vid: &Hash32, skey: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + skey.len());
    k.extend_from_slice(&vid[..8]);
    k.extend_from_slice(skey.as_bytes());
    k
}

/// Per-document metadata: the current version and persistence bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Newest change time in the history (ms), the reconciliation timestamp.
    pub ts: u64,
    /// Hash of (key, heads): identical on every replica holding the same state.
    pub vid: Hash32,
    pub deleted: bool,
    /// Incremental rows since the last snapshot.
    pub incr: u32,
    /// Next incremental row number.
    pub next_seq: u64,
}

const META_LEN: usize = 8 + 32 + 1 + 4 + 8;

impl Meta {
    fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[..8].copy_from_slice(&self.ts.to_be_bytes());
        b[8..40].copy_from_slice(&self.vid);
        b[40] = self.deleted as u8;
        b[41..45].copy_from_slice(&self.incr.to_be_bytes());
        b[45..].copy_from_slice(&self.next_seq.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != META_LEN || b[40] > 1 {
            return Err(Error::Corrupt(format!(
                "document metadata of {} bytes",
                b.len()
            )));
        }
        let arr = |r: std::ops::Range<usize>| b[r].to_vec();
        Ok(Meta {
            ts: u64::from_be_bytes(
                arr(0..8)
                    .try_into()
                    .map_err(|_| Error::Corrupt("ts".into()))?,
            ),
            vid: arr(8..40)
                .try_into()
                .map_err(|_| Error::Corrupt("vid".into()))?,
            deleted: b[40] == 1,
            incr: u32::from_be_bytes(
                arr(41..45)
                    .try_into()
                    .map_err(|_| Error::Corrupt("incr".into()))?,
            ),
            next_seq: u64::from_be_bytes(
                arr(45..53)
                    .try_into()
                    .map_err(|_| Error::Corrupt("seq".into()))?,
            ),
        })
    }
}

/// A document's version id: a hash of its key and heads, identical on every
/// replica holding the same state.
pub(crate) fn version_id(key: &DocKey, heads: &[ChangeHash]) -> Hash32 {
    let mut h = blake3::Hasher::new_derive_key("peat-mesh document version v1");
    h.update(key.collection().as_bytes());
    h.update(&[0]);
    h.update(key.id().as_bytes());
    h.update(&[0]);
    for head in heads {
        h.update(&head.0);
    }
    *h.finalize().as_bytes()
}

/// The hashes among `hashes` that `doc` has neither applied nor queued.
///
/// One hash-set lookup each; automerge's per-change metadata lookups are linear
/// in the history, so they are avoided on every sync path.
pub(crate) fn unknown_hashes(doc: &Automerge, hashes: &[Hash32]) -> Vec<Hash32> {
    let heads: Vec<ChangeHash> = hashes.iter().map(|h| ChangeHash(*h)).collect();
    let missing: std::collections::HashSet<ChangeHash> =
        doc.get_missing_deps(&heads).into_iter().collect();
    hashes
        .iter()
        .filter(|h| missing.contains(&ChangeHash(**h)))
        .copied()
        .collect()
}

/// A loaded document and its metadata (None until first persisted).
pub(crate) struct DocState {
    pub doc: Automerge,
    meta: Option<Meta>,
    /// Bytes of the stored snapshot and of the rows after it: compaction waits
    /// until the rows hold as many bytes as the snapshot, so its cost (one save,
    /// proportional to the document) is amortised to a constant per byte written.
    snap_len: usize,
    incr_bytes: usize,
    /// The document rendered as JSON (`None` inside when deleted), kept until
    /// the next change so repeated reads cost a clone of an `Arc`.
    rendered: Option<Option<Arc<str>>>,
}

struct DocCell {
    state: Mutex<DocState>,
    /// Writes queued for this document but not yet committed; a cell with pending
    /// writes is never evicted (a reload would read stale rows).
    pending: Arc<AtomicUsize>,
}

/// The outcome of a change to a document.
pub(crate) struct Committed {
    pub key: DocKey,
    /// The new change chunks, in causal order.
    pub changes: Vec<Vec<u8>>,
    /// The document's heads after the change.
    pub heads: Vec<Hash32>,
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

struct WriteOp {
    skey: String,
    old: Option<Meta>,
    meta: Meta,
    /// Change chunks to append, or a full snapshot that replaces all rows.
    data: WriteData,
    pending: Arc<AtomicUsize>,
    ack: oneshot::Sender<Result<()>>,
}

enum WriteData {
    Append(Vec<u8>),
    Snapshot(Vec<u8>),
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
    cache: Mutex<LruCache<String, Arc<DocCell>>>,
    cache_cap: usize,
    /// Bounded ([`WRITER_QUEUE`] messages): a writer that outpaces the disk
    /// waits here, and the cells pinned by queued writes stay within it.
    writer: Mutex<Option<mpsc::SyncSender<WriterMsg>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    actor: ActorId,
    path: std::path::PathBuf,
    /// Set by the writer when a commit fails: the store stops taking writes
    /// (fail-stop), since memory is then ahead of disk.
    failed: Arc<std::sync::OnceLock<String>>,
    /// Tells watchers (the node's event stream) when `failed` is set.
    failure: tokio::sync::watch::Receiver<Option<String>>,
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
            failed,
            failure,
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

    fn db(&self) -> Result<Arc<Database>> {
        self.db.read_locked().clone().ok_or(Error::Closed)
    }

    fn load_cell(&self, skey: &str) -> Result<Option<Arc<DocCell>>> {
        if let Some(c) = self.cache.locked().get(skey) {
            return Ok(Some(c.clone()));
        }
        let Some(state) = self.read_doc(skey)? else {
            return Ok(None);
        };
        Ok(Some(self.insert_cell(skey, state)))
    }

    fn insert_cell(&self, skey: &str, state: DocState) -> Arc<DocCell> {
        let mut cache = self.cache.locked();
        if let Some(c) = cache.get(skey) {
            return c.clone(); // somebody loaded it meanwhile
        }
        let cell = Arc::new(DocCell {
            state: Mutex::new(state),
            pending: Arc::new(AtomicUsize::new(0)),
        });
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
    fn read_doc(&self, skey: &str) -> Result<Option<DocState>> {
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
        self.check_not_failed()?;
        let skey = key.storage_key();
        let cell = match self.load_cell(&skey)? {
            Some(c) => c,
            None if create => self.insert_cell(
                &skey,
                DocState {
                    doc: Automerge::new().with_actor(self.actor.clone()),
                    meta: None,
                    snap_len: 0,
                    incr_bytes: 0,
                    rendered: None,
                },
            ),
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
        let new = st.doc.get_changes(&before);
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
        let (data, incr) =
            if incr + 1 >= COMPACT_AFTER && st.incr_bytes + appended.len() >= st.snap_len {
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
        };
        let (ack, durable) = oneshot::channel();
        let committed = Committed {
            key: key.clone(),
            changes,
            heads: heads_to_wire(&after),
            deleted,
            durable,
        };
        cell.pending.fetch_add(1, Ordering::AcqRel);
        // Cloned out of the lock: a full queue blocks this writer only.
        let writer = self.writer.locked().clone();
        let sent = writer.map(|w| {
            w.send(WriterMsg::Write(WriteOp {
                skey,
                old,
                meta,
                data,
                pending: cell.pending.clone(),
                ack,
            }))
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
            Ok(None) => Some(DocState {
                doc: Automerge::new().with_actor(self.actor.clone()),
                meta: None,
                snap_len: 0,
                incr_bytes: 0,
                rendered: None,
            }),
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
    fn flush_blocking(&self) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        let writer = self.writer.locked().clone();
        let sent = writer.map(|w| w.send(WriterMsg::BarrierSync(tx)).is_ok());
        sent == Some(true) && rx.recv().is_ok()
    }

    /// Runs `f` on the document read-only. `Ok(None)` if it does not exist.
    pub fn read<R>(
        &self,
        key: &DocKey,
        f: impl FnOnce(&Automerge) -> Result<R>,
    ) -> Result<Option<R>> {
        let Some(cell) = self.load_cell(&key.storage_key())? else {
            return Ok(None);
        };
        let st = cell.state.locked();
        if st.meta.is_none() {
            return Ok(None); // created in memory but never persisted: no content
        }
        f(&st.doc).map(Some)
    }

    /// The document rendered by `render` (`None` for a deleted one), cached until
    /// the document next changes. `Ok(None)` if the document does not exist.
    pub fn rendered(
        &self,
        key: &DocKey,
        render: impl FnOnce(&Automerge) -> Result<Option<String>>,
    ) -> Result<Option<Option<Arc<str>>>> {
        let Some(cell) = self.load_cell(&key.storage_key())? else {
            return Ok(None);
        };
        let mut st = cell.state.locked();
        if st.meta.is_none() {
            return Ok(None);
        }
        if let Some(r) = &st.rendered {
            return Ok(Some(r.clone()));
        }
        let r: Option<Arc<str>> = render(&st.doc)?.map(Arc::from);
        st.rendered = Some(r.clone());
        Ok(Some(r))
    }

    /// Like [`Store::read`], also passing the bytes the document takes in storage.
    pub fn read_sized<R>(
        &self,
        key: &DocKey,
        f: impl FnOnce(&Automerge, usize) -> Result<R>,
    ) -> Result<Option<R>> {
        let Some(cell) = self.load_cell(&key.storage_key())? else {
            return Ok(None);
        };
        let st = cell.state.locked();
        if st.meta.is_none() {
            return Ok(None);
        }
        f(&st.doc, st.snap_len + st.incr_bytes).map(Some)
    }

    /// Reads a document that may not be cached without disturbing the cache.
    pub fn peek<R>(
        &self,
        key: &DocKey,
        f: impl FnOnce(&Automerge) -> Result<R>,
    ) -> Result<Option<R>> {
        let skey = key.storage_key();
        if let Some(c) = self.cache.locked().peek(&skey).cloned() {
            let st = c.state.locked();
            return if st.meta.is_some() {
                f(&st.doc).map(Some)
            } else {
                Ok(None)
            };
        }
        match self.read_doc(&skey)? {
            Some(st) => f(&st.doc).map(Some),
            None => Ok(None),
        }
    }

    /// Metadata of a stored document.
    pub fn meta(&self, key: &DocKey) -> Result<Option<Meta>> {
        let skey = key.storage_key();
        if let Some(c) = self.cache.locked().peek(&skey).cloned() {
            return Ok(c.state.locked().meta);
        }
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(META)?;
        let m = t.get(skey.as_str())?;
        m.map(|v| Meta::decode(v.value())).transpose()
    }

    /// Lists live (not deleted) document ids of a collection in id order.
    pub fn list(
        &self,
        collection: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let mut page = ListPage::default();
        self.scan(collection, prefix, after, |id, meta| {
            if meta.deleted {
                return Ok(true);
            }
            if page.ids.len() == limit {
                page.next = page.ids.last().cloned();
                return Ok(false);
            }
            page.ids.push(id.to_string());
            Ok(true)
        })?;
        Ok(page)
    }

    /// Calls `f(id, meta)` for each document of `collection` whose id starts with
    /// `prefix`, after `after`, in id order, until `f` returns `false`. Streams:
    /// memory does not grow with the collection.
    pub fn scan(
        &self,
        collection: &str,
        prefix: &str,
        after: Option<&str>,
        mut f: impl FnMut(&str, &Meta) -> Result<bool>,
    ) -> Result<()> {
        let full_prefix = storage_prefix(collection, prefix);
        let start = match after {
            Some(a) => storage_prefix(collection, a),
            None => full_prefix.clone(),
        };
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(META)?;
        for row in t.range(start.as_str()..)? {
            let (k, v) = row?;
            let k = k.value();
            if !k.starts_with(&full_prefix) {
                break;
            }
            if after.is_some() && k == start {
                continue;
            }
            let id = &k[collection.len() + 1..];
            if !f(id, &Meta::decode(v.value())?)? {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f` with the key of every live (not deleted) document, in key order.
    pub fn scan_all(&self, mut f: impl FnMut(&DocKey) -> Result<()>) -> Result<()> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(META)?;
        for row in t.iter()? {
            let (k, v) = row?;
            if Meta::decode(v.value())?.deleted {
                continue;
            }
            f(&DocKey::from_storage_key(k.value())?)?;
        }
        Ok(())
    }

    /// All (timestamp, version id) items, sorted, for set reconciliation.
    /// Built from the metadata rows (one sequential scan and a sort) rather than
    /// kept as a second index, which would cost ~55 bytes per document on disk.
    pub fn versions(&self) -> Result<Vec<(u64, Hash32)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(META)?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        for row in t.iter()? {
            let (_, v) = row?;
            let m = Meta::decode(v.value())?;
            out.push((m.ts, m.vid));
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The documents whose current version id starts with one of `prefixes`
    /// (none for a version that is gone), looked up in one read transaction.
    /// Two documents sharing a prefix (odds 2^-64 per pair) are both returned.
    pub fn keys_for_version_prefixes(&self, prefixes: &[[u8; 8]]) -> Result<Vec<DocKey>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(VIDS)?;
        let mut out = Vec::new();
        for p in prefixes {
            let lo = p.to_vec();
            let mut hi = p.to_vec();
            hi.push(0xff); // storage keys are UTF-8, which never contains 0xff
            for row in t.range(lo.as_slice()..hi.as_slice())? {
                let (k, _) = row?;
                let skey = std::str::from_utf8(&k.value()[8..])
                    .map_err(|_| Error::Corrupt("version index key".into()))?;
                out.push(DocKey::from_storage_key(skey)?);
            }
        }
        Ok(out)
    }

    /// Number of stored documents (including tombstones).
    pub fn len(&self) -> Result<u64> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(META)?.len()?)
    }
}

/// Messages the writer thread's queue holds; a write past it waits for the
/// writer (back-pressure), so queued writes, and the document cells they pin in
/// the cache, are bounded by it.
pub(crate) const WRITER_QUEUE: usize = 8192;

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

/// Heads as wire hashes.
pub(crate) fn heads_to_wire(heads: &[ChangeHash]) -> Vec<Hash32> {
    heads.iter().map(|h| h.0).collect()
}

/// Changes in `doc` that a replica with `their_heads` lacks. Unknown heads are
/// ignored, so with unknown heads this may send changes the peer already has
/// (harmless: applying a change twice is a no-op).
pub(crate) fn changes_since(doc: &Automerge, their_heads: &[Hash32]) -> Vec<Vec<u8>> {
    let unknown: std::collections::HashSet<Hash32> =
        unknown_hashes(doc, their_heads).into_iter().collect();
    let known: Vec<ChangeHash> = their_heads
        .iter()
        .filter(|h| !unknown.contains(*h))
        .map(|h| ChangeHash(*h))
        .collect();
    doc.get_changes(&known)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

/// Parses received change chunks. A malformed chunk is a protocol error.
pub(crate) fn parse_changes(chunks: Vec<Vec<u8>>) -> Result<Vec<Change>> {
    chunks
        .into_iter()
        .map(|c| Change::from_bytes(c).map_err(|e| Error::Protocol(format!("bad change: {e}"))))
        .collect()
}

/// Copy-on-write commits leave freed pages and spare regions behind; when the
/// file is more than `ratio` times what it holds, rewrite it compactly (about
/// 0.5 ms per 1,000 documents). redb's compaction does not reclaim everything, so
/// at open (after a crash) only a badly bloated file is compacted, at close one
/// that has grown by a third.
fn compact_if_fragmented(db: &mut Database, path: &Path, ratio: f64) -> Result<()> {
    let stats = {
        let txn = db.begin_write()?;
        let s = txn.stats()?;
        txn.abort()?;
        s
    };
    let used = stats.stored_bytes() + stats.metadata_bytes();
    let file = std::fs::metadata(path)?.len();
    if file > 1 << 20 && file as f64 > used as f64 * ratio {
        let t = std::time::Instant::now();
        // Each pass moves what it can; repeat until nothing more moves (bounded).
        for _ in 0..8 {
            if !db
                .compact()
                .map_err(|e| Error::Database(redb::Error::from(e)))?
            {
                break;
            }
        }
        tracing::debug!(took = ?t.elapsed(), "store compacted");
    }
    Ok(())
}

/// Rewrites the database into a fresh file when it is over `min_file` bytes and
/// more than `ratio` times what it holds (at close: 1 MiB and 4/3) (redb's in-place compaction leaves much of the free space
/// of many small copy-on-write commits behind). The copy is made beside the
/// original and renamed over it only once durable, so a crash leaves one intact.
fn vacuum_if_bloated(db: Database, path: &Path, min_file: u64, ratio: f64) -> Result<()> {
    let used = {
        let txn = db.begin_write()?;
        let s = txn.stats()?;
        txn.abort()?;
        s.stored_bytes() + s.metadata_bytes()
    };
    let file = std::fs::metadata(path)?.len();
    if file <= min_file || file as f64 <= used as f64 * ratio {
        return Ok(());
    }
    let t = std::time::Instant::now();
    let tmp = vacuum_path(path);
    let _ = std::fs::remove_file(&tmp);
    {
        let fresh = Database::builder().create(&tmp)?;
        let read = db.begin_read()?;
        let write = fresh.begin_write()?;
        copy_table(&read, &write, META)?;
        copy_table(&read, &write, SNAPSHOTS)?;
        copy_table(&read, &write, INCREMENTS)?;
        copy_table(&read, &write, VIDS)?;
        write.commit()?;
    }
    drop(db);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    tracing::debug!(took = ?t.elapsed(), before = file, "store rewritten");
    Ok(())
}

fn vacuum_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".vacuum");
    p.into()
}

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &redb::ReadTransaction,
    write: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<()> {
    let src = read.open_table(def)?;
    let mut dst = write.open_table(def)?;
    for row in src.iter()? {
        let (k, v) = row?;
        dst.insert(k.value(), v.value())?;
    }
    Ok(())
}

/// What the writer thread receives.
enum WriterMsg {
    Write(WriteOp),
    /// Acknowledged once every write queued before it is durable.
    Barrier(oneshot::Sender<()>),
    /// The same, for a thread that blocks on it.
    BarrierSync(mpsc::SyncSender<()>),
}

/// Commits queued writes in batches. After a failed commit it commits
/// nothing more: every later write is refused (its caller gets the error and
/// it was never acknowledged), so no write that depends on a lost one lands.
fn writer_loop(
    db: &Database,
    rx: mpsc::Receiver<WriterMsg>,
    failed: &std::sync::OnceLock<String>,
    failure: &tokio::sync::watch::Sender<Option<String>>,
) {
    const MAX_BATCH: usize = 4096;
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        while msgs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(msgs.len());
        let mut barriers = Vec::new();
        let mut sync_barriers = Vec::new();
        for m in msgs {
            match m {
                WriterMsg::Write(op) => batch.push(op),
                WriterMsg::Barrier(b) => barriers.push(b),
                WriterMsg::BarrierSync(b) => sync_barriers.push(b),
            }
        }
        let result = if batch.is_empty() {
            Ok(())
        } else if let Some(why) = failed.get() {
            Err(Error::Io(std::io::Error::other(format!(
                "an earlier commit failed ({why})"
            ))))
        } else {
            commit_batch(db, &batch)
        };
        if let Err(e) = &result {
            if failed.set(e.to_string()).is_ok() {
                tracing::error!(error = %e, ops = batch.len(), "store commit failed; no further writes are taken");
                failure.send_replace(Some(e.to_string()));
            }
        }
        for op in batch {
            op.pending.fetch_sub(1, Ordering::AcqRel);
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::Io(std::io::Error::other(e.to_string()))),
            };
            let _ = op.ack.send(r);
        }
        for b in barriers {
            let _ = b.send(());
        }
        for b in sync_barriers {
            let _ = b.send(());
        }
    }
}

fn commit_batch(db: &Database, batch: &[WriteOp]) -> Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| Error::Internal(e.to_string()))?;
    {
        let mut meta = txn.open_table(META)?;
        let mut snaps = txn.open_table(SNAPSHOTS)?;
        let mut incr = txn.open_table(INCREMENTS)?;
        let mut vids = txn.open_table(VIDS)?;
        for op in batch {
            let skey = op.skey.as_str();
            match &op.data {
                WriteData::Append(bytes) => {
                    incr.insert((skey, op.meta.next_seq - 1), bytes.as_slice())?;
                }
                WriteData::Snapshot(bytes) => {
                    snaps.insert(skey, bytes.as_slice())?;
                    incr.retain_in((skey, 0u64)..=(skey, u64::MAX), |_, _| false)?;
                }
            }
            if let Some(old) = &op.old {
                vids.remove(vid_index_key(&old.vid, skey).as_slice())?;
            }
            vids.insert(vid_index_key(&op.meta.vid, skey).as_slice(), ())?;
            meta.insert(skey, op.meta.encode().as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts() -> StoreOptions {
        StoreOptions {
            cache_docs: 4,
            actor: ActorId::random(),
        }
    }

    fn put(store: &Store, key: &DocKey, v: serde_json::Value) -> Committed {
        store
            .update(
                key,
                true,
                |doc| {
                    doc.transact::<_, _, Error>(|tx| {
                        super::super::put_map(tx, &automerge::ROOT, v.as_object().unwrap())
                    })
                    .map_err(|f| f.error)?;
                    Ok(())
                },
                |_| {},
                |_, _| {},
            )
            .unwrap()
            .unwrap()
            .1
            .unwrap()
    }

    /// A disk that stalls (here: another write transaction holds redb's
    /// writer lock): writes fill the queue, then the writer waits instead of
    /// piling up more; once the disk moves every write lands.
    #[test]
    fn a_full_writer_queue_makes_writers_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db"), opts()).unwrap());
        let db = store.db.read().unwrap().clone().unwrap();
        let stall = db.begin_write().unwrap();
        let total = WRITER_QUEUE + 4096 + 100; // more than queue + one batch
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..total {
                    let key = DocKey::new("q", format!("d{i}")).unwrap();
                    put(&store, &key, serde_json::json!({"i": i}));
                }
            })
        };
        let pending = || -> usize {
            store
                .cache
                .locked()
                .iter()
                .map(|(_, c)| c.pending.load(Ordering::Acquire))
                .sum()
        };
        // the queue fills: the writer thread holds one batch, the queue the rest
        while pending() <= WRITER_QUEUE {
            assert!(!writer.is_finished(), "every write was taken at once");
            std::thread::yield_now();
        }
        assert!(
            !writer.is_finished(),
            "the writer did not wait at a full queue"
        );
        assert!(
            pending() <= WRITER_QUEUE + 4096,
            "{} writes pending",
            pending()
        );
        stall.abort().unwrap();
        drop(db);
        writer.join().unwrap();
        assert!(store.flush_blocking());
        assert_eq!(store.len().unwrap() as usize, total);
        store.close().unwrap();
    }

    /// Many writers at once through the bounded writer queue: every write
    /// lands and queued writes stay within the queue plus one batch.
    #[test]
    fn writes_past_the_writer_queue_wait_instead_of_piling_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db"), opts()).unwrap());
        // More writers than the queue holds, each writing as fast as it can.
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..(WRITER_QUEUE / 2) {
                        let key = DocKey::new("q", format!("t{t}-{i}")).unwrap();
                        put(&store, &key, serde_json::json!({"i": i}));
                    }
                })
            })
            .collect();
        let mut most = 0;
        while threads.iter().any(|t| !t.is_finished()) {
            let pinned: usize = store
                .cache
                .locked()
                .iter()
                .map(|(_, c)| c.pending.load(Ordering::Acquire))
                .sum();
            most = most.max(pinned);
            std::thread::yield_now();
        }
        for t in threads {
            t.join().unwrap();
        }
        // queued writes never exceed the queue plus one batch being committed
        assert!(most <= WRITER_QUEUE + 4096, "{most} writes pending");
        assert!(store.flush_blocking());
        assert_eq!(store.len().unwrap() as usize, 4 * (WRITER_QUEUE / 2));
        store.close().unwrap();
    }

    #[tokio::test]
    async fn the_cache_returns_to_its_capacity_after_a_burst() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), opts()).unwrap();
        // a burst: many cells pinned by queued writes at once
        let mut acks = Vec::new();
        for i in 0..300 {
            acks.push(put(
                &store,
                &DocKey::new("c", format!("d{i}")).unwrap(),
                serde_json::json!({"i": i}),
            ));
        }
        for c in acks {
            c.durable.await.unwrap().unwrap();
        }
        // once committed, ordinary use brings the cache back to its bound
        for i in 0..100 {
            store
                .read(
                    &DocKey::new("c", format!("d{}", i * 3)).unwrap(),
                    |_| Ok(()),
                )
                .unwrap();
        }
        assert!(
            store.cache.locked().len() <= store.cache_cap,
            "{}",
            store.cache.locked().len()
        );
        store.close().unwrap();
    }

    #[tokio::test]
    async fn survives_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let key = DocKey::new("c", "d").unwrap();
        {
            let store = Store::open(&path, opts()).unwrap();
            for i in 0..(COMPACT_AFTER * 2 + 5) {
                put(&store, &key, serde_json::json!({"n": i}))
                    .durable
                    .await
                    .unwrap()
                    .unwrap();
            }
            // churn the cache so the doc is reloaded from rows
            for i in 0..10 {
                put(
                    &store,
                    &DocKey::new("c", format!("o{i}")).unwrap(),
                    serde_json::json!({"i": i}),
                )
                .durable
                .await
                .unwrap()
                .unwrap();
            }
            let v = store.read(&key, super::super::read_doc).unwrap().unwrap();
            assert_eq!(v["n"], COMPACT_AFTER * 2 + 4);
            store.close().unwrap();
        }
        let store = Store::open(&path, opts()).unwrap();
        let v = store.read(&key, super::super::read_doc).unwrap().unwrap();
        assert_eq!(v["n"], COMPACT_AFTER * 2 + 4);
        assert_eq!(store.len().unwrap(), 11);
        assert_eq!(store.versions().unwrap().len(), 11);
        let meta = store.meta(&key).unwrap().unwrap();
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&meta.vid[..8]);
        assert_eq!(
            store.keys_for_version_prefixes(&[prefix, [0; 8]]).unwrap(),
            vec![key]
        );
        let page = store.list("c", "o", None, 4).unwrap();
        assert_eq!(page.ids, vec!["o0", "o1", "o2", "o3"]);
        let page2 = store.list("c", "o", page.next.as_deref(), 100).unwrap();
        assert_eq!(page2.ids.len(), 6);
        assert_eq!(page2.next, None);
    }

    #[tokio::test]
    async fn rewrite_shrinks_the_file_and_keeps_every_document() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let n = 2000;
        {
            let store = Store::open(&path, opts()).unwrap();
            for i in 0..n {
                let key = DocKey::new("c", format!("d{i:05}")).unwrap();
                put(
                    &store,
                    &key,
                    serde_json::json!({"i": i, "pad": "p".repeat(100)}),
                )
                .durable
                .await
                .unwrap()
                .unwrap();
            }
            // Stop the store without its own rewrite, then rewrite unconditionally.
            store.writer.locked().take();
            if let Some(h) = store.writer_thread.locked().take() {
                h.join().unwrap();
            }
            let db = store.db.write().unwrap().take().unwrap();
            let Ok(db) = Arc::try_unwrap(db) else {
                panic!("the store must be the sole owner")
            };
            let before = std::fs::metadata(&path).unwrap().len();
            vacuum_if_bloated(db, &path, 0, 1.0).unwrap();
            let after = std::fs::metadata(&path).unwrap().len();
            assert!(after < before, "file {before} -> {after}");
            assert!(!vacuum_path(&path).exists());
        }
        let store = Store::open(&path, opts()).unwrap();
        assert_eq!(store.len().unwrap(), n);
        assert_eq!(store.versions().unwrap().len() as u64, n);
        for i in [0, n / 2, n - 1] {
            let key = DocKey::new("c", format!("d{i:05}")).unwrap();
            let v = store.read(&key, super::super::read_doc).unwrap().unwrap();
            assert_eq!(v["i"], i);
        }
    }

    #[test]
    fn leftover_rewrite_file_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(vacuum_path(&path), b"half-written copy").unwrap();
        let store = Store::open(&path, opts()).unwrap();
        assert!(!vacuum_path(&path).exists());
        store.close().unwrap();
    }

    #[test]
    fn missing_doc_without_create_is_none_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), opts()).unwrap();
        let key = DocKey::new("c", "x").unwrap();
        assert!(store
            .update(&key, false, |_| Ok(()), |_| {}, |_, _| {})
            .unwrap()
            .is_none());
        // create, but change nothing: no placeholder
        let (_, c) = store
            .update(&key, true, |_| Ok(()), |_| {}, |_, _| {})
            .unwrap()
            .unwrap();
        assert!(c.is_none());
        assert!(store.read(&key, |_| Ok(())).unwrap().is_none());
        assert_eq!(store.len().unwrap(), 0);
    }

    #[test]
    fn corrupt_rows_are_reported_not_panicked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let key = DocKey::new("c", "x").unwrap();
        {
            let store = Store::open(&path, opts()).unwrap();
            let c = put(&store, &key, serde_json::json!({"a": 1}));
            drop(c);
            store.close().unwrap();
        }
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(INCREMENTS)
                .unwrap()
                .insert((key.storage_key().as_str(), 0u64), [1u8, 2, 3].as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path, opts()).unwrap();
        let err = store.read(&key, |_| Ok(())).err().unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
    }

    proptest! {
        #[test]
        fn meta_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Meta::decode(&b);
        }

        #[test]
        fn meta_round_trips(ts in any::<u64>(), vid in any::<[u8; 32]>(), deleted in any::<bool>(), incr in any::<u32>(), seq in any::<u64>()) {
            let m = Meta { ts, vid, deleted, incr, next_seq: seq };
            prop_assert_eq!(Meta::decode(&m.encode()).unwrap(), m);
        }
    }
}

//! Removing documents from this node: the rows go, nothing syncs (expiry and
//! retention are decided the same way on every node, see [`crate::policy`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use redb::ReadableDatabase;
use tokio::sync::oneshot;

use super::meta::{Meta, META};
use super::store::{DocCell, DocState, Store};
use super::writer::{WriteData, WriteOp, WriterMsg};
use super::DocKey;
use crate::error::{Error, Result};
use crate::locks::{LockExt, RwLockExt};

impl Store {
    /// Removes the document if `still` holds for its current metadata,
    /// checked under the document's lock (a change since the caller looked
    /// can save it). Returns the metadata it had, or `None` if it was kept or
    /// missing. The removal is queued like a write; a load or write of the
    /// document from then on sees it gone.
    pub fn purge_if(&self, key: &DocKey, still: impl Fn(&Meta) -> bool) -> Result<Option<Meta>> {
        self.check_not_failed()?;
        let skey = key.storage_key();
        // No load reads this document's rows until the purge is queued.
        let loading = self.loading.write_locked();
        let cached = self.cache.locked().get(&skey).cloned();
        let Some(cell) = cached else {
            let Some(meta) = self.disk_meta(&skey)? else {
                return Ok(None);
            };
            if !still(&meta) {
                return Ok(None);
            }
            // An empty cell stands for the document until the purge commits
            // (it is pinned by it): loads and writes see it gone. Queued
            // before the cell is cached, so no write can come before it.
            let pending = Arc::new(AtomicUsize::new(0));
            self.send(
                WriterMsg::Write(Box::new(purge_op(&skey, meta, &pending))),
                &[&pending],
            )?;
            let cell = Arc::new(DocCell {
                state: Mutex::new(DocState::empty(&self.actor)),
                pending,
            });
            self.insert_new_cell(&skey, cell);
            return Ok(Some(meta));
        };
        drop(loading);
        let mut st = cell.state.locked();
        let Some(meta) = st.meta.filter(|m| still(m)) else {
            return Ok(None);
        };
        let op = purge_op(&skey, meta, &cell.pending);
        self.send(WriterMsg::Write(Box::new(op)), &[&cell.pending])?;
        *st = DocState::empty(&self.actor);
        Ok(Some(meta))
    }

    /// [`Store::purge_if`] for many documents at once (a page of a garbage
    /// collection): uncached ones are checked against one read transaction.
    /// Returns the documents removed, with the metadata they had.
    pub fn purge_many(
        &self,
        keys: &[DocKey],
        still: impl Fn(&DocKey, &Meta) -> bool,
    ) -> Result<Vec<(DocKey, Meta)>> {
        self.check_not_failed()?;
        let mut removed = Vec::new();
        let mut cached = Vec::new();
        let mut ops = Vec::new();
        let mut pins = Vec::new();
        {
            let _loading = self.loading.write_locked();
            let txn = self.db()?.begin_read()?;
            let t = txn.open_table(META)?;
            for key in keys {
                let skey = key.storage_key();
                if let Some(cell) = self.cache.locked().get(&skey).cloned() {
                    cached.push((key, cell));
                    continue;
                }
                let Some(meta) = t
                    .get(skey.as_str())?
                    .map(|v| Meta::decode(v.value()))
                    .transpose()?
                else {
                    continue;
                };
                if !still(key, &meta) {
                    continue;
                }
                let pending = Arc::new(AtomicUsize::new(0));
                ops.push(purge_op(&skey, meta, &pending));
                pins.push((skey, pending));
                removed.push((key.clone(), meta));
            }
            // Queued before their empty cells are cached (so no write comes
            // before them) and while no load can read their rows.
            if !ops.is_empty() {
                let pending: Vec<&Arc<AtomicUsize>> = pins.iter().map(|(_, p)| p).collect();
                self.send(WriterMsg::Writes(std::mem::take(&mut ops)), &pending)?;
            }
            for (skey, pending) in pins {
                let cell = Arc::new(DocCell {
                    state: Mutex::new(DocState::empty(&self.actor)),
                    pending,
                });
                self.insert_new_cell(&skey, cell);
            }
        }
        for (key, cell) in cached {
            let mut st = cell.state.locked();
            let Some(meta) = st.meta.filter(|m| still(key, m)) else {
                continue;
            };
            let op = purge_op(&key.storage_key(), meta, &cell.pending);
            self.send(WriterMsg::Write(Box::new(op)), &[&cell.pending])?;
            *st = DocState::empty(&self.actor);
            removed.push((key.clone(), meta));
        }
        Ok(removed)
    }

    /// Sends `msg` to the writer; the cells `pinned` by its writes stay
    /// pinned until they commit (or are unpinned here if it cannot be sent).
    fn send(&self, msg: WriterMsg, pinned: &[&Arc<AtomicUsize>]) -> Result<()> {
        for p in pinned {
            p.fetch_add(1, Ordering::AcqRel);
        }
        let writer = self.writer.locked().clone();
        if writer.map(|w| w.send(msg).is_ok()) != Some(true) {
            for p in pinned {
                p.fetch_sub(1, Ordering::AcqRel);
            }
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn disk_meta(&self, skey: &str) -> Result<Option<Meta>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(META)?;
        let m = t.get(skey)?;
        m.map(|v| Meta::decode(v.value())).transpose()
    }
}

/// The writer's removal of a document whose metadata is `meta`.
fn purge_op(skey: &str, meta: Meta, pending: &Arc<AtomicUsize>) -> WriteOp {
    let (ack, _durable) = oneshot::channel();
    WriteOp {
        skey: skey.to_string(),
        old: Some(meta),
        meta,
        data: WriteData::Purge,
        sigs: Vec::new(),
        clear_sigs: true,
        pending: pending.clone(),
        ack,
    }
}

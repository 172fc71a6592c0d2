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
            self.queue_purge(&skey, meta, &pending)?;
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
        self.queue_purge(&skey, meta, &cell.pending)?;
        *st = DocState::empty(&self.actor);
        Ok(Some(meta))
    }

    fn queue_purge(&self, skey: &str, meta: Meta, pending: &Arc<AtomicUsize>) -> Result<()> {
        let (ack, _durable) = oneshot::channel();
        pending.fetch_add(1, Ordering::AcqRel);
        let writer = self.writer.locked().clone();
        let sent = writer.map(|w| {
            w.send(WriterMsg::Write(WriteOp {
                skey: skey.to_string(),
                old: Some(meta),
                meta,
                data: WriteData::Purge,
                pending: pending.clone(),
                ack,
            }))
            .is_ok()
        });
        if sent != Some(true) {
            pending.fetch_sub(1, Ordering::AcqRel);
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

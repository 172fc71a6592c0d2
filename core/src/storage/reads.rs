//! Reading documents: through the cache, rendered, sized, or without
//! disturbing the cache; and their changes' stored signatures.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use automerge::Automerge;
use redb::ReadableDatabase;

use super::signatures::{doc_range, row, SigRow, SIGNATURES};
use super::store::Store;
use super::DocKey;
use crate::error::Result;
use crate::locks::LockExt;
use crate::wire::Hash32;

impl Store {
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
}

impl Store {
    /// The stored signatures of `hashes` (of document `key`), in order.
    /// Waits (blocking) for the document's queued writes first, so that the
    /// signatures of changes just made are there.
    pub(crate) fn signatures(
        &self,
        key: &DocKey,
        hashes: &[Hash32],
    ) -> Result<Vec<Option<SigRow>>> {
        if !self.has_signatures.load(Ordering::Acquire) || hashes.is_empty() {
            return Ok(vec![None; hashes.len()]);
        }
        let skey = key.storage_key();
        let pending = self
            .cache
            .locked()
            .peek(&skey)
            .is_some_and(|c| c.pending.load(Ordering::Acquire) > 0);
        if pending {
            self.flush_blocking();
        }
        let txn = self.db()?.begin_read()?;
        let t = match txn.open_table(SIGNATURES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![None; hashes.len()]),
            Err(e) => return Err(e.into()),
        };
        hashes
            .iter()
            .map(|h| Ok(t.get((skey.as_str(), &h[..]))?.and_then(|v| row(v.value()))))
            .collect()
    }

    /// Every stored signature of document `key`, by change hash (of the
    /// writes durable so far: flush first).
    pub(crate) fn all_signatures(&self, key: &DocKey) -> Result<HashMap<Hash32, SigRow>> {
        let mut out = HashMap::new();
        if !self.has_signatures.load(Ordering::Acquire) {
            return Ok(out);
        }
        let skey = key.storage_key();
        let txn = self.db()?.begin_read()?;
        let t = match txn.open_table(SIGNATURES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for r in t.range(doc_range(&skey))? {
            let (k, v) = r?;
            let (_, h) = k.value();
            if let (Ok(h), Some(v)) = (<Hash32>::try_from(h), row(v.value())) {
                out.insert(h, v);
            }
        }
        Ok(out)
    }
}

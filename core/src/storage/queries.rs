//! Reading the store without loading documents: metadata, listings, scans,
//! the version set for reconciliation.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::key::storage_prefix;
use super::meta::{Meta, META, VIDS};
use super::store::{ListPage, Store};
use super::DocKey;
use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::wire::Hash32;

impl Store {
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

    /// Collections with live documents, in name order, after `after`, at
    /// most `limit`: (name, live documents). Walks the documents of the
    /// collections it returns (and the deleted ones between), one read
    /// transaction, memory bounded by `limit`.
    pub fn collections(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // Keys are `collection \0 id`: every key of `after` sorts before
        // `after \x01`, and every later collection's at or after it.
        let start = after.map(|a| format!("{a}\u{1}")).unwrap_or_default();
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(META)?;
        for row in t.range(start.as_str()..)? {
            let (k, v) = row?;
            let k = k.value();
            let Some((collection, _)) = k.split_once('\0') else {
                continue;
            };
            let live = !Meta::decode(v.value())?.deleted;
            let full = out.len() == limit;
            match out.last_mut() {
                Some((name, n)) if name == collection => *n += u64::from(live),
                _ if !live => {}
                _ if full => break,
                _ => out.push((collection.to_string(), 1)),
            }
        }
        Ok(out)
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

    /// Up to `max` (storage key, metadata) rows after `after`, in key order:
    /// one read transaction per call, so a long walk holds none for long.
    pub fn meta_page(&self, after: Option<&str>, max: usize) -> Result<Vec<(String, Meta)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(META)?;
        let mut out = Vec::with_capacity(max.min(4096));
        let rows = match after {
            Some(a) => {
                t.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?
            }
            None => t.range::<&str>(..)?,
        };
        for row in rows {
            if out.len() == max {
                break;
            }
            let (k, v) = row?;
            out.push((k.value().to_string(), Meta::decode(v.value())?));
        }
        Ok(out)
    }

    /// All (timestamp, version id) items, sorted, for set reconciliation.
    /// Built from the metadata rows (one sequential scan and a sort) rather than
    /// kept as a second index, which would cost ~55 bytes per document on disk.
    /// `keep(storage key, metadata)` leaves out documents about to be removed.
    pub fn versions(
        &self,
        mut keep: impl FnMut(&str, &Meta) -> bool,
    ) -> Result<Vec<(u64, Hash32)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(META)?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        for row in t.iter()? {
            let (k, v) = row?;
            let m = Meta::decode(v.value())?;
            if keep(k.value(), &m) {
                out.push((m.ts, m.vid));
            }
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

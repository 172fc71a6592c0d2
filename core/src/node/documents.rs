//! The document API of [`Node`]: put, merge-patch, update, get, delete,
//! list, find, export, import and subscribe.

use automerge::ReadDoc;

use automerge::transaction::Transaction;
use automerge::{AutomergeError, ROOT};
use serde_json::Value as Json;

use crate::documents::{DocEvent, DocFilter, Origin};
use crate::error::{Error, Result};
use crate::events::Subscription;
use crate::storage::{self, Committed, DocKey, ListPage};

use super::Node;

/// Largest page of [`Node::collections`].
pub const MAX_COLLECTIONS_PAGE: usize = 1024;

/// A collection and how many live documents it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionInfo {
    /// The collection's name.
    pub name: String,
    /// Live (not deleted) documents in it.
    pub documents: u64,
}

/// Documents read per page of a subscription snapshot.
const SNAPSHOT_PAGE: usize = 64;

/// Options for [`Node::list`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only ids starting with this.
    pub prefix: String,
    /// Start after this id (the `next` of a previous page).
    pub after: Option<String>,
    /// Page size; 0 means 100.
    pub limit: usize,
}

fn now_ms() -> i64 {
    crate::clock::unix_ms() as i64
}

impl Node {
    // ----- documents -----

    async fn commit(&self, c: Committed) -> Result<()> {
        c.durable.await.map_err(|_| Error::Closed)?
    }

    async fn mutate<R>(
        &self,
        collection: &str,
        id: &str,
        create: bool,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<R>,
    ) -> Result<Option<R>> {
        self.check_open()?;
        let key = DocKey::new(collection, id)?;
        let engine = &self.inner.engine;
        let r = engine.store.update(
            &key,
            create,
            |doc| {
                let now = engine.write_time(collection, doc, now_ms());
                let out = doc
                    .transact_with(
                        |_| automerge::transaction::CommitOptions::default().with_time(now),
                        f,
                    )
                    .map(|s| s.result)
                    .map_err(|f| f.error)?;
                engine.rebase_after_write(collection, doc, now);
                Ok(out)
            },
            |c| engine.fan_out(c, None),
            |c, doc| engine.publish(c, doc, Origin::Local),
        )?;
        match r {
            None => Ok(None),
            Some((out, committed)) => {
                if let Some(c) = committed {
                    self.commit(c).await?;
                }
                Ok(Some(out))
            }
        }
    }

    /// Writes a document: afterwards its content equals `value` (a JSON object).
    /// Fields are updated one by one, so concurrent edits of other fields merge.
    /// Returns once the write is durable on disk.
    pub async fn put(&self, collection: &str, id: &str, value: &Json) -> Result<()> {
        let obj = storage::check_object(value)?;
        self.mutate(collection, id, true, |tx| storage::put_map(tx, &ROOT, obj))
            .await
            .map(|_| ())
    }

    /// Applies an RFC 7386 JSON merge patch (creating the document if needed).
    pub async fn merge_patch(&self, collection: &str, id: &str, patch: &Json) -> Result<()> {
        let obj = storage::check_object(patch)?;
        self.mutate(collection, id, true, |tx| {
            storage::merge_patch(tx, &ROOT, obj)
        })
        .await
        .map(|_| ())
    }

    /// Runs `f` in an Automerge transaction on the document (creating it if
    /// needed) and commits durably. An error from `f` rolls the transaction back.
    ///
    /// ```no_run
    /// # async fn demo(node: peat_mesh::Node) -> peat_mesh::Result<()> {
    /// use automerge::{transaction::Transactable, ROOT};
    /// node.update("counters", "c1", |tx| tx.put(ROOT, "hits", 1i64)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update<R>(
        &self,
        collection: &str,
        id: &str,
        f: impl FnOnce(&mut Transaction<'_>) -> std::result::Result<R, AutomergeError>,
    ) -> Result<R> {
        self.mutate(collection, id, true, |tx| {
            f(tx).map_err(|e| Error::InvalidArgument(e.to_string()))
        })
        .await?
        .ok_or_else(|| Error::Internal("update created no document".into()))
    }

    /// The document as JSON, or `None` if it does not exist or was deleted.
    pub fn get(&self, collection: &str, id: &str) -> Result<Option<Json>> {
        self.get_json(collection, id)?
            .map(|text| {
                serde_json::from_str(&text)
                    .map_err(|e| Error::Internal(format!("rendered document is not JSON: {e}")))
            })
            .transpose()
    }

    /// The document as JSON text, or `None` if it does not exist or was deleted.
    /// Cheaper than [`Node::get`] for repeated reads: the text is kept until the
    /// document changes.
    pub fn get_json(&self, collection: &str, id: &str) -> Result<Option<std::sync::Arc<str>>> {
        self.check_open()?;
        let key = DocKey::new(collection, id)?;
        Ok(self
            .inner
            .engine
            .store
            .rendered(&key, |d| {
                if storage::is_tombstoned(d) {
                    Ok(None)
                } else {
                    storage::read_doc(d).map(|v| Some(v.to_string()))
                }
            })?
            .flatten())
    }

    /// Deletes a document: a tombstone that syncs to peers. Returns false if there
    /// was no live document.
    pub async fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        self.check_open()?;
        let key = DocKey::new(collection, id)?;
        match self.inner.engine.store.meta(&key)? {
            Some(m) if !m.deleted => {}
            _ => return Ok(false),
        }
        self.mutate(collection, id, false, |tx| storage::tombstone(tx))
            .await
            .map(|r| r.is_some())
    }

    /// Lists live document ids of a collection, in id order, one page at a time.
    /// Memory does not grow with the collection. Listing reads committed rows:
    /// a change just received from a peer shows in [`Node::get`] at once and in
    /// listings after its group commit (about a millisecond later).
    pub fn list(&self, collection: &str, opts: &ListOptions) -> Result<ListPage> {
        self.check_open()?;
        let limit = if opts.limit == 0 { 100 } else { opts.limit };
        self.inner
            .engine
            .store
            .list(collection, &opts.prefix, opts.after.as_deref(), limit)
    }

    /// Collections holding live documents, in name order, with their live
    /// document counts: at most `limit` (1 to [`MAX_COLLECTIONS_PAGE`]),
    /// after `after` (the last name of the previous page). Walks the
    /// documents of the collections it returns.
    pub fn collections(&self, after: Option<&str>, limit: usize) -> Result<Vec<CollectionInfo>> {
        self.check_open()?;
        if limit == 0 || limit > MAX_COLLECTIONS_PAGE {
            return Err(Error::InvalidArgument(format!(
                "limit must be 1 to {MAX_COLLECTIONS_PAGE}"
            )));
        }
        let page = self.inner.engine.store.collections(after, limit)?;
        Ok(page
            .into_iter()
            .map(|(name, documents)| CollectionInfo { name, documents })
            .collect())
    }

    /// Live documents of `collection` whose top-level `field` equals `value`
    /// (at most `limit`), as (id, document). Scans the collection.
    pub fn find(
        &self,
        collection: &str,
        field: &str,
        value: &Json,
        limit: usize,
    ) -> Result<Vec<(String, Json)>> {
        self.check_open()?;
        let store = &self.inner.engine.store;
        let mut out = Vec::new();
        store.scan(collection, "", None, |id, meta| {
            if meta.deleted {
                return Ok(true);
            }
            let key = DocKey::new(collection, id)?;
            match store.peek(&key, storage::read_doc) {
                Ok(Some(doc)) if doc.get(field) == Some(value) => out.push((id.to_string(), doc)),
                Ok(_) => {}
                // One unreadable document (nested too deep) does not hide the rest.
                Err(e) => tracing::warn!(%key, error = %e, "find skipped a document"),
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// The document's raw Automerge bytes (a full save), loadable by any Automerge
    /// implementation.
    pub fn export(&self, collection: &str, id: &str) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        let key = DocKey::new(collection, id)?;
        self.inner.engine.store.read(&key, |d| Ok(d.save()))
    }

    /// Merges raw Automerge bytes (a save or changes, from any implementation)
    /// into the document, creating it if needed. All or nothing: bytes that do
    /// not parse completely, changes whose dependencies this document lacks, or
    /// a document nested deeper than [`crate::storage::MAX_NESTING`] are refused
    /// with `InvalidArgument` and leave the document as it was.
    pub async fn import(&self, collection: &str, id: &str, bytes: &[u8]) -> Result<()> {
        self.check_open()?;
        let key = DocKey::new(collection, id)?;
        let engine = &self.inner.engine;
        let r = engine.store.update(
            &key,
            true,
            |doc| {
                // Automerge's incremental load keeps what parses and only logs the
                // rest; parse strictly first, so a damaged import changes nothing.
                storage::check_automerge_bytes(bytes)?;
                let waiting = doc.get_missing_deps(&[]).len();
                doc.load_incremental(bytes)
                    .map_err(|e| Error::InvalidArgument(format!("not Automerge data: {e}")))?;
                let missing = doc.get_missing_deps(&[]).len();
                if missing > waiting {
                    // The store rolls the document back: nothing is applied.
                    return Err(Error::InvalidArgument(format!(
                        "import depends on {} change(s) this document does not have; nothing was applied",
                        missing - waiting
                    )));
                }
                let now = engine.write_time(collection, doc, now_ms());
                engine.rebase_after_write(collection, doc, now);
                Ok(())
            },
            |c| engine.fan_out(c, None),
            |c, doc| engine.publish(c, doc, Origin::Local),
        )?;
        if let Some((_, Some(c))) = r {
            self.commit(c).await?;
        }
        Ok(())
    }

    /// Subscribes to a collection (`id = None`) or one document. With `snapshot`,
    /// the subscription first yields the current state of every matching live
    /// document (origin [`Origin::Snapshot`]), then every change.
    pub fn subscribe(
        &self,
        collection: &str,
        id: Option<&str>,
        snapshot: bool,
    ) -> Result<Subscription<DocEvent>> {
        self.check_open()?;
        match id {
            Some(id) => drop(DocKey::new(collection, id)?),
            None => storage::check_collection(collection)?,
        }
        let sub = self.inner.engine.doc_hub.subscribe(DocFilter {
            collection: collection.to_string(),
            id: id.map(str::to_string),
        });
        if !snapshot {
            return Ok(sub);
        }
        // The snapshot covers the documents live now; their ids are listed at
        // once (a few dozen bytes each), their content is rendered page by page
        // as the subscriber takes it, so nothing of it can be lost to the live
        // queue. A document changed meanwhile is rendered as it is then; its
        // live events follow, so the last event for it is its latest state.
        let store = self.inner.engine.store.clone();
        let collection = collection.to_string();
        let mut ids: std::collections::VecDeque<String> = match id {
            Some(id) => [id.to_string()].into(),
            None => {
                let mut ids = std::collections::VecDeque::new();
                store.scan(&collection, "", None, |doc_id, meta| {
                    if !meta.deleted {
                        ids.push_back(doc_id.to_string());
                    }
                    Ok(true)
                })?;
                ids
            }
        };
        let pages = move || -> Result<Option<Vec<DocEvent>>> {
            if ids.is_empty() {
                return Ok(None);
            }
            let n = ids.len().min(SNAPSHOT_PAGE);
            let ids: Vec<String> = ids.drain(..n).collect();
            let mut page = Vec::with_capacity(ids.len());
            for doc_id in ids {
                let key = DocKey::new(&collection, &doc_id)?;
                let value = store.peek(&key, |d| {
                    if storage::is_tombstoned(d) {
                        Ok(None)
                    } else {
                        storage::read_doc(d).map(Some)
                    }
                });
                match value {
                    Ok(Some(Some(value))) => page.push(DocEvent {
                        key,
                        value: Some(value),
                        origin: Origin::Snapshot,
                    }),
                    Ok(_) => {}
                    Err(e) if e.kind() == crate::ErrorKind::Corrupt => {
                        tracing::warn!(%key, error = %e, "snapshot skipped an unreadable document");
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Some(page))
        };
        Ok(sub.with_snapshot(Box::new(pages)))
    }
}

//! [`Node`]: the public face of a running peer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::ReadDoc;

use automerge::transaction::Transaction;
use automerge::{ActorId, AutomergeError, ROOT};
use iroh::Endpoint;
#[cfg(test)]
use iroh::{EndpointAddr, TransportAddr};
use serde_json::Value as Json;

use crate::blobs::{BlobProtocol, BlobShared, Blobs};
use crate::config::{NodeConfig, PeerAddr};
use crate::discovery::mdns::Mdns;
use crate::discovery::Source;
use crate::documents::{DocEvent, DocFilter, Origin};
use crate::error::{Error, Result};
use crate::events::Subscription;
use crate::security::load_or_create_identity;
use crate::storage::{self, Committed, DocKey, ListPage, Store, StoreOptions};
use crate::sync::{Engine, SyncProtocol};
use crate::transport::manager::Manager;
use crate::transport::router::{Protocol, Router};
use crate::transport::Connections;
use crate::transport::NodeContext;
#[cfg(test)]
use crate::transport::MESH_ALPN;
use crate::transport::{bind_endpoint, PeerEvent, PeerInfo};
use crate::NodeId;

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

/// A running mesh node: documents, peers and sync. Cheap to clone; all clones
/// share one node. Call [`Node::close`] to stop it; dropping the last clone also
/// stops its tasks, without waiting.
///
/// ```no_run
/// # async fn demo() -> peat_mesh::Result<()> {
/// use peat_mesh::{Node, NodeConfig, Formation};
/// let node = Node::open(NodeConfig::new("/tmp/peat-a", Formation::new("alpha", [7; 32]))
///     .listen("127.0.0.1:0".parse().unwrap())).await?;
/// node.put("tracks", "t1", &serde_json::json!({"lat": 1.5, "lon": 2.5})).await?;
/// assert_eq!(node.get("tracks", "t1")?.unwrap()["lat"], 1.5);
/// node.close(std::time::Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<NodeContext>,
    engine: Arc<Engine>,
    connections: Arc<Connections>,
    blobs: Arc<BlobShared>,
    manager: Arc<Manager>,
    mdns: Option<Mdns>,
    endpoint: Endpoint,
    closed: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never blocks: tasks see the cancellation and end on their own.
        self.ctx.cancel.cancel();
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// Creates the data dir owner-only (0700 on Unix), so the database, blobs and
/// key inside are not readable by other users whatever the umask. A directory
/// that already exists keeps the permissions its owner gave it.
fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Node {
    /// Opens the data dir, binds the endpoint, starts accepting peers and dials
    /// the static peers.
    pub async fn open(config: NodeConfig) -> Result<Node> {
        Self::open_with(config, Vec::new()).await
    }

    /// Opens a node that also runs `extra_protocols` on its connections.
    pub(crate) async fn open_with(
        config: NodeConfig,
        extra_protocols: Vec<Arc<dyn Protocol>>,
    ) -> Result<Node> {
        if config.formation.secret_is_unset() {
            return Err(Error::InvalidArgument(
                "the formation secret is all zeros (never set?): use a random one".into(),
            ));
        }
        create_private_dir(&config.data_dir)?;
        let secret = match config.secret_key {
            Some(k) => iroh::SecretKey::from_bytes(&k),
            None => load_or_create_identity(&config.data_dir)?,
        };
        let me = NodeId(secret.public());
        let store_path = config.data_dir.join("peat.redb");
        let store = tokio::task::spawn_blocking(move || {
            Store::open(
                &store_path,
                StoreOptions {
                    cache_docs: config.doc_cache_capacity,
                    actor: ActorId::random(),
                },
            )
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let store = Arc::new(store);
        let blobs = Arc::new(BlobShared::open(&config.data_dir, config.blob_gc_grace)?);
        let endpoint = match bind_endpoint(secret, config.listen, config.link_timeout).await {
            Ok(e) => e,
            Err(e) => {
                let _ = store.close();
                return Err(e);
            }
        };
        let ctx = Arc::new(NodeContext::new(
            me,
            config.formation.clone(),
            config.subscription_capacity,
            config.link_timeout,
        ));
        let engine = Arc::new(Engine::new(
            ctx.clone(),
            store,
            config.subscription_capacity,
            config.peer_queue_capacity,
            config.anti_entropy_interval,
        ));
        let mut protocols: Vec<Arc<dyn Protocol>> = vec![
            Arc::new(SyncProtocol(engine.clone())),
            Arc::new(BlobProtocol {
                shared: blobs.clone(),
                tasks: ctx.tasks.clone(),
                cancel: ctx.cancel.clone(),
            }),
        ];
        protocols.extend(extra_protocols);
        let router = match Router::new(protocols) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                let _ = engine.store.close();
                return Err(e);
            }
        };
        let connections = Arc::new(Connections::new(ctx.clone(), router));
        let manager = Manager::new(
            ctx.clone(),
            connections.clone(),
            endpoint.clone(),
            config.max_peers.max(1),
        );
        ctx.tasks
            .spawn(report_store_failure(ctx.clone(), engine.store.failure()));
        ctx.tasks.spawn(manager.clone().accept_loop());
        for peer in config.static_peers {
            manager.want(peer, Source::Static);
        }
        let mdns = if config.mdns {
            let port = endpoint
                .bound_sockets()
                .first()
                .map(|a| a.port())
                .unwrap_or(0);
            match Mdns::start(manager.clone(), port) {
                Ok(m) => Some(m),
                Err(e) => {
                    // Visible, not fatal: static peers still work.
                    tracing::warn!(error = %e, "mDNS discovery unavailable");
                    None
                }
            }
        } else {
            None
        };
        let node = Node {
            inner: Arc::new(Inner {
                ctx: ctx.clone(),
                engine: engine.clone(),
                connections,
                blobs,
                manager,
                mdns,
                endpoint: endpoint.clone(),
                closed: AtomicBool::new(false),
            }),
        };
        tracing::info!(id = %me.short(), addrs = ?node.addrs(), "node open");
        Ok(node)
    }

    /// This node's id (its public key).
    pub fn id(&self) -> NodeId {
        self.inner.ctx.me
    }

    /// The socket addresses this node listens on.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self.inner.endpoint.addr().ip_addrs().copied().collect();
        if v.is_empty() {
            v = self.inner.endpoint.bound_sockets();
        }
        v
    }

    /// What another node needs to dial this one.
    pub fn peer_addr(&self) -> PeerAddr {
        PeerAddr {
            id: self.id(),
            addrs: self.addrs(),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    // ----- peers -----

    /// Dials a peer and waits until it is admitted (or refused). Returns at once
    /// if a live session with the peer is up; a session whose link went silent
    /// (the peer died or restarted) does not count, and the peer is dialled
    /// afresh. Once connected, the peer is re-dialled (with backoff, like a
    /// static peer, source [`Source::Direct`]) whenever the link drops, until
    /// [`Node::disconnect`] or [`Node::remove_peer`].
    pub async fn connect(&self, peer: &PeerAddr) -> Result<()> {
        self.check_open()?;
        self.inner.manager.dial(peer).await?;
        self.inner.manager.want(peer.clone(), Source::Direct);
        Ok(())
    }

    /// Adds a static peer at runtime: it is dialled now and re-dialled (with
    /// backoff and jitter) whenever its link drops, until [`Node::remove_peer`].
    pub fn add_peer(&self, peer: PeerAddr) -> Result<()> {
        self.check_open()?;
        if peer.id == self.id() {
            return Err(Error::InvalidArgument("cannot add self as a peer".into()));
        }
        self.inner.manager.want(peer, Source::Static);
        Ok(())
    }

    /// Removes a static peer: stops re-dialling it and closes its connection
    /// unless another discovery (mDNS) still wants it. Returns false if it was
    /// not a static peer.
    pub fn remove_peer(&self, peer: &NodeId) -> bool {
        let direct = self.inner.manager.unwant(peer, Source::Direct);
        let had = self.inner.manager.unwant(peer, Source::Static) || direct;
        if had && self.inner.manager.sources(peer).is_empty() {
            self.inner.connections.disconnect(peer);
        }
        had
    }

    /// True if mDNS discovery is running.
    pub fn mdns_enabled(&self) -> bool {
        self.inner.mdns.is_some()
    }

    /// The blob store and transfers of this node.
    pub fn blobs(&self) -> Blobs {
        Blobs {
            node: self.inner.ctx.clone(),
            store: self.inner.engine.store.clone(),
            connections: self.inner.connections.clone(),
            shared: self.inner.blobs.clone(),
        }
    }

    /// Every peer seen, with state and health.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.ctx.peers.list()
    }

    /// Number of peers currently connected.
    pub fn connected_peers(&self) -> usize {
        self.inner.connections.count()
    }

    /// Closes the connection to `peer`, if any. A static peer will be re-dialled.
    pub fn disconnect(&self, peer: &NodeId) -> bool {
        // A peer we connected to is no longer re-dialled; static and mDNS
        // peers are (remove them with `remove_peer`), and the peer may dial back.
        self.inner.manager.unwant(peer, Source::Direct);
        self.inner.connections.disconnect(peer)
    }

    /// Number of live document and peer subscriptions (for leak checks).
    pub fn subscription_count(&self) -> usize {
        self.inner.engine.doc_hub.len() + self.inner.ctx.peer_hub.len()
    }

    /// Peer events from now on: connected, disconnected, admission refused.
    pub fn subscribe_peers(&self) -> Subscription<PeerEvent> {
        self.inner.ctx.peer_hub.subscribe(())
    }

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
                doc.transact_with(
                    |_| automerge::transaction::CommitOptions::default().with_time(now_ms()),
                    f,
                )
                .map(|s| s.result)
                .map_err(|f| f.error)
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
        if let Some(id) = id {
            DocKey::new(collection, id)?;
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

    /// Sync traffic since the node opened, per frame kind.
    pub fn sync_stats(&self) -> crate::sync::SyncStats {
        self.inner.engine.counters.snapshot()
    }

    /// Number of stored documents, tombstones included.
    pub fn document_count(&self) -> Result<u64> {
        self.inner.engine.store.len()
    }

    /// Stops the node: closes every connection, ends subscriptions, flushes the
    /// store and ends every task, within `timeout`. Idempotent.
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        let engine = &self.inner.engine;
        let ctx = &self.inner.ctx;
        if let Some(m) = &self.inner.mdns {
            m.stop();
        }
        // Sessions first send what is queued (bounded), then end.
        ctx.cancel.cancel();
        ctx.tasks.close();
        let tasks_done = tokio::time::timeout_at(deadline.into(), ctx.tasks.wait())
            .await
            .is_ok();
        self.inner.connections.close_all();
        let _ = tokio::time::timeout_at(deadline.into(), self.inner.endpoint.close()).await;
        let store = engine.store.clone();
        // The store is closed whatever the deadline: close returns only once the
        // database file is released (or says why not), so an immediate reopen works.
        let stored = tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|e| Error::Internal(e.to_string()))
            .and_then(|r| r);
        engine.doc_hub.close_all();
        ctx.peer_hub.close_all();
        tracing::info!(id = %ctx.me.short(), "node closed");
        stored?;
        if tasks_done {
            Ok(())
        } else {
            Err(Error::Timeout(
                "tasks still running at close deadline".into(),
            ))
        }
    }
}

#[cfg(test)]
impl Node {
    pub(crate) fn manager_for_tests(&self) -> Arc<Manager> {
        self.inner.manager.clone()
    }

    pub(crate) fn engine_for_tests(&self) -> Arc<Engine> {
        self.inner.engine.clone()
    }

    pub(crate) fn connections_for_tests(&self) -> Arc<Connections> {
        self.inner.connections.clone()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::security::{Admitted, Formation};
    use crate::wire::ProtocolOffer;
    use iroh::endpoint::{RecvStream, SendStream};

    /// A raw iroh peer that dials `node`, passes admission by hand and opens a
    /// sync stream, for tests that then speak the sync protocol (or misbehave)
    /// directly. Returns the endpoint, the admitted connection, the sync stream.
    pub(crate) async fn raw_admitted(
        node: &Node,
        formation: &Formation,
    ) -> (Endpoint, Arc<Admitted>, SendStream, RecvStream) {
        let (ep, conn) = raw_connection(node, formation).await;
        let (send, recv) = crate::transport::router::open_stream(&conn, "sync", &[1])
            .await
            .unwrap();
        (ep, conn, send, recv)
    }

    /// A raw admitted connection to `node` offering sync and blobs (version 1).
    pub(crate) async fn raw_connection(
        node: &Node,
        formation: &Formation,
    ) -> (Endpoint, Arc<Admitted>) {
        let secret = iroh::SecretKey::generate();
        let me = NodeId(secret.public());
        let ep =
            crate::transport::bind_small_window_endpoint(secret, "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
        let addr =
            EndpointAddr::from_parts(node.id().0, node.addrs().into_iter().map(TransportAddr::Ip));
        let conn = ep.connect(addr, MESH_ALPN).await.unwrap();
        let offers = [
            ProtocolOffer {
                name: "sync".into(),
                versions: vec![1],
            },
            ProtocolOffer {
                name: "blobs".into(),
                versions: vec![1],
            },
        ];
        let (admitted, control) = crate::security::admit(conn, true, formation, &me, &offers)
            .await
            .unwrap();
        // A clean end of the control stream is no error to the node.
        drop(control);
        (ep, Arc::new(admitted))
    }

    /// Changes of a document waiting in Automerge's queue for dependencies
    /// (counted by the distinct hashes they wait for).
    pub(crate) fn waiting_deps(node: &Node, collection: &str, id: &str) -> usize {
        let key = DocKey::new(collection, id).unwrap();
        node.inner
            .engine
            .store
            .read(&key, |d| Ok(d.get_missing_deps(&[]).len()))
            .unwrap()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Formation;
    use crate::{Event, PeerEvent};

    /// A raw peer that passes admission and then sends `bytes` as sync traffic.
    async fn misbehave(bytes: &[u8]) -> (Vec<PeerEvent>, u64) {
        let formation = Formation::new("f", [3; 32]);
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(
            NodeConfig::new(dir.path(), formation.clone()).listen("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let events = node.subscribe_peers();
        let (ep, _conn, mut send, _recv) =
            super::test_support::raw_admitted(&node, &formation).await;
        send.write_all(bytes).await.unwrap();
        let mut seen = Vec::new();
        while let Ok(Some(Event::Item(e))) = events.next_timeout(Duration::from_secs(10)).await {
            let done = matches!(e, PeerEvent::Disconnected { .. });
            seen.push(e);
            if done {
                break;
            }
        }
        let count = node.document_count().unwrap();
        node.close(Duration::from_secs(5)).await.unwrap();
        ep.close().await;
        (seen, count)
    }

    fn disconnect_reason(events: &[PeerEvent]) -> String {
        match events.last() {
            Some(PeerEvent::Disconnected { reason, .. }) => reason.clone(),
            other => panic!("expected a disconnect, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_frame_after_admission_closes_and_stores_nothing() {
        let (events, count) = misbehave(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
        assert!(matches!(events[0], PeerEvent::Connected { .. }));
        assert!(
            disconnect_reason(&events).contains("malformed"),
            "{events:?}"
        );
        assert_eq!(count, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_frame_after_admission_closes() {
        let (events, count) = misbehave(&[0x7f, 0xff, 0xff, 0xff, 1]).await;
        assert!(disconnect_reason(&events).contains("exceeds"), "{events:?}");
        assert_eq!(count, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn out_of_order_and_bad_changes_close_and_store_nothing() {
        // an admission frame after admission
        let hello = crate::wire::encode(&crate::wire::Frame::Welcome).unwrap();
        let (events, _) = misbehave(&hello).await;
        assert!(
            disconnect_reason(&events).contains("unexpected"),
            "{events:?}"
        );
        // a Changes frame whose change bytes are garbage
        let bad = crate::wire::encode(&crate::wire::Frame::Changes {
            collection: "c".into(),
            id: "d".into(),
            changes: vec![vec![1, 2, 3]],
            heads: vec![],
        })
        .unwrap();
        let (events, count) = misbehave(&bad).await;
        assert!(
            disconnect_reason(&events).contains("bad change"),
            "{events:?}"
        );
        assert_eq!(count, 0);
    }
}

#[cfg(test)]
mod blob_request_tests {
    use super::*;
    use crate::blobs::BlobHash;
    use crate::security::Formation;

    /// Malformed blob requests from an admitted peer get a clear refusal on
    /// their own stream; the connection, the node and good requests carry on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_blob_requests_are_refused_and_harm_nothing() {
        let formation = Formation::new("f", [6; 32]);
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(
            NodeConfig::new(dir.path(), formation.clone()).listen("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let info = node.blobs().add_bytes(data.clone()).await.unwrap();
        let (ep, conn, send, recv) = super::test_support::raw_admitted(&node, &formation).await;

        let garbage: [&[u8]; 4] = [
            &[0, 0, 0, 3, 0xff, 0xff, 0xff], // not a request
            &[0x7f, 0xff, 0xff, 0xff],       // header too large
            &[0, 0, 0, 10, 1, 2],            // cut short
            &[],                             // nothing at all
        ];
        for g in garbage {
            let (mut s, mut r) = crate::transport::router::open_stream(&conn, "blobs", &[1])
                .await
                .unwrap();
            s.write_all(g).await.unwrap();
            s.finish().unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(1 << 20)).await;
            let Ok(got) = got else {
                panic!("provider left a bad request hanging")
            };
            if let Ok(bytes) = got {
                assert!(bytes.is_empty(), "answered garbage with data");
            }
        }
        // A hand-made Get request on a fresh stream; returns the whole reply.
        let get = |ranges: Vec<(u64, u64)>| {
            let conn = conn.clone();
            async move {
                let (mut s, mut r) = crate::transport::router::open_stream(&conn, "blobs", &[1])
                    .await
                    .unwrap();
                let req = postcard::to_allocvec(&crate::blobs::protocol_request_for_tests(
                    info.hash, ranges,
                ))
                .unwrap();
                s.write_all(&(req.len() as u32).to_be_bytes())
                    .await
                    .unwrap();
                s.write_all(&req).await.unwrap();
                s.finish().unwrap();
                r.read_to_end(1 << 20).await.unwrap()
            }
        };
        // Ranges outside the blob are refused with a reason.
        let reply = get(vec![(0, 99)]).await;
        assert!(String::from_utf8_lossy(&reply).contains("past the"));
        // The connection is still admitted and a good request is served.
        let reply = get(vec![(0, 4)]).await;
        assert!(reply.ends_with(&data[..]), "served bytes differ");
        assert_eq!(node.connected_peers(), 1);
        assert!(BlobHash::of(&data) == info.hash);
        node.close(Duration::from_secs(5)).await.unwrap();
        drop((send, recv, conn));
        ep.close().await;
    }
}

#[cfg(test)]
mod stuck_peer_tests {
    use super::*;
    use crate::security::Formation;

    /// A peer that is admitted and then never reads must not slow the writer or
    /// the other peers: its live queue is bounded and coalesces.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stuck_peer_does_not_stall_writes_or_other_peers() {
        let formation = Formation::new("f", [4; 32]);
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut cfg =
            NodeConfig::new(da.path(), formation.clone()).listen("127.0.0.1:0".parse().unwrap());
        cfg.peer_queue_capacity = 8;
        let a = Node::open(cfg).await.unwrap();
        let b = Node::open(
            NodeConfig::new(db.path(), formation.clone()).listen("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();

        // the stuck peer: admitted, then reads nothing (its receive window fills)
        let (ep, conn, send, recv) = super::test_support::raw_admitted(&a, &formation).await;

        b.connect(&a.peer_addr()).await.unwrap();
        // b's connect returns once b is admitted; a registers its side just after
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.connected_peers() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(a.connected_peers(), 2);

        let t = Instant::now();
        let pad = "z".repeat(2000);
        for i in 0..1500 {
            a.put(
                "bulk",
                &format!("d{}", i % 50),
                &serde_json::json!({"i": i, "pad": pad}),
            )
            .await
            .unwrap();
        }
        let wrote = t.elapsed();
        let want = a.get("bulk", "d49").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.get("bulk", "d49").unwrap() != want {
            assert!(Instant::now() < deadline, "B fell behind while C was stuck");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(wrote < Duration::from_secs(20), "writes stalled: {wrote:?}");
        // the stuck peer is still connected: nothing was torn down to cope
        assert_eq!(a.connected_peers(), 2);
        a.close(Duration::from_secs(5)).await.unwrap();
        b.close(Duration::from_secs(5)).await.unwrap();
        drop((send, recv, conn));
        ep.close().await;
    }
}

/// Publishes [`PeerEvent::StorageFailed`] once if the store fails a commit.
async fn report_store_failure(
    ctx: Arc<NodeContext>,
    mut failure: tokio::sync::watch::Receiver<Option<String>>,
) {
    let reason = tokio::select! {
        r = failure.wait_for(Option::is_some) => match r {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => return,
        },
        _ = ctx.cancel.cancelled() => return,
    };
    ctx.peer_hub
        .publish(&PeerEvent::StorageFailed { reason }, |_| true);
}

//! [`Node`]: the public face of a running peer. Opening and closing, identity
//! and peers are here; the document API is in `documents`.

mod authors;
mod bandwidth;
mod documents;
mod eager;
mod ephemeral;
mod lifecycle;
mod peers;
mod reports;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod trust;

pub use documents::{CollectionInfo, ListOptions, MAX_COLLECTIONS_PAGE};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::ActorId;
use iroh::Endpoint;
#[cfg(test)]
use iroh::{EndpointAddr, TransportAddr};

use crate::authorship::Authorship;
use crate::blobs::{BlobProtocol, BlobState, Blobs};
use crate::config::{NodeConfig, PeerAddr};
use crate::discovery::mdns::Mdns;
use crate::discovery::Source;
use crate::error::{Error, Result};
use crate::events::Subscription;
use crate::lifecycle::Lifecycle;
use crate::security::{load_or_create_identity, Gate};
use crate::storage::{Store, StoreOptions};
use crate::sync::{Engine, SyncProtocol};
use crate::transport::manager::Manager;
use crate::transport::router::{Protocol, Router};
use crate::transport::Connections;
use crate::transport::NodeContext;
#[cfg(test)]
use crate::transport::MESH_ALPN;
use crate::transport::{bind_endpoint, PeerEvent};
use crate::NodeId;

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
    blobs: Arc<BlobState>,
    manager: Arc<Manager>,
    mdns: Option<Mdns>,
    endpoint: Endpoint,
    bond: Option<crate::links::Bond>,
    ephemeral: Arc<crate::ephemeral::service::Ephemeral>,
    /// The node's identity key (signs its revocations and what it issues).
    key: iroh::SecretKey,
    /// Stops the bond's tasks: after the endpoint has closed its connections
    /// (their last packets may need the links), or when the node is dropped.
    bond_cancel: tokio_util::sync::CancellationToken,
    closed: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never blocks: tasks see the cancellation and end on their own.
        self.ctx.cancel.cancel();
        self.bond_cancel.cancel();
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
        if !config.udp && config.links.is_empty() {
            return Err(Error::InvalidArgument(
                "with UDP off a node needs at least one link".into(),
            ));
        }
        if !config.udp && config.mdns {
            return Err(Error::InvalidArgument(
                "mDNS announces the UDP socket: it needs UDP on".into(),
            ));
        }
        config.beacons.check()?;
        config.storage_budget.map(|b| b.check()).transpose()?;
        if config.formation.secret_is_unset() {
            return Err(Error::InvalidArgument(
                "the formation secret is all zeros (never set?): use a random one".into(),
            ));
        }
        let throttle = bandwidth::throttle(&config)?;
        create_private_dir(&config.data_dir)?;
        let secret = match config.secret_key {
            Some(k) => iroh::SecretKey::from_bytes(&k),
            None => load_or_create_identity(&config.data_dir)?,
        };
        let me = NodeId(secret.public());
        let ephemeral_key = secret.clone();

        let ephemeral = Arc::new(crate::ephemeral::service::Ephemeral::new(
            me,
            secret.clone(),
            config.ephemeral_forwarding,
            config.latest_capacity,
            config.subscription_capacity,
            config.beacons.clone(),
            throttle.clone(),
        ));
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
        let gate = {
            let (formation, trust, dir, key) = (
                config.formation.clone(),
                config.trust.clone(),
                config.data_dir.clone(),
                secret.clone(),
            );
            tokio::task::spawn_blocking(move || Gate::open(&key, &formation, trust.as_ref(), &dir))
                .await
                .map_err(|e| Error::Internal(e.to_string()))
                .and_then(|g| g)
        };
        let gate = match gate {
            Ok(g) => Arc::new(g),
            Err(e) => {
                let _ = store.close();
                return Err(e);
            }
        };
        let blobs = Arc::new(BlobState::open(&config.data_dir, config.blob_gc_grace)?);
        let ctx = Arc::new(NodeContext::new(
            me,
            config.formation.clone(),
            gate.clone(),
            config.subscription_capacity,
            config.link_timeout,
            throttle.clone(),
        ));
        let bond_cancel = tokio_util::sync::CancellationToken::new();
        let bonded = if config.links.is_empty() {
            Ok(None)
        } else {
            crate::links::open_bond(
                crate::links::bond_id(&me),
                &config.links,
                config.pace.clone(),
                bond_cancel.clone(),
            )
            .map(Some)
        };
        let bound = match bonded {
            Ok(bond) => bind_endpoint(
                secret,
                config.udp.then_some(config.listen),
                config.link_timeout,
                bond.as_ref(),
            )
            .await
            .map(|e| (e, bond)),
            Err(e) => Err(e),
        };
        let (endpoint, bond) = match bound {
            Ok(b) => b,
            Err(e) => {
                ctx.cancel.cancel();
                bond_cancel.cancel();
                let _ = store.close();
                return Err(e);
            }
        };
        if let Some(b) = &bond {
            let _ = blobs.bond.set(b.clone());
            let _ = throttle.bond.set(b.clone());
        }
        let links_for_sync = bond.clone();
        let authorship = Arc::new(Authorship::new(&ephemeral_key, config.formation.id()));
        let engine = Arc::new(Engine::new(
            ctx.clone(),
            store,
            config.subscription_capacity,
            config.peer_queue_capacity,
            config.anti_entropy_interval,
            Arc::new(Lifecycle::new(config.policies.clone()).with_budget(config.storage_budget)),
            config.qos,
            authorship,
        ));
        authors::install_signer(&engine);
        blobs.qos.store(config.qos, Ordering::Relaxed);
        if let Some(b) = links_for_sync {
            let _ = engine.links.set(b);
        }
        let mut protocols: Vec<Arc<dyn Protocol>> = vec![
            Arc::new(SyncProtocol(engine.clone())),
            Arc::new(BlobProtocol {
                shared: blobs.clone(),
                throttle: throttle.clone(),
                tasks: ctx.tasks.clone(),
                cancel: ctx.cancel.clone(),
            }),
            Arc::new(crate::ephemeral::protocol::EphemeralProtocol {
                shared: ephemeral.clone(),
                cancel: ctx.cancel.clone(),
            }),
        ];
        if gate.genesis().is_some() {
            protocols.push(Arc::new(crate::revocations::RevocationProtocol {
                gate: gate.clone(),
                throttle: throttle.clone(),
                cancel: ctx.cancel.clone(),
            }));
        }
        protocols.extend(extra_protocols);
        let router = match Router::new(protocols) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                ctx.cancel.cancel();
                bond_cancel.cancel();
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
        ctx.tasks.spawn(reports::report_store_failure(
            ctx.clone(),
            engine.store.failure(),
        ));
        if let Some(switches) = bond.as_ref().and_then(|b| b.take_switch_events()) {
            ctx.tasks.spawn(reports::report_link_switches(
                ctx.clone(),
                connections.clone(),
                engine.clone(),
                switches,
            ));
        }
        if let Some(mc) = &config.multicast {
            match crate::ephemeral::multicast::MulticastPath::open(
                mc,
                config.formation.clone(),
                &ephemeral_key,
            ) {
                Ok(path) => {
                    let path = Arc::new(path);
                    let _ = ephemeral.multicast.set(path.clone());
                    ctx.tasks.spawn(crate::ephemeral::service::run_multicast(
                        ephemeral.clone(),
                        path,
                        ctx.cancel.clone(),
                    ));
                }
                Err(e) => {
                    ctx.cancel.cancel();
                    bond_cancel.cancel();
                    let _ = engine.store.close();
                    return Err(e);
                }
            }
        }
        ctx.tasks.spawn(crate::ephemeral::service::run_beacons(
            ephemeral.clone(),
            ctx.cancel.clone(),
        ));
        if gate.genesis().is_some() {
            ctx.tasks.spawn(crate::revocations::enforce(
                ctx.clone(),
                connections.clone(),
            ));
        }
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
                bond,
                ephemeral,
                key: ephemeral_key,
                bond_cancel,
                closed: AtomicBool::new(false),
            }),
        };
        lifecycle::start(&ctx, engine, node.blobs(), config.gc_interval);
        tracing::info!(id = %me.short(), addrs = ?node.addrs(), "node open");
        Ok(node)
    }

    /// The node's bond over its links besides UDP (`None` without links):
    /// per-link health towards each peer, link switches, counters.
    pub fn bond(&self) -> Option<&crate::links::Bond> {
        self.inner.bond.as_ref()
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
            links: self
                .inner
                .bond
                .iter()
                .map(|b| crate::links::LinkAddr(b.addr()))
                .collect(),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
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

    /// Number of live document and peer subscriptions (for leak checks).
    pub fn subscription_count(&self) -> usize {
        self.inner.engine.doc_hub.len()
            + self.inner.ctx.peer_hub.len()
            + self.inner.ephemeral.subscription_count()
    }

    /// Events waiting in every live subscription's queue, unread (document,
    /// peer, message and beacon subscriptions; each queue is bounded, and a
    /// reader that falls behind is told how many it lost).
    pub fn queued_events(&self) -> u64 {
        (self.inner.engine.doc_hub.queued()
            + self.inner.ctx.peer_hub.queued()
            + self.inner.ephemeral.queued_events()) as u64
    }

    /// Peer events from now on: connected, disconnected, admission refused.
    pub fn subscribe_peers(&self) -> Subscription<PeerEvent> {
        self.inner.ctx.peer_hub.subscribe(())
    }
}

impl Node {
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
        self.inner.bond_cancel.cancel();
        let store = engine.store.clone();
        // The store is closed whatever the deadline: close returns only once the
        // database file is released (or says why not), so an immediate reopen works.
        let stored = tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|e| Error::Internal(e.to_string()))
            .and_then(|r| r);
        ctx.gate.close();
        engine.doc_hub.close_all();
        ctx.peer_hub.close_all();
        self.inner.ephemeral.close_subscriptions();
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

//! The running discovery: two watches (EndpointSlices and Pod metadata, each
//! a kube-rs `watcher` that lists, then watches, and re-lists with backoff
//! after an error), the [`Catalog`] they fill, and the difference of its
//! wanted set applied to the node with [`Node::discovered`] / [`Node::lost`].
//! A third task writes this node's id into its own Pod's annotation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use peat_mesh::{Node, NodeId, PeerAddr, Source};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, Counts, NODE_ID_ANNOTATION};
use crate::config::KubernetesConfig;
use crate::Error;

/// What discovery has seen and done, for metrics and the status of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// The catalog's counts at the last change.
    pub counts: Counts,
    /// Peers currently reported to the node.
    pub peers: usize,
    /// Both watches have listed their objects at least once.
    pub synced: bool,
    /// This node's Pod carries its id.
    pub announced: bool,
    /// Watch errors (each followed by a re-list after a backoff).
    pub watch_errors: u64,
    /// Failed attempts to annotate this node's Pod.
    pub announce_errors: u64,
    /// Watch events received.
    pub events: u64,
}

struct Shared {
    stats: Mutex<Stats>,
    /// Wakes the announcer (the Pod lost or never had this node's id).
    announce: Notify,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Stats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }
}

/// Kubernetes discovery for one node; stops when dropped.
pub struct Discovery {
    shared: Arc<Shared>,
    namespace: String,
    cancel: CancellationToken,
}

impl Discovery {
    /// Connects to the API server and starts watching. Fails at once on a
    /// bad configuration or unreadable credentials; the API server being
    /// unreachable is not an error here (the watches retry with backoff and
    /// count their errors in [`Stats::watch_errors`]).
    pub async fn start(node: Node, config: KubernetesConfig) -> Result<Discovery, Error> {
        config.check().map_err(Error::Config)?;
        let (client, default_ns) = crate::client::connect(&config.access).await?;
        let namespace = config.namespace.clone().unwrap_or(default_ns);
        let shared = Arc::new(Shared {
            stats: Mutex::new(Stats::default()),
            announce: Notify::new(),
        });
        let cancel = CancellationToken::new();
        let own_pod = config.own_pod();
        match &own_pod {
            Some(pod) => {
                shared.announce.notify_one();
                tokio::spawn(announce(
                    Api::namespaced(client.clone(), &namespace),
                    pod.clone(),
                    node.id(),
                    shared.clone(),
                    cancel.clone(),
                ));
            }
            None => tracing::warn!(
                "kubernetes: no pod name (POD_NAME, HOSTNAME or kubernetes.pod_name): this node's id is not announced, so other nodes will not dial it"
            ),
        }
        tracing::info!(%namespace, slices = %config.slice_selector, pods = %config.pod_selector, port = %config.port_name, "kubernetes discovery started");
        tokio::spawn(watch(
            node,
            client,
            namespace.clone(),
            config,
            own_pod,
            shared.clone(),
            cancel.clone(),
        ));
        Ok(Discovery {
            shared,
            namespace,
            cancel,
        })
    }

    /// The namespace watched.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// What discovery has seen and done so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Stops the watches and the announcer (at once; shared holders such as
    /// the HTTP API's state may still read [`Discovery::stats`]). The peers
    /// found stay wanted until the node closes.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

enum Change {
    Slice(Result<Event<EndpointSlice>, watcher::Error>),
    Pod(Result<Event<PartialObjectMeta<Pod>>, watcher::Error>),
}

async fn watch(
    node: Node,
    client: kube::Client,
    namespace: String,
    config: KubernetesConfig,
    own_pod: Option<String>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let slices = watcher(
        Api::<EndpointSlice>::namespaced(client.clone(), &namespace),
        watcher::Config::default().labels(&config.slice_selector),
    )
    .default_backoff()
    .map(Change::Slice)
    .boxed();
    // Metadata only: the annotations are all discovery reads of a pod.
    let pods = watcher(
        Api::<PartialObjectMeta<Pod>>::namespaced(client, &namespace),
        watcher::Config::default().labels(&config.pod_selector),
    )
    .default_backoff()
    .map(Change::Pod)
    .boxed();
    let mut changes = futures::stream::select(slices, pods);
    let me = node.id();
    let mut catalog = Catalog::new(&config.port_name);
    // Whether each watch is between its list's start and end (then the
    // catalog holds a partial list, and nothing is applied).
    let (mut slices_listed, mut pods_listed) = (false, false);
    let (mut slices_listing, mut pods_listing) = (false, false);
    let mut applied: BTreeMap<NodeId, Vec<SocketAddr>> = BTreeMap::new();
    let mut last_counts = Counts::default();
    loop {
        let change = tokio::select! {
            _ = cancel.cancelled() => break,
            c = changes.next() => match c {
                Some(c) => c,
                None => break,
            },
        };
        shared.update(|s| s.events += 1);
        match change {
            Change::Slice(Ok(e)) => match e {
                Event::Init => {
                    catalog.clear_slices();
                    slices_listing = true;
                }
                Event::InitApply(s) | Event::Apply(s) => catalog.apply_slice(&s),
                Event::Delete(s) => {
                    if let Some(n) = &s.metadata.name {
                        catalog.delete_slice(n);
                    }
                }
                Event::InitDone => {
                    slices_listing = false;
                    slices_listed = true;
                }
            },
            Change::Pod(Ok(e)) => match e {
                Event::Init => {
                    catalog.clear_pods();
                    pods_listing = true;
                }
                Event::InitApply(p) | Event::Apply(p) => {
                    let name = p.metadata.name.as_deref().unwrap_or_default();
                    let note = p
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(NODE_ID_ANNOTATION))
                        .map(String::as_str);
                    if own_pod.as_deref() == Some(name) && note != Some(me.to_string().as_str()) {
                        // Our Pod without our id (recreated, or edited).
                        shared.update(|s| s.announced = false);
                        shared.announce.notify_one();
                    }
                    catalog.apply_pod(name, note);
                }
                Event::Delete(p) => {
                    if let Some(n) = &p.metadata.name {
                        catalog.delete_pod(n);
                    }
                }
                Event::InitDone => {
                    pods_listing = false;
                    pods_listed = true;
                }
            },
            Change::Slice(Err(e)) | Change::Pod(Err(e)) => {
                shared.update(|s| s.watch_errors += 1);
                tracing::warn!(error = %e, "kubernetes watch failed; it lists again after a backoff");
                continue;
            }
        }
        if !(slices_listed && pods_listed) || slices_listing || pods_listing {
            continue;
        }
        let wanted = catalog.wanted(&me);
        for (id, addrs) in &wanted.peers {
            if applied.get(id) == Some(addrs) {
                continue;
            }
            if let Err(e) =
                node.discovered(PeerAddr::with_addrs(*id, addrs.clone()), Source::Kubernetes)
            {
                tracing::warn!(peer = %id.short(), error = %e, "kubernetes peer not taken");
            }
        }
        for id in applied.keys().filter(|id| !wanted.peers.contains_key(id)) {
            node.lost(id, Source::Kubernetes);
        }
        if wanted.counts != last_counts {
            tracing::info!(
                peers = wanted.peers.len(),
                ready = wanted.counts.ready,
                not_ready = wanted.counts.not_ready,
                unidentified = wanted.counts.unidentified,
                slices_without_port = wanted.counts.slices_without_port,
                over_limit = wanted.counts.over_limit,
                "kubernetes endpoints changed"
            );
            last_counts = wanted.counts;
        }
        applied = wanted.peers;
        shared.update(|s| {
            s.counts = wanted.counts;
            s.peers = applied.len();
            s.synced = true;
        });
    }
}

/// Writes this node's id into its Pod's annotation whenever woken, retrying
/// with backoff (1 s doubling to 60 s) until the API server takes it.
async fn announce(
    pods: Api<Pod>,
    pod: String,
    me: NodeId,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let body = serde_json::json!({
        "metadata": { "annotations": { NODE_ID_ANNOTATION: me.to_string() } }
    });
    let patch = Patch::Merge(&body);
    let params = PatchParams::default();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = shared.announce.notified() => {}
        }
        let mut delay = Duration::from_secs(1);
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                r = pods.patch_metadata(&pod, &params, &patch) => r,
            };
            match result {
                Ok(_) => {
                    tracing::info!(%pod, "kubernetes: this node's id is on its pod");
                    shared.update(|s| s.announced = true);
                    break;
                }
                Err(e) => {
                    shared.update(|s| s.announce_errors += 1);
                    tracing::warn!(%pod, error = %e, "kubernetes: could not annotate this node's pod; retrying in {delay:?}");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}

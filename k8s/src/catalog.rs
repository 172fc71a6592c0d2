//! The catalog: what the API server has told discovery, reduced to what it
//! needs (no Kubernetes client here, so it is tested without one).
//!
//! Two kinds of object meet here:
//! - **EndpointSlices** of the node's Service give each pod's addresses, its
//!   readiness (`conditions.ready`, where a missing value means ready, as the
//!   API defines it) and the Service's ports, of which discovery uses the one
//!   with the configured name and protocol UDP (QUIC), never "the first".
//! - **Pods** carry the node id each node writes into its own Pod's
//!   [`NODE_ID_ANNOTATION`] when it starts: an address alone cannot be dialled,
//!   since QUIC admission authenticates the peer's key.
//!
//! [`Catalog::wanted`] joins them: a ready endpoint whose pod has announced an
//! id is a peer to dial at its addresses and the named port.
//!
//! Bounds: at most [`MAX_SLICES`] slices of at most [`MAX_ENDPOINTS_PER_SLICE`]
//! endpoints (the API's own limit) and [`MAX_PODS`] pods are kept, and at most
//! [`peat_mesh::MAX_KUBERNETES_PEERS`] peers are wanted (the lowest ids, so
//! every node of a large formation picks the same set). Whatever is left out
//! is counted in [`Counts`] and logged by the caller.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use peat_mesh::NodeId;

/// The Pod annotation a node writes its id into.
pub const NODE_ID_ANNOTATION: &str = "peat-mesh.io/node-id";

/// Slices kept at most.
pub const MAX_SLICES: usize = 64;
/// Endpoints kept per slice at most (the API refuses more than 1,000).
pub const MAX_ENDPOINTS_PER_SLICE: usize = 1000;
/// Pods kept at most.
pub const MAX_PODS: usize = 4096;
/// Addresses kept per endpoint at most (the API allows one today).
const MAX_ADDRS_PER_ENDPOINT: usize = 4;

/// One endpoint of a slice, as discovery needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    /// The Pod behind it (`targetRef` of kind Pod), if any.
    pod: Option<String>,
    addrs: Vec<IpAddr>,
    ready: bool,
}

/// One slice: the named UDP port (if the slice has it) and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slice {
    port: Option<u16>,
    endpoints: Vec<Endpoint>,
    /// Endpoints beyond [`MAX_ENDPOINTS_PER_SLICE`], not kept.
    dropped: usize,
}

/// How the catalog's endpoints fared, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Slices kept.
    pub slices: usize,
    /// Slices without a UDP port of the configured name (none of their
    /// endpoints can be dialled).
    pub slices_without_port: usize,
    /// Ready endpoints (in slices with the port).
    pub ready: usize,
    /// Endpoints not ready (not dialled).
    pub not_ready: usize,
    /// Ready endpoints whose pod has not announced a (valid) node id yet.
    pub unidentified: usize,
    /// Slices, endpoints or pods not kept, or peers beyond the bound.
    pub over_limit: usize,
}

/// The wanted peers and the counts behind them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub peers: BTreeMap<NodeId, Vec<SocketAddr>>,
    pub counts: Counts,
}

/// What discovery knows of the namespace's slices and pods.
#[derive(Debug, Clone)]
pub struct Catalog {
    port_name: String,
    slices: BTreeMap<String, Slice>,
    /// Pod name → the id it announced (`None`: no or a bad annotation).
    pods: BTreeMap<String, Option<NodeId>>,
    dropped_slices: usize,
    dropped_pods: usize,
}

impl Catalog {
    /// An empty catalog that dials the UDP port named `port_name`.
    pub fn new(port_name: &str) -> Catalog {
        Catalog {
            port_name: port_name.to_string(),
            slices: BTreeMap::new(),
            pods: BTreeMap::new(),
            dropped_slices: 0,
            dropped_pods: 0,
        }
    }

    /// Adds or replaces a slice (by name).
    pub fn apply_slice(&mut self, s: &EndpointSlice) {
        let Some(name) = s.metadata.name.clone() else {
            return;
        };
        if !self.slices.contains_key(&name) && self.slices.len() >= MAX_SLICES {
            self.dropped_slices += 1;
            return;
        }
        let slice = self.read_slice(s);
        self.slices.insert(name, slice);
    }

    /// Forgets a slice.
    pub fn delete_slice(&mut self, name: &str) {
        self.slices.remove(name);
    }

    /// Records the id pod `name` announced (`annotation`: its
    /// [`NODE_ID_ANNOTATION`], if set).
    pub fn apply_pod(&mut self, name: &str, annotation: Option<&str>) {
        if !self.pods.contains_key(name) && self.pods.len() >= MAX_PODS {
            self.dropped_pods += 1;
            return;
        }
        let id = annotation.and_then(|a| a.trim().parse::<NodeId>().ok());
        self.pods.insert(name.to_string(), id);
    }

    /// Forgets a pod.
    pub fn delete_pod(&mut self, name: &str) {
        self.pods.remove(name);
    }

    /// Forgets every slice (a slice watch restarting its list).
    pub fn clear_slices(&mut self) {
        self.slices.clear();
        self.dropped_slices = 0;
    }

    /// Forgets every pod (a pod watch restarting its list).
    pub fn clear_pods(&mut self) {
        self.pods.clear();
        self.dropped_pods = 0;
    }

    /// The peers to dial: every ready endpoint of a pod with an id (other
    /// than `me`), at its addresses and the named port.
    pub fn wanted(&self, me: &NodeId) -> Wanted {
        let mut w = Wanted::default();
        w.counts.slices = self.slices.len();
        w.counts.over_limit = self.dropped_slices + self.dropped_pods;
        let mut peers: BTreeMap<NodeId, Vec<SocketAddr>> = BTreeMap::new();
        for slice in self.slices.values() {
            w.counts.over_limit += slice.dropped;
            let Some(port) = slice.port else {
                w.counts.slices_without_port += 1;
                continue;
            };
            for e in &slice.endpoints {
                if !e.ready {
                    w.counts.not_ready += 1;
                    continue;
                }
                w.counts.ready += 1;
                let id = e.pod.as_ref().and_then(|p| self.pods.get(p)).copied();
                let Some(id) = id.flatten() else {
                    w.counts.unidentified += 1;
                    continue;
                };
                if id == *me {
                    continue;
                }
                let addrs = peers.entry(id).or_default();
                for ip in &e.addrs {
                    let a = SocketAddr::new(*ip, port);
                    if !addrs.contains(&a) {
                        addrs.push(a);
                    }
                }
            }
        }
        let limit = peat_mesh::MAX_KUBERNETES_PEERS;
        if peers.len() > limit {
            w.counts.over_limit += peers.len() - limit;
        }
        w.peers = peers.into_iter().take(limit).collect();
        w
    }

    fn read_slice(&self, s: &EndpointSlice) -> Slice {
        // Only IP slices can be dialled (an FQDN slice has names).
        let ip_slice = matches!(s.address_type.as_str(), "IPv4" | "IPv6");
        let port = s
            .ports
            .iter()
            .flatten()
            .find(|p| {
                p.name.as_deref() == Some(self.port_name.as_str())
                    && p.protocol.as_deref() == Some("UDP")
            })
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0 && ip_slice);
        let endpoints: Vec<Endpoint> = s
            .endpoints
            .iter()
            .take(MAX_ENDPOINTS_PER_SLICE)
            .map(|e| Endpoint {
                pod: e
                    .target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| r.name.clone()),
                addrs: e
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .take(MAX_ADDRS_PER_ENDPOINT)
                    .collect(),
                // "nil should be interpreted as ready" (discovery.k8s.io/v1).
                ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
            })
            .collect();
        Slice {
            port,
            dropped: s.endpoints.len() - endpoints.len(),
            endpoints,
        }
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;

//! Kubernetes discovery for peat-mesh nodes (used by `peat-mesh-node`; the
//! `peat-mesh` core has no Kubernetes client).
//!
//! A node in a StatefulSet finds its siblings through the API server:
//! - it **announces** itself by writing its node id into its own Pod's
//!   [`NODE_ID_ANNOTATION`] (a pod's address alone cannot be dialled: QUIC
//!   admission checks the peer's key);
//! - it **watches** (never polls) the EndpointSlices of its headless Service
//!   and the Pods of the formation, in its service account's namespace,
//!   selected by labels from the configuration;
//! - every **ready** endpoint of a pod that announced an id becomes a peer,
//!   dialled at its address and the Service port of the configured name
//!   (protocol UDP), through [`peat_mesh::Node::discovered`] with
//!   [`peat_mesh::Source::Kubernetes`] — re-dialled with backoff like an mDNS
//!   peer while the endpoint stays ready, and dropped when it goes.
//!
//! The RBAC this needs (the Helm chart's Role): `get, list, watch` on
//! `endpointslices` and `pods`, and `patch` on the node's own pod.
//!
//! ```no_run
//! # async fn run(node: peat_mesh::Node) -> Result<(), peat_mesh_k8s::Error> {
//! let discovery = peat_mesh_k8s::Discovery::start(node, peat_mesh_k8s::KubernetesConfig::default()).await?;
//! println!("{:?}", discovery.stats());
//! # Ok(()) }
//! ```

mod catalog;
mod client;
mod config;
mod discovery;

pub use catalog::{Counts, MAX_ENDPOINTS_PER_SLICE, MAX_PODS, MAX_SLICES, NODE_ID_ANNOTATION};
pub use config::{ApiAccess, KubernetesConfig, SERVICE_ACCOUNT_DIR};
pub use discovery::{Discovery, Stats};

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting or a credential file is unusable: one line saying which.
    #[error("{0}")]
    Config(String),
    /// The client could not be built.
    #[error("kubernetes client: {0}")]
    Api(String),
}

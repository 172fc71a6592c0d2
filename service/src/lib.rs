//! `peat-mesh-service`: a peat-mesh node run as a service — configured from a
//! file, the environment and flags ([`config`]), reachable over an HTTP API
//! with bearer-token auth ([`http`], [`auth`]), and shut down gracefully
//! (stop accepting requests, let those in flight finish, close the node).
//!
//! The HTTP stack lives here so that the `peat-mesh` core never links it;
//! the `peat-mesh-node` binary uses this crate for `serve`.

pub mod auth;
pub mod blobs_api;
pub mod client;
pub mod config;
pub mod documents_api;
pub mod http;
pub mod kube_settings;
pub mod metrics;
pub mod openapi;
pub mod schema;
mod status_page;
pub mod tls;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peat_mesh::{Formation, Node, NodeConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{ConfigError, Layer, Settings};

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Node(#[from] peat_mesh::Error),
    #[error("cannot listen for HTTP on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    #[error("kubernetes discovery: {0}")]
    Kubernetes(#[from] peat_mesh_k8s::Error),
}

/// A running service: the node and its HTTP API.
pub struct Service {
    node: Node,
    http_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    ws_stop: tokio_util::sync::CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    kubernetes: Option<Arc<peat_mesh_k8s::Discovery>>,
}

impl Service {
    /// Opens the node and starts the HTTP API.
    pub async fn start(s: &Settings) -> Result<Service, ServiceError> {
        let formation = Formation::try_new(s.formation.clone(), *s.secret)?;
        let mut cfg = NodeConfig::new(&s.data_dir, formation)
            .listen(s.listen)
            .mdns(s.mdns)
            .policies(s.policies.clone());
        for p in &s.peers {
            cfg = cfg.peer(p.clone());
        }
        let node = Node::open(cfg).await?;
        let kubernetes = match &s.kubernetes {
            None => None,
            Some(k) => match peat_mesh_k8s::Discovery::start(node.clone(), k.clone()).await {
                Ok(d) => Some(Arc::new(d)),
                Err(e) => {
                    let _ = node.close(Duration::from_secs(5)).await;
                    return Err(e.into());
                }
            },
        };
        let listener = match tokio::net::TcpListener::bind(s.http_bind).await {
            Ok(l) => l,
            Err(e) => {
                let _ = node.close(Duration::from_secs(5)).await;
                return Err(ServiceError::Bind(s.http_bind, e));
            }
        };
        let http_addr = listener.local_addr().map_err(ServiceError::Http)?;
        let state = Arc::new(http::ApiState {
            kubernetes: kubernetes.clone(),
            ..http::ApiState::new(
                node.clone(),
                auth::Auth::new(s.tokens.clone()),
                s.ready_needs_peer,
            )
        });
        let ws_stop = state.stop.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = http::with_cors(http::router(state), &s.cors_origins);
        let stopped = async {
            let _ = stopped.await;
        };
        let server = match &s.tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }),
            Some(t) => {
                let tls = tls::TlsListener::new(listener, t.config.clone())
                    .map_err(ServiceError::Http)?;
                tokio::spawn(
                    async move { axum::serve(tls, app).with_graceful_shutdown(stopped).await },
                )
            }
        };
        let scheme = if s.tls.is_some() { "https" } else { "http" };
        tracing::info!(node = %node.id(), http = %http_addr, scheme, "service started");
        Ok(Service {
            node,
            http_addr,
            stop: Some(stop),
            ws_stop,
            server,
            kubernetes,
        })
    }

    /// The node the service runs.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Where the HTTP API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops accepting requests, waits up to `grace` for those in flight,
    /// then closes the node (sessions drained, store closed) within `grace`.
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), ServiceError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.ws_stop.cancel();
        // Stop watching first: no peer is dialled while the node drains.
        if let Some(k) = self.kubernetes.take() {
            k.stop();
        }
        match tokio::time::timeout(grace, &mut self.server).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "requests still running at the end of the grace period"
                );
                self.server.abort();
            }
        }
        self.node.close(grace).await?;
        Ok(())
    }
}

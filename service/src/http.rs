//! The HTTP API under `/api/v1` (JSON): health and readiness, node info,
//! peers, documents ([`crate::documents_api`]), the WebSocket
//! ([`crate::ws`]), and `/metrics` ([`crate::metrics`]); its OpenAPI
//! document is at `/api/v1/openapi.json` ([`crate::openapi`]). Every route
//! but health, readiness and the OpenAPI document needs a token with the
//! route's scope when tokens are configured ([`crate::auth`]).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use peat_mesh::{ErrorKind, Node, PeerState};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::{Auth, Denied, Scope};
use crate::blobs_api as blobs;
use crate::documents_api as docs;
use crate::metrics::ServiceMetrics;
use crate::schema::{ErrorBody, ErrorDetail, Health, NodeInfo, PeerEntry, Peers, Ready};

/// Largest request body accepted (a document or patch), 4 MiB.
pub const MAX_BODY: usize = 4 << 20;

/// Largest page of a collection listing.
pub const MAX_PAGE: usize = 1000;

/// What every handler shares.
pub struct ApiState {
    pub node: Node,
    pub auth: Auth,
    /// Readiness also waits for a first admitted peer.
    pub ready_needs_peer: bool,
    /// Places for WebSocket clients ([`crate::ws::MAX_CLIENTS`]).
    pub ws_clients: Arc<Semaphore>,
    /// Cancelled when the service shuts down (WebSocket clients are closed).
    pub stop: CancellationToken,
    /// The service's own counters, served at `/metrics`.
    pub metrics: ServiceMetrics,
    /// Kubernetes discovery, when enabled (its figures go to `/metrics`).
    pub kubernetes: Option<Arc<peat_mesh_k8s::Discovery>>,
}

impl ApiState {
    pub fn new(node: Node, auth: Auth, ready_needs_peer: bool) -> ApiState {
        ApiState {
            node,
            auth,
            ready_needs_peer,
            ws_clients: Arc::new(Semaphore::new(crate::ws::MAX_CLIENTS)),
            stop: CancellationToken::new(),
            metrics: ServiceMetrics::default(),
            kubernetes: None,
        }
    }
}

/// The API's routes over `state`.
pub fn router(state: Arc<ApiState>) -> Router {
    let api = Router::new()
        .route("/node", get(node_info))
        .route("/peers", get(peers))
        .route("/ws", get(crate::ws::upgrade))
        .route("/blobs", get(blobs::list).post(blobs::upload))
        .route("/blobs/{hash}", get(blobs::download))
        .route("/blobs/{hash}/status", get(blobs::status))
        .route("/blobs/{hash}/fetch", axum::routing::post(blobs::fetch))
        .route("/transfers", get(blobs::transfers))
        .route("/collections", get(docs::collections))
        .route("/collections/{collection}/documents", get(docs::list))
        .route("/collections/{collection}/find", get(docs::find))
        .route(
            "/collections/{collection}/documents/{id}",
            get(docs::get_doc)
                .put(docs::put_doc)
                .patch(docs::patch_doc)
                .delete(docs::delete_doc),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    let metrics = Router::new()
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/ready", get(ready))
        .route("/api/v1/openapi.json", get(crate::openapi::serve))
        .route("/", get(crate::status_page::serve))
        .nest("/api/v1", api)
        .merge(metrics)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Adds CORS for `origins` (none: no CORS headers at all, the default).
/// Preflight requests are answered before auth; the browser still sends the
/// token with the real request.
pub fn with_cors(app: Router, origins: &[String]) -> Router {
    let origins: Vec<header::HeaderValue> = origins
        .iter()
        .filter_map(|o| header::HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return app;
    }
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::POST,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::RANGE])
        .expose_headers([header::CONTENT_RANGE, header::ACCEPT_RANGES, header::ETAG])
        .max_age(std::time::Duration::from_secs(600));
    app.layer(cors)
}

/// An error as JSON: `{"error": {"kind": ..., "message": ...}}`.
pub(crate) fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            kind: kind.to_string(),
            message: message.into(),
        },
    };
    (status, Json(body)).into_response()
}

/// The API's name for an error kind.
pub(crate) fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument => "invalid_argument",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Closed => "closed",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Io => "io",
        _ => "internal",
    }
}

pub(crate) fn node_error(e: peat_mesh::Error) -> Response {
    let status = match e.kind() {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Closed | ErrorKind::Timeout | ErrorKind::Io => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, kind_name(e.kind()), e.to_string())
}

/// A query string that does not parse, as a JSON error.
pub(crate) fn bad_query(e: QueryRejection) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_argument", e.body_text())
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The scope a request needs: reading for GET and HEAD, writing otherwise.
fn scope_of(method: &Method) -> Scope {
    if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else {
        Scope::Write
    }
}

async fn authorize(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    // A browser's WebSocket cannot set headers: it may offer the token as
    // the subprotocol `peat-bearer.<token>` (beside `peat.v1`).
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().strip_prefix(crate::ws::TOKEN_PROTOCOL))
        })
        .map(|t| format!("Bearer {t}"));
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .or(offered.as_deref());
    match s.auth.check(header, scope_of(req.method())) {
        Ok(()) => next.run(req).await,
        Err(Denied::Unauthenticated) => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
        Err(Denied::Forbidden) => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the token lacks the scope",
        ),
    }
}

/// Times every request for `peat_http_request_duration_seconds`, labelled
/// with the route's template (never the raw path).
async fn track(State(s): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let r = next.run(req).await;
    s.metrics
        .request(&method, &route, r.status().as_u16(), started.elapsed());
    r
}

async fn metrics(State(s): State<Arc<ApiState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&s.node, &s.metrics, s.kubernetes.as_deref()).await,
    )
        .into_response()
}

/// The process answers.
#[utoipa::path(get, path = "/api/v1/health", tag = "node", responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Ready once the store is open (the node is) and, when configured, a first
/// peer has been admitted.
#[utoipa::path(get, path = "/api/v1/ready", tag = "node",
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub(crate) async fn ready(State(s): State<Arc<ApiState>>) -> Response {
    let not = |reason: String| {
        let body = Ready {
            ready: false,
            reason: Some(reason),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    if let Err(e) = s.node.document_count() {
        return not(e.to_string());
    }
    if s.ready_needs_peer && s.node.connected_peers() == 0 {
        return not("no peer admitted yet".into());
    }
    Json(Ready {
        ready: true,
        reason: None,
    })
    .into_response()
}

/// This node: id, addresses, peers connected, documents stored.
#[utoipa::path(get, path = "/api/v1/node", tag = "node",
    responses((status = 200, body = NodeInfo), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn node_info(State(s): State<Arc<ApiState>>) -> Response {
    let n = &s.node;
    match n.document_count() {
        Ok(documents) => Json(NodeInfo {
            id: n.id().to_string(),
            addrs: n.addrs().iter().map(|a| a.to_string()).collect(),
            peer: n.peer_addr().to_string(),
            connected_peers: n.connected_peers() as u64,
            documents,
        })
        .into_response(),
        Err(e) => node_error(e),
    }
}

fn state_name(s: PeerState) -> &'static str {
    match s {
        PeerState::Connected => "connected",
        PeerState::Disconnected => "disconnected",
        PeerState::Discovered => "discovered",
        PeerState::OtherFormation => "other_formation",
    }
}

/// Every peer seen, with state and health.
#[utoipa::path(get, path = "/api/v1/peers", tag = "node",
    responses((status = 200, body = Peers), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn peers(State(s): State<Arc<ApiState>>) -> Json<Peers> {
    let peers = s
        .node
        .peers()
        .into_iter()
        .map(|p| PeerEntry {
            id: p.id.to_string(),
            state: state_name(p.state).to_string(),
            addr: p.addr.map(|a| a.to_string()),
            rtt_ms: p.rtt.map(|r| r.as_secs_f64() * 1000.0),
            outbound: p.outbound,
            sources: p.sources.iter().map(|x| x.to_string()).collect(),
            links: p.links.len() as u64,
        })
        .collect();
    Json(Peers { peers })
}

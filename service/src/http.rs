//! The HTTP API under `/api/v1` (JSON): health and readiness, node info,
//! peers, and documents (list with a cursor, get, put, merge-patch per
//! RFC 7386, delete). Every route but health and readiness needs a token
//! with the route's scope when tokens are configured ([`crate::auth`]).

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use peat_mesh::{ErrorKind, ListOptions, Node, PeerState};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Auth, Denied, Scope};

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
}

/// The API's routes over `state`.
pub fn router(state: Arc<ApiState>) -> Router {
    let api = Router::new()
        .route("/node", get(node_info))
        .route("/peers", get(peers))
        .route("/collections/{collection}/documents", get(list))
        .route(
            "/collections/{collection}/documents/{id}",
            get(get_doc)
                .put(put_doc)
                .patch(patch_doc)
                .delete(delete_doc),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/ready", get(ready))
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// An error as JSON: `{"error": {"kind": ..., "message": ...}}`.
fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"kind": kind, "message": message.into()}});
    (status, Json(body)).into_response()
}

fn node_error(e: peat_mesh::Error) -> Response {
    let (status, kind) = match e.kind() {
        ErrorKind::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_argument"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        ErrorKind::Closed => (StatusCode::SERVICE_UNAVAILABLE, "closed"),
        ErrorKind::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        ErrorKind::Io => (StatusCode::SERVICE_UNAVAILABLE, "io"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    error(status, kind, e.to_string())
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
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
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

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready once the store is open (the node is) and, when configured, a first
/// peer has been admitted.
async fn ready(State(s): State<Arc<ApiState>>) -> Response {
    if let Err(e) = s.node.document_count() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": e.to_string()})),
        )
            .into_response();
    }
    if s.ready_needs_peer && s.node.connected_peers() == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": "no peer admitted yet"})),
        )
            .into_response();
    }
    Json(json!({"ready": true})).into_response()
}

async fn node_info(State(s): State<Arc<ApiState>>) -> Response {
    let n = &s.node;
    match n.document_count() {
        Ok(docs) => Json(json!({
            "id": n.id().to_string(),
            "addrs": n.addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "peer": n.peer_addr().to_string(),
            "connected_peers": n.connected_peers(),
            "documents": docs,
        }))
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

async fn peers(State(s): State<Arc<ApiState>>) -> Json<Value> {
    let list: Vec<Value> = s
        .node
        .peers()
        .into_iter()
        .map(|p| {
            json!({
                "id": p.id.to_string(),
                "state": state_name(p.state),
                "addr": p.addr.map(|a| a.to_string()),
                "rtt_ms": p.rtt.map(|r| r.as_secs_f64() * 1000.0),
                "outbound": p.outbound,
                "sources": p.sources.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                "links": p.links.len(),
            })
        })
        .collect();
    Json(json!({ "peers": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<String>,
    prefix: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(s): State<Arc<ApiState>>,
    Path(collection): Path<String>,
    Query(p): Query<Page>,
) -> Response {
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            format!("limit must be 1 to {MAX_PAGE}"),
        );
    }
    let opts = ListOptions {
        prefix: p.prefix.unwrap_or_default(),
        after: p.after,
        limit,
    };
    match s.node.list(&collection, &opts) {
        Ok(page) => Json(json!({"ids": page.ids, "next": page.next})).into_response(),
        Err(e) => node_error(e),
    }
}

async fn get_doc(
    State(s): State<Arc<ApiState>>,
    Path((collection, id)): Path<(String, String)>,
) -> Response {
    match s.node.get_json(&collection, &id) {
        Ok(Some(text)) => (
            [(header::CONTENT_TYPE, "application/json")],
            text.to_string(),
        )
            .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no document {collection}/{id}"),
        ),
        Err(e) => node_error(e),
    }
}

/// The body as a JSON value, or why not.
fn body_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// A write whose body is a JSON document or patch: 204, or the error.
async fn write_doc<F, Fut>(body: &[u8], write: F) -> Response
where
    F: FnOnce(Value) -> Fut,
    Fut: std::future::Future<Output = peat_mesh::Result<()>>,
{
    let v = match body_json(body) {
        Ok(v) => v,
        Err(m) => return error(StatusCode::BAD_REQUEST, "invalid_argument", m),
    };
    match write(v).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => node_error(e),
    }
}

async fn put_doc(
    State(s): State<Arc<ApiState>>,
    Path((collection, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    write_doc(
        &body,
        |v| async move { s.node.put(&collection, &id, &v).await },
    )
    .await
}

/// An RFC 7386 merge patch.
async fn patch_doc(
    State(s): State<Arc<ApiState>>,
    Path((collection, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    write_doc(&body, |v| async move {
        s.node.merge_patch(&collection, &id, &v).await
    })
    .await
}

async fn delete_doc(
    State(s): State<Arc<ApiState>>,
    Path((collection, id)): Path<(String, String)>,
) -> Response {
    match s.node.delete(&collection, &id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no document {collection}/{id}"),
        ),
        Err(e) => node_error(e),
    }
}

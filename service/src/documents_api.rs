//! The document routes: list a collection (paged, with a cursor), find by
//! a top-level field, get, put, merge-patch (RFC 7386) and delete.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use peat_mesh::ListOptions;
use serde::Deserialize;
use serde_json::Value;

use crate::http::{bad_query, error, node_error, ApiState, MAX_PAGE};
use crate::schema::{CollectionEntry, Collections, Document, ErrorBody, Found, FoundDoc, IdPage};
use utoipa::IntoParams;

/// Paging of a collection listing.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// The `next` of the previous page.
    after: Option<String>,
    /// Only ids starting with this.
    prefix: Option<String>,
    /// Ids per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A page's size: 100 by default, else 1 to [`MAX_PAGE`].
fn page_limit(limit: Option<usize>) -> Option<usize> {
    Some(limit.unwrap_or(100)).filter(|l| (1..=MAX_PAGE).contains(l))
}

fn bad_limit() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        format!("limit must be 1 to {MAX_PAGE}"),
    )
}

/// Paging of the collections.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CollectionPage {
    /// The `next` of the previous page.
    after: Option<String>,
    /// Collections per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Collections with live documents, in name order, with their counts.
#[utoipa::path(get, path = "/api/v1/collections", tag = "documents",
    params(CollectionPage),
    responses((status = 200, body = Collections), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn collections(
    State(s): State<Arc<ApiState>>,
    p: Result<Query<CollectionPage>, QueryRejection>,
) -> Response {
    let Query(p) = match p {
        Ok(p) => p,
        Err(e) => return bad_query(e),
    };
    let Some(limit) = page_limit(p.limit) else {
        return bad_limit();
    };
    let node = s.node.clone();
    let after = p.after;
    // one extra: whether there is a next page
    let found =
        tokio::task::spawn_blocking(move || node.collections(after.as_deref(), limit + 1)).await;
    match found {
        Ok(Ok(mut all)) => {
            let next = (all.len() > limit).then(|| {
                all.truncate(limit);
                all.last().map(|c| c.name.clone())
            });
            Json(Collections {
                collections: all
                    .into_iter()
                    .map(|c| CollectionEntry {
                        name: c.name,
                        documents: c.documents,
                    })
                    .collect(),
                next: next.flatten(),
            })
            .into_response()
        }
        Ok(Err(e)) => node_error(e),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the listing failed",
        ),
    }
}

/// Ids of a collection's live documents, in order, a page at a time.
#[utoipa::path(get, path = "/api/v1/collections/{collection}/documents", tag = "documents",
    params(("collection" = String, Path, description = "The collection"), Page),
    responses((status = 200, body = IdPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(s): State<Arc<ApiState>>,
    Path(collection): Path<String>,
    p: Result<Query<Page>, QueryRejection>,
) -> Response {
    let Query(p) = match p {
        Ok(p) => p,
        Err(e) => return bad_query(e),
    };
    let Some(limit) = page_limit(p.limit) else {
        return bad_limit();
    };
    let opts = ListOptions {
        prefix: p.prefix.unwrap_or_default(),
        after: p.after,
        limit,
    };
    match s.node.list(&collection, &opts) {
        Ok(page) => Json(IdPage {
            ids: page.ids,
            next: page.next,
        })
        .into_response(),
        Err(e) => node_error(e),
    }
}

/// What to find.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct FindQuery {
    /// A top-level field.
    field: String,
    /// The value: JSON text (`3`, `true`, `"3"`), or else taken as a
    /// string (`red` finds `"red"`).
    value: String,
    /// Documents at most, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Live documents whose top-level `field` equals `value` (JSON), at most
/// `limit` (≤ [`MAX_PAGE`]); scans the collection.
#[utoipa::path(get, path = "/api/v1/collections/{collection}/find", tag = "documents",
    params(("collection" = String, Path, description = "The collection"), FindQuery),
    responses((status = 200, body = Found), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn find(
    State(s): State<Arc<ApiState>>,
    Path(collection): Path<String>,
    q: Result<Query<FindQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let Some(limit) = page_limit(q.limit) else {
        return bad_limit();
    };
    // JSON where it parses, else the text as a string.
    let value = serde_json::from_str(&q.value).unwrap_or_else(|_| Value::String(q.value.clone()));
    let node = s.node.clone();
    let found =
        tokio::task::spawn_blocking(move || node.find(&collection, &q.field, &value, limit)).await;
    match found {
        Ok(Ok(docs)) => {
            let documents = docs
                .into_iter()
                .map(|(id, value)| FoundDoc { id, value })
                .collect();
            Json(Found { documents }).into_response()
        }
        Ok(Err(e)) => node_error(e),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the search failed",
        ),
    }
}

/// A document, as JSON.
#[utoipa::path(get, path = "/api/v1/collections/{collection}/documents/{id}", tag = "documents",
    params(("collection" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Document), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_doc(
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

/// A body that could not be read (too large, say), as a JSON error.
fn bad_body(e: BytesRejection) -> Response {
    let kind = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "invalid_argument"
    };
    error(e.status(), kind, e.body_text())
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

/// Replaces a document (a JSON object), durably.
#[utoipa::path(put, path = "/api/v1/collections/{collection}/documents/{id}", tag = "documents",
    params(("collection" = String, Path), ("id" = String, Path)),
    request_body = Document,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_doc(
    State(s): State<Arc<ApiState>>,
    Path((collection, id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return bad_body(e),
    };
    write_doc(
        &body,
        |v| async move { s.node.put(&collection, &id, &v).await },
    )
    .await
}

/// Applies an RFC 7386 merge patch (creating the document if needed).
#[utoipa::path(patch, path = "/api/v1/collections/{collection}/documents/{id}", tag = "documents",
    params(("collection" = String, Path), ("id" = String, Path)),
    request_body(content = Document, content_type = "application/merge-patch+json"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn patch_doc(
    State(s): State<Arc<ApiState>>,
    Path((collection, id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return bad_body(e),
    };
    write_doc(&body, |v| async move {
        s.node.merge_patch(&collection, &id, &v).await
    })
    .await
}

/// Deletes a document.
#[utoipa::path(delete, path = "/api/v1/collections/{collection}/documents/{id}", tag = "documents",
    params(("collection" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete_doc(
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

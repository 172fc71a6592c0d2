//! The blob routes: upload (streamed into the store, never held whole in
//! memory), download (streamed, with a single HTTP byte range), status,
//! list, and fetch from the mesh (its progress is the status's `present`).
//!
//! **Bounds.** An upload is read in pieces of the request's frames and
//! handed to the store through a four-piece queue; a download is read from
//! the store [`PIECE`] bytes at a time as the client takes it. Neither
//! depends on the blob's size.

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use peat_mesh::blobs::{BlobHash, BlobInfo, BlobStatus, FetchOptions};
use tokio_util::io::StreamReader;
use utoipa::IntoParams;

use crate::http::{error, node_error, ApiState};
use crate::schema::{BlobEntry, BlobList, BlobState, ErrorBody, TransferEntry, Transfers};

/// Bytes read from the store per piece of a download.
pub const PIECE: u64 = 1 << 20;

/// A blob named in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // describes the path for OpenAPI; handlers take the text
pub(crate) struct HashPath {
    /// BLAKE3 hash of the blob, 64 hex digits.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    hash: String,
}

fn entry(i: &BlobInfo) -> BlobEntry {
    BlobEntry {
        hash: i.hash.to_hex(),
        size: i.size,
        sha256: i.sha256_hex(),
    }
}

fn bad_hash(e: peat_mesh::Error) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        format!("not a blob hash: {e}"),
    )
}

/// Adds the request body as a blob (any size; streamed to the store).
#[utoipa::path(post, path = "/api/v1/blobs", tag = "blobs",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The blob's bytes (not empty)"),
    responses((status = 201, body = BlobEntry), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn upload(State(s): State<Arc<ApiState>>, body: Body) -> Response {
    if axum::body::HttpBody::size_hint(&body).upper() == Some(0) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "the body is empty: nothing to store",
        );
    }
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    match s.node.blobs().add_reader(StreamReader::new(stream)).await {
        Ok(info) => (StatusCode::CREATED, Json(entry(&info))).into_response(),
        Err(e) => node_error(e),
    }
}

/// Every complete blob here.
#[utoipa::path(get, path = "/api/v1/blobs", tag = "blobs",
    responses((status = 200, body = BlobList), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(State(s): State<Arc<ApiState>>) -> Response {
    match s.node.blobs().list() {
        Ok(all) => Json(BlobList {
            blobs: all.iter().map(entry).collect(),
        })
        .into_response(),
        Err(e) => node_error(e),
    }
}

/// The blob fetches running now, with their progress.
#[utoipa::path(get, path = "/api/v1/transfers", tag = "blobs",
    responses((status = 200, body = Transfers), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn transfers(State(s): State<Arc<ApiState>>) -> Json<Transfers> {
    let transfers = s
        .node
        .blobs()
        .transfers()
        .into_iter()
        .map(|t| {
            let p = t.progress();
            TransferEntry {
                hash: t.hash().to_hex(),
                done: p.done,
                total: p.total,
                rate: p.rate,
            }
        })
        .collect();
    Json(Transfers { transfers })
}

/// How much of a blob is here (`present` grows while a fetch runs).
#[utoipa::path(get, path = "/api/v1/blobs/{hash}/status", tag = "blobs",
    params(HashPath),
    responses((status = 200, body = BlobState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn status(State(s): State<Arc<ApiState>>, Path(hash): Path<String>) -> Response {
    let hash = match BlobHash::from_str(&hash) {
        Ok(h) => h,
        Err(e) => return bad_hash(e),
    };
    match s.node.blobs().status(hash) {
        Ok(st) => Json(state_of(hash, st)).into_response(),
        Err(e) => node_error(e),
    }
}

fn state_of(hash: BlobHash, st: BlobStatus) -> BlobState {
    let (state, size, present) = match st {
        BlobStatus::Missing => ("missing", None, 0),
        BlobStatus::Partial { size, present } => ("partial", Some(size), present),
        BlobStatus::Complete(i) => ("complete", Some(i.size), i.size),
    };
    BlobState {
        hash: hash.to_hex(),
        state: state.into(),
        size,
        present,
    }
}

/// Starts fetching a blob from the mesh (every connected peer that has
/// it); returns at once. Watch `status` for progress.
#[utoipa::path(post, path = "/api/v1/blobs/{hash}/fetch", tag = "blobs",
    params(HashPath),
    responses((status = 202, body = BlobState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn fetch(State(s): State<Arc<ApiState>>, Path(hash): Path<String>) -> Response {
    let hash = match BlobHash::from_str(&hash) {
        Ok(h) => h,
        Err(e) => return bad_hash(e),
    };
    let blobs = s.node.blobs();
    let transfer = blobs.fetch(hash, FetchOptions::default());
    // The transfer runs on the node; its outcome is logged, its progress
    // is the status.
    tokio::spawn(async move {
        if let Err(e) = transfer.wait().await {
            tracing::info!(blob = %hash.to_hex(), error = %e, "fetch over HTTP ended without the blob");
        }
    });
    match blobs.status(hash) {
        Ok(st) => (StatusCode::ACCEPTED, Json(state_of(hash, st))).into_response(),
        Err(e) => node_error(e),
    }
}

/// What a request's Range header asks of a blob (RFC 9110 §14).
#[derive(Debug, PartialEq)]
enum Wanted {
    /// The whole blob: no Range header, or one this API ignores as the RFC
    /// allows (another unit, bad syntax, or several ranges).
    Whole,
    /// One range, first and last byte inclusive.
    Range(u64, u64),
    /// A well-formed range that lies beyond the blob: 416.
    Unsatisfiable,
}

fn wanted(headers: &HeaderMap, size: u64) -> Wanted {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |t: &str| -> Option<u64> {
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    if a.is_empty() {
        // the last `n` bytes
        return match num(b) {
            None => Wanted::Whole,
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if size == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Range(size.saturating_sub(n), size - 1),
        };
    }
    let Some(first) = num(a) else {
        return Wanted::Whole;
    };
    let last = if b.is_empty() {
        u64::MAX
    } else {
        match num(b) {
            Some(l) if l >= first => l,
            _ => return Wanted::Whole,
        }
    };
    if first >= size {
        return Wanted::Unsatisfiable;
    }
    Wanted::Range(first, last.min(size - 1))
}

/// A complete blob's bytes, or one byte range of them (206).
#[utoipa::path(get, path = "/api/v1/blobs/{hash}", tag = "blobs",
    params(HashPath,
           ("Range" = Option<String>, Header, description = "One range: `bytes=first-last`, `bytes=first-` or `bytes=-suffix`")),
    responses((status = 200, body = Vec<u8>, content_type = "application/octet-stream"),
              (status = 206, body = Vec<u8>, content_type = "application/octet-stream"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 416, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn download(
    State(s): State<Arc<ApiState>>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Response {
    let hash = match BlobHash::from_str(&hash) {
        Ok(h) => h,
        Err(e) => return bad_hash(e),
    };
    let blobs = s.node.blobs();
    let info = match blobs.info(hash) {
        Ok(Some(i)) => i,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no complete blob with this hash here",
            )
        }
        Err(e) => return node_error(e),
    };
    let (status, first, last) = match wanted(&headers, info.size) {
        Wanted::Whole => (StatusCode::OK, 0, info.size.saturating_sub(1)),
        Wanted::Range(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Wanted::Unsatisfiable => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the blob has {} bytes", info.size),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", info.size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let len = if info.size == 0 { 0 } else { last - first + 1 };
    // Read piece by piece as the client takes it.
    let pieces = futures_util::stream::try_unfold(first, move |at| {
        let blobs = blobs.clone();
        async move {
            if len == 0 || at > last {
                return Ok(None);
            }
            let n = PIECE.min(last + 1 - at);
            let bytes = blobs
                .read_range(hash, at, n)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if bytes.is_empty() {
                return Err(std::io::Error::other("the blob ended early"));
            }
            let next = at + bytes.len() as u64;
            Ok(Some((axum::body::Bytes::from(bytes), next)))
        }
    });
    let mut r = Response::new(Body::from_stream(pieces));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{}", info.size)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", info.hash.to_hex())) {
        h.insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Wanted {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        wanted(&h, size)
    }

    #[test]
    fn byte_ranges() {
        use Wanted::*;
        assert_eq!(wanted(&HeaderMap::new(), 10), Whole);
        assert_eq!(range("bytes=0-3", 10), Range(0, 3));
        assert_eq!(range("bytes=4-", 10), Range(4, 9));
        assert_eq!(range("bytes=-3", 10), Range(7, 9));
        assert_eq!(range("bytes=-30", 10), Range(0, 9));
        assert_eq!(range("bytes=8-100", 10), Range(8, 9));
        for ignored in [
            "bytes=5-4",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=x-1",
            "bytes=1",
            "null",
            "bytes=+1-2",
            "bytes=-",
        ] {
            assert_eq!(range(ignored, 10), Whole, "{ignored}");
        }
        for beyond in ["bytes=10-", "bytes=10-20", "bytes=-0"] {
            assert_eq!(range(beyond, 10), Unsatisfiable, "{beyond}");
        }
        assert_eq!(range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(range("bytes=-1", 0), Unsatisfiable);
    }
}

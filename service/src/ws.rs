//! The WebSocket API at `/api/v1/ws`: a client subscribes to collections,
//! single documents and peer events, and gets JSON messages (text frames).
//! The schema is in `docs/service-api.md`; in short:
//!
//! Client → node:
//! - `{"op":"subscribe","sub":"s1","collection":"tracks","id":null,"snapshot":true}`
//! - `{"op":"subscribe_peers","sub":"p"}`
//! - `{"op":"fetch_blob","sub":"f1","hash":"<blake3 hex>"}`: fetch a blob
//!   from the mesh and follow its progress
//! - `{"op":"unsubscribe","sub":"s1"}` (for a fetch: stop following it)
//!
//! Node → client:
//! - `{"type":"subscribed","sub":"s1"}` / `{"type":"unsubscribed","sub":"s1"}`
//! - `{"type":"doc","sub":"s1","collection":..,"id":..,"value":{..}|null,"origin":"snapshot"|"local"|"peer","peer":..}`
//! - `{"type":"peer","sub":"p","event":"connected",..}` (the SDK's peer events)
//! - `{"type":"blob_progress","sub":"f1","hash":..,"done":N,"total":N,"rate":bytes_per_s}`
//!   (coalesced: at most the latest is queued), then one
//!   `{"type":"blob_done","sub":"f1","hash":..,"size":N}` or
//!   `{"type":"blob_failed","sub":"f1","hash":..,"kind":..,"message":..}`
//! - `{"type":"lagged","sub":"s1","missed":N}`: N events of that subscription
//!   were dropped because the client read too slowly. Documents' latest
//!   states can be re-read over HTTP (or by subscribing again with a snapshot).
//! - `{"type":"error","sub":..,"kind":..,"message":..}`
//!
//! **Bounds.** At most [`MAX_CLIENTS`] WebSocket clients at once (more are
//! refused with 503 before the upgrade), [`MAX_SUBSCRIPTIONS`] subscriptions
//! per client, client messages of at most [`MAX_MESSAGE`] bytes, and at most
//! [`OUT_QUEUE`] messages queued for a client. A client that reads slowly
//! fills its queue; its subscriptions then wait, the node's own bounded
//! subscription queues drop the overflow and count it, and the client is
//! told with `lagged`. Nothing the node does ever waits on a client.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use peat_mesh::blobs::{BlobHash, FetchOptions, Transfer};
use peat_mesh::{DocEvent, Event, Origin, PeerEvent, Subscription};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::AbortHandle;

use crate::http::{error, ApiState};

/// WebSocket clients served at once.
pub const MAX_CLIENTS: usize = 256;
/// Subscriptions one client may hold.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// Largest client message, in bytes.
pub const MAX_MESSAGE: usize = 64 << 10;
/// Messages queued for one client before its subscriptions wait (and lag).
pub const OUT_QUEUE: usize = 256;
/// The subprotocol a client may offer (and the node selects).
pub const PROTOCOL: &str = "peat.v1";
/// The prefix of a subprotocol carrying a bearer token, for browsers
/// (which cannot set an Authorization header on a WebSocket).
pub const TOKEN_PROTOCOL: &str = "peat-bearer.";
/// Messages written to a client's socket before one flush.
const WRITE_BATCH: u64 = 64;
/// Longest subscription name a client may choose.
const MAX_SUB_NAME: usize = 128;

/// A client's request.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Subscribe {
        sub: String,
        collection: String,
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        snapshot: bool,
    },
    SubscribePeers {
        sub: String,
    },
    FetchBlob {
        sub: String,
        hash: String,
    },
    Unsubscribe {
        sub: String,
    },
}

/// Upgrades to a WebSocket, or refuses with 503 when [`MAX_CLIENTS`] are served.
pub async fn upgrade(State(s): State<Arc<ApiState>>, ws: WebSocketUpgrade) -> Response {
    let Ok(permit) = s.ws_clients.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("at most {MAX_CLIENTS} WebSocket clients"),
        );
    };
    ws.protocols([PROTOCOL])
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(s, socket, permit))
        .into_response()
}

/// One client's subscriptions: their forwarding tasks, aborted (and so
/// unsubscribed) when the client unsubscribes or goes.
#[derive(Default)]
struct Subs(HashMap<String, AbortHandle>);

impl Drop for Subs {
    fn drop(&mut self) {
        for (_, task) in self.0.drain() {
            task.abort();
        }
    }
}

/// Counts a client while it is connected.
struct Connected(Arc<ApiState>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.metrics.ws_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(s: Arc<ApiState>, mut socket: WebSocket, _permit: OwnedSemaphorePermit) {
    s.metrics.ws_clients.fetch_add(1, Ordering::Relaxed);
    let _connected = Connected(s.clone());
    let (out, mut queued) = mpsc::channel::<String>(OUT_QUEUE);
    let mut subs = Subs::default();
    let stop = s.stop.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let frame = CloseFrame { code: 1001, reason: "the node is shutting down".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
            msg = queued.recv() => {
                // `out` is held here, so the queue never closes.
                let Some(msg) = msg else { return };
                // Write what is queued (up to a batch) and flush once: one
                // write to the socket for a burst, not one per message.
                let mut batch = 1u64;
                if socket.feed(Message::Text(msg.into())).await.is_err() {
                    return;
                }
                while batch < WRITE_BATCH {
                    let Ok(more) = queued.try_recv() else { break };
                    if socket.feed(Message::Text(more.into())).await.is_err() {
                        return;
                    }
                    batch += 1;
                }
                if socket.flush().await.is_err() {
                    return;
                }
                s.metrics.ws_messages.fetch_add(batch, Ordering::Relaxed);
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = out.send(err_msg(None, "invalid_argument", "messages are JSON text").to_string()).await;
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => continue, // ping, pong (answered by the library)
                };
                let reply = handle(&s, &mut subs, &out, text.as_str());
                // A reply waits for room like any message: requests are
                // answered in order.
                if out.send(reply.to_string()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Carries out one request; returns the reply.
fn handle(s: &Arc<ApiState>, subs: &mut Subs, out: &mpsc::Sender<String>, text: &str) -> Value {
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => return err_msg(None, "invalid_argument", format!("bad request: {e}")),
    };
    let sub = match &req {
        Request::Subscribe { sub, .. }
        | Request::SubscribePeers { sub }
        | Request::FetchBlob { sub, .. }
        | Request::Unsubscribe { sub } => sub.clone(),
    };
    if sub.is_empty() || sub.len() > MAX_SUB_NAME {
        return err_msg(
            None,
            "invalid_argument",
            format!("sub must be 1 to {MAX_SUB_NAME} bytes"),
        );
    }
    if let Request::Unsubscribe { .. } = req {
        return match subs.0.remove(&sub) {
            Some(task) => {
                task.abort();
                json!({"type": "unsubscribed", "sub": sub})
            }
            None => err_msg(Some(&sub), "not_found", "no such subscription"),
        };
    }
    if subs.0.contains_key(&sub) {
        return err_msg(Some(&sub), "invalid_argument", "sub is in use");
    }
    if subs.0.len() >= MAX_SUBSCRIPTIONS {
        return err_msg(
            Some(&sub),
            "limit",
            format!("at most {MAX_SUBSCRIPTIONS} subscriptions per client"),
        );
    }
    let task = match req {
        Request::Subscribe {
            collection,
            id,
            snapshot,
            ..
        } => match s.node.subscribe(&collection, id.as_deref(), snapshot) {
            Ok(events) => forward(s.clone(), events, out.clone(), sub.clone(), doc_msg),
            Err(e) => return err_msg(Some(&sub), crate::http::kind_name(e.kind()), e.to_string()),
        },
        Request::SubscribePeers { .. } => forward(
            s.clone(),
            s.node.subscribe_peers(),
            out.clone(),
            sub.clone(),
            peer_msg,
        ),
        Request::FetchBlob { hash, .. } => match BlobHash::from_str(&hash) {
            Ok(hash) => follow_fetch(
                s.node.blobs().fetch(hash, FetchOptions::default()),
                out.clone(),
                sub.clone(),
            ),
            Err(e) => {
                return err_msg(
                    Some(&sub),
                    "invalid_argument",
                    format!("not a blob hash: {e}"),
                )
            }
        },
        Request::Unsubscribe { .. } => unreachable!("answered above"),
    };
    subs.0.insert(sub.clone(), task);
    json!({"type": "subscribed", "sub": sub})
}

/// Forwards a subscription's events to the client's queue, waiting while
/// the queue is full (so the node's bounded queue absorbs and counts the
/// overflow), until the subscription ends or the task is aborted.
fn forward<T: Clone + Send + Sync + 'static>(
    s: Arc<ApiState>,
    events: Subscription<T>,
    out: mpsc::Sender<String>,
    sub: String,
    render: fn(&str, T) -> String,
) -> AbortHandle {
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            let msg = match ev {
                Event::Item(item) => render(&sub, item),
                Event::Lagged(missed) => {
                    s.metrics.ws_lagged.fetch_add(1, Ordering::Relaxed);
                    s.metrics.ws_dropped.fetch_add(missed, Ordering::Relaxed);
                    json!({"type": "lagged", "sub": sub, "missed": missed}).to_string()
                }
            };
            if out.send(msg).await.is_err() {
                return;
            }
        }
        let _ = out
            .send(err_msg(Some(&sub), "closed", "the subscription ended").to_string())
            .await;
    })
    .abort_handle()
}

/// Sends a fetch's progress as it changes (a watch: only the latest is
/// kept while the client is busy), then how it ended. Aborting this task
/// stops following; the fetch itself goes on.
fn follow_fetch(t: Transfer, out: mpsc::Sender<String>, sub: String) -> AbortHandle {
    tokio::spawn(async move {
        let hash = t.hash().to_hex();
        let mut progress = t.watch();
        loop {
            let p = progress.borrow_and_update().clone();
            if p.finished {
                break;
            }
            let msg = json!({"type": "blob_progress", "sub": sub, "hash": hash,
                "done": p.done, "total": p.total, "rate": p.rate});
            if out.send(msg.to_string()).await.is_err() {
                return;
            }
            if progress.changed().await.is_err() {
                break;
            }
        }
        let msg = match t.wait().await {
            Ok(info) => json!({"type": "blob_done", "sub": sub, "hash": hash, "size": info.size}),
            Err(e) => json!({"type": "blob_failed", "sub": sub, "hash": hash,
                "kind": crate::http::kind_name(e.kind()), "message": e.to_string()}),
        };
        let _ = out.send(msg.to_string()).await;
    })
    .abort_handle()
}

fn err_msg(sub: Option<&str>, kind: &str, message: impl Into<String>) -> Value {
    json!({"type": "error", "sub": sub, "kind": kind, "message": message.into()})
}

/// A `doc` message, written straight to text (the hot path of a fan-out:
/// no intermediate JSON tree).
#[derive(Serialize)]
struct DocMsg<'a> {
    r#type: &'static str,
    sub: &'a str,
    collection: &'a str,
    id: &'a str,
    value: &'a Option<Value>,
    origin: &'static str,
    peer: Option<String>,
}

fn doc_msg(sub: &str, ev: DocEvent) -> String {
    let (origin, peer) = match ev.origin {
        Origin::Snapshot => ("snapshot", None),
        Origin::Local => ("local", None),
        Origin::Peer(p) => ("peer", Some(p.to_string())),
    };
    let m = DocMsg {
        r#type: "doc",
        sub,
        collection: ev.key.collection(),
        id: ev.key.id(),
        value: &ev.value,
        origin,
        peer,
    };
    serde_json::to_string(&m).unwrap_or_else(|e| {
        err_msg(
            Some(sub),
            "internal",
            format!("cannot render a document: {e}"),
        )
        .to_string()
    })
}

fn peer_msg(sub: &str, ev: PeerEvent) -> String {
    let mut m = match ev {
        PeerEvent::Connected { peer } => json!({"event": "connected", "peer": peer.to_string()}),
        PeerEvent::Disconnected { peer, reason } => {
            json!({"event": "disconnected", "peer": peer.to_string(), "reason": reason})
        }
        PeerEvent::Revoked { peer } => json!({"event": "revoked", "peer": peer.to_string()}),
        PeerEvent::AdmissionRefused { peer, reason } => {
            json!({"event": "admission_refused", "peer": peer.to_string(), "reason": reason})
        }
        PeerEvent::Discovered { peer, source } => {
            json!({"event": "discovered", "peer": peer.to_string(), "source": source.to_string()})
        }
        PeerEvent::Lost { peer, source } => {
            json!({"event": "lost", "peer": peer.to_string(), "source": source.to_string()})
        }
        PeerEvent::SeenOtherFormation { peer } => {
            json!({"event": "seen_other_formation", "peer": peer.to_string()})
        }
        PeerEvent::StorageFailed { reason } => json!({"event": "storage_failed", "reason": reason}),
        PeerEvent::StorageEvicted {
            documents,
            stored_bytes,
        } => {
            json!({"event": "storage_evicted", "documents": documents, "stored_bytes": stored_bytes})
        }
        PeerEvent::LinkChanged {
            peer,
            from,
            to,
            level,
        } => {
            json!({"event": "link_changed", "peer": peer.to_string(), "from": from, "to": to, "level": level})
        }
    };
    m["type"] = json!("peer");
    m["sub"] = json!(sub);
    m.to_string()
}

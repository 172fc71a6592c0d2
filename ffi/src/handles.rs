//! Opaque handles: ids (never reused, 0 invalid) looked up in one registry. A
//! zero, stale, closed or double-closed handle is an error, never undefined
//! behaviour, and ids are plain integers, safe to hold in any language.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use peat_mesh::{DocEvent, Node, PeerEvent, Subscription};

use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::queue::Queue;
use crate::records::{DocEventRecord, PeerEventRecord};

/// Everything a handle can name.
#[derive(Clone)]
pub(crate) enum Object {
    Node(Node),
    DocSub(Arc<Subscription<DocEvent>>),
    PeerSub(Arc<Subscription<PeerEvent>>),
    DocQueue(Arc<Queue<DocEventRecord>>),
    PeerQueue(Arc<Queue<PeerEventRecord>>),
    Push(Arc<crate::dispatch::Push>),
    Cancel(tokio_util::sync::CancellationToken),
    Transfer(peat_mesh::blobs::Transfer),
    TopicSub(Arc<peat_mesh::TopicSubscription>),
    BeaconSub(Arc<Subscription<peat_mesh::BeaconEvent>>),
}

impl Object {
    fn type_name(&self) -> &'static str {
        match self {
            Object::Node(_) => "node",
            Object::DocSub(_) => "document subscription",
            Object::PeerSub(_) => "peer subscription",
            Object::DocQueue(_) => "queued document subscription",
            Object::PeerQueue(_) => "queued peer subscription",
            Object::Push(_) => "callback subscription",
            Object::Cancel(_) => "cancel token",
            Object::Transfer(_) => "blob transfer",
            Object::TopicSub(_) => "topic subscription",
            Object::BeaconSub(_) => "beacon subscription",
        }
    }
}

fn registry() -> &'static Mutex<HashMap<u64, Object>> {
    static R: OnceLock<Mutex<HashMap<u64, Object>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<u64, Object>> {
    registry().lock().unwrap_or_else(|p| p.into_inner())
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// Registers an object and returns its new handle.
pub(crate) fn insert(obj: Object) -> u64 {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    lock().insert(id, obj);
    id
}

fn invalid(id: u64, what: &str) -> SdkError {
    if id == 0 {
        SdkError::new(ErrorCode::InvalidHandle, format!("null {what} handle"))
    } else {
        SdkError::new(
            ErrorCode::InvalidHandle,
            format!("{what} handle {id} is closed or unknown"),
        )
    }
}

/// Looks up a node.
pub(crate) fn node(id: u64) -> SdkResult<Node> {
    match lock().get(&id) {
        Some(Object::Node(n)) => Ok(n.clone()),
        Some(other) => Err(SdkError::new(
            ErrorCode::InvalidHandle,
            format!("handle {id} is a {}, not a node", other.type_name()),
        )),
        None => Err(invalid(id, "node")),
    }
}

/// Looks up a cancel token; handle 0 means "no token".
pub(crate) fn cancel_token(id: u64) -> SdkResult<Option<tokio_util::sync::CancellationToken>> {
    if id == 0 {
        return Ok(None);
    }
    match lock().get(&id) {
        Some(Object::Cancel(t)) => Ok(Some(t.clone())),
        Some(other) => Err(SdkError::new(
            ErrorCode::InvalidHandle,
            format!("handle {id} is a {}, not a cancel token", other.type_name()),
        )),
        None => Err(invalid(id, "cancel token")),
    }
}

/// Looks up a blob transfer.
pub(crate) fn transfer(id: u64) -> SdkResult<peat_mesh::blobs::Transfer> {
    match lock().get(&id) {
        Some(Object::Transfer(t)) => Ok(t.clone()),
        Some(other) => Err(SdkError::new(
            ErrorCode::InvalidHandle,
            format!(
                "handle {id} is a {}, not a blob transfer",
                other.type_name()
            ),
        )),
        None => Err(invalid(id, "transfer")),
    }
}

/// Looks up a subscription read by polling (documents or peers, queued or
/// not); `want` names the kind the caller expects, for the error.
pub(crate) fn polled(id: u64, want: &str) -> SdkResult<Object> {
    match lock().get(&id) {
        Some(
            o @ (Object::DocSub(_)
            | Object::PeerSub(_)
            | Object::DocQueue(_)
            | Object::PeerQueue(_)),
        ) => Ok(o.clone()),
        Some(other) => Err(SdkError::new(
            ErrorCode::InvalidHandle,
            format!("handle {id} is a {}, not a {want}", other.type_name()),
        )),
        None => Err(invalid(id, "subscription")),
    }
}

/// Looks up a topic subscription.
pub(crate) fn topic_sub(id: u64) -> SdkResult<Arc<peat_mesh::TopicSubscription>> {
    match lock().get(&id) {
        Some(Object::TopicSub(s)) => Ok(s.clone()),
        Some(other) => Err(SdkError::new(
            ErrorCode::InvalidHandle,
            format!(
                "handle {id} is a {}, not a topic subscription",
                other.type_name()
            ),
        )),
        None => Err(invalid(id, "topic subscription")),
    }
}

/// Looks up a beacon subscription.
pub(crate) fn beacon_sub(id: u64) -> SdkResult<Arc<Subscription<peat_mesh::BeaconEvent>>> {
    match lock().get(&id) {
        Some(Object::BeaconSub(s)) => Ok(s.clone()),
        Some(other) => Err(SdkError::new(
            ErrorCode::InvalidHandle,
            format!(
                "handle {id} is a {}, not a beacon subscription",
                other.type_name()
            ),
        )),
        None => Err(invalid(id, "beacon subscription")),
    }
}

/// Removes a handle, returning what it named.
pub(crate) fn remove(id: u64) -> SdkResult<Object> {
    lock().remove(&id).ok_or_else(|| invalid(id, "object"))
}

/// Removes a subscription handle (of either kind) and ends the subscription.
/// Any other kind of handle is left untouched and reported.
pub(crate) fn remove_subscription(id: u64) -> SdkResult<()> {
    let mut reg = lock();
    match reg.get(&id) {
        Some(
            Object::DocSub(_)
            | Object::PeerSub(_)
            | Object::DocQueue(_)
            | Object::PeerQueue(_)
            | Object::Push(_)
            | Object::TopicSub(_)
            | Object::BeaconSub(_),
        ) => {}
        Some(other) => {
            return Err(SdkError::new(
                ErrorCode::InvalidHandle,
                format!("handle {id} is a {}, not a subscription", other.type_name()),
            ))
        }
        None => return Err(invalid(id, "subscription")),
    }
    let obj = reg.remove(&id);
    drop(reg);
    match obj {
        Some(Object::DocSub(s)) => s.close(),
        Some(Object::PeerSub(s)) => s.close(),
        Some(Object::DocQueue(q)) => q.close(),
        Some(Object::PeerQueue(q)) => q.close(),
        Some(Object::Push(p)) => p.stop(),
        Some(Object::TopicSub(s)) => s.close(),
        Some(Object::BeaconSub(s)) => s.close(),
        _ => {}
    }
    Ok(())
}

/// Handles of every open node, in the order they were opened.
pub(crate) fn nodes() -> Vec<u64> {
    let mut ids: Vec<u64> = lock()
        .iter()
        .filter(|(_, o)| matches!(o, Object::Node(_)))
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Number of live handles (for leak checks in every language's tests).
pub fn live_handles() -> usize {
    lock().len()
}

/// Frees every handle (at shutdown): subscriptions end, push delivery stops
/// (no callback starts after this returns), and the open nodes are handed back,
/// oldest first, for the caller to close.
pub(crate) fn clear() -> Vec<Node> {
    let mut all: Vec<(u64, Object)> = lock().drain().collect();
    all.sort_unstable_by_key(|(id, _)| *id);
    let mut nodes = Vec::new();
    for (_, o) in all {
        match o {
            Object::DocSub(s) => s.close(),
            Object::PeerSub(s) => s.close(),
            Object::DocQueue(q) => q.close(),
            Object::PeerQueue(q) => q.close(),
            Object::Push(p) => p.stop(),
            Object::TopicSub(s) => s.close(),
            Object::BeaconSub(s) => s.close(),
            Object::Node(n) => nodes.push(n),
            Object::Cancel(_) | Object::Transfer(_) => {}
        }
    }
    nodes
}

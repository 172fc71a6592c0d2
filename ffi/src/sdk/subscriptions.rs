//! Subscriptions to documents and peer events: polled (`next_*_event`),
//! pushed to a sink on the dispatcher thread (see [`crate::dispatch`]), or
//! queued (polled from a queue the SDK bounds, with a readiness signal; see
//! [`crate::queue`]).

use std::sync::Arc;

use super::args::{check_doc, ms};
use crate::dispatch::{EventSink, Push};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::handles::{self, Object};
use crate::queue::Queue;
use crate::records::{DocEventRecord, PeerEventRecord, SubEvent};
use crate::runtime;

/// Subscribes to a collection (`id = None`) or a document; returns its handle.
pub fn subscribe_docs(
    node: u64,
    collection: &str,
    id: Option<&str>,
    snapshot: bool,
) -> SdkResult<u64> {
    let n = handles::node(node)?;
    check_doc(collection, id)?;
    let sub = n.subscribe(collection, id, snapshot)?;
    Ok(handles::insert(Object::DocSub(Arc::new(sub))))
}

/// Subscribes to peer events; returns its handle.
pub fn subscribe_peers(node: u64) -> SdkResult<u64> {
    let n = handles::node(node)?;
    Ok(handles::insert(Object::PeerSub(Arc::new(
        n.subscribe_peers(),
    ))))
}

/// The next event of a polled subscription of either kind (documents or
/// peers, queued or not) as [`SubEvent::Doc`] or [`SubEvent::Peer`], waiting
/// up to `timeout_ms`. `Ok(None)` on timeout; `Err(Closed)` once the
/// subscription (or its node) is closed and drained.
pub fn next_event(sub: u64, timeout_ms: u64) -> SdkResult<Option<SubEvent>> {
    next_of(handles::polled(sub, "subscription")?, timeout_ms)
}

/// The next document event; see [`next_event`].
pub fn next_doc_event(sub: u64, timeout_ms: u64) -> SdkResult<Option<DocEventRecord>> {
    match handles::polled(sub, "document subscription")? {
        o @ (Object::DocSub(_) | Object::DocQueue(_)) => match next_of(o, timeout_ms)? {
            Some(SubEvent::Doc(d)) => Ok(Some(d)),
            _ => Ok(None),
        },
        other => Err(not_a(sub, &other, "document subscription")),
    }
}

/// The next peer event; see [`next_event`].
pub fn next_peer_event(sub: u64, timeout_ms: u64) -> SdkResult<Option<PeerEventRecord>> {
    match handles::polled(sub, "peer subscription")? {
        o @ (Object::PeerSub(_) | Object::PeerQueue(_)) => match next_of(o, timeout_ms)? {
            Some(SubEvent::Peer(p)) => Ok(Some(p)),
            _ => Ok(None),
        },
        other => Err(not_a(sub, &other, "peer subscription")),
    }
}

fn not_a(sub: u64, o: &Object, want: &str) -> SdkError {
    let kind = match o {
        Object::DocSub(_) | Object::DocQueue(_) => "document subscription",
        _ => "peer subscription",
    };
    SdkError::new(
        ErrorCode::InvalidHandle,
        format!("handle {sub} is a {kind}, not a {want}"),
    )
}

fn next_of(o: Object, timeout_ms: u64) -> SdkResult<Option<SubEvent>> {
    let t = ms(timeout_ms);
    Ok(match o {
        Object::DocSub(s) => runtime::block_on(async move { s.next_timeout(t).await })??
            .map(|e| SubEvent::Doc(e.into())),
        Object::PeerSub(s) => runtime::block_on(async move { s.next_timeout(t).await })??
            .map(|e| SubEvent::Peer(e.into())),
        Object::DocQueue(q) => q.next(t)?.map(SubEvent::Doc),
        Object::PeerQueue(q) => q.next(t)?.map(SubEvent::Peer),
        _ => {
            return Err(SdkError::new(
                ErrorCode::Internal,
                "not a polled subscription",
            ))
        }
    })
}

/// Subscribes to a collection (`id = None`) or a document, queued: the events
/// wait in a queue the SDK bounds to `capacity` (0: 256, the queue module's
/// `DEFAULT_CAPACITY`).
/// Past it the oldest live event is dropped and the reader's next event is
/// `Lagged` with the count; snapshot events are never dropped. `ready` is told
/// ([`SubEvent::Ready`], on the dispatcher thread) when events wait: read them
/// with [`next_doc_event`] (timeout 0 does not wait) until it returns
/// `Ok(None)`; only then is it told again. When the node closes it gets
/// [`SubEvent::Closed`] and reading returns what is left, then `Closed`.
/// For bindings that hand events to a reader of their own (a Go channel).
pub fn subscribe_docs_queued(
    node: u64,
    collection: &str,
    id: Option<&str>,
    snapshot: bool,
    capacity: usize,
    ready: Box<dyn EventSink>,
) -> SdkResult<u64> {
    let n = handles::node(node)?;
    check_doc(collection, id)?;
    let sub = n.subscribe(collection, id, snapshot)?;
    let q = Queue::start(sub, capacity, ready, node)?;
    Ok(handles::insert(Object::DocQueue(q)))
}

/// Subscribes to peer events, queued; see [`subscribe_docs_queued`].
pub fn subscribe_peers_queued(
    node: u64,
    capacity: usize,
    ready: Box<dyn EventSink>,
) -> SdkResult<u64> {
    let n = handles::node(node)?;
    let q = Queue::start(n.subscribe_peers(), capacity, ready, node)?;
    Ok(handles::insert(Object::PeerQueue(q)))
}

/// Subscribes to documents with push delivery: `sink` receives every event on
/// the SDK's dispatcher thread (see [`crate::dispatch`]). Returns its handle.
pub fn subscribe_docs_push(
    node: u64,
    collection: &str,
    id: Option<&str>,
    snapshot: bool,
    sink: Box<dyn EventSink>,
) -> SdkResult<u64> {
    let n = handles::node(node)?;
    check_doc(collection, id)?;
    let sub = Arc::new(n.subscribe(collection, id, snapshot)?);
    let push = Push::for_node(sink, node);
    push.start(move || {
        let sub = sub.clone();
        async move { sub.next().await.map(|e| SubEvent::Doc(e.into())) }
    })?;
    Ok(handles::insert(Object::Push(push)))
}

/// Subscribes to peer events with push delivery; see [`subscribe_docs_push`].
pub fn subscribe_peers_push(node: u64, sink: Box<dyn EventSink>) -> SdkResult<u64> {
    let n = handles::node(node)?;
    let sub = Arc::new(n.subscribe_peers());
    let push = Push::for_node(sink, node);
    push.start(move || {
        let sub = sub.clone();
        async move { sub.next().await.map(|e| SubEvent::Peer(e.into())) }
    })?;
    Ok(handles::insert(Object::Push(push)))
}

/// Ends a subscription and frees its handle. Waiting readers wake with `Closed`.
pub fn unsubscribe(sub: u64) -> SdkResult<()> {
    handles::remove_subscription(sub)
}

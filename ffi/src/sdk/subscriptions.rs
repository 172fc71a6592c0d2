//! Subscriptions to documents and peer events: polled (`next_*_event`) or
//! pushed to a sink on the dispatcher thread (see [`crate::dispatch`]).

use std::sync::Arc;

use super::args::{check_doc, ms};
use crate::dispatch::{EventSink, Push};
use crate::error::SdkResult;
use crate::handles::{self, Object};
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

/// The next document event, waiting up to `timeout_ms`. `Ok(None)` on timeout;
/// `Err(Closed)` once the subscription (or its node) is closed and drained.
pub fn next_doc_event(sub: u64, timeout_ms: u64) -> SdkResult<Option<DocEventRecord>> {
    let s = handles::doc_sub(sub)?;
    let ev = runtime::block_on(async move { s.next_timeout(ms(timeout_ms)).await })??;
    Ok(ev.map(DocEventRecord::from))
}

/// The next peer event; see [`next_doc_event`].
pub fn next_peer_event(sub: u64, timeout_ms: u64) -> SdkResult<Option<PeerEventRecord>> {
    let s = handles::peer_sub(sub)?;
    let ev = runtime::block_on(async move { s.next_timeout(ms(timeout_ms)).await })??;
    Ok(ev.map(PeerEventRecord::from))
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
    let push = Push::new(sink);
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
    let push = Push::new(sink);
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

//! The SDK layer in safe Rust: every behaviour the language bindings share.
//! Calls block the caller's thread while the work runs on the SDK runtime, with
//! a deadline where they can wait; the C ABI, Python, Go and Kotlin layers only
//! convert types around these functions.

use std::time::Duration;

use peat_mesh::{
    Event, Formation, ListOptions, Node, NodeConfig, NodeId, PeerAddr, PeerEvent, PeerState,
};

use crate::dispatch::{EventSink, Push, SubEvent};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::handles::{self, Object};
use crate::runtime;

/// What [`node_open`] needs. Documents travel as JSON text; everything else is typed.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct NodeOptions {
    /// Data directory (created if missing).
    pub data_dir: String,
    /// Public formation id.
    pub formation_id: String,
    /// The formation's 32-byte shared secret.
    pub formation_secret: Vec<u8>,
    /// Listen address, e.g. `127.0.0.1:0`; empty for `0.0.0.0:0`.
    pub listen: String,
    /// Static peers as `NODEID@HOST:PORT`.
    pub peers: Vec<String>,
    /// Announce and discover peers of the formation on the LAN by mDNS.
    pub mdns: bool,
}

/// A peer as the SDK reports it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeerRecord {
    /// Node id (64 hex digits).
    pub id: String,
    /// True while connected.
    pub connected: bool,
    /// Socket address, if known.
    pub addr: Option<String>,
    /// Round-trip time in microseconds, while connected.
    pub rtt_us: Option<u64>,
    /// Milliseconds since the Unix epoch when a frame last arrived.
    pub last_seen_ms: Option<u64>,
    /// `connected`, `disconnected`, `discovered` or `other_formation`.
    pub state: String,
    /// The discoveries that want this peer, comma-separated (`static,mdns`); may be empty.
    pub sources: String,
}

/// A document event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DocEventRecord {
    /// A document's new state (`json` is `None` when it was deleted).
    Changed {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// Content as JSON text, or `None` if deleted.
        json: Option<String>,
        /// "snapshot", "local" or the peer's node id.
        origin: String,
    },
    /// This many events were dropped because the subscriber fell behind.
    Lagged(u64),
}

/// A peer event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PeerEventRecord {
    /// Admitted and syncing.
    Connected {
        /// Node id.
        peer: String,
    },
    /// Connection ended.
    Disconnected {
        /// Node id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// Admission failed.
    AdmissionRefused {
        /// Node id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A discovery found the peer; it will be dialled.
    Discovered {
        /// Node id.
        peer: String,
        /// `static`, `mdns` or `direct`.
        source: String,
    },
    /// A discovery no longer sees the peer.
    Lost {
        /// Node id.
        peer: String,
        /// `static`, `mdns` or `direct`.
        source: String,
    },
    /// mDNS saw a node of another formation; not dialled.
    SeenOtherFormation {
        /// Node id.
        peer: String,
    },
    /// Not about a peer: this node's store failed a commit (a full disk, an
    /// I/O error) and refuses every write (an `Io` error) until the node is
    /// closed and reopened. Published once.
    StorageFailed {
        /// The store's error.
        reason: String,
    },
    /// This many events were dropped.
    Lagged(u64),
}

fn parse_peer(s: &str) -> SdkResult<PeerAddr> {
    let (id, addr) = s
        .split_once('@')
        .ok_or_else(|| SdkError::invalid(format!("peer {s:?} is not NODEID@HOST:PORT")))?;
    let id: NodeId = id.parse().map_err(SdkError::from)?;
    let addr = addr
        .parse()
        .map_err(|e| SdkError::invalid(format!("peer address {addr:?}: {e}")))?;
    Ok(PeerAddr::new(id, addr))
}

fn node_config(o: &NodeOptions) -> SdkResult<NodeConfig> {
    if o.data_dir.is_empty() {
        return Err(SdkError::invalid("data_dir must not be empty"));
    }
    let secret: zeroize::Zeroizing<[u8; 32]> = zeroize::Zeroizing::new(
        o.formation_secret
            .as_slice()
            .try_into()
            .map_err(|_| SdkError::invalid("formation secret must be 32 bytes"))?,
    );
    // An all-zero secret (one never set) is refused for every binding.
    let formation = Formation::try_new(&o.formation_id, *secret)?;
    let listen = if o.listen.is_empty() {
        "0.0.0.0:0"
    } else {
        &o.listen
    };
    let mut cfg = NodeConfig::new(&o.data_dir, formation).listen(
        listen
            .parse()
            .map_err(|e| SdkError::invalid(format!("listen address {listen:?}: {e}")))?,
    );
    for p in &o.peers {
        cfg = cfg.peer(parse_peer(p)?);
    }
    Ok(cfg.mdns(o.mdns))
}

fn ms(timeout_ms: u64) -> Duration {
    Duration::from_millis(timeout_ms)
}

/// A new random 32-byte formation secret from a cryptographically secure
/// generator (never all zeros). Share it with the formation's nodes out of band.
pub fn generate_formation_secret() -> [u8; 32] {
    Formation::generate_secret()
}

/// A new cancel token (a handle). Pass it to long operations; [`cancel`] ends them.
pub fn cancel_new() -> u64 {
    handles::insert(Object::Cancel(tokio_util::sync::CancellationToken::new()))
}

/// Triggers a cancel token: every operation waiting on it ends with `Cancelled`
/// and its work is dropped. Later operations given the token end at once.
pub fn cancel(token: u64) -> SdkResult<()> {
    handles::cancel_token(token)?
        .ok_or_else(|| SdkError::new(ErrorCode::InvalidHandle, "null cancel token handle"))?
        .cancel();
    Ok(())
}

/// Frees a cancel token's handle; 0 (no token) is accepted and does nothing.
pub fn cancel_free(token: u64) -> SdkResult<()> {
    if token == 0 {
        return Ok(());
    }
    handles::cancel_token(token)?;
    handles::remove(token).map(|_| ())
}

/// Opens a node; returns its handle. `cancel` is a token handle or 0.
pub fn node_open(opts: &NodeOptions, timeout_ms: u64, cancel: u64) -> SdkResult<u64> {
    let cfg = node_config(opts)?;
    let token = handles::cancel_token(cancel)?;
    let node = runtime::block_on_cancellable(ms(timeout_ms), token, async move {
        Node::open(cfg).await.map_err(SdkError::from)
    })?;
    Ok(handles::insert(Object::Node(node)))
}

/// Closes a node and frees its handle. Its subscriptions end (their handles stay
/// valid until closed and report `Closed`). Closing twice is an `InvalidHandle` error.
pub fn node_close(node: u64, timeout_ms: u64) -> SdkResult<()> {
    handles::node(node)?;
    let Object::Node(n) = handles::remove(node)? else {
        return Err(SdkError::new(ErrorCode::Internal, "handle changed type"));
    };
    runtime::block_on(async move { n.close(ms(timeout_ms)).await.map_err(SdkError::from) })?
}

/// Handles of every node open in this process, oldest first. A host whose
/// code was reloaded (an ATAK plugin) finds the nodes its previous incarnation
/// left open here, to reuse or close them.
pub fn node_handles() -> Vec<u64> {
    handles::nodes()
}

/// This node's id (64 hex digits).
pub fn node_id(node: u64) -> SdkResult<String> {
    Ok(handles::node(node)?.id().to_string())
}

/// `NODEID@HOST:PORT` strings another node can dial to reach this one.
pub fn node_addrs(node: u64) -> SdkResult<Vec<String>> {
    let n = handles::node(node)?;
    Ok(n.addrs()
        .iter()
        .map(|a| format!("{}@{a}", n.id()))
        .collect())
}

/// Dials a peer (`NODEID@HOST:PORT`) and waits for admission.
pub fn connect(node: u64, peer: &str, timeout_ms: u64, cancel: u64) -> SdkResult<()> {
    let n = handles::node(node)?;
    let p = parse_peer(peer)?;
    let token = handles::cancel_token(cancel)?;
    runtime::block_on_cancellable(ms(timeout_ms), token, async move {
        n.connect(&p).await.map_err(SdkError::from)
    })
}

/// Adds a static peer (`NODEID@HOST:PORT`) at runtime: dialled now and
/// re-dialled whenever its link drops, until [`remove_peer`].
pub fn add_peer(node: u64, peer: &str) -> SdkResult<()> {
    let n = handles::node(node)?;
    n.add_peer(parse_peer(peer)?).map_err(SdkError::from)
}

/// Removes a static peer (by node id); returns false if it was not one.
pub fn remove_peer(node: u64, peer_id: &str) -> SdkResult<bool> {
    let n = handles::node(node)?;
    let id = peer_id.parse::<peat_mesh::NodeId>()?;
    Ok(n.remove_peer(&id))
}

/// Every peer seen.
pub fn peers(node: u64) -> SdkResult<Vec<PeerRecord>> {
    let n = handles::node(node)?;
    Ok(n.peers()
        .into_iter()
        .map(|p| PeerRecord {
            id: p.id.to_string(),
            connected: p.state == PeerState::Connected,
            addr: p.addr.map(|a| a.to_string()),
            rtt_us: p.rtt.map(|d| d.as_micros() as u64),
            last_seen_ms: p.last_seen.and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as u64)
            }),
            state: match p.state {
                PeerState::Connected => "connected",
                PeerState::Disconnected => "disconnected",
                PeerState::Discovered => "discovered",
                PeerState::OtherFormation => "other_formation",
            }
            .to_string(),
            sources: p
                .sources
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect())
}

/// Counters of a node. `repr(C)`: the C ABI returns it as is (`PeatNodeStats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct NodeStats {
    /// Stored documents, tombstones included.
    pub documents: u64,
    /// Peers connected now.
    pub connected_peers: u64,
    /// Live subscriptions on the node.
    pub subscriptions: u64,
    /// Sync frames sent since open.
    pub frames_sent: u64,
    /// Sync bytes sent since open.
    pub bytes_sent: u64,
    /// Sync frames received since open.
    pub frames_received: u64,
    /// Sync bytes received since open.
    pub bytes_received: u64,
    /// Documents (or changes to them) received from peers and refused since
    /// open: nested too deep, or a change too large. Nothing of them was stored.
    pub refused_documents: u64,
}

/// The node's counters.
pub fn stats(node: u64) -> SdkResult<NodeStats> {
    let n = handles::node(node)?;
    let s = n.sync_stats();
    Ok(NodeStats {
        documents: n.document_count()?,
        connected_peers: n.connected_peers() as u64,
        subscriptions: n.subscription_count() as u64,
        frames_sent: s.sent.frames(),
        bytes_sent: s.sent.bytes(),
        frames_received: s.received.frames(),
        bytes_received: s.received.bytes(),
        refused_documents: s.refused_documents,
    })
}

/// Valid collection names and document ids: non-empty UTF-8 of at most
/// `peat_mesh::storage::MAX_NAME_LEN` (512) bytes without NUL. The core checks
/// emptiness and length; NUL is refused here for every binding, since C strings
/// end at NUL and C or Go would see a different id than the one stored.
fn check_name(what: &str, s: &str) -> SdkResult<()> {
    if s.contains('\0') {
        return Err(SdkError::invalid(format!(
            "{what} must not contain NUL (collection names and document ids are \
             non-empty UTF-8 of at most 512 bytes without NUL)"
        )));
    }
    Ok(())
}

/// [`check_name`] for a collection and, when given, a document id.
fn check_doc(collection: &str, id: Option<&str>) -> SdkResult<()> {
    check_name("collection", collection)?;
    id.map_or(Ok(()), |id| check_name("document id", id))
}

/// A document body from JSON text: an object, nested at most
/// `peat_mesh::storage::MAX_NESTING` levels, integers inside 64 bits.
fn parse_json(json: &str) -> SdkResult<serde_json::Value> {
    Ok(peat_mesh::storage::parse_document(json)?)
}

/// Writes a document (a JSON object). Returns once durable.
pub fn put(node: u64, collection: &str, id: &str, json: &str) -> SdkResult<()> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    let v = parse_json(json)?;
    let (c, i) = (collection.to_string(), id.to_string());
    runtime::block_on(async move { n.put(&c, &i, &v).await.map_err(SdkError::from) })?
}

/// Applies an RFC 7386 JSON merge patch. Returns once durable.
pub fn merge_patch(node: u64, collection: &str, id: &str, json: &str) -> SdkResult<()> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    let v = parse_json(json)?;
    let (c, i) = (collection.to_string(), id.to_string());
    runtime::block_on(async move { n.merge_patch(&c, &i, &v).await.map_err(SdkError::from) })?
}

/// A document as JSON text, or `None`.
pub fn get(node: u64, collection: &str, id: &str) -> SdkResult<Option<String>> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    Ok(n.get_json(collection, id)?.map(|v| v.to_string()))
}

/// Deletes a document; false if there was none.
pub fn delete(node: u64, collection: &str, id: &str) -> SdkResult<bool> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    let (c, i) = (collection.to_string(), id.to_string());
    runtime::block_on(async move { n.delete(&c, &i).await.map_err(SdkError::from) })?
}

/// One page of ids: (ids, cursor for the next page).
pub fn list(
    node: u64,
    collection: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> SdkResult<(Vec<String>, Option<String>)> {
    let n = handles::node(node)?;
    check_doc(collection, None)?;
    check_name("id prefix", prefix)?;
    after.map_or(Ok(()), |a| check_name("cursor", a))?;
    let page = n.list(
        collection,
        &ListOptions {
            prefix: prefix.to_string(),
            after: after.map(str::to_string),
            limit,
        },
    )?;
    Ok((page.ids, page.next))
}

/// Raw Automerge bytes of a document.
pub fn export(node: u64, collection: &str, id: &str) -> SdkResult<Option<Vec<u8>>> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    Ok(n.export(collection, id)?)
}

/// Merges raw Automerge bytes into a document.
pub fn import(node: u64, collection: &str, id: &str, bytes: &[u8]) -> SdkResult<()> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    let (c, i, b) = (collection.to_string(), id.to_string(), bytes.to_vec());
    runtime::block_on(async move { n.import(&c, &i, &b).await.map_err(SdkError::from) })?
}

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
    Ok(handles::insert(Object::DocSub(std::sync::Arc::new(sub))))
}

/// Subscribes to peer events; returns its handle.
pub fn subscribe_peers(node: u64) -> SdkResult<u64> {
    let n = handles::node(node)?;
    Ok(handles::insert(Object::PeerSub(std::sync::Arc::new(
        n.subscribe_peers(),
    ))))
}

fn origin(o: &peat_mesh::Origin) -> String {
    match o {
        peat_mesh::Origin::Snapshot => "snapshot".into(),
        peat_mesh::Origin::Local => "local".into(),
        peat_mesh::Origin::Peer(p) => p.to_string(),
    }
}

/// The next document event, waiting up to `timeout_ms`. `Ok(None)` on timeout;
/// `Err(Closed)` once the subscription (or its node) is closed and drained.
pub fn next_doc_event(sub: u64, timeout_ms: u64) -> SdkResult<Option<DocEventRecord>> {
    let s = handles::doc_sub(sub)?;
    let ev = runtime::block_on(async move { s.next_timeout(ms(timeout_ms)).await })??;
    Ok(ev.map(doc_record))
}

/// The next peer event; see [`next_doc_event`].
pub fn next_peer_event(sub: u64, timeout_ms: u64) -> SdkResult<Option<PeerEventRecord>> {
    let s = handles::peer_sub(sub)?;
    let ev = runtime::block_on(async move { s.next_timeout(ms(timeout_ms)).await })??;
    Ok(ev.map(peer_record))
}

fn doc_record(e: Event<peat_mesh::DocEvent>) -> DocEventRecord {
    match e {
        Event::Item(d) => DocEventRecord::Changed {
            collection: d.key.collection().to_string(),
            id: d.key.id().to_string(),
            json: d.value.map(|v| v.to_string()),
            origin: origin(&d.origin),
        },
        Event::Lagged(n) => DocEventRecord::Lagged(n),
    }
}

fn peer_record(e: Event<PeerEvent>) -> PeerEventRecord {
    match e {
        Event::Item(PeerEvent::Connected { peer }) => PeerEventRecord::Connected {
            peer: peer.to_string(),
        },
        Event::Item(PeerEvent::Disconnected { peer, reason }) => PeerEventRecord::Disconnected {
            peer: peer.to_string(),
            reason,
        },
        Event::Item(PeerEvent::AdmissionRefused { peer, reason }) => {
            PeerEventRecord::AdmissionRefused {
                peer: peer.to_string(),
                reason,
            }
        }
        Event::Item(PeerEvent::Discovered { peer, source }) => PeerEventRecord::Discovered {
            peer: peer.to_string(),
            source: source.to_string(),
        },
        Event::Item(PeerEvent::Lost { peer, source }) => PeerEventRecord::Lost {
            peer: peer.to_string(),
            source: source.to_string(),
        },
        Event::Item(PeerEvent::SeenOtherFormation { peer }) => {
            PeerEventRecord::SeenOtherFormation {
                peer: peer.to_string(),
            }
        }
        Event::Item(PeerEvent::StorageFailed { reason }) => {
            PeerEventRecord::StorageFailed { reason }
        }
        Event::Lagged(n) => PeerEventRecord::Lagged(n),
    }
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
    let sub = std::sync::Arc::new(n.subscribe(collection, id, snapshot)?);
    let push = Push::new(sink);
    push.start(move || {
        let sub = sub.clone();
        async move { sub.next().await.map(|e| SubEvent::Doc(doc_record(e))) }
    })?;
    Ok(handles::insert(Object::Push(push)))
}

/// Subscribes to peer events with push delivery; see [`subscribe_docs_push`].
pub fn subscribe_peers_push(node: u64, sink: Box<dyn EventSink>) -> SdkResult<u64> {
    let n = handles::node(node)?;
    let sub = std::sync::Arc::new(n.subscribe_peers());
    let push = Push::new(sink);
    push.start(move || {
        let sub = sub.clone();
        async move { sub.next().await.map(|e| SubEvent::Peer(peer_record(e))) }
    })?;
    Ok(handles::insert(Object::Push(push)))
}

/// Ends a subscription and frees its handle. Waiting readers wake with `Closed`.
pub fn unsubscribe(sub: u64) -> SdkResult<()> {
    handles::remove_subscription(sub)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The handle registry is process-wide: tests that count handles run one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Options for a test node on loopback in `dir`.
    pub(crate) fn opts(dir: &std::path::Path) -> NodeOptions {
        NodeOptions {
            data_dir: dir.to_string_lossy().into_owned(),
            formation_id: "t".into(),
            formation_secret: vec![9; 32],
            listen: "127.0.0.1:0".into(),
            peers: vec![],
            mdns: false,
        }
    }

    /// Called from a plain thread with no tokio context, as every binding does.
    #[test]
    fn two_nodes_sync_and_handles_are_freed() {
        let _g = serial();
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let before = handles::live_handles();
        let a = node_open(&opts(da.path()), 5000, 0).unwrap();
        let b = node_open(&opts(db.path()), 5000, 0).unwrap();
        let sub = subscribe_docs(b, "c", None, true).unwrap();
        connect(b, &node_addrs(a).unwrap()[0], 5000, 0).unwrap();
        put(a, "c", "d", r#"{"x":1}"#).unwrap();
        let ev = loop {
            match next_doc_event(sub, 5000).unwrap() {
                Some(DocEventRecord::Changed { json, .. }) => break json,
                Some(DocEventRecord::Lagged(_)) => continue,
                None => panic!("timed out"),
            }
        };
        assert_eq!(ev.as_deref(), Some(r#"{"x":1}"#));
        assert_eq!(get(b, "c", "d").unwrap().as_deref(), Some(r#"{"x":1}"#));
        // a normal sync refuses nothing (the core's hostile-peer suite covers refusals)
        let st = stats(b).unwrap();
        assert!(st.frames_received > 0 && st.bytes_received > 0, "{st:?}");
        assert_eq!(st.refused_documents, 0);
        assert_eq!(get(a, "c", "nope").unwrap(), None);
        assert_eq!(
            put(a, "c", "d", "not json").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        unsubscribe(sub).unwrap();
        assert_eq!(unsubscribe(sub).unwrap_err().code, ErrorCode::InvalidHandle);
        node_close(a, 5000).unwrap();
        node_close(b, 5000).unwrap();
        assert_eq!(
            node_close(a, 5000).unwrap_err().code,
            ErrorCode::InvalidHandle
        );
        assert_eq!(get(0, "c", "d").unwrap_err().code, ErrorCode::InvalidHandle);
        assert_eq!(handles::live_handles(), before);
    }

    #[test]
    fn all_zero_secret_is_refused_and_generated_ones_open() {
        let _g = serial();
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path());
        o.formation_secret = vec![0; 32];
        let e = node_open(&o, 5000, 0).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
        let s = generate_formation_secret();
        assert_ne!(s, [0; 32]);
        assert_ne!(s, generate_formation_secret());
        o.formation_secret = s.to_vec();
        node_close(node_open(&o, 5000, 0).unwrap(), 5000).unwrap();
    }

    /// NUL in a collection, id, prefix or cursor is refused by every call:
    /// C strings would end there and C or Go would see another id.
    #[test]
    fn nul_in_names_is_refused_everywhere() {
        let _g = serial();
        let d = tempfile::tempdir().unwrap();
        let n = node_open(&opts(d.path()), 5000, 0).unwrap();
        let bad = |r: SdkResult<()>| {
            let e = r.unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
            assert!(e.message.contains("NUL"), "{e}");
        };
        for (c, i) in [("c", "a\0b"), ("c\0d", "a")] {
            bad(put(n, c, i, "{}"));
            bad(merge_patch(n, c, i, "{}"));
            bad(get(n, c, i).map(drop));
            bad(delete(n, c, i).map(drop));
            bad(export(n, c, i).map(drop));
            bad(import(n, c, i, b"").map(drop));
            bad(subscribe_docs(n, c, Some(i), false).map(drop));
        }
        bad(subscribe_docs(n, "c\0", None, false).map(drop));
        bad(list(n, "c\0", "", None, 10).map(drop));
        bad(list(n, "c", "a\0", None, 10).map(drop));
        bad(list(n, "c", "", Some("a\0"), 10).map(drop));
        put(n, "c", "a b", r#"{"x":1}"#).unwrap(); // a space is fine
        assert!(get(n, "c", "a b").unwrap().is_some());
        node_close(n, 5000).unwrap();
    }

    #[test]
    fn cancel_token_ends_a_waiting_connect() {
        let _g = serial();
        let da = tempfile::tempdir().unwrap();
        let a = node_open(&opts(da.path()), 5000, 0).unwrap();
        // a peer that never answers: a blackhole port on loopback
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ghost = format!(
            "{}@{}",
            "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
            sock.local_addr().unwrap()
        );
        let token = cancel_new();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            cancel(token).unwrap();
        });
        let start = std::time::Instant::now();
        let err = connect(a, &ghost, 20_000, token).unwrap_err();
        t.join().unwrap();
        assert_eq!(err.code, ErrorCode::Cancelled, "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        cancel_free(token).unwrap();
        assert_eq!(
            cancel_free(token).unwrap_err().code,
            ErrorCode::InvalidHandle
        );
        node_close(a, 5000).unwrap();
    }

    #[test]
    fn blocking_call_from_runtime_thread_is_refused() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let refused = rt.block_on(async { runtime::block_on(async { 1 }) });
        assert_eq!(refused.unwrap_err().code, ErrorCode::WouldDeadlock);
    }
}

//! The WebSocket API against a real node on loopback, with a real WebSocket
//! client (tokio-tungstenite): token checked at the upgrade, collection and
//! document subscriptions (snapshot, then local and remote changes,
//! deletions), peer events, unsubscribing, bad requests and the
//! subscription bound; and a client that stops reading is told it lagged
//! while the node goes on serving.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use peat_mesh::{Formation, Node, NodeConfig};
use peat_mesh_service::auth::hash_token;
use peat_mesh_service::client::call;
use peat_mesh_service::{Layer, Service, Settings};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const TOKEN: &str = "ws-test-token";

async fn start(dir: &std::path::Path) -> Service {
    let text = format!(
        "data_dir = {:?}\nformation = \"ws-test\"\nlisten = \"127.0.0.1:0\"\n[http]\nbind = \"127.0.0.1:0\"\n[[http.tokens]]\nname = \"t\"\nsha256 = \"{}\"\nscopes = [\"read\", \"write\"]\n",
        dir.display().to_string(),
        hash_token(TOKEN)
    );
    let env = Layer::from_env([("PEAT_SECRET".to_string(), HEX.to_string())]).unwrap();
    let s = Settings::resolve(Layer::from_toml(&text).unwrap().merge(env)).unwrap();
    Service::start(&s).await.unwrap()
}

type Ws = WebSocketStream<TcpStream>;

/// Opens `/api/v1/ws` over `stream` with `token`.
async fn open_on(
    stream: TcpStream,
    addr: SocketAddr,
    token: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/api/v1/ws").into_client_request()?;
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    Ok(tokio_tungstenite::client_async(req, stream).await?.0)
}

async fn open(addr: SocketAddr) -> Ws {
    open_on(TcpStream::connect(addr).await.unwrap(), addr, Some(TOKEN))
        .await
        .unwrap()
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message (within 10 s).
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Reads messages until one matches.
async fn recv_until(ws: &mut Ws, mut what: impl FnMut(&Value) -> bool) -> Value {
    loop {
        let m = recv(ws).await;
        if what(&m) {
            return m;
        }
    }
}

async fn put(addr: SocketAddr, path: &str, body: &str) {
    let r = call(addr, "PUT", path, Some(TOKEN), Some(body))
        .await
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path()).await;
    let a = svc.http_addr();
    let docs = "/api/v1/collections/tracks/documents";
    put(a, &format!("{docs}/t0"), r#"{"n":0}"#).await;

    // no token, or a wrong one: refused at the upgrade
    for token in [None, Some("wrong")] {
        let stream = TcpStream::connect(a).await.unwrap();
        match open_on(stream, a, token).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
            other => panic!("expected 401, got {other:?}"),
        }
    }

    // a browser offers the token as a subprotocol; the node picks peat.v1
    let mut req = format!("ws://{a}/api/v1/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("peat.v1, peat-bearer.{TOKEN}").parse().unwrap(),
    );
    let stream = TcpStream::connect(a).await.unwrap();
    let (mut browser, resp) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "peat.v1");
    send(&mut browser, json!({"op": "subscribe_peers", "sub": "p"})).await;
    assert_eq!(
        recv(&mut browser).await,
        json!({"type": "subscribed", "sub": "p"})
    );
    drop(browser);

    let mut ws = open(a).await;
    // the collection with a snapshot, one document, and peer events
    send(
        &mut ws,
        json!({"op": "subscribe", "sub": "all", "collection": "tracks", "snapshot": true}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "subscribed", "sub": "all"})
    );
    let snap = recv_until(&mut ws, |m| m["type"] == "doc").await;
    assert_eq!(
        (&snap["sub"], &snap["id"], &snap["value"], &snap["origin"]),
        (
            &json!("all"),
            &json!("t0"),
            &json!({"n": 0}),
            &json!("snapshot")
        )
    );
    send(
        &mut ws,
        json!({"op": "subscribe", "sub": "one", "collection": "tracks", "id": "t1"}),
    )
    .await;
    recv_until(&mut ws, |m| m["type"] == "subscribed" && m["sub"] == "one").await;
    send(&mut ws, json!({"op": "subscribe_peers", "sub": "peers"})).await;
    recv_until(&mut ws, |m| {
        m["type"] == "subscribed" && m["sub"] == "peers"
    })
    .await;

    // a local write over HTTP reaches both document subscriptions
    put(a, &format!("{docs}/t1"), r#"{"n":1}"#).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = recv_until(&mut ws, |m| m["type"] == "doc" && m["id"] == "t1").await;
        assert_eq!(
            (&m["value"], &m["origin"]),
            (&json!({"n": 1}), &json!("local"))
        );
        seen.push(m["sub"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["all", "one"]);

    // a peer joins and writes: a peer event, then a remote change
    let peer_dir = tempfile::tempdir().unwrap();
    let secret: [u8; 32] = [0x5a; 32];
    let formation = Formation::try_new("ws-test".to_string(), secret).unwrap();
    let peer = Node::open(
        NodeConfig::new(peer_dir.path(), formation)
            .listen("127.0.0.1:0".parse().unwrap())
            .mdns(false),
    )
    .await
    .unwrap();
    peer.connect(&svc.node().peer_addr()).await.unwrap();
    let pid = peer.id().to_string();
    let ev = recv_until(&mut ws, |m| {
        m["type"] == "peer" && m["event"] == "connected"
    })
    .await;
    assert_eq!((&ev["sub"], &ev["peer"]), (&json!("peers"), &json!(pid)));
    peer.put("tracks", "t2", &json!({"n": 2})).await.unwrap();
    let m = recv_until(&mut ws, |m| m["type"] == "doc" && m["id"] == "t2").await;
    assert_eq!(
        (&m["sub"], &m["origin"], &m["peer"]),
        (&json!("all"), &json!("peer"), &json!(pid))
    );

    // a blob fetched from the peer, followed over the socket
    let blob: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
    let info = peer.blobs().add_bytes(blob).await.unwrap();
    let hash = info.hash.to_hex();
    send(
        &mut ws,
        json!({"op": "fetch_blob", "sub": "f", "hash": hash}),
    )
    .await;
    recv_until(&mut ws, |m| m["type"] == "subscribed" && m["sub"] == "f").await;
    let mut progress = 0;
    let done = recv_until(&mut ws, |m| {
        if m["type"] == "blob_progress" && m["sub"] == "f" {
            progress += 1;
        }
        m["type"] == "blob_done" || m["type"] == "blob_failed"
    })
    .await;
    assert_eq!(
        (&done["type"], &done["hash"], &done["size"]),
        (&json!("blob_done"), &json!(hash), &json!(2u64 << 20)),
        "{done}"
    );
    assert!(progress >= 1, "progress was reported");
    assert!(svc.node().blobs().info(info.hash).unwrap().is_some());
    send(&mut ws, json!({"op": "unsubscribe", "sub": "f"})).await;
    recv_until(&mut ws, |m| m["type"] == "unsubscribed" && m["sub"] == "f").await;
    send(
        &mut ws,
        json!({"op": "fetch_blob", "sub": "g", "hash": "zz"}),
    )
    .await;
    let m = recv_until(&mut ws, |m| m["type"] == "error").await;
    assert_eq!(
        (&m["sub"], &m["kind"]),
        (&json!("g"), &json!("invalid_argument"))
    );

    // a deletion is a null value
    let r = call(a, "DELETE", &format!("{docs}/t1"), Some(TOKEN), None)
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    let m = recv_until(&mut ws, |m| {
        m["type"] == "doc" && m["id"] == "t1" && m["value"].is_null()
    })
    .await;
    assert_eq!(m["origin"], "local");

    // unsubscribed: no more events on it
    send(&mut ws, json!({"op": "unsubscribe", "sub": "one"})).await;
    recv_until(&mut ws, |m| {
        m["type"] == "unsubscribed" && m["sub"] == "one"
    })
    .await;
    put(a, &format!("{docs}/t1"), r#"{"n":11}"#).await;
    let m = recv_until(&mut ws, |m| m["type"] == "doc" && m["id"] == "t1").await;
    assert_eq!(m["sub"], "all", "only the collection subscription is left");

    // bad requests get an error message and change nothing
    for (bad, kind) in [
        (
            json!({"op": "subscribe", "sub": "all", "collection": "tracks"}),
            "invalid_argument",
        ),
        (
            json!({"op": "subscribe", "sub": "x", "collection": ""}),
            "invalid_argument",
        ),
        (json!({"op": "unsubscribe", "sub": "nope"}), "not_found"),
        (json!({"op": "launch", "sub": "x"}), "invalid_argument"),
        (
            json!({"op": "subscribe_peers", "sub": ""}),
            "invalid_argument",
        ),
    ] {
        send(&mut ws, bad.clone()).await;
        let m = recv_until(&mut ws, |m| m["type"] == "error").await;
        assert_eq!(m["kind"], kind, "{bad}: {m}");
    }
    ws.send(Message::Text("not json".into())).await.unwrap();
    let m = recv_until(&mut ws, |m| m["type"] == "error").await;
    assert_eq!(m["kind"], "invalid_argument");

    // the subscription bound: the 65th is refused
    for i in 0..peat_mesh_service::ws::MAX_SUBSCRIPTIONS - 2 {
        send(
            &mut ws,
            json!({"op": "subscribe_peers", "sub": format!("p{i}")}),
        )
        .await;
        recv_until(&mut ws, |m| m["type"] == "subscribed").await;
    }
    send(&mut ws, json!({"op": "subscribe_peers", "sub": "over"})).await;
    let m = recv_until(&mut ws, |m| m["type"] == "error").await;
    assert_eq!((&m["sub"], &m["kind"]), (&json!("over"), &json!("limit")));

    // shutdown closes the socket with "going away"
    peer.close(Duration::from_secs(5)).await.unwrap();
    svc.shutdown(Duration::from_secs(5)).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(u16::from(f.code), 1001);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A client that stops reading while the collection is flooded: the node
/// keeps serving (every write and a health check complete), and when the
/// client reads again it is told how much it missed, then gets live
/// changes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_told_it_lagged() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path()).await;
    let a = svc.http_addr();
    // a small receive window, so the client's socket fills soon
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(a).await.unwrap();
    let mut ws = open_on(stream, a, Some(TOKEN)).await.unwrap();
    send(
        &mut ws,
        json!({"op": "subscribe", "sub": "flood", "collection": "bulk"}),
    )
    .await;
    recv_until(&mut ws, |m| m["type"] == "subscribed").await;

    // 4,000 writes of 8 KiB: far beyond the node's queue (1,024), the
    // client's queue (256) and the socket buffers
    let node = svc.node().clone();
    let filler = "x".repeat(8 << 10);
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..16 {
        let node = node.clone();
        let filler = filler.clone();
        writers.spawn(async move {
            for i in 0..250 {
                node.put("bulk", &format!("d{w}-{i}"), &json!({"f": filler}))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }
    let r = call(a, "GET", "/api/v1/health", None, None).await.unwrap();
    assert_eq!(r.status, 200);
    node.put("bulk", "last", &json!({"n": 1})).await.unwrap();

    let mut missed = 0;
    let mut docs = 0;
    loop {
        let m = recv(&mut ws).await;
        match m["type"].as_str() {
            Some("lagged") => missed += m["missed"].as_u64().unwrap(),
            Some("doc") if m["id"] == "last" => break,
            Some("doc") => docs += 1,
            _ => panic!("unexpected {m}"),
        }
    }
    println!("slow client: {docs} delivered, {missed} dropped and reported");
    assert!(missed > 0, "the client was told it lagged");
    assert_eq!(docs + missed, 4000, "every event delivered or counted");
    svc.shutdown(Duration::from_secs(5)).await.unwrap();
}

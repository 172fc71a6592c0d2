//! Sync between real nodes: real iroh endpoints on 127.0.0.1, real redb files.

mod common;

use std::time::Duration;

use common::*;
use peat_mesh::{Event, Formation, Node, Origin, PeerEvent};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sync_both_ways() {
    init_tracing();
    let a = open().await;
    let b = open().await;
    a.node
        .put("tracks", "t1", &json!({"lat": 1.0}))
        .await
        .unwrap();
    b.node
        .put("tracks", "t2", &json!({"lat": 2.0}))
        .await
        .unwrap();
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    assert!(
        eventually(WAIT, || b.node.get("tracks", "t1").unwrap().is_some()
            && a.node.get("tracks", "t2").unwrap().is_some())
        .await
    );
    // live update after connecting
    let sub = b.node.subscribe("tracks", Some("t3"), false).unwrap();
    a.node
        .put("tracks", "t3", &json!({"lat": 3.0}))
        .await
        .unwrap();
    let ev = sub.next_timeout(WAIT).await.unwrap().unwrap();
    match ev {
        Event::Item(e) => {
            assert_eq!(e.value, Some(json!({"lat": 3.0})));
            assert_eq!(e.origin, Origin::Peer(a.node.id()));
        }
        other => panic!("unexpected {other:?}"),
    }
    // delete syncs as a tombstone
    assert!(a.node.delete("tracks", "t1").await.unwrap());
    assert!(eventually(WAIT, || b.node.get("tracks", "t1").unwrap().is_none()).await);
    // listing reads committed rows, which trail applied remote changes by one group commit
    assert!(
        eventually(WAIT, || b
            .node
            .list("tracks", &Default::default())
            .unwrap()
            .ids
            == vec!["t2", "t3"])
        .await
    );
    let peers = a.node.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].id, b.node.id());
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_in_a_line_converge() {
    init_tracing();
    let mut nodes = Vec::new();
    for _ in 0..5 {
        nodes.push(open().await);
    }
    for i in 1..5 {
        nodes[i]
            .node
            .connect(&nodes[i - 1].node.peer_addr())
            .await
            .unwrap();
    }
    for (i, n) in nodes.iter().enumerate() {
        n.node
            .put("line", &format!("d{i}"), &json!({"from": i}))
            .await
            .unwrap();
    }
    // a shared document edited at both ends
    nodes[0]
        .node
        .merge_patch("line", "shared", &json!({"a": 1}))
        .await
        .unwrap();
    nodes[4]
        .node
        .merge_patch("line", "shared", &json!({"e": 5}))
        .await
        .unwrap();
    for n in &nodes {
        assert!(
            eventually(WAIT, || n
                .node
                .list("line", &Default::default())
                .unwrap()
                .ids
                .len()
                == 6
                && n.node.get("line", "shared").unwrap()
                    == Some(json!({"a": 1, "e": 5})))
            .await,
            "node did not converge: {:?}",
            n.node.list("line", &Default::default()).unwrap()
        );
    }
    for n in &nodes {
        n.node.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_merge_identically_and_partitions_heal() {
    init_tracing();
    let a = open().await;
    let b = open().await;
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    a.node.put("doc", "x", &json!({"base": 0})).await.unwrap();
    assert!(eventually(WAIT, || b.node.get("doc", "x").unwrap().is_some()).await);

    // partition (b connected, so b re-dials until it disconnects too)
    let mut events = a.node.subscribe_peers();
    assert!(b.node.disconnect(&a.node.id()));
    assert!(a.node.disconnect(&b.node.id()) || a.node.connected_peers() == 0);
    let ev = events.next_timeout(WAIT).await.unwrap().unwrap();
    assert!(
        matches!(ev, Event::Item(PeerEvent::Disconnected { .. })),
        "{ev:?}"
    );
    assert!(eventually(WAIT, || b.node.connected_peers() == 0).await);

    // both sides write while apart: same doc, different and same fields, new docs
    a.node
        .merge_patch("doc", "x", &json!({"a": "A", "both": "from-a"}))
        .await
        .unwrap();
    b.node
        .merge_patch("doc", "x", &json!({"b": "B", "both": "from-b"}))
        .await
        .unwrap();
    for i in 0..50 {
        a.node
            .put("a-side", &format!("{i}"), &json!({"i": i}))
            .await
            .unwrap();
        b.node
            .put("b-side", &format!("{i}"), &json!({"i": i}))
            .await
            .unwrap();
    }
    drop(events.try_next());
    events = a.node.subscribe_peers();

    // heal
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    let ev = events.next_timeout(WAIT).await.unwrap().unwrap();
    assert!(
        matches!(ev, Event::Item(PeerEvent::Connected { .. })),
        "{ev:?}"
    );
    let converged = || {
        let (da, db) = (
            a.node.get("doc", "x").unwrap(),
            b.node.get("doc", "x").unwrap(),
        );
        da.is_some()
            && da == db
            && a.node
                .list("b-side", &Default::default())
                .unwrap()
                .ids
                .len()
                == 50
            && b.node
                .list("a-side", &Default::default())
                .unwrap()
                .ids
                .len()
                == 50
    };
    assert!(eventually(WAIT, converged).await);
    let merged = a.node.get("doc", "x").unwrap().unwrap();
    assert_eq!(merged["a"], "A");
    assert_eq!(merged["b"], "B");
    assert!(merged["both"] == "from-a" || merged["both"] == "from-b");
    // byte-identical history too
    assert_eq!(
        peat_mesh::automerge::Automerge::load(&a.node.export("doc", "x").unwrap().unwrap())
            .unwrap()
            .get_heads(),
        peat_mesh::automerge::Automerge::load(&b.node.export("doc", "x").unwrap().unwrap())
            .unwrap()
            .get_heads()
    );
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_data_and_catches_up() {
    init_tracing();
    let a = open().await;
    let b_dir = tempfile::tempdir().unwrap();
    let b = Node::open(config(b_dir.path(), formation())).await.unwrap();
    let b_id = b.id();
    b.connect(&a.node.peer_addr()).await.unwrap();
    a.node.put("c", "before", &json!({"v": 1})).await.unwrap();
    b.put("c", "mine", &json!({"v": 2})).await.unwrap();
    assert!(eventually(WAIT, || b.get("c", "before").unwrap().is_some()).await);
    b.close(Duration::from_secs(5)).await.unwrap();
    assert!(eventually(WAIT, || a.node.connected_peers() == 0).await);

    a.node
        .put("c", "while-down", &json!({"v": 3}))
        .await
        .unwrap();
    let b = Node::open(config(b_dir.path(), formation())).await.unwrap();
    assert_eq!(b.id(), b_id, "identity persists");
    assert_eq!(b.get("c", "mine").unwrap(), Some(json!({"v": 2})));
    assert_eq!(b.get("c", "before").unwrap(), Some(json!({"v": 1})));
    b.connect(&a.node.peer_addr()).await.unwrap();
    assert!(eventually(WAIT, || b.get("c", "while-down").unwrap().is_some()).await);
    b.close(Duration::from_secs(5)).await.unwrap();
    a.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_refused_on_both_sides_and_nothing_flows() {
    init_tracing();
    let a = open().await;
    let b = open_in(Formation::new("test-formation", [1; 32])).await;
    a.node.put("secret", "s", &json!({"x": 1})).await.unwrap();
    let ea = a.node.subscribe_peers();
    let eb = b.node.subscribe_peers();
    let err = b.node.connect(&a.node.peer_addr()).await.unwrap_err();
    assert_eq!(err.kind(), peat_mesh::ErrorKind::AdmissionRefused, "{err}");
    for (events, other) in [(&ea, b.node.id()), (&eb, a.node.id())] {
        match events.next_timeout(WAIT).await.unwrap() {
            Some(Event::Item(PeerEvent::AdmissionRefused { peer, .. })) => assert_eq!(peer, other),
            e => panic!("expected admission refused, got {e:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.node.get("secret", "s").unwrap(), None);
    assert_eq!(b.node.document_count().unwrap(), 0);
    assert_eq!(a.node.connected_peers() + b.node.connected_peers(), 0);
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_api() {
    init_tracing();
    let a = open().await;
    let n = &a.node;
    n.put("units", "u1", &json!({"kind": "truck", "n": 1}))
        .await
        .unwrap();
    n.put("units", "u2", &json!({"kind": "drone", "n": 2}))
        .await
        .unwrap();
    n.put("units", "u3", &json!({"kind": "truck", "n": 3}))
        .await
        .unwrap();
    let trucks = n.find("units", "kind", &json!("truck"), 10).unwrap();
    assert_eq!(
        trucks.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        vec!["u1", "u3"]
    );
    let page = n
        .list(
            "units",
            &peat_mesh::ListOptions {
                limit: 2,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.ids, vec!["u1", "u2"]);
    let rest = n
        .list(
            "units",
            &peat_mesh::ListOptions {
                after: page.next.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(rest.ids, vec!["u3"]);
    // closure over a transaction
    use peat_mesh::automerge::transaction::Transactable;
    n.update("units", "u1", |tx| {
        tx.put(peat_mesh::automerge::ROOT, "n", 10i64)
    })
    .await
    .unwrap();
    assert_eq!(n.get("units", "u1").unwrap().unwrap()["n"], 10);
    // the cached JSON text follows every change
    assert_eq!(
        n.get_json("units", "u1").unwrap().as_deref(),
        Some(r#"{"kind":"truck","n":10}"#)
    );
    n.merge_patch("units", "u1", &json!({"n": 11}))
        .await
        .unwrap();
    assert_eq!(
        n.get_json("units", "u1").unwrap().as_deref(),
        Some(r#"{"kind":"truck","n":11}"#)
    );
    assert_eq!(n.get_json("units", "nope").unwrap(), None);
    // export / import round trip into another doc and from a foreign Automerge doc
    let bytes = n.export("units", "u2").unwrap().unwrap();
    n.import("copies", "u2", &bytes).await.unwrap();
    assert_eq!(
        n.get("copies", "u2").unwrap(),
        n.get("units", "u2").unwrap()
    );
    let mut foreign = peat_mesh::automerge::AutoCommit::new();
    foreign
        .put(peat_mesh::automerge::ROOT, "made", "elsewhere")
        .unwrap();
    n.import("foreign", "f", &foreign.save()).await.unwrap();
    assert_eq!(
        n.get("foreign", "f").unwrap(),
        Some(json!({"made": "elsewhere"}))
    );
    assert_eq!(
        n.import("foreign", "g", b"not automerge")
            .await
            .unwrap_err()
            .kind(),
        peat_mesh::ErrorKind::InvalidArgument
    );
    assert!(n.get("foreign", "g").unwrap().is_none());
    // bad input
    assert_eq!(
        n.put("", "x", &json!({})).await.unwrap_err().kind(),
        peat_mesh::ErrorKind::InvalidArgument
    );
    assert_eq!(
        n.put("c", "x", &json!([1])).await.unwrap_err().kind(),
        peat_mesh::ErrorKind::InvalidArgument
    );
    assert!(!n.delete("units", "nope").await.unwrap());
    // snapshot subscription
    let sub = n.subscribe("units", None, true).unwrap();
    let mut seen = Vec::new();
    while let Some(Event::Item(e)) = sub.try_next() {
        assert_eq!(e.origin, Origin::Snapshot);
        seen.push(e.key.id().to_string());
    }
    assert_eq!(seen, vec!["u1", "u2", "u3"]);
    assert_eq!(n.subscription_count(), 1);
    drop(sub);
    assert_eq!(n.subscription_count(), 0);
    n.close(Duration::from_secs(5)).await.unwrap();
    n.close(Duration::from_secs(5)).await.unwrap(); // idempotent
    assert_eq!(
        n.get("units", "u1").unwrap_err().kind(),
        peat_mesh::ErrorKind::Closed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_made_just_before_close_reach_connected_peers() {
    init_tracing();
    let a = open().await;
    let b = open().await;
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    for i in 0..20 {
        a.node
            .put("last", &format!("d{i}"), &json!({"i": i}))
            .await
            .unwrap();
    }
    a.node.close(Duration::from_secs(5)).await.unwrap();
    assert!(
        eventually(WAIT, || (0..20).all(|i| b
            .node
            .get("last", &format!("d{i}"))
            .unwrap()
            .is_some()))
        .await,
        "writes queued at close were lost in transit"
    );
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

/// A document whose history is larger than one frame (16 MiB) syncs: its
/// changes are split into pieces on the wire (it used to break the link on
/// every reconnect, for every document on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_larger_than_a_frame_syncs() {
    init_tracing();
    let a = open().await;
    let b = open().await;
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    // ~20 MB of text that does not compress (Automerge deflates change chunks)
    let mut big = String::with_capacity(20_000_000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while big.len() < 20_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.push_str(&format!("{x:016x}"));
    }
    a.node
        .put("maps", "big", &json!({ "blob": big }))
        .await
        .unwrap();
    a.node.put("maps", "small", &json!({"v": 1})).await.unwrap();
    assert!(eventually(WAIT, || b.node.get("maps", "small").unwrap().is_some()).await);
    assert!(
        eventually(Duration::from_secs(60), || b
            .node
            .get_json("maps", "big")
            .unwrap()
            .is_some())
        .await
    );
    assert_eq!(
        b.node.get("maps", "big").unwrap().unwrap()["blob"],
        json!(big)
    );
    assert!(a.node.sync_stats().sent.by_kind.contains_key("ChangePiece"));
    // and again after a reconnect, from scratch, to a third node
    let c = open().await;
    c.node.connect(&b.node.peer_addr()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(60), || c
            .node
            .get_json("maps", "big")
            .unwrap()
            .is_some())
        .await
    );
    for n in [&a, &b, &c] {
        n.node.close(Duration::from_secs(5)).await.unwrap();
    }
}

/// A UDP relay between a node and its peer that can be made to drop
/// everything, as a crashed host or a cut link would.
struct Relay {
    addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn relay_to(target: std::net::SocketAddr) -> Relay {
    use std::sync::atomic::Ordering;
    let front = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = front.local_addr().unwrap();
    let client = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (f, b, c, k) = (front.clone(), back.clone(), client.clone(), cut.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = f.recv_from(&mut buf).await {
            *c.lock().unwrap() = Some(from);
            if !k.load(Ordering::Relaxed) {
                let _ = b.send_to(&buf[..n], target).await;
            }
        }
    });
    let k = cut.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = back.recv_from(&mut buf).await {
            let to = *client.lock().unwrap();
            if let (Some(to), false) = (to, k.load(Ordering::Relaxed)) {
                let _ = front.send_to(&buf[..n], to).await;
            }
        }
    });
    Relay { addr, cut }
}

/// A peer that crashes and comes back before the link times out is taken
/// back at once: its fresh connection replaces the dead session (which the
/// one-connection-per-pair rule used to keep, refusing the new one), and
/// writes flow both ways again without anyone calling `connect` a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_restarts_within_the_link_timeout_is_taken_back() {
    init_tracing();
    // A link timeout well beyond how long the "crashed" node's close takes
    // even on a loaded machine, so the dead session is still there when the
    // node comes back (which is the case under test).
    let slow_timeout = |dir: &std::path::Path| {
        let mut c = config(dir, formation());
        c.link_timeout = Duration::from_secs(15);
        c
    };
    let open_slow = || async {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(slow_timeout(dir.path())).await.unwrap();
        TestNode { node, dir }
    };
    // `low` keeps the connection it dialled when two race: the old rule's case.
    let (x, y) = (open_slow().await, open_slow().await);
    let (low, high) = if x.node.id() < y.node.id() {
        (x, y)
    } else {
        (y, x)
    };
    let relay = relay_to(high.node.addrs()[0]).await;
    let via_relay = peat_mesh::PeerAddr::new(high.node.id(), relay.addr);
    low.node.connect(&via_relay).await.unwrap();
    low.node.put("c", "first", &json!({"v": 1})).await.unwrap();
    assert!(eventually(WAIT, || high.node.get("c", "first").unwrap().is_some()).await);

    // "crash": the link goes silent, then the process is gone (its goodbye is lost)
    relay.cut.store(true, std::sync::atomic::Ordering::Relaxed);
    let high_dir = high.dir;
    high.node.close(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        low.node.connected_peers(),
        1,
        "the dead session is still registered"
    );

    // restart and dial straight back
    let again = Node::open(slow_timeout(high_dir.path())).await.unwrap();
    again.connect(&low.node.peer_addr()).await.unwrap();
    low.node.put("c", "second", &json!({"v": 2})).await.unwrap();
    again
        .put("c", "from-restarted", &json!({"v": 3}))
        .await
        .unwrap();
    assert!(eventually(WAIT, || again.get("c", "second").unwrap().is_some()).await);
    assert!(
        eventually(WAIT, || low
            .node
            .get("c", "from-restarted")
            .unwrap()
            .is_some())
        .await
    );
    again.close(Duration::from_secs(5)).await.unwrap();
    low.node.close(Duration::from_secs(5)).await.unwrap();
}

/// A node that connects, writes once and closes at once (a short-lived
/// process) still delivers the write: the session is registered for the write
/// before `connect` returns, and close sends what is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_right_after_connect_and_before_close_arrives() {
    let a = open().await;
    let sub = a.node.subscribe("procs", None, false).unwrap();
    for i in 0..5 {
        let b = open().await;
        b.node.connect(&a.node.peer_addr()).await.unwrap();
        b.node
            .put("procs", &format!("from-child-{i}"), &json!({ "run": i }))
            .await
            .unwrap();
        b.node.close(Duration::from_secs(5)).await.unwrap();
        loop {
            match sub.next_timeout(WAIT).await.unwrap() {
                Some(Event::Item(e)) if e.value == Some(json!({ "run": i })) => break,
                Some(_) => {}
                None => panic!("run {i}: the write made before close never arrived"),
            }
        }
    }
    a.node.close(Duration::from_secs(5)).await.unwrap();
}

//! Sync v2's lanes against live nodes: a bulk-class collection syncs over the
//! bulk lane before and after the nodes meet; a raw v2 peer that breaks the
//! lane rules (an unknown lane tag, a reconciliation frame on the bulk lane)
//! is cut off.

use std::time::Duration;

use serde_json::json;

use crate::node::test_support::raw_connection_offering;
use crate::policy::{CollectionPolicy, Policies, Priority};
use crate::transport::router::open_stream;
use crate::wire::{write_frame, Frame};
use crate::{Event, Formation, Node, NodeConfig, PeerEvent};

const WAIT: Duration = Duration::from_secs(20);

async fn open(f: &Formation, policies: Policies) -> (Node, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = NodeConfig::new(dir.path(), f.clone())
        .listen("127.0.0.1:0".parse().unwrap())
        .policies(policies);
    (Node::open(cfg).await.unwrap(), dir)
}

async fn dropped(events: crate::Subscription<PeerEvent>) -> String {
    loop {
        match events.next_timeout(WAIT).await {
            Ok(Some(Event::Item(PeerEvent::Disconnected { reason, .. }))) => return reason,
            Ok(Some(_)) => {}
            other => panic!("the node kept the session: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_class_syncs_before_and_after_the_nodes_meet() {
    let f = Formation::new("lanes", [3; 32]);
    let p = Policies::default()
        .with(
            "tiles",
            CollectionPolicy::default().priority(Priority::Bulk),
        )
        .unwrap()
        .with("logs", CollectionPolicy::default().priority(Priority::Low))
        .unwrap()
        .with(
            "alerts",
            CollectionPolicy::default().priority(Priority::Critical),
        )
        .unwrap();
    let (a, _da) = open(&f, p.clone()).await;
    let (b, _db) = open(&f, p).await;
    for c in ["tiles", "logs", "alerts", "plain"] {
        for i in 0..20 {
            a.put(c, &format!("before{i}"), &json!({"i": i}))
                .await
                .unwrap();
        }
    }
    b.connect(&a.peer_addr()).await.unwrap();
    for c in ["tiles", "logs", "alerts", "plain"] {
        for i in 0..20 {
            a.put(c, &format!("after{i}"), &json!({"i": i}))
                .await
                .unwrap();
        }
        // and the other way
        b.put(c, "from-b", &json!({"b": true})).await.unwrap();
    }
    let all = |n: &Node| {
        ["tiles", "logs", "alerts", "plain"]
            .iter()
            .all(|c| n.list(c, &Default::default()).unwrap().ids.len() == 41)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(all(&a) && all(&b)) {
        assert!(tokio::time::Instant::now() < deadline, "not converged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_lane_tag_ends_the_session() {
    let f = Formation::new("lanes", [3; 32]);
    let (a, _da) = open(&f, Policies::default()).await;
    let reason = {
        let events = dropped(a.subscribe_peers());
        let (ep, conn) =
            raw_connection_offering(&a, &f, iroh::SecretKey::generate(), &[1, 2]).await;
        let (mut send, _recv) = open_stream(&conn, "sync", &[2]).await.unwrap();
        send.write_all(&[7]).await.unwrap();
        let r = events.await;
        ep.close().await;
        r
    };
    assert!(reason.contains("sync streams"), "{reason}");
    a.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_frame_on_the_bulk_lane_ends_the_session() {
    let f = Formation::new("lanes", [3; 32]);
    let (a, _da) = open(&f, Policies::default()).await;
    let events = dropped(a.subscribe_peers());
    let (ep, conn) = raw_connection_offering(&a, &f, iroh::SecretKey::generate(), &[2]).await;
    let (mut main, _r0) = open_stream(&conn, "sync", &[2]).await.unwrap();
    main.write_all(&[0]).await.unwrap();
    let (mut bulk, _r1) = open_stream(&conn, "sync", &[2]).await.unwrap();
    bulk.write_all(&[1]).await.unwrap();
    write_frame(
        &mut bulk,
        &Frame::Reconcile {
            start: true,
            msg: vec![],
        },
    )
    .await
    .unwrap();
    let reason = events.await;
    ep.close().await;
    assert!(reason.contains("bulk lane"), "{reason}");
    a.close(Duration::from_secs(5)).await.unwrap();
}

//! Subscriptions and close at their edges: snapshots larger than the live
//! queue, the last event of a busy document, and close releasing the store
//! while readers are still at work.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use peat_mesh::{Event, Node, Origin};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_the_queue_arrives_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), formation());
    cfg.subscription_capacity = 64;
    let node = Node::open(cfg).await.unwrap();
    for i in 0..3000 {
        node.put("big", &format!("d{i:05}"), &json!({ "i": i }))
            .await
            .unwrap();
    }
    node.delete("big", "d00007").await.unwrap();
    let sub = node.subscribe("big", None, true).unwrap();
    // a live change while the snapshot is being read comes after it
    node.put("big", "d00001", &json!({"i": -1})).await.unwrap();
    let mut ids = Vec::new();
    let mut live = Vec::new();
    while let Ok(Some(ev)) = sub.next_timeout(Duration::from_millis(500)).await {
        match ev {
            Event::Item(e) if e.origin == Origin::Snapshot => ids.push(e.key.id().to_string()),
            Event::Item(e) => live.push(e),
            Event::Lagged(n) => panic!("snapshot lost {n} events to lag"),
        }
    }
    assert_eq!(ids.len(), 2999);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(!ids.contains(&"d00007".to_string()));
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].value, Some(json!({"i": -1})));
    node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_event_for_a_document_is_its_latest_state() {
    let node = open().await;
    for round in 0..5 {
        let sub = node.node.subscribe("hot", Some("doc"), false).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let n = node.node.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        n.merge_patch("hot", "doc", &json!({ format!("w{w}"): i, "round": round }))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let latest = node.node.get("hot", "doc").unwrap();
        let mut last = None;
        while let Some(ev) = sub.try_next() {
            if let Event::Item(e) = ev {
                last = Some(e.value);
            }
        }
        assert_eq!(last, Some(latest), "round {round}: a stale last event");
    }
    node.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_releases_the_store_even_with_readers_at_work() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..10 {
        let node = Node::open(config(dir.path(), formation())).await.unwrap();
        node.put("c", &format!("r{round}"), &json!({"round": round}))
            .await
            .unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (n, stop) = (node.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = n.list("c", &Default::default());
                        let _ = n.document_count();
                    }
                })
            })
            .collect();
        node.close(Duration::from_secs(5)).await.unwrap();
        // reopened at once, while the readers still call the closed node
        let again = Node::open(config(dir.path(), formation())).await.unwrap();
        assert_eq!(
            again.get("c", &format!("r{round}")).unwrap(),
            Some(json!({"round": round}))
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        again.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test]
async fn a_node_with_an_unset_secret_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    // Formation::new takes any bytes; the node refuses all zeros and leaves nothing behind.
    let f = peat_mesh::Formation::new("f", [0; 32]);
    let err = Node::open(config(&dir.path().join("n"), f))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), peat_mesh::ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("all zeros"), "{err}");
    assert!(!dir.path().join("n").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_are_listed_with_live_counts_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), formation())).await.unwrap();
    // names chosen to sort around the key separator: "a", "a\u{1}", "ab"
    for (c, n) in [("a", 3), ("a\u{1}", 1), ("ab", 2), ("gone", 2), ("z", 1)] {
        for i in 0..n {
            node.put(c, &format!("d{i}"), &json!({ "i": i }))
                .await
                .unwrap();
        }
    }
    node.delete("a", "d0").await.unwrap();
    for i in 0..2 {
        node.delete("gone", &format!("d{i}")).await.unwrap();
    }
    let all: Vec<(String, u64)> = node
        .collections(None, 100)
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.documents))
        .collect();
    let want = [("a", 2), ("a\u{1}", 1), ("ab", 2), ("z", 1)];
    let want: Vec<(String, u64)> = want.iter().map(|(c, n)| (c.to_string(), *n)).collect();
    assert_eq!(all, want, "only collections with live documents");
    // paging: two at a time, each page after the last name
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = node.collections(after.as_deref(), 2).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|c| c.name.clone());
        paged.extend(page.into_iter().map(|c| (c.name, c.documents)));
    }
    assert_eq!(paged, want);
    for bad in [0, peat_mesh::MAX_COLLECTIONS_PAGE + 1] {
        let err = node.collections(None, bad).unwrap_err();
        assert_eq!(err.kind(), peat_mesh::ErrorKind::InvalidArgument);
    }
    node.close(Duration::from_secs(5)).await.unwrap();
}

//! Data lifecycle on live nodes: TTL expiry that converges and cannot be
//! undone by a peer that was offline, tombstones that expire, retention by
//! count and by bytes (and what retention removed is not fetched back), and
//! the two delete rules.
//!
//! Lifetimes run on the wall clock, so old documents are made by importing
//! Automerge changes stamped in the past, never by waiting.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use peat_mesh::automerge::transaction::{CommitOptions, Transactable};
use peat_mesh::automerge::{AutoCommit, ROOT};
use peat_mesh::{CollectionPolicy, DeleteRule, Node, Policies};
use serde_json::json;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Automerge bytes of a document `{"n": n}` last changed `age` ago.
fn aged_doc(n: i64, age: Duration) -> Vec<u8> {
    let mut d = AutoCommit::new();
    d.put(ROOT, "n", n).unwrap();
    d.commit_with(CommitOptions::default().with_time(now_ms() - age.as_millis() as i64));
    d.save()
}

/// A deleted document (the store's tombstone) deleted `age` ago.
fn aged_tombstone(age: Duration) -> Vec<u8> {
    let mut d = AutoCommit::new();
    d.put(ROOT, "__peat_deleted", true).unwrap();
    d.commit_with(CommitOptions::default().with_time(now_ms() - age.as_millis() as i64));
    d.save()
}

const MIN: Duration = Duration::from_secs(60);

async fn open_with(policies: Policies) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), formation()).policies(policies))
        .await
        .unwrap();
    TestNode { node, dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_converges_and_a_peer_offline_meanwhile_cannot_bring_it_back() {
    init_tracing();
    let a = open().await;
    let b = open().await;
    let c_dir = tempfile::tempdir().unwrap();
    let c = Node::open(config(c_dir.path(), formation())).await.unwrap();
    connect_both(&b.node, &a.node).await;
    connect_both(&c, &a.node).await;
    // p1 last changed 20 minutes ago, p2 now, p3 20 minutes ago then edited now
    a.node
        .import("positions", "p1", &aged_doc(1, 20 * MIN))
        .await
        .unwrap();
    a.node
        .put("positions", "p2", &json!({"n": 2}))
        .await
        .unwrap();
    a.node
        .import("positions", "p3", &aged_doc(3, 20 * MIN))
        .await
        .unwrap();
    a.node
        .merge_patch("positions", "p3", &json!({"n": 33}))
        .await
        .unwrap();
    for n in [&b.node, &c] {
        assert!(
            eventually(WAIT, || ["p1", "p2", "p3"]
                .iter()
                .all(|id| n.get("positions", id).unwrap().is_some()))
            .await
        );
    }
    // C goes offline; the formation gives positions a 10-minute lifetime
    c.close(Duration::from_secs(5)).await.unwrap();
    let ttl = CollectionPolicy::default().ttl(10 * MIN);
    for n in [&a.node, &b.node] {
        n.set_policy("positions", ttl).unwrap();
        let r = n.collect_garbage().await.unwrap();
        assert_eq!(r.expired_documents, 1, "{r:?}");
        assert_eq!(n.get("positions", "p1").unwrap(), None);
        assert!(n.get("positions", "p2").unwrap().is_some());
        assert_eq!(n.get("positions", "p3").unwrap(), Some(json!({"n": 33})));
        let s = n.storage_stats().await.unwrap();
        assert_eq!((s.documents, s.expired_total), (2, 1), "{s:?}");
    }
    // C comes back without the policy (it never collected p1) and offers p1
    let c = Node::open(config(c_dir.path(), formation())).await.unwrap();
    assert!(c.get("positions", "p1").unwrap().is_some());
    connect_both(&c, &a.node).await;
    assert!(
        eventually(WAIT, || stats_now(&a.node).refused_expired_total >= 1).await,
        "A never refused p1"
    );
    assert_eq!(a.node.get("positions", "p1").unwrap(), None);
    // a write after the refusal arrives: the session went on
    c.put("positions", "p4", &json!({"n": 4})).await.unwrap();
    assert!(eventually(WAIT, || a.node.get("positions", "p4").unwrap().is_some()).await);
    assert_eq!(a.node.get("positions", "p1").unwrap(), None);
    assert_eq!(a.node.collect_garbage().await.unwrap().expired_documents, 0);
    c.close(Duration::from_secs(5)).await.unwrap();
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

/// The node's storage counters, read from a plain closure (for `eventually`).
fn stats_now(n: &Node) -> peat_mesh::StorageStats {
    let n = n.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(n.storage_stats())
            .unwrap()
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_expire_and_fresh_ones_stay() {
    let a = open_with(
        Policies::default()
            .with("t", CollectionPolicy::default().tombstone_ttl(10 * MIN))
            .unwrap(),
    )
    .await;
    a.node
        .import("t", "old", &aged_tombstone(20 * MIN))
        .await
        .unwrap();
    a.node.put("t", "new", &json!({"x": 1})).await.unwrap();
    assert!(a.node.delete("t", "new").await.unwrap());
    let s = a.node.storage_stats().await.unwrap();
    assert_eq!((s.documents, s.tombstones), (0, 2), "{s:?}");
    let r = a.node.collect_garbage().await.unwrap();
    assert_eq!((r.purged_tombstones, r.expired_documents), (1, 0), "{r:?}");
    let s = a.node.storage_stats().await.unwrap();
    assert_eq!((s.tombstones, s.tombstones_purged_total), (1, 1), "{s:?}");
    // the purged document can be written again from scratch
    a.node
        .put("t", "old", &json!({"back": true}))
        .await
        .unwrap();
    assert_eq!(a.node.get("t", "old").unwrap(), Some(json!({"back": true})));
    a.node.close(Duration::from_secs(5)).await.unwrap();
    // and all of it is as it was after a reopen
    let node = Node::open(config(a.dir.path(), formation())).await.unwrap();
    assert_eq!(node.get("t", "old").unwrap(), Some(json!({"back": true})));
    let s = node.storage_stats().await.unwrap();
    assert_eq!((s.documents, s.tombstones), (1, 1), "{s:?}");
    node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_count_and_bytes_keeps_the_newest_and_refuses_the_rest() {
    init_tracing();
    let a = open().await;
    let b = open().await;
    // 25 documents, one a minute older than the next
    for i in 0..25 {
        let age = Duration::from_secs(60 * (30 - i as u64));
        a.node
            .import("log", &format!("e{i:02}"), &aged_doc(i, age))
            .await
            .unwrap();
        a.node
            .import("sized", &format!("e{i:02}"), &aged_doc(i, age))
            .await
            .unwrap();
    }
    connect_both(&b.node, &a.node).await;
    assert!(
        eventually(WAIT, || b
            .node
            .list("log", &Default::default())
            .unwrap()
            .ids
            .len()
            == 25)
        .await
    );
    let per_doc = a.node.storage_stats().await.unwrap().document_bytes / 50;
    assert!(per_doc > 0);
    b.node
        .set_policy("log", CollectionPolicy::default().max_documents(10))
        .unwrap();
    b.node
        .set_policy("sized", CollectionPolicy::default().max_bytes(per_doc * 3))
        .unwrap();
    let r = b.node.collect_garbage().await.unwrap();
    assert_eq!(r.evicted_documents, 15 + 22, "{r:?}");
    let ids = |c: &str| b.node.list(c, &Default::default()).unwrap().ids;
    let expect: Vec<String> = (15..25).map(|i| format!("e{i:02}")).collect();
    assert_eq!(ids("log"), expect);
    assert_eq!(ids("sized"), vec!["e22", "e23", "e24"]);
    // reconnecting offers the removed documents again: refused, not stored
    assert!(b.node.disconnect(&a.node.id()));
    assert!(
        eventually(WAIT, || b.node.connected_peers() == 0
            && a.node.connected_peers() == 0)
        .await
    );
    connect_both(&b.node, &a.node).await;
    a.node.put("log", "fresh", &json!({"n": 99})).await.unwrap();
    assert!(eventually(WAIT, || b.node.get("log", "fresh").unwrap().is_some()).await);
    assert!(eventually(WAIT, || stats_now(&b.node).refused_evicted_total >= 15 + 22).await);
    assert_eq!(ids("log").len(), 11);
    assert_eq!(ids("sized").len(), 3);
    // the fresh one pushes the oldest kept one out at the next pass
    assert_eq!(b.node.collect_garbage().await.unwrap().evicted_documents, 1);
    assert_eq!(ids("log").first().map(String::as_str), Some("e16"));
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_concurrent_with_an_edit_resolves_by_the_collections_rule() {
    init_tracing();
    let policies = Policies::default()
        .with(
            "notes",
            CollectionPolicy::default().delete_rule(DeleteRule::UpdateWins),
        )
        .unwrap();
    let a = open_with(policies.clone()).await;
    let b = open_with(policies).await;
    // the same starting document on both, before they ever meet
    for c in ["orders", "notes"] {
        a.node
            .put(c, "d", &json!({"title": "t", "body": "b"}))
            .await
            .unwrap();
        let bytes = a.node.export(c, "d").unwrap().unwrap();
        b.node.import(c, "d", &bytes).await.unwrap();
        // apart: A deletes, B edits
        assert!(a.node.delete(c, "d").await.unwrap());
        b.node
            .merge_patch(c, "d", &json!({"title": "edited"}))
            .await
            .unwrap();
    }
    connect_both(&b.node, &a.node).await;
    // delete wins in "orders" (the default rule)
    assert!(eventually(WAIT, || b.node.get("orders", "d").unwrap().is_none()).await);
    assert_eq!(a.node.get("orders", "d").unwrap(), None);
    // update wins in "notes": live on both with the edit's field
    for n in [&a.node, &b.node] {
        assert!(
            eventually(WAIT, || n.get("notes", "d").unwrap()
                == Some(json!({"title": "edited"})))
            .await,
            "{:?}",
            n.get("notes", "d")
        );
    }
    // same heads on both: the document converged
    let heads = |n: &Node| {
        n.export("notes", "d").unwrap().map(|b| {
            let d = peat_mesh::automerge::Automerge::load(&b).unwrap();
            let mut h = d.get_heads();
            h.sort();
            h
        })
    };
    assert!(eventually(WAIT, || heads(&a.node) == heads(&b.node)).await);
    let revived = a.node.storage_stats().await.unwrap().revived_total
        + b.node.storage_stats().await.unwrap().revived_total;
    assert!(revived >= 1);
    // a delete after seeing the edit still deletes
    a.node.delete("notes", "d").await.unwrap();
    assert!(eventually(WAIT, || b.node.get("notes", "d").unwrap().is_none()).await);
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_of_an_eager_collection_arrive_with_its_documents() {
    use peat_mesh::blobs::{BlobRef, BlobStatus};
    let policies = Policies::default()
        .with("photos", CollectionPolicy::default().eager_blobs(true))
        .unwrap();
    let a = open_with(policies.clone()).await;
    let b = open_with(policies).await;
    connect_both(&b.node, &a.node).await;
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let eager = a.node.blobs().add_bytes(bytes.clone()).await.unwrap();
    let lazy = a
        .node
        .blobs()
        .add_bytes(bytes.iter().map(|b| b ^ 1).collect::<Vec<u8>>())
        .await
        .unwrap();
    let r = |i: &peat_mesh::blobs::BlobInfo| {
        BlobRef {
            hash: i.hash,
            size: i.size,
            name: None,
        }
        .to_json()
    };
    a.node
        .put("photos", "p1", &json!({"img": r(&eager)}))
        .await
        .unwrap();
    a.node
        .put("notes", "n1", &json!({"img": r(&lazy)}))
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || matches!(
            b.node.blobs().status(eager.hash),
            Ok(BlobStatus::Complete(_))
        ))
        .await,
        "the eager collection's blob never arrived"
    );
    assert!(eventually(WAIT, || b.node.get("notes", "n1").unwrap().is_some()).await);
    // a collection without eager blobs leaves them to be fetched on demand
    assert!(matches!(
        b.node.blobs().status(lazy.hash),
        Ok(BlobStatus::Missing)
    ));
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_budget_evicts_bulk_then_older_normal_and_never_critical() {
    use peat_mesh::{Priority, StorageBudget};
    let policies = Policies::default()
        .with(
            "alerts",
            CollectionPolicy::default().priority(Priority::Critical),
        )
        .unwrap()
        .with(
            "tiles",
            CollectionPolicy::default().priority(Priority::Bulk),
        )
        .unwrap();
    // measure one document's stored size first
    let probe = open().await;
    probe
        .node
        .put("x", "y", &json!({"pad": "p".repeat(400)}))
        .await
        .unwrap();
    let per_doc = probe.node.storage_stats().await.unwrap().document_bytes;
    probe.node.close(Duration::from_secs(5)).await.unwrap();
    // budget: 12 documents; high water 75 % (9), low water 50 % (6)
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), formation()).policies(policies);
    cfg.storage_budget = Some(StorageBudget {
        max_bytes: per_doc * 12,
        high_water_pct: 75,
        low_water_pct: 50,
    });
    let node = Node::open(cfg).await.unwrap();
    // 4 critical, 3 bulk, 3 normal: 10 documents, past the high-water mark
    for (c, n) in [("alerts", 4), ("tiles", 3), ("notes", 3)] {
        for i in 0..n {
            node.put(c, &format!("{c}{i}"), &json!({"pad": "p".repeat(400)}))
                .await
                .unwrap();
        }
    }
    let events = node.subscribe_peers();
    let r = node.collect_garbage().await.unwrap();
    // down to 6: the 3 bulk, then the oldest normal
    assert_eq!(r.budget_evicted, 4, "{r:?}");
    assert!(r.stored_bytes <= per_doc * 6, "{r:?}");
    // observable: one event for the pass
    match events.next_timeout(WAIT).await.unwrap() {
        Some(peat_mesh::Event::Item(peat_mesh::PeerEvent::StorageEvicted {
            documents,
            stored_bytes,
        })) => assert_eq!((documents, stored_bytes), (4, r.stored_bytes)),
        other => panic!("expected StorageEvicted, got {other:?}"),
    }
    let ids = |c: &str| node.list(c, &Default::default()).unwrap().ids;
    assert_eq!(ids("tiles").len(), 0);
    assert_eq!(ids("notes"), vec!["notes1", "notes2"]);
    assert_eq!(ids("alerts").len(), 4);
    // critical data alone past the mark is never evicted
    for i in 4..12 {
        node.put(
            "alerts",
            &format!("alerts{i}"),
            &json!({"pad": "p".repeat(400)}),
        )
        .await
        .unwrap();
    }
    let r = node.collect_garbage().await.unwrap();
    assert_eq!(r.budget_evicted, 2, "only the normal ones go: {r:?}");
    assert_eq!(ids("alerts").len(), 12);
    let s = node.storage_stats().await.unwrap();
    assert_eq!(s.budget_evicted_total, 6);
    node.close(Duration::from_secs(5)).await.unwrap();
    // a bad budget is refused at open
    let mut bad = config(dir.path(), formation());
    bad.storage_budget = Some(StorageBudget {
        max_bytes: 100,
        high_water_pct: 50,
        low_water_pct: 80,
    });
    assert!(Node::open(bad).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_keeps_documents_no_peer_holds_until_a_round_proves_one_does() {
    use peat_mesh::StorageBudget;
    init_tracing();
    let policies = Policies::default()
        .with(
            "reports",
            CollectionPolicy::default().keep_until_delivered(true),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), formation()).policies(policies);
    // a budget of one byte: everything is past its mark
    cfg.storage_budget = Some(StorageBudget::new(1));
    cfg.anti_entropy_interval = Duration::from_millis(200);
    // garbage collection on its own schedule: each pass that evicts says so
    cfg.gc_interval = Duration::from_millis(100);
    let a = Node::open(cfg).await.unwrap();
    let events = a.subscribe_peers();
    // Waits for storage-evicted events adding up to `n` documents.
    let evicted = |n: u64| {
        let events = &events;
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            let mut got = 0;
            while got < n {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match events.next_timeout(left).await.unwrap() {
                    Some(peat_mesh::Event::Item(peat_mesh::PeerEvent::StorageEvicted {
                        documents,
                        ..
                    })) => got += documents,
                    Some(_) => {}
                    None => panic!("{got} of {n} documents evicted"),
                }
            }
            got
        }
    };
    for i in 0..3 {
        a.put("reports", &format!("r{i}"), &json!({"i": i}))
            .await
            .unwrap();
        a.put("notes", &format!("n{i}"), &json!({"i": i}))
            .await
            .unwrap();
    }
    // alone: the notes go, the reports stay (no peer holds them)
    assert_eq!(evicted(3).await, 3);
    let ids = |n: &Node, c: &str| n.list(c, &Default::default()).unwrap().ids;
    assert_eq!(ids(&a, "reports").len(), 3);
    assert_eq!(ids(&a, "notes").len(), 0);
    // a peer gets them; once a reconciliation round shows it holds them,
    // the budget may evict them here
    let b = open().await;
    connect_both(&b.node, &a).await;
    assert!(eventually(WAIT, || ids(&b.node, "reports").len() == 3).await);
    assert_eq!(evicted(3).await, 3);
    assert_eq!(ids(&a, "reports").len(), 0);
    assert_eq!(ids(&b.node, "reports").len(), 3);
}

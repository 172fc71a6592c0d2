//! Latest-only collections on live nodes: history stays one change however
//! many updates, so what sync sends stays the size of the state
//! (`peat-bench latest-only` measures the bytes per update), and two nodes that both
//! edit a document converge on the newer edit (last writer wins, per
//! document).

mod common;

use std::time::Duration;

use common::*;
use peat_mesh::{CollectionPolicy, Node, Policies, SyncMode};
use serde_json::json;

fn latest() -> Policies {
    Policies::default()
        .with(
            "pos",
            CollectionPolicy::default().sync(SyncMode::LatestOnly),
        )
        .unwrap()
}

async fn open_latest() -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), formation()).policies(latest()))
        .await
        .unwrap();
    TestNode { node, dir }
}

fn changes(n: &Node, c: &str, id: &str) -> usize {
    let bytes = n.export(c, id).unwrap().unwrap();
    peat_mesh::automerge::Automerge::load(&bytes)
        .unwrap()
        .get_changes(&[])
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_stays_one_change_and_sync_bytes_per_update_stay_flat() {
    let a = open_latest().await;
    let b = open_latest().await;
    connect_both(&b.node, &a.node).await;
    let mut sizes = Vec::new();
    for round in 0..2i64 {
        for i in 0..200 {
            let v = round * 1000 + i;
            a.node
                .merge_patch("pos", "p1", &json!({"lat": v, "lon": -v}))
                .await
                .unwrap();
        }
        let want = json!({"lat": round * 1000 + 199, "lon": -(round * 1000 + 199)});
        assert!(
            eventually(WAIT, || b.node.get("pos", "p1").unwrap()
                == Some(want.clone()))
            .await
        );
        // Everything sync sends of the document is at most the document:
        // its size after 200 and after 400 updates.
        sizes.push(a.node.export("pos", "p1").unwrap().unwrap().len());
        for i in 0..200 {
            let v = round * 1000 + i;
            a.node
                .merge_patch("full", "p1", &json!({"lat": v, "lon": -v}))
                .await
                .unwrap();
        }
        assert!(
            eventually(WAIT, || b.node.get("full", "p1").unwrap()
                == Some(want.clone()))
            .await
        );
        // one change on both sides; the full-history twin keeps every one
        assert_eq!(changes(&a.node, "pos", "p1"), 1);
        assert!(eventually(WAIT, || changes(&b.node, "pos", "p1") == 1).await);
        assert_eq!(changes(&a.node, "full", "p1"), 200 * (round as usize + 1));
    }
    assert!(
        sizes[1] <= sizes[0] + 16 && sizes[1] < 400,
        "the document grew: {sizes:?}"
    );
    let pos = a.node.export("pos", "p1").unwrap().unwrap().len();
    let full = a.node.export("full", "p1").unwrap().unwrap().len();
    assert!(pos * 4 < full, "latest-only {pos} B, full history {full} B");
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_that_both_edit_converge_on_the_newer_edit() {
    let a = open_latest().await;
    let b = open_latest().await;
    // Both edit two documents apart. Which edit is newer is decided by the
    // rule (newest change time, then hash), read from each node's version:
    // no waiting for the clock to move.
    let (pa, pb) = (json!({"who": "a", "lat": 1}), json!({"who": "b", "lon": 2}));
    a.node.put("pos", "p", &pa).await.unwrap();
    b.node.put("pos", "p", &pb).await.unwrap();
    let (qa, qb) = (json!({"who": "a"}), json!({"who": "b"}));
    b.node.put("pos", "q", &qb).await.unwrap();
    a.node.put("pos", "q", &qa).await.unwrap();
    let rank = |n: &Node, id: &str| {
        let d =
            peat_mesh::automerge::Automerge::load(&n.export("pos", id).unwrap().unwrap()).unwrap();
        let newest = d.get_changes(&[]).iter().map(|c| c.timestamp()).max();
        (newest, d.get_heads().into_iter().max())
    };
    let winner = |id: &str, va: &serde_json::Value, vb: &serde_json::Value| {
        if rank(&a.node, id) > rank(&b.node, id) {
            va.clone()
        } else {
            vb.clone()
        }
    };
    let (p_wins, q_wins) = (winner("p", &pa, &pb), winner("q", &qa, &qb));
    connect_both(&b.node, &a.node).await;
    for n in [&a.node, &b.node] {
        assert!(
            eventually(WAIT, || n.get("pos", "p").unwrap() == Some(p_wins.clone())).await,
            "{:?}",
            n.get("pos", "p")
        );
        assert!(eventually(WAIT, || n.get("pos", "q").unwrap() == Some(q_wins.clone())).await);
    }
    let bytes = |n: &Node| n.export("pos", "p").unwrap().unwrap();
    assert!(eventually(WAIT, || bytes(&a.node) == bytes(&b.node)).await);
    // a delete is a version like any other
    a.node.delete("pos", "p").await.unwrap();
    assert!(eventually(WAIT, || b.node.get("pos", "p").unwrap().is_none()).await);
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_documents_merge_fields_within_the_window_and_rebase_past_it() {
    use peat_mesh::automerge::transaction::{CommitOptions, Transactable};
    let policies = Policies::default()
        .with(
            "track",
            CollectionPolicy::default().sync(SyncMode::Windowed(Duration::from_secs(3600))),
        )
        .unwrap();
    let open = || async {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(config(dir.path(), formation()).policies(policies.clone()))
            .await
            .unwrap();
        TestNode { node, dir }
    };
    let (a, b) = (open().await, open().await);
    // Within the window: the same document edited apart merges field by field.
    a.node.put("track", "t", &json!({"base": 0})).await.unwrap();
    let bytes = a.node.export("track", "t").unwrap().unwrap();
    b.node.import("track", "t", &bytes).await.unwrap();
    a.node
        .merge_patch("track", "t", &json!({"a": 1}))
        .await
        .unwrap();
    b.node
        .merge_patch("track", "t", &json!({"b": 2}))
        .await
        .unwrap();
    connect_both(&b.node, &a.node).await;
    let want = json!({"base": 0, "a": 1, "b": 2});
    for n in [&a.node, &b.node] {
        assert!(eventually(WAIT, || n.get("track", "t").unwrap() == Some(want.clone())).await);
    }
    assert!(
        changes(&a.node, "track", "t") >= 3,
        "history within the window is kept"
    );
    // Past the window: a document whose base is two hours old is re-based at
    // its next write, and the new base reaches the peer.
    let mut old = peat_mesh::automerge::AutoCommit::new();
    old.put(peat_mesh::automerge::ROOT, "v", 1).unwrap();
    let two_hours_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 7_200_000;
    old.commit_with(CommitOptions::default().with_time(two_hours_ago));
    old.put(peat_mesh::automerge::ROOT, "v", 2).unwrap();
    old.commit_with(CommitOptions::default().with_time(two_hours_ago + 1));
    a.node.import("track", "old", &old.save()).await.unwrap();
    assert_eq!(changes(&a.node, "track", "old"), 1);
    a.node
        .merge_patch("track", "old", &json!({"w": 3}))
        .await
        .unwrap();
    assert_eq!(
        changes(&a.node, "track", "old"),
        2,
        "a new base, then history again"
    );
    assert!(
        eventually(WAIT, || b.node.get("track", "old").unwrap()
            == Some(json!({"v": 2, "w": 3})))
        .await
    );
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

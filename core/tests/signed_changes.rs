//! Signed changes between live nodes: verified across three nodes in a line
//! (live pushes and reconciliation), authors answered on every node, and a
//! node that rejects unsigned changes refusing a peer's unsigned ones while
//! its signed ones keep flowing, without the two looping over the refusal.

mod common;

use std::time::Duration;

use common::{config, connect_both, eventually, formation, WAIT};
use peat_mesh::policy::SignaturePolicy;
use peat_mesh::{CollectionPolicy, Node, Policies};
use serde_json::json;
use tempfile::TempDir;

fn policies(p: SignaturePolicy) -> Policies {
    Policies::default()
        .with("orders", CollectionPolicy::default().signatures(p))
        .unwrap()
}

async fn open(p: SignaturePolicy) -> (Node, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), formation()).policies(policies(p));
    cfg.anti_entropy_interval = Duration::from_millis(200);
    (Node::open(cfg).await.unwrap(), dir)
}

async fn has(node: &Node, id: &str, field: &str, value: serde_json::Value) -> bool {
    eventually(WAIT, || {
        node.get("orders", id)
            .unwrap()
            .is_some_and(|d| d[field] == value)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_changes_are_verified_across_three_nodes() {
    let (a, _da) = open(SignaturePolicy::Reject).await;
    let (b, _db) = open(SignaturePolicy::Accept).await;
    let (c, _dc) = open(SignaturePolicy::Reject).await;
    // Written before any connection: reaches C by reconciliation.
    a.put("orders", "o0", &json!({"qty": 1})).await.unwrap();
    connect_both(&a, &b).await;
    connect_both(&c, &b).await;
    assert!(has(&c, "o0", "qty", json!(1)).await);
    // Written while connected: pushed live through B.
    a.put("orders", "o1", &json!({"qty": 2})).await.unwrap();
    assert!(has(&c, "o1", "qty", json!(2)).await);
    c.put("orders", "o1", &json!({"qty": 3})).await.unwrap();
    assert!(has(&a, "o1", "qty", json!(3)).await);

    for (name, node) in [("a", &a), ("b", &b), ("c", &c)] {
        let o0 = node.authors("orders", "o0").await.unwrap().unwrap();
        assert_eq!(o0.len(), 1);
        assert_eq!(o0[0].author, Some(a.id()));
        assert!(o0[0].valid);
        let o1 = node.authors("orders", "o1").await.unwrap().unwrap();
        let who: Vec<_> = o1.iter().map(|x| (x.author, x.valid)).collect();
        assert_eq!(
            who,
            vec![(Some(a.id()), true), (Some(c.id()), true)],
            "on {name}"
        );
    }
    assert_eq!(c.signature_stats().rejected, 0);
    assert!(c.signature_stats().verified >= 2);
    assert!(a.signature_stats().signed >= 2);
    // A collection without the policy carries no signatures.
    a.put("notes", "n", &json!({"t": "x"})).await.unwrap();
    assert!(eventually(WAIT, || c.get("notes", "n").unwrap().is_some()).await);
    let notes = c.authors("notes", "n").await.unwrap().unwrap();
    assert_eq!((notes[0].author, notes[0].valid), (None, false));
    for n in [a, b, c] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_changes_are_refused_without_latching_the_peer_out() {
    let (u, _du) = open(SignaturePolicy::Off).await; // signs nothing
    let (r, _dr) = open(SignaturePolicy::Reject).await;
    u.put("orders", "u1", &json!({"v": 1})).await.unwrap();
    connect_both(&u, &r).await;
    assert!(eventually(WAIT, || r.signature_stats().rejected >= 1).await);
    // Unsigned live changes: refused too, the one on top of u1 as well.
    u.put("orders", "u1", &json!({"v": 2})).await.unwrap();
    u.put("orders", "u2", &json!({"v": 1})).await.unwrap();
    assert!(eventually(WAIT, || r.signature_stats().rejected >= 3).await);

    // The writer starts signing: its new changes flow, those on an unsigned
    // change stay out.
    u.set_policy(
        "orders",
        CollectionPolicy::default().signatures(SignaturePolicy::Accept),
    )
    .unwrap();
    u.put("orders", "s1", &json!({"v": 1})).await.unwrap();
    assert!(has(&r, "s1", "v", json!(1)).await);
    u.put("orders", "u1", &json!({"v": 3})).await.unwrap();
    u.put("orders", "s1", &json!({"v": 2})).await.unwrap();
    assert!(has(&r, "s1", "v", json!(2)).await);
    assert_eq!(r.get("orders", "u1").unwrap(), None);
    assert_eq!(r.get("orders", "u2").unwrap(), None);

    // Reconciliation keeps running (a round every 200 ms) without the two
    // sending the refused documents back and forth in between: at most one
    // exchange per refused document per round.
    let before = r.sync_stats().received;
    let rounds =
        |s: &peat_mesh::sync::SyncStats| s.received.by_kind.get("Reconcile").map_or(0, |v| v.0);
    let start = rounds(&r.sync_stats()) + rounds(&u.sync_stats());
    assert!(
        eventually(WAIT, || rounds(&r.sync_stats()) + rounds(&u.sync_stats())
            >= start + 20)
        .await
    );
    let after = r.sync_stats().received;
    let changes = |t: &peat_mesh::sync::TrafficStats| t.by_kind.get("Changes").map_or(0, |v| v.0);
    let delta = changes(&after) - changes(&before);
    let round_delta = rounds(&r.sync_stats()) + rounds(&u.sync_stats()) - start;
    assert!(
        delta <= 2 * round_delta + 4,
        "{delta} Changes frames in {round_delta} reconciliation messages"
    );
    assert_eq!(r.get("orders", "u1").unwrap(), None);
    for n in [u, r] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

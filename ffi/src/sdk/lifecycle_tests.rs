//! Scenario 26 at the SDK layer: policies as JSON at open and at runtime,
//! garbage collection and storage counters, bad policies refused; and
//! scenario 27: bandwidth budgets.

use super::tests::{opts, serial};
use super::*;
use crate::error::ErrorCode;
use crate::handles;
use crate::records::NodeOptions;

#[test]
fn policies_garbage_collection_and_storage_counters_reach_the_sdk() {
    let _g = serial();
    let before = handles::live_handles();
    let dir = tempfile::tempdir().unwrap();
    let o = NodeOptions {
        policies_json: r#"{"collections": {"log": {"priority": "bulk", "max_documents": 3}}}"#
            .into(),
        ..opts(dir.path())
    };
    let a = node_open(&o, 5000, 0).unwrap();
    let log: serde_json::Value = serde_json::from_str(&node_policy(a, "log").unwrap()).unwrap();
    assert_eq!(log["priority"], "bulk");
    assert_eq!(log["max_documents"], 3);
    node_set_policy(a, Some("cache"), r#"{"ttl_secs": 3600}"#).unwrap();
    node_set_policy(a, None, r#"{"priority": "high"}"#).unwrap();
    let all: serde_json::Value = serde_json::from_str(&node_policies(a).unwrap()).unwrap();
    assert_eq!(all["default"]["priority"], "high");
    assert_eq!(all["collections"]["cache"]["ttl_secs"], 3600);
    assert!(node_remove_policy(a, "cache").unwrap());
    assert!(!node_remove_policy(a, "cache").unwrap());
    for i in 0..5 {
        put(a, "log", &format!("e{i}"), &format!(r#"{{"i": {i}}}"#)).unwrap();
    }
    let r = collect_garbage(a, 10_000).unwrap();
    assert_eq!((r.evicted_documents, r.expired_documents), (2, 0));
    let (ids, _) = list(a, "log", "", None, 10).unwrap();
    assert_eq!(ids, vec!["e2", "e3", "e4"]);
    assert!(delete(a, "log", "e4").unwrap());
    let s = storage_stats(a, 10_000).unwrap();
    assert_eq!((s.documents, s.tombstones, s.evicted_total), (2, 1, 2));
    assert!(s.gc_runs >= 1 && s.document_bytes > 0);
    for bad in [
        r#"{"priority": "urgent"}"#,
        r#"{"ttl_secs": 0}"#,
        "{",
        r#"{"x": 1}"#,
    ] {
        let e = node_set_policy(a, Some("log"), bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
    }
    assert_eq!(
        node_policy(a, "").unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    node_close(a, 5000).unwrap();
    assert_eq!(
        collect_garbage(a, 1000).unwrap_err().code,
        ErrorCode::InvalidHandle
    );
    let bad = NodeOptions {
        policies_json: "not json".into(),
        ..opts(dir.path())
    };
    assert_eq!(
        node_open(&bad, 5000, 0).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    // a storage budget: 1 byte, so every normal document goes at the next pass
    let budget_dir = tempfile::tempdir().unwrap();
    let o = NodeOptions {
        storage_budget_bytes: 1,
        ..opts(budget_dir.path())
    };
    let b = node_open(&o, 5000, 0).unwrap();
    for i in 0..3 {
        put(b, "tiles", &format!("t{i}"), r#"{"x": 1}"#).unwrap();
    }
    // a collection kept until delivered: no peer holds its document, so it stays
    node_set_policy(b, Some("orders"), r#"{"keep_until_delivered": true}"#).unwrap();
    let orders: serde_json::Value =
        serde_json::from_str(&node_policy(b, "orders").unwrap()).unwrap();
    assert_eq!(orders["keep_until_delivered"], true);
    put(b, "orders", "o1", r#"{"x": 1}"#).unwrap();
    let events = subscribe_peers(b).unwrap();
    let r = collect_garbage(b, 10_000).unwrap();
    assert_eq!(r.budget_evicted, 3);
    assert!(get(b, "orders", "o1").unwrap().is_some());
    // the order's bytes are what is left
    match next_peer_event(events, 5000).unwrap() {
        Some(crate::records::PeerEventRecord::StorageEvicted {
            documents,
            stored_bytes,
        }) => assert!(documents == 3 && stored_bytes > 0),
        other => panic!("expected StorageEvicted, got {other:?}"),
    }
    unsubscribe(events).unwrap();
    assert_eq!(storage_stats(b, 10_000).unwrap().budget_evicted_total, 3);
    node_close(b, 5000).unwrap();
    let bad = NodeOptions {
        storage_budget_bytes: 1000,
        storage_high_water_pct: 50,
        storage_low_water_pct: 80,
        ..opts(budget_dir.path())
    };
    assert_eq!(
        node_open(&bad, 5000, 0).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(handles::live_handles(), before);
}

/// Scenario 27 at the SDK layer: bandwidth budgets at open and at runtime,
/// datagrams past a budget dropped and counted, bad budgets refused.
#[test]
fn bandwidth_budgets_reach_the_sdk() {
    let _g = serial();
    let before = handles::live_handles();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node_open(&opts(da.path()), 5000, 0).unwrap();
    let o = NodeOptions {
        bandwidth_json: r#"{"per_peer": 1024}"#.into(),
        ..opts(db.path())
    };
    let b = node_open(&o, 5000, 0).unwrap();
    assert_eq!(node_bandwidth(b).unwrap(), r#"{"per_peer":1024}"#);
    connect(b, &node_addrs(a).unwrap()[0], 5000, 0).unwrap();
    let direct = crate::records::PublishOptionsRecord {
        ttl_ms: 10_000,
        hop_limit: 0,
        multicast: false,
        priority: String::new(),
    };
    let payload = [7u8; 900];
    let sent: u64 = (0..100)
        .map(|_| publish(b, "pos/b", &payload, false, direct.clone()).unwrap() as u64)
        .sum();
    assert!((1..=20).contains(&sent), "{sent}");
    let s = node_bandwidth_stats(b).unwrap();
    assert_eq!(s.dropped_datagrams, 100 - sent);
    assert!(s.bytes_limited >= 900 * sent, "{s:?}");
    let socket = r#"{"links":{"socket":40000}}"#;
    node_set_bandwidth(b, socket).unwrap();
    assert_eq!(node_bandwidth(b).unwrap(), socket);
    for bad in [
        r#"{"links": {"radio": 5000}}"#,
        r#"{"per_peer": 10}"#,
        r#"{"peer": 1}"#,
        "not json",
    ] {
        let e = node_set_bandwidth(b, bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
        assert_eq!(node_bandwidth(b).unwrap(), socket);
    }
    node_set_bandwidth(b, "{}").unwrap();
    assert_eq!(node_bandwidth(b).unwrap(), "{}");
    assert_eq!(
        publish(b, "pos/b", &payload, false, direct.clone()).unwrap(),
        1
    );
    // a message's class; an unknown one is refused
    let low = crate::records::PublishOptionsRecord {
        priority: "low".into(),
        ..direct.clone()
    };
    assert_eq!(publish(b, "pos/b", &payload, false, low).unwrap(), 1);
    let bad = crate::records::PublishOptionsRecord {
        priority: "urgent".into(),
        ..direct
    };
    assert_eq!(
        publish(b, "pos/b", &payload, false, bad).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    node_close(b, 5000).unwrap();
    node_close(a, 5000).unwrap();
    let bad = NodeOptions {
        bandwidth_json: r#"{"links": {"radio": 5000}}"#.into(),
        ..opts(db.path())
    };
    assert_eq!(
        node_open(&bad, 5000, 0).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(handles::live_handles(), before);
}

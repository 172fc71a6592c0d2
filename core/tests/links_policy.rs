//! Link rules of the PACE policy. Bandwidth honesty: with
//! `PacePolicy::bulk_max_level`, blob bytes never cross a link of a worse
//! level — a fetch started while the peer is reachable only over the
//! alternate waits (and says why when it gives up); once the primary is
//! back, it completes, over the primary. Per-collection rules
//! (`collection_max_level`): a collection held back from the alternate
//! arrives once the primary is back, while the others sync all along.

mod common;

use std::time::Duration;

use common::links::*;
use common::*;
use peat_mesh::blobs::FetchOptions;
use peat_mesh::links::PacePolicy;
use peat_mesh::ErrorKind;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_never_cross_a_link_the_policy_keeps_them_off() {
    init_tracing();
    let (m1, m2) = two_media();
    let pace = PacePolicy {
        bulk_max_level: Some(0),
        ..fast_pace()
    };
    let (a, _da) = open_linked(&m1, &m2, pace.clone()).await;
    let (b, _db) = open_linked(&m1, &m2, pace).await;
    b.connect(&links_only(&a)).await.unwrap();
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("primary")).await);
    let blob = vec![7u8; 2 << 20];
    let info = a.blobs().add_bytes(blob.clone()).await.unwrap();

    // The primary dies: documents still sync over the alternate...
    m1.set_up(false);
    let alternate_before = m2.stats().delivered_bytes;
    a.put("c", "during", &json!({"v": 1})).await.unwrap();
    assert!(eventually(WAIT, || b.get("c", "during").unwrap().is_some()).await);
    assert!(eventually(WAIT, || in_use(&b, &a).as_deref() == Some("alternate")).await);

    // ...but a blob fetch does not use it: it waits, then says why.
    let opts = |wait: u64| FetchOptions {
        providers: vec![a.id()],
        reconnect_wait: Duration::from_secs(wait),
        ..FetchOptions::default()
    };
    let e = b
        .blobs()
        .fetch(info.hash, opts(1))
        .wait()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(e.to_string().contains("link policy"), "{e}");
    let waiting = b.blobs().fetch(info.hash, opts(60));
    // Several probe rounds later (each crosses the alternate), still nothing.
    let probes = m2.stats().delivered;
    assert!(eventually(WAIT, || m2.stats().delivered >= probes + 40).await);
    assert_eq!(waiting.progress().done, 0, "{:?}", waiting.progress());

    // The primary returns: after the hold-down the fetch completes over it,
    // and the alternate never carried the blob.
    m1.set_up(true);
    let got = waiting.wait().await.unwrap();
    assert_eq!(got.size, blob.len() as u64);
    let on_alternate = m2.stats().delivered_bytes - alternate_before;
    assert!(
        on_alternate < (blob.len() / 4) as u64,
        "{on_alternate} bytes crossed the alternate"
    );
    assert!(m1.stats().delivered_bytes > blob.len() as u64);
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_waits_for_a_good_enough_link_while_the_others_sync() {
    init_tracing();
    let (m1, m2) = two_media();
    let pace = PacePolicy {
        collection_max_level: vec![("imagery".into(), 0)],
        ..fast_pace()
    };
    let (a, _da) = open_linked(&m1, &m2, pace.clone()).await;
    let (b, _db) = open_linked(&m1, &m2, pace).await;
    b.connect(&links_only(&a)).await.unwrap();
    a.put("imagery", "i0", &json!({"tile": 0})).await.unwrap();
    assert!(eventually(WAIT, || b.get("imagery", "i0").unwrap().is_some()).await);
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("primary")).await);

    // On the alternate: tracks sync, imagery is held back.
    m1.set_up(false);
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("alternate")).await);
    a.put("imagery", "i1", &json!({"tile": 1})).await.unwrap();
    a.put("tracks", "t1", &json!({"callsign": "ALPHA"}))
        .await
        .unwrap();
    assert!(eventually(WAIT, || b.get("tracks", "t1").unwrap().is_some()).await);
    let probes = m2.stats().delivered;
    assert!(eventually(WAIT, || m2.stats().delivered >= probes + 40).await);
    assert_eq!(
        b.get("imagery", "i1").unwrap(),
        None,
        "imagery crossed the alternate"
    );

    // The primary returns: after the hold-down, the held-back document goes.
    m1.set_up(true);
    assert!(eventually(WAIT, || b.get("imagery", "i1").unwrap().is_some()).await);
    assert_eq!(in_use(&a, &b).as_deref(), Some("primary"));
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

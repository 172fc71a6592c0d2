//! Bandwidth budgets on live nodes: a blob served under a per-peer budget
//! cannot go faster than it, a socket budget holds for all peers, datagrams a
//! budget has no room for are dropped and counted, and bad budgets are
//! refused at open and at runtime.

mod common;

use std::time::{Duration, Instant};

use common::*;
use peat_mesh::bandwidth::SOCKET_LINK;
use peat_mesh::blobs::FetchOptions;
use peat_mesh::{Bandwidth, ErrorKind, Node, PublishOptions};

async fn open_with(bandwidth: Bandwidth) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), formation()).bandwidth(bandwidth))
        .await
        .unwrap();
    TestNode { node, dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_served_under_a_budget_goes_no_faster_than_it() {
    init_tracing();
    // 50 kB/s to each peer
    let a = open_with(Bandwidth::unlimited().per_peer(50_000)).await;
    let b = open().await;
    connect_both(&b.node, &a.node).await;
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let info = a.node.blobs().add_bytes(blob.clone()).await.unwrap();
    let start = Instant::now();
    b.node
        .blobs()
        .fetch(info.hash, FetchOptions::default().from([a.node.id()]))
        .wait()
        .await
        .unwrap();
    let took = start.elapsed();
    // 200 kB less the first burst (16 KiB) at 50 kB/s: at least 3.6 s
    assert!(took >= Duration::from_millis(3_600), "{took:?}");
    let got = b
        .node
        .blobs()
        .read_range(info.hash, 0, 200_000)
        .await
        .unwrap();
    assert_eq!(got, blob);
    let s = a.node.bandwidth_stats();
    assert!(s.bytes_limited >= 200_000, "{s:?}");
    assert!(s.waits > 0 && s.waited >= Duration::from_secs(3), "{s:?}");
    // the receiving side, with no budget, limited nothing
    assert_eq!(b.node.bandwidth_stats().bytes_limited, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_set_at_runtime_applies_to_the_next_bytes_and_documents_still_sync() {
    init_tracing();
    let a = open().await;
    let b = open().await;
    connect_both(&b.node, &a.node).await;
    assert!(a.node.bandwidth().is_unlimited());
    a.node
        .set_bandwidth(Bandwidth::unlimited().link(SOCKET_LINK, 40_000))
        .unwrap();
    assert_eq!(
        a.node.bandwidth(),
        Bandwidth::unlimited().link(SOCKET_LINK, 40_000)
    );
    // 120 kB of documents (text that does not compress) through a 40 kB/s
    // socket budget
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut text = || -> String {
        (0..4_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (b'a' + (x % 26) as u8) as char
            })
            .collect()
    };
    let start = Instant::now();
    for i in 0..30 {
        a.node
            .put(
                "reports",
                &format!("r{i}"),
                &serde_json::json!({ "t": text() }),
            )
            .await
            .unwrap();
    }
    assert!(
        eventually(Duration::from_secs(30), || b
            .node
            .get("reports", "r29")
            .unwrap()
            .is_some()
            && b.node.get("reports", "r0").unwrap().is_some())
        .await
    );
    assert!(start.elapsed() >= Duration::from_millis(2_400));
    assert!(a.node.bandwidth_stats().bytes_limited >= 120_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_past_a_budget_are_dropped_and_counted() {
    init_tracing();
    let a = open_with(Bandwidth::unlimited().per_peer(1_024)).await;
    let b = open().await;
    connect_both(&b.node, &a.node).await;
    let payload = vec![7u8; 900];
    let opts = PublishOptions {
        hop_limit: 0,
        ..Default::default()
    };
    let mut taken = 0;
    for _ in 0..100 {
        taken += a.node.publish("pos", &payload, opts).unwrap();
    }
    // a burst of 16 KiB: about 16 datagrams of ~1 kB; the rest dropped, counted
    assert!((10..=20).contains(&taken), "{taken}");
    assert_eq!(
        a.node.bandwidth_stats().dropped_datagrams,
        100 - taken as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_budgets_are_refused_at_open_and_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let e = Node::open(
        config(dir.path(), formation()).bandwidth(Bandwidth::unlimited().link("radio", 10_000)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("no such link"), "{e}");
    let e =
        Node::open(config(dir.path(), formation()).bandwidth(Bandwidth::unlimited().per_peer(5)))
            .await
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let a = open().await;
    let e = a
        .node
        .set_bandwidth(Bandwidth::unlimited().link("wifi", 10_000))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(a.node.bandwidth().is_unlimited());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_budget_holds_on_the_link_carrying_the_peer_and_only_there() {
    use common::links::*;
    init_tracing();
    let (m1, m2) = two_media();
    let (a, _da) = open_linked(&m1, &m2, fast_pace()).await;
    let (b, _db) = open_linked(&m1, &m2, fast_pace()).await;
    b.connect(&links_only(&a)).await.unwrap();
    a.put("c", "d0", &serde_json::json!({"v": 0}))
        .await
        .unwrap();
    assert!(eventually(WAIT, || b.get("c", "d0").unwrap().is_some()).await);
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("primary")).await);
    let blob = |seed: u32| -> Vec<u8> {
        (0..100_000u32)
            .map(|i| (i.wrapping_mul(seed) % 251) as u8)
            .collect()
    };
    let fetch = |hash| {
        let b = b.clone();
        let from = a.id();
        async move {
            let start = Instant::now();
            b.blobs()
                .fetch(hash, FetchOptions::default().from([from]))
                .wait()
                .await
                .unwrap();
            start.elapsed()
        }
    };
    // a budget on the alternate link does not touch the primary
    a.set_bandwidth(Bandwidth::unlimited().link("alternate", 10_000))
        .unwrap();
    let first = a.blobs().add_bytes(blob(7919)).await.unwrap();
    fetch(first.hash).await;
    assert_eq!(a.bandwidth_stats().waits, 0);
    // one on the primary holds: 100 kB less a burst at 30 kB/s, at least 2.7 s
    a.set_bandwidth(Bandwidth::unlimited().link("primary", 30_000))
        .unwrap();
    let second = a.blobs().add_bytes(blob(104_729)).await.unwrap();
    let took = fetch(second.hash).await;
    assert!(took >= Duration::from_millis(2_700), "{took:?}");
    assert!(a.bandwidth_stats().waits > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_fetched_in_a_higher_class_overtakes_a_bulk_one_under_a_budget() {
    use peat_mesh::Priority;
    init_tracing();
    let a = open_with(Bandwidth::unlimited().link(SOCKET_LINK, 100_000)).await;
    let b = open().await;
    connect_both(&b.node, &a.node).await;
    let blob = |n: usize, seed: u32| -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(seed) % 251) as u8)
            .collect()
    };
    let tiles = a.node.blobs().add_bytes(blob(400_000, 7919)).await.unwrap();
    let photo = a
        .node
        .blobs()
        .add_bytes(blob(100_000, 104_729))
        .await
        .unwrap();
    let from = FetchOptions::default().from([a.node.id()]);
    // the bulk fetch runs first
    let bulk = b.node.blobs().fetch(tiles.hash, from.clone());
    let mut progress = bulk.watch();
    progress.wait_for(|p| p.done > 0).await.unwrap();
    // then one in the high class: it takes the budget first
    let high = b
        .node
        .blobs()
        .fetch(photo.hash, from.clone().priority(Priority::High));
    high.wait().await.unwrap();
    let at_high_done = bulk.progress();
    assert!(
        !at_high_done.finished && at_high_done.done < tiles.size,
        "{at_high_done:?}"
    );
    bulk.wait().await.unwrap();
}

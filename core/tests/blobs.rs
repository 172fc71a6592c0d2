//! Blob transfers between real nodes on loopback: verification, providers,
//! cancel and resume, pacing, garbage collection and admission.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, open, open_in, TestNode, WAIT};
use peat_mesh::blobs::{BlobHash, BlobRef, BlobStatus, FetchOptions, TransferProfile, LEAF_SIZE};
use peat_mesh::{ErrorKind, Formation, Node};
use serde_json::json;

/// Non-repeating test bytes.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; n];
    blake3::Hasher::new()
        .update(&[seed, 0xb1])
        .finalize_xof()
        .fill(&mut out);
    out
}

async fn pair() -> (TestNode, TestNode) {
    let a = open().await;
    let b = open().await;
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    (a, b)
}

async fn close(nodes: &[&TestNode]) {
    for n in nodes {
        n.node.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_verifies_reports_sha256_and_exports() {
    let (a, b) = pair().await;
    let data = bytes(5 * 1024 * 1024 + 123, 1);
    let info = a.node.blobs().add_bytes(data.clone()).await.unwrap();
    assert_eq!(info.hash, BlobHash::of(&data));
    assert_eq!(info.size, data.len() as u64);

    // from any connected peer that has it
    let t = b.node.blobs().fetch(info.hash, FetchOptions::default());
    let got = t.wait().await.unwrap();
    assert_eq!(got.hash, info.hash);
    assert_eq!(got.sha256, info.sha256, "SHA-256 computed on both sides");
    assert_eq!(t.progress().done, data.len() as u64);
    assert!(matches!(
        b.node.blobs().status(info.hash).unwrap(),
        BlobStatus::Complete(_)
    ));
    let part = b
        .node
        .blobs()
        .read_range(info.hash, 3_000_000, 70_000)
        .await
        .unwrap();
    assert_eq!(part, data[3_000_000..3_070_000]);
    let out = b.dir.path().join("export.bin");
    b.node.blobs().export(info.hash, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), data);

    // a hash nobody has
    let missing = b
        .node
        .blobs()
        .fetch(BlobHash::of(b"nobody has this"), FetchOptions::default());
    assert_eq!(
        missing.wait().await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    close(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_and_empty_blobs() {
    let (a, b) = pair().await;
    for data in [Vec::new(), b"x".to_vec(), bytes(65536, 2), bytes(65537, 3)] {
        let info = a.node.blobs().add_bytes(data.clone()).await.unwrap();
        let got = b
            .node
            .blobs()
            .fetch(info.hash, FetchOptions::default().from([a.node.id()]))
            .wait()
            .await
            .unwrap();
        assert_eq!(got.sha256, info.sha256);
        let back = b
            .node
            .blobs()
            .read_range(info.hash, 0, data.len() as u64 + 10)
            .await
            .unwrap();
        assert_eq!(back, data);
    }
    close(&[&a, &b]).await;
}

/// Damages a provider's stored copy so it serves altered bytes.
fn corrupt_stored_copy(dir: &std::path::Path, hash: BlobHash, at: u64) {
    use std::os::unix::fs::FileExt;
    let path = dir.join("blobs/complete").join(hash.to_hex()).join("data");
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(b"LIES", at).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_provider_is_caught_and_nothing_bad_is_stored() {
    let (a, b) = pair().await;
    let data = bytes(3 * 1024 * 1024, 4);
    let info = a.node.blobs().add_bytes(data.clone()).await.unwrap();
    corrupt_stored_copy(a.dir.path(), info.hash, 2_000_000);
    let t = b.node.blobs().fetch(
        info.hash,
        FetchOptions::default()
            .from([a.node.id()])
            .profile(TransferProfile::EDGE),
    );
    let err = t.wait().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(b.node.blobs().stats().bytes_rejected > 0);
    // not complete, cannot be exported, and the damaged range was never accepted
    assert!(b.node.blobs().info(info.hash).unwrap().is_none());
    let out = b.dir.path().join("never.bin");
    assert!(b.node.blobs().export(info.hash, &out).await.is_err());
    assert!(!out.exists());
    assert!(b
        .node
        .blobs()
        .read_range(info.hash, 2_000_000, 4)
        .await
        .is_err());
    // what was verified before the bad leaf is kept and readable
    assert_eq!(
        b.node.blobs().read_range(info.hash, 0, 1000).await.unwrap(),
        data[..1000]
    );
    close(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_share_a_fetch_and_a_liar_is_routed_around() {
    let a = open().await;
    let c = open().await;
    let b = open().await;
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    b.node.connect(&c.node.peer_addr()).await.unwrap();
    let data = bytes(48 * 1024 * 1024, 5);
    let ia = a.node.blobs().add_bytes(data.clone()).await.unwrap();
    let ic = c.node.blobs().add_bytes(data.clone()).await.unwrap();
    assert_eq!(ia.hash, ic.hash);

    let got = b
        .node
        .blobs()
        .fetch(ia.hash, FetchOptions::default())
        .wait()
        .await
        .unwrap();
    assert_eq!(got.sha256, ia.sha256);
    let (sa, sc) = (
        a.node.blobs().stats().bytes_served,
        c.node.blobs().stats().bytes_served,
    );
    assert!(sa > 0 && sc > 0, "both providers served: a={sa} c={sc}");
    assert!(sa + sc >= data.len() as u64);

    // Now A lies; a second fetcher D still completes, from C.
    let d = open().await;
    d.node.connect(&a.node.peer_addr()).await.unwrap();
    d.node.connect(&c.node.peer_addr()).await.unwrap();
    // every 4 MiB, so that whichever batches A is given contain bad bytes
    for at in (100..data.len() as u64).step_by(4 << 20) {
        corrupt_stored_copy(a.dir.path(), ia.hash, at);
    }
    let got = d
        .node
        .blobs()
        .fetch(
            ia.hash,
            FetchOptions::default().from([a.node.id(), c.node.id()]),
        )
        .wait()
        .await
        .unwrap();
    assert_eq!(got.sha256, ia.sha256);
    assert!(d.node.blobs().stats().bytes_rejected > 0);
    let out = d.dir.path().join("out.bin");
    d.node.blobs().export(ia.hash, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == data);
    close(&[&a, &b, &c, &d]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_leaves_a_resumable_partial() {
    let (a, b) = pair().await;
    let data = bytes(8 * 1024 * 1024, 6);
    let info = a.node.blobs().add_bytes(data.clone()).await.unwrap();
    let opts = FetchOptions::default()
        .from([a.node.id()])
        .profile(TransferProfile::EDGE)
        .rate_limit(8 * 1024 * 1024);
    let t = b.node.blobs().fetch(info.hash, opts.clone());
    // stop at a leaf that does not end a 4-leaf chunk
    assert!(
        eventually(WAIT, || {
            let d = t.progress().done;
            d > 2 * 1024 * 1024 && !(d / LEAF_SIZE).is_multiple_of(4)
        })
        .await
    );
    t.cancel();
    assert_eq!(t.wait().await.unwrap_err().kind(), ErrorKind::Cancelled);
    let present = match b.node.blobs().status(info.hash).unwrap() {
        BlobStatus::Partial { size, present } => {
            assert_eq!(size, data.len() as u64);
            present
        }
        s => panic!("expected a partial, got {s:?}"),
    };
    assert!(present >= 2 * 1024 * 1024);

    // resumed with another chunking (tactical, 4 leaves a chunk): held leaves
    // inside a chunk are still not fetched again
    let t = b.node.blobs().fetch(
        info.hash,
        opts.profile(TransferProfile::TACTICAL).rate_limit(u64::MAX),
    );
    let got = t.wait().await.unwrap();
    let p = t.progress();
    assert_eq!(got.sha256, info.sha256);
    assert_eq!(p.resumed, present, "resumed from exactly what was verified");
    assert_eq!(
        p.received,
        data.len() as u64 - present,
        "nothing fetched twice"
    );
    close(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discard_partial_starts_the_next_fetch_from_nothing() {
    let (a, b) = pair().await;
    let data = bytes(4 * 1024 * 1024, 9);
    let info = a.node.blobs().add_bytes(data.clone()).await.unwrap();
    let opts = FetchOptions::default()
        .from([a.node.id()])
        .profile(TransferProfile::EDGE);
    let t = b
        .node
        .blobs()
        .fetch(info.hash, opts.clone().rate_limit(2 * 1024 * 1024));
    assert!(eventually(WAIT, || t.progress().done >= LEAF_SIZE).await);
    // refused while the fetch runs
    let err = b.node.blobs().discard_partial(info.hash).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    t.cancel();
    assert_eq!(t.wait().await.unwrap_err().kind(), ErrorKind::Cancelled);
    assert!(matches!(
        b.node.blobs().status(info.hash).unwrap(),
        BlobStatus::Partial { .. }
    ));
    assert!(b.node.blobs().discard_partial(info.hash).await.unwrap());
    assert_eq!(
        b.node.blobs().status(info.hash).unwrap(),
        BlobStatus::Missing
    );
    assert!(!b.node.blobs().discard_partial(info.hash).await.unwrap());
    let t = b.node.blobs().fetch(info.hash, opts);
    assert_eq!(t.wait().await.unwrap().sha256, info.sha256);
    assert_eq!(t.progress().resumed, 0, "nothing was kept");
    // a complete blob is never discarded
    assert!(!b.node.blobs().discard_partial(info.hash).await.unwrap());
    assert!(b.node.blobs().info(info.hash).unwrap().is_some());
    close(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap_is_honoured_within_ten_percent() {
    let (a, b) = pair().await;
    let data = bytes(3 * 1024 * 1024, 7);
    let info = a.node.blobs().add_bytes(data).await.unwrap();
    let cap = 1024 * 1024;
    let t0 = Instant::now();
    let t = b.node.blobs().fetch(
        info.hash,
        FetchOptions::default()
            .from([a.node.id()])
            .profile(TransferProfile::EDGE)
            .rate_limit(cap),
    );
    t.wait().await.unwrap();
    let rate = info.size as f64 / t0.elapsed().as_secs_f64();
    eprintln!("capped at {cap} B/s, measured {rate:.0} B/s");
    assert!(
        rate <= cap as f64 * 1.10 && rate >= cap as f64 * 0.90,
        "rate {rate:.0} B/s vs cap {cap}"
    );
    close(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_spares_fetches_partials_references_and_recent_blobs() {
    let a = open().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path(), common::formation());
    cfg.blob_gc_grace = Duration::ZERO;
    let b = TestNode {
        node: Node::open(cfg).await.unwrap(),
        dir,
    };
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    let big = a
        .node
        .blobs()
        .add_bytes(bytes(6 * 1024 * 1024, 8))
        .await
        .unwrap();
    let loose = b.node.blobs().add_bytes(bytes(1000, 9)).await.unwrap();
    let kept = b.node.blobs().add_bytes(bytes(2000, 10)).await.unwrap();
    b.node
        .put(
            "missions",
            "m1",
            &json!({"name": "m1", "files": [BlobRef::from(&kept).to_json()]}),
        )
        .await
        .unwrap();

    let t = b.node.blobs().fetch(
        big.hash,
        FetchOptions::default()
            .from([a.node.id()])
            .profile(TransferProfile::EDGE)
            .rate_limit(4 * 1024 * 1024),
    );
    assert!(eventually(WAIT, || t.progress().done > 1024 * 1024).await);
    let report = b.node.blobs().gc().await.unwrap();
    assert_eq!(report.removed, vec![loose.hash]);
    assert_eq!(report.referenced, 1);
    assert!(b.node.blobs().info(kept.hash).unwrap().is_some());
    assert!(matches!(
        b.node.blobs().status(big.hash).unwrap(),
        BlobStatus::Partial { .. }
    ));
    let got = t.wait().await.unwrap();
    assert_eq!(got.hash, big.hash);

    // Referenced by a document: fetch_referenced on A's side pulls it back later,
    // and GC keeps it.
    b.node
        .put(
            "missions",
            "m2",
            &json!({"map": BlobRef::from(&got).to_json()}),
        )
        .await
        .unwrap();
    let report = b.node.blobs().gc().await.unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    // Deleting the document makes the blob collectable.
    b.node.delete("missions", "m2").await.unwrap();
    let report = b.node.blobs().gc().await.unwrap();
    assert_eq!(report.removed, vec![big.hash]);
    close(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_refer_to_blobs_and_peers_fetch_them_on_demand() {
    let (a, b) = pair().await;
    let tile = a.node.blobs().add_bytes(bytes(300_000, 11)).await.unwrap();
    let fw = a.node.blobs().add_bytes(bytes(70_000, 12)).await.unwrap();
    a.node
        .put(
            "packages",
            "p1",
            &json!({"tile": BlobRef::from(&tile).to_json(),
                    "parts": [{"fw": BlobRef { name: Some("fw.bin".into()), ..BlobRef::from(&fw) }.to_json()}]}),
        )
        .await
        .unwrap();
    assert!(eventually(WAIT, || b.node.get("packages", "p1").unwrap().is_some()).await);
    let refs = b.node.blobs().refs_of("packages", "p1").unwrap();
    assert_eq!(refs.len(), 2);
    let got = b
        .node
        .blobs()
        .fetch_referenced("packages", "p1", FetchOptions::default())
        .await
        .unwrap();
    let mut hashes: Vec<_> = got.iter().map(|i| i.hash).collect();
    hashes.sort();
    let mut want = vec![tile.hash, fw.hash];
    want.sort();
    assert_eq!(hashes, want);
    close(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_formation_cannot_fetch() {
    let a = open().await;
    let info = a.node.blobs().add_bytes(bytes(200_000, 13)).await.unwrap();
    let other = open_in(Formation::new("other", [9; 32])).await;
    assert!(other.node.connect(&a.node.peer_addr()).await.is_err());
    let mut opts = FetchOptions::default().from([a.node.id()]);
    opts.reconnect_wait = Duration::from_millis(500);
    let err = other
        .node
        .blobs()
        .fetch(info.hash, opts)
        .wait()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotFound | ErrorKind::Network),
        "{err}"
    );
    assert_eq!(a.node.blobs().stats().bytes_served, 0);
    assert!(other.node.blobs().info(info.hash).unwrap().is_none());
    close(&[&a, &other]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_survives_a_dropped_link() {
    let (a, b) = pair().await;
    let data = bytes(8 * 1024 * 1024, 14);
    let info = a.node.blobs().add_bytes(data).await.unwrap();
    let t = b.node.blobs().fetch(
        info.hash,
        FetchOptions::default()
            .from([a.node.id()])
            .rate_limit(8 * 1024 * 1024),
    );
    assert!(eventually(WAIT, || t.progress().done > 2 * 1024 * 1024).await);
    assert!(b.node.disconnect(&a.node.id()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.node.connect(&a.node.peer_addr()).await.unwrap();
    let got = t.wait().await.unwrap();
    assert_eq!(got.sha256, info.sha256);
    let p = t.progress();
    // At most the chunk in flight (256 KiB) was fetched twice.
    assert!(
        p.received <= info.size + TransferProfile::TACTICAL.chunk_size,
        "received {} for {}",
        p.received,
        info.size
    );
    close(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_reader_and_add_file_stream() {
    let a = open().await;
    let data = bytes(3 * 1024 * 1024 + 7, 15);
    let path = a.dir.path().join("src.bin");
    std::fs::write(&path, &data).unwrap();
    let f = a.node.blobs().add_file(&path).await.unwrap();
    let r = a
        .node
        .blobs()
        .add_reader(std::io::Cursor::new(data.clone()))
        .await
        .unwrap();
    assert_eq!(f, r);
    assert_eq!(a.node.blobs().list().unwrap().len(), 1);
    assert_eq!(
        a.node
            .blobs()
            .add_file(a.dir.path().join("missing"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    close(&[&a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_a_transfer_in_flight_is_prompt_and_keeps_the_partial() {
    let (a, b) = pair().await;
    let info = a
        .node
        .blobs()
        .add_bytes(bytes(4 * 1024 * 1024, 16))
        .await
        .unwrap();
    let t = b.node.blobs().fetch(
        info.hash,
        FetchOptions::default()
            .from([a.node.id()])
            .rate_limit(1024 * 1024),
    );
    assert!(eventually(WAIT, || t.progress().done > 512 * 1024).await);
    let t0 = Instant::now();
    b.node.close(Duration::from_secs(3)).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(t.wait().await.unwrap_err().kind(), ErrorKind::Cancelled);
    // Reopened, the partial is still there and a fetch completes it.
    let b2 = Node::open(common::config(b.dir.path(), common::formation()))
        .await
        .unwrap();
    assert!(matches!(
        b2.blobs().status(info.hash).unwrap(),
        BlobStatus::Partial { .. }
    ));
    b2.connect(&a.node.peer_addr()).await.unwrap();
    let t = b2.blobs().fetch(info.hash, FetchOptions::default());
    assert_eq!(t.wait().await.unwrap().sha256, info.sha256);
    assert!(t.progress().resumed > 512 * 1024);
    b2.close(Duration::from_secs(5)).await.unwrap();
    a.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_fetches_are_listed_until_they_end() {
    let (a, b) = pair().await;
    let info = a.node.blobs().add_bytes(bytes(4 << 20, 7)).await.unwrap();
    assert!(b.node.blobs().transfers().is_empty());
    // slow enough to be caught running: 4 MiB at 256 KiB/s
    let opts = FetchOptions {
        rate_limit: Some(256 << 10),
        ..FetchOptions::default()
    };
    let t = b.node.blobs().fetch(info.hash, opts);
    let listed = b.node.blobs().transfers();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].hash(), info.hash);
    // the listed handle is the running transfer: its progress moves, and
    // cancelling it ends the fetch
    let mut progress = listed[0].watch();
    while progress.borrow_and_update().done == 0 {
        progress.changed().await.unwrap();
    }
    listed[0].cancel();
    assert!(t.wait().await.is_err());
    assert!(b.node.blobs().transfers().is_empty());
    close(&[&a, &b]).await;
}

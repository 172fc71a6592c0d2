//! Store tests.

use super::*;
use proptest::prelude::*;

fn opts() -> StoreOptions {
    StoreOptions {
        cache_docs: 4,
        actor: ActorId::random(),
    }
}

fn put(store: &Store, key: &DocKey, v: serde_json::Value) -> Committed {
    store
        .update(
            key,
            true,
            |doc| {
                doc.transact::<_, _, Error>(|tx| {
                    super::super::put_map(tx, &automerge::ROOT, v.as_object().unwrap())
                })
                .map_err(|f| f.error)?;
                Ok(())
            },
            |_| {},
            |_, _| {},
        )
        .unwrap()
        .unwrap()
        .1
        .unwrap()
}

/// A disk that stalls (here: another write transaction holds redb's
/// writer lock): writes fill the queue, then the writer waits instead of
/// piling up more; once the disk moves every write lands.
#[test]
fn a_full_writer_queue_makes_writers_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), opts()).unwrap());
    let db = store.db.read().unwrap().clone().unwrap();
    let stall = db.begin_write().unwrap();
    let total = WRITER_QUEUE + 4096 + 100; // more than queue + one batch
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..total {
                let key = DocKey::new("q", format!("d{i}")).unwrap();
                put(&store, &key, serde_json::json!({"i": i}));
            }
        })
    };
    let pending = || -> usize {
        store
            .cache
            .locked()
            .iter()
            .map(|(_, c)| c.pending.load(Ordering::Acquire))
            .sum()
    };
    // the queue fills: the writer thread holds one batch, the queue the rest
    while pending() <= WRITER_QUEUE {
        assert!(!writer.is_finished(), "every write was taken at once");
        std::thread::yield_now();
    }
    assert!(
        !writer.is_finished(),
        "the writer did not wait at a full queue"
    );
    assert!(
        pending() <= WRITER_QUEUE + 4096,
        "{} writes pending",
        pending()
    );
    stall.abort().unwrap();
    drop(db);
    writer.join().unwrap();
    assert!(store.flush_blocking());
    assert_eq!(store.len().unwrap() as usize, total);
    store.close().unwrap();
}

/// Many writers at once through the bounded writer queue: every write
/// lands and queued writes stay within the queue plus one batch.
#[test]
fn writes_past_the_writer_queue_wait_instead_of_piling_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), opts()).unwrap());
    // More writers than the queue holds, each writing as fast as it can.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..(WRITER_QUEUE / 2) {
                    let key = DocKey::new("q", format!("t{t}-{i}")).unwrap();
                    put(&store, &key, serde_json::json!({"i": i}));
                }
            })
        })
        .collect();
    let mut most = 0;
    while threads.iter().any(|t| !t.is_finished()) {
        let pinned: usize = store
            .cache
            .locked()
            .iter()
            .map(|(_, c)| c.pending.load(Ordering::Acquire))
            .sum();
        most = most.max(pinned);
        std::thread::yield_now();
    }
    for t in threads {
        t.join().unwrap();
    }
    // queued writes never exceed the queue plus one batch being committed
    assert!(most <= WRITER_QUEUE + 4096, "{most} writes pending");
    assert!(store.flush_blocking());
    assert_eq!(store.len().unwrap() as usize, 4 * (WRITER_QUEUE / 2));
    store.close().unwrap();
}

#[tokio::test]
async fn the_cache_returns_to_its_capacity_after_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), opts()).unwrap();
    // a burst: many cells pinned by queued writes at once
    let mut acks = Vec::new();
    for i in 0..300 {
        acks.push(put(
            &store,
            &DocKey::new("c", format!("d{i}")).unwrap(),
            serde_json::json!({"i": i}),
        ));
    }
    for c in acks {
        c.durable.await.unwrap().unwrap();
    }
    // once committed, ordinary use brings the cache back to its bound
    for i in 0..100 {
        store
            .read(
                &DocKey::new("c", format!("d{}", i * 3)).unwrap(),
                |_| Ok(()),
            )
            .unwrap();
    }
    assert!(
        store.cache.locked().len() <= store.cache_cap,
        "{}",
        store.cache.locked().len()
    );
    store.close().unwrap();
}

#[tokio::test]
async fn survives_reopen_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let key = DocKey::new("c", "d").unwrap();
    {
        let store = Store::open(&path, opts()).unwrap();
        for i in 0..(COMPACT_AFTER * 2 + 5) {
            put(&store, &key, serde_json::json!({"n": i}))
                .durable
                .await
                .unwrap()
                .unwrap();
        }
        // churn the cache so the doc is reloaded from rows
        for i in 0..10 {
            put(
                &store,
                &DocKey::new("c", format!("o{i}")).unwrap(),
                serde_json::json!({"i": i}),
            )
            .durable
            .await
            .unwrap()
            .unwrap();
        }
        let v = store.read(&key, super::super::read_doc).unwrap().unwrap();
        assert_eq!(v["n"], COMPACT_AFTER * 2 + 4);
        store.close().unwrap();
    }
    let store = Store::open(&path, opts()).unwrap();
    let v = store.read(&key, super::super::read_doc).unwrap().unwrap();
    assert_eq!(v["n"], COMPACT_AFTER * 2 + 4);
    assert_eq!(store.len().unwrap(), 11);
    assert_eq!(store.versions(|_, _| true).unwrap().len(), 11);
    let meta = store.meta(&key).unwrap().unwrap();
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&meta.vid[..8]);
    assert_eq!(
        store.keys_for_version_prefixes(&[prefix, [0; 8]]).unwrap(),
        vec![key]
    );
    let page = store.list("c", "o", None, 4).unwrap();
    assert_eq!(page.ids, vec!["o0", "o1", "o2", "o3"]);
    let page2 = store.list("c", "o", page.next.as_deref(), 100).unwrap();
    assert_eq!(page2.ids.len(), 6);
    assert_eq!(page2.next, None);
}

#[tokio::test]
async fn rewrite_shrinks_the_file_and_keeps_every_document() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let n = 2000;
    {
        let store = Store::open(&path, opts()).unwrap();
        for i in 0..n {
            let key = DocKey::new("c", format!("d{i:05}")).unwrap();
            put(
                &store,
                &key,
                serde_json::json!({"i": i, "pad": "p".repeat(100)}),
            )
            .durable
            .await
            .unwrap()
            .unwrap();
        }
        // Stop the store without its own rewrite, then rewrite unconditionally.
        store.writer.locked().take();
        if let Some(h) = store.writer_thread.locked().take() {
            h.join().unwrap();
        }
        let db = store.db.write().unwrap().take().unwrap();
        let Ok(db) = Arc::try_unwrap(db) else {
            panic!("the store must be the sole owner")
        };
        let before = std::fs::metadata(&path).unwrap().len();
        vacuum_if_bloated(db, &path, 0, 1.0).unwrap();
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after < before, "file {before} -> {after}");
        assert!(!vacuum_path(&path).exists());
    }
    let store = Store::open(&path, opts()).unwrap();
    assert_eq!(store.len().unwrap(), n);
    assert_eq!(store.versions(|_, _| true).unwrap().len() as u64, n);
    for i in [0, n / 2, n - 1] {
        let key = DocKey::new("c", format!("d{i:05}")).unwrap();
        let v = store.read(&key, super::super::read_doc).unwrap().unwrap();
        assert_eq!(v["i"], i);
    }
}

#[test]
fn leftover_rewrite_file_is_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::write(vacuum_path(&path), b"half-written copy").unwrap();
    let store = Store::open(&path, opts()).unwrap();
    assert!(!vacuum_path(&path).exists());
    store.close().unwrap();
}

#[test]
fn missing_doc_without_create_is_none_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), opts()).unwrap();
    let key = DocKey::new("c", "x").unwrap();
    assert!(store
        .update(&key, false, |_| Ok(()), |_| {}, |_, _| {})
        .unwrap()
        .is_none());
    // create, but change nothing: no placeholder
    let (_, c) = store
        .update(&key, true, |_| Ok(()), |_| {}, |_, _| {})
        .unwrap()
        .unwrap();
    assert!(c.is_none());
    assert!(store.read(&key, |_| Ok(())).unwrap().is_none());
    assert_eq!(store.len().unwrap(), 0);
}

#[test]
fn corrupt_rows_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let key = DocKey::new("c", "x").unwrap();
    {
        let store = Store::open(&path, opts()).unwrap();
        let c = put(&store, &key, serde_json::json!({"a": 1}));
        drop(c);
        store.close().unwrap();
    }
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(INCREMENTS)
            .unwrap()
            .insert((key.storage_key().as_str(), 0u64), [1u8, 2, 3].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path, opts()).unwrap();
    let err = store.read(&key, |_| Ok(())).err().unwrap();
    assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
}

proptest! {
    #[test]
    fn meta_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Meta::decode(&b);
    }

    #[test]
    fn meta_round_trips(ts in any::<u64>(), vid in any::<[u8; 32]>(), deleted in any::<bool>(), incr in any::<u32>(), seq in any::<u64>(), bytes in any::<u64>()) {
        let m = Meta { ts, vid, deleted, incr, next_seq: seq, bytes };
        prop_assert_eq!(Meta::decode(&m.encode()).unwrap(), m);
        // a row written before `bytes` existed reads with bytes 0
        let old = Meta::decode(&m.encode()[..53]).unwrap();
        prop_assert_eq!(old, Meta { bytes: 0, ..m });
    }
}

use std::time::Duration;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::ActorId;

use super::gc::collect_within;
use super::*;
use crate::policy::CollectionPolicy;
use crate::storage::{DocKey, Store, StoreOptions};

fn store(dir: &std::path::Path) -> Store {
    Store::open(
        &dir.join("s.redb"),
        StoreOptions {
            cache_docs: 4,
            actor: ActorId::random(),
        },
    )
    .unwrap()
}

/// Writes `{"i": i}` stamped at `ts` (ms).
fn write_at(store: &Store, collection: &str, id: &str, i: i64, ts: i64) {
    let key = DocKey::new(collection, id).unwrap();
    store
        .update(
            &key,
            true,
            |d| {
                d.transact_with(
                    |_| CommitOptions::default().with_time(ts),
                    |tx| tx.put(automerge::ROOT, "i", i),
                )
                .map(|_| ())
                .map_err(|f| crate::Error::Internal(f.error.to_string()))
            },
            |_| {},
            |_, _| {},
        )
        .unwrap();
}

#[test]
fn lifetimes_are_measured_from_the_newest_change() {
    let p = CollectionPolicy::default()
        .ttl(Duration::from_secs(10))
        .tombstone_ttl(Duration::from_secs(100));
    let meta = |ts, deleted| Meta {
        ts,
        vid: [0; 32],
        deleted,
        incr: 0,
        next_seq: 0,
        bytes: 0,
    };
    assert_eq!(removal(&p, &meta(0, false), 10_000), None);
    assert_eq!(removal(&p, &meta(0, false), 10_001), Some(Removal::Expired));
    // a tombstone lives by the tombstone ttl, not the ttl
    assert_eq!(removal(&p, &meta(0, true), 50_000), None);
    assert_eq!(
        removal(&p, &meta(0, true), 100_001),
        Some(Removal::Tombstone)
    );
    // no ttl: kept; a clock behind the change time: kept
    let forever = CollectionPolicy::default();
    assert_eq!(removal(&forever, &meta(0, false), u64::MAX), None);
    assert_eq!(removal(&p, &meta(u64::MAX, false), 5), None);
}

#[test]
fn refusals_allow_the_clock_skew_and_remembered_versions_are_bounded() {
    let lc = Lifecycle::new(
        Policies::default()
            .with(
                "c",
                CollectionPolicy::default().ttl(Duration::from_secs(10)),
            )
            .unwrap(),
    );
    let now = unix_ms();
    assert_eq!(lc.refusal("c", now - 5_000), None);
    // past the ttl but within the skew allowance: still taken
    assert_eq!(
        lc.refusal("c", now - 10_000 - CLOCK_SKEW.as_millis() as u64 / 2),
        None
    );
    assert_eq!(
        lc.refusal("c", now - 11_000 - CLOCK_SKEW.as_millis() as u64),
        Some(Refusal::Expired)
    );
    assert_eq!(lc.refusal("other", 0), None);
    // the memory of refused versions keeps the newest REFUSED_MEMORY
    for i in 0..REFUSED_MEMORY as u64 + 10 {
        let mut vid = [0u8; 32];
        vid[..8].copy_from_slice(&i.to_be_bytes());
        lc.refused(Refusal::Expired, &vid);
    }
    assert!(!lc.was_refused(&0u64.to_be_bytes()));
    assert!(!lc.was_refused(&9u64.to_be_bytes()));
    assert!(lc.was_refused(&10u64.to_be_bytes()));
    assert!(lc.was_refused(&(REFUSED_MEMORY as u64 + 9).to_be_bytes()));
    assert_eq!(lc.stats().refused_expired_total, REFUSED_MEMORY as u64 + 10);
}

#[test]
fn retention_past_its_window_is_cut_down_over_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let lc = Lifecycle::new(
        Policies::default()
            .with("log", CollectionPolicy::default().max_documents(3))
            .unwrap(),
    );
    let base = unix_ms() as i64 - 100_000;
    for i in 0..20 {
        write_at(&s, "log", &format!("e{i:02}"), i, base + i * 1000);
    }
    s.flush_blocking();
    // each pass considers the 5 oldest: 17 over the bound take 4 passes
    let mut evicted = Vec::new();
    for _ in 0..5 {
        evicted.push(collect_within(&lc, &s, 5).unwrap().evicted_documents);
    }
    assert_eq!(evicted, vec![5, 5, 5, 2, 0]);
    let mut left = Vec::new();
    s.scan("log", "", None, |id, _| {
        left.push(id.to_string());
        Ok(true)
    })
    .unwrap();
    assert_eq!(left, vec!["e17", "e18", "e19"]);
    // an unknown document no newer than the newest removed one is refused
    assert_eq!(
        lc.refusal("log", (base + 16_000) as u64),
        Some(Refusal::Evicted)
    );
    assert_eq!(lc.refusal("log", (base + 17_000) as u64), None);
    // without the retention rule, the floor goes at the next pass
    lc.policies.update(|p| Ok(p.remove("log"))).unwrap();
    collect_within(&lc, &s, 5).unwrap();
    assert_eq!(lc.refusal("log", 0), None);
    s.close().unwrap();
}

#[test]
fn a_document_changed_after_it_was_counted_is_spared() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let key = DocKey::new("c", "d").unwrap();
    write_at(&s, "c", "d", 1, 1_000);
    s.flush_blocking();
    let meta = s.meta(&key).unwrap().unwrap();
    // the document changes between the scan and its removal
    write_at(&s, "c", "d", 2, unix_ms() as i64);
    assert!(s.purge_if(&key, |m| m.ts == meta.ts).unwrap().is_none());
    assert!(s.meta(&key).unwrap().is_some());
    // unchanged, it goes: also when it is not loaded
    s.flush_blocking();
    let meta = s.meta(&key).unwrap().unwrap();
    for i in 0..8 {
        write_at(&s, "c", &format!("other{i}"), i, 5); // pushes d out of the cache
    }
    s.flush_blocking();
    assert!(s.purge_if(&key, |m| m.ts == meta.ts).unwrap().is_some());
    assert!(s.meta(&key).unwrap().is_none());
    assert!(s.read(&key, |_| Ok(())).unwrap().is_none());
    s.flush_blocking();
    s.close().unwrap();
    let s = store(dir.path());
    assert!(s.meta(&key).unwrap().is_none());
    assert_eq!(s.versions(|_, _| true).unwrap().len(), 8);
    s.close().unwrap();
}

#[test]
fn the_eager_queue_notes_an_overflow_instead_of_growing() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let q = EagerQueue::new(tx, flag.clone());
    for i in 0..5 {
        q.push(&DocKey::new("c", format!("d{i}")).unwrap());
    }
    assert!(flag.load(std::sync::atomic::Ordering::Relaxed));
    let mut got = Vec::new();
    while let Ok(k) = rx.try_recv() {
        got.push(k.id().to_string());
    }
    assert_eq!(got, ["d0", "d1"]);
}

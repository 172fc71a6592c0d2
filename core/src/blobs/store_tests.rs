//! Tests of the blob store.

use super::*;
use crate::blobs::hash::LEAF_SIZE;
use crate::blobs::partial::Partial;
use proptest::prelude::*;
use std::os::unix::fs::FileExt;

fn blob(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn import_names_by_blake3_and_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(dir.path()).unwrap();
    let d = blob(300_000);
    let info = s.import(&d[..]).unwrap();
    assert_eq!(info.hash, BlobHash::of(&d));
    let sha: [u8; 32] = Sha256::digest(&d).into();
    assert_eq!(info.sha256, sha);
    assert_eq!(
        s.read_range(&info.hash, 70_000, 10).unwrap(),
        d[70_000..70_010]
    );
    // importing again keeps one copy
    assert_eq!(s.import(&d[..]).unwrap().hash, info.hash);
    assert_eq!(s.list().unwrap().len(), 1);
    let out = dir.path().join("out.bin");
    s.export(&info.hash, &out).unwrap();
    assert_eq!(fs::read(&out).unwrap(), d);
}

#[test]
fn partial_resumes_from_verified_leaves_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(dir.path()).unwrap();
    let d = blob(5 * LEAF_SIZE as usize + 100);
    let mut lh = LeafHasher::new();
    lh.update(&d);
    let ob = lh.finish();
    let h = ob.hash();
    let l = LEAF_SIZE as usize;
    {
        let mut p = Partial::create(&s, ob.clone()).unwrap();
        p.write_verified(0, &d[..l]).unwrap();
        // written after the last checkpoint: found by the rescan
        p.write_verified(3, &d[3 * l..4 * l]).unwrap();
        // garbage where leaf 2 goes (as if a crash tore it): not accepted
        p.file.write_all_at(&[9u8; 100], 2 * LEAF_SIZE).unwrap();
    }
    let mut p = Partial::open(&s, h).unwrap().unwrap();
    assert!(p.has(0) && p.has(3) && !p.has(1) && !p.has(2));
    assert_eq!(p.resumed_bytes, 2 * LEAF_SIZE);
    assert!(s.read_range(&h, 0, 10).is_ok());
    assert!(s.read_range(&h, LEAF_SIZE, 10).is_err());
    for leaf in [1u64, 2, 4, 5] {
        let a = (leaf * LEAF_SIZE) as usize;
        let b = (a + l).min(d.len());
        p.write_verified(leaf, &d[a..b]).unwrap();
    }
    assert!(p.is_complete());
    let info = p.finish(&s).unwrap();
    let sha: [u8; 32] = Sha256::digest(&d).into();
    assert_eq!(info.sha256, sha);
    assert!(matches!(s.status(&h).unwrap(), BlobStatus::Complete(_)));
}

#[test]
fn damaged_checkpoint_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(dir.path()).unwrap();
    let d = blob(3 * LEAF_SIZE as usize);
    let mut lh = LeafHasher::new();
    lh.update(&d);
    let ob = lh.finish();
    let h = ob.hash();
    drop(Partial::create(&s, ob).unwrap());
    fs::write(s.partial_dir(&h).join("checkpoint"), b"\x01\x05").unwrap();
    assert!(Partial::open(&s, h).unwrap().is_none());
    assert_eq!(s.status(&h).unwrap(), BlobStatus::Missing);
}

#[test]
fn gc_keeps_what_it_is_told_and_never_partials() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(dir.path()).unwrap();
    let a = s.import(&blob(10)[..]).unwrap();
    let b = s.import(&blob(20)[..]).unwrap();
    let mut lh = LeafHasher::new();
    lh.update(&blob(200_000));
    let part = Partial::create(&s, lh.finish()).unwrap();
    let keep: HashSet<_> = [a.hash].into();
    let removed = s
        .collect(&keep, SystemTime::now() + Duration::from_secs(1))
        .unwrap();
    assert_eq!(removed, vec![(b.hash, 20)]);
    assert!(s.info(&a.hash).unwrap().is_some());
    assert!(matches!(
        s.status(&part.hash()).unwrap(),
        BlobStatus::Partial { .. }
    ));
}

proptest! {
    #[test]
    fn meta_and_checkpoint_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = decode_meta(BlobHash([0; 32]), &bytes);
        let _ = decode_exact::<CheckpointV1>(&bytes, "ck");
    }

    #[test]
    fn truncated_meta_is_an_error(cut in 0usize..40) {
        let m = encode_meta(5, [1; 32], SystemTime::now());
        prop_assume!(cut < m.len());
        prop_assert!(decode_meta(BlobHash([0; 32]), &m[..cut]).is_err());
    }
}

use automerge::transaction::Transactable;
use automerge::{Automerge, Change, ROOT};

use super::*;

fn authorship(seed: u8, formation: &str) -> Authorship {
    Authorship::new(&iroh::SecretKey::from_bytes(&[seed; 32]), formation)
}

fn key(id: &str) -> DocKey {
    DocKey::new("orders", id).unwrap()
}

/// A chain of `n` changes on one document, each on the one before.
fn chain(doc: &mut Automerge, n: usize) -> Vec<Change> {
    let before = doc.get_heads();
    for i in 0..n {
        let mut tx = doc.transaction();
        tx.put(ROOT, "n", i as i64).unwrap();
        tx.commit();
    }
    doc.get_changes(&before).into_iter().collect()
}

/// Checks then screens, as a session does.
fn screen(
    a: &Authorship,
    p: SignaturePolicy,
    k: &DocKey,
    changes: Vec<Change>,
    sigs: &[Option<SigRow>],
) -> screen::Screened {
    let valid = a.check_all(&[(k, &changes, sigs)]).remove(0);
    a.screen(p, k, changes, sigs, &valid)
}

#[test]
fn a_signature_holds_for_its_change_document_and_formation_only() {
    let a = authorship(1, "alpha");
    let h = [7u8; 32];
    let row = a.sign(&key("o1"), &h);
    assert_eq!(a.verify(&key("o1"), &[(h, row)]), vec![true]);
    assert_eq!(
        a.verify(&key("o2"), &[(h, row)]),
        vec![false],
        "another document"
    );
    assert_eq!(
        a.verify(&key("o1"), &[([8; 32], row)]),
        vec![false],
        "another change"
    );
    let other = authorship(1, "beta");
    assert_eq!(
        other.verify(&key("o1"), &[(h, row)]),
        vec![false],
        "another formation"
    );
    let mut lie = row;
    lie[..32].copy_from_slice(authorship(2, "alpha").key.verifying_key().as_bytes());
    assert_eq!(
        a.verify(&key("o1"), &[(h, lie)]),
        vec![false],
        "another author named"
    );
    assert_eq!(a.stats().signed, 1);
}

#[test]
fn a_batch_with_one_forgery_finds_it_and_keeps_the_rest() {
    let (a, b) = (authorship(1, "f"), authorship(2, "f"));
    let k = key("o");
    let mut items: Vec<(Hash32, SigRow)> = (0..40u8)
        .map(|i| {
            let h = [i; 32];
            (
                h,
                if i % 2 == 0 {
                    a.sign(&k, &h)
                } else {
                    b.sign(&k, &h)
                },
            )
        })
        .collect();
    assert!(a.verify(&k, &items).iter().all(|ok| *ok));
    items[17].1[40] ^= 1;
    // A weak (small-order) key: the identity point.
    let mut weak = [0u8; 96];
    weak[0] = 1;
    items[3].1 = weak;
    let ok = a.verify(&k, &items);
    let bad: Vec<usize> = (0..40).filter(|i| !ok[*i]).collect();
    assert_eq!(bad, vec![3, 17]);
}

#[test]
fn reject_applies_valid_changes_and_refuses_unsigned_ones_with_their_descendants() {
    let a = authorship(1, "f");
    let k = key("o");
    let mut doc = Automerge::new();
    let first = chain(&mut doc, 3); // signed, unsigned, signed on top of it
    let mut other = Automerge::new();
    let independent = chain(&mut other, 1);
    let mut changes = first.clone();
    changes.extend(independent.clone());
    let sig = |c: &Change| Some(a.sign(&k, &c.hash().0));
    let sigs = vec![sig(&first[0]), None, sig(&first[2]), sig(&independent[0])];
    let s = screen(&a, SignaturePolicy::Reject, &k, changes.clone(), &sigs);
    let applied: Vec<_> = s.apply.iter().map(|c| c.hash()).collect();
    assert_eq!(applied, vec![first[0].hash(), independent[0].hash()]);
    assert_eq!(s.refused, 2);
    assert_eq!(s.rows.len(), 2);
    assert!(a.refused.contains(&first[1].hash().0));
    assert!(a.refused.contains(&first[2].hash().0));
    // The peer's head (the last refused change) stands for what it builds
    // on that was accepted: the first change.
    assert_eq!(
        a.refused
            .accepted_heads(&[first[2].hash().0, independent[0].hash().0]),
        {
            let mut v = vec![first[0].hash().0, independent[0].hash().0];
            v.sort_unstable();
            v
        }
    );
    let st = a.stats();
    assert_eq!((st.verified, st.unsigned, st.rejected), (3, 1, 2));

    // Flag and accept apply everything; flag counts it.
    let f = screen(&a, SignaturePolicy::Flag, &k, changes.clone(), &sigs);
    assert_eq!(f.apply.len(), 4);
    assert_eq!(a.stats().flagged, 1);
    let off = screen(&a, SignaturePolicy::Off, &k, changes, &sigs);
    assert!(off.rows.is_empty());
}

#[test]
fn a_refused_change_that_comes_signed_later_is_taken() {
    let a = authorship(1, "f");
    let k = key("o");
    let mut doc = Automerge::new();
    let c = chain(&mut doc, 1);
    let s = screen(&a, SignaturePolicy::Reject, &k, c.clone(), &[]);
    assert!(s.apply.is_empty());
    let row = a.sign(&k, &c[0].hash().0);
    let s = screen(&a, SignaturePolicy::Reject, &k, c.clone(), &[Some(row)]);
    assert_eq!(s.apply.len(), 1);
    assert!(!a.refused.contains(&c[0].hash().0));
}

#[test]
fn the_refused_memory_is_bounded() {
    let r = Refused::default();
    for i in 0..(MAX_REFUSED + 10) as u32 {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        r.insert(h, &[]);
    }
    let mut first = [0u8; 32];
    first[..4].copy_from_slice(&0u32.to_be_bytes());
    assert!(!r.contains(&first), "the oldest is forgotten");
    first[..4].copy_from_slice(&(MAX_REFUSED as u32 + 9).to_be_bytes());
    assert!(r.contains(&first), "the newest is kept");
}

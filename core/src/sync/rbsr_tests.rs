//! Tests of `rbsr.rs`.

use super::*;
use proptest::prelude::*;

fn item(i: u64, salt: u64) -> (u64, Hash32) {
    (
        i / 3,
        *blake3::hash(&(i ^ (salt << 40)).to_le_bytes()).as_bytes(),
    )
}

fn run(a: Vec<(u64, Hash32)>, b: Vec<(u64, Hash32)>) -> (Vec<Hash32>, Vec<IdPrefix>, u32) {
    let mut ra = Reconciler::new(a);
    let mut rb = Reconciler::new(b);
    let mut msg = ra.initiate();
    let (mut have, mut need): (Vec<Hash32>, Vec<IdPrefix>) = (Vec::new(), Vec::new());
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 64, "does not terminate");
        let answer = rb
            .process(&msg, &mut Vec::new(), &mut Vec::new())
            .unwrap()
            .unwrap();
        match ra.process(&answer, &mut have, &mut need).unwrap() {
            Some(m) => msg = m,
            None => break,
        }
    }
    have.sort();
    need.sort();
    (have, need, rounds)
}

proptest! {
    #[test]
    fn finds_exactly_the_symmetric_difference(
        common in 0u64..400,
        a_only in proptest::collection::btree_set(1000u64..2000, 0..60),
        b_only in proptest::collection::btree_set(2000u64..3000, 0..60),
    ) {
        let base: Vec<_> = (0..common).map(|i| item(i, 0)).collect();
        let mut a = base.clone();
        a.extend(a_only.iter().map(|i| item(*i, 0)));
        let mut b = base;
        b.extend(b_only.iter().map(|i| item(*i, 0)));
        let (have, need, _) = run(a, b);
        let mut want_have: Vec<Hash32> = a_only.iter().map(|i| item(*i, 0).1).collect();
        let mut want_need: Vec<IdPrefix> = b_only.iter().map(|i| prefix_of(&item(*i, 0).1)).collect();
        want_have.sort();
        want_need.sort();
        prop_assert_eq!(have, want_have);
        prop_assert_eq!(need, want_need);
    }

    #[test]
    fn decoding_random_bytes_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut r = Reconciler::new((0..100).map(|i| item(i, 0)).collect());
        let _ = r.process(&msg, &mut Vec::new(), &mut Vec::new());
        let mut i = Reconciler::new((0..100).map(|i| item(i, 0)).collect());
        let _ = i.initiate();
        let _ = i.process(&msg, &mut Vec::new(), &mut Vec::new());
    }
}

#[test]
fn equal_and_empty_sets() {
    let a: Vec<_> = (0..5000).map(|i| item(i, 0)).collect();
    let (h, n, rounds) = run(a.clone(), a.clone());
    assert!(h.is_empty() && n.is_empty());
    assert_eq!(rounds, 1);
    let (h, n, _) = run(Vec::new(), a.clone());
    assert_eq!((h.len(), n.len()), (0, 5000));
    let (h, n, _) = run(a, Vec::new());
    assert_eq!((h.len(), n.len()), (5000, 0));
    let (h, n, _) = run(Vec::new(), Vec::new());
    assert!(h.is_empty() && n.is_empty());
}

#[test]
fn malformed_messages_are_errors() {
    let mut r = Reconciler::new((0..100).map(|i| item(i, 0)).collect());
    let mut i = Reconciler::new((0..100).map(|i| item(i, 1)).collect());
    let msg = i.initiate();
    for cut in 1..msg.len() {
        assert!(
            r.process(&msg[..cut], &mut Vec::new(), &mut Vec::new())
                .is_err(),
            "cut at {cut}"
        );
    }
    assert!(r.process(&[], &mut Vec::new(), &mut Vec::new()).is_err());
    assert!(r.process(&[2], &mut Vec::new(), &mut Vec::new()).is_err());
    // an id list claiming more ids than bytes
    assert!(r
        .process(&[1, 0, 0, 2, 0xff, 0x01], &mut Vec::new(), &mut Vec::new())
        .is_err());
}

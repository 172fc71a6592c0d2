//! Which received changes can be applied now.
//!
//! Automerge keeps a change whose dependencies it lacks in an in-memory queue
//! until they arrive, and that queue has no bound: a peer could send endless
//! changes that depend on a hash that never comes. So changes are sorted here
//! first, and only those whose dependencies are in the document or among the
//! changes applied with them are handed to Automerge; the rest are dropped and
//! the sync asks for them again from its heads (the sender then resends them
//! with what they depend on). Automerge's queue therefore stays empty.

use std::collections::{HashMap, HashSet};

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

/// Splits `changes` into those that can be applied to `doc` now, in an order
/// that applies each after what it depends on, and the number left out.
/// Linear in the changes and their dependencies (Kahn's algorithm); the extra
/// memory is a few words per change of a batch the caller already holds, and
/// a batch is bounded by the session's frame caps (16 MiB frames, at most
/// 1,024 frames per batch).
pub(crate) fn causally_ready(doc: &Automerge, changes: Vec<Change>) -> (Vec<Change>, usize) {
    let total = changes.len();
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    // Which of the hashes named here the document lacks, in one call: it looks
    // each up in the document's hash index. (`get_change_by_hash` would
    // rebuild each change from the op set, costing time in the document's
    // size per lookup: slow for big documents, and work a peer could make
    // this node do by naming many dependencies.)
    let named: Vec<ChangeHash> = changes
        .iter()
        .flat_map(|c| c.deps().iter().copied().chain([c.hash()]))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let lacking: HashSet<ChangeHash> = doc.get_missing_deps(&named).into_iter().collect();
    let in_doc = |h: &ChangeHash| !lacking.contains(h);
    // Per change: how many of its dependencies inside the batch are not applied
    // yet; `None` once it is known never to be ready (a dependency is neither
    // here nor in the batch).
    let mut waiting: Vec<Option<usize>> = Vec::with_capacity(total);
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut ready = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let mut n = Some(0usize);
        for d in c.deps() {
            if in_doc(d) {
                continue;
            }
            match index.get(d) {
                Some(&j) if j != i => {
                    dependents.entry(j).or_default().push(i);
                    n = n.map(|n| n + 1);
                }
                _ => n = None,
            }
        }
        if n == Some(0) && !in_doc(&c.hash()) {
            ready.push(i);
        }
        waiting.push(n);
    }
    let mut order = Vec::with_capacity(total);
    while let Some(i) = ready.pop() {
        order.push(i);
        for &k in dependents.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(n) = waiting[k].as_mut() {
                *n -= 1;
                if *n == 0 {
                    ready.push(k);
                }
            }
        }
    }
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    let out: Vec<Change> = order.into_iter().filter_map(|i| slots[i].take()).collect();
    // Changes already in the document are not "left out": they are simply known.
    let left = slots
        .iter()
        .flatten()
        .filter(|c| !in_doc(&c.hash()))
        .count();
    (out, left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::ROOT;

    fn history(n: usize) -> Vec<Change> {
        let mut d = Automerge::new();
        for i in 0..n {
            let mut tx = d.transaction();
            tx.put(ROOT, "i", i as i64).unwrap();
            tx.commit();
        }
        d.get_changes(&[])
    }

    #[test]
    fn out_of_order_changes_are_applied_in_causal_order() {
        let h = history(4);
        let mut doc = Automerge::new();
        doc.apply_changes(vec![h[0].clone()]).unwrap();
        let batch = vec![h[3].clone(), h[1].clone(), h[2].clone(), h[0].clone()];
        let (ready, left) = causally_ready(&doc, batch);
        assert_eq!(left, 0);
        assert_eq!(ready.len(), 3, "the known change is not applied again");
        doc.apply_changes(ready).unwrap();
        assert!(doc.get_missing_deps(&[]).is_empty());
        assert_eq!(doc.get_heads(), vec![h[3].hash()]);
    }

    #[test]
    fn changes_with_a_missing_dependency_are_left_out() {
        let h = history(3);
        let mut doc = Automerge::new();
        // h[1] is missing: h[2] depends on it
        let (ready, left) = causally_ready(&doc, vec![h[2].clone(), h[0].clone()]);
        assert_eq!(left, 1);
        assert_eq!(ready.len(), 1);
        doc.apply_changes(ready).unwrap();
        assert!(
            doc.get_missing_deps(&[]).is_empty(),
            "nothing waits in Automerge's queue"
        );
        assert_eq!(doc.get_heads(), vec![h[0].hash()]);
    }

    #[test]
    fn a_change_already_held_satisfies_its_dependents_in_the_batch() {
        let h = history(3);
        let mut doc = Automerge::new();
        doc.apply_changes(h[..2].to_vec()).unwrap();
        let (ready, left) = causally_ready(&doc, vec![h[2].clone(), h[1].clone()]);
        assert_eq!((ready.len(), left), (1, 0));
    }

    #[test]
    fn a_long_chain_on_a_missing_root_is_dropped_whole() {
        let h = history(2000);
        let doc = Automerge::new();
        let (ready, left) = causally_ready(&doc, h[1..].to_vec());
        assert!(ready.is_empty());
        assert_eq!(left, 1999);
    }
}

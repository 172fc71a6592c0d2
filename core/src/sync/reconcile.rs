//! Set reconciliation of document versions with negentropy.
//!
//! Each stored document contributes one item: (newest change time, version id).
//! Two replicas holding the same state of a document hold the same item, so the
//! items that differ name exactly the documents to sync. Items sort by time, so
//! after a partition heals only the recent end of the range differs, which
//! negentropy resolves cheaply.

use negentropy::{Id, Negentropy, NegentropyStorageVector};

use crate::error::{Error, Result};
use crate::wire::Hash32;

/// Frame size limit for negentropy messages: 0 means unlimited, which keeps round
/// trips minimal. Frames are still capped by [`crate::wire::MAX_FRAME_LEN`]
/// (16 MiB); a reconciliation that needed more would fail with a protocol error.
const FRAME_LIMIT: u64 = 0;

/// A negentropy instance over an owned snapshot of the version set.
pub(crate) type Reconciler = Negentropy<'static, NegentropyStorageVector>;

fn neg_err(e: negentropy::Error) -> Error {
    Error::Protocol(format!("reconciliation: {e}"))
}

/// Builds a reconciler over `items`, which must be sorted by (ts, id).
pub(crate) fn reconciler(items: &[(u64, Hash32)]) -> Result<Reconciler> {
    let mut storage = NegentropyStorageVector::with_capacity(items.len());
    for (ts, id) in items {
        storage
            .insert(*ts, Id::from_byte_array(*id))
            .map_err(neg_err)?;
    }
    storage.seal().map_err(neg_err)?;
    Negentropy::owned(storage, FRAME_LIMIT).map_err(neg_err)
}

/// Initiator: the first message.
pub(crate) fn initiate(r: &mut Reconciler) -> Result<Vec<u8>> {
    r.initiate().map_err(neg_err)
}

/// Responder: answers one message.
pub(crate) fn respond(r: &mut Reconciler, msg: &[u8]) -> Result<Vec<u8>> {
    r.reconcile(msg).map_err(neg_err)
}

/// Initiator: processes an answer. Returns the next message (None when done) and
/// adds to `have` (ids only we hold) and `need` (ids only the peer holds).
pub(crate) fn step(
    r: &mut Reconciler,
    msg: &[u8],
    have: &mut Vec<Hash32>,
    need: &mut Vec<Hash32>,
) -> Result<Option<Vec<u8>>> {
    let (mut h, mut n) = (Vec::new(), Vec::new());
    let next = r.reconcile_with_ids(msg, &mut h, &mut n).map_err(neg_err)?;
    have.extend(h.iter().map(|id| **id));
    need.extend(n.iter().map(|id| **id));
    Ok(next)
}

/// What one reconciliation cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileStats {
    /// Round trips (initiator message + responder answer = one).
    pub round_trips: u32,
    /// Bytes sent by both sides together.
    pub bytes: u64,
    /// Items only the initiator has.
    pub have: usize,
    /// Items only the responder has.
    pub need: usize,
}

/// Runs a full reconciliation between two in-memory item sets (sorted by (ts, id))
/// and reports its cost. Used by benchmarks and tests; the node runs the same
/// steps over the network.
pub fn simulate(
    initiator: &[(u64, Hash32)],
    responder: &[(u64, Hash32)],
) -> Result<ReconcileStats> {
    let mut a = reconciler(initiator)?;
    let mut b = reconciler(responder)?;
    let mut stats = ReconcileStats::default();
    let mut msg = initiate(&mut a)?;
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        stats.bytes += msg.len() as u64;
        let answer = respond(&mut b, &msg)?;
        stats.bytes += answer.len() as u64;
        stats.round_trips += 1;
        match step(&mut a, &answer, &mut have, &mut need)? {
            Some(next) => msg = next,
            None => break,
        }
    }
    stats.have = have.len();
    stats.need = need.len();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(n: u64, salt: u8) -> Vec<(u64, Hash32)> {
        (0..n)
            .map(|i| {
                let mut id = *blake3::hash(&i.to_le_bytes()).as_bytes();
                if salt != 0 && i % 100 == 0 {
                    id[0] ^= salt;
                }
                (i, id)
            })
            .collect()
    }

    #[test]
    fn finds_exact_differences() {
        let a = items(5000, 0);
        let b = items(5000, 1);
        let s = simulate(&a, &b).unwrap();
        assert_eq!((s.have, s.need), (50, 50));
        let same = simulate(&a, &a).unwrap();
        assert_eq!((same.have, same.need, same.round_trips), (0, 0, 1));
        assert!(same.bytes < 1024, "in-sync cost {} bytes", same.bytes);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let mut a = reconciler(&items(1000, 0)).unwrap();
        let msg = initiate(&mut a).unwrap();
        let mut b = reconciler(&items(1000, 1)).unwrap();
        assert!(
            respond(&mut b, &msg[..msg.len() / 2]).is_err(),
            "truncated message"
        );
        assert!(respond(&mut b, &[]).is_err(), "empty message");
    }

    proptest! {
        #[test]
        fn random_messages_never_panic(msg in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut b = reconciler(&items(100, 0)).unwrap();
            let _ = respond(&mut b, &msg);
            let mut a = reconciler(&items(100, 0)).unwrap();
            let _ = initiate(&mut a);
            let _ = step(&mut a, &msg, &mut Vec::new(), &mut Vec::new());
        }

        #[test]
        fn union_is_found(a_only in proptest::collection::btree_set(0u64..500, 0..40), b_only in proptest::collection::btree_set(500u64..1000, 0..40)) {
            let common = items(200, 0);
            let mk = |extra: &std::collections::BTreeSet<u64>| {
                let mut v = common.clone();
                v.extend(extra.iter().map(|i| (*i, *blake3::hash(&(i + 10_000).to_le_bytes()).as_bytes())));
                v.sort();
                v
            };
            let s = simulate(&mk(&a_only), &mk(&b_only)).unwrap();
            prop_assert_eq!(s.have, a_only.len());
            prop_assert_eq!(s.need, b_only.len());
        }
    }
}

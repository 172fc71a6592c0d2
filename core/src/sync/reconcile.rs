//! Set reconciliation of document versions.
//!
//! Each stored document contributes one item: (newest change time, version id).
//! Two replicas holding the same state of a document hold the same item, so the
//! items that differ name exactly the documents to sync. Items sort by time, so
//! after a partition heals only the recent end of the range differs, which
//! range-based reconciliation ([`super::rbsr`]) resolves cheaply.

use super::rbsr;
use crate::error::Result;
use crate::wire::Hash32;

pub use rbsr::Reconciler;

/// Builds a reconciler over `items`.
pub(crate) fn reconciler(items: Vec<(u64, Hash32)>) -> Reconciler {
    Reconciler::new(items)
}

/// Initiator: the first message.
pub(crate) fn initiate(r: &mut Reconciler) -> Vec<u8> {
    r.initiate()
}

/// Responder: answers one message.
pub(crate) fn respond(r: &mut Reconciler, msg: &[u8]) -> Result<Vec<u8>> {
    Ok(r.process(msg, &mut Vec::new(), &mut Vec::new())?
        .unwrap_or_default())
}

/// Initiator: processes an answer. Returns the next message (None when done) and
/// adds to `have` (ids only we hold) and `need` (prefixes of ids only the peer holds).
pub(crate) fn step(
    r: &mut Reconciler,
    msg: &[u8],
    have: &mut Vec<Hash32>,
    need: &mut Vec<rbsr::IdPrefix>,
) -> Result<Option<Vec<u8>>> {
    r.process(msg, have, need)
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

/// Runs a full reconciliation between two in-memory item sets and reports its
/// cost. Used by benchmarks and tests; the node runs the same steps over the
/// network.
pub fn simulate(
    initiator: &[(u64, Hash32)],
    responder: &[(u64, Hash32)],
) -> Result<ReconcileStats> {
    simulate_shaped(
        initiator,
        responder,
        rbsr::BRANCHING,
        rbsr::ID_LIST_MAX,
        (rbsr::WIDE_BRANCHING, rbsr::WIDE_ABOVE),
    )
}

/// [`simulate`] with a given branching factor and id-list threshold.
pub fn simulate_shaped(
    initiator: &[(u64, Hash32)],
    responder: &[(u64, Hash32)],
    branching: usize,
    id_list_max: usize,
    wide: (usize, usize),
) -> Result<ReconcileStats> {
    let mut a = reconciler(initiator.to_vec())
        .with_shape(branching, id_list_max)
        .with_wide(wide.0, wide.1);
    let mut b = reconciler(responder.to_vec())
        .with_shape(branching, id_list_max)
        .with_wide(wide.0, wide.1);
    let mut stats = ReconcileStats::default();
    let mut msg = initiate(&mut a);
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
    fn large_one_sided_sync_stays_within_frames() {
        let b = items(200_000, 0);
        let s = simulate(&[], &b).unwrap();
        assert_eq!((s.have, s.need), (0, 200_000));
    }
}

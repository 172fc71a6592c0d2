//! What a node does with received changes according to their signatures and
//! the collection's [`SignaturePolicy`].

use automerge::Change;

use super::{add, Authorship};
use crate::policy::SignaturePolicy;
use crate::storage::{DocKey, SigRow};
use crate::wire::Hash32;

/// Received changes after their signatures were checked.
pub(crate) struct Screened {
    /// The changes to apply, in their order.
    pub apply: Vec<Change>,
    /// Checked signatures to keep with them.
    pub rows: Vec<(Hash32, SigRow)>,
    /// Changes refused (a `reject` collection).
    pub refused: usize,
}

impl Authorship {
    /// Keeps what `policy` lets through of received `changes` of `key`
    /// (`sigs`: one per change, or empty when none came; `valid`: which
    /// signatures checked out, from [`Authorship::check_all`]).
    /// Under `reject` a change is applied only if its signature checks out
    /// and none of its dependencies was refused; a refused change that later
    /// comes validly signed is taken then.
    pub(crate) fn screen(
        &self,
        policy: SignaturePolicy,
        key: &DocKey,
        changes: Vec<Change>,
        sigs: &[Option<SigRow>],
        valid: &[bool],
    ) -> Screened {
        if policy == SignaturePolicy::Off {
            return Screened {
                apply: changes,
                rows: Vec::new(),
                refused: 0,
            };
        }
        let n_signed = sigs.iter().take(changes.len()).flatten().count();
        let valid: Vec<bool> = (0..changes.len())
            .map(|i| valid.get(i).copied().unwrap_or(false))
            .collect();
        let rows: Vec<(Hash32, SigRow)> = changes
            .iter()
            .zip(sigs)
            .zip(&valid)
            .filter_map(|((c, s), ok)| s.filter(|_| *ok).map(|r| (c.hash().0, r)))
            .collect();
        let n_valid = rows.len();
        let c = &self.counters;
        add(&c.verified, n_valid);
        add(&c.forged, n_signed - n_valid);
        add(&c.unsigned, changes.len() - n_signed);
        let bad = changes.len() - n_valid;
        let valid = &valid[..];
        match policy {
            SignaturePolicy::Off | SignaturePolicy::Accept => {}
            SignaturePolicy::Flag => {
                if bad > 0 {
                    add(&c.flagged, bad);
                    tracing::warn!(%key, changes = bad, "applied unsigned or forged changes (flagged)");
                }
            }
            SignaturePolicy::Reject => return self.reject(key, changes, valid, rows),
        }
        Screened {
            apply: changes,
            rows,
            refused: 0,
        }
    }

    fn reject(
        &self,
        key: &DocKey,
        changes: Vec<Change>,
        valid: &[bool],
        rows: Vec<(Hash32, SigRow)>,
    ) -> Screened {
        let mut apply = Vec::with_capacity(changes.len());
        let mut refused_here = std::collections::HashSet::new();
        for (c, ok) in changes.into_iter().zip(valid) {
            let h = c.hash().0;
            let deps: Vec<Hash32> = c.deps().iter().map(|d| d.0).collect();
            let tainted = deps
                .iter()
                .any(|d| refused_here.contains(d) || self.refused.contains(d));
            if *ok && !tainted {
                self.refused.remove(&h);
                apply.push(c);
            } else {
                self.refused.insert(h, &deps);
                refused_here.insert(h);
            }
        }
        let n = refused_here.len();
        if n > 0 {
            add(&self.counters.rejected, n);
            tracing::warn!(%key, changes = n, "refused unsigned or forged changes");
        }
        let rows = rows
            .into_iter()
            .filter(|(h, _)| !refused_here.contains(h))
            .collect();
        Screened {
            apply,
            rows,
            refused: n,
        }
    }
}

//! The changes a node refused in `reject` collections, with their
//! dependencies: bounded ([`MAX_REFUSED`] changes, least recently refused
//! forgotten first — a forgotten one is refused again when it comes back,
//! it only costs a resend).

use std::sync::Mutex;

use lru::LruCache;

use crate::locks::LockExt;
use crate::wire::Hash32;

/// Most refused changes remembered.
pub const MAX_REFUSED: usize = 16_384;

/// Dependencies kept per refused change, at most (a change with more is
/// remembered without them: its heads are then not replaced, which only
/// costs a resend).
const MAX_DEPS_KEPT: usize = 64;

pub(crate) struct Refused {
    changes: Mutex<LruCache<Hash32, Vec<Hash32>>>,
}

impl Default for Refused {
    fn default() -> Self {
        let cap = std::num::NonZeroUsize::new(MAX_REFUSED).unwrap_or(std::num::NonZeroUsize::MIN);
        Refused {
            changes: Mutex::new(LruCache::new(cap)),
        }
    }
}

impl Refused {
    pub(crate) fn insert(&self, hash: Hash32, deps: &[Hash32]) {
        let deps = if deps.len() <= MAX_DEPS_KEPT {
            deps.to_vec()
        } else {
            Vec::new()
        };
        self.changes.locked().put(hash, deps);
    }

    pub(crate) fn remove(&self, hash: &Hash32) {
        self.changes.locked().pop(hash);
    }

    pub(crate) fn contains(&self, hash: &Hash32) -> bool {
        self.changes.locked().contains(hash)
    }

    /// A peer's heads with every refused change replaced by what it depends
    /// on (repeatedly): the heads of what the peer holds that this node
    /// would accept. Unchanged when nothing was refused.
    pub(crate) fn accepted_heads(&self, heads: &[Hash32]) -> Vec<Hash32> {
        let refused = self.changes.locked();
        if refused.is_empty() {
            return heads.to_vec();
        }
        let mut out: Vec<Hash32> = Vec::with_capacity(heads.len());
        let mut todo: Vec<Hash32> = heads.to_vec();
        let mut seen = std::collections::HashSet::new();
        // Each refused change is expanded once: bounded by the memory's size.
        while let Some(h) = todo.pop() {
            if !seen.insert(h) {
                continue;
            }
            match refused.peek(&h) {
                Some(deps) => todo.extend_from_slice(deps),
                None => out.push(h),
            }
        }
        out.sort_unstable();
        out
    }
}

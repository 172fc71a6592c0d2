//! Counters of sync traffic, per frame kind, for diagnostics and benchmarks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::Frame;

const KINDS: [&str; N] = [
    "Hello",
    "Challenge",
    "Proof",
    "Welcome",
    "Refused",
    "Reconcile",
    "Want",
    "Heads",
    "Changes",
    "MoreChanges",
    "ChangePiece",
    "Signatures",
];

const N: usize = 12;

fn index(f: &Frame) -> usize {
    KINDS.iter().position(|k| *k == f.name()).unwrap_or(0)
}

/// Frames and bytes per frame kind, in one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// Frame kind → (frames, encoded bytes).
    pub by_kind: BTreeMap<&'static str, (u64, u64)>,
}

impl TrafficStats {
    /// Total frames.
    pub fn frames(&self) -> u64 {
        self.by_kind.values().map(|v| v.0).sum()
    }

    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.by_kind.values().map(|v| v.1).sum()
    }
}

/// Sync traffic of a node since it opened, over all sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// What this node sent.
    pub sent: TrafficStats,
    /// What this node received.
    pub received: TrafficStats,
    /// Documents (or changes to them) received from peers and refused: nested
    /// too deep, or a change too large. Nothing of them was stored.
    pub refused_documents: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    sent: [(AtomicU64, AtomicU64); N],
    received: [(AtomicU64, AtomicU64); N],
    refused_documents: AtomicU64,
}

impl Counters {
    pub fn refused_document(&self) {
        self.refused_documents.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sent(&self, f: &Frame, bytes: usize) {
        let c = &self.sent[index(f)];
        c.0.fetch_add(1, Ordering::Relaxed);
        c.1.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn received(&self, f: &Frame, bytes: usize) {
        let c = &self.received[index(f)];
        c.0.fetch_add(1, Ordering::Relaxed);
        c.1.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> SyncStats {
        let read = |arr: &[(AtomicU64, AtomicU64); N]| TrafficStats {
            by_kind: KINDS
                .iter()
                .zip(arr.iter())
                .filter(|(_, c)| c.0.load(Ordering::Relaxed) > 0)
                .map(|(k, c)| {
                    (
                        *k,
                        (c.0.load(Ordering::Relaxed), c.1.load(Ordering::Relaxed)),
                    )
                })
                .collect(),
        };
        SyncStats {
            sent: read(&self.sent),
            received: read(&self.received),
            refused_documents: self.refused_documents.load(Ordering::Relaxed),
        }
    }
}

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
    /// How long changes from peers took to arrive: from the commit at their
    /// author (the change's timestamp) to their application here.
    pub update_latency: LatencyHistogram,
}

/// Upper bounds (milliseconds) of the [`LatencyHistogram`] buckets.
pub const LATENCY_BOUNDS_MS: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// A histogram of update latencies, Prometheus-style: `buckets[i]` counts
/// the latencies at most [`LATENCY_BOUNDS_MS`]`[i]` (cumulative); `count`
/// includes those above the last bound.
///
/// The latency compares the author's clock with this node's: a skew between
/// them shifts it (a change that seems to come from the future counts as 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    pub buckets: [u64; 14],
    pub count: u64,
    pub sum_ms: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    sent: [(AtomicU64, AtomicU64); N],
    received: [(AtomicU64, AtomicU64); N],
    refused_documents: AtomicU64,
    latency: [AtomicU64; 14],
    latency_count: AtomicU64,
    latency_sum_ms: AtomicU64,
}

impl Counters {
    pub fn refused_document(&self) {
        self.refused_documents.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts changes authored at `stamps_ms` and applied at `now_ms`.
    pub fn applied(&self, now_ms: i64, stamps_ms: &[i64]) {
        for t in stamps_ms {
            let ms = now_ms.saturating_sub(*t).max(0) as u64;
            // Non-cumulative here: one bucket per latency; summed on reading.
            if let Some(i) = LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b) {
                self.latency[i].fetch_add(1, Ordering::Relaxed);
            }
            self.latency_count.fetch_add(1, Ordering::Relaxed);
            self.latency_sum_ms.fetch_add(ms, Ordering::Relaxed);
        }
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
        let mut buckets = [0u64; 14];
        let mut total = 0;
        for (b, c) in buckets.iter_mut().zip(&self.latency) {
            total += c.load(Ordering::Relaxed);
            *b = total;
        }
        SyncStats {
            sent: read(&self.sent),
            received: read(&self.received),
            refused_documents: self.refused_documents.load(Ordering::Relaxed),
            update_latency: LatencyHistogram {
                buckets,
                // At least the last bucket: the count is read after them.
                count: self.latency_count.load(Ordering::Relaxed).max(total),
                sum_ms: self.latency_sum_ms.load(Ordering::Relaxed),
            },
        }
    }
}

#[cfg(test)]
mod latency_tests {
    use super::*;

    #[test]
    fn latencies_fall_in_cumulative_buckets_and_skew_counts_as_zero() {
        let c = Counters::default();
        c.applied(10_000, &[10_000, 9_990, 9_000, 20_000, -5_000_000]);
        let h = c.snapshot().update_latency;
        assert_eq!(h.count, 5);
        assert_eq!(h.buckets[0], 2, "0 ms (same and future) is at most 5 ms");
        assert_eq!(h.buckets[1], 3, "10 ms");
        assert_eq!(h.buckets[7], 4, "1 s");
        assert_eq!(h.buckets[13], 4, "above the last bound only in count");
        assert_eq!(h.sum_ms, 10 + 1_000 + 5_010_000);
    }
}

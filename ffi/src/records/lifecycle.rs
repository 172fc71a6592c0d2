//! Records of collection policies and the data lifecycle: what garbage
//! collection removed and the node's storage counters. Policies themselves
//! cross the boundary as JSON text in the core's form
//! ([`peat_mesh::policy::PolicyForm`]), which every binding builds from its
//! own types.

use crate::error::{SdkError, SdkResult};

/// A priority class by its name ("critical", "high", "normal", "low",
/// "bulk"); `default` for "".
pub fn priority_arg(name: &str, default: peat_mesh::Priority) -> SdkResult<peat_mesh::Priority> {
    if name.is_empty() {
        return Ok(default);
    }
    peat_mesh::Priority::from_name(name).ok_or_else(|| {
        SdkError::invalid(format!(
            "unknown priority {name:?} (critical, high, normal, low, bulk)"
        ))
    })
}

/// What one garbage collection removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
#[repr(C)]
pub struct GarbageReportRecord {
    /// Documents past their collection's TTL.
    pub expired_documents: u64,
    /// Tombstones past their collection's tombstone TTL.
    pub purged_tombstones: u64,
    /// Documents beyond their collection's retention (oldest first).
    pub evicted_documents: u64,
    /// Blobs no live document refers to.
    pub removed_blobs: u64,
    /// Bytes those blobs held.
    pub blob_bytes_freed: u64,
    /// How long the pass took, in milliseconds.
    pub took_ms: u64,
    /// Documents evicted by the node's storage budget.
    pub budget_evicted: u64,
}

impl From<peat_mesh::GarbageReport> for GarbageReportRecord {
    fn from(r: peat_mesh::GarbageReport) -> Self {
        GarbageReportRecord {
            expired_documents: r.expired_documents,
            purged_tombstones: r.purged_tombstones,
            evicted_documents: r.evicted_documents,
            removed_blobs: r.removed_blobs,
            blob_bytes_freed: r.blob_bytes_freed,
            took_ms: r.took.as_millis() as u64,
            budget_evicted: r.budget_evicted,
        }
    }
}

/// What the node stores now and what its lifecycle removed or refused since open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
#[repr(C)]
pub struct StorageStatsRecord {
    /// Live documents stored.
    pub documents: u64,
    /// Deleted documents whose tombstones are still kept.
    pub tombstones: u64,
    /// Bytes documents and tombstones take.
    pub document_bytes: u64,
    /// Documents removed past their TTL.
    pub expired_total: u64,
    /// Tombstones removed past their tombstone TTL.
    pub tombstones_purged_total: u64,
    /// Documents removed by retention.
    pub evicted_total: u64,
    /// Documents a peer offered that had expired here, refused.
    pub refused_expired_total: u64,
    /// Documents a peer offered that retention had removed here, refused.
    pub refused_evicted_total: u64,
    /// Deleted documents brought back by an edit the delete did not see
    /// (update-wins collections).
    pub revived_total: u64,
    /// Garbage collections run.
    pub gc_runs: u64,
    /// Documents evicted by the storage budget.
    pub budget_evicted_total: u64,
}

impl From<peat_mesh::StorageStats> for StorageStatsRecord {
    fn from(s: peat_mesh::StorageStats) -> Self {
        StorageStatsRecord {
            documents: s.documents,
            tombstones: s.tombstones,
            document_bytes: s.document_bytes,
            expired_total: s.expired_total,
            tombstones_purged_total: s.tombstones_purged_total,
            evicted_total: s.evicted_total,
            refused_expired_total: s.refused_expired_total,
            refused_evicted_total: s.refused_evicted_total,
            revived_total: s.revived_total,
            gc_runs: s.gc_runs,
            budget_evicted_total: s.budget_evicted_total,
        }
    }
}

/// What a node's bandwidth budgets did since it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
#[repr(C)]
pub struct BandwidthStatsRecord {
    /// Bytes sent under a budget.
    pub bytes_limited: u64,
    /// Sends that waited for a budget.
    pub waits: u64,
    /// Their waiting in total, in milliseconds.
    pub waited_ms: u64,
    /// Ephemeral messages dropped because a budget had no room for them.
    pub dropped_datagrams: u64,
}

impl From<peat_mesh::BandwidthStats> for BandwidthStatsRecord {
    fn from(s: peat_mesh::BandwidthStats) -> Self {
        BandwidthStatsRecord {
            bytes_limited: s.bytes_limited,
            waits: s.waits,
            waited_ms: s.waited.as_millis() as u64,
            dropped_datagrams: s.dropped_datagrams,
        }
    }
}

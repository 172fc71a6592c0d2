//! The store's tables and the per-document metadata row.

use redb::TableDefinition;

use crate::error::{Error, Result};
use crate::wire::Hash32;

/// Incremental rows kept per document before it is compacted into one snapshot.
pub const COMPACT_AFTER: u32 = 64;

/// Storage key → encoded [`Meta`].
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("doc_meta");
/// Storage key → compressed Automerge snapshot.
pub(super) const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("doc_snapshots");
/// (storage key, sequence) → one or more encoded change chunks.
pub(super) const INCREMENTS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("doc_increments");
/// First 8 bytes of the version id ‖ storage key → (). Finds documents by the
/// id prefixes that reconciliation yields.
pub(super) const VIDS: TableDefinition<&[u8], ()> = TableDefinition::new("doc_vid_prefixes");

pub(super) fn vid_index_key(vid: &Hash32, skey: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + skey.len());
    k.extend_from_slice(&vid[..8]);
    k.extend_from_slice(skey.as_bytes());
    k
}

/// Per-document metadata: the current version and persistence bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Newest change time in the history (ms), the reconciliation timestamp.
    pub ts: u64,
    /// Hash of (key, heads): identical on every replica holding the same state.
    pub vid: Hash32,
    pub deleted: bool,
    /// Incremental rows since the last snapshot.
    pub incr: u32,
    /// Next incremental row number.
    pub next_seq: u64,
    /// Bytes the document takes in storage (snapshot and rows); 0 when
    /// unknown (written before this field existed, until its next change).
    pub bytes: u64,
}

/// Rows written before `bytes` existed (read as `bytes` 0).
const META_LEN_V1: usize = 8 + 32 + 1 + 4 + 8;
pub(super) const META_LEN: usize = META_LEN_V1 + 8;

impl Meta {
    pub(super) fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[..8].copy_from_slice(&self.ts.to_be_bytes());
        b[8..40].copy_from_slice(&self.vid);
        b[40] = self.deleted as u8;
        b[41..45].copy_from_slice(&self.incr.to_be_bytes());
        b[45..53].copy_from_slice(&self.next_seq.to_be_bytes());
        b[53..].copy_from_slice(&self.bytes.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        if !(b.len() == META_LEN || b.len() == META_LEN_V1) || b[40] > 1 {
            return Err(Error::Corrupt(format!(
                "document metadata of {} bytes",
                b.len()
            )));
        }
        let arr = |r: std::ops::Range<usize>| b[r].to_vec();
        Ok(Meta {
            ts: u64::from_be_bytes(
                arr(0..8)
                    .try_into()
                    .map_err(|_| Error::Corrupt("ts".into()))?,
            ),
            vid: arr(8..40)
                .try_into()
                .map_err(|_| Error::Corrupt("vid".into()))?,
            deleted: b[40] == 1,
            incr: u32::from_be_bytes(
                arr(41..45)
                    .try_into()
                    .map_err(|_| Error::Corrupt("incr".into()))?,
            ),
            next_seq: u64::from_be_bytes(
                arr(45..53)
                    .try_into()
                    .map_err(|_| Error::Corrupt("seq".into()))?,
            ),
            bytes: match b.get(53..61) {
                Some(s) => {
                    u64::from_be_bytes(s.try_into().map_err(|_| Error::Corrupt("bytes".into()))?)
                }
                None => 0,
            },
        })
    }
}

//! What a node holds and is doing, listed: its collections with their
//! counts, and the blob fetches running.

use super::TransferProgress;

/// A collection and how many live documents it holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct CollectionRecord {
    /// The collection's name.
    pub name: String,
    /// Live (not deleted) documents in it.
    pub documents: u64,
}

impl From<peat_mesh::CollectionInfo> for CollectionRecord {
    fn from(c: peat_mesh::CollectionInfo) -> Self {
        CollectionRecord {
            name: c.name,
            documents: c.documents,
        }
    }
}

/// A blob fetch running now.
#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct TransferStatusRecord {
    /// The blob's BLAKE3 hash, 64 hex digits.
    pub hash: String,
    /// Its progress.
    pub progress: TransferProgress,
}

impl From<&peat_mesh::blobs::Transfer> for TransferStatusRecord {
    fn from(t: &peat_mesh::blobs::Transfer) -> Self {
        TransferStatusRecord {
            hash: t.hash().to_hex(),
            progress: t.progress().into(),
        }
    }
}

//! Transfer profiles: chunk size and checkpoint interval for the link at hand.

use std::time::Duration;

use super::hash::LEAF_SIZE;
use crate::error::{Error, Result};

/// How a fetch moves data: the unit requested and written at a time, and how
/// often the partial download is made durable.
///
/// A crash loses at most the chunk in flight: on restart every leaf already on
/// disk is re-checked against the blob's hash, checkpoint or not. The checkpoint
/// interval bounds how much of that re-checking is needed and how much data a
/// power cut (not just a process kill) can cost.
///
/// ```
/// use peat_mesh::blobs::TransferProfile;
/// assert_eq!(TransferProfile::EDGE.chunk_size, 64 * 1024);
/// assert_eq!("tactical".parse::<TransferProfile>().unwrap(), TransferProfile::TACTICAL);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferProfile {
    /// Bytes per request unit; a multiple of 64 KiB.
    pub chunk_size: u64,
    /// How often the partial download is synced to disk and checkpointed.
    pub checkpoint_interval: Duration,
}

impl TransferProfile {
    /// Data-centre links: 1 MiB chunks, checkpoint every 60 s.
    pub const DATACENTER: TransferProfile = TransferProfile {
        chunk_size: 1 << 20,
        checkpoint_interval: Duration::from_secs(60),
    };
    /// Tactical radio links: 256 KiB chunks, checkpoint every 30 s.
    pub const TACTICAL: TransferProfile = TransferProfile {
        chunk_size: 256 << 10,
        checkpoint_interval: Duration::from_secs(30),
    };
    /// Thin edge links: 64 KiB chunks, checkpoint every 10 s.
    pub const EDGE: TransferProfile = TransferProfile {
        chunk_size: 64 << 10,
        checkpoint_interval: Duration::from_secs(10),
    };

    /// A custom profile; `chunk_size` must be a non-zero multiple of 64 KiB, at most 16 MiB.
    pub fn custom(chunk_size: u64, checkpoint_interval: Duration) -> Result<TransferProfile> {
        let p = TransferProfile {
            chunk_size,
            checkpoint_interval,
        };
        p.validate()?;
        Ok(p)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.chunk_size == 0
            || !self.chunk_size.is_multiple_of(LEAF_SIZE)
            || self.chunk_size > 16 << 20
        {
            return Err(Error::InvalidArgument(format!(
                "chunk size {} is not a multiple of 64 KiB between 64 KiB and 16 MiB",
                self.chunk_size
            )));
        }
        Ok(())
    }

    /// Leaves per chunk.
    pub(crate) fn leaves_per_chunk(&self) -> u64 {
        self.chunk_size / LEAF_SIZE
    }
}

impl Default for TransferProfile {
    fn default() -> Self {
        TransferProfile::TACTICAL
    }
}

impl std::str::FromStr for TransferProfile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "datacenter" => Ok(TransferProfile::DATACENTER),
            "tactical" => Ok(TransferProfile::TACTICAL),
            "edge" => Ok(TransferProfile::EDGE),
            _ => Err(Error::InvalidArgument(format!(
                "unknown transfer profile {s:?} (datacenter, tactical, edge)"
            ))),
        }
    }
}

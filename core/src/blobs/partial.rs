//! A download in progress: a sparse data file of the blob's full length, its
//! verified leaf list and a checkpoint of the leaves known to be on disk, so a
//! fetch resumes from exactly what was verified.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::hash::{has_outboard, leaf_count, leaf_len, BlobHash, Outboard, LEAF_SIZE};
use crate::error::{Error, Result};

/// Bytes read or written per I/O call when streaming a blob.
use super::store::{
    decode_exact, sync_dir, write_durable, BlobInfo, BlobStatus, BlobStore, CheckpointV1,
};

fn count_present(size: u64, have: &[u8]) -> u64 {
    (0..leaf_count(size))
        .filter(|&l| bit(have, l))
        .map(|l| leaf_len(size, l))
        .sum()
}

fn bit(bits: &[u8], i: u64) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// A download in progress: a sparse data file, its verified outboard and the set
/// of leaves on disk. Only verified leaves are ever written to it.
pub(crate) struct Partial {
    dir: PathBuf,
    pub(crate) file: File,
    pub(crate) outboard: Outboard,
    have: Vec<u8>,
    present: u64,
    /// SHA-256 over the verified prefix, advanced as leaves become contiguous.
    sha: Sha256,
    sha_leaf: u64,
    pub(crate) resumed_bytes: u64,
}

impl Partial {
    /// Starts a download whose outboard has been verified.
    pub(crate) fn create(store: &BlobStore, outboard: Outboard) -> Result<Partial> {
        let h = outboard.hash();
        let dir = store.partial_dir(&h);
        fs::create_dir_all(&dir)?;
        if has_outboard(outboard.size()) {
            write_durable(&dir.join("outboard"), &outboard.to_bytes())?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("data"))?;
        file.set_len(outboard.size())?;
        let have = vec![0u8; leaf_count(outboard.size()).div_ceil(8) as usize];
        let mut p = Partial {
            dir,
            file,
            outboard,
            have,
            present: 0,
            sha: Sha256::new(),
            sha_leaf: 0,
            resumed_bytes: 0,
        };
        p.checkpoint()?;
        sync_dir(&store.root.join("partial"))?;
        Ok(p)
    }

    /// Re-opens a download left by an earlier run. Leaves not in the checkpoint
    /// are re-checked from the data file, so a crash loses only the leaves that
    /// were being written, never verified data. A damaged checkpoint or outboard
    /// means starting over (`Ok(None)` after removing it); nothing unverified is kept.
    pub(crate) fn open(store: &BlobStore, h: BlobHash) -> Result<Option<Partial>> {
        let dir = store.partial_dir(&h);
        let ck = match fs::read(dir.join("checkpoint")) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let loaded = (|| {
            let c: CheckpointV1 = decode_exact(&ck, "blob checkpoint")?;
            if c.version != 1 || c.have.len() as u64 != leaf_count(c.size).div_ceil(8) {
                return Err(Error::Corrupt(
                    "blob checkpoint does not fit its size".into(),
                ));
            }
            let ob = if has_outboard(c.size) {
                fs::read(dir.join("outboard"))?
            } else {
                Vec::new()
            };
            let outboard = Outboard::verify(h, c.size, &ob)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.join("data"))?;
            if file.metadata()?.len() != c.size {
                file.set_len(c.size)?;
            }
            Ok((c, outboard, file))
        })();
        let (c, outboard, file) = match loaded {
            Ok(v) => v,
            Err(e) if e.kind() == crate::ErrorKind::Corrupt => {
                tracing::warn!(hash = %h, error = %e, "damaged partial download; starting over");
                store.remove_partial(&h)?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut p = Partial {
            dir,
            file,
            outboard,
            have: c.have,
            present: 0,
            sha: Sha256::new(),
            sha_leaf: 0,
            resumed_bytes: 0,
        };
        p.rescan()?;
        p.resumed_bytes = p.present;
        Ok(Some(p))
    }

    fn rescan(&mut self) -> Result<()> {
        let size = self.size();
        let mut buf = vec![0u8; LEAF_SIZE as usize];
        let mut present = 0;
        for l in 0..leaf_count(size) {
            let len = leaf_len(size, l) as usize;
            if self.has(l) {
                present += len as u64;
                continue;
            }
            self.file.read_exact_at(&mut buf[..len], l * LEAF_SIZE)?;
            if self.outboard.check_leaf(l, &buf[..len]) {
                self.set(l);
                present += len as u64;
            }
        }
        self.present = present;
        Ok(())
    }

    pub(crate) fn size(&self) -> u64 {
        self.outboard.size()
    }

    pub(crate) fn hash(&self) -> BlobHash {
        self.outboard.hash()
    }

    pub(crate) fn present(&self) -> u64 {
        self.present
    }

    pub(crate) fn has(&self, leaf: u64) -> bool {
        bit(&self.have, leaf)
    }

    fn set(&mut self, leaf: u64) {
        if let Some(b) = self.have.get_mut((leaf / 8) as usize) {
            *b |= 1 << (leaf % 8);
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.present == self.size()
    }

    /// Writes leaves starting at `first` that the caller has verified.
    pub(crate) fn write_verified(&mut self, first: u64, data: &[u8]) -> Result<()> {
        self.file.write_all_at(data, first * LEAF_SIZE)?;
        for (i, leaf) in data.chunks(LEAF_SIZE as usize).enumerate() {
            let l = first + i as u64;
            if !self.has(l) {
                self.set(l);
                self.present += leaf.len() as u64;
            }
        }
        self.advance_sha(first, data)
    }

    /// Feeds SHA-256 every leaf of the contiguous verified prefix, taking bytes
    /// from `data` (leaves from `first`) when it has them, else from the file.
    fn advance_sha(&mut self, first: u64, data: &[u8]) -> Result<()> {
        let n = leaf_count(self.size());
        let mut buf = Vec::new();
        while self.sha_leaf < n && self.has(self.sha_leaf) {
            let l = self.sha_leaf;
            let len = leaf_len(self.size(), l) as usize;
            let in_data = l >= first && ((l - first) * LEAF_SIZE) < data.len() as u64;
            if in_data {
                let start = ((l - first) * LEAF_SIZE) as usize;
                self.sha.update(&data[start..start + len]);
            } else {
                buf.resize(len, 0);
                self.file.read_exact_at(&mut buf, l * LEAF_SIZE)?;
                self.sha.update(&buf);
            }
            self.sha_leaf += 1;
        }
        Ok(())
    }

    /// Makes what is written durable and records it.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        self.file.sync_data()?;
        let c = CheckpointV1 {
            version: 1,
            size: self.size(),
            have: self.have.clone(),
        };
        let bytes = postcard::to_allocvec(&c).map_err(|e| Error::Internal(e.to_string()))?;
        write_durable(&self.dir.join("checkpoint"), &bytes)
    }

    /// Finishes a complete download: syncs, records the SHA-256 and moves it
    /// into the complete store.
    pub(crate) fn finish(mut self, store: &BlobStore) -> Result<BlobInfo> {
        if !self.is_complete() {
            return Err(Error::Internal("finish on an incomplete blob".into()));
        }
        self.advance_sha(0, &[])?;
        self.file.sync_all()?;
        let sha256: [u8; 32] = std::mem::take(&mut self.sha).finalize().into();
        let dir = self.dir.clone();
        let _ = fs::remove_file(dir.join("checkpoint"));
        let ob = self.outboard.clone();
        drop(self);
        store.install(&dir, &ob, sha256)
    }
}

/// Views over complete blobs and partial downloads alike.
impl BlobStore {
    pub(crate) fn status(&self, h: &BlobHash) -> Result<BlobStatus> {
        if let Some(i) = self.info(h)? {
            return Ok(BlobStatus::Complete(i));
        }
        let dir = self.partial_dir(h);
        match fs::read(dir.join("checkpoint")) {
            Ok(b) => {
                let c: CheckpointV1 = decode_exact(&b, "blob checkpoint")?;
                let present = count_present(c.size, &c.have);
                Ok(BlobStatus::Partial {
                    size: c.size,
                    present,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BlobStatus::Missing),
            Err(e) => Err(e.into()),
        }
    }

    /// Copies a verified range of a complete blob or a partial download into `out`.
    /// Fails with `NotFound` unless every byte of the range is verified here.
    pub(crate) fn read_range(&self, h: &BlobHash, offset: u64, len: u64) -> Result<Vec<u8>> {
        let (file, size) = if let Some((f, ob)) = self.open_complete(h)? {
            (f, ob.size())
        } else if let Some(p) = Partial::open(self, *h)? {
            let end = offset.saturating_add(len).min(p.size());
            if len > 0 && offset < p.size() {
                let (a, b) = (offset / LEAF_SIZE, (end - 1) / LEAF_SIZE);
                if (a..=b).any(|l| !p.has(l)) {
                    return Err(Error::NotFound(format!(
                        "bytes {offset}..{end} of blob {h} are not here yet"
                    )));
                }
            }
            let size = p.size();
            (p.file, size)
        } else {
            return Err(Error::NotFound(format!("blob {h}")));
        };
        if offset > size {
            return Err(Error::InvalidArgument(format!(
                "offset {offset} is past the end of a {size} byte blob"
            )));
        }
        let n = len.min(size - offset) as usize;
        let mut out = vec![0u8; n];
        file.read_exact_at(&mut out, offset)?;
        Ok(out)
    }
}

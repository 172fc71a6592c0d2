//! The blob store on disk, under `<data_dir>/blobs/`:
//!
//! ```text
//! complete/<hash>/data       the blob's bytes
//! complete/<hash>/outboard   leaf chaining values (blobs over 64 KiB)
//! complete/<hash>/meta       size, SHA-256, time added
//! partial/<hash>/data        a download in progress (sparse file, full length)
//! partial/<hash>/outboard    its verified leaf list
//! partial/<hash>/checkpoint  which leaves are known to be on disk
//! tmp/                       imports in progress; emptied at open
//! ```
//!
//! A blob becomes complete by renaming its directory, so a crash leaves either a
//! partial or a complete blob, never a half-moved one. Nothing here holds a blob
//! in memory: imports, exports and transfers stream in bounded pieces.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hash::{has_outboard, leaf_count, leaf_len, BlobHash, LeafHasher, Outboard, LEAF_SIZE};
use crate::error::{Error, Result};
use crate::locks::LockExt;

/// Bytes read or written per I/O call when streaming a blob.
pub(crate) const IO_PIECE: usize = 1 << 20;

/// A complete blob in the local store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// BLAKE3 of the bytes: the blob's name.
    pub hash: BlobHash,
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, for tools that verify with it.
    pub sha256: [u8; 32],
    /// When the blob entered this store.
    pub added: SystemTime,
}

impl BlobInfo {
    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How much of a blob this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStatus {
    /// Not here at all.
    Missing,
    /// A download was started: `present` of `size` bytes are on disk and verified.
    Partial {
        /// Blob length.
        size: u64,
        /// Verified bytes on disk.
        present: u64,
    },
    /// All of it, verified.
    Complete(BlobInfo),
}

#[derive(Serialize, Deserialize)]
struct MetaV1 {
    version: u8,
    size: u64,
    sha256: [u8; 32],
    added_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct CheckpointV1 {
    version: u8,
    size: u64,
    have: Vec<u8>,
}

fn decode_exact<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    let (v, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|e| Error::Corrupt(format!("{what}: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::Corrupt(format!(
            "{what}: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(v)
}

fn encode_meta(size: u64, sha256: [u8; 32], added: SystemTime) -> Vec<u8> {
    let added_ms = added
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    postcard::to_allocvec(&MetaV1 {
        version: 1,
        size,
        sha256,
        added_ms,
    })
    .unwrap_or_default()
}

/// Decodes a checkpoint file as a partial's open does (for the fuzz targets).
#[cfg(fuzzing)]
pub(crate) fn decode_checkpoint(bytes: &[u8]) -> Result<()> {
    decode_exact::<CheckpointV1>(bytes, "blob checkpoint").map(|_| ())
}

pub(crate) fn decode_meta(hash: BlobHash, bytes: &[u8]) -> Result<BlobInfo> {
    let m: MetaV1 = decode_exact(bytes, "blob meta")?;
    if m.version != 1 {
        return Err(Error::Corrupt(format!("blob meta version {}", m.version)));
    }
    Ok(BlobInfo {
        hash,
        size: m.size,
        sha256: m.sha256,
        added: UNIX_EPOCH + Duration::from_millis(m.added_ms),
    })
}

/// Writes `bytes` to `path` durably (temp file, fsync, rename).
fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)?.sync_all()?;
    Ok(())
}

/// The on-disk blob store of one node.
pub(crate) struct BlobStore {
    root: PathBuf,
    /// Serialises GC against blobs becoming complete.
    pub(crate) gc_lock: Mutex<()>,
}

impl BlobStore {
    pub(crate) fn open(data_dir: &Path) -> Result<BlobStore> {
        let root = data_dir.join("blobs");
        for d in ["complete", "partial", "tmp"] {
            fs::create_dir_all(root.join(d))?;
        }
        // Imports that were in progress at a crash are abandoned.
        for e in fs::read_dir(root.join("tmp"))? {
            let p = e?.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
        Ok(BlobStore {
            root,
            gc_lock: Mutex::new(()),
        })
    }

    fn complete_dir(&self, h: &BlobHash) -> PathBuf {
        self.root.join("complete").join(h.to_hex())
    }

    fn partial_dir(&self, h: &BlobHash) -> PathBuf {
        self.root.join("partial").join(h.to_hex())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{:016x}", rand::random::<u64>()))
    }

    /// Info of a complete blob.
    pub(crate) fn info(&self, h: &BlobHash) -> Result<Option<BlobInfo>> {
        match fs::read(self.complete_dir(h).join("meta")) {
            Ok(b) => decode_meta(*h, &b).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

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

    /// Every complete blob.
    pub(crate) fn list(&self) -> Result<Vec<BlobInfo>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("complete"))? {
            let e = e?;
            let Some(h) = e
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<BlobHash>().ok())
            else {
                continue;
            };
            match self.info(&h) {
                Ok(Some(i)) => out.push(i),
                Ok(None) => {}
                Err(err) => tracing::warn!(hash = %h, error = %err, "unreadable blob meta"),
            }
        }
        out.sort_by_key(|i| i.hash);
        Ok(out)
    }

    /// Opens the data file of a complete blob with its verified outboard.
    pub(crate) fn open_complete(&self, h: &BlobHash) -> Result<Option<(File, Outboard)>> {
        let Some(info) = self.info(h)? else {
            return Ok(None);
        };
        let dir = self.complete_dir(h);
        let file = File::open(dir.join("data"))?;
        if file.metadata()?.len() != info.size {
            return Err(Error::Corrupt(format!(
                "blob {h} data has the wrong length"
            )));
        }
        let ob = if has_outboard(info.size) {
            fs::read(dir.join("outboard"))?
        } else {
            Vec::new()
        };
        Ok(Some((file, Outboard::verify(*h, info.size, &ob)?)))
    }

    /// Imports from a reader: streams through a temp file while hashing, then
    /// moves the result into place.
    pub(crate) fn import(&self, src: impl Read) -> Result<BlobInfo> {
        let tmp = self.tmp_dir();
        fs::create_dir_all(&tmp)?;
        let res = File::create(tmp.join("data"))
            .map_err(Error::from)
            .and_then(|mut data| hash_stream(src, Some(&mut data)));
        let (ob, sha256) = match res {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        self.install(&tmp, &ob, sha256)
    }

    /// Moves a finished directory holding `data` into `complete/`.
    fn install(&self, dir: &Path, ob: &Outboard, sha256: [u8; 32]) -> Result<BlobInfo> {
        let h = ob.hash();
        let res = (|| {
            if has_outboard(ob.size()) {
                write_durable(&dir.join("outboard"), &ob.to_bytes())?;
            }
            // Millisecond precision, as stored.
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let added = UNIX_EPOCH + Duration::from_millis(ms);
            write_durable(&dir.join("meta"), &encode_meta(ob.size(), sha256, added))?;
            let _g = self.gc_lock.locked();
            let target = self.complete_dir(&h);
            if target.exists() {
                return Ok(None); // already stored: keep the existing copy
            }
            fs::rename(dir, &target)?;
            sync_dir(&self.root.join("complete"))?;
            Ok::<_, Error>(Some(BlobInfo {
                hash: h,
                size: ob.size(),
                sha256,
                added,
            }))
        })();
        match res {
            Ok(Some(info)) => Ok(info),
            Ok(None) => {
                let _ = fs::remove_dir_all(dir);
                self.info(&h)?
                    .ok_or_else(|| Error::Internal("blob vanished while being added".into()))
            }
            Err(e) => {
                let _ = fs::remove_dir_all(dir);
                Err(e)
            }
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

    /// Streams a complete blob to `dest` (written to a temp name, synced, renamed).
    pub(crate) fn export(&self, h: &BlobHash, dest: &Path) -> Result<u64> {
        let (mut file, ob) = self
            .open_complete(h)?
            .ok_or_else(|| Error::NotFound(format!("blob {h} is not complete here")))?;
        let tmp = dest.with_file_name(format!(
            ".{}.peat-tmp",
            dest.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("export")
        ));
        let res = (|| {
            let mut out = File::create(&tmp)?;
            let n = std::io::copy(&mut file, &mut out)?;
            if n != ob.size() {
                return Err(Error::Corrupt(format!("blob {h} changed length on disk")));
            }
            out.sync_all()?;
            fs::rename(&tmp, dest)?;
            Ok(n)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    /// Deletes complete blobs not in `keep` and added before `older_than`.
    /// Never touches partial downloads.
    pub(crate) fn collect(
        &self,
        keep: &HashSet<BlobHash>,
        older_than: SystemTime,
    ) -> Result<Vec<(BlobHash, u64)>> {
        let _g = self.gc_lock.locked();
        let mut removed = Vec::new();
        for info in self.list()? {
            if keep.contains(&info.hash) || info.added >= older_than {
                continue;
            }
            // Rename first: the blob disappears atomically, then the bytes go.
            let grave = self.tmp_dir();
            fs::rename(self.complete_dir(&info.hash), &grave)?;
            let _ = fs::remove_dir_all(&grave);
            removed.push((info.hash, info.size));
        }
        Ok(removed)
    }

    /// Removes the partial download of `h`, even a damaged one. Returns whether
    /// there was one.
    pub(crate) fn discard_partial(&self, h: &BlobHash) -> Result<bool> {
        let had = self.partial_dir(h).exists();
        self.remove_partial(h)?;
        Ok(had)
    }

    /// Removes a partial download (after the caller decided to abandon it).
    pub(crate) fn remove_partial(&self, h: &BlobHash) -> Result<()> {
        match fs::remove_dir_all(self.partial_dir(h)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads `src` to the end in 1 MiB pieces, computing the BLAKE3 leaves on this
/// thread and SHA-256 on a second one, and writing each piece to `out` if given.
/// Written data is pushed to disk every 64 MiB by a third thread, so the final
/// sync overlaps with hashing instead of following it.
pub(crate) fn hash_stream(
    mut src: impl Read,
    mut out: Option<&mut File>,
) -> Result<(Outboard, [u8; 32])> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(4);
    let sha = std::thread::Builder::new()
        .name("peat-sha256".into())
        .spawn(move || {
            let mut h = Sha256::new();
            for piece in rx {
                h.update(&piece);
            }
            let out: [u8; 32] = h.finalize().into();
            out
        })?;
    let flusher = match &out {
        Some(f) => {
            let f = f.try_clone()?;
            let (ftx, frx) = std::sync::mpsc::sync_channel::<()>(1);
            let h = std::thread::Builder::new()
                .name("peat-blob-flush".into())
                .spawn(move || {
                    for () in frx {
                        if let Err(e) = f.sync_data() {
                            tracing::debug!(error = %e, "early blob sync failed");
                        }
                    }
                })?;
            Some((ftx, h))
        }
        None => None,
    };
    let mut leaves = LeafHasher::new();
    let mut buf = vec![0u8; IO_PIECE];
    let mut total = 0u64;
    let read_res = loop {
        let n = match read_full(&mut src, &mut buf) {
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        if n == 0 {
            break Ok(());
        }
        if total + n as u64 > super::hash::MAX_BLOB_SIZE {
            break Err(Error::InvalidArgument(format!(
                "blob exceeds the {} byte limit",
                super::hash::MAX_BLOB_SIZE
            )));
        }
        total += n as u64;
        let piece = bytes::Bytes::copy_from_slice(&buf[..n]);
        if tx.send(piece.clone()).is_err() {
            break Err(Error::Internal("sha thread ended".into()));
        }
        leaves.update(&piece);
        if let Some(f) = out.as_deref_mut() {
            if let Err(e) = f.write_all(&piece) {
                break Err(e.into());
            }
            if total % (64 << 20) < n as u64 {
                if let Some((ftx, _)) = &flusher {
                    let _ = ftx.try_send(());
                }
            }
        }
    };
    drop(tx);
    let sha256 = sha
        .join()
        .map_err(|_| Error::Internal("sha thread panicked".into()))?;
    if let Some((ftx, h)) = flusher {
        drop(ftx);
        let _ = h.join();
    }
    read_res?;
    if let Some(f) = out {
        f.sync_all()?;
    }
    Ok((leaves.finish(), sha256))
}

fn read_full(src: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn blob(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn import_names_by_blake3_and_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = blob(300_000);
        let info = s.import(&d[..]).unwrap();
        assert_eq!(info.hash, BlobHash::of(&d));
        let sha: [u8; 32] = Sha256::digest(&d).into();
        assert_eq!(info.sha256, sha);
        assert_eq!(
            s.read_range(&info.hash, 70_000, 10).unwrap(),
            d[70_000..70_010]
        );
        // importing again keeps one copy
        assert_eq!(s.import(&d[..]).unwrap().hash, info.hash);
        assert_eq!(s.list().unwrap().len(), 1);
        let out = dir.path().join("out.bin");
        s.export(&info.hash, &out).unwrap();
        assert_eq!(fs::read(&out).unwrap(), d);
    }

    #[test]
    fn partial_resumes_from_verified_leaves_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = blob(5 * LEAF_SIZE as usize + 100);
        let mut lh = LeafHasher::new();
        lh.update(&d);
        let ob = lh.finish();
        let h = ob.hash();
        let l = LEAF_SIZE as usize;
        {
            let mut p = Partial::create(&s, ob.clone()).unwrap();
            p.write_verified(0, &d[..l]).unwrap();
            // written after the last checkpoint: found by the rescan
            p.write_verified(3, &d[3 * l..4 * l]).unwrap();
            // garbage where leaf 2 goes (as if a crash tore it): not accepted
            p.file.write_all_at(&[9u8; 100], 2 * LEAF_SIZE).unwrap();
        }
        let mut p = Partial::open(&s, h).unwrap().unwrap();
        assert!(p.has(0) && p.has(3) && !p.has(1) && !p.has(2));
        assert_eq!(p.resumed_bytes, 2 * LEAF_SIZE);
        assert!(s.read_range(&h, 0, 10).is_ok());
        assert!(s.read_range(&h, LEAF_SIZE, 10).is_err());
        for leaf in [1u64, 2, 4, 5] {
            let a = (leaf * LEAF_SIZE) as usize;
            let b = (a + l).min(d.len());
            p.write_verified(leaf, &d[a..b]).unwrap();
        }
        assert!(p.is_complete());
        let info = p.finish(&s).unwrap();
        let sha: [u8; 32] = Sha256::digest(&d).into();
        assert_eq!(info.sha256, sha);
        assert!(matches!(s.status(&h).unwrap(), BlobStatus::Complete(_)));
    }

    #[test]
    fn damaged_checkpoint_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = blob(3 * LEAF_SIZE as usize);
        let mut lh = LeafHasher::new();
        lh.update(&d);
        let ob = lh.finish();
        let h = ob.hash();
        drop(Partial::create(&s, ob).unwrap());
        fs::write(s.partial_dir(&h).join("checkpoint"), b"\x01\x05").unwrap();
        assert!(Partial::open(&s, h).unwrap().is_none());
        assert_eq!(s.status(&h).unwrap(), BlobStatus::Missing);
    }

    #[test]
    fn gc_keeps_what_it_is_told_and_never_partials() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let a = s.import(&blob(10)[..]).unwrap();
        let b = s.import(&blob(20)[..]).unwrap();
        let mut lh = LeafHasher::new();
        lh.update(&blob(200_000));
        let part = Partial::create(&s, lh.finish()).unwrap();
        let keep: HashSet<_> = [a.hash].into();
        let removed = s
            .collect(&keep, SystemTime::now() + Duration::from_secs(1))
            .unwrap();
        assert_eq!(removed, vec![(b.hash, 20)]);
        assert!(s.info(&a.hash).unwrap().is_some());
        assert!(matches!(
            s.status(&part.hash()).unwrap(),
            BlobStatus::Partial { .. }
        ));
    }

    proptest! {
        #[test]
        fn meta_and_checkpoint_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_meta(BlobHash([0; 32]), &bytes);
            let _ = decode_exact::<CheckpointV1>(&bytes, "ck");
        }

        #[test]
        fn truncated_meta_is_an_error(cut in 0usize..40) {
            let m = encode_meta(5, [1; 32], SystemTime::now());
            prop_assume!(cut < m.len());
            prop_assert!(decode_meta(BlobHash([0; 32]), &m[..cut]).is_err());
        }
    }
}

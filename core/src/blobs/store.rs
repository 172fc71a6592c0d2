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
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hash::{has_outboard, BlobHash, LeafHasher, Outboard};
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
pub(super) struct CheckpointV1 {
    pub(super) version: u8,
    pub(super) size: u64,
    pub(super) have: Vec<u8>,
}

pub(super) fn decode_exact<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
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
pub(super) fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

pub(super) fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)?.sync_all()?;
    Ok(())
}

/// The on-disk blob store of one node.
pub(crate) struct BlobStore {
    pub(super) root: PathBuf,
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

    pub(super) fn partial_dir(&self, h: &BlobHash) -> PathBuf {
        self.root.join("partial").join(h.to_hex())
    }

    pub(super) fn tmp_dir(&self) -> PathBuf {
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
    pub(super) fn install(&self, dir: &Path, ob: &Outboard, sha256: [u8; 32]) -> Result<BlobInfo> {
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

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;

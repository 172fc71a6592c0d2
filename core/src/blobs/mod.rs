//! Blobs: large files moved between peers, verified, resumable, in bounded memory.
//!
//! A blob is named by the BLAKE3 hash of its bytes ([`BlobHash`]); its SHA-256
//! is recorded too. Add one from a file or a stream, fetch one from a peer (or
//! from every connected peer that has it) as a [`Transfer`] with progress and
//! cancel, read a byte range, export it to a path. Every 64 KiB leaf is checked
//! against the hash before it is written, and a fetch cut off by a dropped link
//! or a killed process resumes from what is on disk, losing at most the chunk
//! that was in flight.
//!
//! Documents refer to blobs with a [`BlobRef`] object (`{"$blob": "<hash>",
//! "size": n}`); [`Blobs::fetch_referenced`] fetches what a document refers to,
//! and [`Blobs::gc`] keeps every blob a live document refers to.
//!
//! ```no_run
//! # async fn demo(a: peat_mesh::Node, b: peat_mesh::Node) -> peat_mesh::Result<()> {
//! use peat_mesh::blobs::{BlobRef, FetchOptions, TransferProfile};
//! let info = a.blobs().add_file("/data/tiles.mbtiles").await?;
//! a.put("missions", "m1", &serde_json::json!({"tiles": BlobRef::from(&info).to_json()})).await?;
//! // on b, once the document has synced:
//! let t = b.blobs().fetch(info.hash, FetchOptions::default().profile(TransferProfile::EDGE));
//! let got = t.wait().await?;
//! assert_eq!(got.sha256, info.sha256);
//! # Ok(()) }
//! ```

mod fetch;
mod hash;
mod pace;
mod partial;
mod profile;
mod protocol;
pub(crate) mod provider;
mod providers;
mod pump;
mod refs;
mod sink;
mod store;
mod transfer;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, watch};

pub use hash::{BlobHash, Outboard, LEAF_SIZE};
pub use profile::TransferProfile;
pub use refs::BlobRef;
pub use store::{BlobInfo, BlobStatus};
pub use transfer::{FetchOptions, Progress, Transfer};

pub(crate) use provider::BlobProtocol;

/// A raw `Get` request (for tests that speak the wire protocol by hand).
#[cfg(test)]
pub(crate) fn protocol_request_for_tests(
    hash: BlobHash,
    ranges: Vec<(u64, u64)>,
) -> protocol::BlobRequest {
    protocol::BlobRequest::Get {
        hash,
        outboard: false,
        ranges,
        rate: 0,
    }
}
pub(crate) use store::BlobStore;

/// The blob decoders, for the fuzz targets.
#[cfg(fuzzing)]
pub(crate) mod fuzz_decoders {
    pub(crate) use super::protocol::{
        check_ranges, decode, served_class, BlobRequest, BlobResponse,
    };
    pub(crate) use super::store::{decode_checkpoint, decode_meta};
}

/// The blob wire types, for tests that play a misbehaving provider.
#[cfg(test)]
pub(crate) mod test_wire {
    pub(crate) use super::hash::LeafHasher;
    pub(crate) use super::protocol::{read_request, write_response, BlobRequest, BlobResponse};
}

use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::storage::Store;
use crate::storage::{self, DocKey};
use crate::transport::Connections;
use crate::transport::NodeContext;
use crate::NodeId;

/// State shared by a node's blob handles and its provider.
pub(crate) struct BlobState {
    pub store: Arc<BlobStore>,
    pub counters: Arc<fetch::Counters>,
    pub active: Mutex<HashMap<BlobHash, Transfer>>,
    pub gc_grace: Duration,
    /// The node's runtime: transfers run there whichever thread starts them.
    pub rt: tokio::runtime::Handle,
    /// Permits for blob requests served at once ([`provider::MAX_STREAMS_TOTAL`]).
    pub serving: Arc<tokio::sync::Semaphore>,
    /// The node's bond, when it has links: its PACE policy may keep blobs
    /// off some links ([`crate::links::PacePolicy::bulk_max_level`]).
    pub bond: std::sync::OnceLock<crate::links::Bond>,
    /// Blob streams go at a lower QUIC priority than document sync
    /// ([`crate::NodeConfig::qos`]; on by default).
    pub qos: std::sync::atomic::AtomicBool,
}

impl BlobState {
    pub(crate) fn open(data_dir: &Path, gc_grace: Duration) -> Result<BlobState> {
        Ok(BlobState {
            store: Arc::new(BlobStore::open(data_dir)?),
            counters: Default::default(),
            active: Mutex::new(HashMap::new()),
            gc_grace,
            rt: tokio::runtime::Handle::current(),
            serving: Arc::new(tokio::sync::Semaphore::new(provider::MAX_STREAMS_TOTAL)),
            bond: std::sync::OnceLock::new(),
            qos: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The QUIC priority of blob streams.
    pub(crate) fn priority(&self) -> i32 {
        if self.qos.load(std::sync::atomic::Ordering::Relaxed) {
            protocol::BLOB_PRIORITY
        } else {
            0
        }
    }

    /// Why blob bytes may not go to or come from `peer` now (the link policy);
    /// `None` if they may.
    pub(crate) fn bulk_refused(&self, peer: &crate::NodeId) -> Option<String> {
        self.bond.get()?.bulk_refused(peer)
    }
}

/// Blob traffic since the node opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobStats {
    /// Bytes of blob data sent to peers.
    pub bytes_served: u64,
    /// Bytes of blob data received from peers.
    pub bytes_received: u64,
    /// Received bytes that failed verification and were dropped.
    pub bytes_rejected: u64,
}

/// What one garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The blobs deleted.
    pub removed: Vec<BlobHash>,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Blobs kept because a live document refers to them.
    pub referenced: usize,
}

/// The blob side of a [`crate::Node`]; get one with [`crate::Node::blobs`].
/// Cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    pub(crate) node: Arc<NodeContext>,
    pub(crate) store: Arc<Store>,
    pub(crate) connections: Arc<Connections>,
    pub(crate) shared: Arc<BlobState>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs").finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

impl Blobs {
    fn fetch_env(&self) -> providers::FetchEnv {
        providers::FetchEnv {
            node: self.node.clone(),
            connections: self.connections.clone(),
            shared: self.shared.clone(),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.node.cancel.is_cancelled() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Adds a file's contents (copied into the store, streamed, hashed on the way).
    pub async fn add_file(&self, path: impl AsRef<Path>) -> Result<BlobInfo> {
        self.check_open()?;
        let path = path.as_ref().to_path_buf();
        let store = self.shared.store.clone();
        blocking(move || {
            let f = std::fs::File::open(&path)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
            store.import(f)
        })
        .await
    }

    /// The hash and SHA-256 a file would get as a blob, without adding it
    /// (to ask peers or the store whether it is already there).
    pub async fn hash_file(&self, path: impl AsRef<Path>) -> Result<(BlobHash, [u8; 32])> {
        let path = path.as_ref().to_path_buf();
        blocking(move || {
            let f = std::fs::File::open(&path)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
            let (ob, sha) = store::hash_stream(f, None)?;
            Ok((ob.hash(), sha))
        })
        .await
    }

    /// Adds bytes held in memory.
    pub async fn add_bytes(&self, bytes: impl Into<Bytes>) -> Result<BlobInfo> {
        self.check_open()?;
        let bytes: Bytes = bytes.into();
        let store = self.shared.store.clone();
        blocking(move || store.import(&bytes[..])).await
    }

    /// Adds everything `reader` yields, in bounded pieces.
    pub async fn add_reader<R: AsyncRead + Unpin + Send>(&self, mut reader: R) -> Result<BlobInfo> {
        self.check_open()?;
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let store = self.shared.store.clone();
        let import = tokio::task::spawn_blocking(move || store.import(ChannelReader::new(rx)));
        let mut buf = vec![0u8; store::IO_PIECE];
        let read_res: Result<()> = async {
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                tx.send(Bytes::copy_from_slice(&buf[..n]))
                    .await
                    .map_err(|_| Error::Internal("blob importer stopped".into()))?;
            }
        }
        .await;
        match read_res {
            Ok(()) => {
                drop(tx);
                import.await.map_err(|e| Error::Internal(e.to_string()))?
            }
            Err(e) => {
                // Poison the import so the half-read blob is discarded.
                let _ = tx.send(Bytes::new()).await;
                drop(tx);
                let _ = import.await;
                Err(e)
            }
        }
    }

    /// Starts fetching `hash` into the store. If a fetch of it is already
    /// running, returns that one. If the blob is already here, the transfer
    /// completes at once.
    pub fn fetch(&self, hash: BlobHash, opts: FetchOptions) -> Transfer {
        let mut active = self.shared.active.locked();
        if let Some(t) = active.get(&hash) {
            if !t.is_finished() {
                return t.clone();
            }
        }
        let t = fetch::start(self.fetch_env(), hash, opts);
        active.insert(hash, t.clone());
        t
    }

    /// Throws away a partial download of `hash` (the verified pieces held so
    /// far), so that a later fetch starts from nothing. Returns whether there was
    /// one. A complete blob is never touched (see [`Blobs::gc`]); a fetch of
    /// `hash` that is running must be cancelled first, else this fails with
    /// `InvalidArgument`.
    pub async fn discard_partial(&self, hash: BlobHash) -> Result<bool> {
        self.check_open()?;
        let shared = self.shared.clone();
        blocking(move || {
            // Held while removing, so no fetch of this hash can start meanwhile.
            let active = shared.active.locked();
            if active.get(&hash).is_some_and(|t| !t.is_finished()) {
                return Err(Error::InvalidArgument(format!(
                    "a fetch of {hash} is running: cancel it before discarding its partial download"
                )));
            }
            let had = shared.store.discard_partial(&hash)?;
            drop(active);
            Ok(had)
        })
        .await
    }

    /// Streams a blob from `peer` in order, verified, without storing it.
    pub fn stream(&self, hash: BlobHash, peer: NodeId) -> BlobStream {
        let (tx, rx) = mpsc::channel::<Result<Bytes>>(4);
        let ctx = self.fetch_env();
        let cancel = self.node.cancel.child_token();
        let c2 = cancel.clone();
        let rt = self.shared.rt.clone();
        self.node.tasks.spawn_on(
            async move {
                let opts = FetchOptions::default()
                    .from([peer])
                    .profile(TransferProfile::DATACENTER);
                let progress = Arc::new(watch::channel(Progress::default()).0);
                let r = async {
                    let (ob, _) =
                        providers::fetch_outboard(&ctx, hash, &[peer], &opts, &c2).await?;
                    let target = sink::Target::Forward {
                        outboard: ob,
                        out: tx.clone(),
                    };
                    let (_, why) = pump::pump(&ctx, target, &[peer], &opts, &c2, &progress).await?;
                    match why {
                        Some(e) => Err(e),
                        None => Ok(()),
                    }
                }
                .await;
                if let Err(e) = r {
                    let _ = tx.send(Err(e)).await;
                }
            },
            &rt,
        );
        BlobStream { rx, cancel }
    }

    /// Copies a complete blob to `path` (synced, atomically renamed into place).
    pub async fn export(&self, hash: BlobHash, path: impl AsRef<Path>) -> Result<u64> {
        self.check_open()?;
        let store = self.shared.store.clone();
        let path = path.as_ref().to_path_buf();
        blocking(move || store.export(&hash, &path)).await
    }

    /// Reads `len` bytes from `offset` (fewer at the end of the blob). Works on a
    /// partial download too, for ranges already verified.
    pub async fn read_range(&self, hash: BlobHash, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.check_open()?;
        if len > 64 << 20 {
            return Err(Error::InvalidArgument(
                "read_range reads at most 64 MiB at a time".into(),
            ));
        }
        let store = self.shared.store.clone();
        blocking(move || store.read_range(&hash, offset, len)).await
    }

    /// How much of the blob is here: live progress for a running fetch.
    pub fn status(&self, hash: BlobHash) -> Result<BlobStatus> {
        let running = {
            let active = self.shared.active.locked();
            active
                .get(&hash)
                .filter(|t| !t.is_finished())
                .map(|t| t.progress())
        };
        match running {
            Some(p) if p.total > 0 => Ok(BlobStatus::Partial {
                size: p.total,
                present: p.done,
            }),
            _ => self.shared.store.status(&hash),
        }
    }

    /// The fetches running now, in hash order (one per blob: a second fetch
    /// of a blob joins the first). Each handle shows progress and can cancel.
    pub fn transfers(&self) -> Vec<Transfer> {
        let active = self.shared.active.locked();
        let mut running: Vec<Transfer> = active
            .values()
            .filter(|t| !t.is_finished())
            .cloned()
            .collect();
        running.sort_by_key(|t| t.hash);
        running
    }

    /// The stored blob, if complete here.
    pub fn info(&self, hash: BlobHash) -> Result<Option<BlobInfo>> {
        self.shared.store.info(&hash)
    }

    /// Every complete blob here.
    pub fn list(&self) -> Result<Vec<BlobInfo>> {
        self.shared.store.list()
    }

    /// Blob traffic counters.
    pub fn stats(&self) -> BlobStats {
        let c = &self.shared.counters;
        BlobStats {
            bytes_served: c.bytes_served.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            bytes_rejected: c.bytes_rejected.load(Ordering::Relaxed),
        }
    }

    /// The blobs a document refers to.
    pub fn refs_of(&self, collection: &str, id: &str) -> Result<Vec<BlobRef>> {
        let key = DocKey::new(collection, id)?;
        let doc = self
            .store
            .read(&key, |d| {
                if storage::is_tombstoned(d) {
                    Ok(None)
                } else {
                    storage::read_doc(d).map(Some)
                }
            })?
            .flatten();
        Ok(doc.map(|v| BlobRef::find_all(&v)).unwrap_or_default())
    }

    /// Fetches every blob the document refers to that is not here yet, and
    /// waits for them. Returns the info of every referenced blob.
    pub async fn fetch_referenced(
        &self,
        collection: &str,
        id: &str,
        opts: FetchOptions,
    ) -> Result<Vec<BlobInfo>> {
        let refs = self.refs_of(collection, id)?;
        let transfers: Vec<Transfer> = refs
            .iter()
            .map(|r| self.fetch(r.hash, opts.clone().expected_size(r.size)))
            .collect();
        let mut out = Vec::with_capacity(transfers.len());
        for t in transfers {
            out.push(t.wait().await?);
        }
        Ok(out)
    }

    /// Deletes every complete blob that no live document refers to, that is not
    /// being fetched and that was added longer ago than the grace period
    /// ([`crate::NodeConfig::blob_gc_grace`]). Partial downloads are never touched.
    pub async fn gc(&self) -> Result<GcReport> {
        self.check_open()?;
        let shared = self.shared.clone();
        let store = self.store.clone();
        blocking(move || {
            let mut keep: HashSet<BlobHash> = shared.active.locked().keys().copied().collect();
            let mut referenced = HashSet::new();
            store.scan_all(|key| {
                let refs = store
                    .peek(key, |d| {
                        if storage::is_tombstoned(d) {
                            return Ok(Vec::new());
                        }
                        Ok(BlobRef::find_all(&storage::read_doc(d)?))
                    })?
                    .unwrap_or_default();
                referenced.extend(refs.into_iter().map(|r| r.hash));
                Ok(())
            })?;
            keep.extend(referenced.iter().copied());
            let cutoff = SystemTime::now()
                .checked_sub(shared.gc_grace)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let removed = shared.store.collect(&keep, cutoff)?;
            Ok(GcReport {
                bytes_freed: removed.iter().map(|(_, n)| n).sum(),
                removed: removed.into_iter().map(|(h, _)| h).collect(),
                referenced: referenced.len(),
            })
        })
        .await
    }
}

/// Verified bytes of a blob, in order, from [`Blobs::stream`]. Dropping it
/// stops the transfer.
pub struct BlobStream {
    rx: mpsc::Receiver<Result<Bytes>>,
    cancel: tokio_util::sync::CancellationToken,
}

impl BlobStream {
    /// The next piece; `None` at the end of the blob.
    pub async fn next(&mut self) -> Option<Result<Bytes>> {
        self.rx.recv().await
    }
}

impl Drop for BlobStream {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A blocking reader over pieces sent through a channel; an empty piece means
/// the sender failed, which fails the read.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) if b.is_empty() => {
                    return Err(std::io::Error::other("source stream failed"));
                }
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

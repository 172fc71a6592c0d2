//! The writer thread: queued writes group-committed, fail-stop after a failed
//! commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::meta::{vid_index_key, Meta, INCREMENTS, META, SNAPSHOTS, VIDS};
use super::signatures::{doc_range, SIGNATURES};
use crate::error::{Error, Result};

/// Messages the writer thread's queue holds (1,024: its slots are allocated
/// up front, ~40 B each: a write is boxed); a write past it waits for the
/// writer (back-pressure), so queued writes, and the document cells they pin in
/// the cache, are bounded by it.
pub(crate) const WRITER_QUEUE: usize = 1024;

pub(super) struct WriteOp {
    pub(super) skey: String,
    pub(super) old: Option<Meta>,
    pub(super) meta: Meta,
    /// Change chunks to append, or a full snapshot that replaces all rows.
    pub(super) data: WriteData,
    /// Signatures of the new changes to keep (change hash, row).
    pub(super) sigs: Vec<(crate::wire::Hash32, super::signatures::SigRow)>,
    /// Drop the document's stored signatures first (its history was replaced).
    pub(super) clear_sigs: bool,
    pub(super) pending: Arc<AtomicUsize>,
    pub(super) ack: oneshot::Sender<Result<()>>,
}

pub(super) enum WriteData {
    Append(Vec<u8>),
    Snapshot(Vec<u8>),
    /// Removes the document's rows (`old` is its metadata; `meta` unused).
    Purge,
}

/// What the writer thread receives.
pub(super) enum WriterMsg {
    Write(Box<WriteOp>),
    /// Writes committed together (a page of garbage collection's removals).
    Writes(Vec<WriteOp>),
    /// Acknowledged once every write queued before it is durable.
    Barrier(oneshot::Sender<()>),
    /// The same, for a thread that blocks on it.
    BarrierSync(mpsc::SyncSender<()>),
}

/// Commits queued writes in batches. After a failed commit it commits
/// nothing more: every later write is refused (its caller gets the error and
/// it was never acknowledged), so no write that depends on a lost one lands.
pub(super) fn writer_loop(
    db: &Database,
    rx: mpsc::Receiver<WriterMsg>,
    failed: &std::sync::OnceLock<String>,
    failure: &tokio::sync::watch::Sender<Option<String>>,
) {
    const MAX_BATCH: usize = 4096;
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        while msgs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(msgs.len());
        let mut barriers = Vec::new();
        let mut sync_barriers = Vec::new();
        for m in msgs {
            match m {
                WriterMsg::Write(op) => batch.push(*op),
                WriterMsg::Writes(ops) => batch.extend(ops),
                WriterMsg::Barrier(b) => barriers.push(b),
                WriterMsg::BarrierSync(b) => sync_barriers.push(b),
            }
        }
        let result = if batch.is_empty() {
            Ok(())
        } else if let Some(why) = failed.get() {
            Err(Error::Io(std::io::Error::other(format!(
                "an earlier commit failed ({why})"
            ))))
        } else {
            commit_batch(db, &batch)
        };
        if let Err(e) = &result {
            if failed.set(e.to_string()).is_ok() {
                tracing::error!(error = %e, ops = batch.len(), "store commit failed; no further writes are taken");
                failure.send_replace(Some(e.to_string()));
            }
        }
        for op in batch {
            op.pending.fetch_sub(1, Ordering::AcqRel);
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::Io(std::io::Error::other(e.to_string()))),
            };
            let _ = op.ack.send(r);
        }
        for b in barriers {
            let _ = b.send(());
        }
        for b in sync_barriers {
            let _ = b.send(());
        }
    }
}

pub(super) fn commit_batch(db: &Database, batch: &[WriteOp]) -> Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| Error::Internal(e.to_string()))?;
    {
        let mut meta = txn.open_table(META)?;
        let mut snaps = txn.open_table(SNAPSHOTS)?;
        let mut incr = txn.open_table(INCREMENTS)?;
        let mut vids = txn.open_table(VIDS)?;
        let mut sigs = txn.open_table(SIGNATURES)?;
        for op in batch {
            let skey = op.skey.as_str();
            if op.clear_sigs || matches!(op.data, WriteData::Purge) {
                sigs.retain_in(doc_range(skey), |_, _| false)?;
            }
            for (h, row) in &op.sigs {
                sigs.insert((skey, &h[..]), &row[..])?;
            }
            if let WriteData::Purge = op.data {
                snaps.remove(skey)?;
                incr.retain_in((skey, 0u64)..=(skey, u64::MAX), |_, _| false)?;
                if let Some(old) = &op.old {
                    vids.remove(vid_index_key(&old.vid, skey).as_slice())?;
                }
                meta.remove(skey)?;
                continue;
            }
            match &op.data {
                WriteData::Append(bytes) => {
                    incr.insert((skey, op.meta.next_seq - 1), bytes.as_slice())?;
                }
                WriteData::Snapshot(bytes) => {
                    snaps.insert(skey, bytes.as_slice())?;
                    incr.retain_in((skey, 0u64)..=(skey, u64::MAX), |_, _| false)?;
                }
                WriteData::Purge => {}
            }
            if let Some(old) = &op.old {
                vids.remove(vid_index_key(&old.vid, skey).as_slice())?;
            }
            vids.insert(vid_index_key(&op.meta.vid, skey).as_slice(), ())?;
            meta.insert(skey, op.meta.encode().as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

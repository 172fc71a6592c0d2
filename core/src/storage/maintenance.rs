//! Keeping the database file compact: at open (after a crash) and at close.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::meta::{INCREMENTS, META, SNAPSHOTS, VIDS};
use crate::error::{Error, Result};

/// Copy-on-write commits leave freed pages and spare regions behind; when the
/// file is more than `ratio` times what it holds, rewrite it compactly (about
/// 0.5 ms per 1,000 documents). redb's compaction does not reclaim everything, so
/// at open (after a crash) only a badly bloated file is compacted, at close one
/// that has grown by a third.
pub(super) fn compact_if_fragmented(db: &mut Database, path: &Path, ratio: f64) -> Result<()> {
    let stats = {
        let txn = db.begin_write()?;
        let s = txn.stats()?;
        txn.abort()?;
        s
    };
    let used = stats.stored_bytes() + stats.metadata_bytes();
    let file = std::fs::metadata(path)?.len();
    if file > 1 << 20 && file as f64 > used as f64 * ratio {
        let t = std::time::Instant::now();
        // Each pass moves what it can; repeat until nothing more moves (bounded).
        for _ in 0..8 {
            if !db
                .compact()
                .map_err(|e| Error::Database(redb::Error::from(e)))?
            {
                break;
            }
        }
        tracing::debug!(took = ?t.elapsed(), "store compacted");
    }
    Ok(())
}

/// Rewrites the database into a fresh file when it is over `min_file` bytes and
/// more than `ratio` times what it holds (at close: 1 MiB and 4/3) (redb's in-place compaction leaves much of the free space
/// of many small copy-on-write commits behind). The copy is made beside the
/// original and renamed over it only once durable, so a crash leaves one intact.
pub(super) fn vacuum_if_bloated(
    db: Database,
    path: &Path,
    min_file: u64,
    ratio: f64,
) -> Result<()> {
    let used = {
        let txn = db.begin_write()?;
        let s = txn.stats()?;
        txn.abort()?;
        s.stored_bytes() + s.metadata_bytes()
    };
    let file = std::fs::metadata(path)?.len();
    if file <= min_file || file as f64 <= used as f64 * ratio {
        return Ok(());
    }
    let t = std::time::Instant::now();
    let tmp = vacuum_path(path);
    let _ = std::fs::remove_file(&tmp);
    {
        let fresh = Database::builder().create(&tmp)?;
        let read = db.begin_read()?;
        let write = fresh.begin_write()?;
        copy_table(&read, &write, META)?;
        copy_table(&read, &write, SNAPSHOTS)?;
        copy_table(&read, &write, INCREMENTS)?;
        copy_table(&read, &write, VIDS)?;
        write.commit()?;
    }
    drop(db);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    tracing::debug!(took = ?t.elapsed(), before = file, "store rewritten");
    Ok(())
}

pub(super) fn vacuum_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".vacuum");
    p.into()
}

pub(super) fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &redb::ReadTransaction,
    write: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<()> {
    let src = read.open_table(def)?;
    let mut dst = write.open_table(def)?;
    for row in src.iter()? {
        let (k, v) = row?;
        dst.insert(k.value(), v.value())?;
    }
    Ok(())
}

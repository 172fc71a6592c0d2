//! `gc`: expiring documents by TTL. Time and peak memory to remove 100,000
//! expired documents in one garbage collection, beside redb alone deleting as
//! many rows in pages of the same size (one durable commit per page).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use peat_mesh::{CollectionPolicy, Node, NodeConfig};

use crate::{baseline, fill, formation, reset_peak, rss_kib, Out, Size};

pub(crate) async fn gc(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(100_000, 2_000);
    let dir = tempfile::tempdir()?;
    let mut cfg = NodeConfig::new(dir.path(), formation()).listen("127.0.0.1:0".parse()?);
    cfg.gc_interval = Duration::from_secs(24 * 3600); // only the pass measured here
    let node = Node::open(cfg).await?;
    fill(&node, "gc", n, 128).await?;
    let written = Instant::now();
    node.set_policy(
        "gc",
        CollectionPolicy::default().ttl(Duration::from_secs(1)),
    )?;
    // Lifetimes run on the wall clock: wait until every document is past it.
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(written.elapsed())).await;
    reset_peak();
    let base = rss_kib("VmRSS:");
    let t = Instant::now();
    let report = node.collect_garbage().await?;
    let took = t.elapsed();
    let peak = (rss_kib("VmHWM:") - base).max(0.0) / 1024.0;
    ensure!(
        report.expired_documents == n as u64,
        "expired {} of {n}",
        report.expired_documents
    );
    ensure!(node.document_count()? == 0, "documents left after expiry");
    node.close(Duration::from_secs(30)).await?;
    out.fig(
        "gc",
        &format!("expire {n} documents (one pass)"),
        took.as_secs_f64(),
        "s",
    );
    out.fig(
        "gc",
        "per expired document",
        took.as_secs_f64() * 1e6 / n as f64,
        "us",
    );
    out.fig("gc", "peak memory growth during the pass", peak, "MiB");
    let base = tokio::task::spawn_blocking(move || {
        let (_, file) = baseline::redb_batches(n, 4096)?;
        baseline::redb_delete_pages(&file, 4096)
    })
    .await??;
    out.fig(
        "gc",
        &format!("baseline: redb deletes {n} rows, 4096 a commit"),
        base.as_secs_f64(),
        "s",
    );
    out.fig(
        "gc",
        "ratio node / baseline",
        took.as_secs_f64() / base.as_secs_f64(),
        "x",
    );
    Ok(())
}

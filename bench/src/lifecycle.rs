//! `gc` and `latest-only`. `gc`: expiring documents by TTL. Time and peak memory to remove 100,000
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

/// `latest-only`: one document updated 10,000 times, in a latest-only and in
/// a full-history collection, synced live from A to B: bytes it takes on
/// disk and bytes B received per update. Baseline: plain Automerge, the same
/// updates as one growing document saved, beside its state saved alone.
pub(crate) async fn latest_only(out: &Out, size: &Size) -> Result<()> {
    use peat_mesh::{Policies, SyncMode};
    let n = size.n(10_000, 500);
    let policies = Policies::default().with(
        "latest",
        CollectionPolicy::default().sync(SyncMode::LatestOnly),
    )?;
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cfg = |d: &std::path::Path| -> Result<NodeConfig> {
        Ok(NodeConfig::new(d, formation())
            .listen("127.0.0.1:0".parse()?)
            .policies(policies.clone()))
    };
    let a = Node::open(cfg(da.path())?).await?;
    let b = Node::open(cfg(db.path())?).await?;
    b.connect(&a.peer_addr()).await?;
    for collection in ["latest", "full"] {
        let before = b.sync_stats().received.bytes();
        for i in 0..n {
            let v = serde_json::json!({"lat": 59.0 + i as f64 * 1e-6, "lon": 18.0, "seq": i});
            a.merge_patch(collection, "unit-1", &v).await?;
        }
        let last = Some(
            serde_json::json!({"lat": 59.0 + (n - 1) as f64 * 1e-6, "lon": 18.0, "seq": n - 1}),
        );
        let t = Instant::now();
        while b.get(collection, "unit-1")? != last {
            ensure!(
                t.elapsed() < Duration::from_secs(120),
                "{collection} did not converge"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let synced = (b.sync_stats().received.bytes() - before) as f64 / n as f64;
        if std::env::var("PEAT_BENCH_DEBUG").is_ok() {
            eprintln!("{collection}: {:?}", b.sync_stats().received.by_kind);
        }
        let stored = a.export(collection, "unit-1")?.map_or(0, |x| x.len());
        let name = if collection == "latest" {
            "latest-only"
        } else {
            "full history"
        };
        out.fig(
            "latest-only",
            &format!("{name}: document bytes after {n} updates"),
            stored as f64,
            "B",
        );
        out.fig(
            "latest-only",
            &format!("{name}: bytes synced per update"),
            synced,
            "B",
        );
    }
    a.close(Duration::from_secs(10)).await?;
    b.close(Duration::from_secs(10)).await?;
    let (grown, alone) =
        tokio::task::spawn_blocking(move || baseline::automerge_growth(n)).await??;
    out.fig(
        "latest-only",
        &format!("baseline: Automerge save after {n} updates"),
        grown as f64,
        "B",
    );
    out.fig(
        "latest-only",
        "baseline: Automerge save of the state alone",
        alone as f64,
        "B",
    );
    Ok(())
}

//! `stall`: how much a large initial sync (reconciliation, applying remote
//! changes, version scans) slows the calls an application makes meanwhile.
//! The nodes run on a two-worker runtime like the SDK's; a separate thread
//! calls in as a foreign caller does (`put` spawned onto the runtime and
//! waited for, `get` on the caller's thread). Baseline: the same calls on the
//! same idle node, in the same run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::{fill, open, pct, Out, Size};

/// Calls `put` and `get` every 2 ms from a plain thread until `stop`; returns
/// the sorted latencies of each.
fn probe(
    rt: tokio::runtime::Handle,
    node: peat_mesh::Node,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<(Vec<Duration>, Vec<Duration>)>> {
    std::thread::spawn(move || {
        let (mut puts, mut gets) = (Vec::new(), Vec::new());
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let n = node.clone();
            let t = Instant::now();
            rt.block_on(rt.spawn(async move { n.put("probe", "p", &json!({ "i": i })).await }))??;
            puts.push(t.elapsed());
            let t = Instant::now();
            node.get("probe", "p")?;
            gets.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(2));
        }
        puts.sort();
        gets.sort();
        Ok((puts, gets))
    })
}

pub(crate) fn stall(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(100_000, 2_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (a, _da) = rt.block_on(open())?;
    let (b, _db) = rt.block_on(open())?;
    rt.block_on(fill(&a, "tracks", n, 64))?;

    // Baseline: B idle, for about as many calls as the sync will see.
    let stop = Arc::new(AtomicBool::new(false));
    let idle = probe(rt.handle().clone(), b.clone(), stop.clone());
    std::thread::sleep(Duration::from_millis(if size.small { 300 } else { 2000 }));
    stop.store(true, Ordering::Relaxed);
    let (idle_puts, idle_gets) = idle
        .join()
        .map_err(|_| anyhow::anyhow!("probe panicked"))??;

    let stop = Arc::new(AtomicBool::new(false));
    let busy = probe(rt.handle().clone(), b.clone(), stop.clone());
    let t = Instant::now();
    rt.block_on(async {
        b.connect(&a.peer_addr()).await?;
        crate::wait_until(Duration::from_secs(600), || {
            Ok(b.document_count()? as usize > n)
        })
        .await
    })?;
    let took = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (puts, gets) = busy
        .join()
        .map_err(|_| anyhow::anyhow!("probe panicked"))??;

    out.fig(
        "stall",
        &format!("initial sync of {n} docs"),
        took.as_secs_f64(),
        "s",
    );
    out.fig(
        "stall",
        "put p99, idle node (baseline)",
        pct(&idle_puts, 0.99),
        "ms",
    );
    out.fig("stall", "put p99 during the sync", pct(&puts, 0.99), "ms");
    out.fig("stall", "put p50 during the sync", pct(&puts, 0.5), "ms");
    out.fig(
        "stall",
        "get p99, idle node (baseline)",
        pct(&idle_gets, 0.99),
        "ms",
    );
    out.fig("stall", "get p99 during the sync", pct(&gets, 0.99), "ms");
    out.fig("stall", "calls during the sync", puts.len() as f64, "puts");
    rt.block_on(async {
        a.close(Duration::from_secs(10)).await?;
        b.close(Duration::from_secs(10)).await
    })?;
    Ok(())
}

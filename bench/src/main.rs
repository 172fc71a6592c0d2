//! `peat-bench`: measures peat-mesh on this machine over loopback.
//!
//! ```text
//! cargo run --release --bin peat-bench -- <scenario|all> [--json] [--small]
//! ```
//! Scenarios: connect, sync-initial, update-latency, update-throughput, reconcile,
//! automerge-cost, store, startup, discover, reconnect (both in network
//! namespaces: root, and the `peat-mesh-node` binary next to this one),
//! blob-add, blob-transfer, blob-resume, stall, failover, thin-link,
//! lossy-link (links over the in-process medium), ble (the BLE link over its
//! in-process radio double), ephemeral, beacons. One line per figure; JSON lines
//! with `--json`. `--small` runs each scenario at a small size (CI uses it to
//! show the scenarios work).
//!
//! Absolute figures differ 2–3× between machines of one kind, so every timed
//! scenario also measures, in the same run, a baseline (metric ending in
//! "(baseline)"): the same work with the plain libraries or the machine's
//! limit for it, then a ratio line in "x" (figure ÷ baseline for times,
//! baseline ÷ figure for rates: how many times the baseline's cost):
//!
//! - connect: two bare iroh endpoints, connect + one 32 B bi-stream round trip.
//! - sync-initial: the same documents moved one by one between in-process
//!   Automerge documents by Automerge's sync protocol.
//! - update-latency: a 100 B message A->B on an open raw iroh stream.
//! - update-throughput, store: the same number of 200 B rows committed to a
//!   fresh redb file durably in batches of 64 / 128, and the disk's fsync rate;
//!   store also copies the rows to a fresh redb file (its close), and opens
//!   it and binds a bare iroh endpoint (its reopen).
//! - startup: the same binary spawned to print "ready" at once.
//! - blob-add: plain BLAKE3 (one thread), plain BLAKE3 + SHA-256 (two threads,
//!   as the node hashes), and a copy of the file + `sync_all`.
//! - blob-transfer: a raw iroh stream of the same bytes to a child process.
//! - discover: the same start with mDNS off and B given A's address.
//! - reconnect: a fresh dial (`add-peer`) to the doc flowing, same namespaces.
//! - stall: the same calls on the idle node.
//! - ephemeral: the same datagrams between bare iroh endpoints.
//! - beacons: a full scan of the same positions; a plain map of the same
//!   beacons (memory).
//!
//! reconcile (bytes, round trips), blob-resume (byte counts) and automerge-cost
//! (the plain library itself) do not depend on the machine's speed: no baseline.

mod baseline;
mod ble;
mod blobs;
mod discovery;
mod ephemeral;
mod lifecycle;
mod links;
mod priority;
mod service;
mod stall;
mod trust;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use peat_mesh::{Event, Formation, ListOptions, Node, NodeConfig};
use serde_json::json;
use tempfile::TempDir;

pub(crate) struct Out {
    json: bool,
}

impl Out {
    pub(crate) fn fig(&self, scenario: &str, metric: &str, value: f64, unit: &str) {
        if self.json {
            println!(
                "{}",
                json!({"scenario": scenario, "metric": metric, "value": value, "unit": unit})
            );
        } else {
            println!("{scenario:<18} {metric:<40} {value:>14.3} {unit}");
        }
    }
}

pub(crate) struct Size {
    pub(crate) small: bool,
}

impl Size {
    pub(crate) fn n(&self, full: usize, small: usize) -> usize {
        if self.small {
            small
        } else {
            full
        }
    }
}

pub(crate) fn formation() -> Formation {
    Formation::new("bench", [5; 32])
}

pub(crate) async fn open() -> Result<(Node, TempDir)> {
    let dir = tempfile::tempdir()?;
    let node =
        Node::open(NodeConfig::new(dir.path(), formation()).listen("127.0.0.1:0".parse()?)).await?;
    Ok((node, dir))
}

pub(crate) fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub(crate) async fn wait_until(
    timeout: Duration,
    mut f: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !f()? {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(())
}

/// Writes `n` documents of ~200 bytes with `par` concurrent writers.
pub(crate) async fn fill(node: &Node, collection: &str, n: usize, par: usize) -> Result<()> {
    let mut tasks = Vec::new();
    for w in 0..par {
        let node = node.clone();
        let collection = collection.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(par) {
                node.put(&collection, &format!("doc-{i:08}"), &doc_body(i))
                    .await?;
            }
            Ok::<_, peat_mesh::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

pub(crate) fn doc_body(i: usize) -> serde_json::Value {
    json!({"callsign": format!("UNIT-{i:06}"), "lat": 59.0 + i as f64 * 1e-6, "lon": 18.0 - i as f64 * 1e-6,
           "alt": 120, "speed": 12.5, "status": "active", "note": "x".repeat(60)})
}

async fn connect(out: &Out, size: &Size) -> Result<()> {
    let (a, _da) = open().await?;
    let (b, _db) = open().await?;
    let n = size.n(200, 10);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        b.connect(&a.peer_addr()).await?;
        times.push(t.elapsed());
        b.disconnect(&a.id());
        wait_until(Duration::from_secs(5), || {
            Ok(a.connected_peers() == 0 && b.connected_peers() == 0)
        })
        .await?;
    }
    times.sort();
    out.fig("connect", "connect+admission p50", pct(&times, 0.5), "ms");
    out.fig("connect", "connect+admission p99", pct(&times, 0.99), "ms");
    a.close(Duration::from_secs(5)).await?;
    b.close(Duration::from_secs(5)).await?;
    let base = baseline::iroh_connect(n).await?;
    out.fig(
        "connect",
        "raw iroh connect + 1 round trip p50 (baseline)",
        pct(&base, 0.5),
        "ms",
    );
    out.fig(
        "connect",
        "raw iroh connect + 1 round trip p99 (baseline)",
        pct(&base, 0.99),
        "ms",
    );
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        baseline::ratio_time(out, "connect", name, pct(&times, p), pct(&base, p));
    }
    Ok(())
}

async fn sync_initial(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(10_000, 500);
    let (a, _da) = open().await?;
    let (b, _db) = open().await?;
    fill(&a, "tracks", n, 64).await?;
    let t = Instant::now();
    let cpu = cpu_ms();
    b.connect(&a.peer_addr()).await?;
    wait_until(Duration::from_secs(120), || {
        Ok(b.document_count()? as usize >= n)
    })
    .await?;
    let took = t.elapsed().as_secs_f64() * 1000.0;
    let cpu = cpu_ms() - cpu;
    out.fig(
        "sync-initial",
        &format!("{n} docs A->B until B holds all"),
        took,
        "ms",
    );
    out.fig(
        "sync-initial",
        "CPU time of both nodes during it",
        cpu,
        "ms",
    );
    a.close(Duration::from_secs(5)).await?;
    b.close(Duration::from_secs(5)).await?;
    let base = tokio::task::spawn_blocking(move || baseline::automerge_sync(n)).await??;
    let base = base.as_secs_f64() * 1000.0;
    out.fig(
        "sync-initial",
        &format!("{n} docs by Automerge sync in memory (baseline)"),
        base,
        "ms",
    );
    baseline::ratio_time(out, "sync-initial", "time", took, base);
    Ok(())
}

async fn update_latency(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(1000, 50);
    let (a, _da) = open().await?;
    let (b, _db) = open().await?;
    b.connect(&a.peer_addr()).await?;
    a.put("lat", "d", &json!({"v": -1})).await?;
    wait_until(Duration::from_secs(10), || Ok(b.get("lat", "d")?.is_some())).await?;
    let sub = b.subscribe("lat", Some("d"), false)?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        a.merge_patch("lat", "d", &json!({"v": i})).await?;
        loop {
            match sub.next_timeout(Duration::from_secs(5)).await? {
                Some(Event::Item(e))
                    if e.value.as_ref().and_then(|v| v.get("v")) == Some(&json!(i)) =>
                {
                    break
                }
                Some(_) => continue,
                None => bail!("update {i} did not arrive"),
            }
        }
        times.push(t.elapsed());
    }
    times.sort();
    out.fig(
        "update-latency",
        "single-field update A->B p50",
        pct(&times, 0.5),
        "ms",
    );
    out.fig(
        "update-latency",
        "single-field update A->B p99",
        pct(&times, 0.99),
        "ms",
    );
    a.close(Duration::from_secs(5)).await?;
    b.close(Duration::from_secs(5)).await?;
    let base = baseline::iroh_one_way(n).await?;
    out.fig(
        "update-latency",
        "raw iroh 100 B message A->B p50 (baseline)",
        pct(&base, 0.5),
        "ms",
    );
    out.fig(
        "update-latency",
        "raw iroh 100 B message A->B p99 (baseline)",
        pct(&base, 0.99),
        "ms",
    );
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        baseline::ratio_time(out, "update-latency", name, pct(&times, p), pct(&base, p));
    }
    Ok(())
}

pub(crate) async fn throughput_run(a: &Node, b: &Node, doc: &str, n: usize) -> Result<f64> {
    let par = 64;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..par {
        let a = a.clone();
        let doc = doc.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(par) {
                a.merge_patch("tp", &doc, &json!({ format!("f{w}"): i }))
                    .await?;
            }
            Ok::<_, peat_mesh::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let want = a.get("tp", doc)?;
    let done = wait_until(Duration::from_secs(120), || Ok(b.get("tp", doc)? == want)).await;
    if std::env::var_os("PEAT_BENCH_STATS").is_some() {
        eprintln!("A: {:?}\nB: {:?}", a.sync_stats(), b.sync_stats());
    }
    done?;
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

async fn update_throughput(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(
        std::env::var("PEAT_TP_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000),
        1000,
    );
    let (a, _da) = open().await?;
    let (b, _db) = open().await?;
    b.connect(&a.peer_addr()).await?;
    let fresh = throughput_run(&a, &b, "fresh", n).await?;
    out.fig(
        "update-throughput",
        "durable updates/s A->B, fresh doc",
        fresh,
        "updates/s",
    );
    let history = size.n(10_000, 500);
    for i in 0..history {
        a.merge_patch("tp", "old", &json!({"h": i})).await?;
    }
    let old = throughput_run(&a, &b, "old", n).await?;
    out.fig(
        "update-throughput",
        &format!("durable updates/s A->B, doc with {history} changes"),
        old,
        "updates/s",
    );
    a.close(Duration::from_secs(5)).await?;
    b.close(Duration::from_secs(5)).await?;
    let (base, _file) =
        tokio::task::spawn_blocking(move || baseline::redb_batches(n, 64)).await??;
    out.fig(
        "update-throughput",
        &format!("redb {n} rows, batches of 64, durable (baseline)"),
        base,
        "rows/s",
    );
    fsync_fig(out, "update-throughput", size)?;
    baseline::ratio_rate(out, "update-throughput", "fresh doc", fresh, base);
    baseline::ratio_rate(out, "update-throughput", "doc with history", old, base);
    Ok(())
}

/// The disk's fsync rate (measured once per process), as a baseline figure.
fn fsync_fig(out: &Out, scenario: &str, size: &Size) -> Result<()> {
    let secs = if size.small { 0.2 } else { 1.0 };
    let rate = baseline::fsync_rate(Duration::from_secs_f64(secs))?;
    out.fig(
        scenario,
        "fsync rate, 64 B write + fdatasync (baseline)",
        rate,
        "fsyncs/s",
    );
    Ok(())
}

fn reconcile(out: &Out, size: &Size) -> Result<()> {
    use peat_mesh::bench_support::simulate;
    let n = size.n(1_000_000, 20_000) as u64;
    let item = |i: u64, salt: u64| {
        (
            1_700_000_000_000 + i,
            *blake3::hash(&(i ^ (salt << 40)).to_le_bytes()).as_bytes(),
        )
    };
    let base: Vec<(u64, [u8; 32])> = (0..n).map(|i| item(i, 0)).collect();
    let sorted = |v: Vec<(u64, [u8; 32])>| {
        let mut v = v;
        v.sort();
        v
    };
    // 1% random: every 100th item differs on each side
    let a_rand = sorted(
        base.iter()
            .enumerate()
            .map(|(i, x)| if i % 100 == 0 { item(i as u64, 1) } else { *x })
            .collect(),
    );
    let b_rand = sorted(
        base.iter()
            .enumerate()
            .map(|(i, x)| if i % 100 == 0 { item(i as u64, 2) } else { *x })
            .collect(),
    );
    // 1% newest: the last 1% differs on each side
    let cut = (n - n / 100) as usize;
    let a_new = sorted(
        base.iter()
            .enumerate()
            .map(|(i, x)| if i >= cut { item(i as u64, 1) } else { *x })
            .collect(),
    );
    let b_new = sorted(
        base.iter()
            .enumerate()
            .map(|(i, x)| if i >= cut { item(i as u64, 2) } else { *x })
            .collect(),
    );
    if let Ok(shapes) = std::env::var("PEAT_RBSR_SHAPES") {
        for shape in shapes.split(',') {
            let parts: Vec<usize> = shape
                .split('x')
                .map(|p| p.parse())
                .collect::<Result<_, _>>()?;
            anyhow::ensure!(parts.len() == 4, "shape is BxLxWxA");
            let (br, l, wide) = (parts[0], parts[1], (parts[2], parts[3]));
            for (name, a, b) in [
                ("1% random", &a_rand, &b_rand),
                ("1% newest", &a_new, &b_new),
            ] {
                let s = peat_mesh::bench_support::simulate_shaped(a, b, br, l, wide)?;
                println!("shape {shape} {name}: {} B, {} rt", s.bytes, s.round_trips);
            }
        }
        return Ok(());
    }
    for (name, a, b) in [
        ("1% random", &a_rand, &b_rand),
        ("1% newest", &a_new, &b_new),
        ("in sync", &base, &base),
    ] {
        let s = simulate(a, b)?;
        out.fig(
            "reconcile",
            &format!("{n} items {name}: bytes"),
            s.bytes as f64,
            "B",
        );
        out.fig(
            "reconcile",
            &format!("{n} items {name}: round trips"),
            s.round_trips as f64,
            "rt",
        );
    }
    Ok(())
}

pub(crate) fn rss_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}

/// CPU time (user + system) of this process so far, in ms: less noisy than
/// wall time when the same work is compared between builds.
pub(crate) fn cpu_ms() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second
    // on Linux); the command name (field 2) may hold spaces, so count from
    // the closing parenthesis.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks * 10.0)
        })
        .unwrap_or(0.0)
}

pub(crate) fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

async fn store(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(100_000, 2_000);
    let dir = tempfile::tempdir()?;
    let cfg = || NodeConfig::new(dir.path(), formation()).listen("127.0.0.1:0".parse().unwrap());
    let node = Node::open(cfg()).await?;
    let t = Instant::now();
    fill(&node, "s", n, 128).await?;
    let writes = n as f64 / t.elapsed().as_secs_f64();
    out.fig(
        "store",
        "durable writes/s (group commit, 128 writers)",
        writes,
        "writes/s",
    );
    let t = Instant::now();
    node.close(Duration::from_secs(30)).await?;
    let close_ms = t.elapsed().as_secs_f64() * 1000.0;
    out.fig(
        "store",
        &format!("close with {n} documents (rewrites a bloated file)"),
        close_ms,
        "ms",
    );
    drop(node);
    out.fig(
        "store",
        "bytes on disk per ~200 B document",
        dir_size(dir.path()) as f64 / n as f64,
        "B",
    );
    let before = rss_kib("VmRSS:");
    let t = Instant::now();
    let node = Node::open(cfg()).await?;
    let count = node.document_count()?;
    let reopen_ms = t.elapsed().as_secs_f64() * 1000.0;
    out.fig(
        "store",
        &format!("reopen with {count} documents"),
        reopen_ms,
        "ms",
    );
    let after = rss_kib("VmRSS:");
    out.fig(
        "store",
        "resident memory per idle stored document",
        (after - before).max(0.0) * 1024.0 / n as f64,
        "B",
    );
    reset_peak();
    let base = rss_kib("VmRSS:");
    let mut opts = ListOptions {
        limit: 1000,
        ..Default::default()
    };
    let mut listed = 0;
    loop {
        let page = node.list("s", &opts)?;
        listed += page.ids.len();
        match page.next {
            Some(n) => opts.after = Some(n),
            None => break,
        }
    }
    anyhow::ensure!(listed == n, "listed {listed} of {n}");
    out.fig(
        "store",
        &format!("peak memory growth listing {listed} docs"),
        (rss_kib("VmHWM:") - base).max(0.0) / 1024.0,
        "MiB",
    );
    node.close(Duration::from_secs(5)).await?;
    let (base, rewrite, reopen) = tokio::task::spawn_blocking(move || {
        let (rate, file) = baseline::redb_batches(n, 128)?;
        let rewrite = baseline::redb_rewrite(&file)?;
        let reopen = baseline::redb_reopen(&file)?;
        Ok::<_, anyhow::Error>((rate, rewrite, reopen))
    })
    .await??;
    // A node's open also binds its endpoint.
    let t = Instant::now();
    let ep = baseline::endpoint().await?;
    let bind = t.elapsed();
    ep.close().await;
    let (rewrite, reopen) = (
        rewrite.as_secs_f64() * 1000.0,
        (reopen + bind).as_secs_f64() * 1000.0,
    );
    out.fig(
        "store",
        &format!("redb {n} rows, batches of 128, durable (baseline)"),
        base,
        "rows/s",
    );
    out.fig(
        "store",
        &format!("redb copy of {n} rows to a fresh file (baseline)"),
        rewrite,
        "ms",
    );
    out.fig(
        "store",
        &format!("redb open + count {n} rows, bind iroh (baseline)"),
        reopen,
        "ms",
    );
    fsync_fig(out, "store", size)?;
    baseline::ratio_rate(out, "store", "durable writes/s", writes, base);
    baseline::ratio_time(out, "store", "close", close_ms, rewrite);
    baseline::ratio_time(out, "store", "reopen", reopen_ms, reopen);
    Ok(())
}

fn startup(out: &Out) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let exe = std::env::current_exe()?;
    let mut times = Vec::new();
    let mut spawns = Vec::new();
    let mut rss = 0.0;
    for _ in 0..10 {
        // Baseline: the same binary, a child that says "ready" at once.
        let t = Instant::now();
        let mut child = std::process::Command::new(&exe)
            .arg("__noop-child")
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let ready = lines.next().context("child printed nothing")??;
        spawns.push(t.elapsed());
        anyhow::ensure!(ready == "ready", "child said {ready:?}");
        child.wait()?;

        let dir = tempfile::tempdir()?;
        let t = Instant::now();
        let mut child = std::process::Command::new(&exe)
            .arg("__startup-child")
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let ready = lines.next().context("child printed nothing")??;
        times.push(t.elapsed());
        anyhow::ensure!(ready == "ready", "child said {ready:?}");
        rss = lines.next().context("no rss line")??.trim().parse()?;
        child.wait()?;
    }
    times.sort();
    spawns.sort();
    out.fig(
        "startup",
        "process start to node ready p50",
        pct(&times, 0.5),
        "ms",
    );
    out.fig(
        "startup",
        "process start to \"ready\", no node p50 (baseline)",
        pct(&spawns, 0.5),
        "ms",
    );
    baseline::ratio_time(out, "startup", "p50", pct(&times, 0.5), pct(&spawns, 0.5));
    out.fig(
        "startup",
        "idle resident memory of one node",
        rss / 1024.0,
        "MiB",
    );
    Ok(())
}

/// Child side of `startup`: opens a node, says "ready", idles, prints RSS in KiB.
fn startup_child(dir: &str) -> Result<()> {
    use std::io::Write;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let node =
            Node::open(NodeConfig::new(dir, formation()).listen("127.0.0.1:0".parse()?)).await?;
        println!("ready");
        std::io::stdout().flush()?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        println!("{}", rss_kib("VmRSS:"));
        node.close(Duration::from_secs(5)).await?;
        Ok(())
    })
}

/// Cost of one local commit and of extracting its change bytes, as history grows.
fn automerge_cost(out: &Out, size: &Size) -> Result<()> {
    use peat_mesh::automerge::{transaction::Transactable, Automerge, ReadDoc, ROOT};
    let mut doc = Automerge::new();
    let history = size.n(20_000, 1_000);
    let mut i = 0i64;
    for checkpoint in [history / 4, history / 2, history] {
        while (i as usize) < checkpoint {
            doc.transact::<_, _, peat_mesh::automerge::AutomergeError>(|tx| tx.put(ROOT, "v", i))
                .map_err(|f| f.error)?;
            i += 1;
        }
        let reps = 200;
        let t = Instant::now();
        for _ in 0..reps {
            doc.transact::<_, _, peat_mesh::automerge::AutomergeError>(|tx| tx.put(ROOT, "v", i))
                .map_err(|f| f.error)?;
            i += 1;
        }
        let commit = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            let before = doc.get_heads();
            doc.transact::<_, _, peat_mesh::automerge::AutomergeError>(|tx| tx.put(ROOT, "v", i))
                .map_err(|f| f.error)?;
            i += 1;
            std::hint::black_box(doc.get_changes(&before));
        }
        let with_changes = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            doc.transact::<_, _, peat_mesh::automerge::AutomergeError>(|tx| tx.put(ROOT, "v", i))
                .map_err(|f| f.error)?;
            i += 1;
            std::hint::black_box(doc.get_last_local_change());
        }
        let with_last = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
        let mut replica = doc.fork();
        let t = Instant::now();
        for _ in 0..reps {
            let before = doc.get_heads();
            doc.transact::<_, _, peat_mesh::automerge::AutomergeError>(|tx| tx.put(ROOT, "v", i))
                .map_err(|f| f.error)?;
            i += 1;
            replica.apply_changes(doc.get_changes(&before))?;
        }
        let with_apply = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
        out.fig(
            "automerge-cost",
            &format!("commit+apply on a replica at {checkpoint}"),
            with_apply,
            "us",
        );
        let before = doc.get_heads();
        for _ in 0..reps {
            doc.transact::<_, _, peat_mesh::automerge::AutomergeError>(|tx| tx.put(ROOT, "v", i))
                .map_err(|f| f.error)?;
            i += 1;
        }
        let batch = doc.get_changes(&before);
        let t = Instant::now();
        replica.apply_changes(batch)?;
        out.fig(
            "automerge-cost",
            &format!("apply per change, batch of {reps}, at {checkpoint}"),
            t.elapsed().as_secs_f64() * 1e6 / reps as f64,
            "us",
        );
        let _ = doc.length(ROOT);
        out.fig(
            "automerge-cost",
            &format!("commit at {checkpoint} changes"),
            commit,
            "us",
        );
        out.fig(
            "automerge-cost",
            &format!("commit+get_changes at {checkpoint} changes"),
            with_changes,
            "us",
        );
        out.fig(
            "automerge-cost",
            &format!("commit+last_local_change at {checkpoint}"),
            with_last,
            "us",
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__startup-child") {
        return startup_child(args.get(1).context("dir")?);
    }
    if args.first().map(String::as_str) == Some("__noop-child") {
        println!("ready");
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("__blob-recv") {
        return blobs::recv_child(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("__beacon-mem") {
        return ephemeral::beacon_mem_child(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("__raw-recv") {
        return baseline::raw_recv_child(&args[1..]);
    }
    let out = Out {
        json: args.iter().any(|a| a == "--json"),
    };
    let size = Size {
        small: args.iter().any(|a| a == "--small"),
    };
    let scenario = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str)
        .unwrap_or("all");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let all = scenario == "all";
    let mut ran = false;
    let mut go = |name: &str| {
        let hit = all || scenario == name;
        ran |= hit;
        hit
    };
    if go("connect") {
        rt.block_on(connect(&out, &size))?;
    }
    if go("sync-initial") {
        rt.block_on(sync_initial(&out, &size))?;
    }
    if go("update-latency") {
        rt.block_on(update_latency(&out, &size))?;
    }
    if go("update-throughput") {
        rt.block_on(update_throughput(&out, &size))?;
    }
    if go("reconcile") {
        reconcile(&out, &size)?;
    }
    if go("automerge-cost") {
        automerge_cost(&out, &size)?;
    }
    if go("store") {
        rt.block_on(store(&out, &size))?;
    }
    if go("startup") {
        startup(&out)?;
    }
    if go("discover") {
        discovery::discover(&out, &size)?;
    }
    if go("reconnect") {
        discovery::reconnect(&out, &size)?;
    }
    if go("blob-add") {
        rt.block_on(blobs::blob_add(&out, &size))?;
    }
    if go("blob-transfer") {
        rt.block_on(blobs::blob_transfer(&out, &size))?;
    }
    if go("blob-resume") {
        rt.block_on(blobs::blob_resume(&out, &size))?;
    }
    if go("stall") {
        stall::stall(&out, &size)?;
    }
    if go("failover") {
        rt.block_on(links::failover(&out, &size))?;
    }
    if go("ble") {
        rt.block_on(ble::ble(&out, &size))?;
    }
    if go("thin-link") {
        rt.block_on(links::thin_link(&out, &size))?;
    }
    if go("lossy-link") {
        rt.block_on(links::lossy_link(&out, &size))?;
    }
    if go("ephemeral") {
        rt.block_on(ephemeral::ephemeral(&out, &size))?;
    }
    if go("beacons") {
        rt.block_on(ephemeral::beacons(&out, &size))?;
    }
    if go("priority") {
        priority::priority(&out, &size)?;
    }
    if go("latest-only") {
        rt.block_on(lifecycle::latest_only(&out, &size))?;
    }
    if go("gc") {
        rt.block_on(lifecycle::gc(&out, &size))?;
    }
    if go("trust") {
        trust::trust(&out, &size)?;
        rt.block_on(trust::admission(&out, &size))?;
        rt.block_on(trust::signed_sync(&out, &size))?;
    }
    if go("http") {
        rt.block_on(service::http(&out, &size))?;
    }
    if go("ws-fanout") {
        rt.block_on(service::ws_fanout(&out, &size))?;
    }
    if !ran {
        bail!("unknown scenario {scenario:?}; one of connect, sync-initial, update-latency, update-throughput, reconcile, automerge-cost, store, startup, discover, reconnect, blob-add, blob-transfer, blob-resume, stall, failover, thin-link, lossy-link, ble, ephemeral, beacons, priority, latest-only, gc, trust, http, ws-fanout, all");
    }
    Ok(())
}

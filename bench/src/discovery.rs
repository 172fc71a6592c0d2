//! Discovery scenarios in network namespaces (root needed): `discover` and
//! `reconnect`. Nodes are `peat-mesh-node run --control` processes (the binary
//! next to this one), driven as in `node/tests/netns.rs`.

#[path = "../../node/tests/support/netns.rs"]
pub(crate) mod netns;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netns::{Net, NodeProc};

use crate::{baseline, Out, Size};

pub(crate) fn node_bin() -> Result<String> {
    let exe = std::env::current_exe()?;
    let bin = exe.parent().context("exe dir")?.join("peat-mesh-node");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it first (cargo build [--release] -p peat-mesh-node)",
        bin.display()
    );
    Ok(bin.to_string_lossy().into_owned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Start of two nodes (no static peers) to the first document synced by mDNS.
pub fn discover(out: &Out, size: &Size) -> Result<()> {
    let bin = node_bin()?;
    let net = Net::new(2)?;
    let runs = if size.small { 1 } else { 7 };
    let mut times = Vec::new();
    for r in 0..runs {
        let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let t0 = Instant::now();
        let mut a = NodeProc::start(&net, 0, &bin, da.path(), "bench", &[])?;
        let mut b = NodeProc::start(&net, 1, &bin, db.path(), "bench", &[])?;
        a.send(&format!(r#"put d r{r} {{"run":{r}}}"#))?;
        b.wait_doc("d", &format!("r{r}"), Duration::from_secs(20))?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let found = median(times);
    out.fig(
        "discover",
        &format!("start to first synced doc via mDNS, median of {runs}"),
        found,
        "ms",
    );
    // Baseline: the same, with mDNS off and B given A's address.
    let mut times = Vec::new();
    for r in 0..runs {
        let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let t0 = Instant::now();
        let mut a = NodeProc::start(&net, 0, &bin, da.path(), "bench", &["--no-mdns"])?;
        let peer = format!("{}@{A_ADDR}", a.id);
        let mut b = NodeProc::start(
            &net,
            1,
            &bin,
            db.path(),
            "bench",
            &["--no-mdns", "--peer", &peer],
        )?;
        a.send(&format!(r#"put d s{r} {{"run":{r}}}"#))?;
        b.wait_doc("d", &format!("s{r}"), Duration::from_secs(20))?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let fixed = median(times);
    out.fig(
        "discover",
        "the same with a static peer, no mDNS (baseline)",
        fixed,
        "ms",
    );
    baseline::ratio_time(out, "discover", "time", found, fixed);
    Ok(())
}

/// Node 0's listen address in the namespaces (`NodeProc::start` listens on 7400).
const A_ADDR: &str = "10.77.0.1:7400";

/// Link restored to documents flowing again.
pub fn reconnect(out: &Out, size: &Size) -> Result<()> {
    let bin = node_bin()?;
    let net = Net::new(2)?;
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut a = NodeProc::start(&net, 0, &bin, da.path(), "bench", &[])?;
    let mut b = NodeProc::start(&net, 1, &bin, db.path(), "bench", &[])?;
    let aid = a.id.clone();
    b.wait_seen(Duration::from_secs(20), |l| {
        l == format!("EVENT connected {aid}")
    })?;
    let runs = if size.small { 1 } else { 5 };
    let mut times = Vec::new();
    for r in 0..runs {
        net.link(1, false)?;
        b.wait_for(Duration::from_secs(20), |l| {
            l.starts_with(&format!("EVENT disconnected {aid}"))
        })?;
        a.send(&format!(r#"put d away{r} {{"run":{r}}}"#))?;
        a.wait_for(Duration::from_secs(5), |l| l.starts_with("OK put"))?;
        let t0 = Instant::now();
        net.link(1, true)?;
        b.wait_doc("d", &format!("away{r}"), Duration::from_secs(30))?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let back = median(times);
    out.fig(
        "reconnect",
        &format!("link restored to doc flowing, median of {runs}"),
        back,
        "ms",
    );
    drop((a, b));
    // Baseline: a fresh dial in the same namespaces. Two running nodes that
    // do not know each other (no mDNS); A holds a document; B is told A's
    // address and the time runs until B holds it: dial, admission, sync.
    let mut times = Vec::new();
    for r in 0..runs {
        let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let mut a = NodeProc::start(&net, 0, &bin, da.path(), "bench", &["--no-mdns"])?;
        let mut b = NodeProc::start(&net, 1, &bin, db.path(), "bench", &["--no-mdns"])?;
        a.send(&format!(r#"put d fresh{r} {{"run":{r}}}"#))?;
        a.wait_for(Duration::from_secs(5), |l| l.starts_with("OK put"))?;
        let t0 = Instant::now();
        b.send(&format!("add-peer {}@{A_ADDR}", a.id))?;
        b.wait_doc("d", &format!("fresh{r}"), Duration::from_secs(30))?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let fresh = median(times);
    out.fig(
        "reconnect",
        "fresh dial to doc flowing, no mDNS (baseline)",
        fresh,
        "ms",
    );
    baseline::ratio_time(out, "reconnect", "time", back, fresh);
    Ok(())
}

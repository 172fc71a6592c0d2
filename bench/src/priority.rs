//! `priority`: priority classes on a thin link (network namespaces, root
//! needed). Two `peat-mesh-node` processes joined by a radio shaped by
//! `tc tbf` to 1 Mbit/s (queue: 100 ms). A bulk load saturates the link
//! while A writes light critical updates (one at a time, 250 ms apart): B
//! fetching a blob from A, or A writing documents of a bulk-class collection
//! (~12 KB each) that sync to B. Reported: the update latency p50/p99 with
//! the classes on and with them off (`--no-qos`), beside the same updates on
//! the idle link (the baseline: what the link itself costs), and the blob's
//! share of the link. The blob load runs a third time with A's UDP socket
//! under a bandwidth budget a little below the link's rate ([`BUDGET`]): the
//! radio's queue then stays short, so critical updates do not wait in it.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::discovery::netns::{random_text, LinkPair, NodeProc};
use crate::discovery::node_bin;
use crate::{Out, Size};

/// The socket budget of the third blob run, in bytes/s: 88 % of 1 Mbit/s
/// (QUIC, UDP and IP headers add about 5 % on the link).
const BUDGET: &str = r#"{"links": {"socket": 110000}}"#;

/// What one run measured.
struct Run {
    idle: Vec<f64>,
    loaded: Vec<f64>,
    /// Whether the blob was still moving when the last update arrived.
    overlapped: bool,
    transfer: Duration,
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The bulk load.
#[derive(Clone, Copy)]
enum Load {
    Blob(usize),
    /// This many bulk-class documents of ~12 KB.
    Docs(usize),
}

fn run(bin: &str, qos: bool, budget: Option<&str>, updates: usize, load: Load) -> Result<Run> {
    let net = LinkPair::shaped("1mbit", "100ms")?;
    net.set(0, "lan", false)?;
    net.set(1, "lan", false)?;
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let policies = da.path().join("policies.json");
    std::fs::write(
        &policies,
        r#"{"collections": {"alerts": {"priority": "critical"}, "tiles": {"priority": "bulk"}}}"#,
    )?;
    let mut flags = vec![
        "--no-mdns",
        "--policies",
        policies.to_str().unwrap_or_default(),
    ];
    if !qos {
        flags.push("--no-qos");
    }
    let mut b = NodeProc::start(&net, 1, bin, db.path(), "bench", &flags)?;
    if let Some(json) = budget {
        flags.extend(["--bandwidth", json]);
    }
    let mut a = NodeProc::start(&net, 0, bin, da.path(), "bench", &flags)?;
    let wait = Duration::from_secs(30);
    b.send(&format!("add-peer {}@10.78.2.1:7400", a.id))?;
    let bid = b.id.clone();
    a.wait_seen(wait, |l| l == format!("EVENT connected {bid}"))?;
    b.send("doc-subscribe alerts")?;
    b.wait_for(wait, |l| l == "OK doc-subscribe alerts")?;
    let put = |a: &mut NodeProc, b: &mut NodeProc, id: &str| -> Result<f64> {
        let t = Instant::now();
        a.send(&format!(r#"put alerts {id} {{"level":"critical"}}"#))?;
        b.wait_for(wait, |l| l == format!("EVENT doc alerts {id}"))?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        std::thread::sleep(Duration::from_millis(250));
        Ok(ms)
    };
    let idle = (0..5)
        .map(|i| put(&mut a, &mut b, &format!("idle{i}")))
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let finished = match load {
        Load::Blob(size) => {
            a.send(&format!("blob-add-random {size}"))?;
            let line = a.wait_for(wait, |l| l.starts_with("BLOB "))?;
            let hash = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            b.send(&format!("blob-fetch {hash}"))?;
            b.wait_for(wait, |l| l.starts_with("OK blob-fetch"))?;
            format!("EVENT blob_done {hash}")
        }
        Load::Docs(n) => {
            b.send("doc-subscribe tiles")?;
            b.wait_for(wait, |l| l == "OK doc-subscribe tiles")?;
            // Incompressible content (Automerge compresses its columns).
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in 0..n {
                let body = random_text(&mut x, 12_000);
                a.send(&format!(r#"put tiles t{i} {{"png":"{body}"}}"#))?;
                a.wait_for(wait, |l| l == format!("OK put tiles t{i}"))?;
            }
            format!("EVENT doc tiles t{}", n - 1)
        }
    };
    // Let the load fill the link's queue first.
    std::thread::sleep(Duration::from_secs(1));
    let loaded = (0..updates)
        .map(|i| put(&mut a, &mut b, &format!("u{i}")))
        .collect::<Result<Vec<_>>>()?;
    b.drain();
    let overlapped = !b.seen.contains(&finished);
    b.wait_seen(Duration::from_secs(300), |l| *l == finished)?;
    Ok(Run {
        idle,
        loaded,
        overlapped,
        transfer: started.elapsed(),
    })
}

pub(crate) fn priority(out: &Out, size: &Size) -> Result<()> {
    let bin = node_bin()?;
    let (updates, blob, docs) = if size.small {
        (8, 600_000, 60)
    } else {
        (40, 3_000_000, 250)
    };
    let f = |m: &str, v: f64, u: &str| out.fig("priority", m, v, u);
    for (name, load) in [("blob", Load::Blob(blob)), ("bulk docs", Load::Docs(docs))] {
        let on = run(&bin, true, None, updates, load)?;
        let off = run(&bin, false, None, updates, load)?;
        let budgeted = match load {
            Load::Blob(_) => Some(run(&bin, true, Some(BUDGET), updates, load)?),
            Load::Docs(_) => None,
        };
        if name == "blob" {
            f(
                "baseline: update on the idle link, p50",
                pct(&on.idle, 0.5),
                "ms",
            );
        }
        let runs = [
            ("classes on", Some(&on)),
            ("classes off", Some(&off)),
            ("classes on + budget", budgeted.as_ref()),
        ];
        for (label, r) in runs.into_iter().filter_map(|(l, r)| Some((l, r?))) {
            if !r.overlapped {
                eprintln!("priority ({name}, {label}): the load ended before the last update");
            }
            f(
                &format!("{name}: critical p50, {label}"),
                pct(&r.loaded, 0.5),
                "ms",
            );
            f(
                &format!("{name}: critical p99, {label}"),
                pct(&r.loaded, 0.99),
                "ms",
            );
        }
        if let Load::Blob(size) = load {
            let share = |r: &Run| size as f64 * 8.0 / r.transfer.as_secs_f64() / 1e6 * 100.0;
            f(
                "blob's share of the 1 Mbit/s link, classes on",
                share(&on),
                "%",
            );
            if let Some(r) = &budgeted {
                f(
                    "blob's share of the 1 Mbit/s link, classes on + budget",
                    share(r),
                    "%",
                );
            }
        }
    }
    Ok(())
}

//! Priority classes on a thin link: two nodes in network namespaces joined by
//! a radio shaped by `tc tbf` to 1 Mbit/s (its queue holding 100 ms), and
//! updates of a critical collection written while a bulk load saturates it:
//! first a 2 MB blob transfer, then 60 documents (~12 KB each, random) of a
//! bulk-class collection. Each update arrives within a few hundred
//! milliseconds, long before the load ends (~17 s and ~6 s), and the load
//! still ends. Without the classes the updates wait behind the bulk
//! documents (`peat-bench priority` measures both).
//!
//! Needs root (CI runs as root).

mod support {
    pub mod netns;
}

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use support::netns::{random_text, LinkPair, NodeProc};

const BIN: &str = env!("CARGO_BIN_EXE_peat-mesh-node");

#[test]
fn critical_updates_arrive_promptly_while_a_blob_saturates_the_link() -> Result<()> {
    let net = LinkPair::shaped("1mbit", "100ms")?;
    // The radio only: its LAN twin goes down.
    net.set(0, "lan", false)?;
    net.set(1, "lan", false)?;
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let policies = da.path().join("policies.toml");
    std::fs::write(
        &policies,
        "[collections.alerts]\npriority = \"critical\"\n[collections.tiles]\npriority = \"bulk\"\n",
    )?;
    let flags = [
        "--no-mdns",
        "--policies",
        policies.to_str().unwrap_or_default(),
    ];
    let mut a = NodeProc::start(&net, 0, BIN, da.path(), "prio", &flags)?;
    let mut b = NodeProc::start(&net, 1, BIN, db.path(), "prio", &flags)?;
    let wait = Duration::from_secs(20);
    b.send(&format!("add-peer {}@10.78.2.1:7400", a.id))?;
    let bid = b.id.clone();
    a.wait_seen(wait, |l| l == format!("EVENT connected {bid}"))?;

    a.send("blob-add-random 2000000")?;
    let blob = a.wait_for(wait, |l| l.starts_with("BLOB "))?;
    let hash = blob
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    b.send("doc-subscribe alerts")?;
    b.wait_for(wait, |l| l == "OK doc-subscribe alerts")?;
    b.send(&format!("blob-fetch {hash}"))?;
    b.wait_for(wait, |l| l.starts_with("OK blob-fetch"))?;
    // Until the transfer is well under way (the link busy).
    let deadline = Instant::now() + wait;
    loop {
        b.send(&format!("blob-present {hash}"))?;
        let l = b.wait_for(wait, |l| l.starts_with("PRESENT "))?;
        let present: u64 = l.rsplit(' ').next().unwrap_or("0").parse()?;
        if present >= 200_000 {
            break;
        }
        ensure!(Instant::now() < deadline, "the transfer did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut latencies = Vec::new();
    for i in 0..10 {
        let t = Instant::now();
        a.send(&format!(r#"put alerts a{i} {{"i":{i}}}"#))?;
        b.wait_for(wait, |l| l == format!("EVENT doc alerts a{i}"))?;
        latencies.push(t.elapsed());
    }
    b.drain();
    ensure!(
        !b.seen.iter().any(|l| l.starts_with("EVENT blob_")),
        "the transfer ended before the updates arrived, so they did not compete: {:?}",
        b.seen
    );
    latencies.sort();
    eprintln!(
        "critical update latency under a saturating blob: p50 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    ensure!(
        latencies[latencies.len() - 1] < Duration::from_secs(3),
        "critical updates waited behind the blob: {latencies:?}"
    );
    // and the bulk transfer was not starved: it ends
    let done = b.wait_for(Duration::from_secs(90), |l| l.starts_with("EVENT blob_"))?;
    ensure!(done == format!("EVENT blob_done {hash}"), "{done}");

    // Bulk documents: they share the session with the critical ones.
    b.send("doc-subscribe tiles")?;
    b.wait_for(wait, |l| l == "OK doc-subscribe tiles")?;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..60 {
        let body = random_text(&mut x, 12_000);
        a.send(&format!(r#"put tiles t{i} {{"png":"{body}"}}"#))?;
        a.wait_for(wait, |l| l == format!("OK put tiles t{i}"))?;
    }
    let mut latencies = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        a.send(&format!(r#"put alerts d{i} {{"i":{i}}}"#))?;
        b.wait_for(wait, |l| l == format!("EVENT doc alerts d{i}"))?;
        latencies.push(t.elapsed());
    }
    b.drain();
    ensure!(
        !b.seen.iter().any(|l| l == "EVENT doc tiles t59"),
        "the bulk documents were all there before the updates arrived, so they did not compete"
    );
    eprintln!("critical update latency under bulk documents: {latencies:?}");
    ensure!(
        latencies.iter().all(|l| *l < Duration::from_secs(3)),
        "critical updates waited behind bulk documents: {latencies:?}"
    );
    b.wait_seen(Duration::from_secs(90), |l| l == "EVENT doc tiles t59")?;
    Ok(())
}

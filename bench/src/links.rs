//! Links besides UDP, over the in-process medium with injected faults:
//!
//! - failover: primary link dies → first document delivered over the
//!   alternate; baseline: the configured dead-link time (the aim is ≤ 2× it,
//!   and ≤ 3 s with the default policy).
//! - thin-link: 100 documents of ~200 B over 9.6 kbit/s with 300 ms RTT,
//!   pushed live to a connected peer and fetched by a new peer's full
//!   reconciliation; time and bytes on the link per document; baseline: the
//!   documents' own compressed size (Automerge's saved form).
//! - lossy-link: durable updates A→B per second at 0 %, 5 % and 20 % loss
//!   (20 ms RTT); baseline: the same at 0 %.

use std::time::{Duration, Instant};

use anyhow::Result;
use peat_mesh::links::{Faults, Link, Medium, PacePolicy};
use peat_mesh::{Node, NodeConfig, PeerAddr};
use serde_json::json;
use tempfile::TempDir;

use crate::{baseline, doc_body, formation, throughput_run, wait_until, Out, Size};

async fn open_on(
    links: &[(&str, &Medium)],
    pace: PacePolicy,
    link_timeout: Duration,
) -> Result<(Node, TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut cfg = NodeConfig::new(dir.path(), formation())
        .listen("127.0.0.1:0".parse()?)
        .pace(pace);
    for (name, m) in links {
        cfg = cfg.link(Link::medium(*name, m.attach()?));
    }
    cfg.link_timeout = link_timeout;
    // Links only: no UDP socket, so every packet crosses the medium.
    cfg.udp = false;
    Ok((Node::open(cfg).await?, dir))
}

/// The peer's address (its links only: it has no UDP socket).
fn links_only(n: &Node) -> PeerAddr {
    n.peer_addr()
}

pub(crate) async fn failover(out: &Out, size: &Size) -> Result<()> {
    let reps = size.n(5, 2);
    let pace = PacePolicy {
        levels: vec![vec!["primary".into()], vec!["alternate".into()]],
        ..PacePolicy::default()
    };
    let mut times = Vec::new();
    for _ in 0..reps {
        let (m1, m2) = (
            Medium::new(Faults::default()),
            Medium::new(Faults::default()),
        );
        let links = [("primary", &m1), ("alternate", &m2)];
        let (a, _da) = open_on(&links, pace.clone(), Duration::from_secs(5)).await?;
        let (b, _db) = open_on(&links, pace.clone(), Duration::from_secs(5)).await?;
        b.connect(&links_only(&a)).await?;
        a.put("f", "warm", &json!({"v": 0})).await?;
        wait_until(Duration::from_secs(20), || {
            Ok(b.get("f", "warm")?.is_some()
                && a.bond().and_then(|bd| bd.in_use(&b.id())).as_deref() == Some("primary"))
        })
        .await?;
        m1.set_up(false);
        let t = Instant::now();
        a.put("f", "after", &json!({"v": 1})).await?;
        wait_until(Duration::from_secs(30), || {
            Ok(b.get("f", "after")?.is_some())
        })
        .await?;
        times.push(t.elapsed());
        a.close(Duration::from_secs(5)).await?;
        b.close(Duration::from_secs(5)).await?;
    }
    times.sort();
    let med = times[times.len() / 2].as_secs_f64() * 1000.0;
    out.fig(
        "failover",
        &format!("primary death to doc over the alternate, median of {reps}"),
        med,
        "ms",
    );
    let dead = pace.dead_after.as_secs_f64() * 1000.0;
    out.fig(
        "failover",
        "configured dead-link time (baseline)",
        dead,
        "ms",
    );
    baseline::ratio_time(out, "failover", "time", med, dead);
    Ok(())
}

pub(crate) async fn thin_link(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(100, 10);
    // 9.6 kbit/s = 1,200 B/s each way, 150 ms one way (300 ms RTT), a 4 KiB
    // buffer; probes every 2 s (on a link this thin the default 500 ms would
    // take ~7 % of it), dead after 8 s.
    let radio = Faults::default()
        .rate(1200, 4096)
        .delay(Duration::from_millis(150));
    let pace = PacePolicy {
        probe_interval: Duration::from_secs(2),
        dead_after: Duration::from_secs(8),
        degraded_rtt: Duration::from_secs(10),
        ..PacePolicy::default()
    };
    let m = Medium::new(radio);
    let links = [("radio", &m)];
    let slow = Duration::from_secs(15);
    let (a, _da) = open_on(&links, pace.clone(), slow).await?;
    let (b, _db) = open_on(&links, pace.clone(), slow).await?;
    b.add_peer(links_only(&a))?;
    wait_until(Duration::from_secs(120), || Ok(b.connected_peers() == 1)).await?;

    // Live: a connected peer gets each new document as it is written.
    let before = m.stats().delivered_bytes;
    let t = Instant::now();
    for i in 0..n {
        a.put("thin", &format!("doc-{i:04}"), &doc_body(i)).await?;
    }
    wait_until(Duration::from_secs(600), || {
        Ok(b.document_count()? as usize >= n)
    })
    .await?;
    let live_time = t.elapsed().as_secs_f64();
    let live_bytes = (m.stats().delivered_bytes - before) as f64;
    b.close(Duration::from_secs(5)).await?;

    // Catch-up: a new peer fetches the same documents by full reconciliation.
    let (c, _dc) = open_on(&links, pace, slow).await?;
    let before = m.stats().delivered_bytes;
    let t = Instant::now();
    c.add_peer(links_only(&a))?;
    wait_until(Duration::from_secs(600), || {
        Ok(c.document_count()? as usize >= n)
    })
    .await?;
    let catch_time = t.elapsed().as_secs_f64();
    let catch_bytes = (m.stats().delivered_bytes - before) as f64;

    let mut own = 0usize;
    for i in 0..n {
        own += a
            .export("thin", &format!("doc-{i:04}"))?
            .map_or(0, |b| b.len());
    }
    let own = own as f64 / n as f64;
    out.fig(
        "thin-link",
        &format!("{n} docs pushed live: time"),
        live_time,
        "s",
    );
    out.fig(
        "thin-link",
        "pushed live: link bytes per doc",
        live_bytes / n as f64,
        "B",
    );
    out.fig(
        "thin-link",
        &format!("{n} docs by full reconciliation (new peer): time"),
        catch_time,
        "s",
    );
    out.fig(
        "thin-link",
        "full reconciliation: link bytes per doc (incl. handshake, admission)",
        catch_bytes / n as f64,
        "B",
    );
    out.fig(
        "thin-link",
        "document's own compressed size (baseline)",
        own,
        "B",
    );
    baseline::ratio_time(out, "thin-link", "live bytes", live_bytes / n as f64, own);
    baseline::ratio_time(
        out,
        "thin-link",
        "reconciliation bytes",
        catch_bytes / n as f64,
        own,
    );
    a.close(Duration::from_secs(5)).await?;
    c.close(Duration::from_secs(5)).await?;
    Ok(())
}

pub(crate) async fn lossy_link(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(2000, 200);
    let m = Medium::new(Faults::default().delay(Duration::from_millis(10)));
    let links = [("radio", &m)];
    let pace = PacePolicy {
        degraded_loss: 0.9,
        ..PacePolicy::default()
    };
    let (a, _da) = open_on(&links, pace.clone(), Duration::from_secs(15)).await?;
    let (b, _db) = open_on(&links, pace, Duration::from_secs(15)).await?;
    b.add_peer(links_only(&a))?;
    wait_until(Duration::from_secs(60), || Ok(b.connected_peers() == 1)).await?;
    let mut at_zero = 0.0;
    for loss in [0.0, 0.05, 0.2] {
        m.set_faults(
            Faults::default()
                .delay(Duration::from_millis(10))
                .loss(loss),
        );
        let rate = throughput_run(&a, &b, &format!("loss-{loss}"), n).await?;
        let pct = (loss * 100.0).round();
        out.fig(
            "lossy-link",
            &format!("durable updates/s A->B, {pct}% loss, 20 ms RTT"),
            rate,
            "updates/s",
        );
        if loss == 0.0 {
            at_zero = rate;
            out.fig(
                "lossy-link",
                "the same at 0% loss (baseline)",
                rate,
                "updates/s",
            );
        } else {
            baseline::ratio_rate(out, "lossy-link", &format!("{pct}% loss"), rate, at_zero);
        }
    }
    a.close(Duration::from_secs(5)).await?;
    b.close(Duration::from_secs(5)).await?;
    Ok(())
}

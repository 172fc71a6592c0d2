//! Two links on real network stacks: two nodes in their own network
//! namespaces joined by two veth pairs, a LAN and a radio shaped by `tc tbf`
//! to 96 kbit/s. With the LAN's veth taken down (`ip link set down`), sync
//! goes on over the radio in the same connection; with it up again, the
//! traffic comes back after the hold-down.
//!
//! Needs root (CI runs as root).

mod support {
    pub mod netns;
}

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use support::netns::{LinkPair, NodeProc};

const BIN: &str = env!("CARGO_BIN_EXE_peat-mesh-node");

/// The flags of node `i` (1 or 2): its LAN and radio links at PACE levels 0
/// and 1, no other socket, fast probes.
fn link_flags(i: usize) -> Vec<String> {
    [
        "--link".to_string(),
        format!("lan=10.78.1.{i}:7401@0"),
        "--link".into(),
        format!("radio=10.78.2.{i}:7402@1"),
        "--links-only".into(),
        "--pace-probe-ms".into(),
        "200".into(),
        "--pace-dead-ms".into(),
        "1000".into(),
        "--pace-hold-down-ms".into(),
        "2000".into(),
    ]
    .to_vec()
}

#[test]
fn sync_goes_on_over_the_radio_when_the_lan_veth_goes_down() -> Result<()> {
    let net = LinkPair::new("96kbit")?;
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (fa, fb) = (link_flags(1), link_flags(2));
    let fa: Vec<&str> = fa.iter().map(String::as_str).collect();
    let fb: Vec<&str> = fb.iter().map(String::as_str).collect();
    let mut a = NodeProc::start(&net, 0, BIN, da.path(), "links", &fa)?;
    let mut b = NodeProc::start(&net, 1, BIN, db.path(), "links", &fb)?;
    let wait = Duration::from_secs(20);
    let (aid, bid) = (a.id.clone(), b.id.clone());

    // B dials A at the address A prints: its links' bond address only.
    let addr = a.wait_seen(wait, |l| l.starts_with("ADDR "))?;
    let addr = addr.trim_start_matches("ADDR ").to_string();
    ensure!(
        !addr.contains("7400"),
        "links only, yet a UDP socket: {addr}"
    );
    b.send(&format!("add-peer {addr}"))?;
    a.wait_seen(wait, |l| l == format!("EVENT connected {bid}"))?;
    b.wait_seen(wait, |l| l == format!("EVENT connected {aid}"))?;
    a.send(r#"put tracks t1 {"callsign":"ALPHA-1"}"#)?;
    a.wait_for(wait, |l| l == "OK put tracks t1")?;
    ensure!(b.wait_doc("tracks", "t1", wait)? == r#"{"callsign":"ALPHA-1"}"#);
    b.send(&format!("links {aid}"))?;
    let links = b.wait_for(wait, |l| l.starts_with("LINKS "))?;
    ensure!(
        links.contains("lan:") && links.contains("radio:"),
        "{links}"
    );

    // The LAN's veth goes down at A's end: both nodes move to the radio.
    net.set(0, "lan", false)?;
    let t0 = Instant::now();
    a.wait_for(wait, |l| {
        l == format!("EVENT link_changed {bid} lan radio 1")
    })?;
    b.wait_for(wait, |l| {
        l == format!("EVENT link_changed {aid} lan radio 1")
    })?;
    eprintln!("LAN down to both nodes on the radio: {:?}", t0.elapsed());
    a.send(r#"put tracks t2 {"callsign":"BRAVO-2"}"#)?;
    a.wait_for(wait, |l| l == "OK put tracks t2")?;
    let t1 = Instant::now();
    ensure!(b.wait_doc("tracks", "t2", Duration::from_secs(30))? == r#"{"callsign":"BRAVO-2"}"#);
    eprintln!("a write over the 96 kbit/s radio: {:?}", t1.elapsed());
    b.send(&format!("links {aid}"))?;
    let links = b.wait_for(wait, |l| l.starts_with("LINKS "))?;
    ensure!(links.contains("radio:Healthy:in_use"), "{links}");

    // The LAN comes back: after the hold-down the traffic returns to it.
    net.set(0, "lan", true)?;
    a.wait_for(wait, |l| {
        l == format!("EVENT link_changed {bid} radio lan 0")
    })?;
    b.wait_for(wait, |l| {
        l == format!("EVENT link_changed {aid} radio lan 0")
    })?;
    a.send(r#"put tracks t3 {"callsign":"CHARLIE-3"}"#)?;
    a.wait_for(wait, |l| l == "OK put tracks t3")?;
    ensure!(b.wait_doc("tracks", "t3", wait)? == r#"{"callsign":"CHARLIE-3"}"#);

    // One connection throughout: nobody disconnected.
    for p in [&mut a, &mut b] {
        p.drain();
        ensure!(
            !p.seen.iter().any(|l| l.starts_with("EVENT disconnected")),
            "a disconnect: {:?}",
            p.seen
        );
    }
    Ok(())
}

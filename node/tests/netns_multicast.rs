//! The secured multicast path on real network stacks: two nodes in their own
//! network namespaces on one bridge, with no connection between them (no
//! peers, no mDNS), hear each other's ephemeral messages and beacons through
//! the multicast group; a packet capture in the receiver's namespace (a raw
//! AF_PACKET socket, as tcpdump uses) sees the datagrams and never the
//! plaintext.
//!
//! Needs root (CI runs as root).

mod support {
    pub mod netns;
}

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use support::netns::{Net, NodeProc};

const BIN: &str = env!("CARGO_BIN_EXE_peat-mesh-node");
const PORT: u16 = 7450;

/// Captures every frame in the namespace; counts IPv4 UDP datagrams to PORT
/// and those whose payload holds the marker; stops after `want` of them or
/// 30 s. Prints `CAPTURING`, then `CAPTURED N LEAKED`.
const CAPTURE: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.settimeout(0.2)
marker, want, port = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
n = leaked = 0
deadline = time.time() + 30
print("CAPTURING", flush=True)
while time.time() < deadline and n < want:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    if len(frame) < 42 or frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17:
        continue
    udp = ip[ihl:]
    if int.from_bytes(udp[2:4], "big") != port:
        continue
    n += 1
    if marker in udp[8:]:
        leaked += 1
print("CAPTURED", n, leaked, flush=True)
"#;

fn flags(i: usize) -> Vec<String> {
    vec![
        "--no-mdns".into(),
        "--multicast".into(),
        format!("239.255.77.1:{PORT}@10.77.0.{}", i + 1),
    ]
}

#[test]
fn multicast_carries_sealed_messages_and_beacons_between_unconnected_nodes() -> Result<()> {
    let net = Net::new(2)?;
    let marker = "plaintext-marker-4c1e";
    let mut capture = net
        .command(1, "python3")
        .args(["-c", CAPTURE, marker, "3", &PORT.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("python3 for the capture")?;
    let mut out = BufReader::new(capture.stdout.take().context("stdout")?).lines();
    let first = out.next().context("capture said nothing")??;
    ensure!(first == "CAPTURING", "{first}");

    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (fa, fb) = (flags(0), flags(1));
    let fa: Vec<&str> = fa.iter().map(String::as_str).collect();
    let fb: Vec<&str> = fb.iter().map(String::as_str).collect();
    let mut a = NodeProc::start(&net, 0, BIN, da.path(), "mc", &fa)?;
    let mut b = NodeProc::start(&net, 1, BIN, db.path(), "mc", &fb)?;
    let wait = Duration::from_secs(20);
    b.send("topic-subscribe pos/*")?;
    b.wait_for(wait, |l| l == "OK topic-subscribe pos/*")?;

    // Publish until one arrives (the first may go before B has joined).
    let want = format!("MSG {} pos/a 0 multicast {marker}", a.id);
    let mut got = None;
    for _ in 0..40 {
        a.send(&format!("publish pos/a {marker}"))?;
        // sent to no peer: no connection exists
        a.wait_for(wait, |l| l == "OK publish pos/a 0")?;
        if let Ok(l) = b.wait_for(Duration::from_millis(500), |l| l.starts_with("MSG ")) {
            got = Some(l);
            break;
        }
    }
    ensure!(
        got.as_deref() == Some(want.as_str()),
        "{got:?}, wanted {want}"
    );

    // A's beacon reaches B's table the same way.
    b.send("beacon-subscribe")?;
    b.wait_for(wait, |l| l == "OK beacon-subscribe")?;
    a.send("beacon 59.3293 18.0686")?;
    b.wait_for(wait, |l| l == format!("BEACON appeared {}", a.id))?;
    b.send("near 59.33 18.07 1000")?;
    let near = b.wait_for(wait, |l| l.starts_with("NEAR"))?;
    ensure!(near.contains(&a.id), "{near}");

    // never connected
    a.drain();
    b.drain();
    for n in [&a, &b] {
        ensure!(
            !n.seen.iter().any(|l| l.starts_with("EVENT connected")),
            "{:?}",
            n.seen
        );
    }
    // a few more so the capture has its fill, then read it
    for _ in 0..3 {
        a.send(&format!("publish pos/a {marker}"))?;
    }
    let last = out.next().context("capture ended without a count")??;
    let _ = capture.wait();
    let parts: Vec<&str> = last.split_whitespace().collect();
    ensure!(parts.len() == 3 && parts[0] == "CAPTURED", "{last}");
    let (n, leaked): (u32, u32) = (parts[1].parse()?, parts[2].parse()?);
    ensure!(n >= 3, "captured {n} datagrams to the group");
    ensure!(
        leaked == 0,
        "{leaked} of {n} captured datagrams hold the plaintext"
    );
    b.send("ephemeral-stats")?;
    let stats = b.wait_for(wait, |l| l.starts_with("ESTATS"))?;
    ensure!(stats.contains("bad_seal: 0"), "{stats}");
    Ok(())
}

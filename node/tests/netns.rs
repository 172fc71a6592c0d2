//! Discovery on real network stacks: nodes in their own network namespaces,
//! joined by a bridge, with no static peers, find each other by mDNS, connect
//! and converge; a node of another formation is seen but never admitted; a
//! link taken down is noticed and, once up again, re-dialled and caught up; a
//! standard mDNS browser (python-zeroconf) sees the announcement.
//!
//! Needs root; run with `--test-threads=1` (`scripts/test-netns`).

mod support {
    pub mod netns;
}

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use support::netns::{Net, NodeProc};

const BIN: &str = env!("CARGO_BIN_EXE_peat-mesh-node");

#[test]
fn mdns_discovery_admission_link_loss_and_recovery() -> Result<()> {
    let net = Net::new(4)?;
    let dirs: Vec<tempfile::TempDir> = (0..4)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut a = NodeProc::start(&net, 0, BIN, dirs[0].path(), "netns", &[])?;
    let mut b = NodeProc::start(&net, 1, BIN, dirs[1].path(), "netns", &[])?;
    let mut c = NodeProc::start(&net, 2, BIN, dirs[2].path(), "netns", &[])?;
    let mut d = NodeProc::start(&net, 3, BIN, dirs[3].path(), "other", &[])?;
    let wait = Duration::from_secs(20);

    // Everyone of the formation finds and admits the other two, by mDNS alone.
    let (aid, bid, cid, did) = (a.id.clone(), b.id.clone(), c.id.clone(), d.id.clone());
    for (me, others) in [
        (&mut a, [&bid, &cid]),
        (&mut b, [&aid, &cid]),
        (&mut c, [&aid, &bid]),
    ] {
        for o in others {
            me.wait_seen(wait, |l| l == format!("EVENT discovered {o} mdns"))?;
        }
    }
    for o in [&bid, &cid] {
        a.wait_seen(wait, |l| l == format!("EVENT connected {o}"))?;
    }
    // The other formation is seen, not dialled.
    a.wait_seen(wait, |l| l == format!("EVENT other_formation {did}"))?;

    // Documents converge.
    a.send(r#"put tracks t1 {"callsign":"ALPHA-1"}"#)?;
    a.wait_for(wait, |l| l == "OK put tracks t1")?;
    assert_eq!(
        b.wait_doc("tracks", "t1", wait)?,
        r#"{"callsign":"ALPHA-1"}"#
    );
    assert_eq!(
        c.wait_doc("tracks", "t1", wait)?,
        r#"{"callsign":"ALPHA-1"}"#
    );

    // D never gets in, and nobody admits D.
    std::thread::sleep(Duration::from_secs(1));
    d.drain();
    assert!(
        !d.seen.iter().any(|l| l.starts_with("EVENT connected")),
        "a node of another formation was admitted: {:?}",
        d.seen
    );
    for p in [&mut a, &mut b, &mut c] {
        p.drain();
        assert!(!p
            .seen
            .iter()
            .any(|l| l == &format!("EVENT connected {did}")));
    }
    d.send("peers")?;
    let peers = d.wait_for(wait, |l| l.starts_with("PEERS"))?;
    assert!(!peers.contains("Connected"), "{peers}");

    // Cut B off: the loss is noticed within a few seconds.
    net.link(1, false)?;
    let t0 = Instant::now();
    b.wait_for(Duration::from_secs(15), |l| {
        l.starts_with(&format!("EVENT disconnected {aid}"))
    })?;
    let noticed = t0.elapsed();
    eprintln!("link down noticed after {noticed:?}");
    assert!(noticed < Duration::from_secs(10), "took {noticed:?}");

    // A writes while B is away; B comes back by itself and catches up.
    a.send(r#"put tracks t2 {"callsign":"BRAVO-2"}"#)?;
    a.wait_for(wait, |l| l == "OK put tracks t2")?;
    net.link(1, true)?;
    let t1 = Instant::now();
    let got = b.wait_doc("tracks", "t2", Duration::from_secs(30))?;
    eprintln!("link up to caught up: {:?}", t1.elapsed());
    assert_eq!(got, r#"{"callsign":"BRAVO-2"}"#);
    b.drain();
    let down = b
        .seen
        .iter()
        .position(|l| l.starts_with(&format!("EVENT disconnected {aid}")))
        .context("disconnect line")?;
    // The document may arrive through C first; B's own redial of A (backoff
    // up to 10 s ±25%) can come after it.
    let reconnected = format!("EVENT connected {aid}");
    if !b.seen[down..].iter().any(|l| l == &reconnected) {
        b.wait_for(Duration::from_secs(15), |l| l == reconnected)
            .context("B did not reconnect to A by itself")?;
    }
    Ok(())
}

/// A standard mDNS browser (python-zeroconf) sees the node's service with the
/// right TXT fields. `PEAT_ZEROCONF_PYTHON` names a Python that has zeroconf
/// (`scripts/test-netns` makes one); without it the test fails and says so.
#[test]
fn standard_browser_sees_the_announcement() -> Result<()> {
    let python = std::env::var("PEAT_ZEROCONF_PYTHON").context(
        "PEAT_ZEROCONF_PYTHON is not set: point it at a Python with zeroconf installed (scripts/test-netns does)",
    )?;
    let net = Net::new(2)?;
    let dir = tempfile::tempdir()?;
    let node = NodeProc::start(&net, 0, BIN, dir.path(), "browse", &[])?;
    let script = r#"
import sys, time
from zeroconf import ServiceBrowser, Zeroconf, ServiceListener
found = {}
class L(ServiceListener):
    def add_service(self, zc, type_, name):
        info = zc.get_service_info(type_, name, timeout=3000)
        if info:
            found[name] = ({k.decode(): (v or b"").decode() for k, v in info.properties.items()}, info.port)
    def update_service(self, zc, type_, name): self.add_service(zc, type_, name)
    def remove_service(self, zc, type_, name): pass
zc = Zeroconf()
ServiceBrowser(zc, "_peat-mesh._udp.local.", L())
deadline = time.time() + 15
while not found and time.time() < deadline:
    time.sleep(0.1)
zc.close()
for name, (props, port) in found.items():
    print("SERVICE", name, port, props.get("id"), props.get("v"), props.get("ft"))
sys.exit(0 if found else 1)
"#;
    let out = net
        .command(1, &python)
        .args(["-c", script])
        .output()
        .context("running the zeroconf browser")?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    let line = text
        .lines()
        .find(|l| l.contains(&node.id))
        .context("the browser did not see the node's service")?;
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[2], "7400", "port");
    assert_eq!(f[3], node.id, "id");
    assert_eq!(
        f[4], "2",
        "connection layout version (wire::PROTOCOL_VERSION)"
    );
    let tag = peat_mesh::Formation::new("browse", [0; 32]).tag();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(f[5], hex, "formation tag");
    Ok(())
}

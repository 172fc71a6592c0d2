//! The BLE link over the in-process radio double: sync over BLE alone, at
//! the smallest MTU, with fragment loss, as the alternate behind a dying
//! primary, and across a dropped connection. (This machine has no Bluetooth
//! radio; `tests/central.rs` covers the real radio's refusal to start.)

use std::time::{Duration, Instant};

use peat_mesh::links::{Faults, Link, Medium, PacePolicy};
use peat_mesh::{Formation, Node, NodeConfig, PeerAddr};
use peat_mesh_ble::double::{Air, AirConfig};
use peat_mesh_ble::{ble_link, BleAddr, BleLinkHandle};
use serde_json::json;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);
const A: BleAddr = [0x02, 0, 0, 0, 0, 0xa1];
const B: BleAddr = [0x02, 0, 0, 0, 0, 0xb2];

async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

fn pace(levels: &[&str]) -> PacePolicy {
    PacePolicy {
        levels: levels.iter().map(|l| vec![l.to_string()]).collect(),
        probe_interval: Duration::from_millis(100),
        dead_after: Duration::from_millis(600),
        hold_down: Duration::from_millis(1500),
        ..PacePolicy::default()
    }
}

struct TestNode {
    node: Node,
    ble: BleLinkHandle,
    _dir: TempDir,
}

/// A node with no UDP socket: a BLE link on `air` at `addr`, behind `primary`
/// (a medium station) when given.
async fn open(air: &Air, addr: BleAddr, primary: Option<&Medium>) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let (ble, handle) = ble_link("ble", air.radio(addr).unwrap()).unwrap();
    let mut cfg = NodeConfig::new(dir.path(), Formation::new("ble", [5; 32]));
    let mut levels = vec!["ble"];
    if let Some(m) = primary {
        cfg = cfg.link(Link::medium("primary", m.attach().unwrap()));
        levels.insert(0, "primary");
    }
    cfg = cfg.link(ble).pace(pace(&levels));
    cfg.udp = false;
    cfg.anti_entropy_interval = Duration::from_secs(3600);
    TestNode {
        node: Node::open(cfg).await.unwrap(),
        ble: handle,
        _dir: dir,
    }
}

fn addr_of(n: &Node) -> PeerAddr {
    let p = n.peer_addr();
    assert!(p.addrs.is_empty() && p.links.len() == 1, "{p:?}");
    p
}

async fn put_many(n: &Node, prefix: &str, count: usize) {
    for i in 0..count {
        n.put(
            "c",
            &format!("{prefix}{i}"),
            &json!({"i": i, "callsign": "ALPHA"}),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sync_over_the_ble_double_alone() {
    let air = Air::new(AirConfig::default());
    let a = open(&air, A, None).await;
    let b = open(&air, B, None).await;
    put_many(&a.node, "d", 50).await;
    b.node.connect(&addr_of(&a.node)).await.unwrap();
    assert!(eventually(WAIT, || b.node.document_count().unwrap() == 50).await);
    let (sa, sb) = (a.ble.stats(), b.ble.stats());
    // Frames cross as several GATT fragments each, all reassembled.
    assert!(sa.frames_out > 0 && sb.frames_in > 0, "{sa:?} {sb:?}");
    assert!(sa.fragments_out > sa.frames_out, "{sa:?}");
    assert_eq!(sa.dropped_malformed + sb.dropped_malformed, 0);
    assert_eq!(air.stats().oversize, 0, "{:?}", air.stats());
    assert_eq!(
        sa.connections + sb.connections,
        2,
        "one connection, both ends"
    );
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_converges_at_the_smallest_mtu_and_with_fragment_loss() {
    // 20-byte writes: a QUIC packet is some 75 fragments.
    let small = Air::new(AirConfig {
        mtu: 23,
        ..AirConfig::default()
    });
    let a = open(&small, A, None).await;
    let b = open(&small, B, None).await;
    put_many(&a.node, "d", 20).await;
    b.node.connect(&addr_of(&a.node)).await.unwrap();
    assert!(eventually(WAIT, || b.node.document_count().unwrap() == 20).await);
    assert_eq!(small.stats().oversize, 0);

    // 1 % of fragments lost (a frame of 7 fragments is lost 7 % of the
    // time): the partial frames are dropped, QUIC resends.
    let lossy = Air::new(AirConfig {
        loss: 0.01,
        ..AirConfig::default()
    });
    let c = open(&lossy, A, None).await;
    let d = open(&lossy, B, None).await;
    // 240 kB of documents: some 1,400 fragments, so that the air loses some
    // (none lost of 1,400 at 1 %: one chance in a million).
    let tile = "x".repeat(12_000);
    for i in 0..20 {
        c.node
            .put("c", &format!("d{i}"), &json!({"i": i, "tile": tile}))
            .await
            .unwrap();
    }
    d.node.add_peer(addr_of(&c.node)).unwrap();
    assert!(
        eventually(Duration::from_secs(60), || d.node.document_count().unwrap()
            == 20)
        .await
    );
    assert!(lossy.stats().lost > 0, "{:?}", lossy.stats());
    for n in [a, b, c, d] {
        n.node.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ble_takes_over_from_a_dead_primary_and_redials_a_dropped_connection() {
    let air = Air::new(AirConfig::default());
    let medium = Medium::new(Faults::default());
    let a = open(&air, A, Some(&medium)).await;
    let b = open(&air, B, Some(&medium)).await;
    let in_use = |n: &Node, p: &Node| n.bond().and_then(|bd| bd.in_use(&p.id()));
    b.node.connect(&addr_of(&a.node)).await.unwrap();
    a.node.put("c", "d0", &json!({"v": 0})).await.unwrap();
    assert!(eventually(WAIT, || b.node.get("c", "d0").unwrap().is_some()).await);
    assert!(
        eventually(WAIT, || in_use(&a.node, &b.node).as_deref()
            == Some("primary"))
        .await
    );

    // The primary dies: BLE carries the writes made during the outage.
    medium.set_up(false);
    put_many(&a.node, "out", 10).await;
    assert!(eventually(WAIT, || b.node.get("c", "out9").unwrap().is_some()).await);
    assert_eq!(in_use(&a.node, &b.node).as_deref(), Some("ble"));
    let health = a.node.bond().unwrap().links_to(&b.node.id());
    let ble = health.iter().find(|l| l.name == "ble").unwrap();
    // Its RTT is measured by the bond's probes over the double's latency.
    assert!(ble.rtt.unwrap() >= Duration::from_millis(15), "{health:?}");

    // The BLE connection drops: the link dials again and sync goes on.
    let connects = a.ble.stats().connects + b.ble.stats().connects;
    assert!(air.disconnect(A, B));
    assert!(
        eventually(WAIT, || a.ble.stats().connects + b.ble.stats().connects
            > connects)
        .await,
        "{:?} {:?}",
        a.ble.stats(),
        b.ble.stats()
    );
    put_many(&a.node, "again", 5).await;
    assert!(eventually(WAIT, || b.node.get("c", "again4").unwrap().is_some()).await);
    assert!(air.stats().disconnects >= 1);
    a.node.close(Duration::from_secs(5)).await.unwrap();
    b.node.close(Duration::from_secs(5)).await.unwrap();
}

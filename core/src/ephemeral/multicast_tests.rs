//! The multicast path of a live node on 127.0.0.1 against crafted datagrams:
//! forged, replayed, tampered, foreign, out-of-epoch, stale and oversized
//! ones are each dropped and counted; only the genuine one is delivered.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use super::message::Wire;
use super::seal::{Sealer, EPOCH, MAX_SEALED};
use super::{MulticastConfig, Via};
use crate::clock::unix_ms;
use crate::events::Event;
use crate::{Formation, Node, NodeConfig};

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(47_000)
}

fn signed(key: &iroh::SecretKey, seq: u64, payload: &[u8]) -> Wire {
    let mut w = Wire {
        json: false,
        hops_left: 0,
        hops: 0,
        age_ms: 0,
        origin: *key.public().as_bytes(),
        seq,
        sent_at_ms: unix_ms(),
        ttl_ms: 10_000,
        topic: "pos/x".into(),
        payload: payload.to_vec(),
        signature: None,
    };
    w.sign(key);
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_multicast_datagrams_are_dropped_and_counted() {
    let f = Formation::new("mc-hostile", [7; 32]);
    let port = free_port();
    let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 9), port);
    let dir = tempfile::tempdir().unwrap();
    let cfg = NodeConfig::new(dir.path(), f.clone())
        .listen("127.0.0.1:0".parse().unwrap())
        .multicast(MulticastConfig::new(group, Ipv4Addr::LOCALHOST));
    let node = Node::open(cfg).await.unwrap();
    let sub = node.subscribe_topic("*", false).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.set_multicast_loop_v4(true).unwrap();
    let send = |d: &[u8]| {
        tx.send_to(d, group).unwrap();
    };
    let now = unix_ms() / 1000;
    let other = iroh::SecretKey::generate();
    let mut sealer = Sealer::new(f.clone(), &other);

    let genuine = sealer
        .seal(&signed(&other, 10, b"genuine").encode(), now)
        .unwrap();
    send(&genuine);
    send(&genuine); // replayed
    let mut tampered = genuine.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    send(&tampered);
    let mut foreign = Sealer::new(Formation::new("elsewhere", [7; 32]), &other);
    send(
        &foreign
            .seal(&signed(&other, 11, b"foreign").encode(), now)
            .unwrap(),
    );
    let mut same_name = Sealer::new(Formation::new("mc-hostile", [8; 32]), &other);
    send(
        &same_name
            .seal(&signed(&other, 12, b"other secret").encode(), now)
            .unwrap(),
    );
    let mut forged = signed(&other, 13, b"forged");
    forged.signature = Some([1; 64]);
    send(&sealer.seal(&forged.encode(), now).unwrap());
    let third = iroh::SecretKey::generate();
    send(
        &sealer
            .seal(&signed(&third, 14, b"not the sender").encode(), now)
            .unwrap(),
    );
    let mut stale = signed(&other, 15, b"stale");
    stale.sent_at_ms -= 3_600_000;
    stale.sign(&other);
    send(&sealer.seal(&stale.encode(), now).unwrap());
    send(
        &sealer
            .seal(
                &signed(&other, 16, b"future key").encode(),
                now + 3 * EPOCH.as_secs(),
            )
            .unwrap(),
    );
    send(&vec![0xE2; MAX_SEALED + 10]);
    let unsigned = Wire {
        signature: None,
        ..signed(&other, 17, b"unsigned")
    };
    send(&sealer.seal(&unsigned.encode(), now).unwrap());

    match sub.next_timeout(Duration::from_secs(20)).await.unwrap() {
        Some(Event::Item(m)) => {
            assert_eq!(&m.payload[..], b"genuine");
            assert_eq!(m.via, Via::Multicast);
            assert_eq!(m.origin, crate::NodeId(other.public()));
        }
        other => panic!("{other:?}"),
    }
    super::hostile_tests::settle(&node, 11).await;
    let s = node.ephemeral_stats();
    assert_eq!(s.delivered, 1, "{s:?}");
    assert_eq!(s.duplicates, 1, "replayed: {s:?}");
    assert_eq!(s.bad_seal, 2, "tampered, another secret: {s:?}");
    assert_eq!(s.foreign_formation, 1, "{s:?}");
    assert_eq!(s.bad_signature, 1, "forged: {s:?}");
    assert_eq!(s.clock_skew, 1, "stale: {s:?}");
    assert_eq!(s.wrong_key, 1, "{s:?}");
    assert_eq!(s.malformed, 3, "oversized, not the sender, unsigned: {s:?}");
    assert!(sub.try_next().is_none());

    // what the node publishes goes to the group, sealed
    let before = node.ephemeral_stats().multicast_sent;
    node.publish("pos/me", b"hello", super::PublishOptions::default())
        .unwrap();
    let none = super::PublishOptions {
        multicast: false,
        ..Default::default()
    };
    node.publish("pos/me", b"not on multicast", none).unwrap();
    assert_eq!(node.ephemeral_stats().multicast_sent, before + 1);
    node.close(Duration::from_secs(5)).await.unwrap();
}

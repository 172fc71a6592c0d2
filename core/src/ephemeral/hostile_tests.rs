//! A captured peer speaking the ephemeral protocol by hand: malformed,
//! oversized, forged, replayed and flooding datagrams against a live node.
//! Each is dropped and counted, and the node goes on delivering good ones.

use std::time::Duration;

use bytes::Bytes;

use super::message::Wire;
use crate::events::Event;
use crate::node::test_support::raw_connection_as;
use crate::{Formation, Node, NodeConfig};

async fn node(f: &Formation) -> (Node, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = NodeConfig::new(dir.path(), f.clone()).listen("127.0.0.1:0".parse().unwrap());
    (Node::open(cfg).await.unwrap(), dir)
}

fn wire(origin: &iroh::SecretKey, seq: u64, topic: &str, payload: &[u8]) -> Wire {
    Wire {
        json: false,
        hops_left: 1,
        hops: 0,
        age_ms: 0,
        origin: *origin.public().as_bytes(),
        seq,
        sent_at_ms: 1,
        ttl_ms: 60_000,
        topic: topic.into(),
        payload: payload.to_vec(),
        signature: None,
    }
}

/// Waits until the node has handled `n` datagrams (connections and
/// multicast), woken after each one (never polling on a timer).
pub(super) async fn settle(node: &Node, n: u64) {
    let e = node.ephemeral_for_tests();
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let handled = e.handled.1.notified();
            tokio::pin!(handled);
            handled.as_mut().enable();
            if e.handled.0.load(std::sync::atomic::Ordering::Relaxed) >= n {
                return;
            }
            handled.await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{:?}", node.ephemeral_stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_replayed_and_malformed_datagrams_are_dropped_and_counted() {
    let f = Formation::new("hostile", [5; 32]);
    let (n, _d) = node(&f).await;
    let sub = n.subscribe_topic("*", false).unwrap();
    let me = iroh::SecretKey::generate();
    let victim = iroh::SecretKey::generate();
    let (_ep, conn) = raw_connection_as(&n, &f, me.clone()).await;
    let send = |b: Vec<u8>| conn.conn().send_datagram(Bytes::from(b)).unwrap();

    // 1. a message claiming another origin, unsigned
    send(wire(&victim, 1, "t", b"forged").encode());
    // 2. claiming another origin, signed by me
    let mut w = wire(&victim, 2, "t", b"forged");
    w.signature = Some([0; 64]);
    let mut fake = wire(&me, 2, "t", b"forged");
    fake.sign(&me);
    w.signature = fake.signature;
    send(w.encode());
    // 3. signed by the victim, then tampered
    let mut t = wire(&victim, 3, "t", b"genuine");
    t.sign(&victim);
    t.payload = b"tampered".to_vec();
    send(t.encode());
    // 4. malformed: garbage, truncated, a wrong tag, oversized
    send(vec![0xff; 10]);
    let good = wire(&me, 4, "t", b"x").encode();
    send(good[..good.len() - 1].to_vec());
    let mut tag = good.clone();
    tag[0] = 0;
    send(tag);
    // 5. coordinates that lie in a beacon
    let mut beacon = wire(&me, 5, crate::beacons::BEACON_TOPIC, b"\x01\x00");
    beacon.sign(&me);
    send(beacon.encode());
    settle(&n, 7).await;
    let s = n.ephemeral_stats();
    assert_eq!(
        (s.unsigned, s.bad_signature, s.malformed, s.delivered),
        (1, 2, 4, 0),
        "{s:?}"
    );
    assert!(sub.try_next().is_none(), "nothing reached a subscriber");

    // 6. a genuine message signed by the victim (relayed by me) is delivered
    // once; its replay is a duplicate; a number far below is stale
    let mut g = wire(&victim, 5_000, "t", b"genuine");
    g.sign(&victim);
    send(g.encode());
    send(g.encode());
    let mut old = wire(&victim, 10, "t", b"old");
    old.sign(&victim);
    send(old.encode());
    settle(&n, 10).await;
    match sub.next_timeout(Duration::from_secs(20)).await.unwrap() {
        Some(Event::Item(m)) => {
            assert_eq!(m.origin, crate::NodeId(victim.public()));
            assert_eq!(&m.payload[..], b"genuine");
        }
        other => panic!("{other:?}"),
    }
    let s = n.ephemeral_stats();
    assert_eq!((s.delivered, s.duplicates, s.stale), (1, 1, 1), "{s:?}");
    // 7. an expired one (age past its ttl)
    let mut e = wire(&me, 6, "t", b"late");
    e.age_ms = 60_000;
    send(e.encode());
    settle(&n, 11).await;
    assert_eq!(n.ephemeral_stats().expired, 1);
    assert!(sub.try_next().is_none());
    n.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_signed_relays_costs_a_bounded_number_of_verifications() {
    let f = Formation::new("hostile", [6; 32]);
    let (n, _d) = node(&f).await;
    let me = iroh::SecretKey::generate();
    let victim = iroh::SecretKey::generate();
    let (_ep, conn) = raw_connection_as(&n, &f, me.clone()).await;
    let done = n.subscribe_topic("done", false).unwrap();
    // Signatures that do not verify, as fast as the connection takes them:
    // past the budget they are refused before the costly check.
    let started = std::time::Instant::now();
    for seq in 0..3 * u64::from(super::VERIFY_PER_SEC) {
        let mut w = wire(&victim, seq, "t", b"x");
        w.signature = Some([7; 64]);
        let _ = conn
            .conn()
            .send_datagram_wait(Bytes::from(w.encode()))
            .await;
    }
    let took = started.elapsed().as_secs_f64();
    // Then a good direct message, repeated until it is through (datagrams
    // may be lost while the node's buffer is full).
    let mut seq = 1;
    let got = loop {
        let _ = conn
            .conn()
            .send_datagram(Bytes::from(wire(&me, seq, "done", b"").encode()));
        seq += 1;
        if let Some(Event::Item(m)) = done.next_timeout(Duration::from_millis(100)).await.unwrap() {
            break m;
        }
    };
    assert_eq!(got.origin, crate::NodeId(me.public()));
    let s = n.ephemeral_stats();
    // only the good ones (it may have taken two tries) got through
    assert!(s.delivered >= 1, "{s:?}");
    assert!(n.latest("t").unwrap().is_empty(), "{s:?}");
    // the budget: a burst of VERIFY_PER_SEC, then VERIFY_PER_SEC a second
    let budget = f64::from(super::VERIFY_PER_SEC) * (1.0 + took + 0.5);
    assert!((s.bad_signature as f64) <= budget, "{s:?} in {took} s");
    if took < 1.0 {
        assert!(s.rate_limited > 0, "{s:?} in {took} s");
    }
    assert_eq!(n.connected_peers(), 1);
    n.close(Duration::from_secs(5)).await.unwrap();
}

//! The SDK layer's test of ephemeral topics, beacons and the multicast path.

use super::tests::{opts, serial};
use super::*;
use crate::error::ErrorCode;
use crate::handles;
use crate::records::NodeOptions;

/// Conformance scenario 25 in Rust: ephemeral topics (JSON and bytes,
/// latest-only, bounds), beacons (events, radius/cell/since queries, bad
/// coordinates, expiry) and the multicast path between unconnected nodes.
#[test]
fn ephemeral_topics_beacons_and_multicast_reach_the_sdk() {
    use crate::records::{
        BeaconEventRecord, BeaconInfoRecord, EphemeralOptions, MessageEventRecord, NodeState,
        PublishOptionsRecord,
    };
    let _g = serial();
    let before = handles::live_handles();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let mc = |dir: &std::path::Path| NodeOptions {
        ephemeral: EphemeralOptions {
            beacon_preset: "tactical".into(),
            beacon_interval_ms: 200,
            beacon_ttl_ms: 1000,
            multicast_group: format!("239.255.77.5:{port}"),
            multicast_interface: "127.0.0.1".into(),
        },
        ..opts(dir)
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = node_open(&mc(dirs[0].path()), 5000, 0).unwrap();
    let b = node_open(&mc(dirs[1].path()), 5000, 0).unwrap();
    let c = node_open(&mc(dirs[2].path()), 5000, 0).unwrap();
    let all = subscribe_topic(a, "pos/*", false).unwrap();
    let newest = subscribe_topic(a, "pos/*", true).unwrap();
    let beacons = subscribe_beacons(a).unwrap();
    connect(b, &node_addrs(a).unwrap()[0], 5000, 0).unwrap();
    let direct = PublishOptionsRecord {
        ttl_ms: 10_000,
        hop_limit: 0,
        multicast: false,
        priority: String::new(),
    };
    assert_eq!(
        publish(b, "pos/b", br#"{"lat":59.3}"#, true, direct.clone()).unwrap(),
        1
    );
    let bid = node_id(b).unwrap();
    let m = match next_message(all, 5000).unwrap() {
        Some(MessageEventRecord::Message(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (m.origin.as_str(), m.topic.as_str(), m.json, m.hops),
        (bid.as_str(), "pos/b", true, 0)
    );
    assert_eq!(m.payload, br#"{"lat":59.3}"#);
    assert_eq!(m.via_peer.as_deref(), Some(bid.as_str()));
    assert!(m.ttl_left_ms > 0 && m.ttl_left_ms <= 10_000);
    for p in [b"1", b"2", b"3"] {
        publish(b, "pos/b", p, false, direct.clone()).unwrap();
    }
    for _ in 0..3 {
        assert!(matches!(
            next_message(all, 5000).unwrap(),
            Some(MessageEventRecord::Message(_))
        ));
    }
    let kept = latest_messages(a, "pos/*").unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].payload, b"3");
    let only = match next_message(newest, 5000).unwrap() {
        Some(MessageEventRecord::Message(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(only.payload, b"3", "latest-only keeps the newest");
    assert_eq!(next_message(newest, 0).unwrap(), None);
    // bad input
    for (topic, payload, json, hop) in [
        ("", &b"x"[..], false, 0),
        ("pos/x", &[0u8; 961][..], false, 0),
        ("_peat/x", &b"x"[..], false, 0),
        ("pos/x", &b"not json"[..], true, 0),
        ("pos/x", &b"x"[..], false, 9),
    ] {
        let o = PublishOptionsRecord {
            hop_limit: hop,
            ..direct.clone()
        };
        let e = publish(b, topic, payload, json, o).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{topic}: {e:?}");
    }
    assert_eq!(
        subscribe_topic(a, "", false).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    // multicast: c has no connection to a
    let cid = node_id(c).unwrap();
    let multi = PublishOptionsRecord {
        multicast: true,
        ..direct
    };
    assert_eq!(
        publish(c, "pos/c", b"over the group", false, multi).unwrap(),
        0
    );
    let m = loop {
        match next_message(all, 5000).unwrap() {
            Some(MessageEventRecord::Message(m)) if m.origin == cid => break m,
            Some(_) => continue,
            None => panic!("nothing from c over multicast"),
        }
    };
    assert_eq!(
        (m.payload.as_slice(), m.via_peer),
        (&b"over the group"[..], None)
    );
    // beacons
    set_beacon(
        b,
        BeaconInfoRecord {
            lat: 59.3293,
            lon: 18.0686,
            role: "sensor".into(),
            capabilities: vec!["camera".into()],
            state: NodeState::Ready,
            battery_pct: Some(80),
            ..Default::default()
        },
    )
    .unwrap();
    let seen = loop {
        match next_beacon_event(beacons, 5000).unwrap() {
            Some(BeaconEventRecord::Appeared(b)) if b.node == bid => break b,
            Some(_) => continue,
            None => panic!("no beacon from b"),
        }
    };
    assert_eq!(
        (
            seen.info.role.as_str(),
            seen.info.state,
            seen.info.battery_pct
        ),
        ("sensor", NodeState::Ready, Some(80))
    );
    assert_eq!(seen.geohash.len(), 8, "the tactical preset's precision");
    let near = beacons_near(a, 59.33, 18.07, 1000.0).unwrap();
    assert_eq!(near.len(), 1);
    assert!(near[0].distance_m.unwrap() < 1000.0);
    assert!(beacons_near(a, 0.0, 0.0, 1000.0).unwrap().is_empty());
    assert_eq!(
        beacons_in_cell(a, &seen.geohash[..5], true).unwrap().len(),
        1
    );
    assert_eq!(beacons_since(a, 0).unwrap().len(), 1);
    for (lat, lon) in [(f64::NAN, 0.0), (91.0, 0.0), (0.0, 181.0)] {
        let bad = BeaconInfoRecord {
            lat,
            lon,
            ..Default::default()
        };
        assert_eq!(
            set_beacon(b, bad).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
    assert_eq!(
        beacons_near(a, 0.0, 0.0, -1.0).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    clear_beacon(b).unwrap();
    loop {
        match next_beacon_event(beacons, 5000).unwrap() {
            Some(BeaconEventRecord::Expired(n)) if n == bid => break,
            Some(_) => continue,
            None => panic!("b's beacon never expired"),
        }
    }
    let st = ephemeral_stats(a).unwrap();
    assert!(st.delivered >= 5 && st.malformed == 0, "{st:?}");
    // bad options at open
    let d = tempfile::tempdir().unwrap();
    for e in [
        EphemeralOptions {
            beacon_preset: "nope".into(),
            ..Default::default()
        },
        EphemeralOptions {
            multicast_group: "239.255.77.5:7000".into(),
            ..Default::default()
        },
        EphemeralOptions {
            multicast_group: "x".into(),
            multicast_interface: "127.0.0.1".into(),
            ..Default::default()
        },
        EphemeralOptions {
            beacon_interval_ms: 5000,
            beacon_ttl_ms: 1000,
            ..Default::default()
        },
    ] {
        let o = NodeOptions {
            ephemeral: e.clone(),
            ..opts(d.path())
        };
        assert_eq!(
            node_open(&o, 5000, 0).unwrap_err().code,
            ErrorCode::InvalidArgument,
            "{e:?}"
        );
    }
    for s in [all, newest, beacons] {
        unsubscribe(s).unwrap();
    }
    for n in [a, b, c] {
        node_close(n, 5000).unwrap();
    }
    assert_eq!(handles::live_handles(), before);
}

use super::*;
use crate::beacons::BeaconInfo;
use proptest::prelude::*;

fn node(i: u32) -> NodeId {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    NodeId(iroh::SecretKey::from_bytes(&seed).public())
}

fn beacon(i: u32, lat: f64, lon: f64, ts: u64) -> Beacon {
    Beacon {
        node: node(i),
        info: BeaconInfo::at(lat, lon),
        geohash: Cell::of(lat, lon, 7).unwrap().to_hash(),
        timestamp_ms: ts,
        received_ms: ts,
        hops: 0,
    }
}

fn ids(v: &[Nearby]) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = v.iter().map(|n| n.beacon.node).collect();
    ids.sort();
    ids
}

#[test]
fn newer_beacons_replace_older_ones_and_events_say_so() {
    let t = BeaconTable::new(10, 16);
    let sub = t.subscribe();
    let now = Instant::now();
    t.insert(beacon(1, 10.0, 10.0, 100), Duration::from_secs(5), now);
    t.insert(beacon(1, 10.1, 10.0, 200), Duration::from_secs(5), now);
    t.insert(beacon(1, 10.2, 10.0, 150), Duration::from_secs(5), now);
    assert!(matches!(
        sub.try_next(),
        Some(crate::Event::Item(BeaconEvent::Appeared(_)))
    ));
    assert!(
        matches!(sub.try_next(), Some(crate::Event::Item(BeaconEvent::Updated(b))) if b.info.lat == 10.1)
    );
    assert_eq!(sub.try_next(), None, "the older beacon was ignored");
    let s = t.stats();
    assert_eq!((s.len, s.accepted, s.stale), (1, 2, 1));
    assert_eq!(t.get(&node(1), now).unwrap().info.lat, 10.1);
}

#[test]
fn expiry_removes_with_an_event_and_queries_never_show_expired_beacons() {
    let t = BeaconTable::new(10, 16);
    let now = Instant::now();
    t.insert(beacon(1, 0.0, 0.0, 1), Duration::from_secs(1), now);
    t.insert(beacon(2, 0.0, 0.001, 1), Duration::from_secs(3), now);
    let sub = t.subscribe();
    let later = now + Duration::from_secs(2);
    // not swept yet: queries already leave it out
    assert_eq!(
        ids(&t.near(0.0, 0.0, 1_000.0, later).unwrap()),
        vec![node(2)]
    );
    assert_eq!(t.sweep(later), Some(now + Duration::from_secs(3)));
    assert_eq!(
        sub.try_next(),
        Some(crate::Event::Item(BeaconEvent::Expired(node(1))))
    );
    assert_eq!(t.stats().expired, 1);
    assert_eq!(t.sweep(now + Duration::from_secs(3)), None);
    assert_eq!(t.stats().len, 0);
}

#[test]
fn at_the_bound_the_entry_expiring_soonest_is_evicted() {
    let t = BeaconTable::new(3, 16);
    let now = Instant::now();
    for i in 0..3u32 {
        t.insert(
            beacon(i, 0.0, 0.0, 1),
            Duration::from_secs(10 + u64::from(i)),
            now,
        );
    }
    let sub = t.subscribe();
    t.insert(beacon(9, 0.0, 0.0, 1), Duration::from_secs(30), now);
    assert_eq!(
        sub.try_next(),
        Some(crate::Event::Item(BeaconEvent::Evicted(node(0))))
    );
    assert!(matches!(
        sub.try_next(),
        Some(crate::Event::Item(BeaconEvent::Appeared(_)))
    ));
    let s = t.stats();
    assert_eq!((s.len, s.evicted), (3, 1));
    // an update of a node already in a full table evicts nobody
    t.insert(beacon(9, 1.0, 0.0, 2), Duration::from_secs(30), now);
    assert_eq!(t.stats().evicted, 1);
}

#[test]
fn cells_and_neighbours_across_the_antimeridian() {
    let t = BeaconTable::new(10, 16);
    let now = Instant::now();
    t.insert(beacon(1, 0.01, 179.999, 1), Duration::from_secs(9), now);
    t.insert(beacon(2, 0.01, -179.999, 1), Duration::from_secs(9), now);
    t.insert(beacon(3, 45.0, 0.0, 1), Duration::from_secs(9), now);
    let east = Cell::of(0.01, 179.999, 5).unwrap();
    assert_eq!(t.in_cell(east, false, now).len(), 1);
    let both: Vec<NodeId> = t.in_cell(east, true, now).iter().map(|b| b.node).collect();
    assert!(both.contains(&node(1)) && both.contains(&node(2)) && both.len() == 2);
    // ~222 m apart across the antimeridian
    let near = t.near(0.01, 179.999, 300.0, now).unwrap();
    assert_eq!(ids(&near), {
        let mut v = vec![node(1), node(2)];
        v.sort();
        v
    });
    assert!(near[0].distance_m < near[1].distance_m);
    assert!(t.near(f64::NAN, 0.0, 1.0, now).is_err());
    assert!(t.near(0.0, 0.0, -1.0, now).is_err());
}

/// Points spread everywhere, with many near the poles, the antimeridian and
/// cell borders (multiples of coarse cell sizes).
fn point() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        (-90.0f64..=90.0, -180.0f64..=180.0),
        (85.0f64..=90.0, -180.0f64..=180.0),
        (-90.0f64..=-85.0, -180.0f64..=180.0),
        (
            -10.0f64..=10.0,
            prop_oneof![170.0f64..=180.0, -180.0f64..=-170.0]
        ),
        ((-8i32..=8, -16i32..=16, -0.01f64..0.01).prop_map(|(a, b, e)| (
            (f64::from(a) * 11.25 + e).clamp(-90.0, 90.0),
            (f64::from(b) * 11.25 + e).clamp(-180.0, 180.0)
        ))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The indexed radius query finds exactly what measuring every beacon finds.
    #[test]
    fn radius_queries_match_brute_force(
        points in proptest::collection::vec(point(), 1..300),
        centre in point(),
        radius in prop_oneof![1.0f64..1_000.0, 1_000.0f64..100_000.0, 100_000.0f64..3_000_000.0, 3e6f64..2.1e7],
    ) {
        let t = BeaconTable::new(1_000, 16);
        let now = Instant::now();
        for (i, (lat, lon)) in points.iter().enumerate() {
            t.insert(beacon(i as u32, *lat, *lon, 1), Duration::from_secs(60), now);
        }
        let got = t.near(centre.0, centre.1, radius, now).unwrap();
        let mut want: Vec<NodeId> = points.iter().enumerate()
            .filter(|(_, (la, lo))| geohash::distance_m(centre.0, centre.1, *la, *lo) <= radius)
            .map(|(i, _)| node(i as u32)).collect();
        want.sort();
        prop_assert_eq!(ids(&got), want);
        prop_assert!(got.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));
    }

    /// A cell query holds exactly the points whose geohash starts with the cell's.
    #[test]
    fn cell_queries_match_brute_force(points in proptest::collection::vec(point(), 1..200), at in point(), p in 1u8..=6, nb in any::<bool>()) {
        let t = BeaconTable::new(1_000, 16);
        let now = Instant::now();
        for (i, (lat, lon)) in points.iter().enumerate() {
            t.insert(beacon(i as u32, *lat, *lon, 1), Duration::from_secs(60), now);
        }
        let cell = Cell::of(at.0, at.1, p).unwrap();
        let cells: Vec<String> = if nb { cell.with_neighbours() } else { vec![cell] }
            .into_iter().map(Cell::to_hash).collect();
        let mut got: Vec<NodeId> = t.in_cell(cell, nb, now).iter().map(|b| b.node).collect();
        got.sort();
        let mut want: Vec<NodeId> = points.iter().enumerate()
            .filter(|(_, (la, lo))| { let h = Cell::of(*la, *lo, 12).unwrap().to_hash(); cells.iter().any(|c| h.starts_with(c.as_str())) })
            .map(|(i, _)| node(i as u32)).collect();
        want.sort();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn labels_are_shared_and_go_with_their_last_beacon() {
    let t = BeaconTable::new(10, 16);
    let now = Instant::now();
    for i in 0..4u32 {
        let mut b = beacon(i, 1.0, 1.0, 1);
        b.info.role = "sensor".into();
        b.info.capabilities = vec!["camera".into(), format!("c{}", i % 2)];
        t.insert(b, Duration::from_secs(1 + u64::from(i)), now);
    }
    // "sensor", and two capability lists
    assert_eq!(t.inner.locked().labels.len(), 3);
    let got = t.get(&node(3), now).unwrap();
    assert_eq!(
        got.info.capabilities,
        vec!["camera".to_string(), "c1".into()]
    );
    assert_eq!(got.info.role, "sensor");
    assert_eq!(got.geohash, Cell::of(1.0, 1.0, 7).unwrap().to_hash());
    t.sweep(now + Duration::from_secs(10));
    assert_eq!(t.inner.locked().labels.len(), 0);
}

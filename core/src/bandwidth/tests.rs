use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;

fn id(i: u8) -> NodeId {
    NodeId(iroh::SecretKey::from_bytes(&[i; 32]).public())
}

#[test]
fn the_json_form_reads_back_and_refuses_unknown_fields() {
    let b = Bandwidth::unlimited()
        .per_peer(50_000)
        .link("radio", 120_000);
    assert_eq!(Bandwidth::from_json(&b.to_json()).unwrap(), b);
    assert_eq!(Bandwidth::from_json("{}").unwrap(), Bandwidth::unlimited());
    assert!(Bandwidth::from_json(r#"{"per_peer": 5000, "peer": 1}"#).is_err());
    assert!(Bandwidth::from_json(r#"{"per_peer": -1}"#).is_err());
    assert!(Bandwidth::from_json(r#"{"links": {"radio": "fast"}}"#).is_err());
}

#[test]
fn check_refuses_unknown_links_and_rates_below_the_minimum() {
    let links = vec!["radio".to_string()];
    assert!(Bandwidth::unlimited()
        .link("radio", 5_000)
        .check(&links)
        .is_ok());
    assert!(Bandwidth::unlimited()
        .link(SOCKET_LINK, 5_000)
        .check(&links)
        .is_ok());
    let e = Bandwidth::unlimited()
        .link("wifi", 5_000)
        .check(&links)
        .unwrap_err();
    assert!(e.to_string().contains("no such link"), "{e}");
    let e = Bandwidth::unlimited()
        .per_peer(10)
        .check(&links)
        .unwrap_err();
    assert!(e.to_string().contains("below the minimum"), "{e}");
    assert!(Bandwidth::unlimited()
        .link("radio", 0)
        .check(&links)
        .is_err());
}

proptest! {
    #[test]
    fn any_text_is_a_bandwidth_or_an_invalid_argument(text in ".{0,80}") {
        match Bandwidth::from_json(&text) {
            Ok(b) => prop_assert_eq!(Bandwidth::from_json(&b.to_json()).unwrap(), b),
            Err(e) => prop_assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument),
        }
    }

    #[test]
    fn any_budget_reads_back(per_peer in proptest::option::of(any::<u64>()),
                             links in proptest::collection::btree_map("[a-z]{1,8}", any::<u64>(), 0..4)) {
        let b = Bandwidth { per_peer, links };
        prop_assert_eq!(Bandwidth::from_json(&b.to_json()).unwrap(), b);
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_budget_holds_per_peer_and_the_socket_budget_for_all_of_them() {
    // 20 kB/s per peer, 30 kB/s for the socket: two peers share 30 kB/s
    let t = Throttle::new(
        Bandwidth::unlimited()
            .per_peer(20_000)
            .link(SOCKET_LINK, 30_000),
        vec![],
    )
    .unwrap();
    let t = std::sync::Arc::new(t);
    let start = Instant::now();
    let send = |p: NodeId| {
        let t = t.clone();
        tokio::spawn(async move {
            for _ in 0..30 {
                t.take(&p, Priority::Normal, 2_000).await;
            }
        })
    };
    let (a, b) = (send(id(1)), send(id(2)));
    a.await.unwrap();
    b.await.unwrap();
    // 120 kB at 30 kB/s, less the first burst of 16 KiB
    let secs = start.elapsed().as_secs_f64();
    assert!((3.3..=3.6).contains(&secs), "{secs}");
    let s = t.stats();
    assert_eq!(s.bytes_limited, 120_000);
    assert!(s.waits > 0 && s.waited > Duration::ZERO, "{s:?}");

    // one peer alone is held to its own 20 kB/s
    t.set(
        Bandwidth::unlimited()
            .per_peer(20_000)
            .link(SOCKET_LINK, 30_000),
    )
    .unwrap();
    let start = Instant::now();
    for _ in 0..30 {
        t.take(&id(3), Priority::Normal, 2_000).await;
    }
    let secs = start.elapsed().as_secs_f64();
    assert!((2.1..=2.3).contains(&secs), "{secs}");
}

#[tokio::test(start_paused = true)]
async fn datagrams_are_dropped_and_counted_when_a_budget_is_spent() {
    let t = Throttle::new(Bandwidth::unlimited().per_peer(MIN_RATE), vec![]).unwrap();
    let mut sent = 0;
    for _ in 0..100 {
        if t.try_take_datagram(&id(1), Priority::High, 1_000) {
            sent += 1;
        }
    }
    // the first burst (16 KiB) goes; the rest is dropped, counted
    assert_eq!(sent, 16);
    assert_eq!(t.stats().dropped_datagrams, 84);
    // another peer has its own budget
    assert!(t.try_take_datagram(&id(2), Priority::High, 1_000));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(t.try_take_datagram(&id(1), Priority::High, 1_000));
    // no budget: nothing is dropped
    t.set(Bandwidth::unlimited()).unwrap();
    assert!((0..100).all(|_| t.try_take_datagram(&id(1), Priority::High, 1_000)));
}

#[tokio::test(start_paused = true)]
async fn per_peer_buckets_stay_within_their_bound() {
    let t = Throttle::new(Bandwidth::unlimited().per_peer(1_000_000), vec![]).unwrap();
    for i in 0..(MAX_PEER_BUCKETS + 50) {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let p = NodeId(iroh::SecretKey::from_bytes(&key).public());
        t.take(&p, Priority::Normal, 100).await;
    }
    assert_eq!(t.peer_buckets(), MAX_PEER_BUCKETS);
}

#[test]
fn a_bad_budget_is_refused_at_set_and_the_old_one_stays() {
    let t = Throttle::new(Bandwidth::unlimited().per_peer(5_000), vec!["radio".into()]).unwrap();
    assert!(t.set(Bandwidth::unlimited().link("lora", 5_000)).is_err());
    assert_eq!(t.get(), Bandwidth::unlimited().per_peer(5_000));
    assert!(t.is_limited());
}

#[tokio::test(start_paused = true)]
async fn a_datagram_never_goes_ahead_of_a_waiting_sender_of_its_class_or_higher() {
    let t = std::sync::Arc::new(
        Throttle::new(Bandwidth::unlimited().per_peer(10_000), vec![]).unwrap(),
    );
    // empty the bucket, then a normal-class write waits for 5,000 bytes
    t.take(&id(1), Priority::Normal, 16_384).await;
    let waiting = {
        let t = t.clone();
        tokio::spawn(async move { t.take(&id(1), Priority::Normal, 5_000).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 2,000 bytes of tokens now: room for a datagram, but not for the waiter
    assert!(!t.try_take_datagram(&id(1), Priority::Low, 100));
    assert!(!t.try_take_datagram(&id(1), Priority::Normal, 100));
    assert!(t.try_take_datagram(&id(1), Priority::High, 100));
    assert_eq!(t.stats().dropped_datagrams, 2);
    waiting.await.unwrap();
}

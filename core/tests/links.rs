//! Links besides UDP: two nodes bonded over two in-process media with
//! injectable faults; PACE moves the traffic between them under one admitted
//! connection and one sync session.

mod common;

use std::time::Duration;

use common::links::*;
use common::*;
use peat_mesh::links::{Faults, Link, LinkState, Medium, PacePolicy};
use peat_mesh::Node;
use serde_json::json;
use tempfile::TempDir;

fn frames(n: &Node, kind: &str) -> u64 {
    let s = n.sync_stats();
    s.sent.by_kind.get(kind).map(|v| v.0).unwrap_or(0)
        + s.received.by_kind.get(kind).map(|v| v.0).unwrap_or(0)
}

/// Two nodes on the primary and alternate media, connected, a first document
/// synced and the primary in use.
struct Pair {
    a: Node,
    b: Node,
    /// A's peer events since before the connection.
    peer_events: peat_mesh::Subscription<peat_mesh::PeerEvent>,
    _dirs: (TempDir, TempDir),
}

async fn connected_on_primary(primary: &Medium, alternate: &Medium) -> Pair {
    let (a, da) = open_linked(primary, alternate, fast_pace()).await;
    let (b, db) = open_linked(primary, alternate, fast_pace()).await;
    let peer_events = a.subscribe_peers();
    b.connect(&links_only(&a)).await.unwrap();
    a.put("c", "d0", &json!({"v": 0})).await.unwrap();
    assert!(eventually(WAIT, || b.get("c", "d0").unwrap().is_some()).await);
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("primary")).await);
    Pair {
        a,
        b,
        peer_events,
        _dirs: (da, db),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_moves_to_the_alternate_link_and_back_in_one_session() {
    init_tracing();
    let (m1, m2) = two_media();
    let Pair {
        a,
        b,
        peer_events,
        _dirs,
    } = connected_on_primary(&m1, &m2).await;
    // The first reconciliation round (a message each way, counted by sender
    // and receiver) is over.
    let reconciles = || frames(&a, "Reconcile") + frames(&b, "Reconcile");
    assert!(eventually(WAIT, || reconciles() >= 4).await);
    let reconciles_before = reconciles();
    let hellos = frames(&a, "Hello") + frames(&b, "Hello");
    let alt_before = m2.stats().delivered_bytes;

    // The primary dies; writes made during the outage arrive over the alternate.
    m1.set_up(false);
    for i in 1..=20 {
        a.put("c", &format!("d{i}"), &json!({"v": i}))
            .await
            .unwrap();
    }
    assert!(eventually(WAIT, || b.get("c", "d20").unwrap().is_some()).await);
    assert_eq!(in_use(&a, &b).as_deref(), Some("alternate"));
    assert!(m2.stats().delivered_bytes > alt_before + 20 * 50);
    for i in 1..=20 {
        assert_eq!(b.get("c", &format!("d{i}")).unwrap(), Some(json!({"v": i})));
    }

    // The primary returns: traffic goes back once it has stayed healthy for
    // the hold-down.
    m1.set_up(true);
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("primary")).await);
    let prim_before = m1.stats().delivered_bytes;
    a.put("c", "after", &json!({"v": "back"})).await.unwrap();
    assert!(eventually(WAIT, || b.get("c", "after").unwrap().is_some()).await);
    assert!(m1.stats().delivered_bytes > prim_before);

    // One admission, one session, no reconciliation from scratch, every
    // switch logged, and no document event twice.
    assert_eq!(frames(&a, "Hello") + frames(&b, "Hello"), hellos);
    assert_eq!(reconciles(), reconciles_before);
    let mut connected = 0;
    let mut link_events = Vec::new();
    while let Ok(Some(ev)) = peer_events.next_timeout(Duration::from_millis(1)).await {
        match ev {
            peat_mesh::Event::Item(peat_mesh::PeerEvent::Connected { .. }) => connected += 1,
            peat_mesh::Event::Item(peat_mesh::PeerEvent::LinkChanged {
                peer,
                from: Some(from),
                to,
                level,
            }) => {
                assert_eq!(peer, b.id());
                link_events.push((from, to, level));
            }
            _ => {}
        }
    }
    assert_eq!(connected, 1, "connected once");
    // Each move reached the application as a peer event.
    assert_eq!(
        link_events,
        vec![
            ("primary".into(), Some("alternate".into()), Some(1)),
            ("alternate".into(), Some("primary".into()), Some(0)),
        ]
    );
    let switches: Vec<(Option<String>, Option<String>)> = a
        .bond()
        .unwrap()
        .take_switches()
        .into_iter()
        .map(|s| (s.from, s.to))
        .collect();
    assert_eq!(
        switches,
        vec![
            (None, Some("primary".to_string())),
            (Some("primary".into()), Some("alternate".into())),
            (Some("alternate".into()), Some("primary".into())),
        ]
    );
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_converges_over_a_lossy_slow_link() {
    init_tracing();
    // 20 % loss each way and 300 ms RTT (150 ms one way, 20 ms jitter).
    let bad = Faults::default()
        .loss(0.2)
        .delay(Duration::from_millis(150))
        .jitter(Duration::from_millis(20));
    let (m1, m2) = (Medium::new(bad), Medium::new(Faults::default()));
    m2.set_up(false); // only the bad link
    let pace = PacePolicy {
        dead_after: Duration::from_secs(3),
        degraded_loss: 0.9,
        ..fast_pace()
    };
    // A lossy radio link gets the longest link timeout (15 s): with 20 % loss
    // the handshake's retransmissions can take several seconds.
    let slow = Duration::from_secs(15);
    let (a, _da) = open_linked_with(&m1, &m2, pace.clone(), slow).await;
    let (b, _db) = open_linked_with(&m1, &m2, pace, slow).await;
    for i in 0..30 {
        a.put("c", &format!("d{i}"), &json!({"v": i}))
            .await
            .unwrap();
    }
    // A peer to keep dialling: on this link one handshake can take longer than
    // a dial's 10 s (handshake retransmissions back off); a later one succeeds.
    b.add_peer(links_only(&a)).unwrap();
    assert!(
        eventually(Duration::from_secs(90), || b.document_count().unwrap()
            == 30)
        .await
    );
    let stats = m1.stats();
    assert!(stats.dropped_lost > 0, "{stats:?}");
    let health = a.bond().unwrap().links_to(&b.id());
    let primary = health.iter().find(|l| l.name == "primary").unwrap();
    assert!(
        primary.rtt.unwrap() >= Duration::from_millis(280),
        "{health:?}"
    );
    assert_ne!(primary.state, LinkState::Dead);
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_node_without_udp_needs_a_link_and_no_mdns() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), formation());
    cfg.udp = false;
    let e = Node::open(cfg.clone()).await.unwrap_err();
    assert_eq!(e.kind(), peat_mesh::ErrorKind::InvalidArgument, "{e}");
    let m = Medium::new(Faults::default());
    let mut with_mdns = cfg.link(Link::medium("radio", m.attach().unwrap()));
    with_mdns.mdns = true;
    let e = Node::open(with_mdns).await.unwrap_err();
    assert!(e.to_string().contains("mDNS"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_primary_does_not_make_the_node_flap() {
    init_tracing();
    let (m1, m2) = two_media();
    let Pair { a, b, _dirs, .. } = connected_on_primary(&m1, &m2).await;
    a.bond().unwrap().take_switches();

    // The fault, scripted on the medium's clock: the primary is down 150 ms
    // and up 150 ms (three probe intervals each), for 6 s — four times the
    // hold-down.
    let start = m1.elapsed() + Duration::from_millis(50);
    let end = start + Duration::from_secs(6);
    let mut flapping = Faults::default();
    for k in 0..20u32 {
        let from = start + Duration::from_millis(300) * k;
        flapping = flapping.outage(from, from + Duration::from_millis(150));
    }
    m1.set_faults(flapping);
    // Writes while it flaps: some at once, the rest once the traffic has moved.
    for i in 1..=15 {
        a.put("c", &format!("d{i}"), &json!({"v": i}))
            .await
            .unwrap();
    }
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("alternate")).await);
    for i in 16..=30 {
        a.put("c", &format!("d{i}"), &json!({"v": i}))
            .await
            .unwrap();
    }
    assert!(eventually(WAIT, || b.get("c", "d30").unwrap().is_some()).await);
    for i in 1..=30 {
        assert_eq!(b.get("c", &format!("d{i}")).unwrap(), Some(json!({"v": i})));
    }
    // The script has run its course.
    assert!(eventually(WAIT, || m1.elapsed() >= end).await);
    // While it flapped the traffic left the primary once and stayed away (it
    // may have come back since the flapping ended, after the hold-down).
    let moves: Vec<String> = a
        .bond()
        .unwrap()
        .take_switches()
        .into_iter()
        .filter_map(|s| s.to)
        .collect();
    assert!(
        moves == ["alternate"] || moves == ["alternate", "primary"],
        "{moves:?}"
    );
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_link_sends_nothing_and_its_peers_move_at_once() {
    init_tracing();
    let (m1, m2) = two_media();
    let Pair {
        a,
        b,
        peer_events,
        _dirs,
    } = connected_on_primary(&m1, &m2).await;
    let e = a.set_link_silent("nope", true).unwrap_err();
    assert_eq!(e.kind(), peat_mesh::ErrorKind::InvalidArgument, "{e}");

    // Both ends go quiet on the primary: the traffic moves at once, without
    // waiting for the dead-link time, and the primary carries nothing more.
    a.set_link_silent("primary", true).unwrap();
    b.set_link_silent("primary", true).unwrap();
    assert_eq!(in_use(&a, &b).as_deref(), Some("alternate"));
    assert_eq!(in_use(&b, &a).as_deref(), Some("alternate"));
    let quiet = m1.stats().sent;
    let probes = m2.stats().delivered;
    for i in 1..=10 {
        a.put("c", &format!("s{i}"), &json!({"v": i}))
            .await
            .unwrap();
    }
    assert!(eventually(WAIT, || b.get("c", "s10").unwrap().is_some()).await);
    // Several probe rounds later (each one crosses the alternate), still
    // nothing on the primary.
    assert!(eventually(WAIT, || m2.stats().delivered >= probes + 40).await);
    assert_eq!(m1.stats().sent, quiet, "a silenced link sent something");
    let mine = a
        .peers()
        .into_iter()
        .find(|p| p.id == b.id())
        .unwrap()
        .links;
    let primary = mine.iter().find(|l| l.name == "primary").unwrap();
    assert!(primary.silent && !primary.in_use, "{mine:?}");
    let alternate = mine.iter().find(|l| l.name == "alternate").unwrap();
    assert!(alternate.in_use && alternate.rtt.is_some() && alternate.last_answer.is_some());
    assert_eq!(alternate.level, Some(1));

    // Back on: the primary is proven again and, after the hold-down, carries
    // the traffic.
    a.set_link_silent("primary", false).unwrap();
    b.set_link_silent("primary", false).unwrap();
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("primary")).await);
    let mut moves = Vec::new();
    while let Ok(Some(ev)) = peer_events.next_timeout(Duration::from_millis(1)).await {
        if let peat_mesh::Event::Item(peat_mesh::PeerEvent::LinkChanged {
            from: Some(from),
            to,
            ..
        }) = ev
        {
            moves.push((from, to));
        }
    }
    assert_eq!(
        moves,
        vec![
            ("primary".to_string(), Some("alternate".to_string())),
            ("alternate".to_string(), Some("primary".to_string())),
        ]
    );
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sync_over_udp_links_of_their_own() {
    init_tracing();
    let open_udp = || async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), formation())
            .link(Link::udp("lan1", "127.0.0.1:0".parse().unwrap()))
            .link(Link::udp("lan2", "127.0.0.1:0".parse().unwrap()))
            .pace(fast_pace_named("lan1", "lan2"));
        cfg.udp = false;
        (Node::open(cfg).await.unwrap(), dir)
    };
    let (a, _da) = open_udp().await;
    let (b, _db) = open_udp().await;
    b.connect(&links_only(&a)).await.unwrap();
    a.put("c", "d", &json!({"v": 1})).await.unwrap();
    assert!(eventually(WAIT, || b.get("c", "d").unwrap().is_some()).await);
    assert!(eventually(WAIT, || in_use(&a, &b).as_deref() == Some("lan1")).await);
    // Both links answer their probes.
    assert!(
        eventually(WAIT, || {
            let health = a.bond().unwrap().links_to(&b.id());
            health.len() == 2
                && health
                    .iter()
                    .all(|l| l.state == LinkState::Healthy && l.rtt.is_some())
        })
        .await,
        "{:?}",
        a.bond().unwrap().links_to(&b.id())
    );
    assert!(a.bond().unwrap().stats().packets_in > 0);
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

fn fast_pace_named(primary: &str, alternate: &str) -> PacePolicy {
    PacePolicy {
        levels: vec![vec![primary.into()], vec![alternate.into()]],
        ..fast_pace()
    }
}

//! Static discovery at runtime and connection management on loopback (mDNS
//! runs in network namespaces: `node/tests/netns.rs`).

mod common;

use std::time::Duration;

use common::{eventually, open, TestNode, WAIT};
use peat_mesh::{Event, Node, PeerEvent, PeerState, Source};

async fn next_matching(
    sub: &peat_mesh::Subscription<PeerEvent>,
    f: impl Fn(&PeerEvent) -> bool,
) -> PeerEvent {
    loop {
        match sub.next_timeout(WAIT).await.unwrap() {
            Some(Event::Item(e)) if f(&e) => return e,
            Some(_) => {}
            None => panic!("no matching peer event"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_peers_added_and_removed_at_runtime() {
    common::init_tracing();
    let a = open().await;
    let b = open().await;
    let events = a.node.subscribe_peers();
    a.node.add_peer(b.node.peer_addr()).unwrap();
    let e = next_matching(&events, |e| matches!(e, PeerEvent::Discovered { .. })).await;
    assert_eq!(
        e,
        PeerEvent::Discovered {
            peer: b.node.id(),
            source: Source::Static
        }
    );
    next_matching(&events, |e| matches!(e, PeerEvent::Connected { .. })).await;
    let info = a
        .node
        .peers()
        .into_iter()
        .find(|p| p.id == b.node.id())
        .unwrap();
    assert_eq!(info.state, PeerState::Connected);
    assert_eq!(info.sources, vec![Source::Static]);

    // A dropped link to a static peer is re-dialled by itself.
    assert!(b.node.disconnect(&a.node.id()));
    next_matching(&events, |e| matches!(e, PeerEvent::Disconnected { .. })).await;
    next_matching(&events, |e| matches!(e, PeerEvent::Connected { .. })).await;
    a.node
        .put("c", "after", &serde_json::json!({"x": 1}))
        .await
        .unwrap();
    assert!(eventually(WAIT, || b.node.get("c", "after").unwrap().is_some()).await);

    // Removed: lost, disconnected, and not dialled again.
    assert!(a.node.remove_peer(&b.node.id()));
    assert!(!a.node.remove_peer(&b.node.id()));
    next_matching(&events, |e| matches!(e, PeerEvent::Lost { .. })).await;
    assert!(eventually(WAIT, || a.node.connected_peers() == 0).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.node.connected_peers(), 0, "a removed peer was re-dialled");
    assert!(a.node.peers().iter().all(|p| p.sources.is_empty()));
    assert!(a.node.add_peer(a.node.peer_addr()).is_err());
    for n in [&a, &b] {
        n.node.close(Duration::from_secs(5)).await.unwrap();
    }
}

/// Discovery outside the core (Kubernetes, in `peat-mesh-k8s`) reports peers
/// through `Node::discovered` / `Node::lost`: dialled like mDNS peers,
/// published with their source, dropped when lost, bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_reported_by_an_outside_discovery_are_dialled_and_dropped() {
    common::init_tracing();
    let a = open().await;
    let b = open().await;
    let events = a.node.subscribe_peers();
    for (peer, source) in [
        (b.node.peer_addr(), Source::Mdns),
        (b.node.peer_addr(), Source::Static),
        (a.node.peer_addr(), Source::Kubernetes),
    ] {
        let e = a.node.discovered(peer, source).unwrap_err();
        assert!(matches!(e, peat_mesh::Error::InvalidArgument(_)), "{e}");
    }
    a.node
        .discovered(b.node.peer_addr(), Source::Kubernetes)
        .unwrap();
    let e = next_matching(&events, |e| matches!(e, PeerEvent::Discovered { .. })).await;
    assert_eq!(
        e,
        PeerEvent::Discovered {
            peer: b.node.id(),
            source: Source::Kubernetes
        }
    );
    next_matching(&events, |e| matches!(e, PeerEvent::Connected { .. })).await;
    // Reported again (a slice changed): no second event, still connected.
    a.node
        .discovered(b.node.peer_addr(), Source::Kubernetes)
        .unwrap();
    let info = a
        .node
        .peers()
        .into_iter()
        .find(|p| p.id == b.node.id())
        .unwrap();
    assert_eq!(info.sources, vec![Source::Kubernetes]);
    assert!(!a.node.lost(&b.node.id(), Source::Mdns));
    assert!(a.node.lost(&b.node.id(), Source::Kubernetes));
    assert!(!a.node.lost(&b.node.id(), Source::Kubernetes));
    next_matching(&events, |e| {
        matches!(
            e,
            PeerEvent::Lost {
                source: Source::Kubernetes,
                ..
            }
        )
    })
    .await;
    assert!(eventually(WAIT, || a.node.connected_peers() == 0).await);

    // At most MAX_KUBERNETES_PEERS wanted by Kubernetes alone; the next new
    // one is refused with an error, a known one is still taken.
    let ids: Vec<_> = (0..=peat_mesh::MAX_KUBERNETES_PEERS)
        .map(|_| iroh::SecretKey::generate().public().to_string())
        .map(|id| id.parse::<peat_mesh::NodeId>().unwrap())
        .collect();
    let (last, first) = ids.split_last().unwrap();
    for id in first {
        a.node
            .discovered(
                peat_mesh::PeerAddr::with_addrs(*id, vec![]),
                Source::Kubernetes,
            )
            .unwrap();
    }
    let e = a
        .node
        .discovered(
            peat_mesh::PeerAddr::with_addrs(*last, vec![]),
            Source::Kubernetes,
        )
        .unwrap_err();
    assert!(e.to_string().contains("more than 256"), "{e}");
    a.node
        .discovered(
            peat_mesh::PeerAddr::with_addrs(first[0], vec![]),
            Source::Kubernetes,
        )
        .unwrap();
    assert!(a.node.lost(&first[1], Source::Kubernetes));
    a.node
        .discovered(
            peat_mesh::PeerAddr::with_addrs(*last, vec![]),
            Source::Kubernetes,
        )
        .unwrap();
    // Their dialling stops (it would only slow the tests running beside).
    for id in &ids {
        a.node.lost(id, Source::Kubernetes);
    }
    for n in [&a, &b] {
        n.node.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_limit_refuses_connections_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path(), common::formation());
    cfg.max_peers = 1;
    let hub = TestNode {
        node: Node::open(cfg).await.unwrap(),
        dir,
    };
    let b = open().await;
    let c = open().await;
    b.node.connect(&hub.node.peer_addr()).await.unwrap();
    assert!(c.node.connect(&hub.node.peer_addr()).await.is_err());
    assert_eq!(hub.node.connected_peers(), 1);
    // the hub itself will not dial beyond its limit either
    assert!(hub.node.connect(&c.node.peer_addr()).await.is_err());
    for n in [&hub, &b, &c] {
        n.node.close(Duration::from_secs(5)).await.unwrap();
    }
}

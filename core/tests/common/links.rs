//! Two nodes bonded over in-process media (the links tests).

use std::time::Duration;

use peat_mesh::links::{Faults, Link, Medium, PacePolicy};
use peat_mesh::{Node, NodeConfig, PeerAddr};
use tempfile::TempDir;

use super::{config, formation};

pub fn fast_pace() -> PacePolicy {
    PacePolicy {
        levels: vec![vec!["primary".into()], vec!["alternate".into()]],
        probe_interval: Duration::from_millis(100),
        dead_after: Duration::from_millis(500),
        hold_down: Duration::from_millis(1500),
        ..PacePolicy::default()
    }
}

pub async fn open_linked(
    primary: &Medium,
    alternate: &Medium,
    pace: PacePolicy,
) -> (Node, TempDir) {
    open_linked_with(primary, alternate, pace, Duration::from_secs(5)).await
}

pub async fn open_linked_with(
    primary: &Medium,
    alternate: &Medium,
    pace: PacePolicy,
    link_timeout: Duration,
) -> (Node, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: NodeConfig = config(dir.path(), formation())
        .link(Link::medium("primary", primary.attach().unwrap()))
        .link(Link::medium("alternate", alternate.attach().unwrap()))
        .pace(pace);
    // No periodic reconciliation during the test: any round counted is one
    // the link change caused.
    cfg.anti_entropy_interval = Duration::from_secs(3600);
    cfg.link_timeout = link_timeout;
    // Links only: no UDP socket, so every packet crosses the media.
    cfg.udp = false;
    (Node::open(cfg).await.unwrap(), dir)
}

/// The peer's address: its links only (its node has no UDP socket).
pub fn links_only(n: &Node) -> PeerAddr {
    let p = n.peer_addr();
    assert!(p.addrs.is_empty(), "no UDP socket: {p:?}");
    assert_eq!(p.links.len(), 1, "one bond address");
    p
}

pub fn in_use(n: &Node, peer: &Node) -> Option<String> {
    n.bond()?.in_use(&peer.id())
}

/// Two fault-free media: a primary and an alternate.
pub fn two_media() -> (Medium, Medium) {
    (
        Medium::new(Faults::default()),
        Medium::new(Faults::default()),
    )
}

//! Helpers shared by the integration tests: nodes on 127.0.0.1 with temp dirs.
#![allow(dead_code)]

pub mod links;

use std::path::Path;
use std::time::{Duration, Instant};

use peat_mesh::{Formation, Node, NodeConfig};
use tempfile::TempDir;

pub fn formation() -> Formation {
    Formation::new("test-formation", [42; 32])
}

pub fn config(dir: &Path, formation: Formation) -> NodeConfig {
    NodeConfig::new(dir, formation).listen("127.0.0.1:0".parse().unwrap())
}

pub struct TestNode {
    pub node: Node,
    pub dir: TempDir,
}

pub async fn open() -> TestNode {
    open_in(formation()).await
}

pub async fn open_in(formation: Formation) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(config(dir.path(), formation)).await.unwrap();
    TestNode { node, dir }
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// `from` connects to `to`, and both sides are up: `to` has published
/// `Connected` (its protocols are attached then, so it can publish too).
pub async fn connect_both(from: &Node, to: &Node) {
    let events = to.subscribe_peers();
    from.connect(&to.peer_addr()).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.next_timeout(left).await.unwrap() {
            Some(peat_mesh::Event::Item(peat_mesh::PeerEvent::Connected { peer }))
                if peer == from.id() =>
            {
                return
            }
            Some(_) => continue,
            None => panic!("{} never saw {} connect", to.id(), from.id()),
        }
    }
}

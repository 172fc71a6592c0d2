//! Shutdown with nodes left open: each is closed properly (connections ended,
//! store flushed, database file released), so the same data dirs open again at
//! once in this very process, with every acknowledged write. Its own process,
//! since shutdown ends the SDK for good.

use std::time::{Duration, Instant};

use peat_mesh::{Formation, Node, NodeConfig};
use peat_mesh_ffi::dispatch::EventSink;
use peat_mesh_ffi::records::{NodeOptions, SubEvent};
use peat_mesh_ffi::{handles, sdk, ErrorCode};

struct Ignore;

impl EventSink for Ignore {
    fn on_event(&self, _event: &SubEvent) {}
}

fn opts(dir: &std::path::Path) -> NodeOptions {
    NodeOptions {
        data_dir: dir.to_string_lossy().into_owned(),
        formation_id: "t".into(),
        formation_secret: vec![9; 32],
        listen: "127.0.0.1:0".into(),
        peers: vec![],
        mdns: false,
        ..Default::default()
    }
}

#[test]
fn shutdown_closes_open_nodes_and_releases_their_stores() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = sdk::node_open(&opts(da.path()), 5000, 0).unwrap();
    let b = sdk::node_open(&opts(db.path()), 5000, 0).unwrap();
    sdk::connect(b, &sdk::node_addrs(a).unwrap()[0], 5000, 0).unwrap();
    let sub = sdk::subscribe_docs(b, "c", None, true).unwrap();
    sdk::subscribe_docs_push(a, "c", None, true, Box::new(Ignore)).unwrap();
    for i in 0..50 {
        sdk::put(a, "c", &format!("d{i}"), &format!(r#"{{"i":{i}}}"#)).unwrap();
    }
    sdk::put(b, "c", "last", r#"{"from":"b"}"#).unwrap();

    let start = Instant::now();
    sdk::shutdown(5_000).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(handles::live_handles(), 0);
    assert_eq!(
        sdk::put(a, "c", "x", "{}").unwrap_err().code,
        ErrorCode::InvalidHandle
    );
    assert_eq!(
        sdk::next_doc_event(sub, 10).unwrap_err().code,
        ErrorCode::InvalidHandle
    );
    assert_eq!(
        sdk::node_open(&opts(da.path()), 1000, 0).unwrap_err().code,
        ErrorCode::ShutDown
    );
    sdk::shutdown(1_000).unwrap(); // idempotent

    // The database files were released: the core opens both dirs again here.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (dir, id, want) in [
            (da.path(), "d49", r#"{"i":49}"#),
            (db.path(), "last", r#"{"from":"b"}"#),
        ] {
            let f = Formation::try_new("t", [9; 32]).unwrap();
            let cfg = NodeConfig::new(dir, f).listen("127.0.0.1:0".parse().unwrap());
            let n = tokio::time::timeout(Duration::from_secs(5), Node::open(cfg))
                .await
                .expect("reopening a data dir after shutdown hung")
                .expect("the data dir's database was not released by shutdown");
            assert_eq!(n.get_json("c", id).unwrap().as_deref(), Some(want));
            n.close(Duration::from_secs(5)).await.unwrap();
        }
    });
}

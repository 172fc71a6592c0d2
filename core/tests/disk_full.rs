//! A data dir on a file system that fills up (a small tmpfs, as an SD card in
//! the field): the store fails stop. No write is acknowledged unless it is on
//! disk, the error reaches the caller, and after the node is reopened every
//! acknowledged write is there. Needs root to mount the tmpfs (CI runs as
//! root); without it the test fails and says so.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use peat_mesh::{ErrorKind, Event, Node, PeerEvent};
use serde_json::json;

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "mounting a tmpfs failed: this test needs root (run it as root, as CI does)"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_stop_and_loses_no_acknowledged_write() {
    let fs = Tmpfs::mount("3m");
    let data = fs.0.path().join("node");
    // A filler file that is deleted later, to make room for the reopen.
    let filler = fs.0.path().join("filler");
    std::fs::write(&filler, vec![0u8; 256 * 1024]).unwrap();

    let node = Node::open(config(&data, formation())).await.unwrap();
    let events = node.subscribe_peers();
    let pad = "x".repeat(2000);
    let mut acknowledged = Vec::new();
    let mut first_error = None;
    for i in 0..100_000 {
        // varied content so nothing compresses away
        let v = json!({ "i": i, "pad": format!("{pad}{i}"), "k": i * 7919 });
        match node.put("fill", &format!("d{i}"), &v).await {
            Ok(()) => acknowledged.push((i, v)),
            Err(e) => {
                first_error = Some(e);
                break;
            }
        }
    }
    let err = first_error.expect("the disk never filled");
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(!acknowledged.is_empty());
    // fail-stop: even a tiny write is refused now, with a reason
    let again = node.put("small", "s", &json!({"a": 1})).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Io);
    assert!(again.to_string().contains("failed commit"), "{again}");
    // and the node's event stream says so, once
    match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
        Ok(Some(Event::Item(PeerEvent::StorageFailed { reason }))) => {
            assert!(!reason.is_empty())
        }
        other => panic!("expected StorageFailed, got {other:?}"),
    }
    node.close(Duration::from_secs(10)).await.ok();
    drop(node);

    std::fs::remove_file(&filler).unwrap();
    let node = Node::open(config(&data, formation())).await.unwrap();
    for (i, v) in &acknowledged {
        assert_eq!(
            node.get("fill", &format!("d{i}")).unwrap().as_ref(),
            Some(v),
            "acknowledged write d{i} was lost"
        );
    }
    assert_eq!(node.get("small", "s").unwrap(), None);
    node.close(Duration::from_secs(10)).await.unwrap();
}

//! A node's data dir on a file system that fills up (a 3 MiB tmpfs): through
//! the SDK, the failing put is an `Io` error, later puts too, and the
//! peer-event subscription reports `StorageFailed` once, with a reason. Needs
//! root to mount the tmpfs (CI runs as root); without it the test fails and
//! says so.

use std::process::Command;

use peat_mesh_ffi::records::{NodeOptions, PeerEventRecord};
use peat_mesh_ffi::sdk;
use peat_mesh_ffi::ErrorCode;

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

#[test]
fn a_full_data_dir_gives_io_errors_and_one_storage_failed_event() {
    let fs = Tmpfs::mount("3m");
    std::fs::write(fs.0.path().join("filler"), vec![0u8; 256 * 1024]).unwrap();
    let o = NodeOptions {
        data_dir: fs.0.path().join("node").to_string_lossy().into_owned(),
        formation_id: "t".into(),
        formation_secret: vec![9; 32],
        listen: "127.0.0.1:0".into(),
        peers: vec![],
        mdns: false,
        ..Default::default()
    };
    let n = sdk::node_open(&o, 5000, 0).unwrap();
    let sub = sdk::subscribe_peers(n).unwrap();
    let pad = "x".repeat(2000);
    let mut first_error = None;
    for i in 0..100_000u64 {
        // varied content so nothing compresses away
        let doc = format!(r#"{{"i":{i},"pad":"{pad}{i}","k":{}}}"#, i * 7919);
        if let Err(e) = sdk::put(n, "fill", &format!("d{i}"), &doc) {
            first_error = Some(e);
            break;
        }
    }
    let err = first_error.expect("the disk never filled");
    assert_eq!(err.code, ErrorCode::Io, "{err}");
    let again = sdk::put(n, "small", "s", r#"{"a":1}"#).unwrap_err();
    assert_eq!(again.code, ErrorCode::Io, "{again}");
    match sdk::next_peer_event(sub, 10_000).unwrap() {
        Some(PeerEventRecord::StorageFailed { reason }) => assert!(!reason.is_empty()),
        other => panic!("expected StorageFailed, got {other:?}"),
    }
    // once: nothing else arrives (the node has no peers)
    assert_eq!(sdk::next_peer_event(sub, 300).unwrap(), None);
    sdk::unsubscribe(sub).unwrap();
    sdk::node_close(n, 10_000).unwrap();
}

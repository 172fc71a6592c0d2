//! `peat-mesh-node run` with link flags, as a real process: a bad link spec
//! and a Bluetooth link on a machine without Bluetooth both end the process
//! with an error that says what is wrong (and bind nothing first).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_peat-mesh-node");

/// Runs the node; `(true, …)` if it was still running after 10 s (it
/// started), else whether it exited well and its stderr.
fn run(extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--data-dir"])
        .arg(dir.path())
        .args(["--formation", "cli", "--no-mdns", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("PEAT_SECRET", "42".repeat(32))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The exit arrives on a channel from a thread that waits for it; a node
    // still running after 10 s is killed (it started).
    let mut stderr = child.stderr.take().unwrap();
    let pid = child.id().to_string();
    let (tx, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match exited.recv_timeout(Duration::from_secs(10)) {
        Ok(s) => Some(s.unwrap()),
        Err(_) => {
            Command::new("kill").arg(&pid).status().unwrap();
            None
        }
    };
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    (status.is_none_or(|s| s.success()), err)
}

#[test]
fn a_bad_link_spec_is_refused_with_its_reason() {
    let (ok, err) = run(&["--link", "lan=nowhere"]);
    assert!(!ok);
    assert!(err.contains("--link") && err.contains("nowhere"), "{err}");
    let (ok, err) = run(&["--link", "lan=127.0.0.1:0@9"]);
    assert!(!ok);
    assert!(err.contains("level 9"), "{err}");
}

#[test]
fn a_ble_link_without_bluetooth_names_what_is_missing() {
    let (ok, err) = run(&["--link", "ble=ble", "--links-only"]);
    if ok {
        // A machine with a Bluetooth adapter: nothing to check here.
        return;
    }
    assert!(
        err.contains("--link ble") && err.contains("Bluetooth"),
        "{err}"
    );
}

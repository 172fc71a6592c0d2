//! A child process killed with SIGKILL in the middle of a write burst loses no
//! write that `put` had acknowledged. The test binary re-runs itself as the child.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use peat_mesh::Node;
use serde_json::json;

const CHILD_ENV: &str = "PEAT_CRASH_CHILD_DIR";

fn child(dir: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let node = Node::open(common::config(dir.as_ref(), common::formation()))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("w{w}-{i}");
                    node.put(
                        "burst",
                        &id,
                        &json!({"w": w, "i": i, "pad": "x".repeat(100)}),
                    )
                    .await
                    .unwrap();
                    println!("ACK {id}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn kill_dash_nine_loses_no_acknowledged_write() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_dash_nine_loses_no_acknowledged_write",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
    while acked.len() < 2000 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_string());
        }
    }
    proc.kill().unwrap(); // SIGKILL
    proc.wait().unwrap();
    // Acks printed before the kill but not yet read are acknowledged writes too.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_string());
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let node = Node::open(common::config(dir.path(), common::formation()))
            .await
            .unwrap();
        let missing: Vec<&String> = acked
            .iter()
            .filter(|id| node.get("burst", id).unwrap().is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged writes lost: {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)]
        );
        eprintln!(
            "{} acknowledged writes all present after SIGKILL",
            acked.len()
        );
        node.close(Duration::from_secs(5)).await.unwrap();
    });
}

//! `peat-mesh-node serve`, `config check` and `hash-token` as processes: bad
//! values exit 2 with one line, the printed settings hide the secret, and
//! SIGTERM drains (requests answered, node closed, data kept).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use peat_mesh_service::client::call;

const HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_peat-mesh-node"));
    c.env_remove("PEAT_SECRET").env_remove("RUST_LOG");
    c
}

#[test]
fn bad_values_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let base = ["serve", "--data-dir", d, "--formation", "f"];
    let cases: &[(&[&str], &str)] = &[
        (&["--listen", "nowhere"], "not an address"),
        (&["--http-bind", "0.0.0.0:8080"], "not loopback"),
        (&["--peer", "junk"], "peer"),
        (&["--log-level", "loud"], "log_level"),
        (&["--mdns", "maybe"], "invalid value"),
        (&["--no-such-flag"], "unexpected argument"),
        (&["--secret-file", "/no/such/file"], "secret_file"),
        (&["--kubernetes", "maybe"], "invalid value"),
        (
            &["--kubernetes", "--kubernetes-namespace", "Not_A_Name"],
            "kubernetes.namespace",
        ),
    ];
    for (extra, want) in cases {
        let out = bin()
            .args(base)
            .args(*extra)
            .env("PEAT_SECRET", HEX)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // No secret anywhere, and a non-ASCII secret.
    let out = bin().args(base).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args(base)
        .env("PEAT_SECRET", "é".repeat(32))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"));
    // --help explains the options.
    let out = bin().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for flag in [
        "--config",
        "--data-dir",
        "--secret-file",
        "--http-bind",
        "--kubernetes",
        "PEAT_LISTEN",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

#[test]
fn config_check_prints_the_effective_settings_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peat.toml");
    std::fs::write(
        &file,
        "data_dir = \"/var/lib/peat\"\nformation = \"alpha\"\n[http]\nbind = \"127.0.0.1:9999\"\n",
    )
    .unwrap();
    let out = bin()
        .args(["config", "check", file.to_str().unwrap()])
        .env("PEAT_SECRET", HEX)
        .env("PEAT_LOG_LEVEL", "debug")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("formation = \"alpha\"") && text.contains("log_level = \"debug\""),
        "{text}"
    );
    assert!(
        text.contains("<redacted") && !text.contains("5a5a"),
        "{text}"
    );
    std::fs::write(&file, "formation = \"alpha\"\nsecret = \"oops\"\n").unwrap();
    let out = bin()
        .args(["config", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field") && !err.contains("oops"),
        "{err}"
    );

    let mut child = bin()
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"my-token\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        peat_mesh_service::auth::hash_token("my-token")
    );
}

/// A child process killed if the test ends early.
struct Reaped(Option<std::process::Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends SIGTERM and waits (at most 20 s) for the exit code.
async fn terminate(child: &mut Reaped) -> Option<i32> {
    let mut c = child.0.take().expect("a running child");
    let pid = c.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || c.wait()),
    )
    .await
    .expect("the process did not stop on SIGTERM")
    .unwrap()
    .unwrap()
    .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let start = || {
        bin()
            .args([
                "serve",
                "--data-dir",
                d.to_str().unwrap(),
                "--formation",
                "f",
            ])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--http-bind",
                "127.0.0.1:0",
                "--grace-secs",
                "5",
            ])
            .env("PEAT_SECRET", HEX)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let ready = |child: &mut std::process::Child| {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().unwrap().unwrap();
        let addr: std::net::SocketAddr = line
            .split("http=")
            .nth(1)
            .unwrap_or_else(|| panic!("no READY line: {line}"))
            .parse()
            .unwrap();
        (addr, lines)
    };
    let mut child = Reaped(Some(start()));
    let (addr, mut lines) = ready(child.0.as_mut().unwrap());
    let doc = "/api/v1/collections/c/documents/kept";
    let r = call(addr, "PUT", doc, None, Some("{\"v\":1}"))
        .await
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(terminate(&mut child).await, Some(0));
    assert_eq!(
        lines.next().map(|l| l.unwrap()),
        Some("STOPPED".to_string())
    );
    // The store was closed cleanly: a new process opens it and has the document.
    let mut child = Reaped(Some(start()));
    let (addr, _) = ready(child.0.as_mut().unwrap());
    let r = call(addr, "GET", doc, None, None).await.unwrap();
    assert_eq!(r.json(), serde_json::json!({"v": 1}));
    // healthcheck (a container's HEALTHCHECK): 0 while it serves
    let health = |a: String| {
        bin()
            .args(["healthcheck", &a])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(health(addr.to_string()), Some(0));
    assert_eq!(terminate(&mut child).await, Some(0));
    // 1 once nothing answers, 2 for an address that is not one
    assert_eq!(health(addr.to_string()), Some(1));
    assert_eq!(health("nowhere".into()), Some(2));
}

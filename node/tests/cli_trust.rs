//! The trust commands as a user runs them, as real processes on loopback: an
//! offline authority (`authority new|issue|revoke`, its key file owner-only),
//! a node run in certificate mode that makes an enrollment token, a second
//! node enrolled by `peat-mesh-node enroll`, and a revocation handed to the
//! first node.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_peat-mesh-node");

/// Runs a one-shot command; its stdout, or its stderr as the error.
fn cli(args: &[&str]) -> Result<String, String> {
    let out = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The value after `prefix` on the line starting with it.
fn value(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {out:?}"))
        .trim()
        .to_string()
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .env("PEAT_SECRET", "42".repeat(32))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            stdin,
            lines,
        }
    }

    /// Waits for the next line starting with `prefix`.
    fn expect(&mut self, prefix: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no {prefix:?} line"));
            if let Some(rest) = l.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
        }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_offline_authority_a_token_an_enrollment_and_a_revocation() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("authority.key");
    let key_s = key.to_str().unwrap();
    let out = cli(&[
        "authority",
        "new",
        "--formation",
        "cli",
        "--key-file",
        key_s,
    ])
    .unwrap();
    let authority = value(&out, "AUTHORITY ");
    assert_eq!(authority.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // never over an existing key
    assert!(cli(&[
        "authority",
        "new",
        "--formation",
        "cli",
        "--key-file",
        key_s
    ])
    .is_err());

    // the enroller runs in certificate mode; the authority certifies it
    let e_dir = work.path().join("e");
    let mut e = Running::start(&[
        "run",
        "--data-dir",
        e_dir.to_str().unwrap(),
        "--formation",
        "cli",
        "--no-mdns",
        "--listen",
        "127.0.0.1:0",
        "--control",
        "--authority",
        &authority,
    ]);
    let ready = e.expect("READY ");
    let e_id = ready.split_whitespace().next().unwrap().to_string();
    let e_addr = e.expect("ADDR ");
    let out = cli(&[
        "authority",
        "issue",
        "--formation",
        "cli",
        "--key-file",
        key_s,
        "--subject",
        &e_id,
        "--tier",
        "regional",
        "--permissions",
        "enroll,relay",
        "--valid-days",
        "2",
    ])
    .unwrap();
    let e_cert = value(&out, "CERT ");
    e.send(&format!("set-chain {e_cert}"));
    e.expect("OK set-chain");
    e.send("membership");
    assert_eq!(e.expect("MEMBERSHIP "), "valid regional");
    e.send("token edge relay 600");
    let token = e.expect("TOKEN ");
    let token_file = work.path().join("token");
    std::fs::write(&token_file, &token).unwrap();

    // a new device enrolls with the token (from a file, never the command line)
    let d_dir = work.path().join("d");
    let d_args = [
        "enroll",
        "--data-dir",
        d_dir.to_str().unwrap(),
        "--formation",
        "cli",
        "--authority",
        &authority,
        "--enroller",
        &e_addr,
        "--token-file",
        token_file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let out = cli(&d_args).unwrap();
    let chain = value(&out, "CHAIN ");
    let certs: Vec<&str> = chain.split(',').collect();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1], e_cert);
    // the token is spent
    let err = cli(&d_args).unwrap_err();
    assert!(err.contains("already holds a valid"), "{err}");
    let d2 = work.path().join("d2");
    let mut d2_args = d_args;
    d2_args[2] = d2.to_str().unwrap();
    let err = cli(&d2_args).unwrap_err();
    assert!(err.contains("already used"), "{err}");

    // the authority revokes the device's certificate; the enroller takes it
    let out = cli(&[
        "authority",
        "revoke",
        "--formation",
        "cli",
        "--key-file",
        key_s,
        "--certificate",
        certs[0],
    ])
    .unwrap();
    let record = value(&out, "REVOCATION ");
    e.send(&format!("add-revocation {record}"));
    assert_eq!(e.expect("OK add-revocation"), "true");

    // a key file open to other users is refused, with what to do
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = cli(&[
            "authority",
            "issue",
            "--formation",
            "cli",
            "--key-file",
            key_s,
            "--subject",
            &e_id,
            "--tier",
            "edge",
        ])
        .unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
    }
    // bad values say what is wrong
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for (bad, says) in [
        (vec!["--tier", "general"], "tier"),
        (
            vec!["--tier", "edge", "--permissions", "root"],
            "permission",
        ),
        (vec!["--tier", "edge", "--valid-days", "0"], "--valid-days"),
    ] {
        let mut args = vec![
            "authority",
            "issue",
            "--formation",
            "cli",
            "--key-file",
            key_s,
            "--subject",
            &e_id,
        ];
        args.extend(bad);
        let err = cli(&args).unwrap_err();
        assert!(err.contains(says), "{says}: {err}");
    }
}

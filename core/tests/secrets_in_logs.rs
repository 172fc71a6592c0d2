//! No secret reaches the logs, errors or `Debug` output: a run of the trust
//! features (formation secret, identity keys, an authority, an enrollment
//! token, a refused reuse of it, a revocation) with every log level captured,
//! then grepped for each secret in the forms it could take.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peat_mesh::trust::{
    AdmissionMode, Authority, Grant, Permissions, RevocationRecord, Tier, TrustConfig,
};
use peat_mesh::{Formation, Node, NodeId};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Forms a 32-byte secret could take in text: hex either case, Rust's
/// `Debug` of the array (all of it or its start), base64-free here.
fn forms(secret: &[u8]) -> Vec<String> {
    vec![
        hex(secret),
        hex(secret).to_uppercase(),
        format!("{:?}", secret),
        format!("{:?}", &secret[..8])
            .trim_end_matches(']')
            .to_string(),
    ]
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_errors_or_debug_output() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let formation_secret = Formation::generate_secret();
    let authority_secret = Formation::generate_secret();
    let auth = Authority::from_secret("alpha", authority_secret).unwrap();
    let keys = [
        Formation::generate_secret(),
        Formation::generate_secret(),
        Formation::generate_secret(),
    ];
    let id = |k: &[u8; 32]| -> NodeId {
        NodeId::from_bytes(iroh::SecretKey::from_bytes(k).public().as_bytes()).unwrap()
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut text = Vec::new(); // errors and Debug output, checked with the logs
    let mut nodes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let chain = if i == 0 {
            vec![auth
                .issue(&Grant {
                    subject: id(k),
                    tier: Tier::Regional,
                    permissions: Permissions::ENROLL | Permissions::RELAY,
                    not_before_ms: now_ms() - 1000,
                    valid_for: Duration::from_secs(3600),
                })
                .unwrap()]
        } else {
            Vec::new()
        };
        let cfg = common::config(dirs[i].path(), Formation::new("alpha", formation_secret))
            .secret_key(*k)
            .trust(TrustConfig::new(auth.genesis().clone(), AdmissionMode::Both).chain(chain));
        text.push(format!("{cfg:?}"));
        nodes.push(Node::open(cfg).await.unwrap());
    }
    let (e, d, d2) = (&nodes[0], &nodes[1], &nodes[2]);
    let token = e
        .create_enrollment_token(Tier::Edge, Permissions::NONE, Duration::from_secs(600))
        .unwrap();
    text.push(format!("{token:?} {auth:?}"));
    d.enroll(&e.peer_addr(), token.clone()).await.unwrap();
    let err = d2.enroll(&e.peer_addr(), token.clone()).await.unwrap_err();
    text.push(format!("{err} {err:?} {:?}", d2.membership()));
    d.put("notes", "n", &serde_json::json!({"x": 1}))
        .await
        .unwrap();
    let cert = d.certificate_chain()[0].clone();
    e.add_revocation(RevocationRecord {
        revocation: auth.revoke(&cert, now_ms()),
        revoker_chain: Vec::new(),
    })
    .await
    .unwrap();
    // a wrong formation secret, refused
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong = Node::open(
        common::config(wrong_dir.path(), Formation::generate("alpha")).trust(TrustConfig::new(
            auth.genesis().clone(),
            AdmissionMode::Both,
        )),
    )
    .await
    .unwrap();
    let err = wrong.connect(&e.peer_addr()).await.unwrap_err();
    text.push(format!("{err} {err:?}"));
    for n in nodes.into_iter().chain([wrong]) {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logs.len() > 10_000,
        "the run was logged ({} bytes)",
        logs.len()
    );
    assert!(logs.contains("enrolled a device") && logs.contains("revocation learnt"));
    let all = format!("{logs}\n{}", text.join("\n"));
    let token_bytes = peat_mesh::trust::EnrollmentToken::from_hex(&token.to_hex()).unwrap();
    let mut secrets: Vec<(&str, Vec<u8>)> = vec![
        ("formation secret", formation_secret.to_vec()),
        ("authority secret", authority_secret.to_vec()),
        ("enrollment token", token_bytes_of(&token_bytes)),
    ];
    for k in &keys {
        secrets.push(("identity key", k.to_vec()));
    }
    for (what, s) in secrets {
        for form in forms(&s) {
            assert!(!all.contains(&form), "the {what} appears as {form:?}");
        }
    }
}

fn token_bytes_of(t: &peat_mesh::trust::EnrollmentToken) -> Vec<u8> {
    let h = t.to_hex();
    (0..32)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

//! HTTPS and CORS against a real node on loopback: a self-signed
//! certificate (rcgen) served with rustls and checked by a rustls client;
//! plain HTTP to the HTTPS port gets no answer; a client that connects and
//! never finishes its handshake holds up no one; a key that does not match
//! the certificate is refused at start; CORS answers preflights for the
//! configured origin only, and is off by default.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peat_mesh_service::client::{call, request};
use peat_mesh_service::{Layer, Service, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn settings(dir: &std::path::Path, extra: &str) -> Result<Settings, String> {
    let text = format!(
        "data_dir = {:?}\nformation = \"tls-test\"\nlisten = \"127.0.0.1:0\"\n[http]\nbind = \"127.0.0.1:0\"\n{extra}",
        dir.join("data").display().to_string()
    );
    let env = Layer::from_env([("PEAT_SECRET".to_string(), HEX.to_string())]).unwrap();
    Settings::resolve(Layer::from_toml(&text).unwrap().merge(env)).map_err(|e| e.to_string())
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM.
fn cert(dir: &std::path::Path, name: &str) -> (String, rcgen::Certificate) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, ck.cert.pem()).unwrap();
    std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
    (
        format!(
            "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
            c.display().to_string(),
            k.display().to_string()
        ),
        ck.cert,
    )
}

/// GET `path` over TLS, trusting only `root`; the whole response as text.
async fn https_get(addr: SocketAddr, root: &rcgen::Certificate, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_rustls() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, root) = cert(dir.path(), "node");
    let svc = Service::start(&settings(dir.path(), &tls).unwrap())
        .await
        .unwrap();
    let a = svc.http_addr();

    // a client that connects and says nothing holds up no one
    let _silent = TcpStream::connect(a).await.unwrap();
    let r = https_get(a, &root, "/api/v1/health").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains(r#"{"status":"ok"}"#), "{r}");
    // plain HTTP to the HTTPS port: no HTTP answer
    let plain = tokio::time::timeout(
        Duration::from_secs(15),
        call(a, "GET", "/api/v1/health", None, None),
    )
    .await
    .expect("the server closes a plain connection");
    assert!(
        plain.is_err() || plain.unwrap().status == 0,
        "plain HTTP was answered"
    );
    // another certificate is not trusted by a client that knows only its own
    let (_, other) = cert(dir.path(), "other");
    let svc_out = tokio::spawn(async move { https_get(a, &other, "/api/v1/health").await });
    assert!(
        svc_out.await.is_err(),
        "a client trusting another root connected"
    );
    svc.shutdown(Duration::from_secs(5)).await.unwrap();

    // a key that is not the certificate's is refused at start, with the reason
    let (_, _) = cert(dir.path(), "third");
    let mixed = format!(
        "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
        dir.path().join("node.crt").display().to_string(),
        dir.path().join("third.key").display().to_string()
    );
    let e = settings(dir.path(), &mixed).err().unwrap();
    assert!(e.contains("do not make a pair") && !e.contains('\n'), "{e}");
}

async fn preflight(
    a: SocketAddr,
    origin: &str,
) -> std::io::Result<peat_mesh_service::client::Reply> {
    let headers = [
        ("Origin", origin),
        ("Access-Control-Request-Method", "PUT"),
        (
            "Access-Control-Request-Headers",
            "authorization, content-type",
        ),
    ];
    request(
        a,
        "OPTIONS",
        "/api/v1/collections/c/documents/d",
        None,
        &headers,
        b"",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_for_the_configured_origin_only() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(
        &settings(dir.path(), "cors_origins = [\"https://console.example\"]\n").unwrap(),
    )
    .await
    .unwrap();
    let a = svc.http_addr();
    let r = preflight(a, "https://console.example").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://console.example")
    );
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("PUT"));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    let r = preflight(a, "https://evil.example").await.unwrap();
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = request(
        a,
        "GET",
        "/api/v1/health",
        None,
        &[("Origin", "https://console.example")],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://console.example")
    );
    svc.shutdown(Duration::from_secs(5)).await.unwrap();

    // off by default: no CORS header for anyone
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(&settings(dir.path(), "").unwrap())
        .await
        .unwrap();
    let r = request(
        svc.http_addr(),
        "GET",
        "/api/v1/health",
        None,
        &[("Origin", "https://console.example")],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.header("access-control-allow-origin"), None);
    svc.shutdown(Duration::from_secs(5)).await.unwrap();
}

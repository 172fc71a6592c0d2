//! Settings from a file, the environment and flags: precedence, redaction,
//! and one clear line for every bad value.

use peat_mesh_service::auth::hash_token;
use peat_mesh_service::{Layer, Settings};

const HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn env(vars: &[(&str, &str)]) -> Layer {
    Layer::from_env(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

#[test]
fn later_sources_win_field_by_field() {
    let file = Layer::from_toml(
        r#"
data_dir = "/from/file"
formation = "file"
listen = "0.0.0.0:4433"
log_level = "debug"
[http]
bind = "127.0.0.1:9000"
"#,
    )
    .unwrap();
    let from_env = env(&[
        ("PEAT_FORMATION", "env"),
        ("PEAT_SECRET", HEX),
        ("PEAT_HTTP_BIND", "127.0.0.1:9001"),
    ]);
    let flags = Layer {
        formation: Some("flag".into()),
        ..Layer::default()
    };
    let s = Settings::resolve(file.merge(from_env).merge(flags)).unwrap();
    assert_eq!(s.formation, "flag");
    assert_eq!(s.data_dir.to_str(), Some("/from/file"));
    assert_eq!(s.listen.to_string(), "0.0.0.0:4433");
    assert_eq!(s.http_bind.to_string(), "127.0.0.1:9001");
    assert_eq!(s.log_level, "debug");
    assert_eq!(*s.secret, [0x5a; 32]);
}

#[test]
fn secrets_never_appear_in_the_printed_settings() {
    let token = "tok-3e1f9c0d";
    let file = Layer::from_toml(&format!(
        r#"
data_dir = "/d"
formation = "f"
[[http.tokens]]
name = "ops"
sha256 = "{}"
scopes = ["read", "write"]
"#,
        hash_token(token)
    ))
    .unwrap();
    let s = Settings::resolve(file.merge(env(&[("PEAT_SECRET", HEX)]))).unwrap();
    for text in [s.redacted(), format!("{s:?}")] {
        assert!(!text.contains(HEX) && !text.contains("5a5a"), "{text}");
        assert!(
            !text.contains(&hash_token(token)) && !text.contains(token),
            "{text}"
        );
        assert!(
            text.contains("<redacted: from PEAT_SECRET>") && text.contains("name = \"ops\""),
            "{text}"
        );
    }
    // The printed form reads back as a config file (secret aside).
    assert!(s.redacted().parse::<toml::Table>().is_ok());
}

#[test]
fn collection_policies_come_from_the_file_and_are_checked() {
    let file = Layer::from_toml(
        r#"
data_dir = "/d"
formation = "f"
[policies.collections.orders]
signatures = "reject"
priority = "critical"
"#,
    )
    .unwrap();
    let s = Settings::resolve(file.clone().merge(env(&[("PEAT_SECRET", HEX)]))).unwrap();
    let p = s.policies.for_collection("orders");
    assert_eq!(p.signatures, peat_mesh::SignaturePolicy::Reject);
    assert_eq!(p.priority, peat_mesh::Priority::Critical);
    assert!(
        s.redacted().contains("signatures = \"reject\""),
        "{}",
        s.redacted()
    );
    let bad = Layer::from_toml("[policies.collections.orders]\nsignatures = \"maybe\"").unwrap();
    let e = Settings::resolve(bad.merge(env(&[
        ("PEAT_DATA_DIR", "/d"),
        ("PEAT_FORMATION", "f"),
        ("PEAT_SECRET", HEX),
    ])))
    .expect_err("accepted a bad policy")
    .to_string();
    assert!(e.contains("signatures") && !e.contains('\n'), "{e}");
}

#[test]
fn a_secret_file_holds_hex_or_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (hexf, raw) = (dir.path().join("hex"), dir.path().join("raw"));
    std::fs::write(&hexf, format!("{HEX}\n")).unwrap();
    std::fs::write(&raw, [0x5a; 32]).unwrap();
    for f in [&hexf, &raw] {
        let l = env(&[
            ("PEAT_DATA_DIR", "/d"),
            ("PEAT_FORMATION", "f"),
            ("PEAT_SECRET_FILE", f.to_str().unwrap()),
        ]);
        let s = Settings::resolve(l).unwrap();
        assert_eq!(*s.secret, [0x5a; 32]);
        assert!(s.redacted().contains("<redacted: from file"));
    }
}

#[test]
fn every_bad_value_is_one_clear_line() {
    let ok = [
        ("PEAT_DATA_DIR", "/d"),
        ("PEAT_FORMATION", "f"),
        ("PEAT_SECRET", HEX),
    ];
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("PEAT_SECRET", "xyz")], "64 hex digits"),
        (
            &[(
                "PEAT_SECRET",
                "é5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
            )],
            "64 hex digits",
        ),
        (&[("PEAT_SECRET", &"00".repeat(32))], "all zeros"),
        (&[("PEAT_LISTEN", "nowhere")], "not an address"),
        (&[("PEAT_HTTP_BIND", "1.2.3.4")], "not an address"),
        (&[("PEAT_HTTP_BIND", "0.0.0.0:8080")], "not loopback"),
        (&[("PEAT_PEERS", "not-a-peer")], "peer"),
        (&[("PEAT_LOG_LEVEL", "loud")], "log_level"),
        (&[("PEAT_LOG_FORMAT", "xml")], "log_format"),
        (&[("PEAT_FORMATION", "")], "formation"),
        (&[("PEAT_SECRET_FILE", "/no/such/file")], "secret_file"),
        (&[("PEAT_HTTP_TLS_CERT_FILE", "/c.pem")], "go together"),
        (
            &[
                ("PEAT_HTTP_TLS_CERT_FILE", "/no/cert.pem"),
                ("PEAT_HTTP_TLS_KEY_FILE", "/no/key.pem"),
            ],
            "http.tls_cert_file /no/cert.pem",
        ),
        (
            &[("PEAT_HTTP_CORS_ORIGINS", "console.example")],
            "not an origin",
        ),
        (
            &[("PEAT_HTTP_CORS_ORIGINS", "https://a.example/path")],
            "not an origin",
        ),
        (&[("PEAT_KUBERNETES", "sometimes")], "PEAT_KUBERNETES"),
        (
            &[
                ("PEAT_KUBERNETES", "true"),
                ("PEAT_KUBERNETES_SLICE_SELECTOR", "app in (peat"),
            ],
            "kubernetes.slice_selector",
        ),
        (
            &[
                ("PEAT_KUBERNETES", "true"),
                ("PEAT_KUBERNETES_PORT_NAME", "QUIC"),
            ],
            "kubernetes.port_name",
        ),
        (
            &[
                ("PEAT_KUBERNETES", "true"),
                ("PEAT_KUBERNETES_NAMESPACE", "Mesh_1"),
            ],
            "kubernetes.namespace",
        ),
        (
            &[
                ("PEAT_KUBERNETES", "true"),
                ("PEAT_KUBERNETES_API_SERVER", "http://10.0.0.1"),
            ],
            "kubernetes.api_server",
        ),
        (
            &[
                ("PEAT_KUBERNETES", "true"),
                ("PEAT_KUBERNETES_KUBECONFIG", "/k"),
                ("PEAT_KUBERNETES_API_SERVER", "https://10.0.0.1"),
            ],
            "kubernetes.kubeconfig",
        ),
    ];
    for (over, want) in cases {
        let mut vars: Vec<(&str, &str)> = ok.to_vec();
        vars.extend_from_slice(over);
        let e = match Layer::from_env(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))) {
            Ok(l) => Settings::resolve(l).expect_err("accepted a bad value"),
            Err(e) => e,
        };
        let msg = e.to_string();
        assert!(msg.contains(want) && !msg.contains('\n'), "{over:?}: {msg}");
    }
    assert!(Layer::from_env([("PEAT_MDNS".to_string(), "maybe".to_string())]).is_err());
    for (text, want) in [
        ("colour = \"red\"", "unknown field"),
        ("listen = 5", "invalid type"),
        ("[http]\nbind = \"127.0.0.1:1\"\n[[http.tokens]]\nname = \"x\"\nsha256 = \"12\"\nscopes = [\"read\"]", ""),
        ("data_dir = ", "config file"),
    ] {
        let r = Layer::from_toml(text).map(|l| Settings::resolve(l.merge(env(&ok))));
        let msg = match r {
            Err(e) => e.to_string(),
            Ok(Err(e)) => e.to_string(),
            Ok(Ok(_)) => panic!("accepted {text:?}"),
        };
        assert!(msg.contains(want) && !msg.contains('\n'), "{text:?}: {msg}");
    }
    // Required values name where they come from.
    let e = Settings::resolve(Layer::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("data_dir is required") && e.contains("PEAT_DATA_DIR"),
        "{e}"
    );
}

#[test]
fn kubernetes_discovery_is_off_unless_enabled_and_layers_like_the_rest() {
    let ok = [
        ("PEAT_DATA_DIR", "/d"),
        ("PEAT_FORMATION", "f"),
        ("PEAT_SECRET", HEX),
    ];
    let s = Settings::resolve(env(&ok)).unwrap();
    assert!(s.kubernetes.is_none());
    assert!(s.redacted().contains("[kubernetes]\nenabled = false"));

    let file = Layer::from_toml(
        r#"
[kubernetes]
enabled = true
slice_selector = "kubernetes.io/service-name=r1-peat-mesh"
port_name = "mesh"
namespace = "from-file"
"#,
    )
    .unwrap();
    let mut vars = ok.to_vec();
    vars.extend([
        ("PEAT_KUBERNETES_NAMESPACE", "from-env"),
        ("PEAT_KUBERNETES_SERVICE_ACCOUNT_DIR", "/sa"),
    ]);
    let mut flags = Layer::default();
    flags.kubernetes.pod_name = Some("r1-peat-mesh-2".into());
    let s = Settings::resolve(file.merge(env(&vars)).merge(flags)).unwrap();
    let k = s.kubernetes.clone().expect("enabled");
    assert_eq!(k.slice_selector, "kubernetes.io/service-name=r1-peat-mesh");
    assert_eq!(
        k.pod_selector, "app.kubernetes.io/name=peat-mesh",
        "the default"
    );
    assert_eq!(k.port_name, "mesh");
    assert_eq!(k.namespace.as_deref(), Some("from-env"));
    assert_eq!(k.pod_name.as_deref(), Some("r1-peat-mesh-2"));
    assert_eq!(
        k.access,
        peat_mesh_k8s::ApiAccess::InCluster {
            service_account_dir: "/sa".into(),
            server: None
        }
    );
    let printed = s.redacted();
    assert!(printed.contains("namespace = \"from-env\""), "{printed}");
    assert!(
        printed.contains("service_account_dir = \"/sa\""),
        "{printed}"
    );
    // What `config check` prints is a config file that reads back.
    let again =
        Layer::from_toml(&printed.replace("secret = \"<redacted: from PEAT_SECRET>\"\n", ""))
            .unwrap();
    let s2 = Settings::resolve(again.merge(env(&ok))).unwrap();
    assert_eq!(s2.kubernetes, s.kubernetes);
}

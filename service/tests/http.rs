//! The HTTP API against a real node on loopback: health and readiness,
//! documents (put, get, merge-patch, delete, paged listing), errors as JSON,
//! and bearer tokens — without or with a wrong token nothing changes.

use std::time::Duration;

use peat_mesh_service::auth::hash_token;
use peat_mesh_service::client::call;
use peat_mesh_service::{Layer, Service, Settings};

const HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

async fn start(dir: &std::path::Path, extra: &str, ready_needs_peer: bool) -> Service {
    let text = format!(
        "data_dir = {:?}\nformation = \"http-test\"\nlisten = \"127.0.0.1:0\"\n[http]\nbind = \"127.0.0.1:0\"\nready_needs_peer = {ready_needs_peer}\n{extra}",
        dir.display().to_string()
    );
    let env = Layer::from_env([("PEAT_SECRET".to_string(), HEX.to_string())]).unwrap();
    let s = Settings::resolve(Layer::from_toml(&text).unwrap().merge(env)).unwrap();
    Service::start(&s).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), "", false).await;
    let a = svc.http_addr();
    let r = call(a, "GET", "/api/v1/health", None, None).await.unwrap();
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = call(a, "GET", "/api/v1/ready", None, None).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(a, "GET", "/api/v1/node", None, None).await.unwrap();
    assert_eq!(
        r.json()["id"].as_str(),
        Some(svc.node().id().to_string().as_str())
    );

    let docs = "/api/v1/collections/tracks/documents";
    for i in 0..5 {
        let r = call(
            a,
            "PUT",
            &format!("{docs}/t{i}"),
            None,
            Some(&format!("{{\"n\":{i},\"s\":\"x\"}}")),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let r = call(a, "GET", &format!("{docs}/t3"), None, None)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"n": 3, "s": "x"}))
    );
    // RFC 7386: null removes a field.
    let r = call(
        a,
        "PATCH",
        &format!("{docs}/t3"),
        None,
        Some(r#"{"s":null,"k":true}"#),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 204);
    let r = call(a, "GET", &format!("{docs}/t3"), None, None)
        .await
        .unwrap();
    assert_eq!(r.json(), serde_json::json!({"n": 3, "k": true}));
    // Paging with a cursor.
    let r = call(a, "GET", &format!("{docs}?limit=2"), None, None)
        .await
        .unwrap();
    assert_eq!(r.json()["ids"], serde_json::json!(["t0", "t1"]));
    let next = r.json()["next"].as_str().unwrap().to_string();
    let r = call(
        a,
        "GET",
        &format!("{docs}?limit=2&after={next}"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.json()["ids"], serde_json::json!(["t2", "t3"]));
    // Collections with their live counts, a page at a time.
    let r = call(
        a,
        "PUT",
        "/api/v1/collections/alpha/documents/x",
        None,
        Some(r#"{"k":1}"#),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 204);
    let r = call(a, "GET", "/api/v1/collections?limit=1", None, None)
        .await
        .unwrap();
    assert_eq!(
        r.json(),
        serde_json::json!({"collections": [{"name": "alpha", "documents": 1}], "next": "alpha"})
    );
    let r = call(a, "GET", "/api/v1/collections?after=alpha", None, None)
        .await
        .unwrap();
    assert_eq!(
        r.json(),
        serde_json::json!({"collections": [{"name": "tracks", "documents": 5}], "next": null})
    );
    let r = call(a, "GET", "/api/v1/transfers", None, None)
        .await
        .unwrap();
    assert_eq!(r.json(), serde_json::json!({"transfers": []}));
    // Find by a top-level field (the value is JSON, URL-encoded).
    let find = "/api/v1/collections/tracks/find";
    let r = call(a, "GET", &format!("{find}?field=n&value=3"), None, None)
        .await
        .unwrap();
    assert_eq!(
        r.json(),
        serde_json::json!({"documents": [{"id": "t3", "value": {"n": 3, "k": true}}]})
    );
    let r = call(
        a,
        "GET",
        &format!("{find}?field=s&value=%22x%22&limit=2"),
        None,
        None,
    )
    .await
    .unwrap();
    let ids: Vec<_> = r.json()["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(ids, [serde_json::json!("t0"), serde_json::json!("t1")]);
    // Text that is not JSON is a string: value=x finds "x".
    let r = call(
        a,
        "GET",
        &format!("{find}?field=s&value=x&limit=1"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.json()["documents"][0]["id"], "t0");
    let r = call(a, "DELETE", &format!("{docs}/t0"), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    for (method, path, body, status, kind) in [
        ("GET", format!("{docs}/t0"), None, 404, "not_found"),
        ("DELETE", format!("{docs}/t0"), None, 404, "not_found"),
        (
            "PUT",
            format!("{docs}/bad"),
            Some("not json"),
            400,
            "invalid_argument",
        ),
        (
            "PUT",
            format!("{docs}/arr"),
            Some("[1,2]"),
            400,
            "invalid_argument",
        ),
        (
            "GET",
            format!("{docs}?limit=0"),
            None,
            400,
            "invalid_argument",
        ),
        (
            "GET",
            format!("{docs}?limit=5000"),
            None,
            400,
            "invalid_argument",
        ),
        ("GET", "/api/v1/nothing".to_string(), None, 404, "not_found"),
        (
            "GET",
            format!("{docs}?limit=many"),
            None,
            400,
            "invalid_argument",
        ),
        (
            "GET",
            "/api/v1/collections/tracks/find?field=n".to_string(),
            None,
            400,
            "invalid_argument",
        ),
    ] {
        let r = call(a, method, &path, None, body).await.unwrap();
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        assert_eq!(
            r.json()["error"]["kind"].as_str(),
            Some(kind),
            "{method} {path}: {}",
            r.body
        );
    }
    let r = call(a, "GET", &format!("{docs}?limit=10"), None, None)
        .await
        .unwrap();
    assert_eq!(
        r.json()["ids"],
        serde_json::json!(["t1", "t2", "t3", "t4"]),
        "{}",
        r.body
    );
    assert_eq!(r.json()["next"], serde_json::Value::Null);
    svc.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_every_route_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = format!(
        "[[http.tokens]]\nname = \"reader\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n[[http.tokens]]\nname = \"writer\"\nsha256 = \"{}\"\nscopes = [\"read\", \"write\"]\n",
        hash_token("read-token-1"),
        hash_token("write-token-2")
    );
    let svc = start(dir.path(), &tokens, true).await;
    let a = svc.http_addr();
    let doc = "/api/v1/collections/c/documents/d";
    // Probes need no token; not ready until a peer is admitted.
    assert_eq!(
        call(a, "GET", "/api/v1/health", None, None)
            .await
            .unwrap()
            .status,
        200
    );
    let r = call(a, "GET", "/api/v1/ready", None, None).await.unwrap();
    assert_eq!((r.status, r.json()["ready"].as_bool()), (503, Some(false)));
    for token in [None, Some("wrong"), Some("")] {
        let r = call(a, "PUT", doc, token, Some("{\"v\":1}")).await.unwrap();
        assert_eq!(r.status, 401, "{token:?}: {}", r.body);
        assert_eq!(
            call(a, "GET", "/api/v1/node", token, None)
                .await
                .unwrap()
                .status,
            401
        );
    }
    let r = call(a, "PUT", doc, Some("read-token-1"), Some("{\"v\":1}"))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["kind"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(
        svc.node().document_count().unwrap(),
        0,
        "a refused write changed something"
    );
    let r = call(a, "PUT", doc, Some("write-token-2"), Some("{\"v\":1}"))
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    let r = call(a, "GET", doc, Some("read-token-1"), None)
        .await
        .unwrap();
    assert_eq!(r.json(), serde_json::json!({"v": 1}));
    let r = call(a, "DELETE", doc, Some("read-token-1"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 403);

    // A peer is admitted: ready.
    let other = tempfile::tempdir().unwrap();
    let peer = start(other.path(), "", false).await;
    peer.node().connect(&svc.node().peer_addr()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = call(a, "GET", "/api/v1/ready", None, None).await.unwrap();
        if r.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = call(a, "GET", "/api/v1/peers", Some("read-token-1"), None)
        .await
        .unwrap();
    assert_eq!(
        r.json()["peers"][0]["state"].as_str(),
        Some("connected"),
        "{}",
        r.body
    );
    peer.shutdown(Duration::from_secs(5)).await.unwrap();
    svc.shutdown(Duration::from_secs(5)).await.unwrap();
}

//! Blobs over HTTP against a real node on loopback: upload, list, status,
//! whole and ranged downloads (first-last, open-ended, suffix; a range
//! beyond the blob gets 416, one the RFC lets a server ignore gets the
//! whole blob), and fetching a blob from a peer over the mesh.

use std::time::Duration;

use peat_mesh::{Formation, Node, NodeConfig};
use peat_mesh_service::client::request;
use peat_mesh_service::{Layer, Service, Settings};

const HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

async fn start(dir: &std::path::Path) -> Service {
    let text = format!(
        "data_dir = {:?}\nformation = \"blob-test\"\nlisten = \"127.0.0.1:0\"\n[http]\nbind = \"127.0.0.1:0\"\n",
        dir.display().to_string()
    );
    let env = Layer::from_env([("PEAT_SECRET".to_string(), HEX.to_string())]).unwrap();
    let s = Settings::resolve(Layer::from_toml(&text).unwrap().merge(env)).unwrap();
    Service::start(&s).await.unwrap()
}

/// 3 MiB + 17 bytes of a pattern (crosses download pieces).
fn content() -> Vec<u8> {
    (0..(3 << 20) + 17u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path()).await;
    let a = svc.http_addr();
    let data = content();
    let size = data.len() as u64;

    let r = request(a, "POST", "/api/v1/blobs", None, &[], &data)
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let hash = r.json()["hash"].as_str().unwrap().to_string();
    assert_eq!(r.json()["size"], size);
    assert_eq!(
        hash,
        svc.node().blobs().list().unwrap()[0].hash.to_hex(),
        "stored under its hash"
    );
    let r = request(a, "GET", "/api/v1/blobs", None, &[], b"")
        .await
        .unwrap();
    assert_eq!(r.json()["blobs"][0]["hash"], hash.as_str());
    let path = format!("/api/v1/blobs/{hash}");
    let r = request(a, "GET", &format!("{path}/status"), None, &[], b"")
        .await
        .unwrap();
    assert_eq!(
        r.json(),
        serde_json::json!({"hash": hash, "state": "complete", "size": size, "present": size})
    );

    // whole
    let r = request(a, "GET", &path, None, &[], b"").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.bytes, data);
    // ranges
    let s = size as usize;
    for (range, first, last) in [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-1048576", 1000, 1_048_576),
        ("bytes=2097150-", 2_097_150, s - 1),
        ("bytes=-17", s - 17, s - 1),
        ("bytes=5-99999999", 5, s - 1),
    ] {
        let r = request(a, "GET", &path, None, &[("Range", range)], b"")
            .await
            .unwrap();
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes {first}-{last}/{size}"),
            "{range}"
        );
        assert_eq!(r.bytes, &data[first..=last], "{range}");
    }
    for range in ["bytes=99999999-", "bytes=-0"] {
        let r = request(a, "GET", &path, None, &[("Range", range)], b"")
            .await
            .unwrap();
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes */{size}")
        );
        assert_eq!(r.json()["error"]["kind"], "range_not_satisfiable");
    }
    // ranges the RFC lets a server ignore: the whole blob
    for range in ["bytes=7-3", "bytes=0-1,5-6", "lines=1-2", "null"] {
        let r = request(a, "GET", &path, None, &[("Range", range)], b"")
            .await
            .unwrap();
        assert_eq!((r.status, r.bytes.len()), (200, s), "{range}");
    }
    // unknown and malformed hashes
    let missing = "ab".repeat(32);
    let r = request(
        a,
        "GET",
        &format!("/api/v1/blobs/{missing}"),
        None,
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404);
    let r = request(
        a,
        "GET",
        &format!("/api/v1/blobs/{missing}/status"),
        None,
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.json()["state"], "missing");
    let r = request(a, "GET", "/api/v1/blobs/zz/status", None, &[], b"")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["kind"].clone()),
        (400, "invalid_argument".into())
    );

    // fetch from the mesh: a peer has a blob this node lacks
    let peer_dir = tempfile::tempdir().unwrap();
    let formation = Formation::try_new("blob-test".to_string(), [0x5a; 32]).unwrap();
    let peer = Node::open(
        NodeConfig::new(peer_dir.path(), formation)
            .listen("127.0.0.1:0".parse().unwrap())
            .mdns(false),
    )
    .await
    .unwrap();
    let theirs: Vec<u8> = data.iter().rev().copied().collect();
    let info = peer.blobs().add_bytes(theirs.clone()).await.unwrap();
    peer.connect(&svc.node().peer_addr()).await.unwrap();
    let their_path = format!("/api/v1/blobs/{}", info.hash.to_hex());
    let r = request(a, "POST", &format!("{their_path}/fetch"), None, &[], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    // the fetch the request started is the node's running transfer (or done)
    let done = svc
        .node()
        .blobs()
        .fetch(info.hash, Default::default())
        .wait()
        .await
        .unwrap();
    assert_eq!(done.size, size);
    let r = request(a, "GET", &format!("{their_path}/status"), None, &[], b"")
        .await
        .unwrap();
    assert_eq!(
        (r.json()["state"].as_str(), r.json()["present"].as_u64()),
        (Some("complete"), Some(size))
    );
    let r = request(a, "GET", &their_path, None, &[], b"")
        .await
        .unwrap();
    assert_eq!(r.bytes, theirs);
    peer.close(Duration::from_secs(5)).await.unwrap();
    svc.shutdown(Duration::from_secs(5)).await.unwrap();
}

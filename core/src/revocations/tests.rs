//! A captured member on the revocations stream: forged, malformed, oversized
//! and flooding input is refused and counted, never kept or passed on, and
//! the node stays up; a member that sends a valid revocation has it kept.

use std::time::Duration;

use tempfile::TempDir;

use crate::clock::unix_ms;
use crate::node::test_support::raw_member;
use crate::security::{Formation, Gate};
use crate::transport::router::open_stream;
use crate::trust::{
    AdmissionMode, Authority, Grant, Permissions, Revocation, RevocationRecord, Tier, TrustConfig,
};
use crate::wire::{encode, read_frame_max, Frame};
use crate::{Node, NodeConfig, NodeId};

fn grant(subject: NodeId, permissions: Permissions) -> Grant {
    Grant {
        subject,
        tier: Tier::Tactical,
        permissions,
        not_before_ms: unix_ms() - 1000,
        valid_for: Duration::from_secs(3600),
    }
}

fn alpha() -> Formation {
    Formation::new("alpha", [3; 32])
}

async fn open_member(auth: &Authority) -> (Node, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = iroh::SecretKey::generate();
    let cert = auth
        .issue(&grant(NodeId(key.public()), Permissions::RELAY))
        .unwrap();
    let cfg = NodeConfig::new(dir.path(), alpha())
        .listen("127.0.0.1:0".parse().unwrap())
        .secret_key(key.to_bytes())
        .trust(
            TrustConfig::new(auth.genesis().clone(), AdmissionMode::Certificate).chain(vec![cert]),
        );
    (Node::open(cfg).await.unwrap(), dir)
}

/// A raw member's gate and key.
fn raw_gate(auth: &Authority) -> (Gate, iroh::SecretKey, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = iroh::SecretKey::generate();
    let me = NodeId(key.public());
    let cert = auth.issue(&grant(me, Permissions::RELAY)).unwrap();
    let cfg =
        TrustConfig::new(auth.genesis().clone(), AdmissionMode::Certificate).chain(vec![cert]);
    (
        Gate::open(&key, &alpha(), Some(&cfg), dir.path()).unwrap(),
        key,
        dir,
    )
}

async fn send(s: &mut iroh::endpoint::SendStream, f: &Frame) {
    s.write_all(&encode(f).unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_revocations_are_refused_and_not_passed_on() {
    let auth = Authority::generate("alpha").unwrap();
    let (a, _da) = open_member(&auth).await;
    let (b, _db) = open_member(&auth).await;
    b.connect(&a.peer_addr()).await.unwrap();
    let (gate, key, _dg) = raw_gate(&auth);
    let (_ep, conn) = raw_member(&a, &alpha(), &gate, key.clone()).await;
    let (mut tx, mut rx) = open_stream(&conn, "revocations", &[1]).await.unwrap();
    // the node lists what it holds first: nothing
    let (first, _) = read_frame_max(&mut rx, 1 << 16).await.unwrap().unwrap();
    assert_eq!(
        first,
        Frame::RevocationIds {
            ids: vec![],
            last: true
        }
    );
    send(
        &mut tx,
        &Frame::RevocationIds {
            ids: vec![],
            last: true,
        },
    )
    .await;
    // b's certificate, revoked by this plain member (no admin right): forged
    let b_cert = b.certificate_chain()[0].clone();
    let forged = RevocationRecord {
        revocation: Revocation::sign(&key, &b_cert, unix_ms()),
        revoker_chain: gate.chain(),
    };
    // (under the per-connection bound of refused records)
    for _ in 0..60 {
        send(
            &mut tx,
            &Frame::RevocationRecord {
                record: forged.to_bytes(),
            },
        )
        .await;
    }
    // signed by a stranger claiming to be the authority; and garbage
    let stranger = Authority::generate("alpha").unwrap();
    let fake_root = RevocationRecord {
        revocation: stranger.revoke(&b_cert, unix_ms()),
        revoker_chain: Vec::new(),
    };
    send(
        &mut tx,
        &Frame::RevocationRecord {
            record: fake_root.to_bytes(),
        },
    )
    .await;
    send(
        &mut tx,
        &Frame::RevocationRecord {
            record: vec![0xff; 100],
        },
    )
    .await;
    // then a real one (the authority's, carried by this member), which counts
    let c_key = iroh::SecretKey::generate();
    let c_cert = auth
        .issue(&grant(NodeId(c_key.public()), Permissions::NONE))
        .unwrap();
    let real = RevocationRecord {
        revocation: auth.revoke(&c_cert, unix_ms()),
        revoker_chain: Vec::new(),
    };
    let events = b.subscribe_peers();
    send(
        &mut tx,
        &Frame::RevocationRecord {
            record: real.to_bytes(),
        },
    )
    .await;
    // b hears of the real one only (passed on by a), and nothing before it
    loop {
        match events.next_timeout(Duration::from_secs(20)).await.unwrap() {
            Some(crate::Event::Item(crate::PeerEvent::Revoked { peer })) => {
                assert_eq!(peer, NodeId(c_key.public()));
                break;
            }
            Some(_) => {}
            None => panic!("b never heard of the real revocation"),
        }
    }
    assert_eq!(a.revocation_count(), 1);
    assert_eq!(b.revocation_count(), 1);
    assert_eq!(a.refused_revocations(), 62);
    assert!(
        a.peer_certificate_chain(&b.id()).is_some(),
        "b still connected"
    );
    // the node also passes the real one back? no: not to the peer it came from
    // (the member's stream holds nothing more than the first list)
    let more =
        tokio::time::timeout(Duration::from_millis(300), read_frame_max(&mut rx, 1 << 16)).await;
    assert!(more.is_err(), "nothing sent back: {more:?}");
    a.close(Duration::from_secs(5)).await.unwrap();
    b.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_end_the_connection_and_the_node_stays_up() {
    let auth = Authority::generate("alpha").unwrap();
    let (a, _da) = open_member(&auth).await;
    let (gate, key, _dg) = raw_gate(&auth);
    let cases: Vec<Vec<Frame>> = vec![
        // a page beyond the bound
        vec![Frame::RevocationIds {
            ids: vec![[1; 32]; super::IDS_PER_FRAME + 1],
            last: false,
        }],
        // ids after the list ended
        vec![
            Frame::RevocationIds {
                ids: vec![],
                last: true,
            },
            Frame::RevocationIds {
                ids: vec![[2; 32]],
                last: true,
            },
        ],
        // another protocol's frame
        vec![Frame::Ping],
    ];
    for frames in cases {
        let (_ep, conn) = raw_member(&a, &alpha(), &gate, key.clone()).await;
        let (mut tx, _rx) = open_stream(&conn, "revocations", &[1]).await.unwrap();
        for f in &frames {
            send(&mut tx, f).await;
        }
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.conn().closed()).await;
        assert!(closed.is_ok(), "{frames:?} did not end the connection");
    }
    // and a second revocations stream on one connection is refused
    let (_ep, conn) = raw_member(&a, &alpha(), &gate, key.clone()).await;
    let (_tx1, mut rx1) = open_stream(&conn, "revocations", &[1]).await.unwrap();
    // the node answers on the first: it is the connection's stream
    assert!(read_frame_max(&mut rx1, 1 << 16).await.unwrap().is_some());
    let (mut tx2, mut rx2) = open_stream(&conn, "revocations", &[1]).await.unwrap();
    let _ = tx2.write_all(b"x").await;
    let second = read_frame_max(&mut rx2, 1024).await;
    assert!(second.is_err(), "{second:?}");
    // the node still serves its documents
    a.put("n", "1", &serde_json::json!({"ok": true}))
        .await
        .unwrap();
    assert!(a.get("n", "1").unwrap().is_some());
    a.close(Duration::from_secs(5)).await.unwrap();
}

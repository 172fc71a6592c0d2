//! A captured peer against a node that rejects unsigned changes: forged,
//! unsigned and malformed signatures from a raw peer speaking sync v3 over a
//! real connection. Nothing forged or unsigned is applied, valid changes from
//! the same peer are, and malformed signature frames end the session with a
//! clear reason.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use iroh::endpoint::SendStream;
use tempfile::TempDir;

use super::Authorship;
use crate::node::test_support::raw_connection_offering;
use crate::policy::{CollectionPolicy, Policies, SignaturePolicy};
use crate::storage::{heads_to_wire, DocKey};
use crate::wire::{encode, ChangeSig, Frame};
use crate::{Event, Formation, Node, NodeConfig, PeerEvent};

const WAIT: Duration = Duration::from_secs(20);

async fn rejecting_node(f: &Formation) -> (Node, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policies = Policies::default()
        .with(
            "orders",
            CollectionPolicy::default().signatures(SignaturePolicy::Reject),
        )
        .unwrap();
    let cfg = NodeConfig::new(dir.path(), f.clone())
        .listen("127.0.0.1:0".parse().unwrap())
        .policies(policies);
    (Node::open(cfg).await.unwrap(), dir)
}

/// A raw v3 peer's two sync lanes, admitted; returns its endpoint and the
/// main lane.
async fn raw_v3(node: &Node, f: &Formation, key: iroh::SecretKey) -> (iroh::Endpoint, SendStream) {
    let (ep, conn) = raw_connection_offering(node, f, key, &[3]).await;
    let mut lanes = Vec::new();
    for lane in 0..2u8 {
        let (mut send, recv) = crate::transport::router::open_stream(&conn, "sync", &[3])
            .await
            .unwrap();
        send.write_all(&[lane]).await.unwrap();
        lanes.push((send, recv));
    }
    let (main, _) = lanes.swap_remove(0);
    // The bulk lane stays open with the connection.
    std::mem::forget(lanes);
    (ep, main)
}

/// One change on a fresh document, and the frames that carry it.
fn doc(value: &str) -> Automerge {
    let mut d = Automerge::new();
    let mut tx = d.transaction();
    tx.put(ROOT, "v", value).unwrap();
    tx.commit();
    d
}

fn changes(id: &str, d: &Automerge) -> Frame {
    Frame::Changes {
        collection: "orders".into(),
        id: id.into(),
        changes: d
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect(),
        heads: heads_to_wire(&d.get_heads()),
    }
}

fn sigs(id: &str, author: [u8; 32], sig: Vec<u8>, index: u16) -> Frame {
    Frame::Signatures {
        collection: "orders".into(),
        id: id.into(),
        authors: vec![author],
        entries: vec![Some(ChangeSig { author: index, sig })],
    }
}

fn hash_of(d: &Automerge) -> [u8; 32] {
    d.get_changes(&[])[0].hash().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unsigned_changes_are_refused_and_valid_ones_applied() {
    let f = Formation::new("signed", [9; 32]);
    let (node, _dir) = rejecting_node(&f).await;
    let attacker = iroh::SecretKey::generate();
    let victim = iroh::SecretKey::generate();
    let signer = Authorship::new(&attacker, f.id());
    let (ep, mut send) = raw_v3(&node, &f, attacker.clone()).await;

    // Signed by the attacker, claiming to be the victim.
    let forged = doc("forged");
    let row = signer.sign(&DocKey::new("orders", "forged").unwrap(), &hash_of(&forged));
    let forged_frames = [
        sigs("forged", *victim.public().as_bytes(), row[32..].to_vec(), 0),
        changes("forged", &forged),
    ];
    // A signature made for another document.
    let moved = doc("moved");
    let row = signer.sign(
        &DocKey::new("orders", "elsewhere").unwrap(),
        &hash_of(&moved),
    );
    let moved_frames = [
        sigs(
            "moved",
            *attacker.public().as_bytes(),
            row[32..].to_vec(),
            0,
        ),
        changes("moved", &moved),
    ];
    let unsigned = doc("unsigned");
    let good = doc("good");
    let row = signer.sign(&DocKey::new("orders", "good").unwrap(), &hash_of(&good));
    let good_frames = [
        sigs("good", *attacker.public().as_bytes(), row[32..].to_vec(), 0),
        changes("good", &good),
    ];
    let mut bytes = Vec::new();
    for fr in forged_frames
        .iter()
        .chain(&moved_frames)
        .chain(std::iter::once(&changes("unsigned", &unsigned)))
        .chain(&good_frames)
    {
        bytes.extend(encode(fr).unwrap());
    }
    send.write_all(&bytes).await.unwrap();

    let deadline = tokio::time::Instant::now() + WAIT;
    while node.get("orders", "good").unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the valid change never applied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for id in ["forged", "moved", "unsigned"] {
        assert_eq!(node.get("orders", id).unwrap(), None, "{id} was applied");
    }
    let st = node.signature_stats();
    assert_eq!(
        (st.verified, st.forged, st.unsigned, st.rejected),
        (1, 2, 1, 3)
    );
    let authors = node.authors("orders", "good").await.unwrap().unwrap();
    assert_eq!(authors.len(), 1);
    assert_eq!(
        authors[0].author.unwrap().as_bytes(),
        attacker.public().as_bytes()
    );
    assert!(authors[0].valid);
    assert_eq!(node.authors("orders", "forged").await.unwrap(), None);
    ep.close().await;
    node.close(Duration::from_secs(5)).await.unwrap();
}

/// Sends `frames` from a raw v3 peer; returns the reason the node gave when
/// it dropped the session.
async fn dropped_for(node: &Node, f: &Formation, frames: &[Frame]) -> String {
    let events = node.subscribe_peers();
    let (ep, mut send) = raw_v3(node, f, iroh::SecretKey::generate()).await;
    let mut bytes = Vec::new();
    for fr in frames {
        bytes.extend(encode(fr).unwrap());
    }
    send.write_all(&bytes).await.unwrap();
    let reason = loop {
        match events.next_timeout(WAIT).await {
            Ok(Some(Event::Item(PeerEvent::Disconnected { reason, .. }))) => break reason,
            Ok(Some(_)) => {}
            other => panic!("the node kept a session that sent {frames:?}: {other:?}"),
        }
    };
    ep.close().await;
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_signature_frames_end_the_session_with_a_reason() {
    let f = Formation::new("signed", [9; 32]);
    let (node, _dir) = rejecting_node(&f).await;
    let d = doc("x");
    let a = [5u8; 32];
    let cases: Vec<(Vec<Frame>, &str)> = vec![
        (
            vec![sigs("x", a, vec![1; 64], 3), changes("x", &d)],
            "not in the frame",
        ),
        (
            vec![sigs("x", a, vec![1; 10], 0), changes("x", &d)],
            "not 64",
        ),
        (
            vec![sigs("x", a, vec![1; 64], 0), changes("y", &d)],
            "followed by",
        ),
        (
            vec![sigs("x", a, vec![1; 64], 0), sigs("x", a, vec![1; 64], 0)],
            "two Signatures",
        ),
        (
            vec![
                sigs("x", a, vec![1; 64], 0),
                Frame::Want { prefixes: vec![] },
            ],
            "after the Signatures",
        ),
    ];
    for (frames, why) in cases {
        let reason = dropped_for(&node, &f, &frames).await;
        assert!(reason.contains(why), "{why:?} not in {reason:?}");
    }
    assert_eq!(node.get("orders", "x").unwrap(), None);
    node.close(Duration::from_secs(5)).await.unwrap();
}

//! Admission with membership certificates between live nodes, and
//! revocations that spread and bite: a revoked node is cut off by every node
//! that learns of it and refused on reconnect, and a node that was offline
//! learns the revocation from the first peer it meets.

mod common;

use std::time::{Duration, Instant};

use common::{config, connect_both, WAIT};
use peat_mesh::trust::{
    AdmissionMode, Authority, Grant, MembershipStatus, Permissions, RevocationRecord, Tier,
    TrustConfig,
};
use peat_mesh::{ErrorKind, Event, Formation, Node, NodeId, PeerEvent, Subscription};
use tempfile::TempDir;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

struct Member {
    node: Node,
    dir: TempDir,
    key: [u8; 32],
}

fn key_bytes() -> [u8; 32] {
    Formation::generate_secret()
}

fn public(key: &[u8; 32]) -> NodeId {
    NodeId::from_bytes(iroh::SecretKey::from_bytes(key).public().as_bytes()).unwrap()
}

fn grant(subject: NodeId, tier: Tier, permissions: Permissions) -> Grant {
    Grant {
        subject,
        tier,
        permissions,
        not_before_ms: now_ms() - 1000,
        valid_for: Duration::from_secs(3600),
    }
}

/// The formation secret most nodes of these tests hold.
const SECRET: [u8; 32] = [7; 32];

/// A node of formation `alpha` with a chain from `auth`.
async fn member(auth: &Authority, mode: AdmissionMode) -> Member {
    member_with(auth, mode, SECRET).await
}

/// [`member`] holding formation secret `secret`.
async fn member_with(auth: &Authority, mode: AdmissionMode, secret: [u8; 32]) -> Member {
    let dir = tempfile::tempdir().unwrap();
    let key = key_bytes();
    let cert = auth
        .issue(&grant(public(&key), Tier::Tactical, Permissions::RELAY))
        .unwrap();
    let node = open_member_with(dir.path(), key, auth, mode, vec![cert], secret).await;
    Member { node, dir, key }
}

async fn open_member(
    dir: &std::path::Path,
    key: [u8; 32],
    auth: &Authority,
    mode: AdmissionMode,
    chain: Vec<peat_mesh::trust::Certificate>,
) -> Node {
    open_member_with(dir, key, auth, mode, chain, SECRET).await
}

async fn open_member_with(
    dir: &std::path::Path,
    key: [u8; 32],
    auth: &Authority,
    mode: AdmissionMode,
    chain: Vec<peat_mesh::trust::Certificate>,
    secret: [u8; 32],
) -> Node {
    let cfg = config(dir, Formation::new("alpha", secret))
        .secret_key(key)
        .trust(TrustConfig::new(auth.genesis().clone(), mode).chain(chain));
    Node::open(cfg).await.unwrap()
}

/// Waits for the first event `f` picks.
async fn wait_for<T>(
    events: &Subscription<PeerEvent>,
    mut f: impl FnMut(&PeerEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.next_timeout(left).await.unwrap() {
            Some(Event::Item(e)) => {
                if let Some(t) = f(&e) {
                    return t;
                }
            }
            Some(_) => {}
            None => panic!("the event never came"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_admit_members_and_refuse_others_with_the_reason() {
    let auth = Authority::generate("alpha").unwrap();
    let a = member(&auth, AdmissionMode::Certificate).await;
    // certificate mode does not check the secret
    let b = member_with(&auth, AdmissionMode::Certificate, key_bytes()).await;
    connect_both(&a.node, &b.node).await;
    // each side holds the other's chain, as checked at admission
    let chain = a.node.peer_certificate_chain(&b.node.id()).unwrap();
    assert_eq!(chain[0].subject().unwrap(), b.node.id());
    assert_eq!(chain[0].tier(), Some(Tier::Tactical));
    assert!(b.node.peer_certificate_chain(&a.node.id()).is_some());
    assert!(matches!(a.node.membership(), MembershipStatus::Valid(v) if v.subject == a.node.id()));
    // documents flow
    a.node
        .put("notes", "n1", &serde_json::json!({"x": 1}))
        .await
        .unwrap();
    let b2 = b.node.clone();
    assert!(common::eventually(WAIT, || b2.get("notes", "n1").unwrap().is_some()).await);

    // a node of the formation with the secret but no certificate: refused, and
    // both sides say why
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = Node::open(config(plain_dir.path(), Formation::new("alpha", [7; 32])))
        .await
        .unwrap();
    let events = a.node.subscribe_peers();
    let err = plain.connect(&a.node.peer_addr()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AdmissionRefused);
    assert!(err.to_string().contains("certificate required"), "{err}");
    let reason = wait_for(&events, |e| match e {
        PeerEvent::AdmissionRefused { peer, reason } if *peer == plain.id() => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("certificate required"), "{reason}");

    // a member of another authority (same formation id): unknown issuer
    let stranger_auth = Authority::generate("alpha").unwrap();
    let s = member(&stranger_auth, AdmissionMode::Certificate).await;
    let err = s.node.connect(&a.node.peer_addr()).await.unwrap_err();
    assert!(err.to_string().contains("issued by a key"), "{err}");
    for n in [a.node, b.node, plain, s.node] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_mode_needs_the_secret_and_a_certificate() {
    let auth = Authority::generate("alpha").unwrap();
    let a = member(&auth, AdmissionMode::Both).await;
    let b = member(&auth, AdmissionMode::Both).await;
    connect_both(&a.node, &b.node).await;
    // a certificate without the secret
    let c = member_with(&auth, AdmissionMode::Certificate, key_bytes()).await;
    let err = c.node.connect(&a.node.peer_addr()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AdmissionRefused, "{err}");
    for n in [a.node, b.node, c.node] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_cuts_off_the_node_everywhere_and_reaches_an_offline_node() {
    common::init_tracing();
    let auth = Authority::generate("alpha").unwrap();
    let mode = AdmissionMode::Certificate;
    let (a, b, c, d) = (
        member(&auth, mode).await,
        member(&auth, mode).await,
        member(&auth, mode).await,
        member(&auth, mode).await,
    );
    // e knows a, then goes offline before the revocation
    let e = member(&auth, mode).await;
    connect_both(&e.node, &a.node).await;
    let e_dir = e.dir;
    let e_key = e.key;
    let e_chain = e.node.certificate_chain();
    e.node.close(Duration::from_secs(5)).await.unwrap();

    // the line a - b - c - d
    connect_both(&b.node, &a.node).await;
    connect_both(&c.node, &b.node).await;
    connect_both(&d.node, &c.node).await;
    let watch: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|m| m.node.subscribe_peers())
        .collect();
    let c_events = c.node.subscribe_peers();
    let d_events = d.node.subscribe_peers();

    // the authority (offline) revokes d; an operator hands it to a
    let d_cert = d.node.certificate_chain()[0].clone();
    let record = RevocationRecord {
        revocation: auth.revoke(&d_cert, now_ms()),
        revoker_chain: Vec::new(),
    };
    let started = Instant::now();
    assert!(a.node.add_revocation(record.clone()).await.unwrap());
    assert!(
        !a.node.add_revocation(record).await.unwrap(),
        "known already"
    );
    // every node of the line learns it (event), and c cuts d off
    for events in &watch {
        wait_for(events, |e| match e {
            PeerEvent::Revoked { peer } if *peer == d.node.id() => Some(()),
            _ => None,
        })
        .await;
    }
    let reason = wait_for(&c_events, |e| match e {
        PeerEvent::Disconnected { peer, reason } if *peer == d.node.id() => Some(reason.clone()),
        _ => None,
    })
    .await;
    let took = started.elapsed();
    assert!(reason.contains("revoked"), "{reason}");
    println!("revocation reached the far end of a 3-hop line and cut the node off in {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    for m in [&a, &b, &c] {
        assert_eq!(m.node.revocation_count(), 1);
        assert!(m.node.peer_certificate_chain(&d.node.id()).is_none());
    }

    // d cannot come back, through anyone (once d has seen the close: until
    // then its connection to c counts as live and connect returns at once)
    wait_for(&d_events, |e| match e {
        PeerEvent::Disconnected { peer, .. } if *peer == c.node.id() => Some(()),
        _ => None,
    })
    .await;
    for m in [&a, &b, &c] {
        let err = d.node.connect(&m.node.peer_addr()).await.unwrap_err();
        assert!(err.to_string().contains("revoked"), "{err}");
    }

    // e comes back (same data dir) and meets b: it learns the revocation and
    // refuses d from then on
    let e = Member {
        node: open_member(e_dir.path(), e_key, &auth, mode, Vec::new()).await,
        dir: e_dir,
        key: e_key,
    };
    assert_eq!(e.node.certificate_chain(), e_chain, "its stored chain");
    let e_events = e.node.subscribe_peers();
    connect_both(&e.node, &b.node).await;
    wait_for(&e_events, |ev| match ev {
        PeerEvent::Revoked { peer } if *peer == d.node.id() => Some(()),
        _ => None,
    })
    .await;
    let err = d.node.connect(&e.node.peer_addr()).await.unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");

    // a restart keeps what was learnt
    let a_dir = a.dir;
    a.node.close(Duration::from_secs(5)).await.unwrap();
    let a2 = open_member(a_dir.path(), a.key, &auth, mode, Vec::new()).await;
    assert_eq!(a2.revocation_count(), 1);
    let err = d.node.connect(&a2.peer_addr()).await.unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    for n in [a2, b.node, c.node, d.node, e.node] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_revoker_with_the_right_may_revoke() {
    let auth = Authority::generate("alpha").unwrap();
    let mode = AdmissionMode::Certificate;
    let (a, b) = (member(&auth, mode).await, member(&auth, mode).await);
    connect_both(&a.node, &b.node).await;
    // a plain member (relay only) tries to revoke its peer: refused locally
    let b_cert = b.node.certificate_chain()[0].clone();
    let err = a.node.revoke(&b_cert).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("may not revoke"), "{err}");
    assert!(a.node.peer_certificate_chain(&b.node.id()).is_some());
    // an admin may: the certificate's holder is cut off
    let admin_key = key_bytes();
    let admin_cert = auth
        .issue(&grant(
            public(&admin_key),
            Tier::Regional,
            Permissions::ADMIN,
        ))
        .unwrap();
    let admin_dir = tempfile::tempdir().unwrap();
    let admin = open_member(admin_dir.path(), admin_key, &auth, mode, vec![admin_cert]).await;
    connect_both(&admin, &a.node).await;
    let events = a.node.subscribe_peers();
    let b_events = b.node.subscribe_peers();
    assert!(admin.revoke(&b_cert).await.unwrap());
    wait_for(&events, |e| match e {
        PeerEvent::Disconnected { peer, .. } if *peer == b.node.id() => Some(()),
        _ => None,
    })
    .await;
    wait_for(&b_events, |e| match e {
        PeerEvent::Disconnected { peer, .. } if *peer == a.node.id() => Some(()),
        _ => None,
    })
    .await;
    let err = b.node.connect(&a.node.peer_addr()).await.unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    for n in [a.node, b.node, admin] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_keeps_the_data_and_the_old_certificate_is_revoked() {
    let auth = Authority::generate("alpha").unwrap();
    let mode = AdmissionMode::Certificate;
    // a node whose key lives in its data dir (identity.key)
    let dir = tempfile::tempdir().unwrap();
    let open_a = || {
        let cfg = config(dir.path(), Formation::new("alpha", SECRET))
            .trust(TrustConfig::new(auth.genesis().clone(), mode));
        Node::open(cfg)
    };
    let a = open_a().await.unwrap();
    let old_id = a.id();
    let old_cert = auth
        .issue(&grant(old_id, Tier::Tactical, Permissions::RELAY))
        .unwrap();
    a.set_certificate_chain(vec![old_cert.clone()]).unwrap();
    let b = member(&auth, mode).await;
    a.put("notes", "n1", &serde_json::json!({"kept": true}))
        .await
        .unwrap();
    a.close(Duration::from_secs(5)).await.unwrap();
    drop(a);
    // rotate while closed; the stored chain certified the old key
    let new_id = peat_mesh::security::rotate_identity(dir.path()).unwrap();
    assert_ne!(new_id, old_id);
    let a = open_a().await.unwrap();
    assert_eq!(a.id(), new_id);
    assert_eq!(a.membership(), MembershipStatus::NoCertificate);
    assert_eq!(
        a.get("notes", "n1").unwrap().unwrap()["kept"],
        true,
        "data kept"
    );
    // the authority certifies the new key and revokes the old certificate
    let cert = auth
        .issue(&grant(new_id, Tier::Tactical, Permissions::RELAY))
        .unwrap();
    a.set_certificate_chain(vec![cert]).unwrap();
    b.node
        .add_revocation(RevocationRecord {
            revocation: auth.revoke(&old_cert, now_ms()),
            revoker_chain: Vec::new(),
        })
        .await
        .unwrap();
    connect_both(&a, &b.node).await;
    let b2 = b.node.clone();
    assert!(common::eventually(WAIT, || b2.get("notes", "n1").unwrap().is_some()).await);
    for n in [a, b.node] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

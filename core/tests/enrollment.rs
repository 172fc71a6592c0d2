//! Enrollment over the mesh: a device with a one-time token asks an enroller
//! during admission and leaves with a certificate chain; tokens are single
//! use (across restarts too), expire, and go to their enroller only; an
//! enroller grants only what it may; revoking an enroller cuts off the
//! devices it enrolled.

mod common;

use std::time::{Duration, Instant};

use common::{config, connect_both, WAIT};
use peat_mesh::trust::{
    AdmissionMode, Authority, Certificate, EnrollmentToken, Grant, MembershipStatus, Permissions,
    RevocationRecord, Tier, TrustConfig,
};
use peat_mesh::{ErrorKind, Event, Formation, Node, NodeId, PeerEvent};
use tempfile::TempDir;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn public(key: &[u8; 32]) -> NodeId {
    NodeId::from_bytes(iroh::SecretKey::from_bytes(key).public().as_bytes()).unwrap()
}

async fn open(
    dir: &std::path::Path,
    key: [u8; 32],
    auth: &Authority,
    chain: Vec<Certificate>,
) -> Node {
    let cfg = config(dir, Formation::new("alpha", [7; 32]))
        .secret_key(key)
        .trust(TrustConfig::new(auth.genesis().clone(), AdmissionMode::Certificate).chain(chain));
    Node::open(cfg).await.unwrap()
}

struct N {
    node: Node,
    dir: TempDir,
    key: [u8; 32],
}

/// A node with a certificate from the authority (`None`: without one).
async fn member(auth: &Authority, grant: Option<(Tier, Permissions)>) -> N {
    let dir = tempfile::tempdir().unwrap();
    let key = Formation::generate_secret();
    let chain = match grant {
        Some((tier, permissions)) => vec![auth
            .issue(&Grant {
                subject: public(&key),
                tier,
                permissions,
                not_before_ms: now_ms() - 1000,
                valid_for: Duration::from_secs(3600),
            })
            .unwrap()],
        None => Vec::new(),
    };
    let node = open(dir.path(), key, auth, chain).await;
    N { node, dir, key }
}

const ENROLLER: Option<(Tier, Permissions)> = Some((
    Tier::Regional,
    Permissions::ENROLL.union(Permissions::RELAY),
));
const TEN_MIN: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrolls_with_a_token_and_joins_the_formation() {
    let auth = Authority::generate("alpha").unwrap();
    let enroller = member(&auth, ENROLLER).await;
    let other = member(&auth, Some((Tier::Tactical, Permissions::RELAY))).await;
    let device = member(&auth, None).await;
    assert_eq!(device.node.membership(), MembershipStatus::NoCertificate);
    let token = enroller
        .node
        .create_enrollment_token(Tier::Tactical, Permissions::RELAY, TEN_MIN)
        .unwrap();
    // the token travels as text
    let token = EnrollmentToken::from_hex(&token.to_hex()).unwrap();
    let enroller_events = enroller.node.subscribe_peers();
    let started = Instant::now();
    let chain = device
        .node
        .enroll(&enroller.node.peer_addr(), token.clone())
        .await
        .unwrap();
    println!("enrolled in {:?}", started.elapsed());
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].subject().unwrap(), device.node.id());
    assert_eq!(chain[0].issuer().unwrap(), enroller.node.id());
    assert_eq!(chain[0].tier(), Some(Tier::Tactical));
    assert_eq!(chain[1], enroller.node.certificate_chain()[0]);
    assert!(
        matches!(device.node.membership(), MembershipStatus::Valid(v) if v.tier == Tier::Tactical)
    );
    // admitted by the enroller already (once its side has registered the
    // connection: `Connected`), and by any other member
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match enroller_events.next_timeout(left).await.unwrap() {
            Some(Event::Item(PeerEvent::Connected { peer })) if peer == device.node.id() => break,
            Some(_) => {}
            None => panic!("the enroller never saw the device connect"),
        }
    }
    assert!(enroller
        .node
        .peer_certificate_chain(&device.node.id())
        .is_some());
    connect_both(&device.node, &other.node).await;
    assert_eq!(
        other
            .node
            .peer_certificate_chain(&device.node.id())
            .unwrap(),
        chain
    );

    // the token is spent: another device is refused, and says why
    let second = member(&auth, None).await;
    let err = second
        .node
        .enroll(&enroller.node.peer_addr(), token)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AdmissionRefused, "{err}");
    assert!(err.to_string().contains("already used"), "{err}");
    assert!(
        matches!(second.node.membership(), MembershipStatus::Denied { reason } if reason.contains("already used"))
    );

    // an unknown token, and an expired one
    let stranger = EnrollmentToken::from_hex(&"ab".repeat(32)).unwrap();
    let err = second
        .node
        .enroll(&enroller.node.peer_addr(), stranger)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown enrollment token"),
        "{err}"
    );
    let brief = enroller
        .node
        .create_enrollment_token(Tier::Edge, Permissions::NONE, Duration::from_millis(1))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await; // the token's 1 ms lifetime, not an event
    let err = second
        .node
        .enroll(&enroller.node.peer_addr(), brief)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    // a node that already holds a valid chain does not enroll again
    let t = enroller
        .node
        .create_enrollment_token(Tier::Edge, Permissions::NONE, TEN_MIN)
        .unwrap();
    let err = device
        .node
        .enroll(&enroller.node.peer_addr(), t)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    for n in [enroller.node, other.node, device.node, second.node] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stay_spent_across_a_restart_and_enrollers_grant_only_what_they_may() {
    let auth = Authority::generate("alpha").unwrap();
    let enroller = member(&auth, ENROLLER).await;
    let used = enroller
        .node
        .create_enrollment_token(Tier::Edge, Permissions::NONE, TEN_MIN)
        .unwrap();
    let kept = enroller
        .node
        .create_enrollment_token(Tier::Edge, Permissions::RELAY, TEN_MIN)
        .unwrap();
    let d1 = member(&auth, None).await;
    d1.node
        .enroll(&enroller.node.peer_addr(), used.clone())
        .await
        .unwrap();
    // restart the enroller
    let (dir, key) = (enroller.dir, enroller.key);
    let chain = enroller.node.certificate_chain();
    enroller.node.close(Duration::from_secs(5)).await.unwrap();
    drop(enroller.node);
    let enroller = open(dir.path(), key, &auth, Vec::new()).await;
    assert_eq!(enroller.certificate_chain(), chain, "its stored chain");
    let d2 = member(&auth, None).await;
    let err = d2
        .node
        .enroll(&enroller.peer_addr(), used)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already used"), "{err}");
    d2.node.enroll(&enroller.peer_addr(), kept).await.unwrap();

    // what an enroller may not grant is refused when the token is made
    for (tier, perms) in [
        (Tier::Regional, Permissions::NONE),   // its own tier
        (Tier::Enterprise, Permissions::NONE), // above it
        (Tier::Edge, Permissions::ADMIN),      // a permission it lacks
    ] {
        let e = enroller
            .create_enrollment_token(tier, perms, TEN_MIN)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
    // a member without the enroll permission makes no tokens
    let plain = member(&auth, Some((Tier::Tactical, Permissions::RELAY))).await;
    let e = plain
        .node
        .create_enrollment_token(Tier::Edge, Permissions::NONE, TEN_MIN)
        .unwrap_err();
    assert!(e.to_string().contains("enroll permission"), "{e}");
    for n in [enroller, d1.node, d2.node, plain.node] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_enroller_cuts_off_the_devices_it_enrolled() {
    let auth = Authority::generate("alpha").unwrap();
    let enroller = member(&auth, ENROLLER).await;
    let hub = member(&auth, Some((Tier::Tactical, Permissions::RELAY))).await;
    let device = member(&auth, None).await;
    let t = enroller
        .node
        .create_enrollment_token(Tier::Edge, Permissions::NONE, TEN_MIN)
        .unwrap();
    device
        .node
        .enroll(&enroller.node.peer_addr(), t)
        .await
        .unwrap();
    connect_both(&device.node, &hub.node).await;
    let events = hub.node.subscribe_peers();
    let device_events = device.node.subscribe_peers();
    let enroller_cert = enroller.node.certificate_chain()[0].clone();
    let record = RevocationRecord {
        revocation: auth.revoke(&enroller_cert, now_ms()),
        revoker_chain: Vec::new(),
    };
    hub.node.add_revocation(record).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.next_timeout(left).await.unwrap() {
            Some(Event::Item(PeerEvent::Disconnected { peer, reason }))
                if peer == device.node.id() =>
            {
                assert!(reason.contains("revoked"), "{reason}");
                break;
            }
            Some(_) => {}
            None => panic!("the device was never cut off"),
        }
    }
    // the device sees it too before it dials again (else `connect` finds
    // the old session)
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match device_events.next_timeout(left).await.unwrap() {
            Some(Event::Item(PeerEvent::Disconnected { peer, .. })) if peer == hub.node.id() => {
                break
            }
            Some(_) => {}
            None => panic!("the device never saw the hub go"),
        }
    }
    let err = device
        .node
        .connect(&hub.node.peer_addr())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    for n in [enroller.node, hub.node, device.node] {
        n.close(Duration::from_secs(5)).await.unwrap();
    }
}

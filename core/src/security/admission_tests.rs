//! Admission on an in-memory stream: the secret proof, and certificates in
//! each mode with every reason for refusing them.

use std::time::Duration;

use super::*;
use crate::clock::unix_ms;
use crate::trust::{AdmissionMode, Authority, Certificate, Grant, Permissions, Tier, TrustConfig};

fn key() -> iroh::SecretKey {
    iroh::SecretKey::generate()
}

fn id() -> NodeId {
    NodeId(key().public())
}

fn offers(name: &str) -> Vec<ProtocolOffer> {
    vec![ProtocolOffer {
        name: name.into(),
        versions: vec![1, 2],
    }]
}

/// One side: its formation, gate and id.
struct Side {
    formation: Formation,
    gate: Gate,
    id: NodeId,
    _dir: Option<tempfile::TempDir>,
}

fn secret_side(f: Formation) -> Side {
    let id = id();
    Side {
        formation: f,
        gate: Gate::secret_only(id),
        id,
        _dir: None,
    }
}

fn grant(subject: NodeId, tier: Tier) -> Grant {
    Grant {
        subject,
        tier,
        permissions: Permissions::NONE,
        not_before_ms: unix_ms() - 1000,
        valid_for: Duration::from_secs(3600),
    }
}

/// A side with trust settings; its chain from `chain(id)`.
fn trusted_side(
    f: Formation,
    auth: &Authority,
    mode: AdmissionMode,
    chain: impl FnOnce(NodeId) -> Vec<Certificate>,
) -> Side {
    let k = key();
    let id = NodeId(k.public());
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrustConfig::new(auth.genesis().clone(), mode);
    let gate = Gate::open(&k, &f, Some(&cfg), dir.path()).unwrap();
    let c = chain(id);
    if !c.is_empty() {
        // set afterwards: a side may hold a chain its own gate would refuse
        *gate_chain(&gate) = c;
    }
    Side {
        formation: f,
        gate,
        id,
        _dir: Some(dir),
    }
}

fn gate_chain(g: &Gate) -> std::sync::RwLockWriteGuard<'_, Vec<Certificate>> {
    g.chain_for_tests()
}

async fn run(a: &Side, b: &Side) -> (Result<AdmittedPeer>, Result<AdmittedPeer>) {
    let (x, y) = tokio::io::duplex(8192);
    let (mut ar, mut aw) = tokio::io::split(x);
    let (mut br, mut bw) = tokio::io::split(y);
    let (oa, ob) = (offers("a"), offers("b"));
    let sa = Admission {
        formation: &a.formation,
        gate: &a.gate,
        me: &a.id,
        peer: &b.id,
        offers: &oa,
    };
    let sb = Admission {
        formation: &b.formation,
        gate: &b.gate,
        me: &b.id,
        peer: &a.id,
        offers: &ob,
    };
    tokio::join!(
        admit_outbound(&mut ar, &mut aw, &sa),
        admit_inbound(&mut br, &mut bw, &sb),
    )
}

fn alpha() -> Formation {
    Formation::new("alpha", [9; 32])
}

#[tokio::test]
async fn same_secret_is_admitted() {
    let (a, b) = run(&secret_side(alpha()), &secret_side(alpha())).await;
    // each side learns the other's offers
    assert_eq!(a.unwrap().offers, offers("b"));
    assert_eq!(b.unwrap().offers, offers("a"));
}

#[tokio::test]
async fn wrong_secret_is_refused_on_both_sides() {
    let (a, b) = run(
        &secret_side(alpha()),
        &secret_side(Formation::new("alpha", [8; 32])),
    )
    .await;
    assert_eq!(a.err().unwrap().kind(), crate::ErrorKind::AdmissionRefused);
    assert_eq!(b.err().unwrap().kind(), crate::ErrorKind::AdmissionRefused);
}

#[tokio::test]
async fn other_formation_is_refused_on_both_sides() {
    let (a, b) = run(
        &secret_side(alpha()),
        &secret_side(Formation::new("beta", [9; 32])),
    )
    .await;
    assert!(a.err().unwrap().to_string().contains("different formation"));
    assert_eq!(b.err().unwrap().kind(), crate::ErrorKind::AdmissionRefused);
}

#[tokio::test]
async fn garbage_instead_of_hello_is_refused() {
    let (x, y) = tokio::io::duplex(4096);
    let (mut br, mut bw) = tokio::io::split(y);
    let (mut _ar, mut aw) = tokio::io::split(x);
    use tokio::io::AsyncWriteExt;
    aw.write_all(&[0, 0, 0, 3, 0xde, 0xad, 0xbe]).await.unwrap();
    let s = secret_side(alpha());
    let peer = id();
    let adm = Admission {
        formation: &s.formation,
        gate: &s.gate,
        me: &s.id,
        peer: &peer,
        offers: &[],
    };
    let err = admit_inbound(&mut br, &mut bw, &adm).await.err().unwrap();
    assert_eq!(err.kind(), crate::ErrorKind::Protocol);
}

fn member(auth: &Authority, mode: AdmissionMode, secret: [u8; 32]) -> Side {
    trusted_side(Formation::new("alpha", secret), auth, mode, |me| {
        vec![auth.issue(&grant(me, Tier::Tactical)).unwrap()]
    })
}

#[tokio::test]
async fn certificates_admit_both_ways_and_say_what_the_peer_is() {
    let auth = Authority::generate("alpha").unwrap();
    // certificate mode: the secrets need not match
    let a = member(&auth, AdmissionMode::Certificate, [1; 32]);
    let b = member(&auth, AdmissionMode::Certificate, [2; 32]);
    let (ra, rb) = run(&a, &b).await;
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let ma = ra.membership.unwrap();
    assert_eq!(ma.verified.subject, b.id);
    assert_eq!(ma.verified.tier, Tier::Tactical);
    assert_eq!(rb.membership.unwrap().verified.subject, a.id);
    assert_eq!(ra.offers, offers("b"));
    // both: the secret is checked too
    let a = member(&auth, AdmissionMode::Both, [1; 32]);
    let b = member(&auth, AdmissionMode::Both, [1; 32]);
    let (ra, rb) = run(&a, &b).await;
    assert!(ra.unwrap().membership.is_some() && rb.unwrap().membership.is_some());
    let c = member(&auth, AdmissionMode::Both, [2; 32]);
    let (ra, _) = run(&a, &c).await;
    assert!(ra.err().unwrap().to_string().contains("formation proof"));
}

/// Runs `a` (a member) against `b` and returns each side's error text.
async fn refusal(a: &Side, b: &Side) -> (String, String) {
    let (ra, rb) = run(a, b).await;
    (
        ra.err().map(|e| e.to_string()).unwrap_or_default(),
        rb.err().map(|e| e.to_string()).unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_secret_only_peer_is_refused_with_the_reason_both_ways() {
    let auth = Authority::generate("alpha").unwrap();
    let m = member(&auth, AdmissionMode::Certificate, [9; 32]);
    let s = secret_side(alpha());
    // the member dials: it refuses the responder that shows no certificate
    let (ea, eb) = refusal(&m, &s).await;
    assert!(ea.contains("certificate required"), "{ea}");
    assert!(eb.contains("certificate required"), "{eb}");
    // the secret-only node dials: the member refuses it
    let (ea, eb) = refusal(&s, &m).await;
    assert!(eb.contains("certificate required"), "{eb}");
    assert!(ea.contains("certificate required"), "{ea}");
}

#[tokio::test]
async fn every_bad_chain_is_refused_with_its_reason() {
    let auth = Authority::generate("alpha").unwrap();
    let other = Authority::generate("alpha").unwrap();
    let beta = Authority::generate("beta").unwrap();
    let good = member(&auth, AdmissionMode::Certificate, [9; 32]);
    let expired = |me| {
        let mut g = grant(me, Tier::Edge);
        g.not_before_ms = unix_ms() - 10 * 3_600_000;
        vec![auth.issue(&g).unwrap()]
    };
    let future = |me| {
        let mut g = grant(me, Tier::Edge);
        g.not_before_ms = unix_ms() + 3_600_000;
        vec![auth.issue(&g).unwrap()]
    };
    let stranger = |me| vec![other.issue(&grant(me, Tier::Edge)).unwrap()];
    let wrong_formation = |me| vec![beta.issue(&grant(me, Tier::Edge)).unwrap()];
    let stolen = |_me| vec![auth.issue(&grant(id(), Tier::Edge)).unwrap()];
    let none = |_me| Vec::new();
    type ChainOf<'a> = Box<dyn FnOnce(NodeId) -> Vec<Certificate> + 'a>;
    let cases: Vec<(&str, ChainOf)> = vec![
        ("expired", Box::new(expired)),
        ("not valid before", Box::new(future)),
        ("issued by a key", Box::new(stranger)),
        ("another formation", Box::new(wrong_formation)),
        ("another key than the peer", Box::new(stolen)),
        ("empty certificate chain", Box::new(none)),
    ];
    for (want, chain) in cases {
        let bad = trusted_side(alpha(), &auth, AdmissionMode::Certificate, chain);
        // refused as initiator and as responder, the reason on both sides
        let (ebad, egood) = refusal(&bad, &good).await;
        assert!(egood.contains(want), "{want}: {egood}");
        assert!(ebad.contains(want), "{want}: {ebad}");
    }
}

#[tokio::test]
async fn a_revoked_certificate_is_refused() {
    let auth = Authority::generate("alpha").unwrap();
    let a = member(&auth, AdmissionMode::Certificate, [9; 32]);
    let b = member(&auth, AdmissionMode::Certificate, [9; 32]);
    let cert = b.gate.chain()[0].clone();
    let record = crate::trust::RevocationRecord {
        revocation: auth.revoke(&cert, unix_ms()),
        revoker_chain: Vec::new(),
    };
    assert!(a.gate.learn(record.clone(), None).await.unwrap());
    assert!(!a.gate.learn(record, None).await.unwrap(), "known already");
    let (eb, ea) = refusal(&b, &a).await;
    assert!(ea.contains("revoked"), "{ea}");
    assert!(eb.contains("revoked"), "{eb}");
}

/// An enroller (regional, enroll + relay) and a device without a chain.
fn enroller_and_device(auth: &Authority) -> (Side, Side) {
    let enroller = trusted_side(alpha(), auth, AdmissionMode::Certificate, |me| {
        let mut g = grant(me, Tier::Regional);
        g.permissions = Permissions::ENROLL | Permissions::RELAY;
        vec![auth.issue(&g).unwrap()]
    });
    let device = trusted_side(alpha(), auth, AdmissionMode::Certificate, |_| Vec::new());
    (enroller, device)
}

#[tokio::test]
async fn a_device_enrolls_during_admission_and_is_admitted_at_once() {
    let auth = Authority::generate("alpha").unwrap();
    let (enroller, device) = enroller_and_device(&auth);
    let token = enroller
        .gate
        .create_token(Tier::Edge, Permissions::NONE, Duration::from_secs(60))
        .unwrap();
    device.gate.start_enrollment(token, enroller.id).unwrap();
    let (rd, re) = run(&device, &enroller).await;
    let (rd, re) = (rd.unwrap(), re.unwrap());
    assert_eq!(re.membership.unwrap().verified.subject, device.id);
    assert_eq!(rd.membership.unwrap().verified.subject, enroller.id);
    let chain = device.gate.chain();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].tier(), Some(Tier::Edge));
    assert!(matches!(
        device.gate.status(),
        crate::trust::MembershipStatus::Valid(_)
    ));
}

#[tokio::test]
async fn the_token_goes_to_its_enroller_only() {
    let auth = Authority::generate("alpha").unwrap();
    let (enroller, device) = enroller_and_device(&auth);
    let (other, _) = enroller_and_device(&auth);
    let token = enroller
        .gate
        .create_token(Tier::Edge, Permissions::NONE, Duration::from_secs(60))
        .unwrap();
    device.gate.start_enrollment(token, enroller.id).unwrap();
    assert!(device.gate.enrollment_request(&other.id).is_none());
    // to another node the device shows its (empty) chain, not the token
    let (ed, eo) = refusal(&device, &other).await;
    assert!(eo.contains("empty certificate chain"), "{eo}");
    assert!(ed.contains("empty certificate chain"), "{ed}");
    // the token still works with its enroller
    let (rd, _) = run(&device, &enroller).await;
    assert!(rd.is_ok());
}

#[tokio::test]
async fn a_request_signed_by_another_key_or_garbage_is_refused() {
    let auth = Authority::generate("alpha").unwrap();
    let (enroller, device) = enroller_and_device(&auth);
    let token = enroller
        .gate
        .create_token(Tier::Edge, Permissions::NONE, Duration::from_secs(60))
        .unwrap();
    let thief = key();
    let forged =
        crate::trust::EnrollmentRequest::sign(&thief, "alpha", Some(&token), unix_ms()).unwrap();
    for request in [forged.to_bytes(), vec![0xde, 0xad]] {
        let (x, y) = tokio::io::duplex(8192);
        let (mut ar, mut aw) = tokio::io::split(x);
        let (mut br, mut bw) = tokio::io::split(y);
        let sb = Admission {
            formation: &enroller.formation,
            gate: &enroller.gate,
            me: &enroller.id,
            peer: &device.id,
            offers: &[],
        };
        let device_side = async {
            use crate::wire::{read_frame_max, write_frame};
            write_frame(
                &mut aw,
                &Frame::Hello {
                    version: PROTOCOL_VERSION,
                    formation_tag: alpha().tag(),
                    nonce: [1; 32],
                },
            )
            .await
            .unwrap();
            let _challenge = read_frame_max(&mut ar, 4096).await.unwrap();
            write_frame(&mut aw, &Frame::Proof { proof: [0; 32] })
                .await
                .unwrap();
            write_frame(&mut aw, &Frame::Enroll { request })
                .await
                .unwrap();
            read_frame_max(&mut ar, 4096).await.unwrap().map(|(f, _)| f)
        };
        let (answer, r) = tokio::join!(device_side, admit_inbound(&mut br, &mut bw, &sb));
        let e = r.err().unwrap().to_string();
        assert!(e.contains("enrollment refused"), "{e}");
        assert!(matches!(answer, Some(Frame::Refused { .. })), "{answer:?}");
    }
    // the token was not spent by either
    device.gate.start_enrollment(token, enroller.id).unwrap();
    let (rd, _) = run(&device, &enroller).await;
    assert!(rd.is_ok());
}

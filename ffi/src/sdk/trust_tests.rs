//! Scenario 28 at the SDK layer: an authority, certificates set at runtime,
//! admission with certificates, a node without one refused, a revocation
//! that cuts the peer off and keeps it out, bad input refused.

use super::tests::{opts, serial};
use super::*;
use crate::error::ErrorCode;
use crate::handles;
use crate::records::{GrantRecord, NodeOptions, PeerEventRecord};

fn grant(subject: &str) -> GrantRecord {
    GrantRecord {
        subject: subject.into(),
        tier: "tactical".into(),
        permissions: 1,
        not_before_ms: 0,
        valid_for_ms: 3_600_000,
    }
}

/// Waits for the first peer event `f` picks.
fn wait_for(sub: u64, mut f: impl FnMut(&PeerEventRecord) -> bool) {
    loop {
        match next_peer_event(sub, 10_000).unwrap() {
            Some(e) if f(&e) => return,
            Some(_) => {}
            None => panic!("the event never came"),
        }
    }
}

#[test]
fn certificates_admission_and_revocation_reach_the_sdk() {
    let _g = serial();
    let before = handles::live_handles();
    let secret = generate_authority_secret();
    let authority = authority_public_key("t", &secret[..]).unwrap();
    let trust = format!(r#"{{"authority": "{authority}", "mode": "certificate"}}"#);
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let open = |dir: &std::path::Path, trust: &str| {
        node_open(
            &NodeOptions {
                trust_json: trust.into(),
                ..opts(dir)
            },
            5000,
            0,
        )
    };
    let a = open(da.path(), &trust).unwrap();
    let b = open(db.path(), &trust).unwrap();
    assert_eq!(node_membership(a).unwrap().state, "no_certificate");
    let st = node_trust_stats(a).unwrap();
    assert_eq!(
        (st.admission_mode.as_str(), st.revocations),
        ("certificate", 0)
    );
    let mut certs = Vec::new();
    for n in [a, b] {
        let id = node_id(n).unwrap();
        let cert = authority_issue("t", &secret[..], &grant(&id)).unwrap();
        let info = certificate_info(&cert).unwrap();
        assert_eq!(
            (info.subject.as_str(), info.tier.as_str()),
            (id.as_str(), "tactical")
        );
        assert_eq!(
            (info.formation_id.as_str(), info.issuer.as_str()),
            ("t", authority.as_str())
        );
        assert_eq!(info.permissions, 1);
        node_set_certificate_chain(n, std::slice::from_ref(&cert)).unwrap();
        assert_eq!(node_certificate_chain(n).unwrap(), vec![cert.clone()]);
        let m = node_membership(n).unwrap();
        assert_eq!(
            (m.state.as_str(), m.tier.as_str(), m.permissions),
            ("valid", "tactical", 1)
        );
        certs.push(cert);
    }
    // another node's certificate is not this node's chain
    let e = node_set_certificate_chain(a, &certs[1..]).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    let events = subscribe_peers(a).unwrap();
    connect(b, &node_addrs(a).unwrap()[0], 5000, 0).unwrap();
    let b_id = node_id(b).unwrap();
    // a's side registers the connection when it publishes Connected
    wait_for(
        events,
        |e| matches!(e, PeerEventRecord::Connected { peer } if *peer == b_id),
    );
    assert_eq!(
        node_peer_certificate_chain(a, &b_id).unwrap(),
        vec![certs[1].clone()]
    );
    // a node with the formation secret but no trust settings: refused, with the reason
    let c = open(dc.path(), "").unwrap();
    assert_eq!(node_membership(c).unwrap().state, "secret_only");
    let e = connect(c, &node_addrs(a).unwrap()[0], 5000, 0).unwrap_err();
    assert_eq!(e.code, ErrorCode::AdmissionRefused);
    assert!(e.message.contains("certificate required"), "{}", e.message);
    // the authority revokes b's certificate; a learns it and cuts b off
    let record = authority_revoke("t", &secret[..], &certs[1]).unwrap();
    assert!(node_add_revocation(a, &record).unwrap());
    assert!(!node_add_revocation(a, &record).unwrap());
    wait_for(
        events,
        |e| matches!(e, PeerEventRecord::Revoked { peer } if *peer == b_id),
    );
    wait_for(
        events,
        |e| matches!(e, PeerEventRecord::Disconnected { peer, .. } if *peer == b_id),
    );
    assert_eq!(node_trust_stats(a).unwrap().revocations, 1);
    let e = connect(b, &node_addrs(a).unwrap()[0], 5000, 0).unwrap_err();
    assert_eq!(e.code, ErrorCode::AdmissionRefused);
    assert!(e.message.contains("revoked"), "{}", e.message);
    // bad input
    for bad in [
        certificate_info("zz").err(),
        certificate_info("").err(),
        authority_issue("t", &[1; 31], &grant(&b_id)).err(),
        authority_issue("t", &[0; 32], &grant(&b_id)).err(),
        authority_issue(
            "t",
            &secret[..],
            &GrantRecord {
                tier: "general".into(),
                ..grant(&b_id)
            },
        )
        .err(),
        authority_issue(
            "t",
            &secret[..],
            &GrantRecord {
                valid_for_ms: 0,
                ..grant(&b_id)
            },
        )
        .err(),
        authority_issue("t", &secret[..], &grant("not-a-node")).err(),
        node_add_revocation(a, "00").err(),
        node_revoke(a, "abc").err(),
    ] {
        assert_eq!(bad.map(|e| e.code), Some(ErrorCode::InvalidArgument));
    }
    let dd = tempfile::tempdir().unwrap();
    for bad in [
        format!(r#"{{"authority": "{authority}", "mode": "maybe"}}"#),
        r#"{"authority": "00"}"#.to_string(),
        "{".into(),
    ] {
        assert_eq!(
            open(dd.path(), &bad).unwrap_err().code,
            ErrorCode::InvalidArgument,
            "{bad}"
        );
    }
    unsubscribe(events).unwrap();
    for n in [a, b, c] {
        node_close(n, 5000).unwrap();
    }
    assert_eq!(handles::live_handles(), before);
}

#[test]
fn enrollment_reaches_the_sdk() {
    let _g = serial();
    let before = handles::live_handles();
    let secret = generate_authority_secret();
    let authority = authority_public_key("t", &secret[..]).unwrap();
    let trust = format!(r#"{{"authority": "{authority}"}}"#);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let open = |i: usize| {
        node_open(
            &NodeOptions {
                trust_json: trust.clone(),
                ..opts(dirs[i].path())
            },
            5000,
            0,
        )
        .unwrap()
    };
    let (e, d, d2) = (open(0), open(1), open(2));
    let grant = GrantRecord {
        subject: node_id(e).unwrap(),
        tier: "regional".into(),
        permissions: 3,
        not_before_ms: 0,
        valid_for_ms: 3_600_000,
    };
    let cert = authority_issue("t", &secret[..], &grant).unwrap();
    node_set_certificate_chain(e, std::slice::from_ref(&cert)).unwrap();
    let token = node_create_enrollment_token(e, "edge", 1, 600_000).unwrap();
    assert_eq!(token.len(), 64);
    let enroller = node_addrs(e).unwrap()[0].clone();
    let chain = node_enroll(d, &enroller, &token, 5000, 0).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], cert);
    let info = certificate_info(&chain[0]).unwrap();
    assert_eq!(
        (info.subject, info.issuer, info.tier.as_str()),
        (node_id(d).unwrap(), node_id(e).unwrap(), "edge")
    );
    let m = node_membership(d).unwrap();
    assert_eq!((m.state.as_str(), m.tier.as_str()), ("valid", "edge"));
    // the token is spent
    let err = node_enroll(d2, &enroller, &token, 5000, 0).unwrap_err();
    assert_eq!(err.code, ErrorCode::AdmissionRefused);
    assert!(err.message.contains("already used"), "{}", err.message);
    let m = node_membership(d2).unwrap();
    assert_eq!(m.state, "denied");
    assert!(m.reason.contains("already used"), "{}", m.reason);
    for bad in [
        node_create_enrollment_token(e, "regional", 0, 1000).err(),
        node_create_enrollment_token(e, "edge", 4, 1000).err(),
        node_create_enrollment_token(e, "edge", 0, 0).err(),
        node_create_enrollment_token(e, "general", 0, 1000).err(),
        node_create_enrollment_token(d2, "edge", 0, 1000).err(),
        node_enroll(d2, &enroller, "zz", 5000, 0).err(),
    ] {
        assert_eq!(bad.map(|e| e.code), Some(ErrorCode::InvalidArgument));
    }
    for n in [e, d, d2] {
        node_close(n, 5000).unwrap();
    }
    assert_eq!(handles::live_handles(), before);
}

#[test]
fn key_rotation_reaches_the_sdk() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    assert_eq!(
        rotate_identity(&path).unwrap_err().code,
        ErrorCode::NotFound
    );
    let n = node_open(&opts(dir.path()), 5000, 0).unwrap();
    let old = node_id(n).unwrap();
    put(n, "notes", "n1", r#"{"kept": true}"#).unwrap();
    node_close(n, 5000).unwrap();
    let new = rotate_identity(&path).unwrap();
    assert_ne!(new, old);
    let n = node_open(&opts(dir.path()), 5000, 0).unwrap();
    assert_eq!(node_id(n).unwrap(), new);
    assert_eq!(
        get(n, "notes", "n1").unwrap().as_deref(),
        Some(r#"{"kept":true}"#)
    );
    node_close(n, 5000).unwrap();
    assert_eq!(
        rotate_identity("").unwrap_err().code,
        ErrorCode::InvalidArgument
    );
}

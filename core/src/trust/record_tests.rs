//! Revocation records, enrollment requests, token tables and the text forms:
//! round trips, bounds, and property tests that any input decodes or is
//! refused without a panic.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_800_000_000_000;

fn setup() -> (Authority, Certificate) {
    let a = Authority::from_secret("alpha", [5; 32]).unwrap();
    let dev = crate::NodeId(iroh::SecretKey::from_bytes(&[6; 32]).public());
    let c = a
        .issue(&Grant {
            subject: dev,
            tier: Tier::Edge,
            permissions: Permissions::RELAY,
            not_before_ms: NOW - 1000,
            valid_for: Duration::from_secs(3600),
        })
        .unwrap();
    (a, c)
}

fn record() -> (Authority, RevocationRecord) {
    let (a, c) = setup();
    let r = RevocationRecord {
        revocation: a.revoke(&c, NOW),
        revoker_chain: vec![c],
    };
    (a, r)
}

#[test]
fn records_round_trip_and_check() {
    let (a, r) = record();
    let back = RevocationRecord::from_bytes(&r.to_bytes()).unwrap();
    assert_eq!(back, r);
    assert_eq!(
        RevocationRecord::from_hex(&r.to_hex().to_uppercase()).unwrap(),
        r
    );
    back.check(a.genesis(), NOW).unwrap();
    assert_eq!(
        back.revocation.subject().unwrap(),
        r.revoker_chain[0].subject().unwrap()
    );
    // another authority's genesis: not its signature
    let other = Authority::from_secret("alpha", [9; 32]).unwrap();
    assert!(back.check(other.genesis(), NOW).is_err());
}

#[test]
fn bad_records_are_refused_with_a_clear_error() {
    let (_, r) = record();
    let bytes = r.to_bytes();
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            RevocationRecord::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(
        RevocationRecord::from_bytes(&long).is_err(),
        "trailing byte"
    );
    let huge = vec![0u8; MAX_RECORD_LEN + 1];
    let e = RevocationRecord::from_bytes(&huge).unwrap_err();
    assert!(e.to_string().contains("exceeds"), "{e}");
    // a chain too long
    let (_, c) = setup();
    let too_long = RevocationRecord {
        revocation: r.revocation.clone(),
        revoker_chain: vec![c; MAX_CHAIN + 1],
    };
    let e = RevocationRecord::from_bytes(&too_long.to_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            TrustError::ChainTooLong { .. } | TrustError::Malformed(_)
        ),
        "{e}"
    );
    assert!(RevocationRecord::from_hex("zz").is_err());
}

#[test]
fn chains_and_trust_settings_as_text() {
    let (a, c) = setup();
    let text = chain_to_text(&[c.clone(), c.clone()]);
    assert_eq!(chain_from_text(&text).unwrap(), vec![c.clone(), c.clone()]);
    assert!(chain_from_text("").unwrap().is_empty());
    assert!(chain_from_text(&vec![c.to_hex(); MAX_CHAIN + 1].join(",")).is_err());
    assert!(chain_from_text("abc,").is_err());
    let auth = crate::hex::hex(a.genesis().authority.as_bytes());
    let json = format!(
        r#"{{"authority":"{auth}","mode":"both","chain":["{}"]}}"#,
        c.to_hex()
    );
    let t = TrustConfig::from_json("alpha", &json).unwrap();
    assert_eq!(t.genesis, *a.genesis());
    assert_eq!(t.mode, AdmissionMode::Both);
    assert_eq!(t.chain, vec![c]);
    let t = TrustConfig::from_json("alpha", &format!(r#"{{"authority":"{auth}"}}"#)).unwrap();
    assert_eq!(t.mode, AdmissionMode::Certificate, "the default mode");
    for bad in [
        "".to_string(),
        "{}".into(),
        format!(r#"{{"authority":"{auth}","mode":"maybe"}}"#),
        format!(r#"{{"authority":"{auth}","extra":1}}"#),
        r#"{"authority":"abcd"}"#.into(),
        format!(r#"{{"authority":"{auth}","chain":["00"]}}"#),
    ] {
        assert!(TrustConfig::from_json("alpha", &bad).is_err(), "{bad}");
    }
}

proptest! {
    #[test]
    fn any_bytes_are_a_record_or_refused(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        if let Ok(r) = RevocationRecord::from_bytes(&data) {
            prop_assert_eq!(r.to_bytes(), data);
        }
    }

    #[test]
    fn a_changed_byte_never_passes_the_check(pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (a, r) = record();
        let mut bytes = r.to_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(r2) = RevocationRecord::from_bytes(&bytes) {
            // the chain rides along unsigned by the revocation: changing it
            // may leave the revocation valid, never a forged one
            if r2.revocation != r.revocation {
                prop_assert!(r2.check(a.genesis(), NOW).is_err());
            }
        }
    }

    #[test]
    fn any_text_is_trust_settings_or_refused(s in ".{0,200}") {
        let _ = TrustConfig::from_json("alpha", &s);
        let _ = chain_from_text(&s);
    }
}

#[test]
fn enrollment_requests_round_trip_and_check() {
    let key = iroh::SecretKey::from_bytes(&[8; 32]);
    let token = EnrollmentToken::from_hex(&"cd".repeat(32)).unwrap();
    let r = EnrollmentRequest::sign(&key, "alpha", Some(&token), NOW).unwrap();
    let back = EnrollmentRequest::from_bytes(&r.to_bytes()).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.token(), Some(token));
    assert!(
        !format!("{back:?}").contains(&"cd".repeat(32)),
        "Debug hides the token"
    );
    let me = crate::NodeId(key.public());
    assert_eq!(back.check("alpha", NOW).unwrap(), me);
    // another formation, from the future, too old
    assert!(matches!(
        back.check("beta", NOW),
        Err(TrustError::WrongFormation { .. })
    ));
    let skew = CLOCK_SKEW.as_millis() as u64;
    assert!(matches!(
        back.check("alpha", NOW - skew - 1),
        Err(TrustError::NotYetValid { .. })
    ));
    assert!(back.check("alpha", NOW - skew + 1).is_ok());
    assert!(matches!(
        back.check("alpha", NOW + MAX_REQUEST_AGE_MS + 1),
        Err(TrustError::Expired { .. })
    ));
    // offline: no token
    let offline = EnrollmentRequest::sign(&key, "alpha", None, NOW).unwrap();
    assert_eq!(
        EnrollmentRequest::from_bytes(&offline.to_bytes())
            .unwrap()
            .token(),
        None
    );
    // truncated, trailing, oversized
    let bytes = r.to_bytes();
    assert!(EnrollmentRequest::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut long = bytes.clone();
    long.push(0);
    assert!(EnrollmentRequest::from_bytes(&long).is_err());
    assert!(EnrollmentRequest::from_bytes(&vec![0; MAX_REQUEST_LEN + 1]).is_err());
}

#[test]
fn token_stores_keep_their_state_through_bytes() {
    let mut store = TokenStore::default();
    let used = store
        .create(Tier::Edge, Permissions::NONE, Duration::from_secs(60), NOW)
        .unwrap();
    let fresh = store
        .create(
            Tier::Tactical,
            Permissions::RELAY,
            Duration::from_secs(60),
            NOW,
        )
        .unwrap();
    store.redeem(&used, NOW).unwrap();
    let bytes = store.to_bytes();
    assert!(
        !crate::hex::hex(&bytes).contains(used.to_hex().as_str()),
        "hashes only"
    );
    let mut back = TokenStore::from_bytes(&bytes).unwrap();
    assert_eq!(back.redeem(&used, NOW), Err(TrustError::TokenUsed));
    assert_eq!(
        back.redeem(&fresh, NOW),
        Ok((Tier::Tactical, Permissions::RELAY))
    );
    assert!(TokenStore::from_bytes(&[0xff; 9]).is_err());
}

proptest! {
    #[test]
    fn any_bytes_are_a_request_or_refused(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = EnrollmentRequest::from_bytes(&data) {
            prop_assert_eq!(r.to_bytes(), data);
            let _ = r.check("alpha", NOW);
        }
    }

    #[test]
    fn a_changed_request_byte_never_passes(pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let key = iroh::SecretKey::from_bytes(&[8; 32]);
        let r = EnrollmentRequest::sign(&key, "alpha", None, NOW).unwrap();
        let mut bytes = r.to_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(r2) = EnrollmentRequest::from_bytes(&bytes) {
            if r2 != r {
                prop_assert!(r2.check("alpha", NOW).is_err());
            }
        }
    }

    #[test]
    fn any_bytes_are_a_token_store_or_refused(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = TokenStore::from_bytes(&data);
    }
}

use proptest::prelude::*;

use super::signed::Body as _;
use super::*;

const HOUR: Duration = Duration::from_secs(3600);
const NOW: u64 = 1_800_000_000_000;

fn node(i: u8) -> (iroh::SecretKey, NodeId) {
    let k = iroh::SecretKey::from_bytes(&[i; 32]);
    let id = NodeId(k.public());
    (k, id)
}

fn grant(subject: NodeId, tier: Tier, permissions: Permissions) -> Grant {
    Grant {
        subject,
        tier,
        permissions,
        not_before_ms: NOW - 1000,
        valid_for: HOUR,
    }
}

fn authority() -> Authority {
    Authority::from_secret("alpha", [42; 32]).unwrap()
}

#[test]
fn a_certificate_from_the_authority_is_valid_and_reads_back() {
    let a = authority();
    let (_, dev) = node(1);
    let c = a
        .issue(&grant(dev, Tier::Edge, Permissions::RELAY))
        .unwrap();
    let back = Certificate::from_bytes(&c.to_bytes()).unwrap();
    assert_eq!(back, c);
    let v = validate_chain(a.genesis(), &[back], NOW).unwrap();
    assert_eq!(
        (v.subject, v.tier, v.permissions),
        (dev, Tier::Edge, Permissions::RELAY)
    );
    assert_eq!(v.chain_ids, vec![c.id()]);
    // the Debug output names neither key in full
    let dbg = format!("{a:?} {c:?}");
    assert!(dbg.contains("<redacted>") && !dbg.contains(&crate::hex::hex(&[42; 32])));
}

#[test]
fn validity_windows_hold_within_the_clock_skew() {
    let a = authority();
    let (_, dev) = node(1);
    let c = a.issue(&grant(dev, Tier::Edge, Permissions::NONE)).unwrap();
    let skew = CLOCK_SKEW.as_millis() as u64;
    let end = c.not_after_ms();
    assert!(validate_chain(a.genesis(), std::slice::from_ref(&c), end + skew).is_ok());
    assert_eq!(
        validate_chain(a.genesis(), std::slice::from_ref(&c), end + skew + 1),
        Err(TrustError::Expired { at_ms: end })
    );
    let start = c.not_before_ms();
    assert!(validate_chain(a.genesis(), std::slice::from_ref(&c), start - skew).is_ok());
    assert_eq!(
        validate_chain(a.genesis(), &[c], start - skew - 1),
        Err(TrustError::NotYetValid { from_ms: start })
    );
}

#[test]
fn a_delegate_with_enroll_issues_lower_tiers_with_permissions_it_holds() {
    let a = authority();
    let (rk, regional) = node(1);
    let (_, edge) = node(2);
    let rc = a
        .issue(&grant(
            regional,
            Tier::Regional,
            Permissions::ENROLL | Permissions::RELAY,
        ))
        .unwrap();
    let ec = issue(&rk, "alpha", &grant(edge, Tier::Edge, Permissions::RELAY)).unwrap();
    let v = validate_chain(a.genesis(), &[ec.clone(), rc.clone()], NOW).unwrap();
    assert_eq!((v.subject, v.tier), (edge, Tier::Edge));
    assert_eq!(v.chain_ids, vec![ec.id(), rc.id()]);
    // the delegate's own tier, or a higher one: refused
    let same = issue(
        &rk,
        "alpha",
        &grant(edge, Tier::Regional, Permissions::NONE),
    )
    .unwrap();
    assert_eq!(
        validate_chain(a.genesis(), &[same, rc.clone()], NOW),
        Err(TrustError::TierNotBelow {
            issuer: Tier::Regional,
            granted: Tier::Regional
        })
    );
    // a permission it does not hold: refused
    let admin = issue(&rk, "alpha", &grant(edge, Tier::Edge, Permissions::ADMIN)).unwrap();
    assert_eq!(
        validate_chain(a.genesis(), &[admin, rc], NOW),
        Err(TrustError::PermissionsExceedIssuer)
    );
    // without the enroll permission: refused
    let plain = a
        .issue(&grant(regional, Tier::Regional, Permissions::RELAY))
        .unwrap();
    assert_eq!(
        validate_chain(a.genesis(), &[ec, plain], NOW),
        Err(TrustError::MayNotEnroll)
    );
}

#[test]
fn wrong_issuers_self_signed_and_foreign_certificates_are_refused() {
    let a = authority();
    let (k1, dev) = node(1);
    let (k2, other) = node(2);
    // signed by a key the chain does not lead to the authority from
    let stray = issue(&k2, "alpha", &grant(dev, Tier::Edge, Permissions::NONE)).unwrap();
    assert_eq!(
        validate_chain(a.genesis(), &[stray], NOW),
        Err(TrustError::UnknownIssuer)
    );
    // self-signed, not the authority
    let own = issue(
        &k1,
        "alpha",
        &grant(dev, Tier::Enterprise, Permissions::ADMIN),
    )
    .unwrap();
    assert_eq!(
        validate_chain(a.genesis(), &[own], NOW),
        Err(TrustError::SelfSigned)
    );
    // the authority certifying its own key is fine
    let root_node = a.genesis().authority;
    let root = a
        .issue(&grant(root_node, Tier::Enterprise, Permissions::ADMIN))
        .unwrap();
    assert!(validate_chain(a.genesis(), &[root], NOW).is_ok());
    // another formation's certificate
    let beta = Authority::from_secret("beta", [42; 32]).unwrap();
    let foreign = beta
        .issue(&grant(other, Tier::Edge, Permissions::NONE))
        .unwrap();
    assert!(matches!(
        validate_chain(a.genesis(), &[foreign], NOW),
        Err(TrustError::WrongFormation { .. })
    ));
    // re-signed by another key claiming to be the authority
    let good = a.issue(&grant(dev, Tier::Edge, Permissions::NONE)).unwrap();
    let mut forged = good.clone();
    forged.signature = forged.body.sign_with(&k2);
    assert_eq!(
        validate_chain(a.genesis(), &[forged], NOW),
        Err(TrustError::BadSignature)
    );
    // a changed field breaks the signature
    let mut raised = good;
    raised.body.tier = Tier::Enterprise as u8;
    assert_eq!(
        validate_chain(a.genesis(), &[raised], NOW),
        Err(TrustError::BadSignature)
    );
}

#[test]
fn chains_longer_than_the_bound_and_empty_ones_are_refused() {
    let a = authority();
    assert!(matches!(
        validate_chain(a.genesis(), &[], NOW),
        Err(TrustError::Malformed(_))
    ));
    // authority -> enterprise -> regional -> tactical -> edge: 4 certificates, fine
    let keys: Vec<(iroh::SecretKey, NodeId)> = (1..=5).map(node).collect();
    let all = Permissions::ENROLL | Permissions::RELAY;
    let mut chain = vec![a.issue(&grant(keys[0].1, Tier::Enterprise, all)).unwrap()];
    for (i, tier) in [Tier::Regional, Tier::Tactical, Tier::Edge]
        .into_iter()
        .enumerate()
    {
        let c = issue(&keys[i].0, "alpha", &grant(keys[i + 1].1, tier, all)).unwrap();
        chain.insert(0, c);
    }
    assert_eq!(chain.len(), MAX_CHAIN);
    assert!(validate_chain(a.genesis(), &chain, NOW).is_ok());
    // one more link is refused before any signature is checked
    let extra = issue(&keys[3].0, "alpha", &grant(keys[4].1, Tier::Edge, all)).unwrap();
    chain.insert(0, extra);
    assert_eq!(
        validate_chain(a.genesis(), &chain, NOW),
        Err(TrustError::ChainTooLong {
            len: 5,
            max: MAX_CHAIN
        })
    );
}

#[test]
fn bad_bytes_are_refused_with_a_clear_error() {
    let a = authority();
    let (_, dev) = node(1);
    let bytes = a
        .issue(&grant(dev, Tier::Edge, Permissions::NONE))
        .unwrap()
        .to_bytes();
    for cut in 0..bytes.len() {
        assert!(
            Certificate::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long.insert(10, 0);
    assert!(
        Certificate::from_bytes(&long).is_err()
            || validate_chain(a.genesis(), &[Certificate::from_bytes(&long).unwrap()], NOW)
                .is_err()
    );
    assert!(Certificate::from_bytes(&vec![0; MAX_CERT_LEN + 1]).is_err());
    assert!(Authority::from_secret("", [1; 32]).is_err());
    assert!(Authority::from_secret(&"x".repeat(MAX_FORMATION_ID + 1), [1; 32]).is_err());
}

proptest! {
    #[test]
    fn any_bytes_decode_or_are_refused_never_panic(data in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(c) = Certificate::from_bytes(&data) {
            // one encoding per certificate
            prop_assert_eq!(c.to_bytes(), data);
        }
    }

    #[test]
    fn a_changed_byte_is_never_accepted(pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let a = authority();
        let (_, dev) = node(1);
        let mut bytes = a.issue(&grant(dev, Tier::Edge, Permissions::RELAY)).unwrap().to_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(c) = Certificate::from_bytes(&bytes) {
            prop_assert!(validate_chain(a.genesis(), &[c], NOW).is_err());
        }
    }

    #[test]
    fn any_grant_reads_back(tier in 0usize..4, bits in any::<u32>(), from in 0u64..u64::MAX / 2, secs in 0u64..1_000_000_000) {
        let a = authority();
        let (_, dev) = node(3);
        let g = Grant {
            subject: dev,
            tier: Tier::ALL[tier],
            permissions: Permissions::from_bits(bits),
            not_before_ms: from,
            valid_for: Duration::from_secs(secs),
        };
        let c = a.issue(&g).unwrap();
        let back = Certificate::from_bytes(&c.to_bytes()).unwrap();
        prop_assert_eq!(back.tier(), Some(g.tier));
        prop_assert_eq!(back.permissions(), g.permissions);
        prop_assert_eq!(back.subject().unwrap(), dev);
        prop_assert_eq!(back, c);
    }
}

#[test]
fn revocations_by_the_authority_an_admin_or_the_enroller_apply_and_others_are_refused() {
    let a = authority();
    let (rk, regional) = node(1);
    let (ak, admin) = node(2);
    let (_, edge) = node(3);
    let (ok, other) = node(4);
    let rc = a
        .issue(&grant(regional, Tier::Regional, Permissions::ENROLL))
        .unwrap();
    let adc = a
        .issue(&grant(admin, Tier::Enterprise, Permissions::ADMIN))
        .unwrap();
    let oc = a
        .issue(&grant(other, Tier::Regional, Permissions::ENROLL))
        .unwrap();
    let ec = issue(&rk, "alpha", &grant(edge, Tier::Edge, Permissions::NONE)).unwrap();
    let chain = [ec.clone(), rc.clone()];
    let v = validate_chain(a.genesis(), &chain, NOW).unwrap();
    let genesis = a.genesis();
    // the authority
    let by_authority = Revocation::sign(&iroh::SecretKey::from_bytes(&a.secret_bytes()), &ec, NOW);
    assert!(by_authority.check(genesis, &[], NOW).is_ok());
    // an admin, with its chain
    let by_admin = Revocation::sign(&ak, &ec, NOW);
    assert!(by_admin
        .check(genesis, std::slice::from_ref(&adc), NOW)
        .is_ok());
    // the enroller of the certificate
    let by_enroller = Revocation::sign(&rk, &ec, NOW);
    assert!(by_enroller
        .check(genesis, std::slice::from_ref(&rc), NOW)
        .is_ok());
    // another enroller: refused
    let by_other = Revocation::sign(&ok, &ec, NOW);
    assert_eq!(
        by_other.check(genesis, std::slice::from_ref(&oc), NOW),
        Err(TrustError::MayNotRevoke)
    );
    // a chain that is not the revoker's: refused
    assert_eq!(
        by_admin.check(genesis, std::slice::from_ref(&rc), NOW),
        Err(TrustError::UnknownIssuer)
    );
    // bytes read back; a changed byte never passes
    let bytes = by_enroller.to_bytes();
    assert_eq!(Revocation::from_bytes(&bytes).unwrap(), by_enroller);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x40;
        if let Ok(r) = Revocation::from_bytes(&b) {
            assert!(
                r.check(genesis, std::slice::from_ref(&rc), NOW).is_err(),
                "byte {i}"
            );
        }
    }
    // the list: the device's chain is revoked; the enroller's is not
    let mut list = Revocations::default();
    assert!(list.insert(by_enroller.clone(), NOW).unwrap());
    assert!(!list.insert(by_enroller, NOW).unwrap());
    assert!(list.revoking(&v, &chain).is_some());
    let rv = validate_chain(genesis, std::slice::from_ref(&rc), NOW).unwrap();
    assert!(list.revoking(&rv, std::slice::from_ref(&rc)).is_none());
    // revoking the enroller revokes everything below it
    let mut list = Revocations::default();
    list.insert(Revocation::sign(&ak, &rc, NOW), NOW).unwrap();
    assert!(list.revoking(&v, &chain).is_some());
    // once the certificate has expired, its revocation is forgotten
    list.forget_expired(rc.not_after_ms() + CLOCK_SKEW.as_millis() as u64 + 1);
    assert!(list.is_empty());
}

#[test]
fn the_revocation_list_is_bounded_and_never_drops_a_live_revocation() {
    let a = authority();
    let key = iroh::SecretKey::from_bytes(&a.secret_bytes());
    let (_, dev) = node(1);
    let mut list = Revocations::default();
    for i in 0..MAX_REVOCATIONS {
        let mut g = grant(dev, Tier::Edge, Permissions::NONE);
        g.not_before_ms = NOW - 1000 - i as u64;
        let c = a.issue(&g).unwrap();
        assert!(list.insert(Revocation::sign(&key, &c, NOW), NOW).unwrap());
    }
    let extra = a
        .issue(&Grant {
            not_before_ms: NOW + 5,
            ..grant(dev, Tier::Edge, Permissions::NONE)
        })
        .unwrap();
    assert_eq!(
        list.insert(Revocation::sign(&key, &extra, NOW), NOW),
        Err(TrustError::TooManyRevocations {
            max: MAX_REVOCATIONS
        })
    );
    assert_eq!(list.len(), MAX_REVOCATIONS);
    // later, when those certificates have expired, there is room again
    let later = NOW + 2 * 3_600_000;
    assert!(list
        .insert(Revocation::sign(&key, &extra, later), later)
        .is_ok());
    assert_eq!(list.len(), 1);
}

#[test]
fn tokens_are_single_use_expire_and_are_kept_hashed() {
    let mut store = TokenStore::default();
    let t = store
        .create(Tier::Tactical, Permissions::RELAY, HOUR, NOW)
        .unwrap();
    assert!(!format!("{t:?} {store:?}").contains(t.to_hex().as_str()));
    let presented = EnrollmentToken::from_hex(&t.to_hex()).unwrap();
    assert_eq!(
        store.redeem(&presented, NOW).unwrap(),
        (Tier::Tactical, Permissions::RELAY)
    );
    assert_eq!(store.redeem(&presented, NOW), Err(TrustError::TokenUsed));
    let late = store
        .create(Tier::Edge, Permissions::NONE, HOUR, NOW)
        .unwrap();
    let end = NOW + HOUR.as_millis() as u64;
    assert_eq!(
        store.redeem(&late, end + 1),
        Err(TrustError::TokenExpired { at_ms: end })
    );
    let unknown = EnrollmentToken::from_hex(&"ab".repeat(32)).unwrap();
    assert_eq!(store.redeem(&unknown, NOW), Err(TrustError::TokenUnknown));
    for bad in ["", "xyz", &"a".repeat(63), &"g".repeat(64)] {
        assert!(EnrollmentToken::from_hex(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_token_store_is_bounded() {
    let mut store = TokenStore::default();
    for _ in 0..MAX_TOKENS {
        store
            .create(Tier::Edge, Permissions::NONE, HOUR, NOW)
            .unwrap();
    }
    assert_eq!(
        store.create(Tier::Edge, Permissions::NONE, HOUR, NOW),
        Err(TrustError::TooManyTokens { max: MAX_TOKENS })
    );
    // once they expire there is room
    let later = NOW + 2 * HOUR.as_millis() as u64;
    assert!(store
        .create(Tier::Edge, Permissions::NONE, HOUR, later)
        .is_ok());
    assert_eq!(store.len(), 1);
}

proptest! {
    #[test]
    fn any_bytes_are_a_revocation_or_refused(data in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(r) = Revocation::from_bytes(&data) {
            prop_assert_eq!(r.to_bytes(), data);
        }
    }

    #[test]
    fn any_text_is_a_token_or_refused(s in ".{0,80}") {
        if let Ok(t) = EnrollmentToken::from_hex(&s) {
            let hex = t.to_hex();
            prop_assert_eq!(hex.as_str(), s.trim().to_ascii_lowercase());
        }
    }
}

//! Checking a certificate chain against a formation's genesis.

use std::time::Duration;

use super::{Certificate, Genesis, Permissions, Tier, TrustError, Verified};
use crate::NodeId;

/// Certificates in a chain, at most: the device's own and three delegates
/// above it (the authority itself is not a certificate).
pub const MAX_CHAIN: usize = 4;

/// Clocks may disagree this much: a certificate is accepted from this long
/// before its start to this long after its end.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Checks `chain` — the device's certificate first, then each issuer's, up to
/// one the formation authority signed — at `now_ms` (Unix ms):
///
/// - every certificate is for the genesis's formation, inside its validity
///   window (± [`CLOCK_SKEW`]) and signed by the next one's subject (the last
///   by the authority);
/// - a delegate (every certificate but the first) holds the enroll
///   permission, a tier above the one it granted, and every permission it
///   granted;
/// - no certificate is self-signed unless by the authority's own key;
/// - at most [`MAX_CHAIN`] certificates.
///
/// Returns what the device may do. Revocation is checked separately.
pub fn validate_chain(
    genesis: &Genesis,
    chain: &[Certificate],
    now_ms: u64,
) -> Result<Verified, TrustError> {
    let Some(first) = chain.first() else {
        return Err(TrustError::Malformed("an empty certificate chain".into()));
    };
    if chain.len() > MAX_CHAIN {
        return Err(TrustError::ChainTooLong {
            len: chain.len(),
            max: MAX_CHAIN,
        });
    }
    let skew = CLOCK_SKEW.as_millis() as u64;
    for (i, cert) in chain.iter().enumerate() {
        if cert.formation() != genesis.formation {
            return Err(TrustError::WrongFormation {
                theirs: crate::wire::sanitize_reason(cert.formation()),
            });
        }
        if cert.not_before_ms() > cert.not_after_ms() {
            return Err(TrustError::Malformed(
                "validity ends before it starts".into(),
            ));
        }
        if now_ms.saturating_add(skew) < cert.not_before_ms() {
            return Err(TrustError::NotYetValid {
                from_ms: cert.not_before_ms(),
            });
        }
        if cert.not_after_ms().saturating_add(skew) < now_ms {
            return Err(TrustError::Expired {
                at_ms: cert.not_after_ms(),
            });
        }
        let subject = cert.subject()?;
        let issuer = cert.issuer()?;
        if subject == issuer && issuer != genesis.authority {
            return Err(TrustError::SelfSigned);
        }
        let signer: NodeId = match chain.get(i + 1) {
            Some(parent) => {
                if parent.subject()? != issuer {
                    return Err(TrustError::UnknownIssuer);
                }
                check_delegation(parent, cert)?;
                issuer
            }
            None => {
                if issuer != genesis.authority {
                    return Err(TrustError::UnknownIssuer);
                }
                genesis.authority
            }
        };
        if !cert.signed_by(&signer) {
            return Err(TrustError::BadSignature);
        }
    }
    let tier = first
        .tier()
        .ok_or_else(|| TrustError::Malformed(format!("unknown tier {}", first.body.tier)))?;
    Ok(Verified {
        subject: first.subject()?,
        tier,
        permissions: first.permissions(),
        not_after_ms: chain
            .iter()
            .map(Certificate::not_after_ms)
            .min()
            .unwrap_or(0),
        chain_ids: chain.iter().map(Certificate::id).collect(),
    })
}

/// What a delegate may grant: only with the enroll permission, only tiers
/// below its own, only permissions it holds.
fn check_delegation(parent: &Certificate, child: &Certificate) -> Result<(), TrustError> {
    let unknown = |c: &Certificate| TrustError::Malformed(format!("unknown tier {}", c.body.tier));
    let (ptier, ctier): (Tier, Tier) = (
        parent.tier().ok_or_else(|| unknown(parent))?,
        child.tier().ok_or_else(|| unknown(child))?,
    );
    if !parent.permissions().contains(Permissions::ENROLL) {
        return Err(TrustError::MayNotEnroll);
    }
    if ctier <= ptier {
        return Err(TrustError::TierNotBelow {
            issuer: ptier,
            granted: ctier,
        });
    }
    if !parent.permissions().contains(child.permissions()) {
        return Err(TrustError::PermissionsExceedIssuer);
    }
    Ok(())
}

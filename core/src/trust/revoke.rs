//! Revocations: signed statements that a certificate no longer holds (the
//! layout of [`super::signed`], domain "peat-mesh revocation v1"), and the
//! bounded list a node keeps of them.
//!
//! Who may revoke: the authority and holders of [`Permissions::ADMIN`] any
//! certificate; holders of [`Permissions::ENROLL`] the certificates they
//! issued themselves. A revocation names the certificate (its id), the
//! certificate's issuer and the end of its validity, so a node can apply it
//! without holding the certificate and forget it once the certificate has
//! expired anyway.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::signed::{self, Body as _};
use super::{validate_chain, Certificate, Genesis, Permissions, TrustError, Verified, CLOCK_SKEW};
use crate::NodeId;

/// Longest encoded revocation accepted.
pub const MAX_REVOCATION_LEN: usize = 512;

/// Revocations a node keeps at most (of certificates not yet expired).
pub const MAX_REVOCATIONS: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    version: u8,
    formation: String,
    /// The revoked certificate's id ([`Certificate::id`]).
    certificate: [u8; 32],
    /// Its issuer's key.
    cert_issuer: [u8; 32],
    /// The key it certified (the revoked node).
    cert_subject: [u8; 32],
    /// Its validity's end (Unix ms): the revocation is kept until then.
    cert_not_after_ms: u64,
    revoked_at_ms: u64,
    /// Who signed this revocation.
    revoker: [u8; 32],
}

/// A signed revocation of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    body: Body,
    signature: [u8; 64],
}

impl signed::Body for Body {
    const WHAT: &'static str = "revocation";
    const DOMAIN: &'static [u8] = b"peat-mesh revocation v1\0";
    const MAX_LEN: usize = MAX_REVOCATION_LEN;
    fn version(&self) -> u8 {
        self.version
    }
    fn formation(&self) -> &str {
        &self.formation
    }
}

impl Revocation {
    /// Revokes `cert`, signed with `revoker` (the authority's key, or the
    /// node key of an admin or of the certificate's enroller).
    pub fn sign(revoker: &iroh::SecretKey, cert: &Certificate, revoked_at_ms: u64) -> Revocation {
        let body = Body {
            version: 1,
            formation: cert.formation().to_string(),
            certificate: cert.id(),
            cert_issuer: cert.body.issuer,
            cert_subject: cert.body.subject,
            cert_not_after_ms: cert.not_after_ms(),
            revoked_at_ms,
            revoker: *revoker.public().as_bytes(),
        };
        let signature = body.sign_with(revoker);
        Revocation { body, signature }
    }

    /// The revoked certificate's id.
    pub fn certificate(&self) -> [u8; 32] {
        self.body.certificate
    }

    /// The node whose certificate it revokes (as the revoker stated it; a
    /// revocation applies by certificate id, whatever this says).
    pub fn subject(&self) -> Option<NodeId> {
        NodeId::from_bytes(&self.body.cert_subject).ok()
    }

    /// When it was revoked (Unix ms, the revoker's clock).
    pub fn revoked_at_ms(&self) -> u64 {
        self.body.revoked_at_ms
    }

    /// Its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        signed::encode(&self.body, &self.signature)
    }

    /// A revocation from its bytes (well formed; not yet checked: see
    /// [`Revocation::check`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Revocation, TrustError> {
        let (body, signature) = signed::decode(bytes)?;
        Ok(Revocation { body, signature })
    }

    /// Checks who signed it: the authority, or the holder of `revoker_chain`
    /// (valid at `now_ms`) with the admin permission, or with enroll if it
    /// issued the revoked certificate itself.
    pub fn check(
        &self,
        genesis: &Genesis,
        revoker_chain: &[Certificate],
        now_ms: u64,
    ) -> Result<(), TrustError> {
        if self.body.formation != genesis.formation {
            return Err(TrustError::WrongFormation {
                theirs: crate::wire::sanitize_reason(&self.body.formation),
            });
        }
        let revoker = NodeId::from_bytes(&self.body.revoker)
            .map_err(|_| TrustError::Malformed("revoker is not an Ed25519 key".into()))?;
        if !self.body.signed_by(&revoker, &self.signature) {
            return Err(TrustError::BadSignature);
        }
        if revoker == genesis.authority {
            return Ok(());
        }
        let v = validate_chain(genesis, revoker_chain, now_ms)?;
        if v.subject != revoker {
            return Err(TrustError::UnknownIssuer);
        }
        let own = self.body.cert_issuer == self.body.revoker;
        if v.permissions.contains(Permissions::ADMIN)
            || (own && v.permissions.contains(Permissions::ENROLL))
        {
            Ok(())
        } else {
            Err(TrustError::MayNotRevoke)
        }
    }
}

/// The revocations a node knows, of certificates not yet expired: at most
/// [`MAX_REVOCATIONS`] (past it, expired ones are forgotten first; if none
/// has, a new one is refused with an error — never dropped silently).
#[derive(Debug, Default)]
pub struct Revocations {
    by_cert: HashMap<[u8; 32], Revocation>,
}

impl Revocations {
    /// Adds a checked revocation (see [`Revocation::check`]); false if it
    /// was known already.
    pub fn insert(&mut self, r: Revocation, now_ms: u64) -> Result<bool, TrustError> {
        if self.by_cert.contains_key(&r.body.certificate) {
            return Ok(false);
        }
        if self.by_cert.len() >= MAX_REVOCATIONS {
            self.forget_expired(now_ms);
            if self.by_cert.len() >= MAX_REVOCATIONS {
                return Err(TrustError::TooManyRevocations {
                    max: MAX_REVOCATIONS,
                });
            }
        }
        self.by_cert.insert(r.body.certificate, r);
        Ok(true)
    }

    /// Forgets revocations of certificates expired (past the clock skew).
    pub fn forget_expired(&mut self, now_ms: u64) {
        let skew = CLOCK_SKEW.as_millis() as u64;
        self.by_cert
            .retain(|_, r| r.body.cert_not_after_ms.saturating_add(skew) >= now_ms);
    }

    /// The revocation that applies to a verified chain, if any: one naming
    /// any certificate of the chain whose issuer is the one the revocation
    /// states (so a revocation cannot be pointed at another certificate).
    pub fn revoking(&self, v: &Verified, chain: &[Certificate]) -> Option<&Revocation> {
        chain.iter().zip(&v.chain_ids).find_map(|(cert, id)| {
            self.by_cert
                .get(id)
                .filter(|r| r.body.cert_issuer == cert.body.issuer)
        })
    }

    /// Whether the revocation of certificate `id` is held.
    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.by_cert.contains_key(id)
    }

    /// Revocations held.
    pub fn len(&self) -> usize {
        self.by_cert.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.by_cert.is_empty()
    }

    /// Every revocation held (to pass on to peers).
    pub fn iter(&self) -> impl Iterator<Item = &Revocation> {
        self.by_cert.values()
    }
}

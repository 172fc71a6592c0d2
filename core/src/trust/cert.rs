//! Membership certificates: what one says, how it is signed, its bytes.
//!
//! ```text
//! certificate = postcard(Body) ‖ 64-byte Ed25519 signature
//! signed      = "peat-mesh certificate v1\0" ‖ postcard(Body)
//! ```
//!
//! The signature covers the body with a domain prefix, so a signature made
//! for another purpose with the same key (a signed ephemeral message, a
//! signed change) can never pass as a certificate.

use serde::{Deserialize, Serialize};

use super::{Permissions, Tier, TrustError, MAX_FORMATION_ID};
use crate::NodeId;

/// Longest encoded certificate accepted (a body with the longest formation
/// id is well under it).
pub const MAX_CERT_LEN: usize = 512;

const DOMAIN: &[u8] = b"peat-mesh certificate v1\0";

/// The signed part of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Body {
    /// Format version (1).
    pub version: u8,
    pub formation: String,
    /// The device key certified (its node id).
    pub subject: [u8; 32],
    pub tier: u8,
    pub permissions: u32,
    /// Validity window, Unix ms, both ends included.
    pub not_before_ms: u64,
    pub not_after_ms: u64,
    /// Who signed: the formation authority or a holder of a certificate
    /// with the enroll permission.
    pub issuer: [u8; 32],
}

/// A membership certificate: a device key, its tier and permissions in a
/// formation for a time, signed by the authority or a delegate.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    pub(super) body: Body,
    pub(super) signature: [u8; 64],
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("formation", &self.body.formation)
            .field("subject", &crate::hex::hex(&self.body.subject[..8]))
            .field("tier", &self.tier())
            .field("permissions", &self.permissions())
            .field("not_before_ms", &self.body.not_before_ms)
            .field("not_after_ms", &self.body.not_after_ms)
            .field("issuer", &crate::hex::hex(&self.body.issuer[..8]))
            .finish()
    }
}

impl Body {
    pub(super) fn signed_bytes(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        // A struct of numbers, fixed arrays and a bounded string always encodes.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    pub(super) fn sign(self, key: &iroh::SecretKey) -> Certificate {
        let signature = key.sign(&self.signed_bytes()).to_bytes();
        Certificate {
            body: self,
            signature,
        }
    }
}

impl Certificate {
    /// The certified device (node id).
    pub fn subject(&self) -> Result<NodeId, TrustError> {
        NodeId::from_bytes(&self.body.subject)
            .map_err(|_| TrustError::Malformed("subject is not an Ed25519 key".into()))
    }

    /// The signer's key (the authority's, or a delegate's node id).
    pub fn issuer(&self) -> Result<NodeId, TrustError> {
        NodeId::from_bytes(&self.body.issuer)
            .map_err(|_| TrustError::Malformed("issuer is not an Ed25519 key".into()))
    }

    /// The formation it is for.
    pub fn formation(&self) -> &str {
        &self.body.formation
    }

    /// The tier it grants (`None` for a tier this version does not know).
    pub fn tier(&self) -> Option<Tier> {
        Tier::from_index(self.body.tier)
    }

    /// The permissions it grants.
    pub fn permissions(&self) -> Permissions {
        Permissions::from_bits(self.body.permissions)
    }

    /// Valid from (Unix ms).
    pub fn not_before_ms(&self) -> u64 {
        self.body.not_before_ms
    }

    /// Valid until (Unix ms).
    pub fn not_after_ms(&self) -> u64 {
        self.body.not_after_ms
    }

    /// A hash naming this certificate (revocations refer to it).
    pub fn id(&self) -> [u8; 32] {
        *blake3::hash(&self.to_bytes()).as_bytes()
    }

    /// Whether `issuer`'s key signed it.
    pub(super) fn signed_by(&self, issuer: &NodeId) -> bool {
        issuer
            .0
            .verify(
                &self.body.signed_bytes(),
                &iroh::Signature::from_bytes(&self.signature),
            )
            .is_ok()
    }

    /// Its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = postcard::to_allocvec(&self.body).unwrap_or_default();
        out.extend_from_slice(&self.signature);
        out
    }

    /// A certificate from its bytes: well formed and within the bounds (not
    /// yet validated: see [`super::validate_chain`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Certificate, TrustError> {
        if bytes.len() > MAX_CERT_LEN {
            return Err(TrustError::Malformed(format!(
                "certificate of {} bytes exceeds {MAX_CERT_LEN}",
                bytes.len()
            )));
        }
        if bytes.len() < 64 {
            return Err(TrustError::Malformed("certificate truncated".into()));
        }
        let (body, sig) = bytes.split_at(bytes.len() - 64);
        let body: Body = postcard::from_bytes(body)
            .map_err(|e| TrustError::Malformed(format!("certificate body: {e}")))?;
        // postcard::from_bytes ignores trailing bytes: re-encoding must give
        // back exactly the bytes read, so one certificate has one encoding
        // (and one id).
        if postcard::to_allocvec(&body).ok().as_deref() != Some(&bytes[..bytes.len() - 64]) {
            return Err(TrustError::Malformed(
                "certificate body is not in its one encoding".into(),
            ));
        }
        if body.version != 1 {
            return Err(TrustError::Malformed(format!(
                "certificate version {} (this node reads 1)",
                body.version
            )));
        }
        if body.formation.is_empty() || body.formation.len() > MAX_FORMATION_ID {
            return Err(TrustError::Malformed(format!(
                "formation id of {} bytes (1 to {MAX_FORMATION_ID})",
                body.formation.len()
            )));
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig);
        Ok(Certificate { body, signature })
    }
}

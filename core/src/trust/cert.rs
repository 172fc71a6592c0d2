//! Membership certificates: what one says, how it is signed, its bytes (the
//! layout of [`super::signed`], domain "peat-mesh certificate v1").

use serde::{Deserialize, Serialize};

use super::signed::{self, Body as _};
use super::{Permissions, Tier, TrustError};
use crate::NodeId;

/// Longest encoded certificate accepted (a body with the longest formation
/// id is well under it).
pub const MAX_CERT_LEN: usize = 512;

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

impl signed::Body for Body {
    const WHAT: &'static str = "certificate";
    const DOMAIN: &'static [u8] = b"peat-mesh certificate v1\0";
    const MAX_LEN: usize = MAX_CERT_LEN;
    fn version(&self) -> u8 {
        self.version
    }
    fn formation(&self) -> &str {
        &self.formation
    }
}

impl Body {
    pub(super) fn sign(self, key: &iroh::SecretKey) -> Certificate {
        let signature = self.sign_with(key);
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
        self.body.signed_by(issuer, &self.signature)
    }

    /// Its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        signed::encode(&self.body, &self.signature)
    }

    /// A certificate from its bytes: well formed and within the bounds (not
    /// yet validated: see [`super::validate_chain`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Certificate, TrustError> {
        let (body, signature) = signed::decode(bytes)?;
        Ok(Certificate { body, signature })
    }
}

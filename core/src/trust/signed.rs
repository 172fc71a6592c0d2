//! The one layout of every signed trust record (certificates, revocations):
//!
//! ```text
//! record = postcard(Body) ‖ 64-byte Ed25519 signature
//! signed = DOMAIN ‖ postcard(Body)
//! ```
//!
//! The domain prefix keeps a signature made for one purpose (or for another
//! part of the system with the same key) from passing as another. Decoding
//! bounds the length, requires the body's one encoding (postcard ignores
//! trailing bytes: re-encoding must give back exactly the bytes read, so one
//! record has one id), the version this node reads and a formation id within
//! [`MAX_FORMATION_ID`].

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{TrustError, MAX_FORMATION_ID};
use crate::NodeId;

/// A record's signed body.
pub(super) trait Body: Serialize + DeserializeOwned {
    /// What the record is called in errors.
    const WHAT: &'static str;
    /// The signature's domain prefix.
    const DOMAIN: &'static [u8];
    /// Longest encoded record accepted.
    const MAX_LEN: usize;
    fn version(&self) -> u8;
    fn formation(&self) -> &str;

    /// The bytes the signature covers.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Self::DOMAIN.to_vec();
        // Numbers, fixed arrays and a bounded string always encode.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Signs with `key`.
    fn sign_with(&self, key: &iroh::SecretKey) -> [u8; 64] {
        key.sign(&self.signed_bytes()).to_bytes()
    }

    /// Whether `signer`'s key made `signature` over this body.
    fn signed_by(&self, signer: &NodeId, signature: &[u8; 64]) -> bool {
        signer
            .0
            .verify(
                &self.signed_bytes(),
                &iroh::Signature::from_bytes(signature),
            )
            .is_ok()
    }
}

/// A formation id a record may carry.
pub(super) fn check_formation(formation: &str) -> Result<(), TrustError> {
    if formation.is_empty() || formation.len() > MAX_FORMATION_ID {
        return Err(TrustError::Malformed(format!(
            "formation id of {} bytes (1 to {MAX_FORMATION_ID})",
            formation.len()
        )));
    }
    Ok(())
}

/// A record's bytes.
pub(super) fn encode<B: Body>(body: &B, signature: &[u8; 64]) -> Vec<u8> {
    let mut out = postcard::to_allocvec(body).unwrap_or_default();
    out.extend_from_slice(signature);
    out
}

/// A record from its bytes (see the module docs for what is checked).
pub(super) fn decode<B: Body>(bytes: &[u8]) -> Result<(B, [u8; 64]), TrustError> {
    let what = B::WHAT;
    if bytes.len() > B::MAX_LEN {
        return Err(TrustError::Malformed(format!(
            "{what} of {} bytes exceeds {}",
            bytes.len(),
            B::MAX_LEN
        )));
    }
    if bytes.len() < 64 {
        return Err(TrustError::Malformed(format!("{what} truncated")));
    }
    let (raw, sig) = bytes.split_at(bytes.len() - 64);
    let body: B = postcard::from_bytes(raw)
        .map_err(|e| TrustError::Malformed(format!("{what} body: {e}")))?;
    if postcard::to_allocvec(&body).ok().as_deref() != Some(raw) {
        return Err(TrustError::Malformed(format!(
            "{what} body is not in its one encoding"
        )));
    }
    if body.version() != 1 {
        return Err(TrustError::Malformed(format!(
            "{what} version {} (this node reads 1)",
            body.version()
        )));
    }
    check_formation(body.formation())?;
    let mut signature = [0u8; 64];
    signature.copy_from_slice(sig);
    Ok((body, signature))
}

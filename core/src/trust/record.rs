//! What travels between nodes: a certificate chain (in admission) and a
//! revocation with its revoker's chain (when revocations spread), and their
//! bounded decoders.

use serde::{Deserialize, Serialize};

use super::MAX_REVOCATION_LEN;
use super::{Certificate, Genesis, Revocation, TrustError, MAX_CERT_LEN, MAX_CHAIN};

/// Longest encoded [`RevocationRecord`]: a revocation and a full chain, with
/// their length prefixes.
pub const MAX_RECORD_LEN: usize = MAX_REVOCATION_LEN + MAX_CHAIN * (MAX_CERT_LEN + 2) + 8;

/// A chain from its certificates' bytes (at most [`MAX_CHAIN`], each well
/// formed; not yet validated: see [`super::validate_chain`]).
pub fn decode_chain(raw: &[Vec<u8>]) -> Result<Vec<Certificate>, TrustError> {
    if raw.len() > MAX_CHAIN {
        return Err(TrustError::ChainTooLong {
            len: raw.len(),
            max: MAX_CHAIN,
        });
    }
    raw.iter().map(|c| Certificate::from_bytes(c)).collect()
}

/// A chain's certificates' bytes.
pub fn encode_chain(chain: &[Certificate]) -> Vec<Vec<u8>> {
    chain.iter().map(Certificate::to_bytes).collect()
}

#[derive(Serialize, Deserialize)]
struct Wire {
    revocation: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

/// A revocation as it spreads: with the chain of its revoker (empty when the
/// authority signed it), so any member can check it without knowing the
/// revoker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    pub revocation: Revocation,
    pub revoker_chain: Vec<Certificate>,
}

impl RevocationRecord {
    /// Its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(&Wire {
            revocation: self.revocation.to_bytes(),
            chain: encode_chain(&self.revoker_chain),
        })
        .unwrap_or_default()
    }

    /// A record from its bytes: bounded, in its one encoding, each part well
    /// formed (not yet checked: see [`RevocationRecord::check`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<RevocationRecord, TrustError> {
        if bytes.len() > MAX_RECORD_LEN {
            return Err(TrustError::Malformed(format!(
                "revocation record of {} bytes exceeds {MAX_RECORD_LEN}",
                bytes.len()
            )));
        }
        let wire: Wire = postcard::from_bytes(bytes)
            .map_err(|e| TrustError::Malformed(format!("revocation record: {e}")))?;
        if postcard::to_allocvec(&wire).ok().as_deref() != Some(bytes) {
            return Err(TrustError::Malformed(
                "revocation record is not in its one encoding".into(),
            ));
        }
        Ok(RevocationRecord {
            revocation: Revocation::from_bytes(&wire.revocation)?,
            revoker_chain: decode_chain(&wire.chain)?,
        })
    }

    /// Checks the revocation's signature and its revoker's right to revoke
    /// ([`Revocation::check`]) at `now_ms`.
    pub fn check(&self, genesis: &Genesis, now_ms: u64) -> Result<(), TrustError> {
        self.revocation.check(genesis, &self.revoker_chain, now_ms)
    }
}

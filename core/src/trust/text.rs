//! Trust records as text, for configuration files, command lines and the
//! language bindings: certificates and revocation records in hex, a chain as
//! its certificates' hex joined by commas, trust settings as JSON.

use serde::Deserialize;

use super::{AdmissionMode, Certificate, Genesis, RevocationRecord, TrustConfig, TrustError};
use crate::hex::{hex, unhex};
use crate::NodeId;

fn bytes(s: &str, what: &str) -> Result<Vec<u8>, TrustError> {
    unhex(s).ok_or_else(|| TrustError::Malformed(format!("{what} is not hex")))
}

impl Certificate {
    /// The certificate's bytes in lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.to_bytes())
    }

    /// A certificate from [`Certificate::to_hex`] (either case).
    pub fn from_hex(s: &str) -> Result<Certificate, TrustError> {
        Certificate::from_bytes(&bytes(s, "a certificate")?)
    }
}

impl RevocationRecord {
    /// The record's bytes in lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.to_bytes())
    }

    /// A record from [`RevocationRecord::to_hex`] (either case).
    pub fn from_hex(s: &str) -> Result<RevocationRecord, TrustError> {
        RevocationRecord::from_bytes(&bytes(s, "a revocation record")?)
    }
}

/// A chain as text: its certificates' hex, own first, joined by commas.
pub fn chain_to_text(chain: &[Certificate]) -> String {
    chain
        .iter()
        .map(Certificate::to_hex)
        .collect::<Vec<_>>()
        .join(",")
}

/// A chain from [`chain_to_text`]; empty text is an empty chain.
pub fn chain_from_text(s: &str) -> Result<Vec<Certificate>, TrustError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = s.split(',').collect();
    if parts.len() > super::MAX_CHAIN {
        return Err(TrustError::ChainTooLong {
            len: parts.len(),
            max: super::MAX_CHAIN,
        });
    }
    parts.into_iter().map(Certificate::from_hex).collect()
}

/// An authority's public key from hex.
pub fn authority_from_hex(s: &str) -> Result<NodeId, TrustError> {
    let b: [u8; 32] = bytes(s, "the authority key")?
        .try_into()
        .map_err(|_| TrustError::Malformed("the authority key is 32 bytes".into()))?;
    NodeId::from_bytes(&b)
        .map_err(|_| TrustError::Malformed("the authority key is not an Ed25519 public key".into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustJson {
    authority: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    chain: Vec<String>,
}

impl TrustConfig {
    /// Trust settings of `formation` from JSON: `{"authority": "<64 hex
    /// digits>", "mode": "certificate" | "both" | "secret" (default
    /// "certificate"), "chain": ["<certificate hex>", …]}` (chain optional:
    /// the node's own certificate first). Unknown fields are refused.
    pub fn from_json(formation: &str, text: &str) -> Result<TrustConfig, TrustError> {
        let j: TrustJson = serde_json::from_str(text)
            .map_err(|e| TrustError::Malformed(format!("trust settings: {e}")))?;
        let mode = match j.mode.as_deref() {
            None => AdmissionMode::Certificate,
            Some(m) => AdmissionMode::from_name(m).ok_or_else(|| {
                TrustError::Malformed(format!(
                    "admission mode {m:?} (secret, certificate or both)"
                ))
            })?,
        };
        if j.chain.len() > super::MAX_CHAIN {
            return Err(TrustError::ChainTooLong {
                len: j.chain.len(),
                max: super::MAX_CHAIN,
            });
        }
        super::signed::check_formation(formation)?;
        Ok(TrustConfig {
            genesis: Genesis {
                formation: formation.to_string(),
                authority: authority_from_hex(&j.authority)?,
            },
            mode,
            chain: j
                .chain
                .iter()
                .map(|c| Certificate::from_hex(c))
                .collect::<Result<_, _>>()?,
        })
    }
}

//! Enrollment requests: a device asks to join, signed with its own key (the
//! layout of [`super::signed`], domain "peat-mesh enrollment request v1").
//!
//! Online, the device sends one to an enroller during admission, carrying the
//! one-time token the enroller handed out (over the connection's encryption;
//! the enroller keeps only the token's hash); the enroller answers with a
//! certificate chain. Offline, a request without a token goes to the
//! authority's machine (a file, a QR code) and the operator decides.

use serde::{Deserialize, Serialize};

use super::signed::{self, Body as _};
use super::{EnrollmentToken, TrustError, CLOCK_SKEW};
use crate::NodeId;

/// Longest encoded request accepted.
pub const MAX_REQUEST_LEN: usize = 256;

/// How old a request may be when it is answered (an offline one waits for
/// its operator; an online one is answered at once).
pub const MAX_REQUEST_AGE_MS: u64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    version: u8,
    formation: String,
    /// The device's key (its node id), which signs the request.
    subject: [u8; 32],
    requested_at_ms: u64,
    /// The one-time token, when the request goes to an online enroller.
    token: Option<[u8; 32]>,
}

impl signed::Body for Body {
    const WHAT: &'static str = "enrollment request";
    const DOMAIN: &'static [u8] = b"peat-mesh enrollment request v1\0";
    const MAX_LEN: usize = MAX_REQUEST_LEN;
    fn version(&self) -> u8 {
        self.version
    }
    fn formation(&self) -> &str {
        &self.formation
    }
}

/// A device's signed request to join a formation.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentRequest {
    body: Body,
    signature: [u8; 64],
}

impl std::fmt::Debug for EnrollmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentRequest")
            .field("formation", &self.body.formation)
            .field("subject", &crate::hex::hex(&self.body.subject[..8]))
            .field("requested_at_ms", &self.body.requested_at_ms)
            .field("token", &self.body.token.map(|_| "<redacted>"))
            .finish()
    }
}

impl EnrollmentRequest {
    /// A request of the device holding `key` to join `formation`, with a
    /// token for an online enroller (`None` for the authority offline).
    pub fn sign(
        key: &iroh::SecretKey,
        formation: &str,
        token: Option<&EnrollmentToken>,
        now_ms: u64,
    ) -> Result<EnrollmentRequest, TrustError> {
        signed::check_formation(formation)?;
        let body = Body {
            version: 1,
            formation: formation.to_string(),
            subject: *key.public().as_bytes(),
            requested_at_ms: now_ms,
            token: token.map(|t| *t.secret()),
        };
        let signature = body.sign_with(key);
        Ok(EnrollmentRequest { body, signature })
    }

    /// Its bytes (they hold the token, if any: keep them as secret as it).
    pub fn to_bytes(&self) -> Vec<u8> {
        signed::encode(&self.body, &self.signature)
    }

    /// A request from its bytes (well formed; not yet checked).
    pub fn from_bytes(bytes: &[u8]) -> Result<EnrollmentRequest, TrustError> {
        let (body, signature) = signed::decode(bytes)?;
        Ok(EnrollmentRequest { body, signature })
    }

    /// The device asking.
    pub fn subject(&self) -> Result<NodeId, TrustError> {
        NodeId::from_bytes(&self.body.subject)
            .map_err(|_| TrustError::Malformed("subject is not an Ed25519 key".into()))
    }

    /// The formation asked for.
    pub fn formation(&self) -> &str {
        &self.body.formation
    }

    /// The token carried, if any.
    pub fn token(&self) -> Option<EnrollmentToken> {
        self.body.token.map(EnrollmentToken::from_secret)
    }

    /// Checks that the device signed it for `formation`, and that it is
    /// neither from the future (past the clock skew) nor older than
    /// [`MAX_REQUEST_AGE_MS`] at `now_ms`.
    pub fn check(&self, formation: &str, now_ms: u64) -> Result<NodeId, TrustError> {
        if self.body.formation != formation {
            return Err(TrustError::WrongFormation {
                theirs: crate::wire::sanitize_reason(&self.body.formation),
            });
        }
        let subject = self.subject()?;
        if !self.body.signed_by(&subject, &self.signature) {
            return Err(TrustError::BadSignature);
        }
        let skew = CLOCK_SKEW.as_millis() as u64;
        if self.body.requested_at_ms > now_ms.saturating_add(skew) {
            return Err(TrustError::NotYetValid {
                from_ms: self.body.requested_at_ms,
            });
        }
        if now_ms.saturating_sub(self.body.requested_at_ms) > MAX_REQUEST_AGE_MS {
            return Err(TrustError::Expired {
                at_ms: self.body.requested_at_ms.saturating_add(MAX_REQUEST_AGE_MS),
            });
        }
        Ok(subject)
    }
}

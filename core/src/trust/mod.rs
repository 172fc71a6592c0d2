//! Formation trust: an authority key, membership certificates it (or a
//! delegate) issues to device keys, and the checks a chain of them must pass.
//!
//! A formation created with an authority has a [`Genesis`]: its id and the
//! authority's Ed25519 public key. The [`Authority`] (the holder of the
//! private key, online or on an offline machine) issues [`Certificate`]s:
//! subject key (a node id), [`Tier`], [`Permissions`], validity window,
//! issuer, signature. A holder of the [`Permissions::ENROLL`] permission may
//! issue certificates of a lower tier with permissions it holds itself
//! ([`issue`]); a chain is checked up to the authority by
//! [`validate_chain`], and a self-signed certificate is never trusted unless
//! it is the authority's own key.
//!
//! Revocations ([`Revocation`], kept in a bounded [`Revocations`] list) are
//! signed by the authority, an admin, or the enroller of the certificate
//! they revoke; enrollment tokens ([`TokenStore`]) are single-use, expire,
//! carry the tier they grant and are kept only as hashes.
//!
//! This module is the decision; admission with certificates, enrollment
//! requests and the spreading of revocations use it.

mod cert;
mod chain;
mod config;
mod enroll;
mod record;
#[cfg(test)]
mod record_tests;
mod revoke;
mod signed;
#[cfg(test)]
mod tests;
mod text;
mod tokens;

use std::time::Duration;

use thiserror::Error;
use zeroize::Zeroizing;

pub use cert::{Certificate, MAX_CERT_LEN};
pub use chain::{validate_chain, CLOCK_SKEW, MAX_CHAIN};
pub use config::{AdmissionMode, MembershipStatus, TrustConfig};
pub use enroll::{EnrollmentRequest, MAX_REQUEST_AGE_MS, MAX_REQUEST_LEN};
pub use record::{decode_chain, encode_chain, RevocationRecord, MAX_RECORD_LEN};
pub use revoke::{Revocation, Revocations, MAX_REVOCATIONS, MAX_REVOCATION_LEN};
pub use text::{authority_from_hex, chain_from_text, chain_to_text};
pub use tokens::{EnrollmentToken, TokenStore, MAX_TOKENS};

use crate::NodeId;

/// Longest formation id in a certificate (bytes).
pub const MAX_FORMATION_ID: usize = 64;

/// Where a device sits in the formation: a delegate may only issue
/// certificates of tiers below its own. Ordered from the highest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Tier {
    Enterprise,
    Regional,
    Tactical,
    Edge,
}

impl Tier {
    /// Every tier, highest first.
    pub const ALL: [Tier; 4] = [Tier::Enterprise, Tier::Regional, Tier::Tactical, Tier::Edge];

    /// The lower-case name (`enterprise`, `regional`, `tactical`, `edge`).
    pub fn name(self) -> &'static str {
        match self {
            Tier::Enterprise => "enterprise",
            Tier::Regional => "regional",
            Tier::Tactical => "tactical",
            Tier::Edge => "edge",
        }
    }

    /// Parses [`Tier::name`].
    pub fn from_name(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name() == s)
    }

    fn from_index(i: u8) -> Option<Tier> {
        Tier::ALL.get(i as usize).copied()
    }
}

/// What a certificate lets its device do, as a set.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Permissions(u32);

impl Permissions {
    /// None.
    pub const NONE: Permissions = Permissions(0);
    /// Forward traffic for others (relay).
    pub const RELAY: Permissions = Permissions(1);
    /// Issue certificates of lower tiers (enroll devices).
    pub const ENROLL: Permissions = Permissions(1 << 1);
    /// Revoke certificates and change formation settings.
    pub const ADMIN: Permissions = Permissions(1 << 2);

    /// From raw bits (unknown bits are kept: a newer issuer's permissions
    /// still have to be held by its own issuer).
    pub fn from_bits(bits: u32) -> Permissions {
        Permissions(bits)
    }

    /// The raw bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Both sets (`|` in a `const`).
    pub const fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// Whether every permission of `other` is in `self`.
    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Permissions {
    type Output = Permissions;
    fn bitor(self, rhs: Permissions) -> Permissions {
        Permissions(self.0 | rhs.0)
    }
}

/// A formation's root of trust: its id and the authority's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    pub formation: String,
    pub authority: NodeId,
}

/// What a valid chain says of its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub subject: NodeId,
    pub tier: Tier,
    pub permissions: Permissions,
    /// When the first certificate of the chain expires (Unix ms).
    pub not_after_ms: u64,
    /// The ids of the chain's certificates (a revocation of any of them
    /// revokes the device).
    pub chain_ids: Vec<[u8; 32]>,
}

/// Why a certificate or chain is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrustError {
    #[error("malformed certificate: {0}")]
    Malformed(String),
    #[error("certificate expired at {at_ms} (Unix ms)")]
    Expired { at_ms: u64 },
    #[error("certificate not valid before {from_ms} (Unix ms)")]
    NotYetValid { from_ms: u64 },
    #[error("certificate for another formation ({theirs:?})")]
    WrongFormation { theirs: String },
    #[error("certificate issued by a key that is neither the authority nor the next certificate's subject")]
    UnknownIssuer,
    #[error("self-signed certificate (only the authority's own key may be)")]
    SelfSigned,
    #[error("certificate signature does not verify")]
    BadSignature,
    #[error("certificate chain of {len} exceeds {max}")]
    ChainTooLong { len: usize, max: usize },
    #[error("issuer lacks the enroll permission")]
    MayNotEnroll,
    #[error("a {issuer:?} issuer may only grant lower tiers, not {granted:?}")]
    TierNotBelow { issuer: Tier, granted: Tier },
    #[error("certificate grants permissions its issuer does not hold")]
    PermissionsExceedIssuer,
    #[error(
        "the revoker may not revoke this certificate (admin revokes any, enroll only its own)"
    )]
    MayNotRevoke,
    #[error("revocation list full ({max} of unexpired certificates)")]
    TooManyRevocations { max: usize },
    #[error("unknown enrollment token")]
    TokenUnknown,
    #[error("enrollment token already used")]
    TokenUsed,
    #[error("enrollment token expired at {at_ms} (Unix ms)")]
    TokenExpired { at_ms: u64 },
    #[error("too many enrollment tokens outstanding ({max})")]
    TooManyTokens { max: usize },
}

/// What a new certificate grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub subject: NodeId,
    pub tier: Tier,
    pub permissions: Permissions,
    /// Valid from (Unix ms).
    pub not_before_ms: u64,
    /// Valid for this long from `not_before_ms`.
    pub valid_for: Duration,
}

/// Signs a certificate for `grant` in `formation` with `issuer` — the
/// authority's key, or a delegate's node key (whose own chain must allow it:
/// [`validate_chain`] checks that when the certificate is used).
pub fn issue(
    issuer: &iroh::SecretKey,
    formation: &str,
    grant: &Grant,
) -> Result<Certificate, TrustError> {
    signed::check_formation(formation)?;
    let body = cert::Body {
        version: 1,
        formation: formation.to_string(),
        subject: *grant.subject.as_bytes(),
        tier: grant.tier as u8,
        permissions: grant.permissions.bits(),
        not_before_ms: grant.not_before_ms,
        not_after_ms: grant
            .not_before_ms
            .saturating_add(grant.valid_for.as_millis().min(u64::MAX as u128) as u64),
        issuer: *issuer.public().as_bytes(),
    };
    Ok(body.sign(issuer))
}

/// The holder of a formation's authority key. Its `Debug` never shows the key.
pub struct Authority {
    key: Zeroizing<[u8; 32]>,
    genesis: Genesis,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("genesis", &self.genesis)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Authority {
    /// A new formation authority with a fresh key.
    pub fn generate(formation: &str) -> Result<Authority, TrustError> {
        let key = Zeroizing::new(rand::random::<[u8; 32]>());
        Authority::from_secret(formation, *key)
    }

    /// The authority of `formation` holding `secret` (32 bytes).
    pub fn from_secret(formation: &str, secret: [u8; 32]) -> Result<Authority, TrustError> {
        signed::check_formation(formation)?;
        let key = Zeroizing::new(secret);
        let public = iroh::SecretKey::from_bytes(&key).public();
        Ok(Authority {
            key,
            genesis: Genesis {
                formation: formation.to_string(),
                authority: NodeId(public),
            },
        })
    }

    /// The formation's genesis (what every member needs to check chains).
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The secret key's bytes, to store (owner-only) and load back.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.key.clone()
    }

    /// Revokes `cert` at `now_ms` (the authority may revoke any certificate
    /// of its formation).
    pub fn revoke(&self, cert: &Certificate, now_ms: u64) -> Revocation {
        Revocation::sign(&iroh::SecretKey::from_bytes(&self.key), cert, now_ms)
    }

    /// Issues a certificate (any tier, any permissions).
    pub fn issue(&self, grant: &Grant) -> Result<Certificate, TrustError> {
        issue(
            &iroh::SecretKey::from_bytes(&self.key),
            &self.genesis.formation,
            grant,
        )
    }
}

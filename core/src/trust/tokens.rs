//! One-time enrollment tokens: what a new device presents to join.
//!
//! An enroller (the authority's machine, or a node holding the enroll
//! permission) makes a token for a tier and permissions with a lifetime and
//! hands it to the device out of band. The enroller keeps only its BLAKE3
//! hash, so a copy of its table lets no one enroll. A token is redeemed once:
//! a second use, an expired token and an unknown one are refused, each with
//! its own error.

use std::collections::HashMap;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{Permissions, Tier, TrustError};

/// Tokens an enroller keeps at most (unredeemed and unexpired; past it,
/// expired and used ones are forgotten first, and if none is, a new one is
/// refused with an error).
pub const MAX_TOKENS: usize = 4096;

/// The secret a device presents; shown as 64 hex digits. Its `Debug` does not
/// show it.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentToken(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrollmentToken(<redacted>)")
    }
}

impl EnrollmentToken {
    /// The 64 hex digits to hand to the device.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::hex::hex(&self.0[..]))
    }

    /// A token from its 64 hex digits.
    pub fn from_hex(s: &str) -> Result<EnrollmentToken, TrustError> {
        let s = s.trim();
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TrustError::Malformed(
                "an enrollment token is 64 hex digits".into(),
            ));
        }
        let mut out = Zeroizing::new([0u8; 32]);
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| {
                TrustError::Malformed("an enrollment token is 64 hex digits".into())
            })?;
        }
        Ok(EnrollmentToken(out))
    }

    /// A token from its 32 bytes (as an enrollment request carries it).
    pub(super) fn from_secret(bytes: [u8; 32]) -> EnrollmentToken {
        EnrollmentToken(Zeroizing::new(bytes))
    }

    pub(super) fn secret(&self) -> &[u8; 32] {
        &self.0
    }

    fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.0[..]).as_bytes()
    }
}

/// What a token grants, and its state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    tier: Tier,
    permissions: Permissions,
    expires_ms: u64,
    used: bool,
}

/// An enroller's tokens, by hash.
#[derive(Debug, Default)]
pub struct TokenStore {
    by_hash: HashMap<[u8; 32], Entry>,
}

impl TokenStore {
    /// Makes a token granting `tier` and `permissions`, redeemable until
    /// `now_ms + ttl`.
    pub fn create(
        &mut self,
        tier: Tier,
        permissions: Permissions,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<EnrollmentToken, TrustError> {
        if self.by_hash.len() >= MAX_TOKENS {
            self.by_hash
                .retain(|_, e| !e.used && e.expires_ms >= now_ms);
            if self.by_hash.len() >= MAX_TOKENS {
                return Err(TrustError::TooManyTokens { max: MAX_TOKENS });
            }
        }
        let token = EnrollmentToken(Zeroizing::new(rand::random::<[u8; 32]>()));
        let expires_ms = now_ms.saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64);
        self.by_hash.insert(
            token.hash(),
            Entry {
                tier,
                permissions,
                expires_ms,
                used: false,
            },
        );
        Ok(token)
    }

    /// Redeems `token` once: what it grants, or why not.
    pub fn redeem(
        &mut self,
        token: &EnrollmentToken,
        now_ms: u64,
    ) -> Result<(Tier, Permissions), TrustError> {
        let entry = self
            .by_hash
            .get_mut(&token.hash())
            .ok_or(TrustError::TokenUnknown)?;
        if entry.used {
            return Err(TrustError::TokenUsed);
        }
        if entry.expires_ms < now_ms {
            return Err(TrustError::TokenExpired {
                at_ms: entry.expires_ms,
            });
        }
        entry.used = true;
        Ok((entry.tier, entry.permissions))
    }

    /// The store's bytes, to keep across restarts (hashes only, never a token).
    pub fn to_bytes(&self) -> Vec<u8> {
        let entries: Vec<(&[u8; 32], &Entry)> = self.by_hash.iter().collect();
        postcard::to_allocvec(&entries).unwrap_or_default()
    }

    /// A store from [`TokenStore::to_bytes`]; at most [`MAX_TOKENS`] entries.
    pub fn from_bytes(bytes: &[u8]) -> Result<TokenStore, TrustError> {
        let entries: Vec<([u8; 32], Entry)> = postcard::from_bytes(bytes)
            .map_err(|e| TrustError::Malformed(format!("token store: {e}")))?;
        if entries.len() > MAX_TOKENS {
            return Err(TrustError::TooManyTokens { max: MAX_TOKENS });
        }
        Ok(TokenStore {
            by_hash: entries.into_iter().collect(),
        })
    }

    /// Tokens held (redeemed ones until they are forgotten).
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

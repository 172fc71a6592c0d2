//! Enrollment at admission, both roles.
//!
//! The enroller (a node whose own chain holds the enroll permission) makes
//! one-time tokens ([`Enrollment::create_token`]) and answers a device's
//! signed request, made during admission, with a certificate for the tier
//! and permissions its token grants, signed with the enroller's node key and
//! followed by the enroller's own chain. The token is spent when the answer
//! is made (and stored spent before it is sent: a crash cannot make it
//! reusable). The device ([`Enrollment::start`]) sends its request instead
//! of a chain when it has none, keeps the chain it is answered with, or
//! remembers why it was refused.

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::unix_ms;
use crate::locks::LockExt;
use crate::trust::{
    issue, validate_chain, Certificate, EnrollmentRequest, EnrollmentToken, Genesis, Grant,
    Permissions, Tier, TokenStore, MAX_CHAIN,
};
use crate::NodeId;

/// How long a certificate an enroller issues is valid (at most as long as
/// the enroller's own chain); renew by enrolling again.
pub const ENROLLED_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where this node's own enrollment stands.
#[derive(Clone)]
pub(crate) enum DeviceState {
    Idle,
    /// A request goes out with the next admission this node starts with
    /// this enroller (only with it: the token is a secret).
    Pending(EnrollmentToken, NodeId),
    /// The last request was refused, with the enroller's reason.
    Denied(String),
}

/// Both roles' state.
pub(crate) struct Enrollment {
    key: iroh::SecretKey,
    pub tokens: Mutex<TokenStore>,
    pub state: Mutex<DeviceState>,
}

impl Enrollment {
    pub fn new(key: iroh::SecretKey, tokens: TokenStore) -> Enrollment {
        Enrollment {
            key,
            tokens: Mutex::new(tokens),
            state: Mutex::new(DeviceState::Idle),
        }
    }

    /// What an enroller holding `own` (its valid chain) may grant: its
    /// chain must have room for one more certificate, hold the enroll
    /// permission, and the tier must be below its own.
    fn may_grant(
        genesis: &Genesis,
        own: &[Certificate],
        tier: Tier,
        permissions: Permissions,
    ) -> Result<(), String> {
        let v = validate_chain(genesis, own, unix_ms())
            .map_err(|e| format!("this node's own chain: {e}"))?;
        if !v.permissions.contains(Permissions::ENROLL) {
            return Err("this node's certificate lacks the enroll permission".into());
        }
        if tier <= v.tier {
            return Err(format!(
                "a {} node may only enroll lower tiers, not {}",
                v.tier.name(),
                tier.name()
            ));
        }
        if !v.permissions.contains(permissions) {
            return Err("the token would grant permissions this node does not hold".into());
        }
        if own.len() >= MAX_CHAIN {
            return Err(format!(
                "this node's chain is already {MAX_CHAIN} long: it cannot delegate"
            ));
        }
        Ok(())
    }

    /// A token for `tier` and `permissions`, redeemable for `ttl` (checked
    /// against what this node may grant at once, so a device never holds a
    /// token that cannot work).
    pub fn create_token(
        &self,
        genesis: &Genesis,
        own: &[Certificate],
        tier: Tier,
        permissions: Permissions,
        ttl: Duration,
    ) -> Result<EnrollmentToken, String> {
        Self::may_grant(genesis, own, tier, permissions)?;
        self.tokens
            .locked()
            .create(tier, permissions, ttl, unix_ms())
            .map_err(|e| e.to_string())
    }

    /// Answers `peer`'s request: its chain, or why not. `save` stores the
    /// tokens (the spent one) before the answer goes out.
    pub fn answer(
        &self,
        genesis: &Genesis,
        own: &[Certificate],
        peer: &NodeId,
        request: &[u8],
        save: impl FnOnce(&TokenStore) -> crate::Result<()>,
    ) -> Result<Vec<Certificate>, String> {
        let now = unix_ms();
        let request = EnrollmentRequest::from_bytes(request).map_err(|e| e.to_string())?;
        let subject = request
            .check(&genesis.formation, now)
            .map_err(|e| e.to_string())?;
        if subject != *peer {
            return Err("the request is signed by another key than the peer's".into());
        }
        let token = request
            .token()
            .ok_or("the request carries no enrollment token")?;
        let mut tokens = self.tokens.locked();
        let (tier, permissions) = tokens.redeem(&token, now).map_err(|e| e.to_string())?;
        save(&tokens).map_err(|e| format!("the spent token could not be stored: {e}"))?;
        drop(tokens);
        Self::may_grant(genesis, own, tier, permissions)?;
        let own_end = validate_chain(genesis, own, now)
            .map(|v| v.not_after_ms)
            .unwrap_or(now);
        let valid_for = Duration::from_millis(
            own_end
                .saturating_sub(now)
                .min(ENROLLED_VALIDITY.as_millis() as u64),
        );
        let cert = issue(
            &self.key,
            &genesis.formation,
            &Grant {
                subject,
                tier,
                permissions,
                not_before_ms: now,
                valid_for,
            },
        )
        .map_err(|e| e.to_string())?;
        let mut chain = vec![cert];
        chain.extend_from_slice(own);
        Ok(chain)
    }

    /// The request to send to `peer` instead of a chain, when enrolling
    /// with it.
    pub fn request(&self, formation: &str, peer: &NodeId) -> Option<Vec<u8>> {
        match &*self.state.locked() {
            DeviceState::Pending(token, enroller) if enroller == peer => {
                EnrollmentRequest::sign(&self.key, formation, Some(token), unix_ms())
                    .ok()
                    .map(|r| r.to_bytes())
            }
            _ => None,
        }
    }
}

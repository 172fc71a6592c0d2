//! Membership: this node's certificate chain and status, the chains of its
//! peers, enrolling devices and being enrolled, and revoking certificates
//! ([`crate::trust`]).

use std::time::Duration;

use super::Node;
use crate::clock::unix_ms;
use crate::config::PeerAddr;
use crate::discovery::Source;
use crate::error::{Error, Result};
use crate::trust::{
    AdmissionMode, Certificate, EnrollmentToken, MembershipStatus, Permissions, Revocation,
    RevocationRecord, Tier,
};
use crate::NodeId;

impl Node {
    /// What admission asks of peers ([`crate::trust::TrustConfig::mode`]).
    pub fn admission_mode(&self) -> AdmissionMode {
        self.inner.ctx.gate.mode()
    }

    /// Where this node stands: no trust settings, no certificate yet, a
    /// valid chain (with its tier and permissions), revoked, or out of its
    /// validity window.
    pub fn membership(&self) -> MembershipStatus {
        self.inner.ctx.gate.status()
    }

    /// This node's certificate chain (its own certificate first).
    pub fn certificate_chain(&self) -> Vec<Certificate> {
        self.inner.ctx.gate.chain()
    }

    /// Replaces this node's certificate chain (a renewed certificate, say)
    /// and stores it; used from the next admission on. The chain must
    /// certify this node's key and lead to the formation authority.
    pub fn set_certificate_chain(&self, chain: Vec<Certificate>) -> Result<()> {
        self.check_open()?;
        self.inner.ctx.gate.set_chain(chain)
    }

    /// The chain a connected peer showed at admission (when this node checks
    /// certificates), its own certificate first.
    pub fn peer_certificate_chain(&self, peer: &NodeId) -> Option<Vec<Certificate>> {
        let conn = self.inner.connections.get(peer)?;
        conn.membership().map(|m| m.chain.clone())
    }

    /// Revokes `certificate` with this node's key: allowed to an admin, and
    /// to the certificate's own issuer if it may enroll. The revocation is
    /// kept, spreads to every peer (and theirs), and every node that learns
    /// it closes its connections with the certificate's holder and refuses
    /// it from then on. False if the certificate was revoked already.
    pub async fn revoke(&self, certificate: &Certificate) -> Result<bool> {
        self.check_open()?;
        let record = RevocationRecord {
            revocation: Revocation::sign(&self.inner.key, certificate, unix_ms()),
            revoker_chain: self.certificate_chain(),
        };
        self.add_revocation(record).await
    }

    /// Adds a revocation made elsewhere (by the authority, offline: an empty
    /// revoker chain; or by a member: its chain), checked first; it spreads
    /// and is enforced like one made here. False if known already.
    pub async fn add_revocation(&self, record: RevocationRecord) -> Result<bool> {
        self.check_open()?;
        let gate = &self.inner.ctx.gate;
        if gate.genesis().is_none() {
            return Err(Error::InvalidArgument(
                "the node has no trust settings (open it with a genesis)".into(),
            ));
        }
        // The enforcer announces it (`PeerEvent::Revoked`), then cuts the
        // holder off: in that order for every revocation, wherever learnt.
        gate.learn(record, None).await
    }

    /// A one-time enrollment token for a device to join with ([`Node::enroll`]):
    /// it grants `tier` (below this node's own) and `permissions` (a subset of
    /// this node's), is redeemable for `ttl`, and is kept only as a hash (in
    /// `trust.redb`: spent stays spent across restarts). Hand its hex to the
    /// device out of band. This node's chain must hold the enroll permission.
    pub fn create_enrollment_token(
        &self,
        tier: Tier,
        permissions: Permissions,
        ttl: Duration,
    ) -> Result<EnrollmentToken> {
        self.check_open()?;
        self.inner.ctx.gate.create_token(tier, permissions, ttl)
    }

    /// Enrolls with `enroller` (a node holding the enroll permission) using
    /// its one-time `token`: dials it, sends a request signed with this
    /// node's key (to it alone), and keeps the certificate chain it answers
    /// with (stored; [`Node::membership`] then says valid). The connection
    /// stays up, as with [`Node::connect`]. A refusal (a used, expired or
    /// unknown token, say) is an `AdmissionRefused` error with the reason,
    /// and [`Node::membership`] says denied. Refused if this node already
    /// holds a valid chain, or does not admit by certificate.
    pub async fn enroll(
        &self,
        enroller: &PeerAddr,
        token: EnrollmentToken,
    ) -> Result<Vec<Certificate>> {
        self.check_open()?;
        let gate = &self.inner.ctx.gate;
        if let MembershipStatus::Valid(_) = gate.status() {
            return Err(Error::InvalidArgument(
                "this node already holds a valid certificate chain".into(),
            ));
        }
        gate.start_enrollment(token, enroller.id)?;
        let dialled = self.inner.manager.dial(enroller).await;
        if let Err(e) = dialled {
            gate.enrollment_failed(e.to_string());
            return Err(e);
        }
        self.inner.manager.want(enroller.clone(), Source::Direct);
        match gate.status() {
            MembershipStatus::Valid(_) => Ok(gate.chain()),
            other => {
                let reason =
                    format!("the enroller admitted this node without enrolling it ({other:?})");
                gate.enrollment_failed(reason.clone());
                Err(Error::Protocol(reason))
            }
        }
    }

    /// Revocations this node holds (of certificates not yet expired).
    pub fn revocation_count(&self) -> usize {
        self.inner.ctx.gate.revocation_count()
    }

    /// Revocations peers sent that did not check out (forged, stale or
    /// malformed), since open.
    pub fn refused_revocations(&self) -> u64 {
        self.inner.ctx.gate.refused_revocations()
    }
}

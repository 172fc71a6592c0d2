//! Membership: this node's certificate chain and status, the chains of its
//! peers, and revoking certificates ([`crate::trust`]).

use super::Node;
use crate::clock::unix_ms;
use crate::error::{Error, Result};
use crate::trust::{AdmissionMode, Certificate, MembershipStatus, Revocation, RevocationRecord};
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

//! How a node uses trust: the admission mode and its own membership.

use super::{Certificate, Genesis};

/// What admission asks of a peer (and shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdmissionMode {
    /// Proof of the formation secret only (nodes without trust settings).
    #[default]
    Secret,
    /// A membership certificate chain to the formation authority, checked
    /// for validity and revocation; the peer's proof of the formation secret
    /// is not checked (the peer's key is authenticated by QUIC's TLS
    /// handshake, and the chain must certify that key). Proofs are still
    /// made with the secret, so a secret-only peer holding it learns that a
    /// certificate is required rather than that the proof failed.
    Certificate,
    /// Both: the secret proof and a valid, unrevoked chain.
    Both,
}

impl AdmissionMode {
    /// `secret`, `certificate` or `both`.
    pub fn name(self) -> &'static str {
        match self {
            AdmissionMode::Secret => "secret",
            AdmissionMode::Certificate => "certificate",
            AdmissionMode::Both => "both",
        }
    }

    /// Parses [`AdmissionMode::name`].
    pub fn from_name(s: &str) -> Option<AdmissionMode> {
        [
            AdmissionMode::Secret,
            AdmissionMode::Certificate,
            AdmissionMode::Both,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }

    /// Whether admission checks certificates.
    pub fn certificates(self) -> bool {
        self != AdmissionMode::Secret
    }

    /// Whether admission checks the formation secret.
    pub fn secret(self) -> bool {
        self != AdmissionMode::Certificate
    }
}

/// A node's trust settings ([`crate::NodeConfig::trust`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustConfig {
    /// The formation's root of trust (its id must be the formation's).
    pub genesis: Genesis,
    /// What admission asks of peers.
    pub mode: AdmissionMode,
    /// This node's chain, its own certificate first. Empty: the chain the
    /// node stored before (from an earlier open), if any; a node without a
    /// chain is admitted by no peer that checks certificates.
    pub chain: Vec<Certificate>,
}

impl TrustConfig {
    /// Trust settings for `genesis` with `mode` and no chain yet.
    pub fn new(genesis: Genesis, mode: AdmissionMode) -> TrustConfig {
        TrustConfig {
            genesis,
            mode,
            chain: Vec::new(),
        }
    }

    /// With this node's chain.
    pub fn chain(mut self, chain: Vec<Certificate>) -> TrustConfig {
        self.chain = chain;
        self
    }
}

/// Where a node stands in its formation ([`crate::Node::membership`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipStatus {
    /// No trust settings: admission by the formation secret only.
    SecretOnly,
    /// Trust settings but no certificate yet: peers that check
    /// certificates refuse this node until it has one.
    NoCertificate,
    /// No certificate yet; an enrollment request goes out with this node's
    /// next admission ([`crate::Node::enroll`]).
    Pending,
    /// No certificate; the last enrollment was refused, for this reason.
    Denied {
        /// The enroller's reason (or why it could not be reached).
        reason: String,
    },
    /// A chain that peers accept.
    Valid(super::Verified),
    /// The chain was revoked (this node knows the revocation).
    Revoked {
        /// When (Unix ms, on the revoker's clock).
        revoked_at_ms: u64,
    },
    /// The chain is out of its validity window (or no longer leads to the
    /// authority): peers refuse it for this reason.
    Invalid {
        /// Why.
        reason: String,
    },
}

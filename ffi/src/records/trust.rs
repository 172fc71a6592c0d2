//! Trust records: what a certificate grants, what one says, where a node
//! stands in its formation, and its revocation counters. Certificates,
//! chains and revocation records themselves cross the boundary as text
//! (hex; a chain as a list of certificates, own first).

use peat_mesh::trust::{Certificate, MembershipStatus, Permissions, Tier};

use crate::error::{SdkError, SdkResult};

/// What a new certificate grants (see `sdk::authority_issue`).
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct GrantRecord {
    /// The device's node id.
    pub subject: String,
    /// `enterprise`, `regional`, `tactical` or `edge`.
    pub tier: String,
    /// Permission bits: 1 relay, 2 enroll, 4 admin.
    pub permissions: u32,
    /// Valid from (Unix ms); 0: now.
    pub not_before_ms: u64,
    /// Valid for this many ms from `not_before_ms` (more than 0).
    pub valid_for_ms: u64,
}

impl GrantRecord {
    /// The core's grant (`now_ms` stands in for a 0 start).
    pub fn to_grant(&self, now_ms: u64) -> SdkResult<peat_mesh::trust::Grant> {
        let tier = Tier::from_name(&self.tier).ok_or_else(|| {
            SdkError::invalid(format!(
                "tier {:?} (enterprise, regional, tactical or edge)",
                self.tier
            ))
        })?;
        if self.valid_for_ms == 0 {
            return Err(SdkError::invalid("valid_for_ms must be more than 0"));
        }
        Ok(peat_mesh::trust::Grant {
            subject: self
                .subject
                .parse()
                .map_err(|e| SdkError::invalid(format!("subject: {e}")))?,
            tier,
            permissions: Permissions::from_bits(self.permissions),
            not_before_ms: if self.not_before_ms == 0 {
                now_ms
            } else {
                self.not_before_ms
            },
            valid_for: std::time::Duration::from_millis(self.valid_for_ms),
        })
    }
}

/// What a certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct CertificateRecord {
    /// Its id (hex): what a revocation names.
    pub id: String,
    pub formation_id: String,
    /// The device's node id.
    pub subject: String,
    /// The signer's key (the authority's or a delegate's node id).
    pub issuer: String,
    /// `enterprise`, `regional`, `tactical`, `edge` (empty if unknown).
    pub tier: String,
    /// Permission bits: 1 relay, 2 enroll, 4 admin.
    pub permissions: u32,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
}

impl From<&Certificate> for CertificateRecord {
    fn from(c: &Certificate) -> Self {
        let id = |r: Result<peat_mesh::NodeId, _>| r.map(|n| n.to_string()).unwrap_or_default();
        CertificateRecord {
            id: c.id().iter().map(|b| format!("{b:02x}")).collect(),
            formation_id: c.formation().to_string(),
            subject: id(c.subject()),
            issuer: id(c.issuer()),
            tier: c.tier().map(|t| t.name().to_string()).unwrap_or_default(),
            permissions: c.permissions().bits(),
            not_before_ms: c.not_before_ms(),
            not_after_ms: c.not_after_ms(),
        }
    }
}

/// Where a node stands in its formation.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct MembershipRecord {
    /// `secret_only` (no trust settings), `no_certificate`, `pending` (an
    /// enrollment under way), `denied` (the last enrollment refused, see
    /// `reason`), `valid`, `revoked` or `invalid` (out of its validity
    /// window, say).
    pub state: String,
    /// The tier when valid (else empty).
    pub tier: String,
    /// Permission bits when valid (else 0).
    pub permissions: u32,
    /// When the chain expires (Unix ms) when valid (else 0).
    pub not_after_ms: u64,
    /// When it was revoked (Unix ms) when revoked (else 0).
    pub revoked_at_ms: u64,
    /// Why, when invalid or denied (else empty).
    pub reason: String,
}

impl From<MembershipStatus> for MembershipRecord {
    fn from(s: MembershipStatus) -> Self {
        let state = |s: &str| MembershipRecord {
            state: s.into(),
            ..Default::default()
        };
        match s {
            MembershipStatus::SecretOnly => state("secret_only"),
            MembershipStatus::NoCertificate => state("no_certificate"),
            MembershipStatus::Pending => state("pending"),
            MembershipStatus::Denied { reason } => MembershipRecord {
                reason,
                ..state("denied")
            },
            MembershipStatus::Valid(v) => MembershipRecord {
                tier: v.tier.name().into(),
                permissions: v.permissions.bits(),
                not_after_ms: v.not_after_ms,
                ..state("valid")
            },
            MembershipStatus::Revoked { revoked_at_ms } => MembershipRecord {
                revoked_at_ms,
                ..state("revoked")
            },
            MembershipStatus::Invalid { reason } => MembershipRecord {
                reason,
                ..state("invalid")
            },
        }
    }
}

/// A node's trust counters.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct TrustStatsRecord {
    /// `secret`, `certificate` or `both`.
    pub admission_mode: String,
    /// Revocations held (of certificates not yet expired).
    pub revocations: u64,
    /// Revocations peers sent that did not check out, since open.
    pub refused_revocations: u64,
    /// Changes written here and signed, since open.
    pub changes_signed: u64,
    /// Received changes whose signature checked out.
    pub signatures_verified: u64,
    /// Received changes whose signature did not (forged or damaged).
    pub signatures_forged: u64,
    /// Received changes without a signature (in collections not `off`).
    pub changes_unsigned: u64,
    /// Unsigned or forged changes applied in `flag` collections.
    pub changes_flagged: u64,
    /// Changes refused in `reject` collections.
    pub changes_rejected: u64,
}

/// One change of a document and who signed it.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct ChangeAuthorRecord {
    /// The Automerge change hash (64 hex digits).
    pub hash: String,
    /// The time its writer stamped it with (Unix ms).
    pub time_ms: i64,
    /// The node id that signed it (64 hex digits), empty when unsigned.
    pub author: String,
    /// Whether the signature checks out (false when unsigned).
    pub valid: bool,
}

impl From<peat_mesh::ChangeAuthor> for ChangeAuthorRecord {
    fn from(c: peat_mesh::ChangeAuthor) -> Self {
        ChangeAuthorRecord {
            hash: c.hash_hex(),
            time_ms: c.time_ms,
            author: c.author.map(|a| a.to_string()).unwrap_or_default(),
            valid: c.valid,
        }
    }
}

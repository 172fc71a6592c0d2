//! Trust: a formation authority (its key held by the application, wherever
//! it runs), the certificates it issues and revokes, trust settings at open
//! (JSON in the core's form, see [`peat_mesh::trust::TrustConfig::from_json`]),
//! a node's membership, chains and revocations, and enrollment (tokens on
//! the enroller, `enroll` on the device). Certificates, revocation records
//! and tokens cross the boundary as hex text.

use peat_mesh::trust::{
    Authority, Certificate, EnrollmentToken, Permissions, RevocationRecord, Tier, TrustConfig,
};
use peat_mesh::NodeConfig;
use zeroize::Zeroizing;

use super::args::{ms, parse_peer};
use crate::error::{SdkError, SdkResult};
use crate::handles;
use crate::records::{
    CertificateRecord, ChangeAuthorRecord, GrantRecord, MembershipRecord, NodeOptions,
    TrustStatsRecord,
};
use crate::runtime;

fn bad(e: impl std::fmt::Display) -> SdkError {
    SdkError::invalid(e.to_string())
}

/// Applies the trust settings given at open (empty text: none).
pub(crate) fn apply(o: &NodeOptions, cfg: NodeConfig) -> SdkResult<NodeConfig> {
    if o.trust_json.is_empty() {
        return Ok(cfg);
    }
    Ok(cfg.trust(TrustConfig::from_json(&o.formation_id, &o.trust_json).map_err(bad)?))
}

fn authority(formation_id: &str, secret: &[u8]) -> SdkResult<Authority> {
    let key: Zeroizing<[u8; 32]> = Zeroizing::new(
        secret
            .try_into()
            .map_err(|_| SdkError::invalid("an authority secret is 32 bytes"))?,
    );
    if key.iter().all(|b| *b == 0) {
        return Err(SdkError::invalid(
            "the authority secret is all zeros (never set?)",
        ));
    }
    Authority::from_secret(formation_id, *key).map_err(bad)
}

fn certificate(hex: &str) -> SdkResult<Certificate> {
    Certificate::from_hex(hex).map_err(bad)
}

fn chain(certs: &[String]) -> SdkResult<Vec<Certificate>> {
    certs.iter().map(|c| certificate(c)).collect()
}

fn chain_text(chain: &[Certificate]) -> Vec<String> {
    chain.iter().map(Certificate::to_hex).collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new random 32-byte authority secret (keep it offline, owner-only).
pub fn generate_authority_secret() -> Zeroizing<[u8; 32]> {
    Zeroizing::new(peat_mesh::Formation::generate_secret())
}

/// The public key (hex) of the authority holding `secret`: what every
/// member's trust settings name as `authority`.
pub fn authority_public_key(formation_id: &str, secret: &[u8]) -> SdkResult<String> {
    Ok(authority(formation_id, secret)?
        .genesis()
        .authority
        .to_string())
}

/// Issues a certificate for `grant` with the authority's key (hex).
pub fn authority_issue(
    formation_id: &str,
    secret: &[u8],
    grant: &GrantRecord,
) -> SdkResult<String> {
    let a = authority(formation_id, secret)?;
    Ok(a.issue(&grant.to_grant(now_ms())?).map_err(bad)?.to_hex())
}

/// Revokes `certificate` (hex) with the authority's key: a revocation record
/// (hex) to hand to any member (`node_add_revocation`).
pub fn authority_revoke(
    formation_id: &str,
    secret: &[u8],
    certificate_hex: &str,
) -> SdkResult<String> {
    let a = authority(formation_id, secret)?;
    let cert = certificate(certificate_hex)?;
    if cert.formation() != formation_id {
        return Err(SdkError::invalid("the certificate is of another formation"));
    }
    Ok(RevocationRecord {
        revocation: a.revoke(&cert, now_ms()),
        revoker_chain: Vec::new(),
    }
    .to_hex())
}

/// What a certificate (hex) says.
pub fn certificate_info(certificate_hex: &str) -> SdkResult<CertificateRecord> {
    Ok((&certificate(certificate_hex)?).into())
}

/// Where the node stands in its formation.
pub fn node_membership(node: u64) -> SdkResult<MembershipRecord> {
    Ok(handles::node(node)?.membership().into())
}

/// The node's certificate chain (hex, own first; empty without one).
pub fn node_certificate_chain(node: u64) -> SdkResult<Vec<String>> {
    Ok(chain_text(&handles::node(node)?.certificate_chain()))
}

/// Replaces the node's certificate chain (hex, own first) and stores it.
pub fn node_set_certificate_chain(node: u64, certificates: &[String]) -> SdkResult<()> {
    handles::node(node)?.set_certificate_chain(chain(certificates)?)?;
    Ok(())
}

/// The chain a connected peer showed at admission (hex, own first); empty
/// when the peer is not connected or the node does not check certificates.
pub fn node_peer_certificate_chain(node: u64, peer: &str) -> SdkResult<Vec<String>> {
    let peer = peer
        .parse()
        .map_err(|e| SdkError::invalid(format!("peer: {e}")))?;
    Ok(handles::node(node)?
        .peer_certificate_chain(&peer)
        .map(|c| chain_text(&c))
        .unwrap_or_default())
}

/// Revokes `certificate` (hex) with the node's key (an admin, or the
/// certificate's issuer with the enroll permission); it spreads and bites.
/// False if it was revoked already.
pub fn node_revoke(node: u64, certificate_hex: &str) -> SdkResult<bool> {
    let n = handles::node(node)?;
    let cert = certificate(certificate_hex)?;
    runtime::block_on(async move { n.revoke(&cert).await.map_err(SdkError::from) })?
}

/// Adds a revocation record (hex) made elsewhere (the authority's, say);
/// checked, kept, spread and enforced. False if known already.
pub fn node_add_revocation(node: u64, record_hex: &str) -> SdkResult<bool> {
    let n = handles::node(node)?;
    let record = RevocationRecord::from_hex(record_hex).map_err(bad)?;
    runtime::block_on(async move { n.add_revocation(record).await.map_err(SdkError::from) })?
}

/// A one-time enrollment token (64 hex digits) granting `tier` and
/// `permissions` (bits), redeemable for `ttl_ms`; the node's chain must hold
/// the enroll permission, the tier must be below its own and the permissions
/// a subset of its own.
pub fn node_create_enrollment_token(
    node: u64,
    tier: &str,
    permissions: u32,
    ttl_ms: u64,
) -> SdkResult<String> {
    let tier = Tier::from_name(tier).ok_or_else(|| {
        SdkError::invalid(format!(
            "tier {tier:?} (enterprise, regional, tactical or edge)"
        ))
    })?;
    if ttl_ms == 0 {
        return Err(SdkError::invalid("ttl_ms must be more than 0"));
    }
    let token = handles::node(node)?.create_enrollment_token(
        tier,
        Permissions::from_bits(permissions),
        std::time::Duration::from_millis(ttl_ms),
    )?;
    Ok(token.to_hex().to_string())
}

/// Enrolls with `enroller` (`NODEID@HOST:PORT`) using its one-time `token`
/// (hex); returns the chain it answered with (hex, own first), now stored.
pub fn node_enroll(
    node: u64,
    enroller: &str,
    token_hex: &str,
    timeout_ms: u64,
    cancel: u64,
) -> SdkResult<Vec<String>> {
    let n = handles::node(node)?;
    let peer = parse_peer(enroller)?;
    let token = EnrollmentToken::from_hex(token_hex).map_err(bad)?;
    let cancel = handles::cancel_token(cancel)?;
    runtime::block_on_cancellable(ms(timeout_ms), cancel, async move {
        n.enroll(&peer, token)
            .await
            .map(|c| chain_text(&c))
            .map_err(SdkError::from)
    })
}

/// The node's admission mode, revocation and change-signature counters.
pub fn node_trust_stats(node: u64) -> SdkResult<TrustStatsRecord> {
    let n = handles::node(node)?;
    let s = n.signature_stats();
    Ok(TrustStatsRecord {
        admission_mode: n.admission_mode().name().into(),
        revocations: n.revocation_count() as u64,
        refused_revocations: n.refused_revocations(),
        changes_signed: s.signed,
        signatures_verified: s.verified,
        signatures_forged: s.forged,
        changes_unsigned: s.unsigned,
        changes_flagged: s.flagged,
        changes_rejected: s.rejected,
    })
}

/// Every change of document `collection`/`id`, oldest first, with who
/// signed it and whether the signature checks out (checked again now). A
/// document that does not exist here is `NotFound`.
pub fn node_authors(node: u64, collection: &str, id: &str) -> SdkResult<Vec<ChangeAuthorRecord>> {
    let n = handles::node(node)?;
    let (c, i) = (collection.to_string(), id.to_string());
    let found = runtime::block_on(async move { n.authors(&c, &i).await })??;
    found
        .map(|v| v.into_iter().map(ChangeAuthorRecord::from).collect())
        .ok_or_else(|| {
            SdkError::new(
                crate::error::ErrorCode::NotFound,
                format!("no document {collection}/{id}"),
            )
        })
}

/// Gives the node of `data_dir` a new identity key, used from its next open
/// (close it first); returns its new node id. Documents, blobs and
/// revocations stay; the stored chain (of the old key) is dropped at the
/// next open. A dir without an identity is `NotFound`.
pub fn rotate_identity(data_dir: &str) -> SdkResult<String> {
    if data_dir.is_empty() {
        return Err(SdkError::invalid("data_dir must not be empty"));
    }
    Ok(peat_mesh::security::rotate_identity(std::path::Path::new(data_dir))?.to_string())
}

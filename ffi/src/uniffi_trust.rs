//! The UniFFI face of trust (Kotlin): the operations of [`crate::sdk`]'s
//! trust module, exported as they are. Certificates and revocation records
//! cross as hex text; the Kotlin layer wraps them.

use crate::records::{
    CertificateRecord, ChangeAuthorRecord, GrantRecord, MembershipRecord, TrustStatsRecord,
};
use crate::sdk;
use crate::uniffi_api::R;

/// A new random 32-byte authority secret.
#[uniffi::export]
pub fn generate_authority_secret() -> Vec<u8> {
    sdk::generate_authority_secret().to_vec()
}

/// The public key (hex) of the authority of `formation_id` holding `secret`.
#[uniffi::export]
pub fn authority_public_key(formation_id: String, secret: Vec<u8>) -> R<String> {
    Ok(sdk::authority_public_key(&formation_id, &secret)?)
}

/// A certificate (hex) for `grant`, signed with the authority's key.
#[uniffi::export]
pub fn authority_issue(formation_id: String, secret: Vec<u8>, grant: GrantRecord) -> R<String> {
    Ok(sdk::authority_issue(&formation_id, &secret, &grant)?)
}

/// A revocation record (hex) of `certificate`, signed with the authority's key.
#[uniffi::export]
pub fn authority_revoke(formation_id: String, secret: Vec<u8>, certificate: String) -> R<String> {
    Ok(sdk::authority_revoke(&formation_id, &secret, &certificate)?)
}

/// What a certificate (hex) says.
#[uniffi::export]
pub fn certificate_info(certificate: String) -> R<CertificateRecord> {
    Ok(sdk::certificate_info(&certificate)?)
}

/// Where the node stands in its formation.
#[uniffi::export]
pub fn membership(node: u64) -> R<MembershipRecord> {
    Ok(sdk::node_membership(node)?)
}

/// The node's certificate chain (hex, own first).
#[uniffi::export]
pub fn certificate_chain(node: u64) -> R<Vec<String>> {
    Ok(sdk::node_certificate_chain(node)?)
}

/// Replaces the node's certificate chain (hex, own first).
#[uniffi::export]
pub fn set_certificate_chain(node: u64, certificates: Vec<String>) -> R<()> {
    Ok(sdk::node_set_certificate_chain(node, &certificates)?)
}

/// The chain a connected peer showed at admission (empty if none).
#[uniffi::export]
pub fn peer_certificate_chain(node: u64, peer: String) -> R<Vec<String>> {
    Ok(sdk::node_peer_certificate_chain(node, &peer)?)
}

/// Revokes a certificate (hex) with the node's key; false if revoked already.
#[uniffi::export]
pub fn revoke(node: u64, certificate: String) -> R<bool> {
    Ok(sdk::node_revoke(node, &certificate)?)
}

/// Adds a revocation record (hex) made elsewhere; false if known already.
#[uniffi::export]
pub fn add_revocation(node: u64, record: String) -> R<bool> {
    Ok(sdk::node_add_revocation(node, &record)?)
}

/// The node's admission mode, revocation and change-signature counters.
#[uniffi::export]
pub fn trust_stats(node: u64) -> R<TrustStatsRecord> {
    Ok(sdk::node_trust_stats(node)?)
}

/// Every change of a document, oldest first, with who signed it.
#[uniffi::export]
pub fn authors(node: u64, collection: String, id: String) -> R<Vec<ChangeAuthorRecord>> {
    Ok(sdk::node_authors(node, &collection, &id)?)
}

/// A one-time enrollment token (hex) granting `tier` and `permissions`.
#[uniffi::export]
pub fn create_enrollment_token(
    node: u64,
    tier: String,
    permissions: u32,
    ttl_ms: u64,
) -> R<String> {
    Ok(sdk::node_create_enrollment_token(
        node,
        &tier,
        permissions,
        ttl_ms,
    )?)
}

/// Enrolls with `enroller` using its one-time `token`; the chain it answered with.
#[uniffi::export]
pub fn enroll(
    node: u64,
    enroller: String,
    token: String,
    timeout_ms: u64,
    cancel: u64,
) -> R<Vec<String>> {
    Ok(sdk::node_enroll(
        node, &enroller, &token, timeout_ms, cancel,
    )?)
}

/// Gives the node of `data_dir` a new identity key (used from its next open).
#[uniffi::export]
pub fn rotate_identity(data_dir: String) -> R<String> {
    Ok(sdk::rotate_identity(&data_dir)?)
}

//! Trust for `peat_mesh._native`: the authority's operations (its secret
//! as bytes), certificates and revocation records as hex text, records as
//! tuples; network waits release the GIL.

use peat_mesh_ffi::records::GrantRecord;
use peat_mesh_ffi::sdk;
use pyo3::prelude::*;

use crate::{err, R};

#[pyfunction]
fn generate_authority_secret(py: Python<'_>) -> Py<pyo3::types::PyBytes> {
    let secret = sdk::generate_authority_secret();
    pyo3::types::PyBytes::new(py, &secret[..]).unbind()
}

#[pyfunction]
fn authority_public_key(formation_id: String, secret: Vec<u8>) -> R<String> {
    sdk::authority_public_key(&formation_id, &secret).map_err(err)
}

#[pyfunction]
#[pyo3(signature = (formation_id, secret, subject, tier, permissions, not_before_ms, valid_for_ms))]
fn authority_issue(
    formation_id: String,
    secret: Vec<u8>,
    subject: String,
    tier: String,
    permissions: u32,
    not_before_ms: u64,
    valid_for_ms: u64,
) -> R<String> {
    let grant = GrantRecord {
        subject,
        tier,
        permissions,
        not_before_ms,
        valid_for_ms,
    };
    sdk::authority_issue(&formation_id, &secret, &grant).map_err(err)
}

#[pyfunction]
fn authority_revoke(formation_id: String, secret: Vec<u8>, certificate: String) -> R<String> {
    sdk::authority_revoke(&formation_id, &secret, &certificate).map_err(err)
}

/// (id, formation_id, subject, issuer, tier, permissions, not_before_ms, not_after_ms)
type CertTuple = (String, String, String, String, String, u32, u64, u64);

#[pyfunction]
fn certificate_info(certificate: String) -> R<CertTuple> {
    let c = sdk::certificate_info(&certificate).map_err(err)?;
    Ok((
        c.id,
        c.formation_id,
        c.subject,
        c.issuer,
        c.tier,
        c.permissions,
        c.not_before_ms,
        c.not_after_ms,
    ))
}

/// (state, tier, permissions, not_after_ms, revoked_at_ms, reason)
type MembershipTuple = (String, String, u32, u64, u64, String);

#[pyfunction]
fn membership(node: u64) -> R<MembershipTuple> {
    let m = sdk::node_membership(node).map_err(err)?;
    Ok((
        m.state,
        m.tier,
        m.permissions,
        m.not_after_ms,
        m.revoked_at_ms,
        m.reason,
    ))
}

#[pyfunction]
fn certificate_chain(node: u64) -> R<Vec<String>> {
    sdk::node_certificate_chain(node).map_err(err)
}

#[pyfunction]
fn set_certificate_chain(node: u64, certificates: Vec<String>) -> R<()> {
    sdk::node_set_certificate_chain(node, &certificates).map_err(err)
}

#[pyfunction]
fn peer_certificate_chain(node: u64, peer: String) -> R<Vec<String>> {
    sdk::node_peer_certificate_chain(node, &peer).map_err(err)
}

#[pyfunction]
fn revoke(py: Python<'_>, node: u64, certificate: String) -> R<bool> {
    py.detach(|| sdk::node_revoke(node, &certificate))
        .map_err(err)
}

#[pyfunction]
fn add_revocation(py: Python<'_>, node: u64, record: String) -> R<bool> {
    py.detach(|| sdk::node_add_revocation(node, &record))
        .map_err(err)
}

#[pyfunction]
fn create_enrollment_token(node: u64, tier: String, permissions: u32, ttl_ms: u64) -> R<String> {
    sdk::node_create_enrollment_token(node, &tier, permissions, ttl_ms).map_err(err)
}

#[pyfunction]
#[pyo3(signature = (node, enroller, token, timeout_ms, cancel))]
fn enroll(
    py: Python<'_>,
    node: u64,
    enroller: String,
    token: String,
    timeout_ms: u64,
    cancel: u64,
) -> R<Vec<String>> {
    py.detach(|| sdk::node_enroll(node, &enroller, &token, timeout_ms, cancel))
        .map_err(err)
}

#[pyfunction]
fn rotate_identity(data_dir: String) -> R<String> {
    sdk::rotate_identity(&data_dir).map_err(err)
}

/// (admission_mode, revocations, refused_revocations, (changes_signed,
/// signatures_verified, signatures_forged, changes_unsigned,
/// changes_flagged, changes_rejected))
#[pyfunction]
fn trust_stats(node: u64) -> R<(String, u64, u64, Counts6)> {
    let t = sdk::node_trust_stats(node).map_err(err)?;
    Ok((
        t.admission_mode,
        t.revocations,
        t.refused_revocations,
        (
            t.changes_signed,
            t.signatures_verified,
            t.signatures_forged,
            t.changes_unsigned,
            t.changes_flagged,
            t.changes_rejected,
        ),
    ))
}

/// The six change-signature counters, in [`trust_stats`]'s order.
type Counts6 = (u64, u64, u64, u64, u64, u64);

/// [(hash, time_ms, author, valid)] of a document's changes, oldest first.
#[pyfunction]
fn authors(
    py: Python<'_>,
    node: u64,
    collection: String,
    id: String,
) -> R<Vec<(String, i64, String, bool)>> {
    let list = py
        .detach(|| sdk::node_authors(node, &collection, &id))
        .map_err(err)?;
    Ok(list
        .into_iter()
        .map(|c| (c.hash, c.time_ms, c.author, c.valid))
        .collect())
}

/// Adds this module's functions to `m`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(generate_authority_secret, m)?)?;
    m.add_function(wrap_pyfunction!(authors, m)?)?;
    m.add_function(wrap_pyfunction!(authority_public_key, m)?)?;
    m.add_function(wrap_pyfunction!(authority_issue, m)?)?;
    m.add_function(wrap_pyfunction!(authority_revoke, m)?)?;
    m.add_function(wrap_pyfunction!(certificate_info, m)?)?;
    m.add_function(wrap_pyfunction!(membership, m)?)?;
    m.add_function(wrap_pyfunction!(certificate_chain, m)?)?;
    m.add_function(wrap_pyfunction!(set_certificate_chain, m)?)?;
    m.add_function(wrap_pyfunction!(peer_certificate_chain, m)?)?;
    m.add_function(wrap_pyfunction!(revoke, m)?)?;
    m.add_function(wrap_pyfunction!(add_revocation, m)?)?;
    m.add_function(wrap_pyfunction!(trust_stats, m)?)?;
    m.add_function(wrap_pyfunction!(create_enrollment_token, m)?)?;
    m.add_function(wrap_pyfunction!(enroll, m)?)?;
    m.add_function(wrap_pyfunction!(rotate_identity, m)?)?;
    Ok(())
}

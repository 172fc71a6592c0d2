//! Trust: a formation authority's key (held by the application), the
//! certificates it issues and revokes, a node's membership, chains and
//! revocations, and enrollment (tokens on the enroller, enroll on the
//! device). Certificates and revocation records are hex text; the
//! records returned here are plain values with fixed-size NUL-terminated
//! text (nothing to free).

use std::ffi::c_char;

use super::boundary::{
    bytes_arg, c_string, call, call_out, str_arg, str_list_arg, string_list, write_opt,
};
use super::types::{PeatError, PeatNode, PeatStr, PeatStringList};
use crate::error::SdkError;
use crate::records::{
    fixed_text as text, CertificateRecord, GrantRecord, MembershipRecord, TrustStatsRecord,
};
use crate::sdk;

/// What a new certificate grants ([`peat_authority_issue`]).
#[repr(C)]
pub struct PeatGrant {
    /// The device's node id (64 hex digits).
    pub subject: PeatStr,
    /// "enterprise", "regional", "tactical" or "edge".
    pub tier: PeatStr,
    /// Permission bits: 1 relay, 2 enroll, 4 admin.
    pub permissions: u32,
    /// Valid from (Unix ms); 0 for now.
    pub not_before_ms: u64,
    /// Valid for this many ms (more than 0).
    pub valid_for_ms: u64,
}

/// What a certificate says ([`peat_certificate_info`]). Text fields are
/// NUL-terminated; ids and keys are 64 lower-case hex digits.
#[repr(C)]
pub struct PeatCertificateInfo {
    /// The certificate's id: what a revocation names.
    pub id: [c_char; 65],
    /// The formation id (at most 64 bytes).
    pub formation_id: [c_char; 65],
    /// The device's node id.
    pub subject: [c_char; 65],
    /// The signer's key (the authority's, or a delegate's node id).
    pub issuer: [c_char; 65],
    /// "enterprise", "regional", "tactical", "edge" (empty if unknown).
    pub tier: [c_char; 16],
    /// Permission bits: 1 relay, 2 enroll, 4 admin.
    pub permissions: u32,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
}

/// Where a node stands in its formation ([`peat_node_membership`]).
#[repr(C)]
pub struct PeatMembership {
    /// "secret_only" (no trust settings), "no_certificate", "valid",
    /// "revoked" or "invalid".
    pub state: [c_char; 16],
    /// The tier when valid (else empty).
    pub tier: [c_char; 16],
    /// Permission bits when valid (else 0).
    pub permissions: u32,
    /// When the chain expires (Unix ms) when valid (else 0).
    pub not_after_ms: u64,
    /// When it was revoked (Unix ms) when revoked (else 0).
    pub revoked_at_ms: u64,
    /// Why, when invalid (else empty); cut to 255 bytes at a character
    /// boundary.
    pub reason: [c_char; 256],
}

/// A node's trust counters ([`peat_node_trust_stats`]).
#[repr(C)]
pub struct PeatTrustStats {
    /// "secret", "certificate" or "both".
    pub admission_mode: [c_char; 16],
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
    /// Received changes without a signature (in collections not "off").
    pub changes_unsigned: u64,
    /// Unsigned or forged changes applied in "flag" collections.
    pub changes_flagged: u64,
    /// Changes refused in "reject" collections.
    pub changes_rejected: u64,
}

impl From<CertificateRecord> for PeatCertificateInfo {
    fn from(c: CertificateRecord) -> Self {
        PeatCertificateInfo {
            id: text(&c.id),
            formation_id: text(&c.formation_id),
            subject: text(&c.subject),
            issuer: text(&c.issuer),
            tier: text(&c.tier),
            permissions: c.permissions,
            not_before_ms: c.not_before_ms,
            not_after_ms: c.not_after_ms,
        }
    }
}

impl From<MembershipRecord> for PeatMembership {
    fn from(m: MembershipRecord) -> Self {
        PeatMembership {
            state: text(&m.state),
            tier: text(&m.tier),
            permissions: m.permissions,
            not_after_ms: m.not_after_ms,
            revoked_at_ms: m.revoked_at_ms,
            reason: text(&m.reason),
        }
    }
}

impl From<TrustStatsRecord> for PeatTrustStats {
    fn from(t: TrustStatsRecord) -> Self {
        PeatTrustStats {
            admission_mode: text(&t.admission_mode),
            revocations: t.revocations,
            refused_revocations: t.refused_revocations,
            changes_signed: t.changes_signed,
            signatures_verified: t.signatures_verified,
            signatures_forged: t.signatures_forged,
            changes_unsigned: t.changes_unsigned,
            changes_flagged: t.changes_flagged,
            changes_rejected: t.changes_rejected,
        }
    }
}

/// Writes a new random 32-byte authority secret to `out` (`out_len` must be
/// 32). Keep it offline and owner-only; it never needs to reach a node.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_authority_secret_generate(
    out: *mut u8,
    out_len: usize,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        if out.is_null() || out_len != 32 {
            return Err(SdkError::invalid(
                "out must point to 32 writable bytes (out_len 32)",
            ));
        }
        let secret = sdk::generate_authority_secret();
        // SAFETY: `out` is non-NULL and, per the header, points to `out_len`
        // (32) writable bytes owned by the caller.
        unsafe { std::slice::from_raw_parts_mut(out, 32) }.copy_from_slice(&secret[..]);
        Ok(())
    })
}

/// `*out` receives the public key (64 hex digits; free with
/// `peat_string_free`) of the authority of `formation_id` holding `secret`
/// (32 bytes): what members' trust settings name as "authority".
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_authority_public_key(
    formation_id: PeatStr,
    secret: *const u8,
    secret_len: usize,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let f = str_arg(formation_id, "formation_id")?;
        let s = bytes_arg(secret, secret_len, "secret")?;
        Ok(c_string(sdk::authority_public_key(f, s)?))
    })
}

/// `*out` receives a certificate (hex; free with `peat_string_free`) for
/// `grant`, signed with the authority's `secret`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_authority_issue(
    formation_id: PeatStr,
    secret: *const u8,
    secret_len: usize,
    grant: *const PeatGrant,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let f = str_arg(formation_id, "formation_id")?;
        let s = bytes_arg(secret, secret_len, "secret")?;
        // SAFETY: a non-NULL `grant` points to a valid PeatGrant for this call.
        let g = unsafe { grant.as_ref() }.ok_or_else(|| SdkError::invalid("grant: NULL"))?;
        let grant = GrantRecord {
            subject: str_arg(g.subject, "subject")?.to_string(),
            tier: str_arg(g.tier, "tier")?.to_string(),
            permissions: g.permissions,
            not_before_ms: g.not_before_ms,
            valid_for_ms: g.valid_for_ms,
        };
        Ok(c_string(sdk::authority_issue(f, s, &grant)?))
    })
}

/// `*out` receives a revocation record (hex; free with `peat_string_free`)
/// of `certificate`, signed with the authority's `secret`: hand it to any
/// member with [`peat_node_add_revocation`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_authority_revoke(
    formation_id: PeatStr,
    secret: *const u8,
    secret_len: usize,
    certificate: PeatStr,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let f = str_arg(formation_id, "formation_id")?;
        let s = bytes_arg(secret, secret_len, "secret")?;
        let c = str_arg(certificate, "certificate")?;
        Ok(c_string(sdk::authority_revoke(f, s, c)?))
    })
}

/// `*out` receives what `certificate` (hex) says.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_certificate_info(
    certificate: PeatStr,
    out: *mut PeatCertificateInfo,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(sdk::certificate_info(str_arg(certificate, "certificate")?)?.into())
    })
}

/// `*out` receives where the node stands in its formation.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_membership(
    node: PeatNode,
    out: *mut PeatMembership,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(
        err,
        out,
        "out",
        || Ok(sdk::node_membership(node.id)?.into()),
    )
}

/// `*out` receives the node's certificate chain (hex, own first; empty
/// without one). Free with `peat_string_list_free`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_certificate_chain(
    node: PeatNode,
    out: *mut PeatStringList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(string_list(sdk::node_certificate_chain(node.id)?))
    })
}

/// Replaces the node's certificate chain (`len` certificates in hex, own
/// first) and stores it: it must certify this node and lead to the
/// authority, else `PEAT_STATUS_INVALID_ARGUMENT` and nothing changes.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_set_certificate_chain(
    node: PeatNode,
    certificates: *const PeatStr,
    len: usize,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let certs: Vec<String> = str_list_arg(certificates, len, "certificates", "certificate")?
            .into_iter()
            .map(str::to_string)
            .collect();
        sdk::node_set_certificate_chain(node.id, &certs)
    })
}

/// `*out` receives the chain connected peer `peer` showed at admission
/// (hex, own first); empty when it is not connected or the node does not
/// check certificates. Free with `peat_string_list_free`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_peer_certificate_chain(
    node: PeatNode,
    peer: PeatStr,
    out: *mut PeatStringList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let p = str_arg(peer, "peer")?;
        Ok(string_list(sdk::node_peer_certificate_chain(node.id, p)?))
    })
}

/// Revokes `certificate` (hex) with the node's key (an admin, or the
/// certificate's issuer holding the enroll permission): it spreads to every
/// peer, which closes its connection with the holder and refuses it from
/// then on. `*out_new` (may be NULL) is false if it was revoked already.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_revoke(
    node: PeatNode,
    certificate: PeatStr,
    out_new: *mut bool,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let new = sdk::node_revoke(node.id, str_arg(certificate, "certificate")?)?;
        write_opt(out_new, new);
        Ok(())
    })
}

/// Adds a revocation record (hex) made elsewhere (by
/// [`peat_authority_revoke`], say): checked, kept, spread and enforced.
/// `*out_new` (may be NULL) is false if it was known already.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_add_revocation(
    node: PeatNode,
    record: PeatStr,
    out_new: *mut bool,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        let new = sdk::node_add_revocation(node.id, str_arg(record, "record")?)?;
        write_opt(out_new, new);
        Ok(())
    })
}

/// `*out` receives the node's admission mode and revocation counters.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_trust_stats(
    node: PeatNode,
    out: *mut PeatTrustStats,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(sdk::node_trust_stats(node.id)?.into())
    })
}

/// `*out` receives a one-time enrollment token (64 hex digits; free with
/// `peat_string_free`; hand it to the device out of band) granting `tier`
/// and `permissions`, redeemable for `ttl_ms`. The node's chain must hold
/// the enroll permission, `tier` must be below its own and `permissions`
/// within its own, else `PEAT_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_create_enrollment_token(
    node: PeatNode,
    tier: PeatStr,
    permissions: u32,
    ttl_ms: u64,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let t = str_arg(tier, "tier")?;
        Ok(c_string(sdk::node_create_enrollment_token(
            node.id,
            t,
            permissions,
            ttl_ms,
        )?))
    })
}

/// Enrolls with `enroller` ("NODEID@HOST:PORT") using its one-time `token`
/// (hex): `*out` receives the certificate chain it answered with (hex, own
/// first; free with `peat_string_list_free`), already stored and in use. A
/// refusal (a used, expired or unknown token) is
/// `PEAT_STATUS_ADMISSION_REFUSED` with the reason, and
/// [`peat_node_membership`] then says "denied"; a node that already holds a
/// valid chain gets `PEAT_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_enroll(
    node: PeatNode,
    enroller: PeatStr,
    token: PeatStr,
    timeout_ms: u64,
    cancel: super::types::PeatCancel,
    out: *mut PeatStringList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let e = str_arg(enroller, "enroller")?;
        let t = str_arg(token, "token")?;
        Ok(string_list(sdk::node_enroll(
            node.id, e, t, timeout_ms, cancel.id,
        )?))
    })
}

/// Gives the node of `data_dir` a new identity key, used from its next open
/// (close it first): `*out` receives its new node id (free with
/// `peat_string_free`). Documents, blobs and revocations stay; its stored
/// certificate chain (of the old key) is dropped at the next open. A dir
/// without an identity is `PEAT_STATUS_NOT_FOUND`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_rotate_identity(
    data_dir: PeatStr,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(c_string(sdk::rotate_identity(str_arg(
            data_dir, "data_dir",
        )?)?))
    })
}

//! The library, the runtime, cancel tokens, opening and closing nodes.

use std::ffi::c_char;

use super::boundary::{bytes_arg, c_string, call, call_out, str_arg, str_list_arg, string_list};
use super::ephemeral::{ephemeral_options, PeatEphemeralOptions};
use super::links::{link_options, pace_options, PeatLinkOptions, PeatPaceOptions};
use super::types::{PeatCancel, PeatError, PeatNode, PeatStr, PeatStringList};
use super::PEAT_ABI_VERSION;
use crate::error::SdkError;
use crate::records::NodeOptions;
use crate::sdk;

/// Options for [`peat_node_open`].
#[repr(C)]
pub struct PeatNodeOptions {
    /// Data directory (created if missing).
    pub data_dir: PeatStr,
    /// Public formation id.
    pub formation_id: PeatStr,
    /// Pointer to the 32-byte formation secret; all zeros is refused
    /// (`PEAT_STATUS_INVALID_ARGUMENT`). Make one with
    /// [`peat_formation_secret_generate`].
    pub formation_secret: *const u8,
    /// Must be 32.
    pub formation_secret_len: usize,
    /// Listen address such as "127.0.0.1:0"; empty for "0.0.0.0:0".
    pub listen: PeatStr,
    /// Static peers as "NODEID@HOST:PORT"; may be NULL when `peers_len` is 0.
    pub peers: *const PeatStr,
    /// Number of peers.
    pub peers_len: usize,
    /// Announce and discover peers of the formation on the LAN by mDNS.
    pub mdns: bool,
    /// Links besides the UDP socket; may be NULL when `links_len` is 0.
    pub links: *const PeatLinkOptions,
    /// Number of links.
    pub links_len: usize,
    /// Carry connections over `links` only: bind no UDP socket (`listen` is
    /// ignored). Needs a link; refused with mDNS.
    pub links_only: bool,
    /// PACE thresholds; zeroed for the defaults.
    pub pace: PeatPaceOptions,
    /// Beacons and the multicast path; zeroed for the defaults.
    pub ephemeral: PeatEphemeralOptions,
    /// Collection policies as JSON: `{"default": {...}, "collections":
    /// {"NAME": {...}}}`, each policy with the fields of
    /// [`peat_node_set_policy`]; empty (or NULL with length 0) for the defaults.
    pub policies_json: PeatStr,
    /// A node-wide byte budget for documents; 0 for none. Past its high-water
    /// mark garbage collection evicts by class (bulk first) and age down to
    /// the low-water mark, never critical documents.
    pub storage_budget_bytes: u64,
    /// The budget's marks in percent; 0 for the defaults (90 and 80).
    pub storage_high_water_pct: u32,
    pub storage_low_water_pct: u32,
    /// Bandwidth budgets as JSON, the form of [`peat_node_set_bandwidth`];
    /// empty (or NULL with length 0) for no limits.
    pub bandwidth_json: PeatStr,
    /// Trust settings as JSON: `{"authority": "<64 hex>", "mode":
    /// "certificate" | "both" | "secret", "chain": ["<certificate hex>", ...]}`
    /// (mode defaults to "certificate"; chain optional, own certificate
    /// first); empty (or NULL with length 0) for admission by the formation
    /// secret only.
    pub trust_json: PeatStr,
}

/// The C ABI version ([`PEAT_ABI_VERSION`]).
#[no_mangle]
pub extern "C" fn peat_abi_version() -> u32 {
    PEAT_ABI_VERSION
}

/// Writes a new random formation secret to `out` (`out_len` must be 32): 32
/// bytes from a cryptographically secure generator, never all zeros. Share it
/// with the formation's nodes out of band, and keep it off command lines.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_formation_secret_generate(
    out: *mut u8,
    out_len: usize,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        if out.is_null() {
            return Err(SdkError::invalid("out: NULL out-pointer"));
        }
        if out_len != 32 {
            return Err(SdkError::invalid(format!(
                "out_len is {out_len}: a formation secret is 32 bytes"
            )));
        }
        let secret = zeroize::Zeroizing::new(sdk::generate_formation_secret());
        // SAFETY: `out` is non-NULL and, per the header, points to `out_len` (32)
        // writable bytes owned by the caller.
        unsafe { std::slice::from_raw_parts_mut(out, 32) }.copy_from_slice(&*secret);
        Ok(())
    })
}

/// Sets the SDK runtime's worker count (1–16) before first use.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_runtime_configure(workers: u32, err: *mut *mut PeatError) -> i32 {
    call(err, || crate::runtime::configure(workers as usize))
}

/// Shuts the SDK down: frees every handle (subscriptions end, no callback starts
/// after it returns), closes every open node as `peat_node_close` does (all at
/// once, each within `timeout_ms` but at most 5 s; the store is flushed and its
/// database file released, so the data dir can be reopened at once), then stops
/// the runtime, waiting up to `timeout_ms`. Afterwards every call returns
/// `PEAT_STATUS_SHUT_DOWN`. Idempotent.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_shutdown(timeout_ms: u64, err: *mut *mut PeatError) -> i32 {
    call(err, || sdk::shutdown(timeout_ms))
}

/// Number of live handles (nodes and subscriptions), for leak checks.
#[no_mangle]
pub extern "C" fn peat_live_handles() -> u64 {
    crate::handles::live_handles() as u64
}

/// Opens a node.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_open(
    options: *const PeatNodeOptions,
    timeout_ms: u64,
    cancel: PeatCancel,
    out: *mut PeatNode,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        // SAFETY: a non-NULL `options` points to a valid PeatNodeOptions for this call.
        let o = unsafe { options.as_ref() }.ok_or_else(|| SdkError::invalid("options: NULL"))?;
        let opts = NodeOptions {
            data_dir: str_arg(o.data_dir, "data_dir")?.to_string(),
            formation_id: str_arg(o.formation_id, "formation_id")?.to_string(),
            formation_secret: bytes_arg(
                o.formation_secret,
                o.formation_secret_len,
                "formation_secret",
            )?
            .to_vec(),
            listen: str_arg(o.listen, "listen")?.to_string(),
            peers: str_list_arg(o.peers, o.peers_len, "peers", "peer")?
                .into_iter()
                .map(str::to_string)
                .collect(),
            mdns: o.mdns,
            links: link_options(o.links, o.links_len)?,
            links_only: o.links_only,
            pace: pace_options(&o.pace)?,
            ephemeral: ephemeral_options(&o.ephemeral)?,
            policies_json: str_arg(o.policies_json, "policies_json")?.to_string(),
            storage_budget_bytes: o.storage_budget_bytes,
            storage_high_water_pct: o.storage_high_water_pct,
            storage_low_water_pct: o.storage_low_water_pct,
            bandwidth_json: str_arg(o.bandwidth_json, "bandwidth_json")?.to_string(),
            trust_json: str_arg(o.trust_json, "trust_json")?.to_string(),
        };
        let id = sdk::node_open(&opts, timeout_ms, cancel.id)?;
        Ok(PeatNode { id })
    })
}

/// Creates a cancel token. Pass it to [`peat_node_open`] or [`peat_node_connect`]
/// (`{0}` for none); [`peat_cancel`] from any thread ends them with
/// `PEAT_STATUS_CANCELLED`. Free with [`peat_cancel_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_cancel_new(out: *mut PeatCancel, err: *mut *mut PeatError) -> i32 {
    call_out(err, out, "out", || {
        Ok(PeatCancel {
            id: sdk::cancel_new(),
        })
    })
}

/// Triggers a cancel token.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_cancel(token: PeatCancel, err: *mut *mut PeatError) -> i32 {
    call(err, || sdk::cancel(token.id))
}

/// Frees a cancel token's handle. A zeroed token (`{0}`) is accepted and does
/// nothing; freeing a token twice is `PEAT_STATUS_INVALID_HANDLE`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_cancel_free(token: PeatCancel, err: *mut *mut PeatError) -> i32 {
    call(err, || sdk::cancel_free(token.id))
}

/// Closes a node and frees its handle (within `timeout_ms`).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_close(
    node: PeatNode,
    timeout_ms: u64,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || sdk::node_close(node.id, timeout_ms))
}

/// The node's id as 64 hex digits. Free `*out` with [`peat_string_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_id(
    node: PeatNode,
    out: *mut *mut c_char,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || Ok(c_string(sdk::node_id(node.id)?)))
}

/// "NODEID@HOST:PORT" strings that reach this node. Free with [`peat_string_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_addrs(
    node: PeatNode,
    out: *mut PeatStringList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(string_list(sdk::node_addrs(node.id)?))
    })
}

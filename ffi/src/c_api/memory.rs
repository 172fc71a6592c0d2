//! The error accessors and the `peat_*_free` functions: everything the library
//! returns is freed here (or by `peat_peer_list_free`, `peat_transfer_free`
//! next to what they free), never with libc `free`.

use std::ffi::c_char;

use super::boundary::{free_c_string, take_raw_slice};
use super::events::{free_event_strings, PeatEvent};
use super::types::{PeatBytes, PeatError, PeatStringList};

/// The error's code (a `PeatStatus`). 0 for NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_error_code(err: *const PeatError) -> i32 {
    // SAFETY: a non-NULL `err` was returned by this library and not yet freed.
    unsafe { err.as_ref() }.map(|e| e.code).unwrap_or(0)
}

/// The error's message, valid until [`peat_error_free`]. "" for NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_error_message(err: *const PeatError) -> *const c_char {
    // SAFETY: a non-NULL `err` was returned by this library and not yet freed.
    match unsafe { err.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Frees an error. Accepts NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_error_free(err: *mut PeatError) {
    if !err.is_null() {
        // SAFETY: `err` came from Box::into_raw in this library and is freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}

/// Frees a string returned by the library. Accepts NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_string_free(s: *mut c_char) {
    // SAFETY: `s` is NULL or a string this library returned (made by
    // `c_string`), freed once (the header's ownership rule).
    unsafe { free_c_string(s) };
}

/// Frees a string list (and its strings). Accepts an empty/zeroed list.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_string_list_free(list: PeatStringList) {
    // SAFETY: `items`/`len` are NULL or came from `into_raw_slice` in
    // `string_list`, and are freed once (the header's ownership rule).
    let Some(items) = (unsafe { take_raw_slice(list.items, list.len) }) else {
        return;
    };
    for s in items {
        // SAFETY: each item came from `c_string` in `string_list`.
        unsafe { free_c_string(s) };
    }
}

/// Frees bytes returned by the library. Accepts an empty/zeroed value.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_bytes_free(bytes: PeatBytes) {
    // SAFETY: `ptr`/`len` are NULL or came from `into_raw_slice` in this library,
    // and are freed once (the header's ownership rule).
    drop(unsafe { take_raw_slice(bytes.ptr, bytes.len) });
}

/// Frees the strings inside an event (not the event struct itself, which the
/// caller owns). Accepts NULL and a zeroed event; sets the freed fields to NULL.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_event_free(ev: *mut PeatEvent) {
    if !ev.is_null() {
        // SAFETY: a non-NULL `ev` points to a caller-owned PeatEvent filled by
        // this library (or zeroed); its strings are freed once (the header's
        // ownership rule) and set to NULL.
        unsafe { free_event_strings(ev) };
    }
}

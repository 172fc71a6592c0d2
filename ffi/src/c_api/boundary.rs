//! The C boundary, written once: every `extern "C"` function of the ABI is a
//! [`call`] (or [`call_out`]) around SDK calls, with its arguments read by the
//! converters here. Nothing else in `c_api` clears or fills `*err`, catches a
//! panic, checks a pointer for NULL, decodes UTF-8 or hands memory to C.

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::types::{PeatError, PeatStr, PeatStringList};
use crate::error::{ErrorCode, SdkError, SdkResult};

/// Stores an owned [`PeatError`] for `e` in `*err` (when `err` is not NULL) and
/// returns `e`'s status.
fn set_err(err: *mut *mut PeatError, e: &SdkError) -> i32 {
    if !err.is_null() {
        let message = CString::new(e.to_string().replace('\0', " ")).unwrap_or_default();
        let boxed = Box::new(PeatError {
            code: e.code as i32,
            message,
        });
        // SAFETY: `err` is non-NULL and, per the header, points to writable storage
        // for one pointer owned by the caller.
        unsafe { *err = Box::into_raw(boxed) };
    }
    e.code as i32
}

/// The one wrapper of every status-returning function: sets `*err` (when not
/// NULL) to NULL, runs `f` catching panics (`PEAT_STATUS_INTERNAL`), and turns
/// its result into a status, storing an owned [`PeatError`] in `*err` on failure.
pub(crate) fn call(err: *mut *mut PeatError, f: impl FnOnce() -> SdkResult<()>) -> i32 {
    if !err.is_null() {
        // SAFETY: non-NULL `err` points to caller-owned storage for one pointer.
        unsafe { *err = ptr::null_mut() };
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => set_err(err, &e),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            set_err(
                err,
                &SdkError::new(ErrorCode::Internal, format!("panic in SDK: {msg}")),
            )
        }
    }
}

/// [`call`] for a function with one required out-parameter `out` (named `what`
/// in the error): NULL is `PEAT_STATUS_INVALID_ARGUMENT` before `f` runs; on
/// success `*out` receives `f`'s value, on failure it is left untouched.
pub(crate) fn call_out<T>(
    err: *mut *mut PeatError,
    out: *mut T,
    what: &str,
    f: impl FnOnce() -> SdkResult<T>,
) -> i32 {
    call(err, || {
        if out.is_null() {
            return Err(SdkError::invalid(format!("{what}: NULL out-pointer")));
        }
        let value = f()?;
        // SAFETY: `out` is non-NULL and, per the header, points to caller-owned
        // writable storage for one T; `write` does not read (or drop) what was
        // there, which may be uninitialised.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// A required out-parameter as a reference; NULL is an invalid argument.
pub(crate) fn out_ptr<'a, T>(p: *mut T, what: &str) -> SdkResult<&'a mut T> {
    // SAFETY: a non-NULL out-pointer points to caller-owned writable storage for one T.
    unsafe { p.as_mut() }.ok_or_else(|| SdkError::invalid(format!("{what}: NULL out-pointer")))
}

/// Writes `value` to an optional out-parameter (may be NULL).
pub(crate) fn write_opt<T: Copy>(p: *mut T, value: T) {
    // SAFETY: a non-NULL out-pointer points to caller-owned writable storage for
    // one T (a plain `Copy` value: nothing to drop).
    if let Some(o) = unsafe { p.as_mut() } {
        *o = value;
    }
}

/// A borrowed [`PeatStr`] as `&str`: NULL with a length, or bad UTF-8, is an
/// invalid argument (named `what`); NULL with length 0 is "".
pub(crate) fn str_arg<'a>(s: PeatStr, what: &str) -> SdkResult<&'a str> {
    if s.ptr.is_null() {
        return if s.len == 0 {
            Ok("")
        } else {
            Err(SdkError::invalid(format!(
                "{what}: NULL pointer with non-zero length"
            )))
        };
    }
    // SAFETY: the caller guarantees `ptr` points to `len` readable bytes for the
    // duration of this call (borrowed input, see the header).
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    std::str::from_utf8(bytes).map_err(|_| SdkError::invalid(format!("{what}: not valid UTF-8")))
}

/// A borrowed array of `len` [`PeatStr`] (`list` names it, `item` each string);
/// NULL is accepted only when `len` is 0.
pub(crate) fn str_list_arg<'a>(
    items: *const PeatStr,
    len: usize,
    list: &str,
    item: &str,
) -> SdkResult<Vec<&'a str>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(SdkError::invalid(format!(
            "{list}: NULL pointer with non-zero length"
        )));
    }
    // SAFETY: the caller guarantees `len` readable PeatStr values at `items` for
    // the duration of this call (borrowed input).
    let items = unsafe { std::slice::from_raw_parts(items, len) };
    items.iter().map(|s| str_arg(*s, item)).collect()
}

/// A borrowed byte buffer of `len` bytes; NULL is accepted only when `len` is 0.
pub(crate) fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> SdkResult<&'a [u8]> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(SdkError::invalid(format!("{what}: NULL pointer")))
        };
    }
    // SAFETY: the caller guarantees `len` readable bytes at `p` for the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An owned NUL-terminated copy of `s` for C (a NUL inside becomes a space);
/// freed by `peat_string_free`.
pub(crate) fn c_string(s: String) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

/// [`c_string`], or NULL for `None`.
pub(crate) fn opt_c_string(s: Option<String>) -> *mut c_char {
    s.map(c_string).unwrap_or(ptr::null_mut())
}

/// Takes back and frees a string made by [`c_string`]; NULL is accepted.
///
/// # Safety
/// `s` must be NULL or a pointer returned by [`c_string`], not yet freed.
pub(crate) unsafe fn free_c_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: per this function's contract, `s` came from CString::into_raw
        // in `c_string` and is freed once.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Hands a vector to C as (pointer, length): a boxed slice, or (NULL, 0) when empty.
/// Taken back only by [`take_raw_slice`].
pub(crate) fn into_raw_slice<T>(v: Vec<T>) -> (*mut T, usize) {
    if v.is_empty() {
        return (ptr::null_mut(), 0);
    }
    let b = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b) as *mut T, len)
}

/// Takes back what [`into_raw_slice`] handed out; `None` for a NULL pointer.
///
/// # Safety
/// `p`/`len` must be NULL or exactly a pair returned by [`into_raw_slice`], not
/// yet taken back.
pub(crate) unsafe fn take_raw_slice<T>(p: *mut T, len: usize) -> Option<Box<[T]>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per this function's contract, `p`/`len` came from Box::into_raw of
    // a boxed slice of exactly `len` elements and are taken back once.
    Some(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, len)) })
}

/// Strings as an owned [`PeatStringList`] (freed by `peat_string_list_free`).
pub(crate) fn string_list(v: Vec<String>) -> PeatStringList {
    let (items, len) = into_raw_slice(v.into_iter().map(c_string).collect());
    PeatStringList { items, len }
}

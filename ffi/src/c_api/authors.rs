//! Who wrote a document's changes: `peat_node_authors` and its list.

use std::ffi::c_char;

use super::boundary::{call_out, into_raw_slice, str_arg, take_raw_slice};
use super::types::{PeatError, PeatNode, PeatStr};
use crate::records::{fixed_text as text, ChangeAuthorRecord};
use crate::sdk;

/// One change of a document and who signed it. Plain data: nothing inside
/// to free.
#[repr(C)]
pub struct PeatChangeAuthor {
    /// The Automerge change hash (64 hex digits).
    pub hash: [c_char; 65],
    /// The time its writer stamped it with (Unix ms).
    pub time_ms: i64,
    /// The node id that signed it (64 hex digits), empty when unsigned.
    pub author: [c_char; 65],
    /// Whether the signature checks out (false when unsigned).
    pub valid: bool,
}

/// A document's changes with their authors, owned by the library. Free
/// with [`peat_change_author_list_free`].
#[repr(C)]
pub struct PeatChangeAuthorList {
    /// `len` changes, oldest first; NULL when `len` is 0.
    pub items: *mut PeatChangeAuthor,
    /// Number of changes.
    pub len: usize,
}

impl From<ChangeAuthorRecord> for PeatChangeAuthor {
    fn from(c: ChangeAuthorRecord) -> Self {
        PeatChangeAuthor {
            hash: text(&c.hash),
            time_ms: c.time_ms,
            author: text(&c.author),
            valid: c.valid,
        }
    }
}

/// `*out` receives every change of document `collection`/`id`, oldest
/// first (causal order), with who signed it and whether the signature
/// checks out (each is checked again by this call). A document that does
/// not exist here is `PEAT_ERROR_NOT_FOUND`. Free with
/// [`peat_change_author_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_node_authors(
    node: PeatNode,
    collection: PeatStr,
    id: PeatStr,
    out: *mut PeatChangeAuthorList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let c = str_arg(collection, "collection")?;
        let i = str_arg(id, "id")?;
        let list = sdk::node_authors(node.id, c, i)?;
        let (items, len) = into_raw_slice(list.into_iter().map(PeatChangeAuthor::from).collect());
        Ok(PeatChangeAuthorList { items, len })
    })
}

/// Frees a change author list. Accepts a zeroed list.
///
/// # Safety
/// `list` must be zeroed or exactly as returned by [`peat_node_authors`].
#[no_mangle]
pub unsafe extern "C" fn peat_change_author_list_free(list: PeatChangeAuthorList) {
    // SAFETY: `items`/`len` are NULL or came from `into_raw_slice`, freed once.
    drop(unsafe { take_raw_slice(list.items, list.len) });
}

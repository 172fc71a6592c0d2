//! The C ABI's plain types. Ownership of everything here follows the one rule
//! written at the top of `include/peat_mesh.h`: inputs are borrowed for the
//! call, everything returned is the caller's and freed only with the library's
//! own `peat_*_free` functions.

use std::ffi::{c_char, CString};

use crate::records::PeerSource;

/// An error returned by the library. Free with [`peat_error_free`].
pub struct PeatError {
    pub(crate) code: i32,
    pub(crate) message: CString,
}

/// A borrowed UTF-8 string: `ptr` may be NULL only when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatStr {
    /// First byte (need not be NUL-terminated).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// Bytes owned by the library. Free with [`peat_bytes_free`] (which accepts a
/// zeroed value).
#[repr(C)]
pub struct PeatBytes {
    /// First byte; NULL when `len` is 0.
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
}

/// A list of NUL-terminated strings owned by the library. Free with
/// [`peat_string_list_free`] (which accepts a zeroed list).
#[repr(C)]
pub struct PeatStringList {
    /// `len` strings; NULL when `len` is 0.
    pub items: *mut *mut c_char,
    /// Number of strings.
    pub len: usize,
}

/// A node handle. `id == 0` is never valid.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatNode {
    /// Opaque id.
    pub id: u64,
}

/// A subscription handle (documents or peer events). `id == 0` is never valid.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatSubscription {
    /// Opaque id.
    pub id: u64,
}

/// A discovery that wants a peer, one bit each: `PeatPeerInfo::sources` is an
/// OR of them; `PeatEvent::source` is one (or NONE).
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatPeerSource {
    /// No discovery (an event that is not PeerDiscovered or PeerLost).
    None = 0,
    /// A static peer (configured, or added with `peat_node_add_peer`).
    Static = 1,
    /// Announced on the local network by mDNS.
    Mdns = 2,
    /// Dialled with `peat_node_connect`.
    Direct = 4,
    /// A ready endpoint of the Kubernetes Service (reported by
    /// `peat-mesh-node`'s Kubernetes discovery; an SDK node never sets it).
    Kubernetes = 8,
}

impl From<PeerSource> for PeatPeerSource {
    fn from(s: PeerSource) -> Self {
        match s {
            PeerSource::Static => PeatPeerSource::Static,
            PeerSource::Mdns => PeatPeerSource::Mdns,
            PeerSource::Direct => PeatPeerSource::Direct,
            PeerSource::Kubernetes => PeatPeerSource::Kubernetes,
        }
    }
}

/// A cancel token for long operations; `id == 0` means "no token".
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatCancel {
    /// Opaque id.
    pub id: u64,
}

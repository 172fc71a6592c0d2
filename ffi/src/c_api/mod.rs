//! The C ABI over [`crate::sdk`] and [`crate::blobs`]. See `include/peat_mesh.h`
//! for the ownership rule.
//!
//! Every function returns a status ([`ErrorCode`](crate::error::ErrorCode) as
//! `int32_t`, 0 on success) and, on failure, stores an owned [`PeatError`] in
//! `*err` when `err` is not NULL. Panics are caught at the boundary and
//! reported as `PEAT_STATUS_INTERNAL`.
//!
//! The boundary (clearing and filling `*err`, catching panics, NULL checks,
//! UTF-8 conversion, writing out-parameters, handing owned memory to C and
//! taking it back) is written once, in [`boundary`], and the cleanup hook of
//! the callback structs once, in [`hook`]. The `extern "C"` functions, one file
//! per domain, only name their arguments and call the SDK. cbindgen writes the
//! header's functions in the order of the files below (each kept in its own
//! group so that rustfmt leaves the order alone).

/// The C ABI's plain types: borrowed strings, owned strings, bytes and lists,
/// handles, the error.
mod types;

/// The call wrapper and argument/out-parameter conversions, written once.
mod boundary;

/// The cleanup hook (`on_drop`) of every callback struct.
mod hook;

/// The library, the runtime, cancel tokens, opening and closing nodes.
mod node;

/// Connecting, static peers, the peer table and the node's counters.
mod peers;

/// Links besides UDP: options, health, silencing.
mod links;

/// Document writes, reads, listing and Automerge bytes.
mod documents;

/// Ephemeral messages.
mod ephemeral;

/// Beacons.
mod beacons;

/// Collection policies, garbage collection and storage counters.
mod lifecycle;

/// Events (`PeatEvent`) made from the SDK's event records.
mod events;

/// Polled and pushed subscriptions and the log callback.
mod subscriptions;

/// The error accessors and every `peat_*_free` function.
mod memory;

/// Blobs and transfers.
mod blobs;

/// Trust: authority, certificates, membership, revocations.
mod trust;

/// Who wrote a document's changes.
mod authors;

/// Listings: collections with their counts, running blob fetches.
mod catalog;

/// Version of this C ABI; bumped on any incompatible change.
pub const PEAT_ABI_VERSION: u32 = 12;

pub use authors::*;
pub use beacons::*;
pub use blobs::*;
pub use catalog::*;
pub use documents::*;
pub use ephemeral::*;
pub use events::*;
pub use lifecycle::*;
pub use links::*;
pub use memory::*;
pub use node::*;
pub use peers::*;
pub use subscriptions::*;
pub use trust::*;
pub use types::*;

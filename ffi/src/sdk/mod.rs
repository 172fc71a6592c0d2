//! The SDK layer in safe Rust: every behaviour the language bindings share.
//! Calls block the caller's thread while the work runs on the SDK runtime, with
//! a deadline where they can wait; the C ABI, Python, Go and Kotlin layers only
//! convert types around these functions. They take and return the plain data
//! of [`crate::records`].
//!
//! One file per domain: the library and its nodes ([`node`]: secrets, cancel
//! tokens, open, close, shutdown), [`ephemeral`] (topics and beacons), [`lifecycle`] (collection policies, garbage collection, storage counters), [`trust`] (authority, certificates, membership, revocations), [`links`] (links at open, PACE, silencing),
//! [`peers`], [`documents`] and [`subscriptions`]; [`args`] holds the argument checks they share.

mod args;
mod bandwidth;
mod documents;
mod ephemeral;
mod lifecycle;
mod links;
mod node;
mod peers;
mod subscriptions;
mod trust;

#[cfg(test)]
mod ephemeral_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod trust_tests;

pub use bandwidth::*;
pub use documents::*;
pub use ephemeral::*;
pub use lifecycle::*;
pub use links::*;
pub use node::*;
pub use peers::*;
pub use subscriptions::*;
pub use trust::*;

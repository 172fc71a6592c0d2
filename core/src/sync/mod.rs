//! Document sync between admitted peers.
//!
//! After admission, the dialling side reconciles the two version sets with
//! range-based set reconciliation ([`reconcile`]); every document whose version differs is then
//! brought up to date by exchanging Automerge heads and the changes the other
//! side lacks. Live changes are pushed to every connected peer as they commit,
//! and changes received from one peer are passed on to the others, so nodes that
//! never connect directly still converge through those between them.
//!
//! Modules, in the order data flows: [`protocol`] (the router's entry: one
//! session per admitted connection), `session` (the reader), `incoming`
//! (frame batches and change pieces), `engine` (applying changes, fan-out to
//! other sessions' outboxes, subscriber events), `outbox` and `replies` (what is
//! owed to a peer, bounded), `writer` (draining it to the stream).

pub(crate) mod engine;
mod incoming;
mod outbox;
mod protocol;
pub(crate) mod rbsr;
pub(crate) mod reconcile;
pub(crate) mod replies;
mod session;
mod signing;
mod stats;
mod writer;

#[cfg(test)]
mod lane_tests;

pub(crate) use engine::Engine;
pub(crate) use protocol::SyncProtocol;
pub use stats::{LatencyHistogram, SyncStats, TrafficStats, LATENCY_BOUNDS_MS};

//! # peat-mesh
//!
//! Nodes that find each other, keep Automerge documents in sync over
//! unreliable links, and store them durably — with no server and no internet.
//!
//! Read top-down, the crate follows the data:
//!
//! - [`Node`] — open one with a [`NodeConfig`], write and read documents, connect to peers.
//! - [`discovery`] — where peers may be: static peers and mDNS on the LAN. It
//!   only discovers; it never dials.
//! - [`links`] — links besides the UDP socket (an in-process medium with
//!   injected faults today), bonded under iroh: PACE picks each peer's link
//!   from probed health, and a change of link is invisible above.
//! - [`transport`] — the iroh QUIC endpoint (no relays, nothing beyond what you
//!   configure), the connection manager that dials wanted peers, the registry
//!   of admitted connections (one per peer pair) and the router that hands
//!   each stream to the protocol it names, and the peer table.
//! - [`security`] — node identity ([`NodeId`]) and [`Formation`] admission: a peer must prove
//!   the formation secret before any document byte flows; only admission makes
//!   the `Admitted` connections protocols run on.
//! - [`trust`] — a formation's authority key, the membership certificates it
//!   and its delegates issue to device keys, and the checks a chain passes;
//!   with [`NodeConfig::trust`] admission checks certificates too, and
//!   revocations spread to every node (`revocations`, internal) and cut the
//!   holder off ([`Node::revoke`]).
//! - [`sync`] — the document sync protocol: range-based set reconciliation plus
//!   Automerge change exchange.
//! - [`authorship`] — signed changes: each change signed by its writer's node
//!   key, checked on receipt, kept or refused by its collection's
//!   [`SignaturePolicy`]; [`Node::authors`] says who wrote what.
//! - [`storage`] — documents persisted in redb, durable before a write returns.
//! - [`blobs`] — large files, content-addressed and verified, fetched resumably
//!   over the same admitted connections ([`Node::blobs`]); a protocol of the
//!   router like sync.
//! - [`ephemeral`] — fire-and-forget messages on topics ([`Node::publish`]):
//!   QUIC datagrams on the admitted connections, never stored, expiring,
//!   latest-only on request, forwarded (signed) along a hop limit.
//! - [`beacons`] — "who is near me": each node's position and state as a
//!   signed ephemeral message, kept in a bounded geohash-indexed table that
//!   answers radius and cell queries ([`Node::beacons_near`]).
//! - [`policy`] — per-collection policies: priority class, sync mode, TTL,
//!   retention, delete rule ([`Node::set_policy`]).
//! - `lifecycle` (internal) — garbage collection: expired documents and
//!   tombstones removed, retention and the storage budget enforced
//!   ([`Node::collect_garbage`]).
//! - [`bandwidth`] — budgets per peer and per link that every sender waits on,
//!   by class ([`Node::set_bandwidth`]).
//! - `wire` (internal) — the length-prefixed frame format, defensively decoded.
//!
//! ```no_run
//! # async fn demo() -> peat_mesh::Result<()> {
//! use peat_mesh::{Formation, Node, NodeConfig};
//! use std::time::Duration;
//!
//! // A new formation: a random 32-byte secret (share it with the members out of band).
//! let formation = Formation::generate("alpha");
//! let a = Node::open(NodeConfig::new("/tmp/a", formation.clone()).listen("127.0.0.1:0".parse().unwrap())).await?;
//! let b = Node::open(NodeConfig::new("/tmp/b", formation).listen("127.0.0.1:0".parse().unwrap())).await?;
//! b.connect(&a.peer_addr()).await?;
//! a.put("tracks", "t1", &serde_json::json!({"callsign": "ALPHA-1"})).await?;
//! // ... shortly after, b.get("tracks", "t1") returns the same document.
//! a.close(Duration::from_secs(5)).await?;
//! b.close(Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

pub mod authorship;
pub mod bandwidth;
pub mod beacons;
pub mod blobs;
mod clock;
mod config;
pub mod discovery;
mod documents;
pub mod ephemeral;
mod error;
mod events;
mod hex;
mod identity;
mod lifecycle;
pub mod links;
mod locks;
mod node;
pub mod policy;
mod revocations;
pub mod security;
pub mod storage;
pub mod sync;
pub mod transport;
pub mod trust;
mod wire;

#[cfg(test)]
mod hostile_peer_tests;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

/// Entry points for `peat-bench` (the reconciliation simulator); not API.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::beacons::table::BeaconTable;
    pub use crate::sync::reconcile::{simulate, simulate_shaped};
}

pub use authorship::{ChangeAuthor, SignatureStats};
pub use bandwidth::{Bandwidth, BandwidthStats};
pub use beacons::{Beacon, BeaconConfig, BeaconEvent, BeaconInfo, Nearby, OperationalState};
pub use config::{NodeConfig, PeerAddr};
pub use discovery::{Source, MAX_KUBERNETES_PEERS};
pub use documents::{DocEvent, Origin};
pub use ephemeral::{EphemeralStats, Message, PublishOptions, TopicSubscription};
pub use error::{Error, ErrorKind, Result};
pub use events::{Event, Subscription};
pub use identity::NodeId;
pub use lifecycle::{GarbageReport, StorageBudget, StorageStats};
pub use node::{CollectionInfo, ListOptions, Node, MAX_COLLECTIONS_PAGE};
pub use policy::{
    CollectionPolicy, DeleteRule, Policies, Priority, Retention, SignaturePolicy, SyncMode,
};
pub use security::Formation;
pub use storage::{DocKey, ListPage};
pub use transport::{PeerEvent, PeerInfo, PeerState};

/// Re-export of the Automerge version this crate is built on, for [`Node::update`].
pub use automerge;

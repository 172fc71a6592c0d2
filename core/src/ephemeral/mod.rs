//! Ephemeral messages: fire-and-forget, latest-only, expiring — positions,
//! heartbeats and readings that are stale a second later and must not become
//! document history.
//!
//! [`crate::Node::publish`] sends a message on a topic to every connected
//! admitted peer as one QUIC datagram on the connection already there (so it
//! is authenticated and encrypted by QUIC, and only members read it); nothing
//! is stored. A message carries its time to live and its age, and every
//! receiver enforces them: an expired message is never delivered, forwarded
//! or kept. Receivers deliver to topic subscriptions (exact or prefix,
//! optionally latest-only: one message per origin and topic queued, the
//! newest) and keep the latest message of each origin and topic for
//! [`crate::Node::latest`].
//!
//! **Forwarding.** A message published with a hop limit above 0 is signed by
//! its publisher's Ed25519 key (its node id), and each node that hears it for
//! the first time passes it on to its other peers with the limit lowered, so
//! a line A–B–C gets A's messages at C. Copies are suppressed by message id
//! (origin, number) with a per-origin window of the last 1,024 message numbers. A message that
//! did not come straight from its publisher is accepted only with a valid
//! signature: a captured peer cannot speak for another node. A direct message
//! needs no signature (QUIC authenticated the sender), so hop limit 0 is the
//! cheap path.
//!
//! **Bounds.** Topic ≤ [`MAX_TOPIC`] bytes, payload ≤ [`MAX_PAYLOAD`] bytes
//! (refused at the publisher; a receiver drops a longer datagram before
//! copying it), ttl ≤ [`MAX_TTL`], hop limit ≤ [`MAX_HOPS`]. Per peer, at most
//! [`VERIFY_PER_SEC`] signatures are checked and [`FORWARD_PER_SEC`] messages
//! forwarded per second (burst the same); past that messages are dropped and
//! counted, so a flooding peer costs bounded CPU and is not amplified. QUIC's
//! datagram buffers are bounded (1 MiB out, per connection; when full the
//! oldest queued datagram gives way to the newest, counted in
//! [`EphemeralStats::displaced`]). Subscription queues are bounded like every
//! subscription (lag is reported); the latest table holds
//! `NodeConfig::latest_capacity` entries.

mod latest;
pub(crate) mod message;
pub(crate) mod multicast;
pub(crate) mod protocol;
pub(crate) mod seal;
pub(crate) mod service;
mod subscription;
pub(crate) mod window;

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

pub use crate::config::MulticastConfig;
pub use message::{check_topic, MAX_HOPS, MAX_PAYLOAD, MAX_TOPIC, MAX_TTL};
pub use subscription::TopicSubscription;

use crate::error::{Error, Result};
use crate::NodeId;

/// Signatures checked per peer per second, at most.
pub const VERIFY_PER_SEC: u32 = 5_000;
/// Messages forwarded per incoming peer per second, at most.
pub const FORWARD_PER_SEC: u32 = 5_000;
/// Topics starting with this are the node's own (beacons); applications
/// cannot publish on them.
pub const RESERVED_PREFIX: &str = "_peat/";

/// How to publish one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOptions {
    /// How long the message lives (1 ms ..= [`MAX_TTL`]); receivers drop it after.
    pub ttl: Duration,
    /// How many times it may be forwarded (0 ..= [`MAX_HOPS`]); above 0 it is signed.
    pub hop_limit: u8,
    /// Also send it on the node's secured multicast path, if it has one
    /// (`NodeConfig::multicast`); then it is signed. Default true.
    pub multicast: bool,
    /// Its class under the node's bandwidth budgets ([`crate::bandwidth`]):
    /// a message is never queued, so one a budget has no room for now — or
    /// that a sender of a higher class waits ahead of — is dropped and
    /// counted. Default `High`. The class is the publisher's: it is not
    /// carried on the wire, and forwarders send in the default class.
    pub priority: crate::Priority,
}

impl Default for PublishOptions {
    /// Ten seconds, two hops, the multicast path if the node has one, high class.
    fn default() -> Self {
        PublishOptions {
            ttl: Duration::from_secs(10),
            hop_limit: 2,
            multicast: true,
            priority: crate::Priority::High,
        }
    }
}

/// How a message reached this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// On the connection to this peer (the publisher, or a forwarder).
    Peer(NodeId),
    /// On the secured multicast path.
    Multicast,
}

/// A message received.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who published it.
    pub origin: NodeId,
    /// Its topic.
    pub topic: String,
    /// Its bytes.
    pub payload: Bytes,
    /// True if it was published as JSON ([`crate::Node::publish_json`]).
    pub json: bool,
    /// The publisher's number for it (increasing per publisher).
    pub seq: u64,
    /// The publisher's clock when it was published, Unix ms.
    pub sent_at_ms: u64,
    /// How many nodes forwarded it.
    pub hops: u8,
    /// How it arrived.
    pub via: Via,
    /// When it expires, on this node's clock.
    pub expires_at: Instant,
}

impl Message {
    /// Time left before it expires (zero once expired).
    pub fn ttl_left(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    /// The payload as JSON.
    pub fn json_value(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Error::InvalidArgument(format!("payload is not JSON: {e}")))
    }
}

/// Which topics a subscription takes: `"*"` every topic, `"pos/*"` every
/// topic starting with `pos/`, anything else that topic only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicFilter {
    All,
    Prefix(String),
    Exact(String),
}

impl TopicFilter {
    /// Parses the text form.
    pub fn parse(s: &str) -> Result<TopicFilter> {
        if s == "*" {
            return Ok(TopicFilter::All);
        }
        if let Some(p) = s.strip_suffix('*') {
            check_topic(p)?;
            return Ok(TopicFilter::Prefix(p.to_string()));
        }
        check_topic(s)?;
        Ok(TopicFilter::Exact(s.to_string()))
    }

    /// True if it takes `topic`.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicFilter::All => !topic.starts_with(RESERVED_PREFIX),
            TopicFilter::Prefix(p) => topic.starts_with(p.as_str()),
            TopicFilter::Exact(t) => topic == t,
        }
    }
}

macro_rules! stats {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Counters of the ephemeral path since the node opened.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct EphemeralStats {
            $( $(#[$doc])* pub $name: u64, )*
        }

        #[derive(Default)]
        pub(crate) struct Counters {
            $( pub $name: std::sync::atomic::AtomicU64, )*
        }

        impl Counters {
            pub fn snapshot(&self) -> EphemeralStats {
                EphemeralStats {
                    $( $name: self.$name.load(std::sync::atomic::Ordering::Relaxed), )*
                }
            }
        }
    };
}

stats! {
    /// Messages this node published.
    published,
    /// Datagrams handed to QUIC (one per peer per message, forwards included).
    sent,
    /// Datagrams received.
    received,
    /// Messages delivered (to subscriptions and the latest table, or the beacon table).
    delivered,
    /// Messages passed on to other peers (one per message, not per peer).
    forwarded,
    /// Copies of a message already seen, dropped.
    duplicates,
    /// Messages below their origin's window, dropped.
    stale,
    /// Messages that arrived expired, dropped.
    expired,
    /// Messages that expired unread in a subscription queue, skipped.
    expired_unread,
    /// Datagrams that did not decode (or broke a bound), dropped.
    malformed,
    /// Messages not from their publisher without a signature, dropped.
    unsigned,
    /// Messages with a signature that does not verify, dropped.
    bad_signature,
    /// Messages dropped because their peer exceeded its verification budget.
    rate_limited,
    /// Messages not forwarded because their peer exceeded its forwarding budget.
    forward_limited,
    /// Datagrams larger than the path allows at the moment, not sent.
    too_large_for_path,
    /// Datagrams not sent because the peer takes none.
    unsupported,
    /// Datagrams queued while QUIC's buffer was full (an older one gave way).
    displaced,
    /// Sealed datagrams sent on the multicast path.
    multicast_sent,
    /// Sealed datagrams the multicast socket could not send (buffer full, no route).
    multicast_send_failed,
    /// Datagrams received on the multicast path.
    multicast_received,
    /// Multicast datagrams of another formation, dropped.
    foreign_formation,
    /// Multicast datagrams of a key epoch too far from this node's clock, dropped.
    wrong_key,
    /// Multicast datagrams that did not open (forged, tampered, another secret), dropped.
    bad_seal,
    /// Multicast messages whose timestamp is outside their lifetime plus the
    /// allowed clock skew (old replays), dropped.
    clock_skew,
    /// Entries in the latest table now.
    latest_len,
    /// Entries evicted from the full latest table.
    latest_evicted,
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod multicast_tests;

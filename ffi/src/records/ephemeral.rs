//! The records of ephemeral messages and beacons: options at open, what a
//! publish takes, what a subscription yields, and the beacon table's answers.

use std::time::Duration;

use peat_mesh::ephemeral::Via;
use peat_mesh::{Beacon, BeaconEvent, BeaconInfo, Event, Message, Nearby, OperationalState};

use crate::error::SdkResult;

/// Ephemeral options at open; zero or empty fields take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct EphemeralOptions {
    /// Beacon preset: `default`, `tactical` or `distributed` (empty: `default`).
    pub beacon_preset: String,
    /// Beacon interval, overriding the preset's (0: the preset's).
    pub beacon_interval_ms: u64,
    /// Beacon time to live, overriding the preset's (0: the preset's).
    pub beacon_ttl_ms: u64,
    /// The secured multicast path's group, `ADDR:PORT` (an IPv4 multicast
    /// group or a broadcast address); empty: no multicast path.
    pub multicast_group: String,
    /// The local interface address the multicast path sends from and joins on.
    pub multicast_interface: String,
}

/// How to publish one message; a zero `ttl_ms` takes 10 s.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct PublishOptionsRecord {
    /// Lifetime in ms (1 ms to 1 h; 0: 10 s). Receivers drop it after.
    pub ttl_ms: u64,
    /// How many times it may be forwarded (0 to 8); above 0 it is signed.
    pub hop_limit: u8,
    /// Also send it on the node's multicast path, if it has one.
    pub multicast: bool,
    /// Its class under bandwidth budgets by name ("critical" … "bulk"; ""
    /// for high, the default).
    #[uniffi(default = "")]
    pub priority: String,
}

impl PublishOptionsRecord {
    /// The core's options (an unknown class is `InvalidArgument`).
    pub fn to_core(&self) -> SdkResult<peat_mesh::PublishOptions> {
        Ok(peat_mesh::PublishOptions {
            ttl: if self.ttl_ms == 0 {
                Duration::from_secs(10)
            } else {
                Duration::from_millis(self.ttl_ms)
            },
            hop_limit: self.hop_limit,
            multicast: self.multicast,
            priority: super::priority_arg(&self.priority, peat_mesh::Priority::High)?,
        })
    }
}

/// A message received.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MessageRecord {
    /// Who published it (node id).
    pub origin: String,
    /// Its topic.
    pub topic: String,
    /// Its bytes.
    pub payload: Vec<u8>,
    /// Published as JSON (the payload is JSON text).
    pub json: bool,
    /// The publisher's number for it.
    pub seq: u64,
    /// The publisher's clock at publish, Unix ms.
    pub sent_at_ms: u64,
    /// How many nodes forwarded it.
    pub hops: u8,
    /// The peer it came from (the publisher or a forwarder); `None` when it
    /// came on the multicast path.
    pub via_peer: Option<String>,
    /// Milliseconds left before it expires.
    pub ttl_left_ms: u64,
}

impl From<&Message> for MessageRecord {
    fn from(m: &Message) -> Self {
        MessageRecord {
            origin: m.origin.to_string(),
            topic: m.topic.clone(),
            payload: m.payload.to_vec(),
            json: m.json,
            seq: m.seq,
            sent_at_ms: m.sent_at_ms,
            hops: m.hops,
            via_peer: match m.via {
                Via::Peer(p) => Some(p.to_string()),
                Via::Multicast => None,
            },
            ttl_left_ms: m.ttl_left().as_millis() as u64,
        }
    }
}

/// What a topic subscription yields.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum MessageEventRecord {
    /// A message.
    Message(MessageRecord),
    /// This many messages were dropped because the subscriber fell behind.
    Lagged(u64),
}

impl From<Event<Message>> for MessageEventRecord {
    fn from(e: Event<Message>) -> Self {
        match e {
            Event::Item(m) => MessageEventRecord::Message((&m).into()),
            Event::Lagged(n) => MessageEventRecord::Lagged(n),
        }
    }
}

/// A node's operational state in its beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Enum)]
pub enum NodeState {
    /// Not said.
    #[default]
    Unknown,
    /// Up and able to take work.
    Ready,
    /// Up, busy.
    Busy,
    /// Up with reduced capability.
    Degraded,
    /// Going away or out of action.
    Offline,
}

impl NodeState {
    /// The stable lower-case name.
    pub fn name(self) -> &'static str {
        OperationalState::from(self).name()
    }
}

impl From<NodeState> for OperationalState {
    fn from(s: NodeState) -> Self {
        match s {
            NodeState::Unknown => OperationalState::Unknown,
            NodeState::Ready => OperationalState::Ready,
            NodeState::Busy => OperationalState::Busy,
            NodeState::Degraded => OperationalState::Degraded,
            NodeState::Offline => OperationalState::Offline,
        }
    }
}

impl From<OperationalState> for NodeState {
    fn from(s: OperationalState) -> Self {
        match s {
            OperationalState::Unknown => NodeState::Unknown,
            OperationalState::Ready => NodeState::Ready,
            OperationalState::Busy => NodeState::Busy,
            OperationalState::Degraded => NodeState::Degraded,
            OperationalState::Offline => NodeState::Offline,
        }
    }
}

/// What a node says about itself in its beacon.
#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct BeaconInfoRecord {
    /// Latitude, degrees (-90..=90).
    pub lat: f64,
    /// Longitude, degrees (-180..=180).
    pub lon: f64,
    /// Altitude, metres.
    pub alt_m: Option<f32>,
    /// Role (up to 32 bytes).
    pub role: String,
    /// Level in the hierarchy (0 = the edge).
    pub level: u8,
    /// Capabilities (up to 8, each up to 32 bytes).
    pub capabilities: Vec<String>,
    /// Operational state.
    pub state: NodeState,
    /// Battery, percent.
    pub battery_pct: Option<u8>,
    /// CPU load, percent.
    pub cpu_pct: Option<u8>,
    /// Bandwidth available, kbit/s.
    pub bandwidth_kbps: Option<u32>,
}

impl From<BeaconInfoRecord> for BeaconInfo {
    fn from(r: BeaconInfoRecord) -> Self {
        BeaconInfo {
            lat: r.lat,
            lon: r.lon,
            alt_m: r.alt_m,
            role: r.role,
            level: r.level,
            capabilities: r.capabilities,
            state: r.state.into(),
            battery_pct: r.battery_pct,
            cpu_pct: r.cpu_pct,
            bandwidth_kbps: r.bandwidth_kbps,
        }
    }
}

impl From<BeaconInfo> for BeaconInfoRecord {
    fn from(i: BeaconInfo) -> Self {
        BeaconInfoRecord {
            lat: i.lat,
            lon: i.lon,
            alt_m: i.alt_m,
            role: i.role,
            level: i.level,
            capabilities: i.capabilities,
            state: i.state.into(),
            battery_pct: i.battery_pct,
            cpu_pct: i.cpu_pct,
            bandwidth_kbps: i.bandwidth_kbps,
        }
    }
}

/// A beacon heard, with its distance for a radius query.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct BeaconRecord {
    /// The node it is about (its signature was checked).
    pub node: String,
    /// What it says.
    pub info: BeaconInfoRecord,
    /// Its geohash at the publisher's precision.
    pub geohash: String,
    /// The publisher's clock when sent, Unix ms.
    pub timestamp_ms: u64,
    /// This node's clock when heard, Unix ms.
    pub received_ms: u64,
    /// How many nodes forwarded it.
    pub hops: u8,
    /// Metres from the query point (radius queries); `None` otherwise.
    pub distance_m: Option<f64>,
}

impl From<Beacon> for BeaconRecord {
    fn from(b: Beacon) -> Self {
        BeaconRecord {
            node: b.node.to_string(),
            info: b.info.into(),
            geohash: b.geohash,
            timestamp_ms: b.timestamp_ms,
            received_ms: b.received_ms,
            hops: b.hops,
            distance_m: None,
        }
    }
}

impl From<Nearby> for BeaconRecord {
    fn from(n: Nearby) -> Self {
        BeaconRecord {
            distance_m: Some(n.distance_m),
            ..n.beacon.into()
        }
    }
}

/// A beacon table event.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum BeaconEventRecord {
    /// A node's first beacon (or first since it expired).
    Appeared(BeaconRecord),
    /// A newer beacon of a node in the table.
    Updated(BeaconRecord),
    /// A node's beacon expired (its node id).
    Expired(String),
    /// A node's beacon was evicted from the full table (its node id).
    Evicted(String),
    /// This many events were dropped because the subscriber fell behind.
    Lagged(u64),
}

impl From<Event<BeaconEvent>> for BeaconEventRecord {
    fn from(e: Event<BeaconEvent>) -> Self {
        match e {
            Event::Item(BeaconEvent::Appeared(b)) => BeaconEventRecord::Appeared(b.into()),
            Event::Item(BeaconEvent::Updated(b)) => BeaconEventRecord::Updated(b.into()),
            Event::Item(BeaconEvent::Expired(n)) => BeaconEventRecord::Expired(n.to_string()),
            Event::Item(BeaconEvent::Evicted(n)) => BeaconEventRecord::Evicted(n.to_string()),
            Event::Lagged(n) => BeaconEventRecord::Lagged(n),
        }
    }
}

/// Counters of the ephemeral path (a summary of the core's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
#[repr(C)]
pub struct EphemeralStatsRecord {
    /// Messages this node published.
    pub published: u64,
    /// Datagrams received (connections and multicast).
    pub received: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages forwarded to other peers.
    pub forwarded: u64,
    /// Copies and replays dropped.
    pub duplicates: u64,
    /// Messages that arrived or waited past their lifetime, dropped.
    pub expired: u64,
    /// Datagrams that did not decode, broke a bound or lied, dropped.
    pub malformed: u64,
    /// Messages without a valid signature where one is needed, dropped.
    pub bad_signature: u64,
    /// Multicast datagrams of another formation, another key epoch, or that
    /// did not open, dropped.
    pub refused_sealed: u64,
    /// Messages dropped by a peer's or the multicast path's budget.
    pub rate_limited: u64,
    /// Sealed datagrams sent on the multicast path.
    pub multicast_sent: u64,
}

impl From<peat_mesh::EphemeralStats> for EphemeralStatsRecord {
    fn from(s: peat_mesh::EphemeralStats) -> Self {
        EphemeralStatsRecord {
            published: s.published,
            received: s.received + s.multicast_received,
            delivered: s.delivered,
            forwarded: s.forwarded,
            duplicates: s.duplicates + s.stale,
            expired: s.expired + s.expired_unread + s.clock_skew,
            malformed: s.malformed,
            bad_signature: s.bad_signature + s.unsigned,
            refused_sealed: s.foreign_formation + s.wrong_key + s.bad_seal,
            rate_limited: s.rate_limited + s.forward_limited,
            multicast_sent: s.multicast_sent,
        }
    }
}

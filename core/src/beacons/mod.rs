//! Geohash beacons: "who is near me".
//!
//! A node (or the application for it, [`crate::Node::set_beacon`]) publishes a
//! [`BeaconInfo`] — position, role and level, capabilities, operational state
//! and resources — at the interval of its [`BeaconConfig`]. A beacon travels as
//! a signed ephemeral message on a reserved topic (so it goes wherever
//! ephemeral messages go: datagrams to admitted peers, forwarding, the
//! multicast path), and every node keeps the beacons it hears in a bounded,
//! expiring [`table`] indexed by geohash, which answers radius, cell and
//! changed-since queries and emits [`BeaconEvent`]s.

mod codec;
pub mod geohash;
mod stored;
pub(crate) mod table;

use std::time::Duration;

pub use codec::{MAX_CAPABILITIES, MAX_LABEL};
pub use geohash::{distance_m, Cell};
pub use table::{BeaconStats, Nearby};

use crate::error::{Error, Result};
use crate::NodeId;

/// Longest beacon ttl and hop limit: those of every ephemeral message
/// (beacons sit above the ephemeral path and do not import it; a test checks
/// the two agree).
const MAX_TTL: Duration = Duration::from_secs(3600);
const MAX_HOPS: u8 = 8;

/// The ephemeral topic beacons travel on (reserved: applications cannot
/// publish on topics starting with `_peat/`).
pub const BEACON_TOPIC: &str = "_peat/beacon";

/// A node's operational state, as its beacon tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OperationalState {
    /// Not said.
    #[default]
    Unknown,
    /// Up and able to take work.
    Ready,
    /// Up, busy with work.
    Busy,
    /// Up with reduced capability (low battery, a failed sensor, a poor link).
    Degraded,
    /// Going away or out of action.
    Offline,
}

impl OperationalState {
    /// Its number on the wire and in the C ABI.
    pub fn code(self) -> u8 {
        match self {
            OperationalState::Unknown => 0,
            OperationalState::Ready => 1,
            OperationalState::Busy => 2,
            OperationalState::Degraded => 3,
            OperationalState::Offline => 4,
        }
    }

    /// From its number; `None` for an unknown one.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => OperationalState::Unknown,
            1 => OperationalState::Ready,
            2 => OperationalState::Busy,
            3 => OperationalState::Degraded,
            4 => OperationalState::Offline,
            _ => return None,
        })
    }

    /// Its lower-case name ("ready", ...).
    pub fn name(self) -> &'static str {
        match self {
            OperationalState::Unknown => "unknown",
            OperationalState::Ready => "ready",
            OperationalState::Busy => "busy",
            OperationalState::Degraded => "degraded",
            OperationalState::Offline => "offline",
        }
    }

    /// From its name.
    pub fn from_name(s: &str) -> Result<Self> {
        (0..=4)
            .filter_map(OperationalState::from_code)
            .find(|st| st.name() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "operational state is unknown, ready, busy, degraded or offline, not {s:?}"
                ))
            })
    }
}

/// What a node says about itself in its beacon.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BeaconInfo {
    /// Latitude, degrees (-90..=90).
    pub lat: f64,
    /// Longitude, degrees (-180..=180).
    pub lon: f64,
    /// Altitude, metres, if known.
    pub alt_m: Option<f32>,
    /// Role, free text up to [`MAX_LABEL`] bytes ("sensor", "relay", "command").
    pub role: String,
    /// Level in the formation's hierarchy (0 = the edge).
    pub level: u8,
    /// Capabilities, up to [`MAX_CAPABILITIES`] labels of up to [`MAX_LABEL`] bytes.
    pub capabilities: Vec<String>,
    /// Operational state.
    pub state: OperationalState,
    /// Battery, percent (0..=100).
    pub battery_pct: Option<u8>,
    /// CPU load, percent (0..=100).
    pub cpu_pct: Option<u8>,
    /// Bandwidth available, kbit/s.
    pub bandwidth_kbps: Option<u32>,
}

impl BeaconInfo {
    /// A beacon at a position, nothing else said.
    pub fn at(lat: f64, lon: f64) -> BeaconInfo {
        BeaconInfo {
            lat,
            lon,
            ..Default::default()
        }
    }

    /// Checks every field: coordinates in range and not NaN, labels bounded,
    /// percentages at most 100.
    pub fn check(&self) -> Result<()> {
        geohash::check_coords(self.lat, self.lon)?;
        if let Some(a) = self.alt_m {
            if !a.is_finite() {
                return Err(Error::InvalidArgument("altitude must be finite".into()));
            }
        }
        codec::check_label("role", &self.role)?;
        if self.capabilities.len() > MAX_CAPABILITIES {
            return Err(Error::InvalidArgument(format!(
                "at most {MAX_CAPABILITIES} capabilities"
            )));
        }
        for c in &self.capabilities {
            codec::check_label("capability", c)?;
        }
        for (what, v) in [("battery", self.battery_pct), ("cpu", self.cpu_pct)] {
            if v.is_some_and(|v| v > 100) {
                return Err(Error::InvalidArgument(format!(
                    "{what} is a percentage (0..=100)"
                )));
            }
        }
        Ok(())
    }
}

/// A beacon heard (or this node's own, as published).
#[derive(Debug, Clone, PartialEq)]
pub struct Beacon {
    /// Who sent it (its signature is checked).
    pub node: NodeId,
    /// What it says.
    pub info: BeaconInfo,
    /// Its geohash, at the publisher's precision (checked against the position).
    pub geohash: String,
    /// The publisher's clock when it was sent, Unix ms.
    pub timestamp_ms: u64,
    /// This node's clock when it was heard, Unix ms (what "changed since" compares).
    pub received_ms: u64,
    /// How many nodes forwarded it.
    pub hops: u8,
}

/// Beacon table events.
#[derive(Debug, Clone, PartialEq)]
pub enum BeaconEvent {
    /// A node's first beacon (or its first since it expired).
    Appeared(Beacon),
    /// A newer beacon of a node in the table.
    Updated(Beacon),
    /// A node's beacon outlived its time to live and was removed.
    Expired(NodeId),
    /// A node's beacon was removed to make room (the table was full).
    Evicted(NodeId),
}

/// How beacons are published and kept: geohash precision, interval, time
/// to live, hop limit and the table's bound.
#[derive(Debug, Clone, PartialEq)]
pub struct BeaconConfig {
    /// Geohash precision of the published cell (1..=12).
    pub precision: u8,
    /// How often this node's beacon is sent.
    pub interval: Duration,
    /// How long a beacon lives at receivers.
    pub ttl: Duration,
    /// How many times a beacon may be forwarded.
    pub hop_limit: u8,
    /// Most beacons kept; at the bound the one expiring soonest is evicted.
    pub table_capacity: usize,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig::preset("default").unwrap_or(BeaconConfig {
            precision: 7,
            interval: Duration::from_secs(5),
            ttl: Duration::from_secs(20),
            hop_limit: 2,
            table_capacity: 10_000,
        })
    }
}

impl BeaconConfig {
    /// A preset:
    ///
    /// | preset        | precision (cell)     | interval | ttl    | hops |
    /// |---------------|----------------------|----------|--------|------|
    /// | `default`     | 7 (153 m × 153 m)    | 5 s      | 20 s   | 2    |
    /// | `tactical`    | 8 (38 m × 19 m)      | 1 s      | 5 s    | 1    |
    /// | `distributed` | 5 (4.9 km × 4.9 km)  | 30 s     | 120 s  | 4    |
    ///
    /// `tactical` is for a squad moving on foot or in vehicles close
    /// together, `distributed` for sites spread over a region on thin links.
    /// Every preset keeps up to 10,000 beacons; the ttl is four intervals,
    /// so three lost beacons in a row do not make a node vanish.
    pub fn preset(name: &str) -> Result<BeaconConfig> {
        let (precision, interval, ttl, hop_limit) = match name {
            "default" => (7, 5, 20, 2),
            "tactical" => (8, 1, 5, 1),
            "distributed" => (5, 30, 120, 4),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "beacon preset is default, tactical or distributed, not {other:?}"
                )))
            }
        };
        Ok(BeaconConfig {
            precision,
            interval: Duration::from_secs(interval),
            ttl: Duration::from_secs(ttl),
            hop_limit,
            table_capacity: 10_000,
        })
    }

    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        if !(1..=geohash::MAX_PRECISION).contains(&self.precision) {
            return Err(Error::InvalidArgument("beacon precision is 1 to 12".into()));
        }
        if self.interval < Duration::from_millis(100) || self.interval > Duration::from_secs(3600) {
            return Err(Error::InvalidArgument(
                "beacon interval is 100 ms to 1 h".into(),
            ));
        }
        if self.ttl < self.interval || self.ttl > MAX_TTL {
            return Err(Error::InvalidArgument(
                "beacon ttl is at least the interval and at most 1 h".into(),
            ));
        }
        if self.hop_limit > MAX_HOPS {
            return Err(Error::InvalidArgument(format!(
                "beacon hop limit is at most {MAX_HOPS}"
            )));
        }
        if self.table_capacity == 0 || self.table_capacity > 1_000_000 {
            return Err(Error::InvalidArgument(
                "beacon table capacity is 1 to 1,000,000".into(),
            ));
        }
        Ok(())
    }
}

pub(crate) use codec::{decode as decode_beacon, encode as encode_beacon};

#[cfg(test)]
mod tests {
    #[test]
    fn bounds_agree_with_the_ephemeral_path() {
        assert_eq!(super::MAX_TTL, crate::ephemeral::MAX_TTL);
        assert_eq!(super::MAX_HOPS, crate::ephemeral::MAX_HOPS);
        for p in ["default", "tactical", "distributed"] {
            super::BeaconConfig::preset(p).unwrap().check().unwrap();
        }
    }
}

//! How the table keeps a beacon: compactly, since it keeps up to its
//! capacity of them. Labels (role, capabilities) are interned — nodes of one
//! formation mostly share a handful — and the geohash string is not kept (it
//! is the top of the position's index key at the publisher's precision).

use std::collections::HashSet;
use std::sync::Arc;

use tokio::time::Instant;

use super::geohash::Cell;
use super::{Beacon, BeaconInfo, OperationalState};
use crate::NodeId;

/// Interned strings, each kept while an entry refers to it.
#[derive(Default)]
pub(super) struct Labels {
    set: HashSet<Arc<str>>,
}

impl Labels {
    pub fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(a.clone());
        a
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Gives back an entry's reference; the label goes when none is left.
    pub fn release(&mut self, a: Arc<str>) {
        // One reference in the set, one here: the last user.
        if Arc::strong_count(&a) == 2 {
            self.set.remove(&*a);
        }
    }
}

/// Separates capabilities in their interned form (a control character, which
/// labels cannot hold).
const SEP: char = '\u{1f}';

pub(super) struct Stored {
    pub node: NodeId,
    pub lat: f64,
    pub lon: f64,
    pub key: u64,
    pub expires: Instant,
    pub timestamp_ms: u64,
    pub received_ms: u64,
    pub role: Arc<str>,
    pub capabilities: Arc<str>,
    pub alt_m: Option<f32>,
    pub bandwidth_kbps: Option<u32>,
    pub level: u8,
    pub state: u8,
    pub battery_pct: Option<u8>,
    pub cpu_pct: Option<u8>,
    pub hops: u8,
    pub precision: u8,
}

impl Stored {
    pub fn new(b: Beacon, key: u64, expires: Instant, labels: &mut Labels) -> Stored {
        let caps = b.info.capabilities.join(&SEP.to_string());
        Stored {
            node: b.node,
            lat: b.info.lat,
            lon: b.info.lon,
            key,
            expires,
            timestamp_ms: b.timestamp_ms,
            received_ms: b.received_ms,
            role: labels.intern(&b.info.role),
            capabilities: labels.intern(&caps),
            alt_m: b.info.alt_m,
            bandwidth_kbps: b.info.bandwidth_kbps,
            level: b.info.level,
            state: b.info.state.code(),
            battery_pct: b.info.battery_pct,
            cpu_pct: b.info.cpu_pct,
            hops: b.hops,
            precision: u8::try_from(b.geohash.len()).unwrap_or(12).clamp(1, 12),
        }
    }

    pub fn release(self, labels: &mut Labels) {
        labels.release(self.role);
        labels.release(self.capabilities);
    }

    pub fn beacon(&self) -> Beacon {
        let p = self.precision;
        let geohash = Cell {
            bits: self.key >> (64 - 5 * u32::from(p)),
            precision: p,
        }
        .to_hash();
        Beacon {
            node: self.node,
            info: BeaconInfo {
                lat: self.lat,
                lon: self.lon,
                alt_m: self.alt_m,
                role: self.role.to_string(),
                level: self.level,
                capabilities: if self.capabilities.is_empty() {
                    Vec::new()
                } else {
                    self.capabilities.split(SEP).map(str::to_string).collect()
                },
                state: OperationalState::from_code(self.state).unwrap_or_default(),
                battery_pct: self.battery_pct,
                cpu_pct: self.cpu_pct,
                bandwidth_kbps: self.bandwidth_kbps,
            },
            geohash,
            timestamp_ms: self.timestamp_ms,
            received_ms: self.received_ms,
            hops: self.hops,
        }
    }
}

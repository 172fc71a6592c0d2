//! The beacon table: the latest beacon of each node heard, until it expires.
//!
//! Bound: `capacity` nodes. A beacon of a node not in a full table evicts the
//! entry that would expire soonest (the one heard longest ago, under one ttl),
//! with a [`BeaconEvent::Evicted`]. Two ordered indexes make every query cheap:
//! by geohash key (a cell of any precision is one range of it) and by expiry
//! (the sweep and the eviction take its first entries).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::geohash::{self, Cell};
use super::stored::{Labels, Stored};
use super::{Beacon, BeaconEvent};
use crate::error::Result;
use crate::events::{Hub, Subscription};
use crate::locks::LockExt;
use crate::NodeId;

/// A beacon within a radius, with its distance.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearby {
    pub beacon: Beacon,
    /// Great-circle distance from the query point, metres.
    pub distance_m: f64,
}

/// Counters of the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BeaconStats {
    /// Beacons in the table now.
    pub len: u64,
    /// Its bound.
    pub capacity: u64,
    /// Beacons accepted (new or newer).
    pub accepted: u64,
    /// Beacons older than the one held for their node, ignored.
    pub stale: u64,
    /// Beacons that did not decode or lied (bad coordinates, a wrong geohash).
    pub malformed: u64,
    /// Entries removed at their ttl.
    pub expired: u64,
    /// Entries evicted to make room.
    pub evicted: u64,
}

type Entry = Stored;

#[derive(Default)]
struct Inner {
    /// Keyed by the node id's bytes (so a range can start below every id).
    by_node: HashMap<[u8; 32], Entry>,
    labels: Labels,
    by_key: BTreeSet<(u64, [u8; 32])>,
    by_expiry: BTreeSet<(Instant, [u8; 32])>,
    stats: BeaconStats,
}

impl Inner {
    /// Removes a node's entry; returns its id.
    fn remove(&mut self, node: &[u8; 32]) -> Option<NodeId> {
        let e = self.by_node.remove(node)?;
        self.by_key.remove(&(e.key, *node));
        self.by_expiry.remove(&(e.expires, *node));
        let id = e.node;
        e.release(&mut self.labels);
        Some(id)
    }
}

/// The table, shared by the receive path, the sweep and queries.
pub struct BeaconTable {
    inner: Mutex<Inner>,
    pub(crate) hub: Hub<BeaconEvent, ()>,
    capacity: usize,
}

impl BeaconTable {
    pub fn new(capacity: usize, event_capacity: usize) -> BeaconTable {
        BeaconTable {
            inner: Mutex::new(Inner {
                stats: BeaconStats {
                    capacity: capacity as u64,
                    ..Default::default()
                },
                ..Default::default()
            }),
            hub: Hub::new(event_capacity),
            capacity: capacity.max(1),
        }
    }

    /// Takes a beacon heard now, to live `ttl`. A beacon no newer (by the
    /// publisher's timestamp, then its message number) than the one held is
    /// ignored. Publishes the event.
    pub fn insert(&self, beacon: Beacon, ttl: Duration, now: Instant) {
        let key = geohash::key_of(beacon.info.lat, beacon.info.lon);
        let expires = now + ttl;
        let node = *beacon.node.as_bytes();
        let mut events = Vec::with_capacity(2);
        {
            let mut g = self.inner.locked();
            let known = match g.by_node.get(&node) {
                Some(old) if old.timestamp_ms > beacon.timestamp_ms => {
                    g.stats.stale += 1;
                    return;
                }
                Some(_) => true,
                None => false,
            };
            if known {
                g.remove(&node);
            } else if g.by_node.len() >= self.capacity {
                if let Some(&(_, victim)) = g.by_expiry.iter().next() {
                    if let Some(id) = g.remove(&victim) {
                        g.stats.evicted += 1;
                        events.push(BeaconEvent::Evicted(id));
                    }
                }
            }
            g.by_key.insert((key, node));
            g.by_expiry.insert((expires, node));
            let stored = Stored::new(beacon.clone(), key, expires, &mut g.labels);
            g.by_node.insert(node, stored);
            g.stats.accepted += 1;
            g.stats.len = g.by_node.len() as u64;
            events.push(if known {
                BeaconEvent::Updated(beacon)
            } else {
                BeaconEvent::Appeared(beacon)
            });
        }
        for e in &events {
            self.hub.publish(e, |_| true);
        }
    }

    /// Counts a beacon that did not decode.
    pub fn count_malformed(&self) {
        self.inner.locked().stats.malformed += 1;
    }

    /// Removes what expired by `now`, with events; returns when the next
    /// entry expires.
    pub fn sweep(&self, now: Instant) -> Option<Instant> {
        let mut gone = Vec::new();
        let next = {
            let mut g = self.inner.locked();
            while let Some(&(at, node)) = g.by_expiry.iter().next() {
                if at > now {
                    break;
                }
                if let Some(id) = g.remove(&node) {
                    g.stats.expired += 1;
                    gone.push(id);
                }
            }
            g.stats.len = g.by_node.len() as u64;
            g.by_expiry.iter().next().map(|(at, _)| *at)
        };
        for node in gone {
            self.hub.publish(&BeaconEvent::Expired(node), |_| true);
        }
        next
    }

    /// Beacons within `radius_m` metres of a point, nearest first.
    pub fn near(&self, lat: f64, lon: f64, radius_m: f64, now: Instant) -> Result<Vec<Nearby>> {
        geohash::check_coords(lat, lon)?;
        if !radius_m.is_finite() || radius_m < 0.0 {
            return Err(crate::Error::InvalidArgument(
                "a radius is a finite number of metres, 0 or more".into(),
            ));
        }
        let g = self.inner.locked();
        let mut out = Vec::new();
        let mut take = |e: &Entry| {
            if e.expires <= now {
                return;
            }
            let d = geohash::distance_m(lat, lon, e.lat, e.lon);
            if d <= radius_m {
                out.push(Nearby {
                    beacon: e.beacon(),
                    distance_m: d,
                });
            }
        };
        match geohash::cover(lat, lon, radius_m) {
            Some(cells) => {
                for c in cells {
                    let (a, b) = c.key_range();
                    let lo = (a, [0u8; 32]);
                    for (_, node) in g.by_key.range(lo..).take_while(|(k, _)| *k <= b) {
                        if let Some(e) = g.by_node.get(node) {
                            take(e);
                        }
                    }
                }
            }
            None => g.by_node.values().for_each(take),
        }
        out.sort_by(|x, y| x.distance_m.total_cmp(&y.distance_m));
        Ok(out)
    }

    /// Beacons in a cell, and in its neighbours if asked.
    pub fn in_cell(&self, cell: Cell, neighbours: bool, now: Instant) -> Vec<Beacon> {
        let cells = if neighbours {
            cell.with_neighbours()
        } else {
            vec![cell]
        };
        let g = self.inner.locked();
        let mut out = Vec::new();
        for c in cells {
            let (a, b) = c.key_range();
            for (_, node) in g
                .by_key
                .range((a, [0u8; 32])..)
                .take_while(|(k, _)| *k <= b)
            {
                if let Some(e) = g.by_node.get(node).filter(|e| e.expires > now) {
                    out.push(e.beacon());
                }
            }
        }
        out
    }

    /// Beacons heard at or after `since_ms` (this node's clock, Unix ms).
    pub fn changed_since(&self, since_ms: u64, now: Instant) -> Vec<Beacon> {
        let g = self.inner.locked();
        let mut v: Vec<Beacon> = g
            .by_node
            .values()
            .filter(|e| e.expires > now && e.received_ms >= since_ms)
            .map(Stored::beacon)
            .collect();
        v.sort_by_key(|b| b.received_ms);
        v
    }

    /// One node's beacon.
    pub fn get(&self, node: &NodeId, now: Instant) -> Option<Beacon> {
        let g = self.inner.locked();
        g.by_node
            .get(node.as_bytes())
            .filter(|e| e.expires > now)
            .map(Stored::beacon)
    }

    pub fn stats(&self) -> BeaconStats {
        self.inner.locked().stats
    }

    pub fn subscribe(&self) -> Subscription<BeaconEvent> {
        self.hub.subscribe(())
    }
}

#[cfg(test)]
mod tests;

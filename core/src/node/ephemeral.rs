//! The ephemeral messages and beacons of [`Node`] (see [`crate::ephemeral`]
//! and [`crate::beacons`]).

use tokio::time::Instant;

use super::Node;
use crate::beacons::{Beacon, BeaconEvent, BeaconInfo, BeaconStats, Cell, Nearby};
use crate::ephemeral::{EphemeralStats, Message, PublishOptions, TopicSubscription};
use crate::error::{Error, Result};
use crate::events::Subscription;

impl Node {
    /// Publishes `payload` on `topic` to every connected peer (one QUIC
    /// datagram each; nothing is stored). Returns the number of peers it was
    /// sent to (0 is not an error: nobody was connected). `InvalidArgument`
    /// for a topic or payload past its bound, a ttl or hop limit out of range,
    /// or a reserved topic (`_peat/…`).
    pub fn publish(&self, topic: &str, payload: &[u8], opts: PublishOptions) -> Result<usize> {
        self.check_open()?;
        self.inner.ephemeral.publish(topic, payload, false, opts)
    }

    /// Publishes a JSON value (receivers see [`Message::json`] set).
    pub fn publish_json(
        &self,
        topic: &str,
        value: &serde_json::Value,
        opts: PublishOptions,
    ) -> Result<usize> {
        self.check_open()?;
        let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        self.inner.ephemeral.publish(topic, &bytes, true, opts)
    }

    /// Publishes JSON given as text, sent as it is once checked to be JSON
    /// (what the SDK's bindings hand over).
    pub fn publish_json_text(
        &self,
        topic: &str,
        json: &str,
        opts: PublishOptions,
    ) -> Result<usize> {
        self.check_open()?;
        serde_json::from_str::<serde::de::IgnoredAny>(json)
            .map_err(|e| Error::InvalidArgument(format!("payload is not JSON: {e}")))?;
        self.inner
            .ephemeral
            .publish(topic, json.as_bytes(), true, opts)
    }

    /// Messages on topics `filter` takes (`"*"`, `"pos/*"` or a topic), from
    /// now on. With `latest_only` the queue holds only the newest message of
    /// each origin and topic. Expired messages are never yielded.
    pub fn subscribe_topic(&self, filter: &str, latest_only: bool) -> Result<TopicSubscription> {
        self.check_open()?;
        self.inner.ephemeral.subscribe(filter, latest_only)
    }

    /// The latest live message of each origin and topic that `filter` takes.
    pub fn latest(&self, filter: &str) -> Result<Vec<Message>> {
        self.inner.ephemeral.latest(filter)
    }

    /// Counters of the ephemeral path.
    pub fn ephemeral_stats(&self) -> EphemeralStats {
        self.inner.ephemeral.stats()
    }

    /// Sets this node's beacon and publishes it now, then every interval of
    /// the node's [`crate::BeaconConfig`] until changed or cleared.
    /// `InvalidArgument` for NaN or out-of-range coordinates or a field past
    /// its bound.
    pub fn set_beacon(&self, info: BeaconInfo) -> Result<()> {
        self.check_open()?;
        self.inner.ephemeral.set_beacon(Some(&info))
    }

    /// Stops publishing this node's beacon (peers forget it at its ttl).
    pub fn clear_beacon(&self) {
        let _ = self.inner.ephemeral.set_beacon(None);
    }

    /// Beacons heard within `radius_m` metres of a point, nearest first.
    pub fn beacons_near(&self, lat: f64, lon: f64, radius_m: f64) -> Result<Vec<Nearby>> {
        self.inner
            .ephemeral
            .beacons
            .near(lat, lon, radius_m, Instant::now())
    }

    /// Beacons heard in the geohash cell `geohash` (1 to 12 characters), and
    /// in its eight neighbours if `neighbours`.
    pub fn beacons_in_cell(&self, geohash: &str, neighbours: bool) -> Result<Vec<Beacon>> {
        let cell = Cell::parse(geohash)?;
        Ok(self
            .inner
            .ephemeral
            .beacons
            .in_cell(cell, neighbours, Instant::now()))
    }

    /// Beacons heard at or after `since_ms` (this node's clock, Unix ms),
    /// oldest first; 0 for every beacon in the table.
    pub fn beacons_since(&self, since_ms: u64) -> Vec<Beacon> {
        self.inner
            .ephemeral
            .beacons
            .changed_since(since_ms, Instant::now())
    }

    /// The live beacon of one node, if heard.
    pub fn beacon_of(&self, node: &crate::NodeId) -> Option<Beacon> {
        self.inner.ephemeral.beacons.get(node, Instant::now())
    }

    /// Counters of the beacon table.
    pub fn beacon_stats(&self) -> BeaconStats {
        self.inner.ephemeral.beacons.stats()
    }

    /// Beacon events from now on: appeared, updated, expired, evicted.
    pub fn subscribe_beacons(&self) -> Result<Subscription<BeaconEvent>> {
        self.check_open()?;
        Ok(self.inner.ephemeral.beacons.subscribe())
    }
}

//! The UniFFI face of ephemeral messages and beacons (Kotlin/Android): the
//! operations of [`crate::sdk`]'s ephemeral module, exported as they are.
//! Topic and beacon subscriptions are read by polling ([`next_message`],
//! [`next_beacon_event`]); the Kotlin layer turns them into `Flow`s.

use crate::records::{
    BeaconEventRecord, BeaconInfoRecord, BeaconRecord, EphemeralStatsRecord, MessageEventRecord,
    MessageRecord, PublishOptionsRecord,
};
use crate::sdk;
use crate::uniffi_api::R;

/// Publishes on a topic; returns how many peers it was sent to.
#[uniffi::export]
pub fn publish(
    node: u64,
    topic: String,
    payload: Vec<u8>,
    json: bool,
    options: PublishOptionsRecord,
) -> R<u32> {
    Ok(sdk::publish(node, &topic, &payload, json, options)?)
}

/// Subscribes to topics (`*`, `PREFIX*` or a topic); returns its handle.
#[uniffi::export]
pub fn subscribe_topic(node: u64, filter: String, latest_only: bool) -> R<u64> {
    Ok(sdk::subscribe_topic(node, &filter, latest_only)?)
}

/// The next message, waiting up to `timeout_ms`; `None` on timeout.
#[uniffi::export]
pub fn next_message(sub: u64, timeout_ms: u64) -> R<Option<MessageEventRecord>> {
    Ok(sdk::next_message(sub, timeout_ms)?)
}

/// The latest live message of each origin and topic `filter` takes.
#[uniffi::export]
pub fn latest_messages(node: u64, filter: String) -> R<Vec<MessageRecord>> {
    Ok(sdk::latest_messages(node, &filter)?)
}

/// Sets this node's beacon.
#[uniffi::export]
pub fn set_beacon(node: u64, info: BeaconInfoRecord) -> R<()> {
    Ok(sdk::set_beacon(node, info)?)
}

/// Stops publishing this node's beacon.
#[uniffi::export]
pub fn clear_beacon(node: u64) -> R<()> {
    Ok(sdk::clear_beacon(node)?)
}

/// Beacons within `radius_m` metres of a point, nearest first.
#[uniffi::export]
pub fn beacons_near(node: u64, lat: f64, lon: f64, radius_m: f64) -> R<Vec<BeaconRecord>> {
    Ok(sdk::beacons_near(node, lat, lon, radius_m)?)
}

/// Beacons in a geohash cell (and its neighbours if asked).
#[uniffi::export]
pub fn beacons_in_cell(node: u64, geohash: String, neighbours: bool) -> R<Vec<BeaconRecord>> {
    Ok(sdk::beacons_in_cell(node, &geohash, neighbours)?)
}

/// Beacons heard at or after `since_ms`.
#[uniffi::export]
pub fn beacons_since(node: u64, since_ms: u64) -> R<Vec<BeaconRecord>> {
    Ok(sdk::beacons_since(node, since_ms)?)
}

/// Subscribes to beacon events; returns its handle.
#[uniffi::export]
pub fn subscribe_beacons(node: u64) -> R<u64> {
    Ok(sdk::subscribe_beacons(node)?)
}

/// The next beacon event, waiting up to `timeout_ms`; `None` on timeout.
#[uniffi::export]
pub fn next_beacon_event(sub: u64, timeout_ms: u64) -> R<Option<BeaconEventRecord>> {
    Ok(sdk::next_beacon_event(sub, timeout_ms)?)
}

/// Counters of the ephemeral path.
#[uniffi::export]
pub fn ephemeral_stats(node: u64) -> R<EphemeralStatsRecord> {
    Ok(sdk::ephemeral_stats(node)?)
}

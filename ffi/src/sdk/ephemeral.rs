//! Ephemeral messages and beacons: publish and subscribe to topics, the
//! latest message of each origin and topic, this node's beacon, queries of
//! the beacon table and its events, and the options at open.

use std::sync::Arc;
use std::time::Duration;

use peat_mesh::ephemeral::MulticastConfig;
use peat_mesh::{BeaconConfig, NodeConfig};

use super::args::ms;
use crate::error::{SdkError, SdkResult};
use crate::handles::{self, Object};
use crate::records::{
    BeaconEventRecord, BeaconInfoRecord, BeaconRecord, EphemeralOptions, EphemeralStatsRecord,
    MessageEventRecord, MessageRecord, PublishOptionsRecord,
};
use crate::runtime;

/// Applies the ephemeral options at open.
pub(crate) fn apply(o: &EphemeralOptions, mut cfg: NodeConfig) -> SdkResult<NodeConfig> {
    let mut beacons = if o.beacon_preset.is_empty() {
        BeaconConfig::default()
    } else {
        BeaconConfig::preset(&o.beacon_preset)?
    };
    if o.beacon_interval_ms > 0 {
        beacons.interval = Duration::from_millis(o.beacon_interval_ms);
    }
    if o.beacon_ttl_ms > 0 {
        beacons.ttl = Duration::from_millis(o.beacon_ttl_ms);
    }
    beacons.check()?;
    cfg = cfg.beacons(beacons);
    match (
        o.multicast_group.is_empty(),
        o.multicast_interface.is_empty(),
    ) {
        (true, true) => {}
        (false, false) => {
            let group = o.multicast_group.parse().map_err(|e| {
                SdkError::invalid(format!(
                    "multicast group {:?}: {e} (IPv4 ADDR:PORT)",
                    o.multicast_group
                ))
            })?;
            let iface = o.multicast_interface.parse().map_err(|e| {
                SdkError::invalid(format!(
                    "multicast interface {:?}: {e} (an IPv4 address of this host)",
                    o.multicast_interface
                ))
            })?;
            cfg = cfg.multicast(MulticastConfig::new(group, iface));
        }
        _ => {
            return Err(SdkError::invalid(
                "the multicast path needs both a group and an interface",
            ))
        }
    }
    Ok(cfg)
}

/// Publishes `payload` on `topic` (as JSON if `json`: the payload must then
/// be JSON text); returns how many connected peers it was sent to.
pub fn publish(
    node: u64,
    topic: &str,
    payload: &[u8],
    json: bool,
    opts: PublishOptionsRecord,
) -> SdkResult<u32> {
    let n = handles::node(node)?;
    let opts = opts.to_core()?;
    let sent = if json {
        let text = std::str::from_utf8(payload)
            .map_err(|_| SdkError::invalid("a JSON payload must be UTF-8"))?;
        n.publish_json_text(topic, text, opts)?
    } else {
        n.publish(topic, payload, opts)?
    };
    Ok(u32::try_from(sent).unwrap_or(u32::MAX))
}

/// Subscribes to topics (`*`, `PREFIX*` or a topic); returns its handle.
pub fn subscribe_topic(node: u64, filter: &str, latest_only: bool) -> SdkResult<u64> {
    let n = handles::node(node)?;
    let sub = n.subscribe_topic(filter, latest_only)?;
    Ok(handles::insert(Object::TopicSub(Arc::new(sub))))
}

/// The next message of a topic subscription, waiting up to `timeout_ms`.
/// `Ok(None)` on timeout; `Err(Closed)` once closed and drained.
pub fn next_message(sub: u64, timeout_ms: u64) -> SdkResult<Option<MessageEventRecord>> {
    let s = handles::topic_sub(sub)?;
    let t = ms(timeout_ms);
    Ok(runtime::block_on(async move { s.next_timeout(t).await })??.map(Into::into))
}

/// The latest live message of each origin and topic `filter` takes.
pub fn latest_messages(node: u64, filter: &str) -> SdkResult<Vec<MessageRecord>> {
    let n = handles::node(node)?;
    Ok(n.latest(filter)?.iter().map(Into::into).collect())
}

/// Sets this node's beacon (published now and every interval).
pub fn set_beacon(node: u64, info: BeaconInfoRecord) -> SdkResult<()> {
    Ok(handles::node(node)?.set_beacon(info.into())?)
}

/// Stops publishing this node's beacon.
pub fn clear_beacon(node: u64) -> SdkResult<()> {
    handles::node(node)?.clear_beacon();
    Ok(())
}

/// Beacons within `radius_m` metres of a point, nearest first (each with
/// its `distance_m`).
pub fn beacons_near(node: u64, lat: f64, lon: f64, radius_m: f64) -> SdkResult<Vec<BeaconRecord>> {
    let n = handles::node(node)?;
    Ok(n.beacons_near(lat, lon, radius_m)?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Beacons in a geohash cell, and its neighbours if asked.
pub fn beacons_in_cell(node: u64, geohash: &str, neighbours: bool) -> SdkResult<Vec<BeaconRecord>> {
    let n = handles::node(node)?;
    Ok(n.beacons_in_cell(geohash, neighbours)?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Beacons heard at or after `since_ms` (Unix ms, this node's clock); 0: all.
pub fn beacons_since(node: u64, since_ms: u64) -> SdkResult<Vec<BeaconRecord>> {
    let n = handles::node(node)?;
    Ok(n.beacons_since(since_ms)
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Subscribes to beacon events; returns its handle.
pub fn subscribe_beacons(node: u64) -> SdkResult<u64> {
    let n = handles::node(node)?;
    let sub = n.subscribe_beacons()?;
    Ok(handles::insert(Object::BeaconSub(Arc::new(sub))))
}

/// The next beacon event, waiting up to `timeout_ms`; see [`next_message`].
pub fn next_beacon_event(sub: u64, timeout_ms: u64) -> SdkResult<Option<BeaconEventRecord>> {
    let s = handles::beacon_sub(sub)?;
    let t = ms(timeout_ms);
    Ok(runtime::block_on(async move { s.next_timeout(t).await })??.map(Into::into))
}

/// Counters of the ephemeral path.
pub fn ephemeral_stats(node: u64) -> SdkResult<EphemeralStatsRecord> {
    Ok(handles::node(node)?.ephemeral_stats().into())
}

//! Ephemeral messages and beacons for `peat_mesh._native`: conversions
//! around the SDK's calls (records become tuples the Python package wraps);
//! every wait releases the GIL.

use peat_mesh_ffi::records::{
    BeaconEventRecord, BeaconInfoRecord, BeaconRecord, EphemeralOptions, MessageEventRecord,
    MessageRecord, NodeState, PublishOptionsRecord,
};
use peat_mesh_ffi::sdk;
use pyo3::prelude::*;

use crate::{err, R};

/// (beacon preset, interval ms, ttl ms, multicast group, multicast interface).
pub(crate) type EphemeralArg = (String, u64, u64, String, String);

pub(crate) fn options(a: EphemeralArg) -> EphemeralOptions {
    let (beacon_preset, beacon_interval_ms, beacon_ttl_ms, multicast_group, multicast_interface) =
        a;
    EphemeralOptions {
        beacon_preset,
        beacon_interval_ms,
        beacon_ttl_ms,
        multicast_group,
        multicast_interface,
    }
}

/// (origin, topic, payload, json, seq, sent_at_ms, hops, via_peer, ttl_left_ms)
type MessageTuple = (
    String,
    String,
    Vec<u8>,
    bool,
    u64,
    u64,
    u8,
    Option<String>,
    u64,
);

fn message(m: MessageRecord) -> MessageTuple {
    (
        m.origin,
        m.topic,
        m.payload,
        m.json,
        m.seq,
        m.sent_at_ms,
        m.hops,
        m.via_peer,
        m.ttl_left_ms,
    )
}

/// (lat, lon, alt_m, role, level, capabilities, state, battery, cpu, bandwidth)
type InfoTuple = (
    f64,
    f64,
    Option<f32>,
    String,
    u8,
    Vec<String>,
    String,
    Option<u8>,
    Option<u8>,
    Option<u32>,
);

/// The same as Python passes it: integers of any size, converted here with a
/// clear error (the SDK checks the ranges that matter, e.g. percentages).
type InfoArg = (
    f64,
    f64,
    Option<f32>,
    String,
    i64,
    Vec<String>,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn int<T: TryFrom<i64>>(v: i64, what: &str) -> R<T> {
    T::try_from(v)
        .map_err(|_| crate::InvalidArgumentError::new_err(format!("{what} {v} is out of range")))
}

fn opt_int<T: TryFrom<i64>>(v: Option<i64>, what: &str) -> R<Option<T>> {
    v.map(|v| int(v, what)).transpose()
}

/// (node, info, geohash, timestamp_ms, received_ms, hops, distance_m)
type BeaconTuple = (String, InfoTuple, String, u64, u64, u8, Option<f64>);

fn state_of(name: &str) -> R<NodeState> {
    [
        NodeState::Unknown,
        NodeState::Ready,
        NodeState::Busy,
        NodeState::Degraded,
        NodeState::Offline,
    ]
    .into_iter()
    .find(|s| s.name() == name)
    .ok_or_else(|| crate::InvalidArgumentError::new_err(format!("unknown node state {name:?}")))
}

fn beacon(b: BeaconRecord) -> BeaconTuple {
    let i = b.info;
    (
        b.node,
        (
            i.lat,
            i.lon,
            i.alt_m,
            i.role,
            i.level,
            i.capabilities,
            i.state.name().to_string(),
            i.battery_pct,
            i.cpu_pct,
            i.bandwidth_kbps,
        ),
        b.geohash,
        b.timestamp_ms,
        b.received_ms,
        b.hops,
        b.distance_m,
    )
}

#[pyfunction]
#[allow(clippy::too_many_arguments)] // the publish options spelled out
fn publish(
    py: Python<'_>,
    node: u64,
    topic: String,
    payload: Vec<u8>,
    json: bool,
    ttl_ms: u64,
    hop_limit: i64,
    multicast: bool,
    priority: String,
) -> R<u32> {
    let o = PublishOptionsRecord {
        ttl_ms,
        hop_limit: int(hop_limit, "hop_limit")?,
        multicast,
        priority,
    };
    py.detach(|| sdk::publish(node, &topic, &payload, json, o))
        .map_err(err)
}

#[pyfunction]
fn subscribe_topic(node: u64, filter: String, latest_only: bool) -> R<u64> {
    sdk::subscribe_topic(node, &filter, latest_only).map_err(err)
}

#[pyfunction]
fn next_message(py: Python<'_>, sub: u64, timeout_ms: u64) -> R<Option<Py<PyAny>>> {
    let ev = py
        .detach(|| sdk::next_message(sub, timeout_ms))
        .map_err(err)?;
    Ok(match ev {
        None => None,
        Some(MessageEventRecord::Message(m)) => Some(
            ("message", message(m))
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        ),
        Some(MessageEventRecord::Lagged(n)) => {
            Some(("lagged", n).into_pyobject(py)?.into_any().unbind())
        }
    })
}

#[pyfunction]
fn latest_messages(node: u64, filter: String) -> R<Vec<MessageTuple>> {
    Ok(sdk::latest_messages(node, &filter)
        .map_err(err)?
        .into_iter()
        .map(message)
        .collect())
}

#[pyfunction]
fn set_beacon(node: u64, info: InfoArg) -> R<()> {
    let (lat, lon, alt_m, role, level, capabilities, state, battery_pct, cpu_pct, bandwidth_kbps) =
        info;
    let r = BeaconInfoRecord {
        lat,
        lon,
        alt_m,
        role,
        level: int(level, "level")?,
        capabilities,
        state: state_of(&state)?,
        battery_pct: opt_int(battery_pct, "battery_pct")?,
        cpu_pct: opt_int(cpu_pct, "cpu_pct")?,
        bandwidth_kbps: opt_int(bandwidth_kbps, "bandwidth_kbps")?,
    };
    sdk::set_beacon(node, r).map_err(err)
}

#[pyfunction]
fn clear_beacon(node: u64) -> R<()> {
    sdk::clear_beacon(node).map_err(err)
}

#[pyfunction]
fn beacons_near(node: u64, lat: f64, lon: f64, radius_m: f64) -> R<Vec<BeaconTuple>> {
    Ok(sdk::beacons_near(node, lat, lon, radius_m)
        .map_err(err)?
        .into_iter()
        .map(beacon)
        .collect())
}

#[pyfunction]
fn beacons_in_cell(node: u64, geohash: String, neighbours: bool) -> R<Vec<BeaconTuple>> {
    Ok(sdk::beacons_in_cell(node, &geohash, neighbours)
        .map_err(err)?
        .into_iter()
        .map(beacon)
        .collect())
}

#[pyfunction]
fn beacons_since(node: u64, since_ms: u64) -> R<Vec<BeaconTuple>> {
    Ok(sdk::beacons_since(node, since_ms)
        .map_err(err)?
        .into_iter()
        .map(beacon)
        .collect())
}

#[pyfunction]
fn subscribe_beacons(node: u64) -> R<u64> {
    sdk::subscribe_beacons(node).map_err(err)
}

#[pyfunction]
fn next_beacon_event(py: Python<'_>, sub: u64, timeout_ms: u64) -> R<Option<Py<PyAny>>> {
    let ev = py
        .detach(|| sdk::next_beacon_event(sub, timeout_ms))
        .map_err(err)?;
    let obj = match ev {
        None => return Ok(None),
        Some(BeaconEventRecord::Appeared(b)) => {
            ("appeared", beacon(b)).into_pyobject(py)?.into_any()
        }
        Some(BeaconEventRecord::Updated(b)) => ("updated", beacon(b)).into_pyobject(py)?.into_any(),
        Some(BeaconEventRecord::Expired(n)) => ("expired", n).into_pyobject(py)?.into_any(),
        Some(BeaconEventRecord::Evicted(n)) => ("evicted", n).into_pyobject(py)?.into_any(),
        Some(BeaconEventRecord::Lagged(n)) => ("lagged", n).into_pyobject(py)?.into_any(),
    };
    Ok(Some(obj.unbind()))
}

/// (published, received, delivered, forwarded, duplicates, expired,
/// malformed, bad_signature, refused_sealed, rate_limited, multicast_sent)
type StatsTuple = (u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64);

#[pyfunction]
fn ephemeral_stats(node: u64) -> R<StatsTuple> {
    let s = sdk::ephemeral_stats(node).map_err(err)?;
    Ok((
        s.published,
        s.received,
        s.delivered,
        s.forwarded,
        s.duplicates,
        s.expired,
        s.malformed,
        s.bad_signature,
        s.refused_sealed,
        s.rate_limited,
        s.multicast_sent,
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(publish, m)?)?;
    m.add_function(wrap_pyfunction!(subscribe_topic, m)?)?;
    m.add_function(wrap_pyfunction!(next_message, m)?)?;
    m.add_function(wrap_pyfunction!(latest_messages, m)?)?;
    m.add_function(wrap_pyfunction!(set_beacon, m)?)?;
    m.add_function(wrap_pyfunction!(clear_beacon, m)?)?;
    m.add_function(wrap_pyfunction!(beacons_near, m)?)?;
    m.add_function(wrap_pyfunction!(beacons_in_cell, m)?)?;
    m.add_function(wrap_pyfunction!(beacons_since, m)?)?;
    m.add_function(wrap_pyfunction!(subscribe_beacons, m)?)?;
    m.add_function(wrap_pyfunction!(next_beacon_event, m)?)?;
    m.add_function(wrap_pyfunction!(ephemeral_stats, m)?)?;
    Ok(())
}

//! Beacons: this node's beacon, queries of the beacon table and its events.

use std::ffi::c_char;

use super::boundary::{
    c_string, call, call_out, free_c_string, into_raw_slice, str_arg, str_list_arg, string_list,
    take_raw_slice,
};
use super::types::{PeatError, PeatNode, PeatStr, PeatStringList, PeatSubscription};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::records::{BeaconEventRecord, BeaconInfoRecord, BeaconRecord, NodeState};
use crate::sdk;

/// A node's operational state in its beacon.
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatNodeState {
    /// Not said.
    Unknown = 0,
    /// Up and able to take work.
    Ready = 1,
    /// Up, busy.
    Busy = 2,
    /// Up with reduced capability.
    Degraded = 3,
    /// Going away or out of action.
    Offline = 4,
}

impl From<NodeState> for PeatNodeState {
    fn from(s: NodeState) -> Self {
        match s {
            NodeState::Unknown => PeatNodeState::Unknown,
            NodeState::Ready => PeatNodeState::Ready,
            NodeState::Busy => PeatNodeState::Busy,
            NodeState::Degraded => PeatNodeState::Degraded,
            NodeState::Offline => PeatNodeState::Offline,
        }
    }
}

impl From<PeatNodeState> for NodeState {
    fn from(s: PeatNodeState) -> Self {
        match s {
            PeatNodeState::Unknown => NodeState::Unknown,
            PeatNodeState::Ready => NodeState::Ready,
            PeatNodeState::Busy => NodeState::Busy,
            PeatNodeState::Degraded => NodeState::Degraded,
            PeatNodeState::Offline => NodeState::Offline,
        }
    }
}

/// What [`peat_beacon_set`] publishes. Optional numbers are -1 (or NaN for
/// the altitude) when not known.
#[repr(C)]
pub struct PeatBeaconInfo {
    /// Latitude, degrees (-90..=90; NaN refused).
    pub lat: f64,
    /// Longitude, degrees (-180..=180; NaN refused).
    pub lon: f64,
    /// Altitude in metres; NaN when unknown.
    pub alt_m: f64,
    /// Role (up to 32 bytes).
    pub role: PeatStr,
    /// Level in the hierarchy (0 = the edge).
    pub level: u8,
    /// Capabilities (up to 8, each up to 32 bytes); may be NULL when
    /// `capabilities_len` is 0.
    pub capabilities: *const PeatStr,
    /// Number of capabilities.
    pub capabilities_len: usize,
    /// Operational state.
    pub state: PeatNodeState,
    /// Battery percent (0..=100); -1 when unknown.
    pub battery_pct: i32,
    /// CPU load percent (0..=100); -1 when unknown.
    pub cpu_pct: i32,
    /// Bandwidth available in kbit/s; -1 when unknown.
    pub bandwidth_kbps: i64,
}

/// -1 as "not said", else the value as a byte (the core checks it is a
/// percentage).
fn opt_pct(v: i32, what: &str) -> SdkResult<Option<u8>> {
    if v == -1 {
        return Ok(None);
    }
    u8::try_from(v)
        .map(Some)
        .map_err(|_| SdkError::invalid(format!("{what} {v} is out of range (or -1)")))
}

fn beacon_info(b: &PeatBeaconInfo) -> SdkResult<BeaconInfoRecord> {
    let capabilities = str_list_arg(
        b.capabilities,
        b.capabilities_len,
        "capabilities",
        "capability",
    )?
    .into_iter()
    .map(str::to_string)
    .collect();
    Ok(BeaconInfoRecord {
        lat: b.lat,
        lon: b.lon,
        alt_m: (!b.alt_m.is_nan()).then_some(b.alt_m as f32),
        role: str_arg(b.role, "role")?.to_string(),
        level: b.level,
        capabilities,
        state: b.state.into(),
        battery_pct: opt_pct(b.battery_pct, "battery_pct")?,
        cpu_pct: opt_pct(b.cpu_pct, "cpu_pct")?,
        bandwidth_kbps: match b.bandwidth_kbps {
            -1 => None,
            v => Some(u32::try_from(v).map_err(|_| {
                SdkError::invalid(format!("bandwidth_kbps {v} is out of range (or -1)"))
            })?),
        },
    })
}

/// Sets this node's beacon: published now, then every interval, until
/// changed or cleared. NaN or out-of-range coordinates, a label past its
/// bound: `PEAT_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_beacon_set(
    node: PeatNode,
    info: *const PeatBeaconInfo,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        // SAFETY: a non-NULL `info` points to a valid struct for this call.
        let b = unsafe { info.as_ref() }.ok_or_else(|| SdkError::invalid("info: NULL"))?;
        sdk::set_beacon(node.id, beacon_info(b)?)
    })
}

/// Stops publishing this node's beacon (peers forget it at its ttl).
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says.
#[no_mangle]
pub unsafe extern "C" fn peat_beacon_clear(node: PeatNode, err: *mut *mut PeatError) -> i32 {
    call(err, || sdk::clear_beacon(node.id))
}

/// A beacon heard. Its strings are owned by the list or event that holds it.
#[repr(C)]
pub struct PeatBeacon {
    /// The node it is about (64 hex digits).
    pub node: *mut c_char,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Altitude in metres; NaN when unknown.
    pub alt_m: f64,
    /// Geohash at the publisher's precision.
    pub geohash: *mut c_char,
    /// Role.
    pub role: *mut c_char,
    /// Level in the hierarchy.
    pub level: u8,
    /// Capabilities.
    pub capabilities: PeatStringList,
    /// Operational state.
    pub state: PeatNodeState,
    /// Battery percent; -1 when unknown.
    pub battery_pct: i32,
    /// CPU load percent; -1 when unknown.
    pub cpu_pct: i32,
    /// Bandwidth in kbit/s; -1 when unknown.
    pub bandwidth_kbps: i64,
    /// The publisher's clock when sent, Unix ms.
    pub timestamp_ms: u64,
    /// This node's clock when heard, Unix ms.
    pub received_ms: u64,
    /// How many nodes forwarded it.
    pub hops: u8,
    /// Metres from the query point ([`peat_beacons_near`]); NaN otherwise.
    pub distance_m: f64,
}

fn beacon(b: BeaconRecord) -> PeatBeacon {
    let i = b.info;
    PeatBeacon {
        node: c_string(b.node),
        lat: i.lat,
        lon: i.lon,
        alt_m: i.alt_m.map_or(f64::NAN, f64::from),
        geohash: c_string(b.geohash),
        role: c_string(i.role),
        level: i.level,
        capabilities: string_list(i.capabilities),
        state: i.state.into(),
        battery_pct: i.battery_pct.map_or(-1, i32::from),
        cpu_pct: i.cpu_pct.map_or(-1, i32::from),
        bandwidth_kbps: i.bandwidth_kbps.map_or(-1, i64::from),
        timestamp_ms: b.timestamp_ms,
        received_ms: b.received_ms,
        hops: b.hops,
        distance_m: b.distance_m.unwrap_or(f64::NAN),
    }
}

/// # Safety
/// `b` as made by [`beacon`], freed once.
unsafe fn free_beacon(b: &mut PeatBeacon) {
    // SAFETY: strings and the list came from `beacon`, freed once.
    unsafe {
        free_c_string(b.node);
        free_c_string(b.geohash);
        free_c_string(b.role);
        super::memory::peat_string_list_free(std::mem::replace(
            &mut b.capabilities,
            PeatStringList {
                items: std::ptr::null_mut(),
                len: 0,
            },
        ));
    }
    b.node = std::ptr::null_mut();
    b.geohash = std::ptr::null_mut();
    b.role = std::ptr::null_mut();
}

/// Beacons owned by the library. Free with [`peat_beacon_list_free`].
#[repr(C)]
pub struct PeatBeaconList {
    /// `len` beacons; NULL when `len` is 0.
    pub items: *mut PeatBeacon,
    /// Number of beacons.
    pub len: usize,
}

fn beacon_list(v: Vec<BeaconRecord>) -> PeatBeaconList {
    let (items, len) = into_raw_slice(v.into_iter().map(beacon).collect());
    PeatBeaconList { items, len }
}

/// Beacons heard within `radius_m` metres of (`lat`, `lon`), nearest first,
/// each with its `distance_m`. Free with [`peat_beacon_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_beacons_near(
    node: PeatNode,
    lat: f64,
    lon: f64,
    radius_m: f64,
    out: *mut PeatBeaconList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(beacon_list(sdk::beacons_near(node.id, lat, lon, radius_m)?))
    })
}

/// Beacons heard in the geohash cell `geohash` (1 to 12 characters), and in
/// its eight neighbours if `neighbours`. Free with [`peat_beacon_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_beacons_in_cell(
    node: PeatNode,
    geohash: PeatStr,
    neighbours: bool,
    out: *mut PeatBeaconList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let g = str_arg(geohash, "geohash")?;
        Ok(beacon_list(sdk::beacons_in_cell(node.id, g, neighbours)?))
    })
}

/// Beacons heard at or after `since_ms` (Unix ms, this node's clock; 0 for
/// every beacon), oldest first. Free with [`peat_beacon_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_beacons_since(
    node: PeatNode,
    since_ms: u64,
    out: *mut PeatBeaconList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(beacon_list(sdk::beacons_since(node.id, since_ms)?))
    })
}

/// Frees a beacon list. Accepts a zeroed list.
///
/// # Safety
/// `list` must be zeroed or exactly as returned by a `peat_beacons_*` call.
#[no_mangle]
pub unsafe extern "C" fn peat_beacon_list_free(list: PeatBeaconList) {
    // SAFETY: `items`/`len` are NULL or came from `into_raw_slice`, freed once.
    let Some(mut items) = (unsafe { take_raw_slice(list.items, list.len) }) else {
        return;
    };
    for b in items.iter_mut() {
        // SAFETY: each beacon was made by `beacon`, freed once.
        unsafe { free_beacon(b) };
    }
}

/// What [`PeatBeaconEvent`] holds.
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatBeaconEventKind {
    /// A node's first beacon: `beacon`.
    Appeared = 1,
    /// A newer beacon of a node in the table: `beacon`.
    Updated = 2,
    /// A node's beacon expired: `node`.
    Expired = 3,
    /// A node's beacon was evicted from the full table: `node`.
    Evicted = 4,
    /// `lagged` events were dropped (the reader fell behind).
    Lagged = 5,
}

/// A beacon event. Free with [`peat_beacon_event_free`].
#[repr(C)]
pub struct PeatBeaconEvent {
    /// What it holds.
    pub kind: PeatBeaconEventKind,
    /// The beacon (APPEARED, UPDATED); zeroed otherwise.
    pub beacon: PeatBeacon,
    /// The node (EXPIRED, EVICTED); NULL otherwise.
    pub node: *mut c_char,
    /// Events dropped (LAGGED).
    pub lagged: u64,
}

fn zero_beacon() -> PeatBeacon {
    PeatBeacon {
        node: std::ptr::null_mut(),
        lat: 0.0,
        lon: 0.0,
        alt_m: f64::NAN,
        geohash: std::ptr::null_mut(),
        role: std::ptr::null_mut(),
        level: 0,
        capabilities: PeatStringList {
            items: std::ptr::null_mut(),
            len: 0,
        },
        state: PeatNodeState::Unknown,
        battery_pct: -1,
        cpu_pct: -1,
        bandwidth_kbps: -1,
        timestamp_ms: 0,
        received_ms: 0,
        hops: 0,
        distance_m: f64::NAN,
    }
}

/// Subscribes to beacon events (appeared, updated, expired, evicted). Read
/// with [`peat_beacon_next`]; close with [`peat_subscription_close`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_beacon_subscribe(
    node: PeatNode,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        Ok(PeatSubscription {
            id: sdk::subscribe_beacons(node.id)?,
        })
    })
}

/// Waits up to `timeout_ms` for the next beacon event. `PEAT_STATUS_TIMEOUT`
/// when none came, `PEAT_STATUS_CLOSED` once closed and drained. Free the
/// event with [`peat_beacon_event_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_beacon_next(
    sub: PeatSubscription,
    timeout_ms: u64,
    out: *mut PeatBeaconEvent,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let ev = sdk::next_beacon_event(sub.id, timeout_ms)?.ok_or_else(|| {
            SdkError::new(ErrorCode::Timeout, "no beacon event within the timeout")
        })?;
        let mut e = PeatBeaconEvent {
            kind: PeatBeaconEventKind::Lagged,
            beacon: zero_beacon(),
            node: std::ptr::null_mut(),
            lagged: 0,
        };
        match ev {
            BeaconEventRecord::Appeared(b) => {
                e.kind = PeatBeaconEventKind::Appeared;
                e.beacon = beacon(b);
            }
            BeaconEventRecord::Updated(b) => {
                e.kind = PeatBeaconEventKind::Updated;
                e.beacon = beacon(b);
            }
            BeaconEventRecord::Expired(n) => {
                e.kind = PeatBeaconEventKind::Expired;
                e.node = c_string(n);
            }
            BeaconEventRecord::Evicted(n) => {
                e.kind = PeatBeaconEventKind::Evicted;
                e.node = c_string(n);
            }
            BeaconEventRecord::Lagged(n) => e.lagged = n,
        }
        Ok(e)
    })
}

/// Frees what a beacon event holds (not the struct). Accepts a zeroed event.
///
/// # Safety
/// `ev` must be NULL, zeroed, or filled by [`peat_beacon_next`], freed once.
#[no_mangle]
pub unsafe extern "C" fn peat_beacon_event_free(ev: *mut PeatBeaconEvent) {
    // SAFETY: a non-NULL `ev` points to an event this library filled.
    if let Some(ev) = unsafe { ev.as_mut() } {
        // SAFETY: its parts came from `beacon`/`c_string`, freed once.
        unsafe {
            free_beacon(&mut ev.beacon);
            free_c_string(ev.node);
        }
        ev.node = std::ptr::null_mut();
    }
}

//! The ephemeral calls of the JNI face: the options at open, publishing and
//! this node's beacon (what an ATAK plugin sends many times a second), as
//! conversions around [`crate::sdk`]. Reading messages and beacons (records,
//! subscriptions) stays with UniFFI.

use std::ffi::c_void;

use jni::objects::{JByteArray, JClass, JLongArray, JObjectArray, JString};
use jni::sys::{jboolean, jdouble, jint, jlong, JNI_FALSE};
use jni::{JNIEnv, NativeMethod};

use super::{arg, bytes_arg, jni_failed, node, run, string_array_arg, STR};
use crate::error::{SdkError, SdkResult};
use crate::records::{BeaconInfoRecord, EphemeralOptions, NodeState, PublishOptionsRecord};
use crate::sdk;

/// The ephemeral options as a string array (beacon preset, multicast group,
/// multicast interface) and a number array (beacon interval ms, ttl ms).
pub(super) fn ephemeral_options(
    env: &mut JNIEnv<'_>,
    strings: &JObjectArray<'_>,
    numbers: &JLongArray<'_>,
) -> SdkResult<EphemeralOptions> {
    let s = string_array_arg(env, strings, "ephemeral")?;
    if numbers.as_raw().is_null() {
        return Err(SdkError::invalid("ephemeralMs is null"));
    }
    let mut n = [0i64; 2];
    if s.len() != 3 || env.get_array_length(numbers).map_err(jni_failed)? != 2 {
        return Err(SdkError::invalid(
            "ephemeral takes [preset, group, interface] and [intervalMs, ttlMs]",
        ));
    }
    env.get_long_array_region(numbers, 0, &mut n)
        .map_err(jni_failed)?;
    let ms = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| SdkError::invalid(format!("{what} {v} is negative")))
    };
    let mut s = s.into_iter();
    Ok(EphemeralOptions {
        beacon_preset: s.next().unwrap_or_default(),
        multicast_group: s.next().unwrap_or_default(),
        multicast_interface: s.next().unwrap_or_default(),
        beacon_interval_ms: ms(n[0], "beaconIntervalMs")?,
        beacon_ttl_ms: ms(n[1], "beaconTtlMs")?,
    })
}

#[allow(clippy::too_many_arguments)] // the publish options spelled out
extern "system" fn publish<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    topic: JString<'l>,
    payload: JByteArray<'l>,
    json: jboolean,
    ttl_ms: jlong,
    hop_limit: jint,
    multicast: jboolean,
    priority: JString<'l>,
) -> jint {
    run(&mut env, 0, |env| {
        let t = arg(env, &topic, "topic")?;
        let p = bytes_arg(env, &payload, "payload")?;
        let o = PublishOptionsRecord {
            ttl_ms: u64::try_from(ttl_ms).map_err(|_| SdkError::invalid("ttlMs is negative"))?,
            hop_limit: u8::try_from(hop_limit)
                .map_err(|_| SdkError::invalid(format!("hopLimit {hop_limit} is out of range")))?,
            multicast: multicast != JNI_FALSE,
            priority: arg(env, &priority, "priority")?,
        };
        sdk::publish(node(handle), &t, &p, json != JNI_FALSE, o).map(|n| n as jint)
    })
}

fn opt_small<T: TryFrom<i64>>(v: i64, what: &str) -> SdkResult<Option<T>> {
    if v == -1 {
        return Ok(None);
    }
    T::try_from(v)
        .map(Some)
        .map_err(|_| SdkError::invalid(format!("{what} {v} is out of range (or -1)")))
}

#[allow(clippy::too_many_arguments)] // the beacon's fields spelled out
extern "system" fn set_beacon<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    lat: jdouble,
    lon: jdouble,
    alt_m: jdouble,
    role: JString<'l>,
    level: jint,
    capabilities: JObjectArray<'l>,
    state: jint,
    battery_pct: jint,
    cpu_pct: jint,
    bandwidth_kbps: jlong,
) {
    run(&mut env, (), |env| {
        let state = match state {
            0 => NodeState::Unknown,
            1 => NodeState::Ready,
            2 => NodeState::Busy,
            3 => NodeState::Degraded,
            4 => NodeState::Offline,
            s => return Err(SdkError::invalid(format!("unknown node state {s}"))),
        };
        let info = BeaconInfoRecord {
            lat,
            lon,
            alt_m: (!alt_m.is_nan()).then_some(alt_m as f32),
            role: arg(env, &role, "role")?,
            level: u8::try_from(level)
                .map_err(|_| SdkError::invalid(format!("level {level} is out of range")))?,
            capabilities: string_array_arg(env, &capabilities, "capabilities")?,
            state,
            battery_pct: opt_small(i64::from(battery_pct), "batteryPct")?,
            cpu_pct: opt_small(i64::from(cpu_pct), "cpuPct")?,
            bandwidth_kbps: opt_small(bandwidth_kbps, "bandwidthKbps")?,
        };
        sdk::set_beacon(node(handle), info)
    })
}

extern "system" fn clear_beacon<'l>(mut env: JNIEnv<'l>, _class: JClass<'l>, handle: jlong) {
    run(&mut env, (), |_| sdk::clear_beacon(node(handle)))
}

/// The natives of this file: (name, JNI signature, function).
pub(super) fn methods() -> Vec<NativeMethod> {
    let m = |name: &str, sig: String, f: *mut c_void| NativeMethod {
        name: name.into(),
        sig: sig.into(),
        fn_ptr: f,
    };
    vec![
        m(
            "publish",
            format!("(J{STR}[BZJIZ{STR})I"),
            publish as *mut c_void,
        ),
        m(
            "setBeacon",
            format!("(JDDD{STR}I[{STR}IIIJ)V"),
            set_beacon as *mut c_void,
        ),
        m("clearBeacon", "(J)V".into(), clear_beacon as *mut c_void),
    ]
}

//! The policy and bandwidth calls of the JNI face (strings in and out, as
//! conversions around [`crate::sdk`]; bandwidth counters as a number array);
//! garbage collection reports and storage counters (records) stay with UniFFI.

use std::ffi::c_void;

use jni::objects::{JClass, JLongArray, JString};
use jni::sys::{jboolean, jlong, jlongArray, jstring};
use jni::{JNIEnv, NativeMethod};

use super::{arg, jbool, new_string, node, run, STR};
use crate::sdk;

/// `collection` null sets the default policy.
extern "system" fn set_policy<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    policy_json: JString<'l>,
) {
    run(&mut env, (), |env| {
        let c = if collection.as_raw().is_null() {
            None
        } else {
            Some(arg(env, &collection, "collection")?)
        };
        let p = arg(env, &policy_json, "policyJson")?;
        sdk::node_set_policy(node(handle), c.as_deref(), &p)
    })
}

extern "system" fn remove_policy<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
) -> jboolean {
    run(&mut env, jbool(false), |env| {
        let c = arg(env, &collection, "collection")?;
        Ok(jbool(sdk::node_remove_policy(node(handle), &c)?))
    })
}

extern "system" fn policy<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
) -> jstring {
    run(&mut env, std::ptr::null_mut(), |env| {
        let c = arg(env, &collection, "collection")?;
        let json = sdk::node_policy(node(handle), &c)?;
        new_string(env, json)
    })
}

extern "system" fn policies<'l>(mut env: JNIEnv<'l>, _class: JClass<'l>, handle: jlong) -> jstring {
    run(&mut env, std::ptr::null_mut(), |env| {
        let json = sdk::node_policies(node(handle))?;
        new_string(env, json)
    })
}

extern "system" fn set_bandwidth<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    bandwidth_json: JString<'l>,
) {
    run(&mut env, (), |env| {
        let b = arg(env, &bandwidth_json, "bandwidthJson")?;
        sdk::node_set_bandwidth(node(handle), &b)
    })
}

extern "system" fn bandwidth<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    run(&mut env, std::ptr::null_mut(), |env| {
        let json = sdk::node_bandwidth(node(handle))?;
        new_string(env, json)
    })
}

/// [bytes limited, waits, waited ms, dropped datagrams].
extern "system" fn bandwidth_stats<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jlongArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        let s = sdk::node_bandwidth_stats(node(handle))?;
        let n = [s.bytes_limited, s.waits, s.waited_ms, s.dropped_datagrams].map(|v| v as i64);
        let arr = env.new_long_array(4).map_err(super::jni_failed)?;
        env.set_long_array_region(&arr, 0, &n)
            .map_err(super::jni_failed)?;
        Ok(arr.into_raw())
    })
}

/// The storage budget at open as a number array: [bytes, high %, low %].
pub(super) fn with_budget(
    env: &mut JNIEnv<'_>,
    numbers: &JLongArray<'_>,
    mut opts: crate::records::NodeOptions,
) -> crate::error::SdkResult<crate::records::NodeOptions> {
    use crate::error::SdkError;
    if numbers.as_raw().is_null() {
        return Err(SdkError::invalid("storageBudget is null"));
    }
    if env.get_array_length(numbers).map_err(super::jni_failed)? != 3 {
        return Err(SdkError::invalid(
            "storageBudget takes [bytes, highPct, lowPct]",
        ));
    }
    let mut n = [0i64; 3];
    env.get_long_array_region(numbers, 0, &mut n)
        .map_err(super::jni_failed)?;
    let bad = |what: &str, v: i64| SdkError::invalid(format!("{what} {v} is out of range"));
    opts.storage_budget_bytes = u64::try_from(n[0]).map_err(|_| bad("storage budget", n[0]))?;
    opts.storage_high_water_pct = u32::try_from(n[1]).map_err(|_| bad("high water", n[1]))?;
    opts.storage_low_water_pct = u32::try_from(n[2]).map_err(|_| bad("low water", n[2]))?;
    Ok(opts)
}

pub(super) fn methods() -> Vec<NativeMethod> {
    let m = |name: &str, sig: String, f: *mut c_void| NativeMethod {
        name: name.into(),
        sig: sig.into(),
        fn_ptr: f,
    };
    vec![
        m(
            "setPolicy",
            format!("(J{STR}{STR})V"),
            set_policy as *mut c_void,
        ),
        m(
            "removePolicy",
            format!("(J{STR})Z"),
            remove_policy as *mut c_void,
        ),
        m("policy", format!("(J{STR}){STR}"), policy as *mut c_void),
        m("policies", format!("(J){STR}"), policies as *mut c_void),
        m(
            "setBandwidth",
            format!("(J{STR})V"),
            set_bandwidth as *mut c_void,
        ),
        m("bandwidth", format!("(J){STR}"), bandwidth as *mut c_void),
        m(
            "bandwidthStats",
            "(J)[J".into(),
            bandwidth_stats as *mut c_void,
        ),
    ]
}

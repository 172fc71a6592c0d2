//! The policy calls of the JNI face (strings in and out, as conversions
//! around [`crate::sdk`]); garbage collection reports and storage counters
//! (records) stay with UniFFI.

use std::ffi::c_void;

use jni::objects::{JClass, JString};
use jni::sys::{jboolean, jlong, jstring};
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
    ]
}

//! The JNI face of the SDK layer: the document calls of the Kotlin layer
//! without JNA, bound by native registration (`RegisterNatives`, through the
//! `jni` crate) when the JVM loads the library with `System.load`.
//!
//! Why a second JVM path next to UniFFI's: in an ATAK plugin, classes come
//! from the plugin's own class loader and JNA's library lookup has been
//! reported to fail there, while `System.load(absolutePath)` from a plugin
//! class always binds to that class's loader. And a JNA call through the
//! generated code costs tens of microseconds (a call-status structure and a
//! buffer per string), a JNI call well under one. So the Kotlin layer sends
//! `get`/`put`/`mergePatch`/`delete` here when the registration worked and
//! through UniFFI otherwise; everything else (callbacks, records) stays with
//! UniFFI. Each function is a conversion around [`crate::sdk`]: no logic here.
//!
//! Errors are thrown as the same `PeatException` subclasses UniFFI generates;
//! a panic becomes `PeatException.Internal`, never an abort.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::objects::{JByteArray, JClass, JIntArray, JLongArray, JObject, JObjectArray, JString};
use jni::sys::{
    jboolean, jbyteArray, jdouble, jint, jlong, jlongArray, jobjectArray, jstring, JNI_ERR,
    JNI_FALSE, JNI_TRUE, JNI_VERSION_1_6,
};
use jni::{JNIEnv, JavaVM, NativeMethod};

use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::sdk;
use crate::uniffi_api::PeatException;

#[path = "jni_ephemeral.rs"]
mod ephemeral;
#[path = "jni_lifecycle.rs"]
mod lifecycle;
#[path = "jni_options.rs"]
mod options;
use options::{collection_rules, link_options, pace_options};

/// The Kotlin class whose `external` functions are bound here.
const BRIDGE_CLASS: &str = "io/peat/mesh/JniBridge";
const STR: &str = "Ljava/lang/String;";

/// Runs `f`, turning an error or a panic into a pending Java exception (and
/// `fallback` as the return value the JVM then ignores).
fn run<'l, T>(
    env: &mut JNIEnv<'l>,
    fallback: T,
    f: impl FnOnce(&mut JNIEnv<'l>) -> SdkResult<T>,
) -> T {
    let result = catch_unwind(AssertUnwindSafe(|| f(env)))
        .unwrap_or_else(|_| Err(SdkError::new(ErrorCode::Internal, "panic in peat-mesh")));
    match result {
        Ok(v) => v,
        Err(e) => {
            let e = PeatException::from(e);
            let class = format!("io/peat/mesh/uniffi/PeatException${}", e.kind_name());
            if env.throw_new(class, e.to_string()).is_err() {
                tracing::error!("could not throw {e} into the JVM");
            }
            fallback
        }
    }
}

/// A Java string argument as a Rust string; null is an invalid argument.
fn arg(env: &mut JNIEnv<'_>, s: &JString<'_>, what: &str) -> SdkResult<String> {
    if s.as_raw().is_null() {
        return Err(SdkError::invalid(format!("{what} is null")));
    }
    env.get_string(s)
        .map(String::from)
        .map_err(|e| SdkError::invalid(format!("{what}: {e}")))
}

/// A nullable Java string argument.
fn opt_arg(env: &mut JNIEnv<'_>, s: &JString<'_>, what: &str) -> SdkResult<Option<String>> {
    if s.as_raw().is_null() {
        Ok(None)
    } else {
        arg(env, s, what).map(Some)
    }
}

/// A failure of the JNI machinery itself (out of memory in the JVM, …).
fn jni_failed(e: jni::errors::Error) -> SdkError {
    SdkError::new(ErrorCode::Internal, format!("JNI: {e}"))
}

/// A `String[]` argument; null is an invalid argument, as is a null element.
fn string_array_arg(
    env: &mut JNIEnv<'_>,
    a: &JObjectArray<'_>,
    what: &str,
) -> SdkResult<Vec<String>> {
    if a.as_raw().is_null() {
        return Err(SdkError::invalid(format!("{what} is null")));
    }
    let len = env.get_array_length(a).map_err(jni_failed)?;
    let mut out = Vec::with_capacity(len.max(0) as usize);
    for i in 0..len {
        let element = JString::from(env.get_object_array_element(a, i).map_err(jni_failed)?);
        out.push(arg(env, &element, what)?);
        env.delete_local_ref(element).map_err(jni_failed)?;
    }
    Ok(out)
}

/// A `byte[]` argument; null is an invalid argument.
fn bytes_arg(env: &mut JNIEnv<'_>, a: &JByteArray<'_>, what: &str) -> SdkResult<Vec<u8>> {
    if a.as_raw().is_null() {
        return Err(SdkError::invalid(format!("{what} is null")));
    }
    env.convert_byte_array(a).map_err(jni_failed)
}

/// A new `String[]`; `None` elements stay null.
fn string_array(env: &mut JNIEnv<'_>, items: &[Option<String>]) -> SdkResult<jobjectArray> {
    let array = env
        .new_object_array(items.len() as i32, "java/lang/String", JObject::null())
        .map_err(jni_failed)?;
    for (i, item) in items.iter().enumerate() {
        if let Some(text) = item {
            let s = env.new_string(text).map_err(jni_failed)?;
            env.set_object_array_element(&array, i as i32, &s)
                .map_err(jni_failed)?;
            env.delete_local_ref(s).map_err(jni_failed)?;
        }
    }
    Ok(array.into_raw())
}

fn new_string(env: &mut JNIEnv<'_>, s: String) -> SdkResult<jstring> {
    env.new_string(s).map(|s| s.into_raw()).map_err(jni_failed)
}

/// The (collection, id) arguments every document call takes.
fn doc_ref(
    env: &mut JNIEnv<'_>,
    collection: &JString<'_>,
    id: &JString<'_>,
) -> SdkResult<(String, String)> {
    Ok((arg(env, collection, "collection")?, arg(env, id, "id")?))
}

/// A document write (`put`, `merge_patch`) with its JSON argument.
fn write<'l>(
    env: &mut JNIEnv<'l>,
    handle: jlong,
    collection: &JString<'l>,
    id: &JString<'l>,
    json: &JString<'l>,
    op: fn(u64, &str, &str, &str) -> SdkResult<()>,
) {
    run(env, (), |env| {
        let (c, i) = doc_ref(env, collection, id)?;
        let j = arg(env, json, "json")?;
        op(node(handle), &c, &i, &j)
    })
}

fn node(handle: jlong) -> u64 {
    handle as u64
}

fn ms(v: jlong) -> u64 {
    v.max(0) as u64
}

fn jbool(b: bool) -> jboolean {
    if b {
        JNI_TRUE
    } else {
        JNI_FALSE
    }
}

extern "system" fn abi_version<'l>(_env: JNIEnv<'l>, _class: JClass<'l>) -> jint {
    crate::c_api::PEAT_ABI_VERSION as jint
}

extern "system" fn generate_formation_secret<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jbyteArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        let secret = zeroize::Zeroizing::new(sdk::generate_formation_secret());
        env.byte_array_from_slice(&*secret)
            .map(|a| a.into_raw())
            .map_err(jni_failed)
    })
}

extern "system" fn get<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
) -> jstring {
    run(&mut env, std::ptr::null_mut(), |env| {
        let (c, i) = doc_ref(env, &collection, &id)?;
        match sdk::get(node(handle), &c, &i)? {
            None => Ok(std::ptr::null_mut()),
            Some(json) => new_string(env, json),
        }
    })
}

extern "system" fn put<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
    json: JString<'l>,
) {
    write(&mut env, handle, &collection, &id, &json, sdk::put)
}

extern "system" fn merge_patch<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
    json: JString<'l>,
) {
    write(&mut env, handle, &collection, &id, &json, sdk::merge_patch)
}

extern "system" fn delete<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
) -> jboolean {
    run(&mut env, JNI_FALSE, |env| {
        let (c, i) = doc_ref(env, &collection, &id)?;
        Ok(jbool(sdk::delete(node(handle), &c, &i)?))
    })
}

extern "system" fn attach<'l>(_env: JNIEnv<'l>, _class: JClass<'l>) -> jlong {
    crate::reload::attach() as jlong
}

extern "system" fn live_handles<'l>(_env: JNIEnv<'l>, _class: JClass<'l>) -> jlong {
    crate::handles::live_handles() as jlong
}

extern "system" fn node_handles<'l>(mut env: JNIEnv<'l>, _class: JClass<'l>) -> jlongArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        let ids: Vec<jlong> = sdk::node_handles()
            .into_iter()
            .map(|h| h as jlong)
            .collect();
        let array = env.new_long_array(ids.len() as i32).map_err(jni_failed)?;
        env.set_long_array_region(&array, 0, &ids)
            .map_err(jni_failed)?;
        Ok(array.into_raw())
    })
}

extern "system" fn cancel_new<'l>(_env: JNIEnv<'l>, _class: JClass<'l>) -> jlong {
    sdk::cancel_new() as jlong
}

extern "system" fn cancel<'l>(mut env: JNIEnv<'l>, _class: JClass<'l>, token: jlong) {
    run(&mut env, (), |_| sdk::cancel(token as u64))
}

extern "system" fn cancel_free<'l>(mut env: JNIEnv<'l>, _class: JClass<'l>, token: jlong) {
    run(&mut env, (), |_| sdk::cancel_free(token as u64))
}

#[allow(clippy::too_many_arguments)] // the JNI signature of NodeOptions spelled out
extern "system" fn node_open<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    data_dir: JString<'l>,
    formation_id: JString<'l>,
    secret: JByteArray<'l>,
    listen: JString<'l>,
    peers: JObjectArray<'l>,
    mdns: jboolean,
    link_names: JObjectArray<'l>,
    link_binds: JObjectArray<'l>,
    link_levels: JIntArray<'l>,
    links_only: jboolean,
    pace_ms: JLongArray<'l>,
    degraded_loss: jdouble,
    rule_collections: JObjectArray<'l>,
    rule_levels: JIntArray<'l>,
    ephemeral_strings: JObjectArray<'l>,
    ephemeral_ms: JLongArray<'l>,
    policies_json: JString<'l>,
    storage_budget: JLongArray<'l>,
    bandwidth_json: JString<'l>,
    trust_json: JString<'l>,
    timeout_ms: jlong,
    cancel: jlong,
) -> jlong {
    run(&mut env, 0, |env| {
        let opts = crate::records::NodeOptions {
            data_dir: arg(env, &data_dir, "dataDir")?,
            formation_id: arg(env, &formation_id, "formationId")?,
            formation_secret: bytes_arg(env, &secret, "secret")?,
            listen: arg(env, &listen, "listen")?,
            peers: string_array_arg(env, &peers, "peers")?,
            mdns: mdns != JNI_FALSE,
            links: link_options(env, &link_names, &link_binds, &link_levels)?,
            links_only: links_only != JNI_FALSE,
            pace: {
                let rules = collection_rules(env, &rule_collections, &rule_levels)?;
                pace_options(env, &pace_ms, degraded_loss, rules)?
            },
            ephemeral: ephemeral::ephemeral_options(env, &ephemeral_strings, &ephemeral_ms)?,
            policies_json: arg(env, &policies_json, "policiesJson")?,
            storage_budget_bytes: 0,
            storage_high_water_pct: 0,
            storage_low_water_pct: 0,
            bandwidth_json: arg(env, &bandwidth_json, "bandwidthJson")?,
            trust_json: arg(env, &trust_json, "trustJson")?,
        };
        let opts = lifecycle::with_budget(env, &storage_budget, opts)?;
        sdk::node_open(&opts, ms(timeout_ms), cancel as u64).map(|h| h as jlong)
    })
}

extern "system" fn node_close<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    timeout_ms: jlong,
) {
    run(&mut env, (), |_| {
        sdk::node_close(node(handle), ms(timeout_ms))
    })
}

extern "system" fn node_id<'l>(mut env: JNIEnv<'l>, _class: JClass<'l>, handle: jlong) -> jstring {
    run(&mut env, std::ptr::null_mut(), |env| {
        let id = sdk::node_id(node(handle))?;
        new_string(env, id)
    })
}

extern "system" fn node_addrs<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jobjectArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        let addrs: Vec<Option<String>> = sdk::node_addrs(node(handle))?
            .into_iter()
            .map(Some)
            .collect();
        string_array(env, &addrs)
    })
}

extern "system" fn connect<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    peer: JString<'l>,
    timeout_ms: jlong,
    cancel: jlong,
) {
    run(&mut env, (), |env| {
        let p = arg(env, &peer, "peer")?;
        sdk::connect(node(handle), &p, ms(timeout_ms), cancel as u64)
    })
}

extern "system" fn add_peer<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    peer: JString<'l>,
) {
    run(&mut env, (), |env| {
        let p = arg(env, &peer, "peer")?;
        sdk::add_peer(node(handle), &p)
    })
}

extern "system" fn set_link_silent<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    name: JString<'l>,
    silent: jboolean,
) {
    run(&mut env, (), |env| {
        let n = arg(env, &name, "name")?;
        sdk::set_link_silent(node(handle), &n, silent != JNI_FALSE)
    })
}

extern "system" fn remove_peer<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    id: JString<'l>,
) -> jboolean {
    run(&mut env, JNI_FALSE, |env| {
        let i = arg(env, &id, "peerId")?;
        Ok(jbool(sdk::remove_peer(node(handle), &i)?))
    })
}

/// Ids of one page, then the next page's cursor (null on the last page).
extern "system" fn list<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    prefix: JString<'l>,
    after: JString<'l>,
    limit: jint,
) -> jobjectArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        let c = arg(env, &collection, "collection")?;
        let p = arg(env, &prefix, "prefix")?;
        let a = opt_arg(env, &after, "after")?;
        let (ids, next) = sdk::list(node(handle), &c, &p, a.as_deref(), limit.max(0) as usize)?;
        let mut items: Vec<Option<String>> = ids.into_iter().map(Some).collect();
        items.push(next);
        string_array(env, &items)
    })
}

extern "system" fn export_doc<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
) -> jbyteArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        let (c, i) = doc_ref(env, &collection, &id)?;
        match sdk::export(node(handle), &c, &i)? {
            None => Ok(std::ptr::null_mut()),
            Some(bytes) => env
                .byte_array_from_slice(&bytes)
                .map(|a| a.into_raw())
                .map_err(jni_failed),
        }
    })
}

extern "system" fn import_doc<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
    bytes: JByteArray<'l>,
) {
    run(&mut env, (), |env| {
        let (c, i) = doc_ref(env, &collection, &id)?;
        let b = bytes_arg(env, &bytes, "bytes")?;
        sdk::import(node(handle), &c, &i, &b)
    })
}

/// The bindings' natives: (name, JNI signature, function).
fn methods() -> Vec<NativeMethod> {
    let doc = format!("(J{STR}{STR}");
    let m = |name: &str, sig: String, f: *mut c_void| NativeMethod {
        name: name.into(),
        sig: sig.into(),
        fn_ptr: f,
    };
    let doc2 = format!("(J{STR}{STR}"); // node, collection, id
    vec![
        m("abiVersion", "()I".into(), abi_version as *mut c_void),
        m("attach", "()J".into(), attach as *mut c_void),
        m(
            "generateFormationSecret",
            "()[B".into(),
            generate_formation_secret as *mut c_void,
        ),
        m("liveHandles", "()J".into(), live_handles as *mut c_void),
        m("nodeHandles", "()[J".into(), node_handles as *mut c_void),
        m("cancelNew", "()J".into(), cancel_new as *mut c_void),
        m("cancel", "(J)V".into(), cancel as *mut c_void),
        m("cancelFree", "(J)V".into(), cancel_free as *mut c_void),
        m(
            "nodeOpen",
            format!(
                "({STR}{STR}[B{STR}[{STR}Z[{STR}[{STR}[IZ[JD[{STR}[I[{STR}[J{STR}[J{STR}{STR}JJ)J"
            ),
            node_open as *mut c_void,
        ),
        m("nodeClose", "(JJ)V".into(), node_close as *mut c_void),
        m("nodeId", format!("(J){STR}"), node_id as *mut c_void),
        m("nodeAddrs", format!("(J)[{STR}"), node_addrs as *mut c_void),
        m("connect", format!("(J{STR}JJ)V"), connect as *mut c_void),
        m("addPeer", format!("(J{STR})V"), add_peer as *mut c_void),
        m(
            "setLinkSilent",
            format!("(J{STR}Z)V"),
            set_link_silent as *mut c_void,
        ),
        m(
            "removePeer",
            format!("(J{STR})Z"),
            remove_peer as *mut c_void,
        ),
        m(
            "list",
            format!("(J{STR}{STR}{STR}I)[{STR}"),
            list as *mut c_void,
        ),
        m("exportDoc", format!("{doc2})[B"), export_doc as *mut c_void),
        m(
            "importDoc",
            format!("{doc2}[B)V"),
            import_doc as *mut c_void,
        ),
        m("get", format!("{doc}){STR}"), get as *mut c_void),
        m("put", format!("{doc}{STR})V"), put as *mut c_void),
        m(
            "mergePatch",
            format!("{doc}{STR})V"),
            merge_patch as *mut c_void,
        ),
        m("delete", format!("{doc})Z"), delete as *mut c_void),
    ]
    .into_iter()
    .chain(ephemeral::methods())
    .chain(lifecycle::methods())
    .collect()
}

/// Called by the JVM when a class runs `System.load` on this library: binds
/// [`BRIDGE_CLASS`]'s natives, looked up through that class's own loader. A
/// JVM without the class (another host) just gets no bindings.
#[no_mangle]
pub extern "system" fn JNI_OnLoad(vm: JavaVM, _reserved: *mut c_void) -> jint {
    let Ok(mut env) = vm.get_env() else {
        return JNI_ERR;
    };
    let registered = env
        .find_class(BRIDGE_CLASS)
        .and_then(|class| env.register_native_methods(&class, &methods()));
    if let Err(e) = registered {
        let _ = env.exception_clear();
        tracing::debug!("JNI natives not registered ({BRIDGE_CLASS}): {e}");
    }
    JNI_VERSION_1_6
}

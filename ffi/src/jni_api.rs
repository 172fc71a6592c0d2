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

use jni::objects::{JClass, JString};
use jni::sys::{jboolean, jint, jlong, jstring, JNI_ERR, JNI_FALSE, JNI_TRUE, JNI_VERSION_1_6};
use jni::{JNIEnv, JavaVM, NativeMethod};

use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::sdk;
use crate::uniffi_api::PeatException;

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

fn node(handle: jlong) -> u64 {
    handle as u64
}

extern "system" fn abi_version<'l>(_env: JNIEnv<'l>, _class: JClass<'l>) -> jint {
    crate::c_api::PEAT_ABI_VERSION as jint
}

extern "system" fn get<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
) -> jstring {
    run(&mut env, std::ptr::null_mut(), |env| {
        let c = arg(env, &collection, "collection")?;
        let i = arg(env, &id, "id")?;
        match sdk::get(node(handle), &c, &i)? {
            None => Ok(std::ptr::null_mut()),
            Some(json) => env
                .new_string(json)
                .map(|s| s.into_raw())
                .map_err(|e| SdkError::new(ErrorCode::Internal, format!("new string: {e}"))),
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
    run(&mut env, (), |env| {
        let c = arg(env, &collection, "collection")?;
        let i = arg(env, &id, "id")?;
        let j = arg(env, &json, "json")?;
        sdk::put(node(handle), &c, &i, &j)
    })
}

extern "system" fn merge_patch<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
    json: JString<'l>,
) {
    run(&mut env, (), |env| {
        let c = arg(env, &collection, "collection")?;
        let i = arg(env, &id, "id")?;
        let j = arg(env, &json, "json")?;
        sdk::merge_patch(node(handle), &c, &i, &j)
    })
}

extern "system" fn delete<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    collection: JString<'l>,
    id: JString<'l>,
) -> jboolean {
    run(&mut env, JNI_FALSE, |env| {
        let c = arg(env, &collection, "collection")?;
        let i = arg(env, &id, "id")?;
        Ok(if sdk::delete(node(handle), &c, &i)? {
            JNI_TRUE
        } else {
            JNI_FALSE
        })
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
    vec![
        m("abiVersion", "()I".into(), abi_version as *mut c_void),
        m("get", format!("{doc}){STR}"), get as *mut c_void),
        m("put", format!("{doc}{STR})V"), put as *mut c_void),
        m(
            "mergePatch",
            format!("{doc}{STR})V"),
            merge_patch as *mut c_void,
        ),
        m("delete", format!("{doc})Z"), delete as *mut c_void),
    ]
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

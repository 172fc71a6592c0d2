//! The node options that reach JNI as parallel arrays (links, collection
//! rules) and a number array (PACE thresholds), converted to the SDK's
//! records.

use jni::objects::{JIntArray, JLongArray, JObjectArray};
use jni::JNIEnv;

use super::{jni_failed, string_array_arg};
use crate::error::{SdkError, SdkResult};

/// Links as three parallel arrays (names, bind addresses, PACE levels).
pub(super) fn link_options(
    env: &mut JNIEnv<'_>,
    names: &JObjectArray<'_>,
    binds: &JObjectArray<'_>,
    levels: &JIntArray<'_>,
) -> SdkResult<Vec<crate::records::LinkOptions>> {
    let names = string_array_arg(env, names, "linkNames")?;
    let binds = string_array_arg(env, binds, "linkBinds")?;
    let lv = int_array_arg(env, levels, "linkLevels")?;
    if names.len() != binds.len() || names.len() != lv.len() {
        return Err(SdkError::invalid(
            "linkNames, linkBinds and linkLevels differ in length",
        ));
    }
    names
        .into_iter()
        .zip(binds)
        .zip(lv)
        .map(|((name, bind), level)| {
            let level = u32::try_from(level)
                .map_err(|_| SdkError::invalid(format!("link {name:?} level {level}")))?;
            Ok(crate::records::LinkOptions { name, bind, level })
        })
        .collect()
}

/// An `int[]` argument; null is an invalid argument.
fn int_array_arg(env: &mut JNIEnv<'_>, a: &JIntArray<'_>, what: &str) -> SdkResult<Vec<i32>> {
    if a.as_raw().is_null() {
        return Err(SdkError::invalid(format!("{what} is null")));
    }
    let n = env.get_array_length(a).map_err(jni_failed)? as usize;
    let mut v = vec![0i32; n];
    env.get_int_array_region(a, 0, &mut v).map_err(jni_failed)?;
    Ok(v)
}

/// Per-collection rules as two parallel arrays (collections, below-levels).
pub(super) fn collection_rules(
    env: &mut JNIEnv<'_>,
    collections: &JObjectArray<'_>,
    levels: &JIntArray<'_>,
) -> SdkResult<Vec<crate::records::CollectionRule>> {
    let collections = string_array_arg(env, collections, "ruleCollections")?;
    let levels = int_array_arg(env, levels, "ruleLevels")?;
    if collections.len() != levels.len() {
        return Err(SdkError::invalid(
            "ruleCollections and ruleLevels differ in length",
        ));
    }
    collections
        .into_iter()
        .zip(levels)
        .map(|(collection, level)| {
            let below_level = u32::try_from(level).map_err(|_| {
                SdkError::invalid(format!("collection rule {collection:?} level {level}"))
            })?;
            Ok(crate::records::CollectionRule {
                collection,
                below_level,
            })
        })
        .collect()
}

/// PACE thresholds: `[probe interval, dead after, degraded RTT, hold-down]`
/// in milliseconds (0 for the default), `[4]` the level blobs stay below (0:
/// any), the degraded loss, and the per-collection rules.
pub(super) fn pace_options(
    env: &mut JNIEnv<'_>,
    ms: &JLongArray<'_>,
    degraded_loss: f64,
    collection_rules: Vec<crate::records::CollectionRule>,
) -> SdkResult<crate::records::PaceOptions> {
    if ms.as_raw().is_null() {
        return Err(SdkError::invalid("paceMs is null"));
    }
    let mut v = [0i64; 5];
    if env.get_array_length(ms).map_err(jni_failed)? != 5 {
        return Err(SdkError::invalid("paceMs must hold 5 values"));
    }
    env.get_long_array_region(ms, 0, &mut v)
        .map_err(jni_failed)?;
    let m = |x: i64| x.max(0) as u64;
    Ok(crate::records::PaceOptions {
        probe_interval_ms: m(v[0]),
        dead_after_ms: m(v[1]),
        degraded_rtt_ms: m(v[2]),
        degraded_loss,
        hold_down_ms: m(v[3]),
        blobs_below_level: u32::try_from(v[4])
            .map_err(|_| SdkError::invalid(format!("blobsBelowLevel {}", v[4])))?,
        collection_rules,
    })
}

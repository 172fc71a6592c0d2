//! Collection policies and the data lifecycle: policies at open (JSON, see
//! [`peat_mesh::Policies::from_json`]) and at runtime, garbage collection on
//! demand, storage counters.

use peat_mesh::{CollectionPolicy, NodeConfig, Policies, StorageBudget};

use super::args::ms;
use crate::error::{SdkError, SdkResult};
use crate::handles;
use crate::records::{GarbageReportRecord, NodeOptions, StorageStatsRecord};
use crate::runtime;

/// Applies the policies (empty text: the defaults) and the storage budget
/// (0 bytes: none) given at open.
pub(crate) fn apply(o: &NodeOptions, mut cfg: NodeConfig) -> SdkResult<NodeConfig> {
    if o.storage_budget_bytes > 0 {
        let mut b = StorageBudget::new(o.storage_budget_bytes);
        let pct = |v: u32, what: &str| {
            u8::try_from(v).map_err(|_| SdkError::invalid(format!("{what} {v}% is above 100")))
        };
        if o.storage_high_water_pct > 0 {
            b.high_water_pct = pct(o.storage_high_water_pct, "high water")?;
        }
        if o.storage_low_water_pct > 0 {
            b.low_water_pct = pct(o.storage_low_water_pct, "low water")?;
        }
        b.check()?;
        cfg.storage_budget = Some(b);
    }
    if o.policies_json.is_empty() {
        return Ok(cfg);
    }
    Ok(cfg.policies(Policies::from_json(&o.policies_json)?))
}

/// Sets a collection's policy (`None`: the default policy, for every
/// collection without its own) from JSON text; absent fields take the
/// defaults of [`CollectionPolicy::default`].
pub fn node_set_policy(node: u64, collection: Option<&str>, policy_json: &str) -> SdkResult<()> {
    let n = handles::node(node)?;
    let policy = CollectionPolicy::from_json(policy_json)?;
    match collection {
        Some(c) => n.set_policy(c, policy)?,
        None => n.set_default_policy(policy)?,
    }
    Ok(())
}

/// Removes a collection's own policy (it follows the default again); false
/// if it had none.
pub fn node_remove_policy(node: u64, collection: &str) -> SdkResult<bool> {
    if collection.is_empty() {
        return Err(SdkError::invalid("collection must not be empty"));
    }
    Ok(handles::node(node)?.remove_policy(collection)?)
}

/// The policy a collection follows now, as JSON text with every field.
pub fn node_policy(node: u64, collection: &str) -> SdkResult<String> {
    if collection.is_empty() {
        return Err(SdkError::invalid("collection must not be empty"));
    }
    Ok(handles::node(node)?.policy(collection).to_json())
}

/// Every policy in force, as JSON text (`{"default": …, "collections": {…}}`).
pub fn node_policies(node: u64) -> SdkResult<String> {
    Ok(handles::node(node)?.policies().to_json())
}

/// Runs garbage collection now (waits at most `timeout_ms`).
pub fn collect_garbage(node: u64, timeout_ms: u64) -> SdkResult<GarbageReportRecord> {
    let n = handles::node(node)?;
    runtime::block_on_timeout(ms(timeout_ms), async move {
        n.collect_garbage()
            .await
            .map(Into::into)
            .map_err(SdkError::from)
    })
}

/// The node's storage counters (waits at most `timeout_ms`).
pub fn storage_stats(node: u64, timeout_ms: u64) -> SdkResult<StorageStatsRecord> {
    let n = handles::node(node)?;
    runtime::block_on_timeout(ms(timeout_ms), async move {
        n.storage_stats()
            .await
            .map(Into::into)
            .map_err(SdkError::from)
    })
}

//! The UniFFI face of collection policies and the data lifecycle (Kotlin):
//! the operations of [`crate::sdk`]'s lifecycle module, exported as they are.
//! Policies cross as JSON text in the core's form; the Kotlin layer builds it
//! from its `CollectionPolicy` class.

use crate::records::{BandwidthStatsRecord, GarbageReportRecord, StorageStatsRecord};
use crate::sdk;
use crate::uniffi_api::R;

/// Sets a collection's policy (`None`: the default policy) from JSON.
#[uniffi::export]
pub fn set_policy(node: u64, collection: Option<String>, policy_json: String) -> R<()> {
    Ok(sdk::node_set_policy(
        node,
        collection.as_deref(),
        &policy_json,
    )?)
}

/// Removes a collection's own policy; false if it had none.
#[uniffi::export]
pub fn remove_policy(node: u64, collection: String) -> R<bool> {
    Ok(sdk::node_remove_policy(node, &collection)?)
}

/// The policy a collection follows now, as JSON.
#[uniffi::export]
pub fn policy(node: u64, collection: String) -> R<String> {
    Ok(sdk::node_policy(node, &collection)?)
}

/// Every policy in force, as JSON.
#[uniffi::export]
pub fn policies(node: u64) -> R<String> {
    Ok(sdk::node_policies(node)?)
}

/// Runs garbage collection now.
#[uniffi::export]
pub fn collect_garbage(node: u64, timeout_ms: u64) -> R<GarbageReportRecord> {
    Ok(sdk::collect_garbage(node, timeout_ms)?)
}

/// The node's storage counters.
#[uniffi::export]
pub fn storage_stats(node: u64, timeout_ms: u64) -> R<StorageStatsRecord> {
    Ok(sdk::storage_stats(node, timeout_ms)?)
}

/// Replaces the node's bandwidth budgets from JSON.
#[uniffi::export]
pub fn set_bandwidth(node: u64, bandwidth_json: String) -> R<()> {
    Ok(sdk::node_set_bandwidth(node, &bandwidth_json)?)
}

/// The bandwidth budgets in force, as JSON.
#[uniffi::export]
pub fn bandwidth(node: u64) -> R<String> {
    Ok(sdk::node_bandwidth(node)?)
}

/// What the bandwidth budgets did since the node opened.
#[uniffi::export]
pub fn bandwidth_stats(node: u64) -> R<BandwidthStatsRecord> {
    Ok(sdk::node_bandwidth_stats(node)?)
}

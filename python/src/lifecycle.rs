//! Collection policies, the data lifecycle and bandwidth budgets for
//! `peat_mesh._native`:
//! policies cross as JSON text (the Python package builds it from its
//! `CollectionPolicy` dataclass), reports and counters as tuples; every wait
//! releases the GIL.

use peat_mesh_ffi::sdk;
use pyo3::prelude::*;

use crate::{err, R};

#[pyfunction]
#[pyo3(signature = (node, collection, policy_json))]
fn set_policy(node: u64, collection: Option<String>, policy_json: String) -> R<()> {
    sdk::node_set_policy(node, collection.as_deref(), &policy_json).map_err(err)
}

#[pyfunction]
fn remove_policy(node: u64, collection: String) -> R<bool> {
    sdk::node_remove_policy(node, &collection).map_err(err)
}

#[pyfunction]
fn policy(node: u64, collection: String) -> R<String> {
    sdk::node_policy(node, &collection).map_err(err)
}

#[pyfunction]
fn policies(node: u64) -> R<String> {
    sdk::node_policies(node).map_err(err)
}

/// (expired_documents, purged_tombstones, evicted_documents, removed_blobs,
/// blob_bytes_freed, took_ms, budget_evicted)
type ReportTuple = (u64, u64, u64, u64, u64, u64, u64);

#[pyfunction]
fn collect_garbage(py: Python<'_>, node: u64, timeout_ms: u64) -> R<ReportTuple> {
    let r = py
        .detach(|| sdk::collect_garbage(node, timeout_ms))
        .map_err(err)?;
    Ok((
        r.expired_documents,
        r.purged_tombstones,
        r.evicted_documents,
        r.removed_blobs,
        r.blob_bytes_freed,
        r.took_ms,
        r.budget_evicted,
    ))
}

/// (documents, tombstones, document_bytes, expired_total,
/// tombstones_purged_total, evicted_total, refused_expired_total,
/// refused_evicted_total, revived_total, gc_runs, budget_evicted_total)
type StatsTuple = (u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64);

#[pyfunction]
fn storage_stats(py: Python<'_>, node: u64, timeout_ms: u64) -> R<StatsTuple> {
    let s = py
        .detach(|| sdk::storage_stats(node, timeout_ms))
        .map_err(err)?;
    Ok((
        s.documents,
        s.tombstones,
        s.document_bytes,
        s.expired_total,
        s.tombstones_purged_total,
        s.evicted_total,
        s.refused_expired_total,
        s.refused_evicted_total,
        s.revived_total,
        s.gc_runs,
        s.budget_evicted_total,
    ))
}

#[pyfunction]
fn set_bandwidth(node: u64, bandwidth_json: String) -> R<()> {
    sdk::node_set_bandwidth(node, &bandwidth_json).map_err(err)
}

#[pyfunction]
fn bandwidth(node: u64) -> R<String> {
    sdk::node_bandwidth(node).map_err(err)
}

/// (bytes_limited, waits, waited_ms, dropped_datagrams)
#[pyfunction]
fn bandwidth_stats(node: u64) -> R<(u64, u64, u64, u64)> {
    let s = sdk::node_bandwidth_stats(node).map_err(err)?;
    Ok((s.bytes_limited, s.waits, s.waited_ms, s.dropped_datagrams))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(set_policy, m)?)?;
    m.add_function(wrap_pyfunction!(remove_policy, m)?)?;
    m.add_function(wrap_pyfunction!(policy, m)?)?;
    m.add_function(wrap_pyfunction!(policies, m)?)?;
    m.add_function(wrap_pyfunction!(collect_garbage, m)?)?;
    m.add_function(wrap_pyfunction!(storage_stats, m)?)?;
    m.add_function(wrap_pyfunction!(set_bandwidth, m)?)?;
    m.add_function(wrap_pyfunction!(bandwidth, m)?)?;
    m.add_function(wrap_pyfunction!(bandwidth_stats, m)?)?;
    Ok(())
}

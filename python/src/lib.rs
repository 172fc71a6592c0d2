//! `peat_mesh._native`: the PyO3 module. It only converts types around the
//! shared SDK layer (`peat_mesh_ffi::sdk`); every wait releases the GIL.

mod ephemeral;
mod lifecycle;
mod trust;

use peat_mesh_ffi::blobs;
use peat_mesh_ffi::records::{
    BlobInfoRecord, CollectionRule, DocEventRecord, LinkHealthRecord, LinkOptions, NodeOptions,
    Origin, PaceOptions, PeerEventRecord, SubEvent, TransferProfile, TransferProgress,
};
use peat_mesh_ffi::sdk;
use peat_mesh_ffi::{ErrorCode, SdkError};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    _native,
    PeatError,
    PyException,
    "Base class of every peat-mesh error."
);
create_exception!(
    _native,
    InvalidArgumentError,
    PeatError,
    "An argument was invalid."
);
create_exception!(
    _native,
    NotFoundError,
    PeatError,
    "No such document or object."
);
create_exception!(
    _native,
    InvalidHandleError,
    PeatError,
    "The object was closed or never existed."
);
create_exception!(
    _native,
    ClosedError,
    PeatError,
    "The node or subscription is closed."
);
create_exception!(
    _native,
    PeatTimeoutError,
    PeatError,
    "The operation did not finish in time."
);
create_exception!(
    _native,
    StorageError,
    PeatError,
    "File or database failure."
);
create_exception!(_native, NetworkError, PeatError, "Network failure.");
create_exception!(
    _native,
    AdmissionRefusedError,
    PeatError,
    "A peer refused (or failed) formation admission."
);
create_exception!(
    _native,
    ProtocolError,
    PeatError,
    "A peer broke the wire protocol."
);
create_exception!(
    _native,
    CorruptError,
    PeatError,
    "Stored or received data could not be decoded."
);
create_exception!(_native, ShutDownError, PeatError, "The SDK was shut down.");
create_exception!(
    _native,
    WouldDeadlockError,
    PeatError,
    "A blocking call from an SDK thread."
);
create_exception!(_native, InternalError, PeatError, "A bug inside peat-mesh.");
create_exception!(
    _native,
    OperationCancelledError,
    PeatError,
    "The operation was cancelled."
);

pub(crate) fn err(e: SdkError) -> PyErr {
    let m = e.message;
    match e.code {
        ErrorCode::InvalidArgument => InvalidArgumentError::new_err(m),
        ErrorCode::NotFound => NotFoundError::new_err(m),
        ErrorCode::InvalidHandle => InvalidHandleError::new_err(m),
        ErrorCode::Closed => ClosedError::new_err(m),
        ErrorCode::Timeout => PeatTimeoutError::new_err(m),
        ErrorCode::Io => StorageError::new_err(m),
        ErrorCode::Network => NetworkError::new_err(m),
        ErrorCode::AdmissionRefused => AdmissionRefusedError::new_err(m),
        ErrorCode::Protocol => ProtocolError::new_err(m),
        ErrorCode::Corrupt => CorruptError::new_err(m),
        ErrorCode::ShutDown => ShutDownError::new_err(m),
        ErrorCode::WouldDeadlock => WouldDeadlockError::new_err(m),
        ErrorCode::Cancelled => OperationCancelledError::new_err(m),
        ErrorCode::Internal | ErrorCode::Ok => InternalError::new_err(m),
    }
}

pub(crate) type R<T> = PyResult<T>;

/// (name, bind, level) of one link.
type LinkArg = (String, String, u32);

/// (probe_interval_ms, dead_after_ms, degraded_rtt_ms, degraded_loss,
/// hold_down_ms, blobs_below_level, [(collection, below_level)]); zero takes
/// the default.
type PaceArg = (u64, u64, u64, f64, u64, u32, Vec<(String, u32)>);

#[pyfunction]
#[pyo3(signature = (data_dir, formation_id, formation_secret, listen, peers, mdns, links, links_only, pace, ephemeral, policies_json, storage_budget, bandwidth_json, trust_json, timeout_ms, cancel))]
#[allow(clippy::too_many_arguments)]
fn node_open(
    py: Python<'_>,
    data_dir: String,
    formation_id: String,
    formation_secret: Vec<u8>,
    listen: String,
    peers: Vec<String>,
    mdns: bool,
    links: Vec<LinkArg>,
    links_only: bool,
    pace: PaceArg,
    ephemeral: ephemeral::EphemeralArg,
    policies_json: String,
    storage_budget: (u64, u32, u32),
    bandwidth_json: String,
    trust_json: String,
    timeout_ms: u64,
    cancel: u64,
) -> R<u64> {
    let (
        probe_interval_ms,
        dead_after_ms,
        degraded_rtt_ms,
        degraded_loss,
        hold_down_ms,
        blobs_below_level,
        collection_rules,
    ) = pace;
    let opts = NodeOptions {
        data_dir,
        formation_id,
        formation_secret,
        listen,
        peers,
        mdns,
        links: links
            .into_iter()
            .map(|(name, bind, level)| LinkOptions { name, bind, level })
            .collect(),
        links_only,
        pace: PaceOptions {
            probe_interval_ms,
            dead_after_ms,
            degraded_rtt_ms,
            degraded_loss,
            hold_down_ms,
            blobs_below_level,
            collection_rules: collection_rules
                .into_iter()
                .map(|(collection, below_level)| CollectionRule {
                    collection,
                    below_level,
                })
                .collect(),
        },
        ephemeral: ephemeral::options(ephemeral),
        policies_json,
        storage_budget_bytes: storage_budget.0,
        storage_high_water_pct: storage_budget.1,
        storage_low_water_pct: storage_budget.2,
        bandwidth_json,
        trust_json,
    };
    py.detach(|| sdk::node_open(&opts, timeout_ms, cancel))
        .map_err(err)
}

/// A new random 32-byte formation secret (never all zeros).
#[pyfunction]
fn generate_formation_secret(py: Python<'_>) -> Py<pyo3::types::PyBytes> {
    let secret = sdk::generate_formation_secret();
    pyo3::types::PyBytes::new(py, &secret).unbind()
}

#[pyfunction]
fn node_close(py: Python<'_>, node: u64, timeout_ms: u64) -> R<()> {
    py.detach(|| sdk::node_close(node, timeout_ms)).map_err(err)
}

#[pyfunction]
fn node_id(node: u64) -> R<String> {
    sdk::node_id(node).map_err(err)
}

#[pyfunction]
fn node_addrs(node: u64) -> R<Vec<String>> {
    sdk::node_addrs(node).map_err(err)
}

#[pyfunction]
fn connect(py: Python<'_>, node: u64, peer: String, timeout_ms: u64, cancel: u64) -> R<()> {
    py.detach(|| sdk::connect(node, &peer, timeout_ms, cancel))
        .map_err(err)
}

/// (name, level, state, rtt_us, rtt_var_us, loss, last_answer_ms, in_use,
/// silent) of one link towards a peer; the state by its SDK name.
type LinkTuple = (
    String,
    Option<u32>,
    &'static str,
    Option<u64>,
    Option<u64>,
    f64,
    Option<u64>,
    bool,
    bool,
);

fn link_tuple(l: LinkHealthRecord) -> LinkTuple {
    (
        l.name,
        l.level,
        l.state.name(),
        l.rtt_us,
        l.rtt_var_us,
        l.loss,
        l.last_answer_ms,
        l.in_use,
        l.silent,
    )
}

/// (id, connected, addr, rtt_us, last_seen_ms, state, sources, links, sync)
/// of one peer; the state and the sources by their SDK names, the links as
/// [`LinkTuple`]s, sync as (bytes_sent, bytes_received, queued_updates,
/// queued_reply_bytes).
type PeerTuple = (
    String,
    bool,
    Option<String>,
    Option<u64>,
    Option<u64>,
    &'static str,
    Vec<&'static str>,
    Vec<LinkTuple>,
    (u64, u64, u64, u64),
);

/// Every peer seen.
#[pyfunction]
fn peers(node: u64) -> R<Vec<PeerTuple>> {
    Ok(sdk::peers(node)
        .map_err(err)?
        .into_iter()
        .map(|p| {
            (
                p.id,
                p.connected,
                p.addr,
                p.rtt_us,
                p.last_seen_ms,
                p.state.name(),
                p.sources.iter().map(|s| s.name()).collect(),
                p.links.into_iter().map(link_tuple).collect(),
                (
                    p.sync_bytes_sent,
                    p.sync_bytes_received,
                    p.sync_queued_updates,
                    p.sync_queued_reply_bytes,
                ),
            )
        })
        .collect())
}

/// (documents, connected_peers, subscriptions, frames_sent, bytes_sent,
/// frames_received, bytes_received, refused_documents, queued_events,
/// update_latency_count, update_latency_sum_ms).
type StatsTuple = (u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64);

/// The node's counters.
#[pyfunction]
fn stats(py: Python<'_>, node: u64) -> R<StatsTuple> {
    let s = py.detach(|| sdk::stats(node)).map_err(err)?;
    Ok((
        s.documents,
        s.connected_peers,
        s.subscriptions,
        s.frames_sent,
        s.bytes_sent,
        s.frames_received,
        s.bytes_received,
        s.refused_documents,
        s.queued_events,
        s.update_latency_count,
        s.update_latency_sum_ms,
    ))
}

#[pyfunction]
fn add_peer(node: u64, peer: String) -> R<()> {
    sdk::add_peer(node, &peer).map_err(err)
}

#[pyfunction]
fn set_link_silent(node: u64, name: String, silent: bool) -> R<()> {
    sdk::set_link_silent(node, &name, silent).map_err(err)
}

#[pyfunction]
fn remove_peer(node: u64, peer_id: String) -> R<bool> {
    sdk::remove_peer(node, &peer_id).map_err(err)
}

#[pyfunction]
fn put(py: Python<'_>, node: u64, collection: String, id: String, json: String) -> R<()> {
    py.detach(|| sdk::put(node, &collection, &id, &json))
        .map_err(err)
}

#[pyfunction]
fn merge_patch(py: Python<'_>, node: u64, collection: String, id: String, json: String) -> R<()> {
    py.detach(|| sdk::merge_patch(node, &collection, &id, &json))
        .map_err(err)
}

#[pyfunction]
fn get(py: Python<'_>, node: u64, collection: String, id: String) -> R<Option<String>> {
    py.detach(|| sdk::get(node, &collection, &id)).map_err(err)
}

#[pyfunction]
fn delete(py: Python<'_>, node: u64, collection: String, id: String) -> R<bool> {
    py.detach(|| sdk::delete(node, &collection, &id))
        .map_err(err)
}

#[pyfunction]
#[pyo3(signature = (node, collection, prefix, after, limit))]
fn list(
    py: Python<'_>,
    node: u64,
    collection: String,
    prefix: String,
    after: Option<String>,
    limit: usize,
) -> R<(Vec<String>, Option<String>)> {
    py.detach(|| sdk::list(node, &collection, &prefix, after.as_deref(), limit))
        .map_err(err)
}

/// [(name, live documents)] of the collections, in name order, a page.
#[pyfunction]
#[pyo3(signature = (node, after, limit))]
fn collections(
    py: Python<'_>,
    node: u64,
    after: Option<String>,
    limit: usize,
) -> R<Vec<(String, u64)>> {
    let list = py
        .detach(|| sdk::collections(node, after.as_deref(), limit))
        .map_err(err)?;
    Ok(list.into_iter().map(|c| (c.name, c.documents)).collect())
}

/// (hash, done, total, resumed, received, rate) of a running fetch.
type TransferRow = (String, u64, u64, u64, u64, f64);

/// The running fetches, in hash order.
#[pyfunction]
fn blob_transfers(py: Python<'_>, node: u64) -> R<Vec<TransferRow>> {
    let list = py.detach(|| blobs::blob_transfers(node)).map_err(err)?;
    Ok(list
        .into_iter()
        .map(|t| {
            let p = t.progress;
            (t.hash, p.done, p.total, p.resumed, p.received, p.rate)
        })
        .collect())
}

#[pyfunction]
fn export(py: Python<'_>, node: u64, collection: String, id: String) -> R<Option<Vec<u8>>> {
    py.detach(|| sdk::export(node, &collection, &id))
        .map_err(err)
}

#[pyfunction]
fn import_bytes(py: Python<'_>, node: u64, collection: String, id: String, data: Vec<u8>) -> R<()> {
    py.detach(|| sdk::import(node, &collection, &id, &data))
        .map_err(err)
}

#[pyfunction]
#[pyo3(signature = (node, collection, id, snapshot))]
fn subscribe_docs(node: u64, collection: String, id: Option<String>, snapshot: bool) -> R<u64> {
    sdk::subscribe_docs(node, &collection, id.as_deref(), snapshot).map_err(err)
}

#[pyfunction]
fn subscribe_peers(node: u64) -> R<u64> {
    sdk::subscribe_peers(node).map_err(err)
}

/// A document event as a tuple: ("changed", collection, id, json|None, origin,
/// peer|None) (origin by its SDK name; peer: the sender's id when origin is
/// "peer") or ("lagged", n).
type DocTuple = (
    &'static str,
    String,
    String,
    Option<String>,
    &'static str,
    Option<String>,
);

fn doc_tuple(py: Python<'_>, ev: DocEventRecord) -> R<Py<PyAny>> {
    Ok(match ev {
        DocEventRecord::Changed {
            collection,
            id,
            json,
            origin,
        } => {
            let name = origin.name();
            let peer = match origin {
                Origin::Peer { id } => Some(id),
                Origin::Snapshot | Origin::Local => None,
            };
            let t: DocTuple = ("changed", collection, id, json, name, peer);
            t.into_pyobject(py)?.into_any().unbind()
        }
        DocEventRecord::Lagged(n) => ("lagged", n).into_pyobject(py)?.into_any().unbind(),
    })
}

/// (kind, peer, reason, source, link_from, link_to, level), the last three
/// None but for "link_changed": ("connected", peer, "", None, …) /
/// ("disconnected", peer, reason, None, …) / ("admission_refused", peer,
/// reason, None, …) / ("discovered"|"lost", peer, "", source, …) /
/// ("other_formation", peer, "", None, …) / ("revoked", peer, "", None, …) /
/// ("storage_failed", None, reason,
/// None, …) / ("link_changed", peer, "", None, from, to, level) / ("lagged",
/// n); the source by its SDK name.
fn peer_tuple(py: Python<'_>, ev: PeerEventRecord) -> R<Py<PyAny>> {
    let t = |k: &str, p: Option<String>, r: String, s: Option<&str>| -> R<Py<PyAny>> {
        Ok((k, p, r, s, None::<String>, None::<String>, None::<u32>)
            .into_pyobject(py)?
            .into_any()
            .unbind())
    };
    match ev {
        PeerEventRecord::Connected { peer } => t("connected", Some(peer), String::new(), None),
        PeerEventRecord::Disconnected { peer, reason } => {
            t("disconnected", Some(peer), reason, None)
        }
        PeerEventRecord::AdmissionRefused { peer, reason } => {
            t("admission_refused", Some(peer), reason, None)
        }
        PeerEventRecord::Revoked { peer } => t("revoked", Some(peer), String::new(), None),
        PeerEventRecord::Discovered { peer, source } => {
            t("discovered", Some(peer), String::new(), Some(source.name()))
        }
        PeerEventRecord::Lost { peer, source } => {
            t("lost", Some(peer), String::new(), Some(source.name()))
        }
        PeerEventRecord::SeenOtherFormation { peer } => {
            t("other_formation", Some(peer), String::new(), None)
        }
        PeerEventRecord::StorageFailed { reason } => t("storage_failed", None, reason, None),
        PeerEventRecord::StorageEvicted {
            documents,
            stored_bytes,
        } => Ok(("storage_evicted", documents, stored_bytes)
            .into_pyobject(py)?
            .into_any()
            .unbind()),
        PeerEventRecord::LinkChanged {
            peer,
            from,
            to,
            level,
        } => Ok((
            "link_changed",
            Some(peer),
            String::new(),
            None::<&str>,
            from,
            to,
            level,
        )
            .into_pyobject(py)?
            .into_any()
            .unbind()),
        PeerEventRecord::Lagged(n) => Ok(("lagged", n).into_pyobject(py)?.into_any().unbind()),
    }
}

/// (done, total, resumed, received, rate, finished).
type ProgressTuple = (u64, u64, u64, u64, f64, bool);

fn progress_tuple(p: TransferProgress) -> ProgressTuple {
    (p.done, p.total, p.resumed, p.received, p.rate, p.finished)
}

/// The next document event as a tuple (see [`doc_tuple`]); None on timeout.
#[pyfunction]
fn next_doc_event(py: Python<'_>, sub: u64, timeout_ms: u64) -> R<Option<Py<PyAny>>> {
    let ev = py
        .detach(|| sdk::next_doc_event(sub, timeout_ms))
        .map_err(err)?;
    ev.map(|e| doc_tuple(py, e)).transpose()
}

/// The next peer event as a tuple (see [`peer_tuple`]); None on timeout.
#[pyfunction]
fn next_peer_event(py: Python<'_>, sub: u64, timeout_ms: u64) -> R<Option<Py<PyAny>>> {
    let ev = py
        .detach(|| sdk::next_peer_event(sub, timeout_ms))
        .map_err(err)?;
    ev.map(|e| peer_tuple(py, e)).transpose()
}

/// A Python callable as a push subscription's sink. It runs on the SDK
/// dispatcher thread and takes the GIL only for the call; it is called with
/// ("doc", tuple) / ("peer", tuple) / ("progress", tuple) / ("closed",).
/// Dropping it (the SDK's cleanup hook) releases the callable. During
/// interpreter shutdown nothing is called.
struct PySink(Py<PyAny>);

impl peat_mesh_ffi::dispatch::EventSink for PySink {
    fn on_event(&self, event: &SubEvent) {
        Python::try_attach(|py| {
            let arg: R<Py<PyAny>> = match event.clone() {
                SubEvent::Doc(e) => doc_tuple(py, e)
                    .and_then(|t| Ok(("doc", t).into_pyobject(py)?.into_any().unbind())),
                SubEvent::Peer(e) => peer_tuple(py, e)
                    .and_then(|t| Ok(("peer", t).into_pyobject(py)?.into_any().unbind())),
                SubEvent::Progress(p) => ("progress", progress_tuple(p))
                    .into_pyobject(py)
                    .map(|o| o.into_any().unbind()),
                SubEvent::Closed => ("closed",).into_pyobject(py).map(|o| o.into_any().unbind()),
                SubEvent::Log { .. } | SubEvent::Ready => return,
            };
            if let Err(e) = arg.and_then(|a| self.0.call1(py, (a,))) {
                e.print(py);
            }
        });
    }
}

/// Subscribes to documents with push delivery to `callback`; returns the
/// subscription handle (end it with `unsubscribe`).
#[pyfunction]
#[pyo3(signature = (node, collection, id, snapshot, callback))]
fn subscribe_docs_push(
    node: u64,
    collection: String,
    id: Option<String>,
    snapshot: bool,
    callback: Py<PyAny>,
) -> R<u64> {
    sdk::subscribe_docs_push(
        node,
        &collection,
        id.as_deref(),
        snapshot,
        Box::new(PySink(callback)),
    )
    .map_err(err)
}

/// Subscribes to peer events with push delivery to `callback`.
#[pyfunction]
fn subscribe_peers_push(node: u64, callback: Py<PyAny>) -> R<u64> {
    sdk::subscribe_peers_push(node, Box::new(PySink(callback))).map_err(err)
}

/// Pushes a transfer's progress to `callback`; the last has finished=True,
/// then ("closed",).
#[pyfunction]
fn transfer_subscribe_progress(transfer: u64, callback: Py<PyAny>) -> R<u64> {
    blobs::transfer_subscribe_progress(transfer, Box::new(PySink(callback))).map_err(err)
}

/// Ends a subscription. The GIL is released: ending a push subscription waits
/// for its running callback, which may be waiting for the GIL.
#[pyfunction]
fn unsubscribe(py: Python<'_>, sub: u64) -> R<()> {
    py.detach(|| sdk::unsubscribe(sub)).map_err(err)
}

#[pyfunction]
fn cancel_new() -> u64 {
    sdk::cancel_new()
}

#[pyfunction]
fn cancel(token: u64) -> R<()> {
    sdk::cancel(token).map_err(err)
}

#[pyfunction]
fn cancel_free(token: u64) -> R<()> {
    sdk::cancel_free(token).map_err(err)
}

#[pyfunction]
fn live_handles() -> usize {
    peat_mesh_ffi::handles::live_handles()
}

#[pyfunction]
fn shutdown(py: Python<'_>, timeout_ms: u64) -> R<()> {
    py.detach(|| sdk::shutdown(timeout_ms)).map_err(err)
}

/// A Python callable as the SDK's log sink; runs on the dispatcher thread and
/// takes the GIL only for the call.
struct PyLogSink(Py<PyAny>);

impl peat_mesh_ffi::dispatch::EventSink for PyLogSink {
    fn on_event(&self, event: &SubEvent) {
        if let SubEvent::Log {
            level,
            target,
            message,
        } = event
        {
            Python::try_attach(|py| {
                if let Err(e) = self
                    .0
                    .call1(py, (*level, target.as_str(), message.as_str()))
                {
                    e.print(py);
                }
            });
        }
    }
}

/// Installs the log sink. The GIL is released: replacing a sink waits for its
/// running callback, which may be waiting for the GIL.
#[pyfunction]
fn set_log_callback(py: Python<'_>, callback: Py<PyAny>, max_level: u8) -> R<()> {
    let sink = Box::new(PyLogSink(callback));
    py.detach(|| peat_mesh_ffi::log::set_log_sink(sink, max_level))
        .map_err(err)
}

/// Removes the log sink, with the GIL released (see [`set_log_callback`]).
#[pyfunction]
fn clear_log_callback(py: Python<'_>) {
    py.detach(peat_mesh_ffi::log::clear_log_sink)
}

// ----- blobs -----

/// (hash, sha256, size) of a complete blob.
type BlobTuple = (String, String, u64);

fn blob_tuple(r: BlobInfoRecord) -> BlobTuple {
    (r.hash_hex(), r.sha256_hex(), r.size)
}

#[pyfunction]
fn blob_add_file(
    py: Python<'_>,
    node: u64,
    path: String,
    timeout_ms: u64,
    cancel: u64,
) -> R<BlobTuple> {
    py.detach(|| blobs::blob_add_file(node, &path, timeout_ms, cancel))
        .map(blob_tuple)
        .map_err(err)
}

/// Starts a fetch; `profile` and `priority` by their SDK names ("" for the
/// defaults); `expected_size` 0 means unknown.
#[pyfunction]
fn blob_fetch(
    node: u64,
    hash: String,
    providers: Vec<String>,
    profile: String,
    rate_limit: u64,
    expected_size: u64,
    priority: String,
) -> R<u64> {
    let p: Vec<&str> = providers.iter().map(String::as_str).collect();
    let profile = TransferProfile::parse(&profile).map_err(err)?;
    blobs::blob_fetch(
        node,
        &hash,
        &p,
        profile,
        rate_limit,
        expected_size,
        &priority,
    )
    .map_err(err)
}

/// Throws away a blob's partial download; whether there was one.
#[pyfunction]
fn blob_discard_partial(py: Python<'_>, node: u64, hash: String) -> R<bool> {
    py.detach(|| blobs::blob_discard_partial(node, &hash))
        .map_err(err)
}

/// (done, total, resumed, received, rate, finished).
#[pyfunction]
fn transfer_progress(transfer: u64) -> R<ProgressTuple> {
    blobs::transfer_progress(transfer)
        .map(progress_tuple)
        .map_err(err)
}

#[pyfunction]
fn transfer_wait(py: Python<'_>, transfer: u64, timeout_ms: u64, cancel: u64) -> R<BlobTuple> {
    py.detach(|| blobs::transfer_wait(transfer, timeout_ms, cancel))
        .map(blob_tuple)
        .map_err(err)
}

#[pyfunction]
fn transfer_cancel(transfer: u64) -> R<()> {
    blobs::transfer_cancel(transfer).map_err(err)
}

#[pyfunction]
fn transfer_free(transfer: u64) -> R<()> {
    blobs::transfer_free(transfer).map_err(err)
}

#[pyfunction]
fn blob_export(
    py: Python<'_>,
    node: u64,
    hash: String,
    path: String,
    timeout_ms: u64,
    cancel: u64,
) -> R<u64> {
    py.detach(|| blobs::blob_export(node, &hash, &path, timeout_ms, cancel))
        .map_err(err)
}

/// (state, size, present); the state by its SDK name.
#[pyfunction]
fn blob_status(node: u64, hash: String) -> R<(&'static str, u64, u64)> {
    let s = blobs::blob_status(node, &hash).map_err(err)?;
    Ok((s.state.name(), s.size, s.present))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for (name, ty) in [
        ("PeatError", py.get_type::<PeatError>()),
        (
            "InvalidArgumentError",
            py.get_type::<InvalidArgumentError>(),
        ),
        ("NotFoundError", py.get_type::<NotFoundError>()),
        ("InvalidHandleError", py.get_type::<InvalidHandleError>()),
        ("ClosedError", py.get_type::<ClosedError>()),
        ("PeatTimeoutError", py.get_type::<PeatTimeoutError>()),
        ("StorageError", py.get_type::<StorageError>()),
        ("NetworkError", py.get_type::<NetworkError>()),
        (
            "AdmissionRefusedError",
            py.get_type::<AdmissionRefusedError>(),
        ),
        ("ProtocolError", py.get_type::<ProtocolError>()),
        ("CorruptError", py.get_type::<CorruptError>()),
        ("ShutDownError", py.get_type::<ShutDownError>()),
        ("WouldDeadlockError", py.get_type::<WouldDeadlockError>()),
        ("InternalError", py.get_type::<InternalError>()),
        (
            "OperationCancelledError",
            py.get_type::<OperationCancelledError>(),
        ),
    ] {
        m.add(name, ty)?;
    }
    m.add_function(wrap_pyfunction!(node_open, m)?)?;
    m.add_function(wrap_pyfunction!(generate_formation_secret, m)?)?;
    m.add_function(wrap_pyfunction!(set_log_callback, m)?)?;
    m.add_function(wrap_pyfunction!(clear_log_callback, m)?)?;
    m.add_function(wrap_pyfunction!(add_peer, m)?)?;
    m.add_function(wrap_pyfunction!(remove_peer, m)?)?;
    m.add_function(wrap_pyfunction!(set_link_silent, m)?)?;
    m.add_function(wrap_pyfunction!(blob_add_file, m)?)?;
    m.add_function(wrap_pyfunction!(blob_fetch, m)?)?;
    m.add_function(wrap_pyfunction!(transfer_progress, m)?)?;
    m.add_function(wrap_pyfunction!(transfer_wait, m)?)?;
    m.add_function(wrap_pyfunction!(transfer_cancel, m)?)?;
    m.add_function(wrap_pyfunction!(transfer_free, m)?)?;
    m.add_function(wrap_pyfunction!(blob_export, m)?)?;
    m.add_function(wrap_pyfunction!(blob_status, m)?)?;
    m.add_function(wrap_pyfunction!(blob_discard_partial, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(node_close, m)?)?;
    m.add_function(wrap_pyfunction!(node_id, m)?)?;
    m.add_function(wrap_pyfunction!(node_addrs, m)?)?;
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(peers, m)?)?;
    m.add_function(wrap_pyfunction!(put, m)?)?;
    m.add_function(wrap_pyfunction!(merge_patch, m)?)?;
    m.add_function(wrap_pyfunction!(get, m)?)?;
    m.add_function(wrap_pyfunction!(delete, m)?)?;
    m.add_function(wrap_pyfunction!(list, m)?)?;
    m.add_function(wrap_pyfunction!(collections, m)?)?;
    m.add_function(wrap_pyfunction!(blob_transfers, m)?)?;
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add_function(wrap_pyfunction!(import_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(subscribe_docs, m)?)?;
    m.add_function(wrap_pyfunction!(subscribe_peers, m)?)?;
    m.add_function(wrap_pyfunction!(next_doc_event, m)?)?;
    m.add_function(wrap_pyfunction!(next_peer_event, m)?)?;
    m.add_function(wrap_pyfunction!(subscribe_docs_push, m)?)?;
    m.add_function(wrap_pyfunction!(subscribe_peers_push, m)?)?;
    m.add_function(wrap_pyfunction!(transfer_subscribe_progress, m)?)?;
    m.add_function(wrap_pyfunction!(unsubscribe, m)?)?;
    m.add_function(wrap_pyfunction!(cancel_new, m)?)?;
    m.add_function(wrap_pyfunction!(cancel, m)?)?;
    m.add_function(wrap_pyfunction!(cancel_free, m)?)?;
    m.add_function(wrap_pyfunction!(live_handles, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    ephemeral::register(m)?;
    lifecycle::register(m)?;
    trust::register(m)?;
    Ok(())
}

//! The UniFFI face of the SDK layer (Kotlin/Android): the same operations as
//! [`crate::sdk`] and [`crate::blobs`], exported with proc-macros. Records and
//! events are the SDK's own types (they derive `uniffi::Record`/`Enum`); only
//! the error and the blob info need shapes of their own here. The generated
//! Kotlin lives in `bindings/kotlin/` (regenerate with `scripts/gen-kotlin`).

use std::sync::Arc;

use crate::blobs;
use crate::dispatch::EventSink;
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::records::{
    BlobInfoRecord, BlobStatusRecord, CollectionRecord, NodeOptions, NodeStats, PeerRecord,
    SubEvent, TransferProfile, TransferProgress, TransferStatusRecord,
};
use crate::reload;
use crate::sdk;

/// Every SDK error, one variant per stable code. Kotlin sees a sealed
/// `PeatException` hierarchy.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum PeatException {
    /// See [`ErrorCode::InvalidArgument`].
    #[error("{0}")]
    InvalidArgument(String),
    /// See [`ErrorCode::NotFound`].
    #[error("{0}")]
    NotFound(String),
    /// See [`ErrorCode::InvalidHandle`].
    #[error("{0}")]
    InvalidHandle(String),
    /// See [`ErrorCode::Closed`].
    #[error("{0}")]
    Closed(String),
    /// See [`ErrorCode::Timeout`].
    #[error("{0}")]
    Timeout(String),
    /// See [`ErrorCode::Io`].
    #[error("{0}")]
    Io(String),
    /// See [`ErrorCode::Network`].
    #[error("{0}")]
    Network(String),
    /// See [`ErrorCode::AdmissionRefused`].
    #[error("{0}")]
    AdmissionRefused(String),
    /// See [`ErrorCode::Protocol`].
    #[error("{0}")]
    Protocol(String),
    /// See [`ErrorCode::Corrupt`].
    #[error("{0}")]
    Corrupt(String),
    /// See [`ErrorCode::ShutDown`].
    #[error("{0}")]
    ShutDown(String),
    /// See [`ErrorCode::WouldDeadlock`].
    #[error("{0}")]
    WouldDeadlock(String),
    /// See [`ErrorCode::Internal`].
    #[error("{0}")]
    Internal(String),
    /// See [`ErrorCode::Cancelled`].
    #[error("{0}")]
    Cancelled(String),
}

impl From<SdkError> for PeatException {
    fn from(e: SdkError) -> Self {
        let m = e.message;
        match e.code {
            ErrorCode::Ok | ErrorCode::Internal => PeatException::Internal(m),
            ErrorCode::InvalidArgument => PeatException::InvalidArgument(m),
            ErrorCode::NotFound => PeatException::NotFound(m),
            ErrorCode::InvalidHandle => PeatException::InvalidHandle(m),
            ErrorCode::Closed => PeatException::Closed(m),
            ErrorCode::Timeout => PeatException::Timeout(m),
            ErrorCode::Io => PeatException::Io(m),
            ErrorCode::Network => PeatException::Network(m),
            ErrorCode::AdmissionRefused => PeatException::AdmissionRefused(m),
            ErrorCode::Protocol => PeatException::Protocol(m),
            ErrorCode::Corrupt => PeatException::Corrupt(m),
            ErrorCode::ShutDown => PeatException::ShutDown(m),
            ErrorCode::WouldDeadlock => PeatException::WouldDeadlock(m),
            ErrorCode::Cancelled => PeatException::Cancelled(m),
        }
    }
}

impl PeatException {
    /// The variant's name, which is also the generated Kotlin class's
    /// (`PeatException.NotFound`, …); the JNI path throws those classes.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            PeatException::InvalidArgument(_) => "InvalidArgument",
            PeatException::NotFound(_) => "NotFound",
            PeatException::InvalidHandle(_) => "InvalidHandle",
            PeatException::Closed(_) => "Closed",
            PeatException::Timeout(_) => "Timeout",
            PeatException::Io(_) => "Io",
            PeatException::Network(_) => "Network",
            PeatException::AdmissionRefused(_) => "AdmissionRefused",
            PeatException::Protocol(_) => "Protocol",
            PeatException::Corrupt(_) => "Corrupt",
            PeatException::ShutDown(_) => "ShutDown",
            PeatException::WouldDeadlock(_) => "WouldDeadlock",
            PeatException::Internal(_) => "Internal",
            PeatException::Cancelled(_) => "Cancelled",
        }
    }
}

pub(crate) type R<T> = Result<T, PeatException>;

/// A complete blob.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BlobInfo {
    /// BLAKE3 hash, 64 hex digits.
    pub hash: String,
    /// SHA-256, 64 hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl From<BlobInfoRecord> for BlobInfo {
    fn from(r: BlobInfoRecord) -> Self {
        BlobInfo {
            hash: r.hash_hex(),
            sha256: r.sha256_hex(),
            size: r.size,
        }
    }
}

/// One page of [`list`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ListPage {
    /// Document ids.
    pub ids: Vec<String>,
    /// Cursor for the next page.
    pub next: Option<String>,
}

/// Receives pushed events on the SDK's dispatcher thread, in order.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// One event; [`SubEvent::Closed`] is the last.
    fn on_event(&self, event: SubEvent);
}

/// A foreign listener as an SDK sink, tied to the generation that made it (see
/// [`crate::reload`]): after a reload it is never called, nor freed.
struct ForeignSink {
    listener: Option<Arc<dyn EventListener>>,
    generation: u64,
}

impl ForeignSink {
    fn new(listener: Arc<dyn EventListener>, generation: u64) -> Box<Self> {
        Box::new(ForeignSink {
            listener: Some(listener),
            generation,
        })
    }
}

impl EventSink for ForeignSink {
    fn on_event(&self, event: &SubEvent) {
        if let Some(l) = self
            .listener
            .as_ref()
            .filter(|_| self.generation == reload::current())
        {
            l.on_event(event.clone());
        }
    }
}

impl Drop for ForeignSink {
    fn drop(&mut self) {
        if self.generation != reload::current() {
            // An older generation's listener is left alone: freeing it would
            // go through the new callback table to the wrong object.
            std::mem::forget(self.listener.take());
        }
    }
}

/// Registers a push subscription made with a listener of `generation`.
fn push(
    generation: u64,
    subscribe: impl FnOnce(Box<dyn EventSink>) -> SdkResult<u64>,
    listener: Arc<dyn EventListener>,
) -> R<u64> {
    reload::check(generation)?;
    let handle = subscribe(ForeignSink::new(listener, generation))?;
    reload::track(handle, generation);
    Ok(handle)
}

/// The SDK's ABI version.
#[uniffi::export]
pub fn abi_version() -> u32 {
    crate::c_api::PEAT_ABI_VERSION
}

/// A new random 32-byte formation secret (cryptographically secure, never all
/// zeros); see [`sdk::generate_formation_secret`].
#[uniffi::export]
pub fn generate_formation_secret() -> Vec<u8> {
    sdk::generate_formation_secret().to_vec()
}

/// Sets the runtime's worker count before first use.
#[uniffi::export]
pub fn runtime_configure(workers: u32) -> R<()> {
    Ok(crate::runtime::configure(workers as usize)?)
}

/// Shuts the SDK down; every later call reports `ShutDown`.
#[uniffi::export]
pub fn shutdown(timeout_ms: u64) -> R<()> {
    Ok(sdk::shutdown(timeout_ms)?)
}

/// Handles of every node open in this process (see [`sdk::node_handles`]).
#[uniffi::export]
pub fn node_handles() -> Vec<u64> {
    sdk::node_handles()
}

/// Sends the SDK's log records (as [`SubEvent::Log`]) at or above
/// `max_level` (1 error … 5 trace) to `listener` on the dispatcher thread,
/// replacing any previous listener. `generation` is the one the bindings got
/// when they attached (see [`crate::reload`]).
#[uniffi::export]
pub fn set_log_listener(generation: u64, listener: Arc<dyn EventListener>, max_level: u8) -> R<()> {
    reload::check(generation)?;
    // Refused before anything is installed: the previous listener stays.
    crate::log::set_log_sink(ForeignSink::new(listener, generation), max_level)?;
    reload::set_log_listener(Some(generation));
    Ok(())
}

/// Stops forwarding logs and drops the listener.
#[uniffi::export]
pub fn clear_log_listener() {
    reload::set_log_listener(None);
    crate::log::clear_log_sink()
}

/// Live handles (for leak checks).
#[uniffi::export]
pub fn live_handles() -> u64 {
    crate::handles::live_handles() as u64
}

/// A new cancel token handle.
#[uniffi::export]
pub fn cancel_new() -> u64 {
    sdk::cancel_new()
}

/// Triggers a cancel token.
#[uniffi::export]
pub fn cancel(token: u64) -> R<()> {
    Ok(sdk::cancel(token)?)
}

/// Frees a cancel token.
#[uniffi::export]
pub fn cancel_free(token: u64) -> R<()> {
    Ok(sdk::cancel_free(token)?)
}

/// Opens a node (blocking; the Kotlin layer calls it off the caller's thread).
#[uniffi::export]
pub fn node_open(options: NodeOptions, timeout_ms: u64, cancel: u64) -> R<u64> {
    Ok(sdk::node_open(&options, timeout_ms, cancel)?)
}

/// Closes a node.
#[uniffi::export]
pub fn node_close(node: u64, timeout_ms: u64) -> R<()> {
    Ok(sdk::node_close(node, timeout_ms)?)
}

/// The node's id.
#[uniffi::export]
pub fn node_id(node: u64) -> R<String> {
    Ok(sdk::node_id(node)?)
}

/// `NODEID@HOST:PORT` strings.
#[uniffi::export]
pub fn node_addrs(node: u64) -> R<Vec<String>> {
    Ok(sdk::node_addrs(node)?)
}

/// Dials a peer.
#[uniffi::export]
pub fn connect(node: u64, peer: String, timeout_ms: u64, cancel: u64) -> R<()> {
    Ok(sdk::connect(node, &peer, timeout_ms, cancel)?)
}

/// Adds a static peer.
#[uniffi::export]
pub fn add_peer(node: u64, peer: String) -> R<()> {
    Ok(sdk::add_peer(node, &peer)?)
}

/// Removes a static peer.
#[uniffi::export]
pub fn remove_peer(node: u64, peer_id: String) -> R<bool> {
    Ok(sdk::remove_peer(node, &peer_id)?)
}

/// Silences the link `name` (emission control) or lets it speak again.
#[uniffi::export]
pub fn set_link_silent(node: u64, name: String, silent: bool) -> R<()> {
    Ok(sdk::set_link_silent(node, &name, silent)?)
}

/// Every peer seen.
#[uniffi::export]
pub fn peers(node: u64) -> R<Vec<PeerRecord>> {
    Ok(sdk::peers(node)?)
}

/// Counters.
#[uniffi::export]
pub fn stats(node: u64) -> R<NodeStats> {
    Ok(sdk::stats(node)?)
}

/// Writes a document (JSON object).
#[uniffi::export]
pub fn put(node: u64, collection: String, id: String, json: String) -> R<()> {
    Ok(sdk::put(node, &collection, &id, &json)?)
}

/// Applies a JSON merge patch.
#[uniffi::export]
pub fn merge_patch(node: u64, collection: String, id: String, json: String) -> R<()> {
    Ok(sdk::merge_patch(node, &collection, &id, &json)?)
}

/// A document as JSON, or null.
#[uniffi::export]
pub fn get(node: u64, collection: String, id: String) -> R<Option<String>> {
    Ok(sdk::get(node, &collection, &id)?)
}

/// Deletes a document.
#[uniffi::export]
pub fn delete(node: u64, collection: String, id: String) -> R<bool> {
    Ok(sdk::delete(node, &collection, &id)?)
}

/// One page of ids.
#[uniffi::export]
pub fn list(
    node: u64,
    collection: String,
    prefix: String,
    after: Option<String>,
    limit: u32,
) -> R<ListPage> {
    let (ids, next) = sdk::list(node, &collection, &prefix, after.as_deref(), limit as usize)?;
    Ok(ListPage { ids, next })
}

/// Collections with live documents and their counts, a page at a time.
#[uniffi::export]
pub fn collections(node: u64, after: Option<String>, limit: u32) -> R<Vec<CollectionRecord>> {
    Ok(sdk::collections(node, after.as_deref(), limit as usize)?)
}

/// The blob fetches running now.
#[uniffi::export]
pub fn blob_transfers(node: u64) -> R<Vec<TransferStatusRecord>> {
    Ok(crate::blobs::blob_transfers(node)?)
}

/// Raw Automerge bytes.
#[uniffi::export]
pub fn export_doc(node: u64, collection: String, id: String) -> R<Option<Vec<u8>>> {
    Ok(sdk::export(node, &collection, &id)?)
}

/// Merges raw Automerge bytes.
#[uniffi::export]
pub fn import_doc(node: u64, collection: String, id: String, bytes: Vec<u8>) -> R<()> {
    Ok(sdk::import(node, &collection, &id, &bytes)?)
}

/// Document events pushed to `listener` (`generation`: see [`set_log_listener`]).
#[uniffi::export]
pub fn subscribe_docs(
    generation: u64,
    node: u64,
    collection: String,
    id: Option<String>,
    snapshot: bool,
    listener: Arc<dyn EventListener>,
) -> R<u64> {
    push(
        generation,
        |sink| sdk::subscribe_docs_push(node, &collection, id.as_deref(), snapshot, sink),
        listener,
    )
}

/// Peer events pushed to `listener`.
#[uniffi::export]
pub fn subscribe_peers(generation: u64, node: u64, listener: Arc<dyn EventListener>) -> R<u64> {
    push(
        generation,
        |sink| sdk::subscribe_peers_push(node, sink),
        listener,
    )
}

/// Ends a subscription.
#[uniffi::export]
pub fn unsubscribe(sub: u64) -> R<()> {
    reload::untrack(sub);
    Ok(sdk::unsubscribe(sub)?)
}

/// Adds a file as a blob.
#[uniffi::export]
pub fn blob_add_file(node: u64, path: String, timeout_ms: u64, cancel: u64) -> R<BlobInfo> {
    Ok(blobs::blob_add_file(node, &path, timeout_ms, cancel)?.into())
}

/// Starts a fetch; returns a transfer handle (`expected_size` 0: unknown;
/// `priority` a class name, "" for bulk).
#[uniffi::export]
pub fn blob_fetch(
    node: u64,
    hash: String,
    providers: Vec<String>,
    profile: TransferProfile,
    rate_limit: u64,
    expected_size: u64,
    priority: String,
) -> R<u64> {
    let p: Vec<&str> = providers.iter().map(String::as_str).collect();
    Ok(blobs::blob_fetch(
        node,
        &hash,
        &p,
        profile,
        rate_limit,
        expected_size,
        &priority,
    )?)
}

/// Throws away a blob's partial download; whether there was one.
#[uniffi::export]
pub fn blob_discard_partial(node: u64, hash: String) -> R<bool> {
    Ok(blobs::blob_discard_partial(node, &hash)?)
}

/// A transfer's progress.
#[uniffi::export]
pub fn transfer_progress(transfer: u64) -> R<TransferProgress> {
    Ok(blobs::transfer_progress(transfer)?)
}

/// Waits for a transfer (cancel token cancels the transfer).
#[uniffi::export]
pub fn transfer_wait(transfer: u64, timeout_ms: u64, cancel: u64) -> R<BlobInfo> {
    Ok(blobs::transfer_wait(transfer, timeout_ms, cancel)?.into())
}

/// Cancels a transfer.
#[uniffi::export]
pub fn transfer_cancel(transfer: u64) -> R<()> {
    Ok(blobs::transfer_cancel(transfer)?)
}

/// Frees a transfer handle.
#[uniffi::export]
pub fn transfer_free(transfer: u64) -> R<()> {
    Ok(blobs::transfer_free(transfer)?)
}

/// Progress pushed to `listener`.
#[uniffi::export]
pub fn transfer_subscribe_progress(
    generation: u64,
    transfer: u64,
    listener: Arc<dyn EventListener>,
) -> R<u64> {
    push(
        generation,
        |sink| blobs::transfer_subscribe_progress(transfer, sink),
        listener,
    )
}

/// Copies a blob to a path.
#[uniffi::export]
pub fn blob_export(node: u64, hash: String, path: String, timeout_ms: u64, cancel: u64) -> R<u64> {
    Ok(blobs::blob_export(node, &hash, &path, timeout_ms, cancel)?)
}

/// How much of a blob is here.
#[uniffi::export]
pub fn blob_status(node: u64, hash: String) -> R<BlobStatusRecord> {
    Ok(blobs::blob_status(node, &hash)?)
}

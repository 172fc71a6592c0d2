//! Blobs in the SDK: add, fetch as a transfer handle with progress (polled or
//! pushed), wait with timeout and cancel, export, status. Their records
//! ([`crate::records`]) are plain `repr(C)` values with fixed-size strings, so
//! no binding has to free them.

use std::time::Duration;

use peat_mesh::blobs::{BlobHash, FetchOptions};
use peat_mesh::NodeId;

use crate::dispatch::{EventSink, Push};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::handles::{self, Object};
use crate::records::{
    BlobInfoRecord, BlobStatusRecord, SubEvent, TransferProfile, TransferProgress,
    TransferStatusRecord,
};
use crate::runtime;

fn parse_hash(s: &str) -> SdkResult<BlobHash> {
    s.parse::<BlobHash>().map_err(SdkError::from)
}

fn ms(t: u64) -> Duration {
    Duration::from_millis(t)
}

/// Adds a file's contents to the node's blob store.
pub fn blob_add_file(
    node: u64,
    path: &str,
    timeout_ms: u64,
    cancel: u64,
) -> SdkResult<BlobInfoRecord> {
    let n = handles::node(node)?;
    let token = handles::cancel_token(cancel)?;
    let path = path.to_string();
    runtime::block_on_cancellable(ms(timeout_ms), token, async move {
        let i = n.blobs().add_file(path).await?;
        Ok(BlobInfoRecord::from(&i))
    })
}

/// Starts fetching a blob; returns a transfer handle at once. `providers` are
/// node ids (empty: every connected peer that has it); `profile` says how it
/// uses the network; `rate_limit` is bytes per
/// second, 0 for none; `expected_size` is the size the blob must have (a blob
/// reference states it), 0 for unknown: a provider claiming another size is
/// not used, and when every provider does the transfer fails `Corrupt`
/// without storing anything. `priority` is the transfer's class by name
/// ("critical" … "bulk"; "" for bulk, the default): providers send it in that
/// class, never above normal.
pub fn blob_fetch(
    node: u64,
    hash: &str,
    providers: &[&str],
    profile: TransferProfile,
    rate_limit: u64,
    expected_size: u64,
    priority: &str,
) -> SdkResult<u64> {
    let n = handles::node(node)?;
    let hash = parse_hash(hash)?;
    let providers = providers
        .iter()
        .map(|p| p.parse::<NodeId>().map_err(SdkError::from))
        .collect::<SdkResult<Vec<_>>>()?;
    let class = crate::records::priority_arg(priority, peat_mesh::Priority::Bulk)?;
    let mut opts = FetchOptions::default()
        .from(providers)
        .profile(profile.into())
        .priority(class);
    if rate_limit > 0 {
        opts = opts.rate_limit(rate_limit);
    }
    if expected_size > 0 {
        opts = opts.expected_size(expected_size);
    }
    // The transfer task runs on the SDK runtime.
    let t = runtime::block_on(async move { n.blobs().fetch(hash, opts) })?;
    Ok(handles::insert(Object::Transfer(t)))
}

/// The blob fetches running on the node now, in hash order.
pub fn blob_transfers(node: u64) -> SdkResult<Vec<TransferStatusRecord>> {
    let n = handles::node(node)?;
    Ok(n.blobs()
        .transfers()
        .iter()
        .map(TransferStatusRecord::from)
        .collect())
}

/// Current progress of a transfer.
pub fn transfer_progress(transfer: u64) -> SdkResult<TransferProgress> {
    Ok(handles::transfer(transfer)?.progress().into())
}

/// Waits for a transfer to end. On timeout the transfer goes on (`Timeout`);
/// when `cancel` fires, the transfer is cancelled too (`Cancelled`); what it
/// verified stays on disk for a later fetch to resume.
pub fn transfer_wait(transfer: u64, timeout_ms: u64, cancel: u64) -> SdkResult<BlobInfoRecord> {
    let t = handles::transfer(transfer)?;
    let token = handles::cancel_token(cancel)?;
    runtime::block_on_cancellable(ms(timeout_ms), None, async move {
        let cancelled = async {
            match &token {
                Some(tok) => tok.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = t.wait() => r.map(|i| BlobInfoRecord::from(&i)).map_err(SdkError::from),
            _ = cancelled => {
                t.cancel();
                Err(SdkError::new(ErrorCode::Cancelled, "transfer cancelled"))
            }
        }
    })
}

/// Cancels a transfer (its handle stays valid until freed).
pub fn transfer_cancel(transfer: u64) -> SdkResult<()> {
    handles::transfer(transfer)?.cancel();
    Ok(())
}

/// Frees a transfer handle (0: nothing to free). A running transfer goes on;
/// cancel it first to stop it.
pub fn transfer_free(transfer: u64) -> SdkResult<()> {
    if transfer == 0 {
        return Ok(()); // a zeroed handle: nothing to free
    }
    handles::transfer(transfer)?;
    handles::remove(transfer).map(|_| ())
}

/// Pushes every progress change of a transfer to `sink` (as
/// [`SubEvent::Progress`]) on the dispatcher thread; the last one has
/// `finished` set, then [`SubEvent::Closed`]. Returns a subscription handle.
pub fn transfer_subscribe_progress(transfer: u64, sink: Box<dyn EventSink>) -> SdkResult<u64> {
    let t = handles::transfer(transfer)?;
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(t.watch()));
    let push = Push::new(sink);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    push.start(move || {
        let rx = rx.clone();
        let done = done.clone();
        async move {
            if done.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let mut rx = rx.lock().await;
            let p = {
                let p = rx.borrow_and_update().clone();
                if p.finished {
                    p
                } else {
                    rx.changed().await.ok()?;
                    rx.borrow_and_update().clone()
                }
            };
            if p.finished {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Some(SubEvent::Progress(p.into()))
        }
    })?;
    Ok(handles::insert(Object::Push(push)))
}

/// Copies a complete blob to `path`; returns its size.
pub fn blob_export(
    node: u64,
    hash: &str,
    path: &str,
    timeout_ms: u64,
    cancel: u64,
) -> SdkResult<u64> {
    let n = handles::node(node)?;
    let hash = parse_hash(hash)?;
    let token = handles::cancel_token(cancel)?;
    let path = path.to_string();
    runtime::block_on_cancellable(ms(timeout_ms), token, async move {
        n.blobs().export(hash, path).await.map_err(SdkError::from)
    })
}

/// Throws away the partial download of a blob (what earlier fetches verified),
/// so that the next fetch starts from nothing. Returns whether there was one.
/// A complete blob is never touched. While a fetch of the blob is running this
/// fails with `InvalidArgument`: cancel it (and wait for it to end) first.
pub fn blob_discard_partial(node: u64, hash: &str) -> SdkResult<bool> {
    let n = handles::node(node)?;
    let hash = parse_hash(hash)?;
    runtime::block_on(async move {
        n.blobs()
            .discard_partial(hash)
            .await
            .map_err(SdkError::from)
    })?
}

/// How much of a blob is here.
pub fn blob_status(node: u64, hash: &str) -> SdkResult<BlobStatusRecord> {
    let n = handles::node(node)?;
    let hash = parse_hash(hash)?;
    Ok(n.blobs().status(hash)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::BlobState;
    use crate::sdk::tests::opts;
    use crate::sdk::{connect, node_addrs, node_close, node_id, node_open};
    use std::sync::{Arc, Mutex};

    struct Collect(Arc<Mutex<Vec<TransferProgress>>>);
    impl EventSink for Collect {
        fn on_event(&self, e: &SubEvent) {
            if let SubEvent::Progress(p) = e {
                self.0.lock().unwrap().push(*p);
            }
        }
    }

    #[test]
    fn add_fetch_with_pushed_progress_export_and_status() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = node_open(&opts(da.path()), 5000, 0).unwrap();
        let b = node_open(&opts(db.path()), 5000, 0).unwrap();
        connect(b, &node_addrs(a).unwrap()[0], 5000, 0).unwrap();
        let src = da.path().join("src.bin");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 / 3) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let info = blob_add_file(a, src.to_str().unwrap(), 10_000, 0).unwrap();
        assert_eq!(info.size, data.len() as u64);
        assert_eq!(info.hash_hex(), BlobHash::of(&data).to_hex());
        let aid = node_id(a).unwrap();
        let t = blob_fetch(
            b,
            &info.hash_hex(),
            &[&aid],
            TransferProfile::Edge,
            0,
            info.size,
            "",
        )
        .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sub = transfer_subscribe_progress(t, Box::new(Collect(seen.clone()))).unwrap();
        let got = transfer_wait(t, 20_000, 0).unwrap();
        assert_eq!(got, info);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !seen.lock().unwrap().last().is_some_and(|p| p.finished) {
            assert!(std::time::Instant::now() < deadline, "no final progress");
            std::thread::sleep(Duration::from_millis(10));
        }
        let seen = seen.lock().unwrap().clone();
        assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "monotonic");
        assert_eq!(seen.last().unwrap().done, info.size);
        crate::sdk::unsubscribe(sub).unwrap();
        let out = db.path().join("out.bin");
        assert_eq!(
            blob_export(b, &info.hash_hex(), out.to_str().unwrap(), 10_000, 0).unwrap(),
            info.size
        );
        assert_eq!(std::fs::read(&out).unwrap(), data);
        assert_eq!(
            blob_status(b, &info.hash_hex()).unwrap().state,
            BlobState::Complete
        );
        assert_eq!(
            blob_fetch(b, "zz", &[], TransferProfile::default(), 0, 0, "")
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            TransferProfile::parse("warp").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let h = info.hash_hex();
        assert_eq!(
            blob_fetch(b, &h, &[], TransferProfile::default(), 0, 0, "urgent")
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            TransferProfile::parse("").unwrap(),
            TransferProfile::Tactical
        );
        transfer_free(t).unwrap();
        assert_eq!(transfer_free(t).unwrap_err().code, ErrorCode::InvalidHandle);
        node_close(a, 5000).unwrap();
        node_close(b, 5000).unwrap();
    }

    /// Sends every pushed progress into a channel.
    struct Send(Mutex<std::sync::mpsc::Sender<TransferProgress>>);
    impl EventSink for Send {
        fn on_event(&self, e: &SubEvent) {
            if let SubEvent::Progress(p) = e {
                let _ = self.0.lock().unwrap().send(*p);
            }
        }
    }

    #[test]
    fn expected_size_and_discard_partial() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = node_open(&opts(da.path()), 5000, 0).unwrap();
        let b = node_open(&opts(db.path()), 5000, 0).unwrap();
        connect(b, &node_addrs(a).unwrap()[0], 5000, 0).unwrap();
        let src = da.path().join("src.bin");
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 13 / 5) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let info = blob_add_file(a, src.to_str().unwrap(), 10_000, 0).unwrap();
        let (aid, h) = (node_id(a).unwrap(), info.hash_hex());
        let wait = |t| transfer_wait(t, 20_000, 0);

        // the only provider offers another size than expected: Corrupt, nothing kept
        let t = blob_fetch(
            b,
            &h,
            &[&aid],
            TransferProfile::Tactical,
            0,
            info.size + 1,
            "",
        )
        .unwrap();
        assert_eq!(wait(t).unwrap_err().code, ErrorCode::Corrupt);
        transfer_free(t).unwrap();
        assert_eq!(blob_status(b, &h).unwrap().state, BlobState::Missing);

        // a slow fetch: discarding is refused while it runs
        let t = blob_fetch(
            b,
            &h,
            &[&aid],
            TransferProfile::Edge,
            256 << 10,
            info.size,
            "",
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let sub = transfer_subscribe_progress(t, Box::new(Send(Mutex::new(tx)))).unwrap();
        while rx.recv_timeout(Duration::from_secs(20)).unwrap().done < 64 << 10 {}
        let e = blob_discard_partial(b, &h).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
        transfer_cancel(t).unwrap();
        assert_eq!(wait(t).unwrap_err().code, ErrorCode::Cancelled);
        crate::sdk::unsubscribe(sub).unwrap();
        transfer_free(t).unwrap();
        assert_eq!(blob_status(b, &h).unwrap().state, BlobState::Partial);
        assert!(blob_discard_partial(b, &h).unwrap());
        assert_eq!(blob_status(b, &h).unwrap(), BlobStatusRecord::default());
        assert!(!blob_discard_partial(b, &h).unwrap());

        // the next fetch (right size expected) starts from nothing
        let t = blob_fetch(
            b,
            &h,
            &[&aid],
            TransferProfile::Tactical,
            0,
            info.size,
            "high",
        )
        .unwrap();
        assert_eq!(wait(t).unwrap(), info);
        assert_eq!(transfer_progress(t).unwrap().resumed, 0);
        transfer_free(t).unwrap();
        // a complete blob is never discarded
        assert!(!blob_discard_partial(b, &h).unwrap());
        assert_eq!(blob_status(b, &h).unwrap().state, BlobState::Complete);
        assert_eq!(
            blob_discard_partial(b, "zz").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        node_close(a, 5000).unwrap();
        node_close(b, 5000).unwrap();
    }
}

//! The handle of a blob fetch: what to fetch from whom ([`FetchOptions`]),
//! how far it got ([`Progress`]) and the running transfer ([`Transfer`]).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::hash::BlobHash;
use super::profile::TransferProfile;
use super::store::BlobInfo;
use crate::error::{Error, ErrorKind, Result};
use crate::{NodeId, Priority};

/// How to fetch a blob.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Peers to fetch from. Empty: every connected peer that has the blob.
    pub providers: Vec<NodeId>,
    /// Chunk size and checkpoint interval.
    pub profile: TransferProfile,
    /// Cap on this transfer's rate, in bytes per second.
    pub rate_limit: Option<u64>,
    /// How long to wait for a provider whose link dropped to come back.
    pub reconnect_wait: Duration,
    /// The size the blob must have (a [`super::BlobRef`] states it): a
    /// provider claiming another size is not used.
    pub expected_size: Option<u64>,
    /// The transfer's class on the wire: providers send its pieces in this
    /// class (QUIC priority and bandwidth budgets). Default `Bulk`; a
    /// provider serves `Critical` and `High` as `Normal` (the higher classes
    /// are for documents).
    pub priority: Priority,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            providers: Vec::new(),
            profile: TransferProfile::default(),
            rate_limit: None,
            reconnect_wait: Duration::from_secs(60),
            expected_size: None,
            priority: Priority::Bulk,
        }
    }
}

impl FetchOptions {
    /// Fetch from these peers only.
    pub fn from(mut self, providers: impl IntoIterator<Item = NodeId>) -> Self {
        self.providers = providers.into_iter().collect();
        self
    }

    /// Use this profile.
    pub fn profile(mut self, p: TransferProfile) -> Self {
        self.profile = p;
        self
    }

    /// Cap the rate at `bytes_per_sec`.
    pub fn rate_limit(mut self, bytes_per_sec: u64) -> Self {
        self.rate_limit = Some(bytes_per_sec);
        self
    }

    /// Fetch in this class (see [`FetchOptions::priority`]).
    pub fn priority(mut self, class: Priority) -> Self {
        self.priority = class;
        self
    }

    /// Accept only a blob of exactly `bytes` bytes.
    pub fn expected_size(mut self, bytes: u64) -> Self {
        self.expected_size = Some(bytes);
        self
    }
}

/// A snapshot of a transfer's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Verified bytes held locally (including what was resumed).
    pub done: u64,
    /// Blob size; 0 until the first provider answered.
    pub total: u64,
    /// Bytes per second recently (sampled every 100 ms, smoothed); once
    /// finished, the average over the transfer.
    pub rate: f64,
    /// Bytes found already verified on disk when the transfer started.
    pub resumed: u64,
    /// Bytes received from the network by this transfer (including any rejected).
    pub received: u64,
    /// True once the transfer has ended (see [`Transfer::wait`] for how).
    pub finished: bool,
}

#[derive(Clone)]
pub(super) enum Outcome {
    Running,
    Done(BlobInfo),
    Failed(ErrorKind, String),
}

/// A fetch in progress: progress, cancel, and completion.
///
/// Cloning gives another handle to the same transfer.
#[derive(Clone)]
pub struct Transfer {
    pub(super) hash: BlobHash,
    pub(super) cancel: CancellationToken,
    pub(super) progress: watch::Receiver<Progress>,
    pub(super) outcome: watch::Receiver<Outcome>,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("hash", &self.hash)
            .field("progress", &self.progress())
            .finish()
    }
}

impl Transfer {
    /// The blob being fetched.
    pub fn hash(&self) -> BlobHash {
        self.hash
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// A receiver that sees every progress update (each verified chunk, and the rate every 100 ms).
    pub fn watch(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stops the transfer. What was verified stays on disk and a later fetch
    /// of the same blob resumes from it.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for the end: the stored blob, or why it failed
    /// ([`ErrorKind::Cancelled`], `Corrupt` when providers sent bad data, ...).
    pub async fn wait(&self) -> Result<BlobInfo> {
        let mut rx = self.outcome.clone();
        loop {
            match rx.borrow_and_update().clone() {
                Outcome::Running => {}
                Outcome::Done(i) => return Ok(i),
                Outcome::Failed(kind, msg) => return Err(Error::from_kind(kind, msg)),
            }
            if rx.changed().await.is_err() {
                return Err(Error::Internal("transfer task vanished".into()));
            }
        }
    }

    /// True once the transfer has ended.
    pub fn is_finished(&self) -> bool {
        !matches!(*self.outcome.borrow(), Outcome::Running)
    }
}

/// Counters shared by all transfers of a node.
#[derive(Default)]
pub(crate) struct Counters {
    pub bytes_served: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_rejected: AtomicU64,
}

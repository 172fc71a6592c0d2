//! Per-collection policies: how much a collection's data matters (its
//! priority class on the wire), how much history travels (its sync mode),
//! how long it lives (TTL and tombstone TTL), how much of it a node keeps
//! (retention) and how a delete concurrent with an edit resolves.
//!
//! Policies are plain data. A node holds one default policy and at most
//! [`MAX_POLICIES`] per-collection ones ([`Policies`]), set at open
//! ([`crate::NodeConfig::policies`]) and changeable at runtime
//! ([`crate::Node::set_policy`]); [`Policies::from_json`] reads the same
//! settings as JSON (the node binary's config file uses that form).
//!
//! Lifetimes are measured from a document's newest change time, which is the
//! same on every replica holding the same changes: every node applying the
//! same policy expires the same documents without exchanging anything, and
//! refuses an expired document a peer offers, so a peer that was offline when
//! it expired cannot bring it back. Policies must therefore be the same on
//! every node of a formation for a collection (like a schema); clocks are
//! assumed within [`CLOCK_SKEW`] of each other.

mod form;
mod table;

use std::time::Duration;

pub use form::PolicyForm;
pub use table::Policies;
pub(crate) use table::PolicyTable;

/// Most per-collection policies a node holds (besides its default).
pub const MAX_POLICIES: usize = 1024;

/// Clock difference between nodes that lifetimes tolerate: a document is
/// refused from a peer only once it is older than its TTL plus this.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How long a deleted document's tombstone is kept by default (7 days). A
/// peer offline for longer than its collection's tombstone TTL can bring a
/// deleted document back, as in every system that forgets tombstones: set it
/// above the longest disconnection you expect.
pub const DEFAULT_TOMBSTONE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Longest TTL, tombstone TTL or window accepted (100 years): keeps the
/// arithmetic on millisecond clocks far from overflow.
pub const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How much a collection's data matters. On every link, data of a higher
/// class goes first; `Bulk` is paced but never starved (see
/// [`crate::sync`]). Ordered from most to least important.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Never queued behind anything of a lower class.
    Critical,
    High,
    #[default]
    Normal,
    Low,
    /// Large, patient data (map tiles, logs): goes when nothing else waits,
    /// but always gets a share of the link.
    Bulk,
}

impl Priority {
    /// Every class, most important first.
    pub const ALL: [Priority; 5] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Bulk,
    ];

    /// 0 (critical) to 4 (bulk).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The lower-case name used in the JSON form and the SDKs.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
            Priority::Bulk => "bulk",
        }
    }

    /// Parses [`Priority::name`].
    pub fn from_name(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// How much of a document's history travels to peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Every change (Automerge's normal sync). The default.
    #[default]
    Full,
    /// Peers get the current state without the history that produced it.
    LatestOnly,
    /// History younger than the window travels; older history does not.
    Windowed(Duration),
}

/// How a delete and a concurrent edit of the same document resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteRule {
    /// The document stays deleted; an edit made after seeing the delete
    /// brings it back. The default.
    #[default]
    DeleteWins,
    /// An edit the delete did not see brings the document back, with the
    /// fields that edit wrote (the delete cleared the others). The first
    /// node that sees both writes the change that lifts the tombstone.
    UpdateWins,
}

/// What a node does with changes of a collection according to their
/// authors' signatures (see [`crate::authorship`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignaturePolicy {
    /// Changes written here are not signed; signatures from peers are
    /// neither checked nor kept (nor passed on). The default.
    #[default]
    Off,
    /// Changes written here are signed; signatures from peers are checked
    /// and valid ones kept (and passed on); unsigned and forged changes are
    /// applied all the same.
    Accept,
    /// Like `Accept`, and every unsigned or forged change applied is counted
    /// and logged ([`crate::SignatureStats::flagged`]).
    Flag,
    /// Like `Accept`, but unsigned and forged changes, and every change that
    /// depends on one, are never applied here.
    Reject,
}

impl SignaturePolicy {
    /// Every policy, in order.
    pub const ALL: [SignaturePolicy; 4] = [
        SignaturePolicy::Off,
        SignaturePolicy::Accept,
        SignaturePolicy::Flag,
        SignaturePolicy::Reject,
    ];

    /// The lower-case name used in the JSON form and the SDKs.
    pub fn name(self) -> &'static str {
        match self {
            SignaturePolicy::Off => "off",
            SignaturePolicy::Accept => "accept",
            SignaturePolicy::Flag => "flag",
            SignaturePolicy::Reject => "reject",
        }
    }

    /// Parses [`SignaturePolicy::name`].
    pub fn from_name(s: &str) -> Option<SignaturePolicy> {
        SignaturePolicy::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Most documents and bytes of a collection a node keeps; past either, the
/// oldest documents (by newest change) are removed from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub max_documents: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// The policy of one collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionPolicy {
    pub priority: Priority,
    pub sync: SyncMode,
    /// Documents unchanged for this long are removed everywhere. `None`: kept.
    pub ttl: Option<Duration>,
    /// Deleted documents' tombstones are removed after this long.
    pub tombstone_ttl: Duration,
    pub retention: Retention,
    /// Fetch the blobs its documents refer to as soon as they arrive.
    pub eager_blobs: bool,
    pub delete_rule: DeleteRule,
    /// The storage budget never evicts a document of this collection written
    /// here until a peer is known to hold its current version (see
    /// [`crate::lifecycle`]). Default false: the budget may evict it.
    pub keep_until_delivered: bool,
    /// Signing of local changes and checking of peers' (default off).
    pub signatures: SignaturePolicy,
}

impl Default for CollectionPolicy {
    fn default() -> Self {
        CollectionPolicy {
            priority: Priority::Normal,
            sync: SyncMode::Full,
            ttl: None,
            tombstone_ttl: DEFAULT_TOMBSTONE_TTL,
            retention: Retention::default(),
            eager_blobs: false,
            delete_rule: DeleteRule::DeleteWins,
            keep_until_delivered: false,
            signatures: SignaturePolicy::Off,
        }
    }
}

impl CollectionPolicy {
    /// Sets the priority class.
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }

    /// Sets the sync mode.
    pub fn sync(mut self, m: SyncMode) -> Self {
        self.sync = m;
        self
    }

    /// Documents unchanged for `ttl` are removed everywhere.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Tombstones are removed after `ttl`.
    pub fn tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.tombstone_ttl = ttl;
        self
    }

    /// Keep at most `n` documents on this node.
    pub fn max_documents(mut self, n: u64) -> Self {
        self.retention.max_documents = Some(n);
        self
    }

    /// Keep at most `n` bytes of documents on this node.
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.retention.max_bytes = Some(n);
        self
    }

    /// Never evict a document written here by the storage budget until a
    /// peer holds its current version.
    pub fn keep_until_delivered(mut self, on: bool) -> Self {
        self.keep_until_delivered = on;
        self
    }

    /// Fetch referenced blobs as documents arrive.
    pub fn eager_blobs(mut self, on: bool) -> Self {
        self.eager_blobs = on;
        self
    }

    /// Sets what is done with changes' signatures.
    pub fn signatures(mut self, s: SignaturePolicy) -> Self {
        self.signatures = s;
        self
    }

    /// Sets the delete rule.
    pub fn delete_rule(mut self, r: DeleteRule) -> Self {
        self.delete_rule = r;
        self
    }

    /// Checks the values: lifetimes within [`MAX_LIFETIME`] and above zero,
    /// a window above zero.
    pub fn check(&self) -> crate::Result<()> {
        let bad = |what: &str, d: Duration| {
            if d.is_zero() || d > MAX_LIFETIME {
                Err(crate::Error::InvalidArgument(format!(
                    "{what} of {d:?}: it must be above zero and at most 100 years"
                )))
            } else {
                Ok(())
            }
        };
        if let Some(t) = self.ttl {
            bad("a ttl", t)?;
        }
        bad("a tombstone ttl", self.tombstone_ttl)?;
        if let SyncMode::Windowed(w) = self.sync {
            bad("a sync window", w)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

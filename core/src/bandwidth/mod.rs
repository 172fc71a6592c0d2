//! Bandwidth budgets: how many bytes per second a node sends to each peer and
//! over each of its links, enforced by token buckets the senders wait on.
//!
//! A [`Bandwidth`] names a rate per peer (the same for every peer) and a rate
//! per link (by link name; [`SOCKET_LINK`] is the node's own UDP socket).
//! Every byte the node hands to QUIC for a peer — sync frames, blob pieces,
//! ephemeral datagrams — is first taken from that peer's bucket and from the
//! bucket of the link carrying the peer's traffic then (PACE may move a peer
//! from link to link; each byte is charged to the link it is sent on).
//!
//! **Classes.** Buckets serve waiting senders by class ([`bucket`]): a
//! critical update waits only for the tokens of its own bytes, never for
//! bulk data queued before it; a class kept out by higher ones still gets
//! about one write every [`STARVED`]. Sync frames carry their collection's
//! class (protocol frames are critical), blob pieces the fetch's class (bulk
//! unless the fetcher says otherwise, capped at normal). Ephemeral datagrams
//! carry their publisher's class ([`crate::PublishOptions::priority`], high
//! by default) and are never queued (they are stale a moment later): one the
//! buckets cannot take now, or that a waiting sender of a class as high
//! would be overtaken by, is dropped and counted
//! ([`BandwidthStats::dropped_datagrams`]).
//!
//! Keeping a node's sends below a radio's rate also keeps the radio's own
//! queue short, which is what lets critical updates cross it promptly while
//! bulk data fills the rest (`peat-bench priority --budget`).
//!
//! **Bounds.** One bucket per configured link; per-peer buckets for at most
//! [`MAX_PEER_BUCKETS`] peers (past it a full bucket is forgotten — a new one
//! starts full, so nothing changes — or else the fullest). Rates are at least
//! [`MIN_RATE`].

mod bucket;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use bucket::Bucket;
pub use bucket::{MIN_BURST, STARVED};

use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::policy::Priority;
use crate::NodeId;

/// The name of the node's own UDP socket in [`Bandwidth::links`].
pub const SOCKET_LINK: &str = "socket";

/// The lowest rate a budget may set (bytes per second).
pub const MIN_RATE: u64 = 1024;

/// Per-peer buckets kept at most.
pub const MAX_PEER_BUCKETS: usize = 4096;

/// What a node may send, in bytes per second. Default: no limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bandwidth {
    /// To each peer, at most (all its traffic together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_peer: Option<u64>,
    /// Over each named link, at most (all peers together). The names are
    /// those of `NodeConfig::links`, and [`SOCKET_LINK`] for the UDP socket.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, u64>,
}

impl Bandwidth {
    /// No limits.
    pub fn unlimited() -> Bandwidth {
        Bandwidth::default()
    }

    /// Sets the per-peer rate.
    pub fn per_peer(mut self, bytes_per_sec: u64) -> Bandwidth {
        self.per_peer = Some(bytes_per_sec);
        self
    }

    /// Sets the rate of a link.
    pub fn link(mut self, name: impl Into<String>, bytes_per_sec: u64) -> Bandwidth {
        self.links.insert(name.into(), bytes_per_sec);
        self
    }

    /// Whether it limits anything.
    pub fn is_unlimited(&self) -> bool {
        self.per_peer.is_none() && self.links.is_empty()
    }

    /// Parses the JSON form: `{"per_peer": 125000, "links": {"radio": 100000}}`
    /// (both optional; unknown fields refused).
    pub fn from_json(text: &str) -> Result<Bandwidth> {
        serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("bandwidth JSON: {e}")))
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Checks the rates (at least [`MIN_RATE`]) and that every link named is
    /// one of `links` (the node's link names) or [`SOCKET_LINK`].
    pub fn check(&self, links: &[String]) -> Result<()> {
        let low = |what: &str, r: u64| {
            Err(Error::InvalidArgument(format!(
                "bandwidth of {what}: {r} bytes/s is below the minimum of {MIN_RATE}"
            )))
        };
        if let Some(r) = self.per_peer.filter(|&r| r < MIN_RATE) {
            return low("each peer", r);
        }
        for (name, &r) in &self.links {
            if name != SOCKET_LINK && !links.contains(name) {
                return Err(Error::InvalidArgument(format!(
                    "bandwidth of link {name:?}: the node has no such link (its links: \
                     {SOCKET_LINK:?}{})",
                    links.iter().map(|l| format!(", {l:?}")).collect::<String>()
                )));
            }
            if r < MIN_RATE {
                return low(&format!("link {name:?}"), r);
            }
        }
        Ok(())
    }
}

/// What the budgets did since the node opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BandwidthStats {
    /// Bytes sent under a budget (taken from a bucket).
    pub bytes_limited: u64,
    /// Sends that had to wait for tokens.
    pub waits: u64,
    /// Their waiting, in total.
    pub waited: Duration,
    /// Ephemeral datagrams dropped because a budget had no room for them.
    pub dropped_datagrams: u64,
}

/// The buckets of one [`Bandwidth`].
struct Buckets {
    config: Bandwidth,
    peers: Mutex<HashMap<NodeId, Arc<Bucket>>>,
    links: HashMap<String, Arc<Bucket>>,
}

impl Buckets {
    fn new(config: Bandwidth) -> Buckets {
        let links = config
            .links
            .iter()
            .map(|(n, &r)| (n.clone(), Arc::new(Bucket::new(r))))
            .collect();
        Buckets {
            config,
            peers: Mutex::new(HashMap::new()),
            links,
        }
    }

    fn peer(&self, peer: &NodeId) -> Option<Arc<Bucket>> {
        let rate = self.config.per_peer?;
        let mut peers = self.peers.locked();
        if let Some(b) = peers.get(peer) {
            return Some(b.clone());
        }
        if peers.len() >= MAX_PEER_BUCKETS {
            let victim = peers
                .iter()
                .find(|(_, b)| b.is_full())
                .or_else(|| {
                    peers.iter().max_by(|a, b| {
                        a.1.tokens_now()
                            .partial_cmp(&b.1.tokens_now())
                            .unwrap_or(std::cmp::Ordering::Equal)
                    })
                })
                .map(|(id, _)| *id);
            if let Some(v) = victim {
                peers.remove(&v);
            }
        }
        let b = Arc::new(Bucket::new(rate));
        peers.insert(*peer, b.clone());
        Some(b)
    }
}

type PeerAndLink = (Option<Arc<Bucket>>, Option<Arc<Bucket>>);

/// The budgets a node enforces, changeable while it runs.
pub(crate) struct Throttle {
    current: RwLock<Arc<Buckets>>,
    /// The node's link names (for [`Bandwidth::check`]).
    link_names: Vec<String>,
    /// The node's bond, when it has links: which link carries a peer now.
    pub(crate) bond: OnceLock<crate::links::Bond>,
    bytes_limited: AtomicU64,
    waits: AtomicU64,
    waited_us: AtomicU64,
    dropped_datagrams: AtomicU64,
}

impl Throttle {
    /// Budgets `config` over a node whose links are `link_names`.
    pub(crate) fn new(config: Bandwidth, link_names: Vec<String>) -> Result<Throttle> {
        config.check(&link_names)?;
        Ok(Throttle {
            current: RwLock::new(Arc::new(Buckets::new(config))),
            link_names,
            bond: OnceLock::new(),
            bytes_limited: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            waited_us: AtomicU64::new(0),
            dropped_datagrams: AtomicU64::new(0),
        })
    }

    /// Replaces the budgets (new buckets, full; senders waiting on the old
    /// ones finish there).
    pub(crate) fn set(&self, config: Bandwidth) -> Result<()> {
        config.check(&self.link_names)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Buckets::new(config));
        Ok(())
    }

    /// The budgets now.
    pub(crate) fn get(&self) -> Bandwidth {
        self.buckets().config.clone()
    }

    fn buckets(&self) -> Arc<Buckets> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The buckets bytes to `peer` are taken from now: its own, and its link's.
    fn buckets_for(&self, peer: &NodeId) -> Option<PeerAndLink> {
        let b = self.buckets();
        if b.config.is_unlimited() {
            return None;
        }
        let link = if b.links.is_empty() {
            None
        } else {
            let name = self.bond.get().and_then(|bond| bond.in_use(peer));
            b.links.get(name.as_deref().unwrap_or(SOCKET_LINK)).cloned()
        };
        let peer = b.peer(peer);
        (peer.is_some() || link.is_some()).then_some((peer, link))
    }

    /// Takes `n` bytes for `peer` in `class`, waiting for the budgets.
    pub(crate) async fn take(&self, peer: &NodeId, class: Priority, n: u64) {
        let Some((per_peer, link)) = self.buckets_for(peer) else {
            return;
        };
        let mut waited = Duration::ZERO;
        for b in per_peer.iter().chain(link.iter()) {
            waited += b.take(class, n).await;
        }
        self.bytes_limited.fetch_add(n, Ordering::Relaxed);
        if !waited.is_zero() {
            self.waits.fetch_add(1, Ordering::Relaxed);
            self.waited_us
                .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// Takes the bytes of an ephemeral datagram of `class` to `peer` if the
    /// budgets have room now and no sender of a class as high waits; `false`
    /// (counted) if not.
    pub(crate) fn try_take_datagram(&self, peer: &NodeId, class: Priority, n: u64) -> bool {
        let Some((per_peer, link)) = self.buckets_for(peer) else {
            return true;
        };
        // Both or neither: checked first, then taken (a sender racing in
        // between can put a bucket in debt by one datagram at most).
        let buckets = || per_peer.iter().chain(link.iter());
        let ok = buckets().all(|b| b.can_take(class, n));
        if ok {
            buckets().for_each(|b| b.take_now(n));
            self.bytes_limited.fetch_add(n, Ordering::Relaxed);
        } else {
            self.dropped_datagrams.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Counters since the node opened.
    pub(crate) fn stats(&self) -> BandwidthStats {
        BandwidthStats {
            bytes_limited: self.bytes_limited.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            waited: Duration::from_micros(self.waited_us.load(Ordering::Relaxed)),
            dropped_datagrams: self.dropped_datagrams.load(Ordering::Relaxed),
        }
    }

    /// Whether any budget is set (senders then cut their writes small).
    pub(crate) fn is_limited(&self) -> bool {
        !self.buckets().config.is_unlimited()
    }

    /// Per-peer buckets held now.
    #[cfg(test)]
    fn peer_buckets(&self) -> usize {
        self.buckets().peers.locked().len()
    }
}

#[cfg(test)]
mod tests;

//! The SDK's records: the plain data its calls take and return, and how each is
//! made from the core's types. Every binding converts these (UniFFI uses them
//! as they are; the C ABI returns the `repr(C)` ones as they are). Names that
//! are really enums are enums here (each with its stable lower-case `name()`
//! for bindings that show names). Nothing here depends on another module of
//! the SDK but [`crate::error`].

use std::ffi::c_char;

use peat_mesh::blobs::{BlobInfo, BlobStatus, Progress};
use peat_mesh::{Event, PeerInfo};

use crate::error::{SdkError, SdkResult};

mod catalog;
mod ephemeral;
mod lifecycle;
mod links;
mod peers;
mod trust;

pub use catalog::{CollectionRecord, TransferStatusRecord};
pub use ephemeral::{
    BeaconEventRecord, BeaconInfoRecord, BeaconRecord, EphemeralOptions, EphemeralStatsRecord,
    MessageEventRecord, MessageRecord, NodeState, PublishOptionsRecord,
};
pub use lifecycle::{priority_arg, BandwidthStatsRecord, GarbageReportRecord, StorageStatsRecord};
pub use links::{CollectionRule, LinkHealthRecord, LinkOptions, LinkState, PaceOptions};
pub use peers::PeerEventRecord;
pub use trust::{
    CertificateRecord, ChangeAuthorRecord, GrantRecord, MembershipRecord, TrustStatsRecord,
};

/// What `sdk::node_open` needs. Documents travel as JSON text; everything else is typed.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct NodeOptions {
    /// Data directory (created if missing).
    pub data_dir: String,
    /// Public formation id.
    pub formation_id: String,
    /// The formation's 32-byte shared secret.
    pub formation_secret: Vec<u8>,
    /// Listen address, e.g. `127.0.0.1:0`; empty for `0.0.0.0:0`.
    pub listen: String,
    /// Static peers as `NODEID@HOST:PORT`.
    pub peers: Vec<String>,
    /// Announce and discover peers of the formation on the LAN by mDNS.
    pub mdns: bool,
    /// Links besides the UDP socket (each a UDP socket of its own on one
    /// interface's address), with their PACE levels. Empty: none.
    pub links: Vec<LinkOptions>,
    /// Carry connections over `links` only: bind no UDP socket (`listen` is
    /// ignored). Needs a link; refused with mDNS.
    pub links_only: bool,
    /// How links are probed and judged (PACE thresholds).
    pub pace: PaceOptions,
    /// Beacons and the multicast path.
    pub ephemeral: EphemeralOptions,
    /// Collection policies as JSON (`{"default": {…}, "collections": {"name":
    /// {…}}}`, see [`peat_mesh::Policies::from_json`]); empty: the defaults.
    pub policies_json: String,
    /// A node-wide byte budget for documents (0: none); past its high-water
    /// mark garbage collection evicts by class and age, never critical ones.
    pub storage_budget_bytes: u64,
    /// The budget's marks in percent (0: the defaults, 90 and 80).
    pub storage_high_water_pct: u32,
    pub storage_low_water_pct: u32,
    /// Bandwidth budgets as JSON (`{"per_peer": BYTES_PER_SEC, "links":
    /// {"NAME": BYTES_PER_SEC}}`, "socket" naming the UDP socket; see
    /// [`peat_mesh::Bandwidth::from_json`]); empty: no limits.
    pub bandwidth_json: String,
    /// Trust settings as JSON (`{"authority": "<64 hex>", "mode":
    /// "certificate" | "both" | "secret", "chain": ["<certificate hex>", …]}`,
    /// see [`peat_mesh::trust::TrustConfig::from_json`]); empty: admission by
    /// the formation secret only.
    pub trust_json: String,
}

/// Where a node stands with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PeerState {
    /// Admitted and syncing.
    Connected,
    /// Was connected; not now.
    Disconnected,
    /// Found by a discovery, not connected yet.
    Discovered,
    /// Seen announcing another formation; never dialled.
    OtherFormation,
}

impl PeerState {
    /// The stable lower-case name (`connected`, `disconnected`, `discovered`,
    /// `other_formation`), for bindings that show names.
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Connected => "connected",
            PeerState::Disconnected => "disconnected",
            PeerState::Discovered => "discovered",
            PeerState::OtherFormation => "other_formation",
        }
    }
}

impl From<peat_mesh::PeerState> for PeerState {
    fn from(s: peat_mesh::PeerState) -> Self {
        match s {
            peat_mesh::PeerState::Connected => PeerState::Connected,
            peat_mesh::PeerState::Disconnected => PeerState::Disconnected,
            peat_mesh::PeerState::Discovered => PeerState::Discovered,
            peat_mesh::PeerState::OtherFormation => PeerState::OtherFormation,
        }
    }
}

/// A discovery that wants a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, uniffi::Enum)]
pub enum PeerSource {
    /// A static peer (configured, or added at runtime).
    Static,
    /// Announced on the local network by mDNS.
    Mdns,
    /// Dialled with `connect`.
    Direct,
    /// A ready endpoint of the Kubernetes Service (`peat-mesh-node` with
    /// Kubernetes discovery; an SDK node never reports it itself).
    Kubernetes,
}

impl PeerSource {
    /// The stable lower-case name (`static`, `mdns`, `direct`, `kubernetes`).
    pub fn name(self) -> &'static str {
        match self {
            PeerSource::Static => "static",
            PeerSource::Mdns => "mdns",
            PeerSource::Direct => "direct",
            PeerSource::Kubernetes => "kubernetes",
        }
    }
}

impl From<peat_mesh::Source> for PeerSource {
    fn from(s: peat_mesh::Source) -> Self {
        match s {
            peat_mesh::Source::Static => PeerSource::Static,
            peat_mesh::Source::Mdns => PeerSource::Mdns,
            peat_mesh::Source::Direct => PeerSource::Direct,
            peat_mesh::Source::Kubernetes => PeerSource::Kubernetes,
        }
    }
}

/// Where the change a document event reports came from.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Origin {
    /// The subscription's initial snapshot.
    Snapshot,
    /// A write on this node.
    Local,
    /// A peer, by node id.
    Peer {
        /// The peer's node id (64 hex digits).
        id: String,
    },
}

impl Origin {
    /// The stable lower-case name of the kind (`snapshot`, `local`, `peer`).
    pub fn name(&self) -> &'static str {
        match self {
            Origin::Snapshot => "snapshot",
            Origin::Local => "local",
            Origin::Peer { .. } => "peer",
        }
    }
}

impl From<&peat_mesh::Origin> for Origin {
    fn from(o: &peat_mesh::Origin) -> Self {
        match o {
            peat_mesh::Origin::Snapshot => Origin::Snapshot,
            peat_mesh::Origin::Local => Origin::Local,
            peat_mesh::Origin::Peer(p) => Origin::Peer { id: p.to_string() },
        }
    }
}

/// How a blob fetch uses the network (chunk sizes, parallelism, timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Enum)]
pub enum TransferProfile {
    /// Fast, reliable links.
    Datacenter,
    /// The default: lossy, shared links.
    #[default]
    Tactical,
    /// Slow, intermittent links.
    Edge,
}

impl TransferProfile {
    /// The stable lower-case name (`datacenter`, `tactical`, `edge`).
    pub fn name(self) -> &'static str {
        match self {
            TransferProfile::Datacenter => "datacenter",
            TransferProfile::Tactical => "tactical",
            TransferProfile::Edge => "edge",
        }
    }

    /// The profile of a name; "" is the default ([`TransferProfile::Tactical`]).
    pub fn parse(name: &str) -> SdkResult<Self> {
        match name {
            "datacenter" => Ok(TransferProfile::Datacenter),
            "" | "tactical" => Ok(TransferProfile::Tactical),
            "edge" => Ok(TransferProfile::Edge),
            _ => Err(SdkError::invalid(format!(
                "unknown transfer profile {name:?} (datacenter, tactical, edge)"
            ))),
        }
    }
}

impl From<TransferProfile> for peat_mesh::blobs::TransferProfile {
    fn from(p: TransferProfile) -> Self {
        match p {
            TransferProfile::Datacenter => peat_mesh::blobs::TransferProfile::DATACENTER,
            TransferProfile::Tactical => peat_mesh::blobs::TransferProfile::TACTICAL,
            TransferProfile::Edge => peat_mesh::blobs::TransferProfile::EDGE,
        }
    }
}

/// A peer as the SDK reports it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PeerRecord {
    /// Node id (64 hex digits).
    pub id: String,
    /// True while connected.
    pub connected: bool,
    /// Socket address, if known.
    pub addr: Option<String>,
    /// Round-trip time in microseconds, while connected.
    pub rtt_us: Option<u64>,
    /// Milliseconds since the Unix epoch when a frame last arrived.
    pub last_seen_ms: Option<u64>,
    /// Where this node stands with the peer.
    pub state: PeerState,
    /// The discoveries that want this peer, in order (static, mdns, direct, kubernetes); may be empty.
    pub sources: Vec<PeerSource>,
    /// Each link's health towards the peer (empty without links).
    pub links: Vec<LinkHealthRecord>,
    /// Sync bytes sent to the peer since this node opened (all sessions).
    pub sync_bytes_sent: u64,
    /// Sync bytes received from the peer since this node opened.
    pub sync_bytes_received: u64,
    /// Live updates waiting in the peer's sync queues now (0 when not connected).
    pub sync_queued_updates: u64,
    /// Bytes of answers queued for the peer now (0 when not connected).
    pub sync_queued_reply_bytes: u64,
}

impl From<PeerInfo> for PeerRecord {
    fn from(p: PeerInfo) -> Self {
        PeerRecord {
            id: p.id.to_string(),
            connected: p.state == peat_mesh::PeerState::Connected,
            addr: p.addr.map(|a| a.to_string()),
            rtt_us: p.rtt.map(|d| d.as_micros() as u64),
            last_seen_ms: p.last_seen.and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as u64)
            }),
            state: p.state.into(),
            sources: {
                let mut v: Vec<PeerSource> = p.sources.iter().map(|s| (*s).into()).collect();
                v.sort_unstable();
                v.dedup();
                v
            },
            links: p.links.into_iter().map(Into::into).collect(),
            sync_bytes_sent: p.sync_bytes_sent,
            sync_bytes_received: p.sync_bytes_received,
            sync_queued_updates: p.sync_queued_updates,
            sync_queued_reply_bytes: p.sync_queued_reply_bytes,
        }
    }
}

/// Counters of a node. `repr(C)`: the C ABI returns it as is (`PeatNodeStats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct NodeStats {
    /// Stored documents, tombstones included.
    pub documents: u64,
    /// Peers connected now.
    pub connected_peers: u64,
    /// Live subscriptions on the node.
    pub subscriptions: u64,
    /// Sync frames sent since open.
    pub frames_sent: u64,
    /// Sync bytes sent since open.
    pub bytes_sent: u64,
    /// Sync frames received since open.
    pub frames_received: u64,
    /// Sync bytes received since open.
    pub bytes_received: u64,
    /// Documents (or changes to them) received from peers and refused since
    /// open: nested too deep, or a change too large. Nothing of them was stored.
    pub refused_documents: u64,
    /// Events waiting unread in the node's subscriptions now.
    pub queued_events: u64,
    /// Changes from peers applied since open, and the sum of their update
    /// latencies (author's commit to application here, in milliseconds; the
    /// two clocks' skew shifts it): the mean is `sum / count`.
    pub update_latency_count: u64,
    /// See `update_latency_count`.
    pub update_latency_sum_ms: u64,
}

/// A document event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DocEventRecord {
    /// A document's new state (`json` is `None` when it was deleted).
    Changed {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// Content as JSON text, or `None` if deleted.
        json: Option<String>,
        /// Where the change came from.
        origin: Origin,
    },
    /// This many events were dropped because the subscriber fell behind.
    Lagged(u64),
}

impl From<Event<peat_mesh::DocEvent>> for DocEventRecord {
    fn from(e: Event<peat_mesh::DocEvent>) -> Self {
        match e {
            Event::Item(d) => DocEventRecord::Changed {
                collection: d.key.collection().to_string(),
                id: d.key.id().to_string(),
                json: d.value.map(|v| v.to_string()),
                origin: (&d.origin).into(),
            },
            Event::Lagged(n) => DocEventRecord::Lagged(n),
        }
    }
}

/// A complete blob: BLAKE3 name, SHA-256 and size. Hashes are NUL-terminated
/// lower-case hex.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfoRecord {
    /// BLAKE3 hash, 64 hex digits and a NUL.
    pub hash: [c_char; 65],
    /// SHA-256, 64 hex digits and a NUL.
    pub sha256: [c_char; 65],
    /// Size in bytes.
    pub size: u64,
}

/// `s` as NUL-terminated text in a fixed buffer of `N` (the C ABI's
/// plain-value records), cut at a character boundary to fit.
pub(crate) fn fixed_text<const N: usize>(s: &str) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    let mut end = s.len().min(N - 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    for (o, b) in out.iter_mut().zip(s.as_bytes()[..end].iter()) {
        *o = *b as c_char;
    }
    out
}

fn field_str(f: &[c_char; 65]) -> String {
    f.iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8 as char)
        .collect()
}

impl From<&BlobInfo> for BlobInfoRecord {
    fn from(i: &BlobInfo) -> Self {
        BlobInfoRecord {
            hash: fixed_text(&i.hash.to_hex()),
            sha256: fixed_text(&i.sha256_hex()),
            size: i.size,
        }
    }
}

impl BlobInfoRecord {
    /// The BLAKE3 hash as a string.
    pub fn hash_hex(&self) -> String {
        field_str(&self.hash)
    }

    /// The SHA-256 as a string.
    pub fn sha256_hex(&self) -> String {
        field_str(&self.sha256)
    }
}

/// Progress of a transfer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default, uniffi::Record)]
pub struct TransferProgress {
    /// Verified bytes held locally.
    pub done: u64,
    /// Blob size (0 until known).
    pub total: u64,
    /// Bytes found on disk when the transfer started.
    pub resumed: u64,
    /// Bytes received from the network.
    pub received: u64,
    /// Recent rate, bytes per second.
    pub rate: f64,
    /// True once the transfer has ended.
    pub finished: bool,
}

impl From<Progress> for TransferProgress {
    fn from(p: Progress) -> Self {
        TransferProgress {
            done: p.done,
            total: p.total,
            resumed: p.resumed,
            received: p.received,
            rate: p.rate,
            finished: p.finished,
        }
    }
}

/// How much of a blob a node holds. `repr(i32)`: the C ABI returns it as is
/// (`PeatBlobState`, inside `PeatBlobStatus`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Enum)]
pub enum BlobState {
    /// None of it.
    #[default]
    Missing = 0,
    /// A download was started: some verified bytes are on disk.
    Partial = 1,
    /// All of it, verified.
    Complete = 2,
}

impl BlobState {
    /// The stable lower-case name (`missing`, `partial`, `complete`).
    pub fn name(self) -> &'static str {
        match self {
            BlobState::Missing => "missing",
            BlobState::Partial => "partial",
            BlobState::Complete => "complete",
        }
    }
}

/// How much of a blob is here.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct BlobStatusRecord {
    /// Missing, partial or complete.
    pub state: BlobState,
    /// Size, when known.
    pub size: u64,
    /// Verified bytes present.
    pub present: u64,
}

impl From<BlobStatus> for BlobStatusRecord {
    fn from(s: BlobStatus) -> Self {
        match s {
            BlobStatus::Missing => BlobStatusRecord::default(),
            BlobStatus::Partial { size, present } => BlobStatusRecord {
                state: BlobState::Partial,
                size,
                present,
            },
            BlobStatus::Complete(i) => BlobStatusRecord {
                state: BlobState::Complete,
                size: i.size,
                present: i.size,
            },
        }
    }
}

/// What a push subscription delivers.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum SubEvent {
    /// A document event.
    Doc(DocEventRecord),
    /// A peer event.
    Peer(PeerEventRecord),
    /// A blob transfer's progress.
    Progress(TransferProgress),
    /// The subscription ended on its own (its node closed); nothing follows.
    Closed,
    /// Events wait in a queued subscription (only for its ready sink; see
    /// `sdk::subscribe_docs_queued`): read them until none is left.
    Ready,
    /// A log record (only for the log sink).
    Log {
        /// 1 error … 5 trace.
        level: u8,
        /// Module path.
        target: String,
        /// Formatted message.
        message: String,
    },
}

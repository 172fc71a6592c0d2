//! The SDK's records: the plain data its calls take and return, and how each is
//! made from the core's types. Every binding converts these (UniFFI uses them
//! as they are; the C ABI returns the `repr(C)` ones as they are). Nothing here
//! depends on another module of the SDK.

use std::ffi::c_char;

use peat_mesh::blobs::{BlobInfo, BlobStatus, Progress};
use peat_mesh::{Event, PeerEvent, PeerInfo, PeerState};

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
}

/// A peer as the SDK reports it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
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
    /// `connected`, `disconnected`, `discovered` or `other_formation`.
    pub state: String,
    /// The discoveries that want this peer, comma-separated (`static,mdns`); may be empty.
    pub sources: String,
}

impl From<PeerInfo> for PeerRecord {
    fn from(p: PeerInfo) -> Self {
        PeerRecord {
            id: p.id.to_string(),
            connected: p.state == PeerState::Connected,
            addr: p.addr.map(|a| a.to_string()),
            rtt_us: p.rtt.map(|d| d.as_micros() as u64),
            last_seen_ms: p.last_seen.and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as u64)
            }),
            state: match p.state {
                PeerState::Connected => "connected",
                PeerState::Disconnected => "disconnected",
                PeerState::Discovered => "discovered",
                PeerState::OtherFormation => "other_formation",
            }
            .to_string(),
            sources: p
                .sources
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(","),
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
        /// "snapshot", "local" or the peer's node id.
        origin: String,
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
                origin: match &d.origin {
                    peat_mesh::Origin::Snapshot => "snapshot".into(),
                    peat_mesh::Origin::Local => "local".into(),
                    peat_mesh::Origin::Peer(p) => p.to_string(),
                },
            },
            Event::Lagged(n) => DocEventRecord::Lagged(n),
        }
    }
}

/// A peer event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PeerEventRecord {
    /// Admitted and syncing.
    Connected {
        /// Node id.
        peer: String,
    },
    /// Connection ended.
    Disconnected {
        /// Node id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// Admission failed.
    AdmissionRefused {
        /// Node id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A discovery found the peer; it will be dialled.
    Discovered {
        /// Node id.
        peer: String,
        /// `static`, `mdns` or `direct`.
        source: String,
    },
    /// A discovery no longer sees the peer.
    Lost {
        /// Node id.
        peer: String,
        /// `static`, `mdns` or `direct`.
        source: String,
    },
    /// mDNS saw a node of another formation; not dialled.
    SeenOtherFormation {
        /// Node id.
        peer: String,
    },
    /// Not about a peer: this node's store failed a commit (a full disk, an
    /// I/O error) and refuses every write (an `Io` error) until the node is
    /// closed and reopened. Published once.
    StorageFailed {
        /// The store's error.
        reason: String,
    },
    /// This many events were dropped.
    Lagged(u64),
}

impl From<Event<PeerEvent>> for PeerEventRecord {
    fn from(e: Event<PeerEvent>) -> Self {
        let e = match e {
            Event::Item(e) => e,
            Event::Lagged(n) => return PeerEventRecord::Lagged(n),
        };
        match e {
            PeerEvent::Connected { peer } => PeerEventRecord::Connected {
                peer: peer.to_string(),
            },
            PeerEvent::Disconnected { peer, reason } => PeerEventRecord::Disconnected {
                peer: peer.to_string(),
                reason,
            },
            PeerEvent::AdmissionRefused { peer, reason } => PeerEventRecord::AdmissionRefused {
                peer: peer.to_string(),
                reason,
            },
            PeerEvent::Discovered { peer, source } => PeerEventRecord::Discovered {
                peer: peer.to_string(),
                source: source.to_string(),
            },
            PeerEvent::Lost { peer, source } => PeerEventRecord::Lost {
                peer: peer.to_string(),
                source: source.to_string(),
            },
            PeerEvent::SeenOtherFormation { peer } => PeerEventRecord::SeenOtherFormation {
                peer: peer.to_string(),
            },
            PeerEvent::StorageFailed { reason } => PeerEventRecord::StorageFailed { reason },
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

fn hex_field(s: &str) -> [c_char; 65] {
    let mut out = [0 as c_char; 65];
    for (o, b) in out.iter_mut().zip(s.bytes().take(64)) {
        *o = b as c_char;
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
            hash: hex_field(&i.hash.to_hex()),
            sha256: hex_field(&i.sha256_hex()),
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

/// How much of a blob is here.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct BlobStatusRecord {
    /// 0 missing, 1 partial, 2 complete.
    pub state: i32,
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
                state: 1,
                size,
                present,
            },
            BlobStatus::Complete(i) => BlobStatusRecord {
                state: 2,
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

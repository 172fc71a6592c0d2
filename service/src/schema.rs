//! The JSON bodies of the HTTP API, as types: each is serialised by its
//! handler and described in the OpenAPI document ([`crate::openapi`]) from
//! the same definition, so the two cannot drift apart.

use serde::Serialize;
use utoipa::ToSchema;

/// Every error: `{"error": {"kind": ..., "message": ...}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable name: `invalid_argument`, `not_found`, `unauthorized`,
    /// `forbidden`, `too_large`, `closed`, `timeout`, `io`, `busy`, `internal`.
    pub kind: String,
    /// What went wrong, for people.
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub ready: bool,
    /// Why not, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NodeInfo {
    /// The node id (Ed25519 public key, hex).
    pub id: String,
    /// Addresses the node listens on.
    pub addrs: Vec<String>,
    /// The node as a peer address (`id@addr,...`), for other nodes to dial.
    pub peer: String,
    pub connected_peers: u64,
    /// Live documents stored.
    pub documents: u64,
}

#[derive(Serialize, ToSchema)]
pub struct PeerEntry {
    pub id: String,
    /// `connected`, `disconnected`, `discovered` or `other_formation`.
    pub state: String,
    pub addr: Option<String>,
    /// Round-trip time, when connected.
    pub rtt_ms: Option<f64>,
    /// True if this node dialled.
    pub outbound: bool,
    /// Discovery sources that want the peer (`static`, `mdns`, `direct`,
    /// `kubernetes`).
    pub sources: Vec<String>,
    /// Links the peer is reachable over.
    pub links: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Peers {
    pub peers: Vec<PeerEntry>,
}

/// A page of document ids.
#[derive(Serialize, ToSchema)]
pub struct IdPage {
    pub ids: Vec<String>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// A document found by [`crate::documents_api`]'s find.
#[derive(Serialize, ToSchema)]
pub struct FoundDoc {
    pub id: String,
    /// The document.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct Found {
    pub documents: Vec<FoundDoc>,
}

/// A document: a JSON object.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct Document(pub serde_json::Value);

/// A complete blob.
#[derive(Serialize, ToSchema)]
pub struct BlobEntry {
    /// BLAKE3 of the bytes, hex: the blob's name.
    pub hash: String,
    pub size: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

#[derive(Serialize, ToSchema)]
pub struct BlobList {
    pub blobs: Vec<BlobEntry>,
}

/// How much of a blob is here.
#[derive(Serialize, ToSchema)]
pub struct BlobState {
    pub hash: String,
    /// `missing`, `partial` or `complete`.
    pub state: String,
    /// The blob's size, once known.
    pub size: Option<u64>,
    /// Verified bytes here.
    pub present: u64,
}

/// A collection and its live documents.
#[derive(Serialize, ToSchema)]
pub struct CollectionEntry {
    pub name: String,
    pub documents: u64,
}

/// A page of collections.
#[derive(Serialize, ToSchema)]
pub struct Collections {
    pub collections: Vec<CollectionEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// A running blob fetch.
#[derive(Serialize, ToSchema)]
pub struct TransferEntry {
    pub hash: String,
    /// Verified bytes here.
    pub done: u64,
    /// The blob's size; 0 until a provider answered.
    pub total: u64,
    /// Bytes per second, recently.
    pub rate: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Transfers {
    pub transfers: Vec<TransferEntry>,
}

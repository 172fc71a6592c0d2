//! The frames: one enum for admission, the control stream and sync.

use serde::{Deserialize, Serialize};

/// A protocol a node speaks and the versions of it, in [`Frame::Protocols`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolOffer {
    /// Protocol name (`sync`, `blobs`, ...), at most [`MAX_PROTOCOL_NAME`] bytes.
    pub name: String,
    /// Versions spoken, at most [`MAX_PROTOCOL_VERSIONS`].
    pub versions: Vec<u16>,
}

/// Longest protocol name in an offer or a stream header.
pub const MAX_PROTOCOL_NAME: usize = 32;
/// Most protocols one node offers.
pub const MAX_PROTOCOLS: usize = 16;
/// Most versions offered per protocol.
pub const MAX_PROTOCOL_VERSIONS: usize = 8;

/// A 32-byte hash (document version id, change hash, nonce or MAC).
pub type Hash32 = [u8; 32];

/// A change's signature in [`Frame::Signatures`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSig {
    /// Index of the signing key in the frame's `authors`.
    pub author: u16,
    /// The Ed25519 signature (64 bytes; any other length is a protocol error).
    pub sig: Vec<u8>,
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Admission, initiator → responder: protocol version, formation tag and a fresh nonce.
    Hello {
        /// Protocol version.
        version: u32,
        /// Public formation tag.
        formation_tag: [u8; 8],
        /// Initiator nonce.
        nonce: Hash32,
    },
    /// Admission, responder → initiator: responder nonce and proof of the formation secret.
    Challenge {
        /// Responder nonce.
        nonce: Hash32,
        /// Responder's MAC over both ids and both nonces.
        proof: Hash32,
    },
    /// Admission, initiator → responder: initiator's proof.
    Proof {
        /// Initiator's MAC over both ids and both nonces.
        proof: Hash32,
    },
    /// Admission succeeded; sync frames may follow.
    Welcome,
    /// Admission or session refused, with a reason, just before the connection closes.
    Refused {
        /// Human-readable reason.
        reason: String,
    },
    /// A set-reconciliation message (either direction), see [`crate::sync::rbsr`].
    Reconcile {
        /// True on the initiator's first message of a round: the responder takes a
        /// fresh snapshot of its version set.
        start: bool,
        /// Encoded reconciliation message.
        msg: Vec<u8>,
    },
    /// Ask the peer for the documents whose version ids start with these
    /// prefixes (reconciliation tells the initiator only prefixes of the ids it
    /// lacks).
    Want {
        /// Version id prefixes learnt from reconciliation.
        prefixes: Vec<[u8; 8]>,
    },
    /// "These are my heads of this document". A peer that knows all of them
    /// answers with the changes we lack. A peer that does not answers with its own
    /// heads (`answer: true`); if the first side does not know all of those either,
    /// the two have diverged, and it sends its changes and offers its heads again.
    Heads {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// Automerge change hashes.
        heads: Vec<Hash32>,
        /// True when this answers a `Heads` offer the sender could not place.
        answer: bool,
    },
    /// Automerge changes for one document, one encoded change chunk per entry.
    Changes {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// Encoded change chunks.
        changes: Vec<Vec<u8>>,
        /// The sender's heads once these changes are applied. A receiver that
        /// still lacks one of them asks for the rest with [`Frame::Heads`].
        heads: Vec<Hash32>,
    },
    /// Complete changes of one document that did not fit in one frame: apply
    /// them, and wait for the [`Frame::Changes`] that ends the run (it carries
    /// the heads) before answering.
    MoreChanges {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// Encoded change chunks.
        changes: Vec<Vec<u8>>,
    },
    /// A piece of one change too large for a frame. Pieces of a change come in
    /// order with nothing of another document between them; the one with `last`
    /// completes the change, which then counts as part of a [`Frame::MoreChanges`].
    ChangePiece {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// The next bytes of the change.
        bytes: Vec<u8>,
        /// True on the change's final piece.
        last: bool,
    },
    /// Right after admission, on the admission (control) stream, each way: the
    /// protocols the sender speaks. Each protocol then runs at the highest
    /// version both sides offer.
    Protocols {
        /// At most [`MAX_PROTOCOLS`] offers.
        offers: Vec<ProtocolOffer>,
    },
    /// First frame of every stream but the control stream: the protocol the
    /// stream carries and the negotiated version.
    Open {
        /// Protocol name.
        protocol: String,
        /// Version both sides offered.
        version: u16,
    },
    /// On the control stream: asks for nothing; its transport acknowledgement
    /// shows the peer is alive.
    Ping,
    /// Admission, each way when the sender's mode uses certificates: the
    /// sender's membership certificate chain (its own first, at most
    /// [`crate::trust::MAX_CHAIN`], each [`crate::trust::Certificate::to_bytes`]).
    /// A node that does not check certificates reads and ignores it.
    Membership {
        /// Encoded certificates.
        chain: Vec<Vec<u8>>,
    },
    /// Admission, initiator → responder, in place of `Membership`: a device
    /// without a chain asks to enroll
    /// ([`crate::trust::EnrollmentRequest::to_bytes`], with its token).
    Enroll {
        /// The encoded, signed request.
        request: Vec<u8>,
    },
    /// Admission, responder → initiator, before its own `Membership`: the
    /// chain the enroller issued to the device (own certificate first).
    Enrolled {
        /// Encoded certificates.
        chain: Vec<Vec<u8>>,
    },
    /// Revocation protocol: ids of the certificates whose revocations the
    /// sender holds, in pages; `last` ends the list.
    RevocationIds {
        /// Revoked certificate ids.
        ids: Vec<Hash32>,
        /// True on the final page.
        last: bool,
    },
    /// Sync (version 3): the authors' signatures of the changes carried by
    /// the next frame the sender writes on this stream, which is a
    /// `Changes` or `MoreChanges` frame of the same document (one entry per
    /// change, in order) or the first of a change's `ChangePiece`s (one
    /// entry). `None`: that change is unsigned. See [`crate::authorship`].
    Signatures {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// The signing keys the entries refer to by index.
        authors: Vec<[u8; 32]>,
        /// One per change, in the order of the changes.
        entries: Vec<Option<ChangeSig>>,
    },
    /// Revocation protocol: one revocation with the revoker's chain
    /// ([`crate::trust::RevocationRecord::to_bytes`]).
    RevocationRecord {
        /// The encoded record.
        record: Vec<u8>,
    },
}

impl Frame {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "Hello",
            Frame::Challenge { .. } => "Challenge",
            Frame::Proof { .. } => "Proof",
            Frame::Welcome => "Welcome",
            Frame::Refused { .. } => "Refused",
            Frame::Reconcile { .. } => "Reconcile",
            Frame::Want { .. } => "Want",
            Frame::Heads { .. } => "Heads",
            Frame::Changes { .. } => "Changes",
            Frame::MoreChanges { .. } => "MoreChanges",
            Frame::ChangePiece { .. } => "ChangePiece",
            Frame::Protocols { .. } => "Protocols",
            Frame::Open { .. } => "Open",
            Frame::Ping => "Ping",
            Frame::Membership { .. } => "Membership",
            Frame::Enroll { .. } => "Enroll",
            Frame::Enrolled { .. } => "Enrolled",
            Frame::RevocationIds { .. } => "RevocationIds",
            Frame::RevocationRecord { .. } => "RevocationRecord",
            Frame::Signatures { .. } => "Signatures",
        }
    }
}

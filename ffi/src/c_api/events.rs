//! Events as C sees them: [`PeatEvent`], made from the SDK's event records.

use std::ffi::c_char;
use std::ptr;

use super::boundary::{c_string, free_c_string, opt_c_string};
use super::types::PeatPeerSource;
use crate::records::{DocEventRecord, Origin, PeerEventRecord, SubEvent};

/// Event kinds in [`PeatEvent::kind`].
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatEventKind {
    /// A document changed: `collection`, `id`, `json`, `origin` (and `peer`
    /// for a peer's change) are set.
    DocChanged = 1,
    /// A document was deleted: `collection`, `id`, `origin` (and `peer` for a
    /// peer's change) are set.
    DocDeleted = 2,
    /// `lagged` events were dropped because the reader fell behind.
    Lagged = 3,
    /// A peer connected: `peer` is set.
    PeerConnected = 4,
    /// A peer disconnected: `peer` and `reason` are set.
    PeerDisconnected = 5,
    /// Admission failed: `peer` and `reason` are set.
    PeerAdmissionRefused = 6,
    /// The subscription ended on its own (its node closed); nothing follows.
    /// Only delivered to callbacks.
    Closed = 7,
    /// A discovery found a peer: `peer` and `source` (the discovery) are set.
    PeerDiscovered = 8,
    /// A discovery no longer sees a peer: `peer` and `source` (the discovery) are set.
    PeerLost = 9,
    /// mDNS saw a node of another formation (not dialled): `peer` is set.
    PeerOtherFormation = 10,
    /// Not about a peer (`peer` is NULL): this node's store failed a commit (a
    /// full disk, an I/O error) and refuses every write with `PEAT_STATUS_IO`
    /// until the node is closed and reopened; `reason` is the store's error.
    /// Delivered once, to peer-event subscriptions.
    StorageFailed = 11,
    /// The link carrying a peer's traffic changed (PACE failover or
    /// fail-back, a silenced link, the first link chosen); the connection
    /// goes on: `peer`, `link_from` (NULL at first use), `link_to` (NULL when
    /// no link can carry the traffic) and `level` (of `link_to`; -1 with it)
    /// are set.
    PeerLinkChanged = 12,
    /// Not about a peer (`peer` is NULL): a garbage-collection pass evicted
    /// `evicted` documents to keep the node within its storage budget;
    /// `stored_bytes` is what the documents take after it. Once per pass that
    /// evicted any, to peer-event subscriptions.
    StorageEvicted = 13,
    /// A certificate of a peer was revoked (this node just learnt it): its
    /// connection, if any, is closed and admission refuses it from now on;
    /// `peer` is set.
    PeerRevoked = 14,
}

/// Where the change of a document event came from ([`PeatEvent::origin`]).
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatOrigin {
    /// Not a document event.
    None = 0,
    /// The subscription's initial snapshot.
    Snapshot = 1,
    /// A write on this node.
    Local = 2,
    /// A peer: the event's `peer` is its node id.
    Peer = 3,
}

/// One event. String fields not used by the kind are NULL, enum fields NONE.
/// Free the strings with [`peat_event_free`].
#[repr(C)]
pub struct PeatEvent {
    /// What happened.
    pub kind: PeatEventKind,
    /// Collection (document events).
    pub collection: *mut c_char,
    /// Document id (document events).
    pub id: *mut c_char,
    /// New content as JSON (DocChanged).
    pub json: *mut c_char,
    /// Where the change came from (document events).
    pub origin: PeatOrigin,
    /// Peer node id: peer events (NULL for StorageFailed), and the sending
    /// peer of a document event whose `origin` is `PEAT_ORIGIN_PEER`.
    pub peer: *mut c_char,
    /// Reason (disconnects, refusals, StorageFailed).
    pub reason: *mut c_char,
    /// The discovery (PeerDiscovered, PeerLost).
    pub source: PeatPeerSource,
    /// Dropped event count (Lagged).
    pub lagged: u64,
    /// The link used before (PeerLinkChanged; NULL at first use).
    pub link_from: *mut c_char,
    /// The link used now (PeerLinkChanged; NULL when none can carry traffic).
    pub link_to: *mut c_char,
    /// The PACE level of `link_to` (0 primary); -1 when not PeerLinkChanged
    /// or `link_to` is NULL.
    pub level: i32,
    /// Documents evicted (StorageEvicted; 0 otherwise).
    pub evicted: u64,
    /// Bytes the documents take after the eviction (StorageEvicted; 0 otherwise).
    pub stored_bytes: u64,
}

/// An event of `kind` with every string NULL.
pub(crate) fn empty_event(kind: PeatEventKind) -> PeatEvent {
    PeatEvent {
        kind,
        collection: ptr::null_mut(),
        id: ptr::null_mut(),
        json: ptr::null_mut(),
        origin: PeatOrigin::None,
        peer: ptr::null_mut(),
        reason: ptr::null_mut(),
        source: PeatPeerSource::None,
        lagged: 0,
        link_from: ptr::null_mut(),
        link_to: ptr::null_mut(),
        level: -1,
        evicted: 0,
        stored_bytes: 0,
    }
}

/// A pushed event as C sees it (the end of a subscription as `Closed`).
pub(crate) fn to_c_event(event: &SubEvent) -> PeatEvent {
    match event {
        SubEvent::Doc(d) => doc_event(d.clone()),
        SubEvent::Peer(p) => peer_event(p.clone()),
        // A PeatCallback only ever gets the end among the others.
        SubEvent::Closed | SubEvent::Ready | SubEvent::Log { .. } | SubEvent::Progress(_) => {
            empty_event(PeatEventKind::Closed)
        }
    }
}

/// A document event as C sees it.
pub(crate) fn doc_event(e: DocEventRecord) -> PeatEvent {
    match e {
        DocEventRecord::Changed {
            collection,
            id,
            json,
            origin,
        } => {
            let mut ev = empty_event(if json.is_some() {
                PeatEventKind::DocChanged
            } else {
                PeatEventKind::DocDeleted
            });
            ev.collection = c_string(collection);
            ev.id = c_string(id);
            ev.json = opt_c_string(json);
            (ev.origin, ev.peer) = match origin {
                Origin::Snapshot => (PeatOrigin::Snapshot, ptr::null_mut()),
                Origin::Local => (PeatOrigin::Local, ptr::null_mut()),
                Origin::Peer { id } => (PeatOrigin::Peer, c_string(id)),
            };
            ev
        }
        DocEventRecord::Lagged(n) => {
            let mut ev = empty_event(PeatEventKind::Lagged);
            ev.lagged = n;
            ev
        }
    }
}

/// A peer event as C sees it.
pub(crate) fn peer_event(e: PeerEventRecord) -> PeatEvent {
    let mut source = PeatPeerSource::None;
    let (kind, peer, reason) = match e {
        PeerEventRecord::Connected { peer } => (PeatEventKind::PeerConnected, Some(peer), None),
        PeerEventRecord::Revoked { peer } => (PeatEventKind::PeerRevoked, Some(peer), None),
        PeerEventRecord::Disconnected { peer, reason } => {
            (PeatEventKind::PeerDisconnected, Some(peer), Some(reason))
        }
        PeerEventRecord::AdmissionRefused { peer, reason } => (
            PeatEventKind::PeerAdmissionRefused,
            Some(peer),
            Some(reason),
        ),
        PeerEventRecord::Discovered { peer, source: s } => {
            source = s.into();
            (PeatEventKind::PeerDiscovered, Some(peer), None)
        }
        PeerEventRecord::Lost { peer, source: s } => {
            source = s.into();
            (PeatEventKind::PeerLost, Some(peer), None)
        }
        PeerEventRecord::SeenOtherFormation { peer } => {
            (PeatEventKind::PeerOtherFormation, Some(peer), None)
        }
        PeerEventRecord::StorageFailed { reason } => {
            (PeatEventKind::StorageFailed, None, Some(reason))
        }
        PeerEventRecord::StorageEvicted {
            documents,
            stored_bytes,
        } => {
            let mut ev = empty_event(PeatEventKind::StorageEvicted);
            ev.evicted = documents;
            ev.stored_bytes = stored_bytes;
            return ev;
        }
        PeerEventRecord::LinkChanged {
            peer,
            from,
            to,
            level,
        } => {
            let mut ev = empty_event(PeatEventKind::PeerLinkChanged);
            ev.peer = c_string(peer);
            ev.link_from = opt_c_string(from);
            ev.link_to = opt_c_string(to);
            ev.level = level.map(|l| l as i32).unwrap_or(-1);
            return ev;
        }
        PeerEventRecord::Lagged(n) => {
            let mut ev = empty_event(PeatEventKind::Lagged);
            ev.lagged = n;
            return ev;
        }
    };
    let mut ev = empty_event(kind);
    ev.peer = opt_c_string(peer);
    ev.reason = opt_c_string(reason);
    ev.source = source;
    ev
}

/// Frees the strings of an event made here and sets them to NULL. Only the
/// string fields are touched (through raw pointers), so a zeroed event is
/// fine.
///
/// # Safety
/// `ev` must point to a writable event whose strings are NULL or made by this
/// module's functions, not yet freed.
pub(crate) unsafe fn free_event_strings(ev: *mut PeatEvent) {
    // SAFETY: per this function's contract `ev` is valid for writes; the field
    // pointers are taken without reading (or referencing) the enum fields.
    let fields = unsafe {
        [
            ptr::addr_of_mut!((*ev).collection),
            ptr::addr_of_mut!((*ev).id),
            ptr::addr_of_mut!((*ev).json),
            ptr::addr_of_mut!((*ev).peer),
            ptr::addr_of_mut!((*ev).reason),
            ptr::addr_of_mut!((*ev).link_from),
            ptr::addr_of_mut!((*ev).link_to),
        ]
    };
    for p in fields {
        // SAFETY: `p` points into the event; its string came from `c_string`
        // (or is NULL) and is freed once, then set to NULL.
        unsafe {
            free_c_string(p.read());
            p.write(ptr::null_mut());
        }
    }
}

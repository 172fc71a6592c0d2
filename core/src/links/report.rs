//! What the bond reports: each link's health towards a peer, the switches
//! PACE makes, and the bond's counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::pace::LinkState;

/// The health of one link to a peer, as the peer list shows it. Every figure
/// is measured from this link's own probes and echoes.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkHealth {
    /// The link's name.
    pub name: String,
    /// Its PACE level (0 is primary); `None` if the policy does not use it.
    pub level: Option<usize>,
    /// Healthy, degraded, suspect or dead (silenced links are dead).
    pub state: LinkState,
    /// Smoothed RTT of its probes, once measured (RFC 6298 gains).
    pub rtt: Option<Duration>,
    /// The RTT's smoothed mean deviation, once measured.
    pub rtt_var: Option<Duration>,
    /// Share of recent probes not answered (0.0–1.0).
    pub loss: f64,
    /// Time since the link last answered a probe; `None` if it never has.
    pub last_answer: Option<Duration>,
    /// Whether this link carries the peer's traffic now.
    pub in_use: bool,
    /// Whether the link is silenced on this node ([`super::Bond::set_silent`]).
    pub silent: bool,
}

/// A change of the link carrying a peer's traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSwitch {
    /// The peer's bond id (the first 8 bytes of its node id; see
    /// [`super::Bond::links_to`] for a node id's links).
    pub peer: u64,
    /// The link used before (`None` at first use).
    pub from: Option<String>,
    /// The link used now; `None` when no link can carry the peer's traffic
    /// (every link to it silenced).
    pub to: Option<String>,
    /// The new link's PACE level (0 is primary); `None` with `to`.
    pub level: Option<usize>,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) packets_out: AtomicU64,
    pub(super) packets_in: AtomicU64,
    pub(super) dropped_no_link: AtomicU64,
    pub(super) dropped_unknown: AtomicU64,
    pub(super) dropped_malformed: AtomicU64,
    pub(super) dropped_full: AtomicU64,
    pub(super) switches: AtomicU64,
    pub(super) switch_events_dropped: AtomicU64,
    pub(super) dropped_claims: AtomicU64,
}

impl Counters {
    pub(super) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> BondStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BondStats {
            packets_out: get(&self.packets_out),
            packets_in: get(&self.packets_in),
            dropped_no_link: get(&self.dropped_no_link),
            dropped_unknown: get(&self.dropped_unknown),
            dropped_malformed: get(&self.dropped_malformed),
            dropped_full: get(&self.dropped_full),
            switches: get(&self.switches),
            switch_events_dropped: get(&self.switch_events_dropped),
            dropped_claims: get(&self.dropped_claims),
        }
    }
}

/// What a bond moved and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BondStats {
    /// QUIC packets sent over some link.
    pub packets_out: u64,
    /// QUIC packets received and handed to iroh.
    pub packets_in: u64,
    /// Packets not sent: no link to the peer was usable.
    pub dropped_no_link: u64,
    /// Packets from a sender the bond does not know.
    pub dropped_unknown: u64,
    /// Malformed frames.
    pub dropped_malformed: u64,
    /// Packets dropped because iroh's queue was full.
    pub dropped_full: u64,
    /// Times a peer's traffic moved to another link.
    pub switches: u64,
    /// Switches not reported as peer events because the node had not taken
    /// the previous [`super::bond::SWITCH_EVENT_QUEUE`] yet (the switch itself
    /// happened and is counted above; the peer list shows the link in use).
    pub switch_events_dropped: u64,
    /// Frames claiming to come from a live peer at another address (a peer
    /// id taken over by someone else on a link), dropped.
    pub dropped_claims: u64,
}

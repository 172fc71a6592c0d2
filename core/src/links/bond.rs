//! The bond: one iroh custom transport over all of a node's extra links, with
//! PACE choosing, per peer, which link carries the packets.
//!
//! Why one transport and not one per link: iroh 1.4 opens a custom-transport
//! path only when its path selector picks it, and the selector only chooses
//! among paths already open, so a second link would not be warm when the
//! first dies (and a QUIC path must be validated before use). Below iroh, the
//! bond is one path whose packets move to another link the moment PACE says
//! so: the QUIC connection, its admission and its sync session never see the
//! change (QUIC only sees the RTT and loss change and adapts its congestion
//! window).
//!
//! Each link to each peer is probed ([`super::frame::Frame::Probe`]) every
//! [`PacePolicy::probe_interval`]; the echoes give its RTT, loss and liveness
//! ([`super::pace::Health`]). Bounds: [`MAX_BOND_PEERS`] peers (the least
//! recently heard one is forgotten past it), [`BOND_RECV_QUEUE`] packets
//! waiting for iroh (more are dropped and counted, as a full socket buffer
//! would), one probe window per link and peer.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iroh_base::CustomAddr;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::addr::BondAddr;
use super::frame::Frame;
use super::pace::{choose, Candidate, Health, PacePolicy};
use super::report::{BondStats, Counters, LinkHealth, LinkSwitch};
use crate::locks::LockExt;

/// Peers one bond keeps link state for.
pub const MAX_BOND_PEERS: usize = 256;
/// Packets waiting to be read by iroh.
pub const BOND_RECV_QUEUE: usize = 1024;

/// Frames arriving on a member link, each with the address it came from
/// (the type an external link hands over as it is: [`super::LinkFrames`]).
pub(crate) type Incoming = mpsc::Receiver<(super::LinkAddr, Bytes)>;

/// Packets for iroh, each with the bond address of its sender.
pub(super) type ToIroh = mpsc::Receiver<(CustomAddr, Bytes)>;

/// A member link as the bond uses it.
pub(crate) trait Member: Send + Sync + std::fmt::Debug + 'static {
    /// This node's address on the link.
    fn addr(&self) -> CustomAddr;
    /// Whether `addr` is reachable over this link.
    fn carries(&self, addr: &CustomAddr) -> bool;
    /// Sends one frame; a link that cannot take it drops it (QUIC resends).
    fn send(&self, to: &CustomAddr, frame: Bytes) -> io::Result<()>;
}

/// A member link: its name (as PACE levels name it), its level and its port.
#[derive(Debug)]
struct Slot {
    name: String,
    level: Option<usize>,
    port: Arc<dyn Member>,
    /// Silenced: sends nothing, answers no probe, carries no traffic.
    silent: AtomicBool,
}

impl Slot {
    fn silent(&self) -> bool {
        self.silent.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct PathTo {
    remote: CustomAddr,
    health: Health,
}

#[derive(Debug)]
struct Peer {
    addr: CustomAddr,
    /// Per local member: the peer's address on that link and its health.
    paths: Vec<Option<PathTo>>,
    current: Option<usize>,
    /// The peer has answered a probe, so it knows this bond's address.
    knows_us: bool,
    last_heard: Instant,
    seq: u32,
}

#[derive(Debug)]
pub(crate) struct BondInner {
    id: u64,
    pub(super) addr: CustomAddr,
    slots: Vec<Slot>,
    policy: PacePolicy,
    peers: Mutex<HashMap<u64, Peer>>,
    to_iroh: mpsc::Sender<(CustomAddr, Bytes)>,
    switches: Mutex<Vec<LinkSwitch>>,
    /// Switches for the node to report as peer events (and, for a peer moved
    /// off a link, to nudge its connection). Full, an event is dropped and
    /// counted — the switch itself happened and is in the log.
    events: mpsc::Sender<LinkSwitch>,
    pub(super) counters: Counters,
    cancel: CancellationToken,
}

/// Switches waiting for the node to report them.
pub const SWITCH_EVENT_QUEUE: usize = 1024;

/// Most link switches remembered for [`Bond::take_switches`]; older ones are
/// dropped first (the counter keeps the total).
const MAX_SWITCH_LOG: usize = 1024;

/// A node's bond. Dropping the last handle stops its tasks.
#[derive(Clone, Debug)]
pub struct Bond {
    pub(super) inner: Arc<BondInner>,
    pub(super) rx: Arc<Mutex<Option<ToIroh>>>,
    events: Arc<Mutex<Option<mpsc::Receiver<LinkSwitch>>>>,
}

impl Bond {
    /// Opens the bond over `links` (name, port, incoming frames). Must run
    /// inside a tokio runtime (it spawns one task per link and the prober).
    pub(crate) fn open(
        id: u64,
        links: Vec<(String, Arc<dyn Member>, Incoming)>,
        policy: PacePolicy,
        cancel: CancellationToken,
    ) -> io::Result<Bond> {
        let mut slots = Vec::new();
        let mut incoming = Vec::new();
        for (i, (name, port, rx)) in links.into_iter().enumerate() {
            let level = policy.level_of(&name, i);
            slots.push(Slot {
                name,
                level,
                port,
                silent: AtomicBool::new(false),
            });
            incoming.push(rx);
        }
        let addr = BondAddr {
            id,
            members: slots.iter().map(|s| s.port.addr()).collect(),
        }
        .to_custom()
        .ok_or_else(|| io::Error::other("too many links, or a link address too long"))?;
        let (to_iroh, rx) = mpsc::channel(BOND_RECV_QUEUE);
        let (events, events_rx) = mpsc::channel(SWITCH_EVENT_QUEUE);
        let inner = Arc::new(BondInner {
            id,
            addr,
            slots,
            policy,
            peers: Mutex::new(HashMap::new()),
            to_iroh,
            switches: Mutex::new(Vec::new()),
            events,
            counters: Counters::default(),
            cancel,
        });
        for (i, mut rx) in incoming.into_iter().enumerate() {
            let weak = Arc::downgrade(&inner);
            let cancel = inner.cancel.clone();
            tokio::spawn(async move {
                loop {
                    let got = tokio::select! {
                        _ = cancel.cancelled() => break,
                        got = rx.recv() => got,
                    };
                    let Some((from, frame)) = got else { break };
                    let Some(bond) = weak.upgrade() else { break };
                    bond.on_frame(i, from.0, frame);
                }
            });
        }
        let weak = Arc::downgrade(&inner);
        let cancel = inner.cancel.clone();
        let every = inner.policy.probe_interval.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let Some(bond) = weak.upgrade() else { break };
                bond.probe_all();
            }
        });
        Ok(Bond {
            inner,
            rx: Arc::new(Mutex::new(Some(rx))),
            events: Arc::new(Mutex::new(Some(events_rx))),
        })
    }

    /// The address peers dial this node's links at.
    pub fn addr(&self) -> CustomAddr {
        self.inner.addr.clone()
    }

    /// Counters.
    pub fn stats(&self) -> BondStats {
        self.inner.counters.snapshot()
    }

    /// Each link's health towards `peer` (empty if the bond has not met it).
    pub fn links_to(&self, peer: &crate::NodeId) -> Vec<LinkHealth> {
        let peer = super::bond_id(peer);
        let now = Instant::now();
        let policy = &self.inner.policy;
        let mut peers = self.inner.peers.locked();
        let Some(p) = peers.get_mut(&peer) else {
            return Vec::new();
        };
        let current = p.current;
        p.paths
            .iter_mut()
            .enumerate()
            .filter_map(|(i, path)| {
                let path = path.as_mut()?;
                let slot = &self.inner.slots[i];
                Some(LinkHealth {
                    name: slot.name.clone(),
                    level: slot.level,
                    state: path.health.state(now, policy),
                    rtt: path.health.srtt(),
                    rtt_var: path.health.rttvar(),
                    loss: path.health.loss(now, policy),
                    last_answer: path.health.since_answer(now),
                    in_use: current == Some(i),
                    silent: slot.silent(),
                })
            })
            .collect()
    }

    /// Why bulk transfers (blobs) may not use the link carrying `peer`'s
    /// traffic now ([`PacePolicy::bulk_max_level`]); `None` if they may (or
    /// the bond carries nothing to `peer`).
    pub fn bulk_refused(&self, peer: &crate::NodeId) -> Option<String> {
        let max = self.inner.policy.bulk_max_level?;
        let slot = self.current_slot(peer)?;
        let level = slot.level?;
        (level > max).then(|| {
            format!(
                "link policy: blobs only over links of level {max} or better, and the peer \
                 is reachable over {:?} (level {level}) now",
                slot.name
            )
        })
    }

    /// The PACE level of the link carrying `peer`'s traffic now, if any.
    pub fn level_in_use(&self, peer: &crate::NodeId) -> Option<usize> {
        self.current_slot(peer)?.level
    }

    /// The link carrying `peer`'s traffic now, if any.
    fn current_slot(&self, peer: &crate::NodeId) -> Option<&Slot> {
        let current = self
            .inner
            .peers
            .locked()
            .get(&super::bond_id(peer))?
            .current?;
        self.inner.slots.get(current)
    }

    /// Whether documents of `collection` are held back from `peer` now: a
    /// rule of [`PacePolicy::collection_max_level`] names the collection and
    /// the link carrying the peer is at a worse level.
    pub(crate) fn holds_back(&self, peer: &crate::NodeId, collection: &str) -> bool {
        let rules = &self.inner.policy.collection_max_level;
        let Some(&(_, max)) = rules.iter().find(|(c, _)| c == collection) else {
            return false;
        };
        self.level_in_use(peer).is_some_and(|level| level > max)
    }

    /// The name of the link carrying `peer`'s traffic now, if any.
    pub fn in_use(&self, peer: &crate::NodeId) -> Option<String> {
        self.current_slot(peer).map(|s| s.name.clone())
    }

    /// Switches as they happen; taken once (by the node, which reports them
    /// as peer events).
    pub(crate) fn take_switch_events(&self) -> Option<mpsc::Receiver<LinkSwitch>> {
        self.events.locked().take()
    }

    /// Silences the link `name` (emission control: it sends nothing, not even
    /// probe answers, and carries no traffic; peers on it move to another
    /// link at once), or lets it speak again (it carries traffic again once
    /// its probes prove it, after the hold-down if it is a better level).
    /// Returns false if the bond has no link of that name.
    pub fn set_silent(&self, name: &str, silent: bool) -> bool {
        let Some(slot) = self.inner.slots.iter().find(|s| s.name == name) else {
            return false;
        };
        if slot.silent.swap(silent, Ordering::AcqRel) != silent {
            tracing::info!(link = %name, silent, "link silence changed");
            let now = Instant::now();
            let mut peers = self.inner.peers.locked();
            for (&id, p) in peers.iter_mut() {
                self.inner.evaluate(id, p, now);
            }
        }
        true
    }

    /// Names of this bond's links, in configuration order.
    pub fn link_names(&self) -> Vec<String> {
        self.inner.slots.iter().map(|s| s.name.clone()).collect()
    }

    /// The link switches since the last call (at most the last 1,024).
    pub fn take_switches(&self) -> Vec<LinkSwitch> {
        std::mem::take(&mut *self.inner.switches.locked())
    }
}

impl BondInner {
    /// The peer entry for `addr`, created (forgetting the least recently
    /// heard peer at the bound) if new. `None` if `addr` is not a bond address.
    fn peer_for<'a>(
        &self,
        peers: &'a mut HashMap<u64, Peer>,
        addr: &CustomAddr,
    ) -> Option<&'a mut Peer> {
        // Every packet sent comes here: a known peer is found by the id at the
        // head of its address, without decoding the member list again.
        let id = BondAddr::id_of(addr)?;
        if peers.get(&id).is_some_and(|p| &p.addr == addr) {
            return peers.get_mut(&id);
        }
        let b = BondAddr::from_custom(addr).ok()?;
        let now = Instant::now();
        let stale = peers.get(&b.id).is_some_and(|p| &p.addr != addr);
        if !peers.contains_key(&b.id) || stale {
            if !peers.contains_key(&b.id) && peers.len() >= MAX_BOND_PEERS {
                if let Some(oldest) = peers
                    .iter()
                    .min_by_key(|(_, p)| p.last_heard)
                    .map(|(k, _)| *k)
                {
                    peers.remove(&oldest);
                }
            }
            let paths = self
                .slots
                .iter()
                .map(|s| {
                    b.members
                        .iter()
                        .find(|m| s.port.carries(m))
                        .map(|m| PathTo {
                            remote: m.clone(),
                            health: Health::new(now),
                        })
                })
                .collect();
            peers.insert(
                b.id,
                Peer {
                    addr: addr.clone(),
                    paths,
                    current: None,
                    knows_us: false,
                    last_heard: now,
                    seq: 0,
                },
            );
        }
        peers.get_mut(&b.id)
    }

    /// Re-judges a peer's links and switches if PACE says so.
    fn evaluate(&self, id: u64, p: &mut Peer, now: Instant) {
        let mut index = Vec::new();
        let mut cands = Vec::new();
        for (i, path) in p.paths.iter_mut().enumerate() {
            let (Some(path), Some(level)) = (path.as_mut(), self.slots[i].level) else {
                continue;
            };
            if self.slots[i].silent() {
                continue;
            }
            let state = path.health.state(now, &self.policy);
            index.push(i);
            cands.push(Candidate {
                level,
                state,
                healthy_for: path.health.healthy_for(now),
            });
        }
        let cur = p.current.and_then(|c| index.iter().position(|&i| i == c));
        let next = match choose(cur, &cands, &self.policy) {
            Some(k) => Some(index[k]),
            // Nothing to choose: stay, unless the link in use was silenced.
            None if p.current.is_some_and(|c| self.slots[c].silent()) => None,
            None => return,
        };
        if p.current != next {
            let from = p.current.map(|c| self.slots[c].name.clone());
            let to = next.map(|n| self.slots[n].name.clone());
            let level = next.and_then(|n| self.slots[n].level);
            tracing::info!(peer = %format!("{id:016x}"), ?from, ?to, ?level, "link switch");
            self.counters.switches.fetch_add(1, Ordering::Relaxed);
            let mut log = self.switches.locked();
            if log.len() >= MAX_SWITCH_LOG {
                log.remove(0);
            }
            let switch = LinkSwitch {
                peer: id,
                from,
                to,
                level,
            };
            log.push(switch.clone());
            if self.events.try_send(switch).is_err() {
                Counters::bump(&self.counters.switch_events_dropped);
            }
            p.current = next;
        }
    }

    fn probe_all(&self) {
        let now = Instant::now();
        let mut peers = self.peers.locked();
        for (&id, p) in peers.iter_mut() {
            p.seq = p.seq.wrapping_add(1);
            let seq = p.seq;
            for (i, path) in p.paths.iter_mut().enumerate() {
                let Some(path) = path.as_mut() else { continue };
                if self.slots[i].silent() {
                    continue;
                }
                let nonce: u64 = rand::random();
                path.health.probe_sent(seq, nonce, now);
                let probe = Frame::Probe {
                    from: self.id,
                    seq,
                    nonce,
                };
                if let Err(e) = self.slots[i].port.send(&path.remote, probe.encode()) {
                    tracing::debug!(link = %self.slots[i].name, error = %e, "probe not sent");
                }
            }
            self.evaluate(id, p, now);
        }
    }

    pub(super) fn send(&self, dst: &CustomAddr, packet: &[u8]) {
        let now = Instant::now();
        let mut peers = self.peers.locked();
        let Some(p) = self.peer_for(&mut peers, dst) else {
            self.counters
                .dropped_no_link
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let id = BondAddr::id_of(dst).unwrap_or(0);
        if p.current.is_none_or(|c| self.slots[c].silent()) {
            self.evaluate(id, p, now);
        }
        let Some(i) = p.current else {
            self.counters
                .dropped_no_link
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(path) = p.paths[i].as_ref() else {
            self.counters
                .dropped_no_link
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let frame = if p.knows_us {
            Frame::Data {
                from: self.id,
                packet: Bytes::copy_from_slice(packet),
            }
        } else {
            Frame::DataFrom {
                from_addr: Bytes::copy_from_slice(&self.addr.to_vec()),
                packet: Bytes::copy_from_slice(packet),
            }
        };
        match self.slots[i].port.send(&path.remote, frame.encode()) {
            Ok(()) => {
                self.counters.packets_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters
                    .dropped_no_link
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(link = %self.slots[i].name, error = %e, "packet not sent");
            }
        }
    }
}

#[path = "bond_recv.rs"]
mod recv;

#[cfg(test)]
#[path = "bond_tests.rs"]
mod tests;

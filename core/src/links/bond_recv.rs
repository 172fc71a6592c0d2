//! What arrives on the bond's links: probes answered, echoes measured, data
//! frames handed to iroh — each frame checked, the bad ones dropped and
//! counted.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use iroh_base::CustomAddr;
use tokio::time::Instant;

use super::super::addr::BondAddr;
use super::super::frame::Frame;
use super::super::report::Counters;
use super::BondInner;
use crate::locks::LockExt;

impl BondInner {
    pub(super) fn on_frame(&self, member: usize, from: CustomAddr, bytes: Bytes) {
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.counters
                    .dropped_malformed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "malformed link frame dropped");
                return;
            }
        };
        let now = Instant::now();
        match frame {
            Frame::Probe {
                from: peer,
                seq,
                nonce,
            } => {
                // Answered on the link it came by, to the address it came from:
                // one byte more than the probe, so no amplification to speak
                // of. The echo says whether the prober's data can be
                // attributed here (this bond knows its address). A silenced
                // link answers nothing.
                if self.slots[member].silent() {
                    return;
                }
                let known = self.peers.locked().contains_key(&peer);
                let echo = Frame::Echo {
                    from: self.id,
                    seq,
                    nonce,
                    known,
                };
                let _ = self.slots[member].port.send(&from, echo.encode());
            }
            Frame::Echo {
                from: peer,
                seq,
                nonce,
                known,
            } => {
                let mut peers = self.peers.locked();
                if let Some(p) = peers.get_mut(&peer) {
                    p.knows_us = known;
                    p.last_heard = now;
                    if let Some(path) = p.paths.get_mut(member).and_then(Option::as_mut) {
                        if path.remote == from {
                            path.health.answered(seq, nonce, now);
                        }
                    }
                }
            }
            Frame::Data { from: peer, packet } => {
                let addr = {
                    let mut peers = self.peers.locked();
                    match peers.get_mut(&peer) {
                        Some(p) => {
                            p.last_heard = now;
                            p.addr.clone()
                        }
                        None => {
                            self.counters
                                .dropped_unknown
                                .fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                };
                self.to_iroh(addr, packet);
            }
            Frame::DataFrom { from_addr, packet } => {
                let Ok(addr) = CustomAddr::from_bytes(&from_addr) else {
                    self.counters
                        .dropped_malformed
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                };
                // The sender must list the link address it sent from.
                let consistent = BondAddr::from_custom(&addr)
                    .map(|b| b.members.contains(&from))
                    .unwrap_or(false);
                if !consistent {
                    self.counters
                        .dropped_malformed
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                {
                    let mut peers = self.peers.locked();
                    // A claim to be a peer this bond hears from at another
                    // address is refused while that peer is alive: anyone on
                    // a link could otherwise send our packets for it to
                    // themselves. (A peer that really moved, e.g. restarted
                    // with new link ports, is taken at its new address once
                    // the old one has been silent for the dead-link time.)
                    let id = BondAddr::id_of(&addr);
                    let live_elsewhere = id.and_then(|id| peers.get(&id)).is_some_and(|p| {
                        p.addr != addr && now.duration_since(p.last_heard) < self.policy.dead_after
                    });
                    if live_elsewhere {
                        Counters::bump(&self.counters.dropped_claims);
                        return;
                    }
                    if let Some(p) = self.peer_for(&mut peers, &addr) {
                        p.last_heard = now;
                    }
                }
                self.to_iroh(addr, packet);
            }
        }
    }

    fn to_iroh(&self, from: CustomAddr, packet: Bytes) {
        match self.to_iroh.try_send((from, packet)) {
            Ok(()) => {
                self.counters.packets_in.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

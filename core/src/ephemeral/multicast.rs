//! The secured multicast path: ephemeral messages to and from the local
//! network segment, for nodes that have no connection to each other yet.
//!
//! A node with [`MulticastConfig`] binds one UDP socket to the group's port,
//! joins the group on the named interface, and sends each message it
//! publishes (unless the publisher says otherwise) as one sealed datagram
//! ([`super::seal`]) to the group — and to nothing else: the socket sends only
//! to the configured group, out of the configured interface, with the
//! configured IP TTL (1 by default: the segment). A broadcast address may be
//! given instead of a group. What arrives is opened, its signature checked
//! (required here), its timestamp checked against the clock, and then treated
//! like a message from a peer (delivered, kept, forwarded over connections).
//! Nothing received on this path is sent on it again.
//!
//! Bounds: datagrams above [`super::seal::MAX_SEALED`] are dropped unread
//! (the socket reads into a buffer one byte larger); at most
//! [`super::VERIFY_PER_SEC`] signatures a second are checked for everyone on
//! the path together; a full socket buffer drops the send, counted.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::time::Instant;

use super::message::Wire;
use super::seal::{Refused, Sealer, MAX_SKEW};
use super::{Counters, VERIFY_PER_SEC};
use crate::clock::{unix_ms, Bucket};
use crate::config::MulticastConfig;
use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::security::Formation;

pub(crate) struct MulticastPath {
    socket: tokio::net::UdpSocket,
    group: SocketAddr,
    sealer: Mutex<Sealer>,
    verify: Mutex<Bucket>,
}

impl MulticastPath {
    /// Binds and joins (needs a tokio runtime).
    pub fn open(
        cfg: &MulticastConfig,
        formation: Formation,
        key: &iroh::SecretKey,
    ) -> Result<Self> {
        if cfg.group.port() == 0 {
            return Err(Error::InvalidArgument(
                "the multicast group needs a port".into(),
            ));
        }
        if cfg.hops == 0 || cfg.hops > 255 {
            return Err(Error::InvalidArgument("multicast hops are 1 to 255".into()));
        }
        let net = |e: std::io::Error| {
            Error::Network(format!("multicast {} on {}: {e}", cfg.group, cfg.interface))
        };
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(net)?;
        // Several nodes on one host share the group's port.
        s.set_reuse_address(true).map_err(net)?;
        #[cfg(unix)]
        s.set_reuse_port(true).map_err(net)?;
        s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.group.port()).into())
            .map_err(net)?;
        if cfg.group.ip().is_multicast() {
            s.join_multicast_v4(cfg.group.ip(), &cfg.interface)
                .map_err(net)?;
            s.set_multicast_if_v4(&cfg.interface).map_err(net)?;
            s.set_multicast_ttl_v4(cfg.hops).map_err(net)?;
            // Other nodes on this host hear it too.
            s.set_multicast_loop_v4(true).map_err(net)?;
        } else {
            s.set_broadcast(true).map_err(net)?;
            s.set_ttl_v4(cfg.hops).map_err(net)?;
        }
        s.set_nonblocking(true).map_err(net)?;
        let socket = tokio::net::UdpSocket::from_std(s.into()).map_err(net)?;
        Ok(MulticastPath {
            socket,
            group: SocketAddr::V4(cfg.group),
            sealer: Mutex::new(Sealer::new(formation, key)),
            verify: Mutex::new(Bucket::new(VERIFY_PER_SEC, Instant::now())),
        })
    }

    /// Seals and sends an encoded, signed message to the group (never waits).
    pub fn send(&self, encoded: &[u8], counters: &Counters) {
        let sealed = self.sealer.locked().seal(encoded, unix_ms() / 1000);
        let sent = sealed.map(|d| self.socket.try_send_to(&d, self.group));
        match sent {
            Some(Ok(_)) => counters.multicast_sent.fetch_add(1, Relaxed),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "multicast send failed");
                counters.multicast_send_failed.fetch_add(1, Relaxed)
            }
            None => counters.multicast_send_failed.fetch_add(1, Relaxed),
        };
    }

    /// Receives one datagram into `buf` (one byte larger than the largest
    /// sealed datagram, so a longer one shows as too long).
    pub async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.socket.recv_from(buf).await.map(|(n, _)| n)
    }

    /// Opens and checks one datagram: sealed for this formation in a key
    /// epoch near now, signed by the sender it names, timestamped within its
    /// lifetime plus the skew, within the path's verification budget. `None`
    /// (counted) otherwise. The signature itself is checked by the caller.
    pub fn open_datagram(&self, d: &[u8], c: &Counters) -> Option<Wire> {
        c.multicast_received.fetch_add(1, Relaxed);
        let now_ms = unix_ms();
        let (plain, sender) = match self.sealer.locked().open(d, now_ms / 1000) {
            Ok(x) => x,
            Err(r) => {
                let counter = match r {
                    Refused::Malformed => &c.malformed,
                    Refused::ForeignFormation => &c.foreign_formation,
                    Refused::WrongKey => &c.wrong_key,
                    Refused::BadSeal => &c.bad_seal,
                };
                counter.fetch_add(1, Relaxed);
                return None;
            }
        };
        let w = match Wire::decode(&plain) {
            Ok(w) if w.origin == sender && w.signature.is_some() => w,
            _ => {
                c.malformed.fetch_add(1, Relaxed);
                return None;
            }
        };
        let limit = u64::from(w.ttl_ms) + MAX_SKEW.as_millis() as u64;
        if now_ms.abs_diff(w.sent_at_ms) > limit {
            c.clock_skew.fetch_add(1, Relaxed);
            return None;
        }
        if !self.verify.locked().take(Instant::now()) {
            c.rate_limited.fetch_add(1, Relaxed);
            return None;
        }
        Some(w)
    }
}

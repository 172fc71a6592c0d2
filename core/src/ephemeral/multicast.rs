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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::time::Instant;

use super::message::Wire;
use super::seal::{Refused, Sealer, MAX_SEALED, MAX_SKEW};
use super::service::{unix_ms, Bucket, Ephemeral};
use super::{Counters, Via, VERIFY_PER_SEC};
use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::security::Formation;

/// Where the multicast path sends and listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulticastConfig {
    /// An IPv4 multicast group (224.0.0.0/4) or a broadcast address, and the
    /// port every node of the formation uses.
    pub group: SocketAddrV4,
    /// The address of the local interface to send from and join the group on.
    pub interface: Ipv4Addr,
    /// IP TTL of the datagrams: 1 keeps them on the local segment. Default 1.
    pub hops: u32,
}

impl MulticastConfig {
    /// The path to `group` on the interface with address `interface`.
    pub fn new(group: SocketAddrV4, interface: Ipv4Addr) -> MulticastConfig {
        MulticastConfig {
            group,
            interface,
            hops: 1,
        }
    }
}

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
}

/// Reads the multicast socket until cancelled.
pub(crate) async fn run(
    e: Arc<Ephemeral>,
    path: Arc<MulticastPath>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut buf = vec![0u8; MAX_SEALED + 1];
    loop {
        let n = tokio::select! {
            _ = cancel.cancelled() => return,
            r = path.socket.recv_from(&mut buf) => match r {
                Ok((n, _from)) => n,
                Err(err) => {
                    tracing::debug!(error = %err, "multicast receive failed");
                    // e.g. an ICMP error from a previous send; go on
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        receive_sealed(&e, &path, &buf[..n]);
    }
}

/// Opens and checks one datagram from the multicast socket, then hands it on.
pub(crate) fn receive_sealed(e: &Ephemeral, path: &MulticastPath, d: &[u8]) {
    let c = &e.counters;
    c.multicast_received.fetch_add(1, Relaxed);
    if d.len() > MAX_SEALED {
        c.malformed.fetch_add(1, Relaxed);
        return;
    }
    let now_ms = unix_ms();
    let (plain, sender) = match path.sealer.locked().open(d, now_ms / 1000) {
        Ok(x) => x,
        Err(r) => {
            let counter = match r {
                Refused::Malformed => &c.malformed,
                Refused::ForeignFormation => &c.foreign_formation,
                Refused::WrongKey => &c.wrong_key,
                Refused::BadSeal => &c.bad_seal,
            };
            counter.fetch_add(1, Relaxed);
            return;
        }
    };
    let w = match Wire::decode(&plain) {
        Ok(w) if w.origin == sender && w.signature.is_some() => w,
        _ => {
            c.malformed.fetch_add(1, Relaxed);
            return;
        }
    };
    let limit = u64::from(w.ttl_ms) + MAX_SKEW.as_millis() as u64;
    if now_ms.abs_diff(w.sent_at_ms) > limit {
        c.clock_skew.fetch_add(1, Relaxed);
        return;
    }
    if !path.verify.locked().take(Instant::now()) {
        c.rate_limited.fetch_add(1, Relaxed);
        return;
    }
    e.accept(w, Via::Multicast);
}

//! An in-process link with injectable faults: for tests, demos and
//! `peat-bench` (this kernel has no netem).
//!
//! A [`Medium`] is one shared segment (think: one radio channel). Each node
//! attaches a [`MediumLink`] to it and gives that to its configuration as one
//! of its links; the node's bond ([`super::bond`]) then reaches peers on the
//! same medium through it. Packets between two stations cross a
//! [`Pipe`] per direction that applies the medium's [`Faults`]. Nothing here
//! touches a socket: a medium sends nothing to any network.
//!
//! Bounds: at most [`MAX_STATIONS`] stations per medium, one pipe per ordered
//! pair of them; at most [`MAX_IN_FLIGHT`] packets travelling at once and
//! [`RECV_QUEUE`] waiting per station. Packets past a bound are dropped and
//! counted (a link loses packets; QUIC resends them).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use iroh_base::CustomAddr;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::bond::{Incoming, Member};
use super::faults::{Drop, Fate, Faults, Pipe};
use crate::locks::LockExt;

/// The iroh custom-transport id of a [`Medium`]'s addresses.
pub const MEDIUM_TRANSPORT_ID: u64 = 0x5045_4154_0001;

/// Stations one medium takes.
pub const MAX_STATIONS: usize = 64;
/// Packets travelling on one medium at once (delayed, not yet delivered).
pub const MAX_IN_FLIGHT: u64 = 8192;
/// Packets waiting to be read by one station.
pub const RECV_QUEUE: usize = 1024;

/// What crossed a medium and what it lost, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediumStats {
    /// Packets handed to the medium.
    pub sent: u64,
    /// Packets that reached their station.
    pub delivered: u64,
    /// Bytes that reached their station.
    pub delivered_bytes: u64,
    /// Dropped because the link was down.
    pub dropped_down: u64,
    /// Dropped by random loss.
    pub dropped_lost: u64,
    /// Dropped because the rate limiter's queue, the in-flight bound or the
    /// receiving station's queue was full.
    pub dropped_full: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    dropped_down: AtomicU64,
    dropped_lost: AtomicU64,
    dropped_full: AtomicU64,
    in_flight: AtomicU64,
}

#[derive(Debug)]
struct Packet {
    from: u16,
    data: Bytes,
}

#[derive(Debug)]
struct State {
    faults: Faults,
    up: bool,
    stations: HashMap<u16, mpsc::Sender<Packet>>,
    pipes: HashMap<(u16, u16), Pipe>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    created: Instant,
    state: Mutex<State>,
    counters: Counters,
}

/// One shared in-process segment with the faults it applies. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Medium {
    inner: Arc<Inner>,
}

impl Medium {
    /// A medium with these faults; its script's clock starts now.
    pub fn new(faults: Faults) -> Self {
        Medium {
            inner: Arc::new(Inner {
                id: rand::random(),
                created: Instant::now(),
                state: Mutex::new(State {
                    faults,
                    up: true,
                    stations: HashMap::new(),
                    pipes: HashMap::new(),
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// Attaches a new station; give it to a node's configuration
    /// ([`crate::NodeConfig::link`]). Errors past [`MAX_STATIONS`].
    pub fn attach(&self) -> io::Result<MediumLink> {
        let mut st = self.inner.state.locked();
        if st.stations.len() >= MAX_STATIONS {
            return Err(io::Error::other(format!(
                "a medium takes at most {MAX_STATIONS} stations"
            )));
        }
        let port = (1..=u16::MAX)
            .find(|p| !st.stations.contains_key(p))
            .ok_or_else(|| io::Error::other("no free port on the medium"))?;
        let (tx, rx) = mpsc::channel(RECV_QUEUE);
        st.stations.insert(port, tx);
        Ok(MediumLink {
            medium: self.clone(),
            port,
            rx: Arc::new(Mutex::new(Some(rx))),
        })
    }

    /// Switches the whole medium off (everything is dropped) or back on.
    pub fn set_up(&self, up: bool) {
        let mut st = self.inner.state.locked();
        st.up = up;
        for p in st.pipes.values_mut() {
            p.set_up(up);
        }
    }

    /// Replaces the faults (the script's clock does not restart).
    pub fn set_faults(&self, faults: Faults) {
        let mut st = self.inner.state.locked();
        for p in st.pipes.values_mut() {
            p.set_faults(faults.clone());
        }
        st.faults = faults;
    }

    /// Time since the medium was created: the clock its scripted outages
    /// ([`Faults::outage`]) count on.
    pub fn elapsed(&self) -> std::time::Duration {
        self.inner.created.elapsed()
    }

    /// What crossed the medium so far.
    pub fn stats(&self) -> MediumStats {
        let c = &self.inner.counters;
        MediumStats {
            sent: c.sent.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            delivered_bytes: c.delivered_bytes.load(Ordering::Relaxed),
            dropped_down: c.dropped_down.load(Ordering::Relaxed),
            dropped_lost: c.dropped_lost.load(Ordering::Relaxed),
            dropped_full: c.dropped_full.load(Ordering::Relaxed),
        }
    }

    fn addr(&self, port: u16) -> CustomAddr {
        let mut data = [0u8; 10];
        data[..8].copy_from_slice(&self.inner.id.to_be_bytes());
        data[8..].copy_from_slice(&port.to_be_bytes());
        CustomAddr::from_parts(MEDIUM_TRANSPORT_ID, &data)
    }

    /// The port of `addr` if it is a station address of this medium.
    fn port_of(&self, addr: &CustomAddr) -> Option<u16> {
        let d = addr.data();
        if addr.id() != MEDIUM_TRANSPORT_ID || d.len() != 10 {
            return None;
        }
        let (id, port) = d.split_at(8);
        if u64::from_be_bytes(id.try_into().ok()?) != self.inner.id {
            return None;
        }
        Some(u16::from_be_bytes(port.try_into().ok()?))
    }

    /// Puts one packet on the medium from `from` to `to`.
    fn send(&self, from: u16, to: u16, data: Bytes) -> io::Result<()> {
        let c = &self.inner.counters;
        c.sent.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let since = now - self.inner.created;
        let (fate, tx) = {
            let mut st = self.inner.state.locked();
            let Some(tx) = st.stations.get(&to).cloned() else {
                return Err(io::Error::other(format!("no station {to} on the medium")));
            };
            let (faults, up) = (st.faults.clone(), st.up);
            let pipe = st.pipes.entry((from, to)).or_insert_with(|| {
                let mut p = Pipe::new(faults);
                p.set_up(up);
                p
            });
            let fate = pipe.admit(since, data.len(), rand::random(), rand::random());
            (fate, tx)
        };
        let at = match fate {
            Fate::Dropped(Drop::Down) => {
                c.dropped_down.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Fate::Dropped(Drop::Lost) => {
                c.dropped_lost.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Fate::Dropped(Drop::QueueFull) => {
                c.dropped_full.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Fate::Arrives(at) => self.inner.created + at,
        };
        let packet = Packet { from, data };
        if at <= now {
            self.deliver(&tx, packet);
            return Ok(());
        }
        if c.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            c.in_flight.fetch_sub(1, Ordering::AcqRel);
            c.dropped_full.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            c.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(io::Error::other("a delayed medium needs a tokio runtime"));
        };
        let medium = self.clone();
        rt.spawn(async move {
            tokio::time::sleep_until(at).await;
            medium
                .inner
                .counters
                .in_flight
                .fetch_sub(1, Ordering::AcqRel);
            medium.deliver(&tx, packet);
        });
        Ok(())
    }

    fn deliver(&self, tx: &mpsc::Sender<Packet>, packet: Packet) {
        let c = &self.inner.counters;
        let len = packet.data.len() as u64;
        match tx.try_send(packet) {
            Ok(()) => {
                c.delivered.fetch_add(1, Ordering::Relaxed);
                c.delivered_bytes.fetch_add(len, Ordering::Relaxed);
            }
            // A full station queue drops like a full receive buffer; a closed
            // one is a station whose endpoint is gone.
            Err(_) => {
                c.dropped_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One node's attachment to a [`Medium`]; give it to a node as a link
/// ([`crate::NodeConfig::link`]). A station is opened by one node; opening it
/// again fails.
#[derive(Clone, Debug)]
pub struct MediumLink {
    medium: Medium,
    port: u16,
    rx: Arc<Mutex<Option<mpsc::Receiver<Packet>>>>,
}

impl MediumLink {
    /// This station's address on the medium.
    pub fn addr(&self) -> CustomAddr {
        self.medium.addr(self.port)
    }

    /// The medium this station is on.
    pub fn medium(&self) -> &Medium {
        &self.medium
    }

    /// Opens the station for the bond: a port to send with and the frames
    /// that arrive, each with the station it came from.
    pub(crate) fn open(&self) -> io::Result<(Arc<dyn Member>, Incoming)> {
        let rx = self
            .rx
            .locked()
            .take()
            .ok_or_else(|| io::Error::other("this medium link is already open"))?;
        let station = Arc::new(Station {
            medium: self.medium.clone(),
            port: self.port,
        });
        let (tx, incoming) = mpsc::channel(RECV_QUEUE);
        let medium = self.medium.clone();
        // Ends when the station is dropped (its queue closes) or the bond
        // stops reading.
        tokio::spawn(async move {
            let mut rx = rx;
            loop {
                let p = tokio::select! {
                    p = rx.recv() => p,
                    _ = tx.closed() => break,
                };
                let Some(p) = p else { break };
                if tx
                    .send((super::LinkAddr(medium.addr(p.from)), p.data))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok((station, incoming))
    }
}

/// An open station: sends frames onto the medium.
#[derive(Debug)]
struct Station {
    medium: Medium,
    port: u16,
}

impl Member for Station {
    fn addr(&self) -> CustomAddr {
        self.medium.addr(self.port)
    }

    fn carries(&self, addr: &CustomAddr) -> bool {
        self.medium.port_of(addr).is_some()
    }

    fn send(&self, to: &CustomAddr, frame: Bytes) -> io::Result<()> {
        let port = self
            .medium
            .port_of(to)
            .ok_or_else(|| io::Error::other("not an address on this medium"))?;
        self.medium.send(self.port, port, frame)
    }
}

impl std::ops::Drop for Station {
    fn drop(&mut self) {
        // The port is free again; packets still travelling to it are dropped.
        let mut st = self.medium.inner.state.locked();
        st.stations.remove(&self.port);
        st.pipes
            .retain(|(a, b), _| *a != self.port && *b != self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_medium_takes_a_bounded_number_of_stations() {
        let m = Medium::new(Faults::default());
        let stations: Vec<_> = (0..MAX_STATIONS).map(|_| m.attach().unwrap()).collect();
        assert!(m.attach().is_err());
        assert_eq!(stations.len(), MAX_STATIONS);
    }

    #[tokio::test(start_paused = true)]
    async fn packets_past_the_bounds_are_dropped_and_counted() {
        let m = Medium::new(Faults::default().delay(Duration::from_secs(1)));
        let (a, _rx_a) = m.attach().unwrap().open().unwrap();
        let (_b, mut rx_b) = m.attach().unwrap().open().unwrap();
        let to = _b.addr();
        // More than may travel at once: the excess is dropped, not queued.
        let n = MAX_IN_FLIGHT + 100;
        for _ in 0..n {
            a.send(&to, Bytes::from_static(b"x")).unwrap();
        }
        let s = m.stats();
        assert_eq!(s.sent, n);
        assert_eq!(s.dropped_full, 100);
        // Once delivered, the station's queue holds RECV_QUEUE (plus what its
        // forwarder took); the rest is dropped and counted.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = m.stats();
        assert_eq!(s.delivered + s.dropped_full, n);
        assert!(s.delivered >= RECV_QUEUE as u64, "{s:?}");
        assert!(s.delivered <= 2 * RECV_QUEUE as u64 + 2, "{s:?}");
        let mut got = 0;
        while rx_b.try_recv().is_ok() {
            got += 1;
        }
        assert!(got >= RECV_QUEUE as u64 - 1, "{got}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_station_frees_its_port() {
        let m = Medium::new(Faults::default());
        let link = m.attach().unwrap();
        let addr = link.addr();
        let (a, rx) = link.open().unwrap();
        assert!(link.open().is_err(), "a station opens once");
        let other = m.attach().unwrap();
        assert_ne!(other.addr(), addr);
        // While the station lives, sending to it works; once dropped, its
        // address is gone and the next station takes its port.
        assert!(a.send(&other.addr(), Bytes::from_static(b"x")).is_ok());
        drop((a, rx));
        let (o, _rx) = other.open().unwrap();
        assert!(o.send(&addr, Bytes::from_static(b"x")).is_err());
        assert_eq!(m.attach().unwrap().addr(), addr);
    }
}

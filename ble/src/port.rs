//! The BLE link: a [`LinkPort`] over a [`Radio`].
//!
//! A bond frame for a peer goes to that peer's connection: it is dialled on
//! first use (again at most once a second after a failure or a drop), and
//! each connection has a writer that cuts frames into fragments for its MTU
//! ([`ble_frame::fragment`]) and hands them to the radio one by one,
//! waiting while the radio is busy — the radio's own flow control — and a
//! reader that reassembles what arrives. Bounds: [`MAX_BLE_CONNECTIONS`]
//! connections, [`FRAME_QUEUE`] frames waiting per connection (a frame that
//! finds the queue full is dropped and counted: QUIC resends and slows
//! down, as over a full socket), [`TO_BOND_QUEUE`] frames waiting for the
//! bond, [`ble_frame::MAX_PARTIAL`] messages in reassembly per connection.
//! Health (RTT, loss, liveness) is the bond's business: it probes this link
//! as any other.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use peat_mesh::links::{ble_frame, Link, LinkAddr, LinkFrames, LinkPort};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::radio::{BleAddr, GattConn, Radio};

/// The custom-transport id of BLE link addresses (6 bytes: the device address).
pub const BLE_LINK_ID: u64 = 0x5045_4154_0003;
/// Connections one BLE link keeps at once (a phone's controller manages
/// about this many).
pub const MAX_BLE_CONNECTIONS: usize = 8;
/// Bond frames waiting per connection.
pub const FRAME_QUEUE: usize = 32;
/// Reassembled frames waiting for the bond.
pub const TO_BOND_QUEUE: usize = 256;
/// A peer is dialled again at most this often.
pub const REDIAL_AFTER: Duration = Duration::from_secs(1);
/// How long a dial may take (connect, service discovery, subscription).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Dial attempts remembered (for [`REDIAL_AFTER`]).
const MAX_DIALS: usize = 64;

/// What a BLE link did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BleStats {
    /// Connections open now.
    pub connections: u64,
    /// Dials started.
    pub dials: u64,
    /// Connections opened (dialled or accepted) since the link opened.
    pub connects: u64,
    /// Connections that ended.
    pub disconnects: u64,
    /// Bond frames sent and received.
    pub frames_out: u64,
    pub frames_in: u64,
    /// GATT fragments sent and received.
    pub fragments_out: u64,
    pub fragments_in: u64,
    /// Frames dropped because their connection's queue was full.
    pub dropped_busy: u64,
    /// Fragments refused by reassembly (malformed, contradictory).
    pub dropped_malformed: u64,
    /// Frames dropped because the bond's queue was full.
    pub dropped_full: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    dials: AtomicU64,
    connects: AtomicU64,
    disconnects: AtomicU64,
    frames_out: AtomicU64,
    frames_in: AtomicU64,
    fragments_out: AtomicU64,
    fragments_in: AtomicU64,
    dropped_busy: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_full: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug)]
struct Conn {
    id: u64,
    frames: mpsc::Sender<Bytes>,
}

#[derive(Debug)]
struct Shared {
    radio: Arc<dyn Radio>,
    me: LinkAddr,
    rt: tokio::runtime::Handle,
    conns: Mutex<HashMap<BleAddr, Conn>>,
    /// Dials in progress or recently tried, by when.
    dials: Mutex<HashMap<BleAddr, Instant>>,
    to_bond: mpsc::Sender<(LinkAddr, Bytes)>,
    next_id: AtomicU64,
    counters: Counters,
    cancel: CancellationToken,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A BLE device address as a link address.
pub fn link_addr(addr: BleAddr) -> LinkAddr {
    LinkAddr::new(BLE_LINK_ID, &addr)
}

fn device(addr: &LinkAddr) -> Option<BleAddr> {
    if addr.kind() != BLE_LINK_ID {
        return None;
    }
    addr.data().try_into().ok()
}

/// The port the bond holds; dropping it (the node closed) stops the link.
#[derive(Debug)]
struct BlePort(Arc<Shared>);

impl Drop for BlePort {
    fn drop(&mut self) {
        self.0.cancel.cancel();
    }
}

impl LinkPort for BlePort {
    fn addr(&self) -> LinkAddr {
        self.0.me.clone()
    }

    fn carries(&self, addr: &LinkAddr) -> bool {
        device(addr).is_some()
    }

    fn send(&self, to: &LinkAddr, frame: Bytes) -> io::Result<()> {
        let peer = device(to).ok_or_else(|| io::Error::other("not a BLE link address"))?;
        {
            let mut conns = locked(&self.0.conns);
            if let Some(c) = conns.get(&peer) {
                match c.frames.try_send(frame) {
                    Ok(()) => return Ok(()),
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        bump(&self.0.counters.dropped_busy);
                        return Err(io::Error::new(io::ErrorKind::WouldBlock, "BLE link busy"));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        conns.remove(&peer);
                    }
                }
            }
        }
        self.0.dial(peer);
        Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "BLE: not connected to that device yet",
        ))
    }
}

/// A link state handle: counters and the connected devices.
#[derive(Clone, Debug)]
pub struct BleLinkHandle(Arc<Shared>);

impl BleLinkHandle {
    /// Counters.
    pub fn stats(&self) -> BleStats {
        let c = &self.0.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BleStats {
            connections: g(&c.connections),
            dials: g(&c.dials),
            connects: g(&c.connects),
            disconnects: g(&c.disconnects),
            frames_out: g(&c.frames_out),
            frames_in: g(&c.frames_in),
            fragments_out: g(&c.fragments_out),
            fragments_in: g(&c.fragments_in),
            dropped_busy: g(&c.dropped_busy),
            dropped_malformed: g(&c.dropped_malformed),
            dropped_full: g(&c.dropped_full),
        }
    }

    /// This link's address (the radio's device address).
    pub fn addr(&self) -> LinkAddr {
        self.0.me.clone()
    }
}

/// A BLE link named `name` over `radio`, for [`peat_mesh::NodeConfig::link`],
/// and a handle to its counters. Must be called inside a tokio runtime.
pub fn ble_link(name: &str, radio: Arc<dyn Radio>) -> io::Result<(Link, BleLinkHandle)> {
    let (shared, frames) = Shared::new(radio)?;
    if let Some(mut incoming) = shared.radio.take_incoming() {
        let weak = Arc::downgrade(&shared);
        let cancel = shared.cancel.clone();
        shared.rt.spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = cancel.cancelled() => break,
                    c = incoming.recv() => match c { Some(c) => c, None => break },
                };
                match weak.upgrade() {
                    Some(s) => s.attach(conn),
                    None => break,
                }
            }
        });
    }
    let handle = BleLinkHandle(shared.clone());
    let port: Arc<dyn LinkPort> = Arc::new(BlePort(shared));
    Ok((Link::external(name, port, frames), handle))
}

impl Shared {
    /// The link's state over `radio`, and the frames it hands the bond.
    fn new(radio: Arc<dyn Radio>) -> io::Result<(Arc<Shared>, LinkFrames)> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| io::Error::other("a BLE link must be opened inside a tokio runtime"))?;
        let (to_bond, frames) = mpsc::channel(TO_BOND_QUEUE);
        let shared = Arc::new(Shared {
            me: link_addr(radio.addr()),
            radio,
            rt,
            conns: Mutex::new(HashMap::new()),
            dials: Mutex::new(HashMap::new()),
            to_bond,
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            cancel: CancellationToken::new(),
        });
        Ok((shared, frames))
    }

    /// Dials `peer` unless a dial is running or was tried within
    /// [`REDIAL_AFTER`], or the connection bound is reached.
    fn dial(self: &Arc<Self>, peer: BleAddr) {
        let now = Instant::now();
        {
            let mut dials = locked(&self.dials);
            if dials
                .get(&peer)
                .is_some_and(|t| now.duration_since(*t) < REDIAL_AFTER)
            {
                return;
            }
            if locked(&self.conns).len() >= MAX_BLE_CONNECTIONS {
                return;
            }
            if dials.len() >= MAX_DIALS {
                dials.retain(|_, t| now.duration_since(*t) < REDIAL_AFTER);
                if dials.len() >= MAX_DIALS {
                    return;
                }
            }
            dials.insert(peer, now);
        }
        bump(&self.counters.dials);
        let me = self.clone();
        self.rt.spawn(async move {
            let dialled = tokio::select! {
                _ = me.cancel.cancelled() => return,
                r = tokio::time::timeout(DIAL_TIMEOUT, me.radio.connect(peer)) => r,
            };
            match dialled {
                Ok(Ok(conn)) => me.attach(conn),
                Ok(Err(e)) => tracing::debug!(peer = %hex(&peer), error = %e, "BLE dial failed"),
                Err(_) => tracing::debug!(peer = %hex(&peer), "BLE dial timed out"),
            }
        });
    }

    /// Starts the writer and reader of a new connection (dialled or
    /// accepted). A second connection to a device already connected is
    /// dropped.
    fn attach(self: &Arc<Self>, conn: GattConn) {
        let GattConn {
            peer,
            mtu,
            out,
            mut inc,
        } = conn;
        let mut reassembler = match ble_frame::Reassembler::new(mtu) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(peer = %hex(&peer), error = %e, "BLE connection refused");
                return;
            }
        };
        let (tx, mut frames) = mpsc::channel::<Bytes>(FRAME_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut conns = locked(&self.conns);
            if conns.get(&peer).is_some_and(|c| !c.frames.is_closed())
                || conns.len() >= MAX_BLE_CONNECTIONS
            {
                return;
            }
            conns.insert(peer, Conn { id, frames: tx });
        }
        bump(&self.counters.connects);
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(peer = %hex(&peer), mtu, "BLE connection up");

        let me = self.clone();
        self.rt.spawn(async move {
            let mut message_id: u16 = 0;
            loop {
                let frame = tokio::select! {
                    _ = me.cancel.cancelled() => return,
                    f = frames.recv() => match f { Some(f) => f, None => return },
                };
                let fragments = match ble_frame::fragment(message_id, &frame, mtu) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::debug!(error = %e, "frame not sent over BLE");
                        continue;
                    }
                };
                message_id = message_id.wrapping_add(1);
                for f in fragments {
                    if out.send(f).await.is_err() {
                        return;
                    }
                    bump(&me.counters.fragments_out);
                }
                bump(&me.counters.frames_out);
            }
        });

        let me = self.clone();
        let from = link_addr(peer);
        self.rt.spawn(async move {
            loop {
                let fragment = tokio::select! {
                    _ = me.cancel.cancelled() => break,
                    f = inc.recv() => match f { Some(f) => f, None => break },
                };
                bump(&me.counters.fragments_in);
                match reassembler.push(&fragment) {
                    Ok(Some(frame)) => {
                        bump(&me.counters.frames_in);
                        if me.to_bond.try_send((from.clone(), frame)).is_err() {
                            bump(&me.counters.dropped_full);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        bump(&me.counters.dropped_malformed);
                        tracing::debug!(peer = %hex(&peer), error = %e, "BLE fragment refused");
                    }
                }
            }
            // The connection is gone: forget it (its writer ends with it).
            let mut conns = locked(&me.conns);
            if conns.get(&peer).is_some_and(|c| c.id == id) {
                conns.remove(&peer);
            }
            drop(conns);
            me.counters.connections.fetch_sub(1, Ordering::Relaxed);
            bump(&me.counters.disconnects);
            tracing::debug!(peer = %hex(&peer), "BLE connection down");
        });
    }
}

fn hex(addr: &BleAddr) -> String {
    addr.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::double::{Air, AirConfig};

    /// A link's port without a node (the test drives it), and its frames.
    fn port(air: &Air, addr: BleAddr) -> (BlePort, LinkFrames) {
        let (shared, frames) = Shared::new(air.radio(addr).unwrap()).unwrap();
        (BlePort(shared), frames)
    }

    /// Lets the link's tasks run (on paused time: the double's delays pass
    /// at once) until `f` holds; 10 s of the radio's time at most.
    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..2000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("condition not met in 10 s");
    }

    /// On paused time: the radio's delays and the redial wait pass without
    /// real waiting, and nothing drains the queue between two sends.
    #[tokio::test(start_paused = true)]
    async fn connections_stop_at_the_bound_and_a_full_queue_says_busy() {
        let air = Air::new(AirConfig {
            rate: 2_000,
            ..AirConfig::default()
        });
        let (p, _frames) = port(&air, [1; 6]);
        // Peers with accept loops of their own (so the double accepts).
        let peers: Vec<_> = (0..MAX_BLE_CONNECTIONS + 2)
            .map(|i| ble_link("ble", air.radio([2, 0, 0, 0, 0, i as u8]).unwrap()).unwrap())
            .collect();
        for i in 0..peers.len() {
            let to = link_addr([2, 0, 0, 0, 0, i as u8]);
            let e = p.send(&to, Bytes::from_static(b"hello")).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotConnected);
            until(|| {
                locked(&p.0.conns).len() >= (i + 1).min(MAX_BLE_CONNECTIONS)
                    || locked(&p.0.dials).get(&[2, 0, 0, 0, 0, i as u8]).is_none()
            })
            .await;
        }
        until(|| locked(&p.0.conns).len() == MAX_BLE_CONNECTIONS).await;
        // Past the bound, nothing more is dialled.
        let dials = p.0.counters.dials.load(Ordering::Relaxed);
        let last = link_addr([2, 0, 0, 0, 0, MAX_BLE_CONNECTIONS as u8 + 1]);
        tokio::time::sleep(REDIAL_AFTER).await;
        assert!(p.send(&last, Bytes::from_static(b"x")).is_err());
        assert_eq!(p.0.counters.dials.load(Ordering::Relaxed), dials);
        assert_eq!(locked(&p.0.conns).len(), MAX_BLE_CONNECTIONS);

        // At 2 kB/s a 1,200-byte frame takes 0.6 s: the per-connection queue
        // fills and further frames are refused as busy, and counted.
        let to = link_addr([2, 0, 0, 0, 0, 0]);
        let mut busy = 0;
        for _ in 0..FRAME_QUEUE * 4 {
            if let Err(e) = p.send(&to, Bytes::from(vec![7u8; 1200])) {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                busy += 1;
            }
        }
        assert!(busy >= FRAME_QUEUE * 2, "{busy}");
        assert_eq!(
            p.0.counters.dropped_busy.load(Ordering::Relaxed),
            busy as u64
        );
        drop(peers);
    }
}

//! An in-process radio double: devices on a shared [`Air`] that connect and
//! move GATT fragments the way a BLE radio does, for tests, demos and
//! benchmarks on a machine without a Bluetooth radio.
//!
//! What it models, per connection and direction: the ATT MTU (a fragment
//! longer than MTU − 3 bytes is refused and counted, as a controller refuses
//! it), throughput (each fragment takes `len / rate` on the air, one after
//! another), a one-way latency, random fragment loss, a small controller
//! buffer (the sender waits while it is full: flow control) and
//! disconnects ([`Air::disconnect`], or a device going out of range with
//! [`Air::set_in_range`]). Both ends of a pair may dial; one connection per
//! pair.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::radio::{BleAddr, GattConn, Radio, RadioFuture};

/// How the air behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AirConfig {
    /// ATT MTU of every connection (23–517). Default 185.
    pub mtu: usize,
    /// Bytes per second per direction of a connection. Default 100,000.
    pub rate: u64,
    /// One-way latency of a fragment. Default 7.5 ms (half a 15 ms
    /// connection interval).
    pub latency: Duration,
    /// Share of fragments lost (0.0–1.0). Default 0.
    pub loss: f64,
}

impl Default for AirConfig {
    fn default() -> Self {
        AirConfig {
            mtu: 185,
            rate: 100_000,
            latency: Duration::from_micros(7_500),
            loss: 0.0,
        }
    }
}

/// Devices one air holds.
pub const MAX_DEVICES: usize = 64;
/// Fragments a controller buffers per direction before the sender waits.
pub const CONTROLLER_BUFFER: usize = 8;
/// Fragments in flight (between the rate stage and delivery) per direction.
const IN_FLIGHT: usize = 256;
/// Connections a device has not accepted yet.
const ACCEPT_QUEUE: usize = 8;
/// A gap longer than this between fragments means the air was idle.
const IDLE_SLACK: Duration = Duration::from_millis(5);

/// What crossed the air.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AirStats {
    /// Fragments delivered, and their bytes.
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// Fragments lost at random.
    pub lost: u64,
    /// Fragments refused as longer than the MTU allows.
    pub oversize: u64,
    /// Connections made, and ended.
    pub connections: u64,
    pub disconnects: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    lost: AtomicU64,
    oversize: AtomicU64,
    connections: AtomicU64,
    disconnects: AtomicU64,
}

#[derive(Debug)]
struct AirInner {
    config: Mutex<AirConfig>,
    devices: Mutex<HashMap<BleAddr, mpsc::Sender<GattConn>>>,
    out_of_range: Mutex<HashSet<BleAddr>>,
    pairs: Mutex<HashMap<(BleAddr, BleAddr), CancellationToken>>,
    counters: Counters,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pair(a: BleAddr, b: BleAddr) -> (BleAddr, BleAddr) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

/// The shared air of a set of radio doubles.
#[derive(Clone, Debug)]
pub struct Air(Arc<AirInner>);

impl Air {
    /// An empty air.
    pub fn new(config: AirConfig) -> Self {
        Air(Arc::new(AirInner {
            config: Mutex::new(config),
            devices: Mutex::new(HashMap::new()),
            out_of_range: Mutex::new(HashSet::new()),
            pairs: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }))
    }

    /// A device at `addr` on this air.
    pub fn radio(&self, addr: BleAddr) -> io::Result<Arc<DoubleRadio>> {
        let mut devices = locked(&self.0.devices);
        if devices.contains_key(&addr) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "a device with that address is on the air already",
            ));
        }
        if devices.len() >= MAX_DEVICES {
            return Err(io::Error::other(format!(
                "an air holds at most {MAX_DEVICES} devices"
            )));
        }
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        devices.insert(addr, tx);
        Ok(Arc::new(DoubleRadio {
            air: self.0.clone(),
            addr,
            incoming: Mutex::new(Some(rx)),
        }))
    }

    /// Ends the connection between `a` and `b`; false if there was none.
    pub fn disconnect(&self, a: BleAddr, b: BleAddr) -> bool {
        let ended = match locked(&self.0.pairs).get(&pair(a, b)) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        };
        forget(&self.0, pair(a, b));
        ended
    }

    /// Takes `device` out of range (its connections end and no one can
    /// connect to it or from it), or back in range.
    pub fn set_in_range(&self, device: BleAddr, in_range: bool) {
        if in_range {
            locked(&self.0.out_of_range).remove(&device);
            return;
        }
        locked(&self.0.out_of_range).insert(device);
        let gone: Vec<_> = locked(&self.0.pairs)
            .iter()
            .filter(|((a, b), _)| *a == device || *b == device)
            .map(|(k, t)| {
                t.cancel();
                *k
            })
            .collect();
        for k in gone {
            forget(&self.0, k);
        }
    }

    /// Changes the fragment loss from now on.
    pub fn set_loss(&self, loss: f64) {
        locked(&self.0.config).loss = loss.clamp(0.0, 1.0);
    }

    /// Counters.
    pub fn stats(&self) -> AirStats {
        let c = &self.0.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AirStats {
            delivered: g(&c.delivered),
            delivered_bytes: g(&c.delivered_bytes),
            lost: g(&c.lost),
            oversize: g(&c.oversize),
            connections: g(&c.connections),
            disconnects: g(&c.disconnects),
        }
    }
}

/// One device on an [`Air`]: central and peripheral at once.
#[derive(Debug)]
pub struct DoubleRadio {
    air: Arc<AirInner>,
    addr: BleAddr,
    incoming: Mutex<Option<mpsc::Receiver<GattConn>>>,
}

impl Radio for DoubleRadio {
    fn addr(&self) -> BleAddr {
        self.addr
    }

    fn connect(&self, peer: BleAddr) -> RadioFuture<'_, io::Result<GattConn>> {
        Box::pin(async move {
            let config = *locked(&self.air.config);
            let (mine, theirs) = self.connect_now(peer, config)?;
            let accept = locked(&self.air.devices).get(&peer).cloned();
            let accepted = match accept {
                Some(a) => a.try_send(theirs).is_ok(),
                None => false,
            };
            if !accepted {
                if let Some(t) = locked(&self.air.pairs).get(&pair(self.addr, peer)) {
                    t.cancel();
                }
                forget(&self.air, pair(self.addr, peer));
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the device did not accept the connection",
                ));
            }
            // Connection setup takes a few connection events.
            tokio::time::sleep(config.latency * 4).await;
            Ok(mine)
        })
    }

    fn take_incoming(&self) -> Option<mpsc::Receiver<GattConn>> {
        locked(&self.incoming).take()
    }
}

impl DoubleRadio {
    /// Both ends of a new connection to `peer`, with their pumps running.
    fn connect_now(&self, peer: BleAddr, config: AirConfig) -> io::Result<(GattConn, GattConn)> {
        let in_range = {
            let out = locked(&self.air.out_of_range);
            !out.contains(&self.addr) && !out.contains(&peer)
        };
        if !in_range || !locked(&self.air.devices).contains_key(&peer) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such device in range",
            ));
        }
        let token = CancellationToken::new();
        {
            let mut pairs = locked(&self.air.pairs);
            if pairs.contains_key(&pair(self.addr, peer)) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "already connected to that device",
                ));
            }
            pairs.insert(pair(self.addr, peer), token.clone());
        }
        self.air
            .counters
            .connections
            .fetch_add(1, Ordering::Relaxed);
        let (a_out, a_out_rx) = mpsc::channel(CONTROLLER_BUFFER);
        let (b_out, b_out_rx) = mpsc::channel(CONTROLLER_BUFFER);
        let (a_inc_tx, a_inc) = mpsc::channel(CONTROLLER_BUFFER);
        let (b_inc_tx, b_inc) = mpsc::channel(CONTROLLER_BUFFER);
        let key = pair(self.addr, peer);
        for (rx, tx) in [(a_out_rx, b_inc_tx), (b_out_rx, a_inc_tx)] {
            tokio::spawn(pump(self.air.clone(), key, rx, tx, token.clone()));
        }
        let mine = GattConn {
            peer,
            mtu: config.mtu,
            out: a_out,
            inc: a_inc,
        };
        let theirs = GattConn {
            peer: self.addr,
            mtu: config.mtu,
            out: b_out,
            inc: b_inc,
        };
        Ok((mine, theirs))
    }
}

/// One direction of a connection: the rate stage paces fragments onto the
/// air and drops the lost ones; the delivery stage hands each over after the
/// latency. Either end closing, or `token`, ends the whole connection.
async fn pump(
    air: Arc<AirInner>,
    key: (BleAddr, BleAddr),
    mut from: mpsc::Receiver<Bytes>,
    to: mpsc::Sender<Bytes>,
    token: CancellationToken,
) {
    let (flight, mut landing) = mpsc::channel::<(Instant, Bytes)>(IN_FLIGHT);
    let deliver_token = token.clone();
    let delivery = tokio::spawn(async move {
        loop {
            let (at, fragment) = tokio::select! {
                _ = deliver_token.cancelled() => break,
                f = landing.recv() => match f { Some(f) => f, None => break },
            };
            tokio::select! {
                _ = deliver_token.cancelled() => break,
                _ = tokio::time::sleep_until(at) => {}
            }
            // The receiver's buffer full: the link layer holds the fragment
            // (BLE flow control is lossless).
            if to.send(fragment).await.is_err() {
                break;
            }
        }
        deliver_token.cancel();
    });
    let mut free_at = Instant::now();
    loop {
        let fragment = tokio::select! {
            _ = token.cancelled() => break,
            f = from.recv() => match f { Some(f) => f, None => break },
        };
        let config = *locked(&air.config);
        if fragment.len() + 3 > config.mtu {
            air.counters.oversize.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let on_air = Duration::from_secs_f64(fragment.len() as f64 / config.rate.max(1) as f64);
        // The air's own timeline: a fragment starts when the previous one has
        // left, unless the air was idle. Timers wake up to a millisecond
        // late; restarting the timeline from "now" after every fragment
        // would add that to each one and run the air at half its rate.
        let now = Instant::now();
        if now > free_at + IDLE_SLACK {
            free_at = now;
        }
        free_at += on_air;
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep_until(free_at) => {}
        }
        if config.loss > 0.0 && rand::rng().random_bool(config.loss) {
            air.counters.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        air.counters.delivered.fetch_add(1, Ordering::Relaxed);
        air.counters
            .delivered_bytes
            .fetch_add(fragment.len() as u64, Ordering::Relaxed);
        if flight
            .send((free_at + config.latency, fragment))
            .await
            .is_err()
        {
            break;
        }
    }
    token.cancel();
    let _ = delivery.await;
    forget(&air, key);
}

/// Forgets the pair's connection if it has ended (its token cancelled; a
/// newer connection of the same pair is left alone), counting the end once.
fn forget(air: &AirInner, key: (BleAddr, BleAddr)) {
    let mut pairs = locked(&air.pairs);
    if pairs.get(&key).is_some_and(|t| t.is_cancelled()) {
        pairs.remove(&key);
        air.counters.disconnects.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On paused time the air's timeline is exact: 100 kB at 100 kB/s takes
    /// one second (plus the latency), however late the timers wake.
    #[tokio::test(start_paused = true)]
    async fn the_air_runs_at_its_rate_and_drops_what_exceeds_the_mtu() {
        let config = AirConfig::default();
        let air = Air::new(config);
        let (a, b) = (air.radio([1; 6]).unwrap(), air.radio([2; 6]).unwrap());
        let mut incoming = b.take_incoming().unwrap();
        let conn = a.connect([2; 6]).await.unwrap();
        let mut far = incoming.recv().await.unwrap();
        assert_eq!((conn.mtu, far.peer), (185, [1; 6]));
        // Too long for the MTU: refused and counted, not delivered.
        conn.out.send(Bytes::from(vec![0; 183])).await.unwrap();
        let per = config.mtu - 3;
        let n = 100_000 / per;
        let start = Instant::now();
        let reader = tokio::spawn(async move {
            let mut got = 0;
            for _ in 0..n {
                got += far.inc.recv().await.unwrap().len();
            }
            (got, Instant::now())
        });
        for _ in 0..n {
            conn.out.send(Bytes::from(vec![1; per])).await.unwrap();
        }
        let (got, done) = reader.await.unwrap();
        assert_eq!(got, n * per);
        let took = done - start;
        let ideal = Duration::from_secs_f64(got as f64 / config.rate as f64) + config.latency;
        assert!(
            took >= ideal && took < ideal + Duration::from_millis(5),
            "{took:?} vs {ideal:?}"
        );
        assert_eq!(air.stats().oversize, 1);
        // A disconnect ends both directions.
        assert!(air.disconnect([1; 6], [2; 6]));
        assert!(!air.disconnect([1; 6], [2; 6]));
        assert_eq!(air.stats().disconnects, 1);
    }
}

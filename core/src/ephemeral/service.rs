//! The ephemeral path of one node: publishing, receiving, forwarding,
//! subscriptions, and the beacon table fed from it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iroh::endpoint::SendDatagramError;
use tokio::time::Instant;

use super::latest::Latest;
use super::message::{check_topic, Wire};
use super::subscription::TopicSubscription;
use super::window::{Seen, Windows};
use super::{
    Counters, EphemeralStats, Message, PublishOptions, TopicFilter, Via, FORWARD_PER_SEC,
    RESERVED_PREFIX, VERIFY_PER_SEC,
};
use crate::beacons::table::BeaconTable;
use crate::beacons::{Beacon, BeaconConfig, BeaconInfo, BEACON_TOPIC};
use crate::clock::{unix_ms, Bucket};
use crate::error::{Error, Result};
use crate::events::Hub;
use crate::locks::LockExt;
use crate::security::Admitted;
use crate::NodeId;

/// Origins whose message windows are remembered.
const WINDOW_ORIGINS: usize = 4096;

struct Peer {
    conn: Arc<Admitted>,
    verify: Bucket,
    forward: Bucket,
    /// A floor on the free space of the connection's datagram send buffer:
    /// what it had at the last look, less what was queued since (the driver
    /// only frees more). Asking QUIC takes the connection's lock, so it is
    /// asked only when this floor could not take the next datagram.
    space: Arc<std::sync::atomic::AtomicUsize>,
}

fn same_origin_and_topic(a: &Message, b: &Message) -> bool {
    a.origin == b.origin && a.topic == b.topic
}

pub(crate) struct Ephemeral {
    me: NodeId,
    key: iroh::SecretKey,
    next_seq: AtomicU64,
    peers: Mutex<HashMap<NodeId, Peer>>,
    seen: Mutex<Windows>,
    latest: Mutex<Latest>,
    hub: Hub<Message, TopicFilter>,
    pub counters: Arc<Counters>,
    forwarding: bool,
    pub beacons: BeaconTable,
    pub beacon_config: BeaconConfig,
    /// This node's beacon, while set; the beacon task publishes it.
    /// This node's beacon, encoded once when set, while set.
    own_beacon: Mutex<Option<Vec<u8>>>,
    pub beacon_changed: tokio::sync::Notify,
    /// The secured multicast path, if configured.
    pub multicast: std::sync::OnceLock<Arc<super::multicast::MulticastPath>>,
    /// The node's bandwidth budgets (a datagram they have no room for is dropped).
    throttle: Arc<crate::bandwidth::Throttle>,
    /// Datagrams handled, told after each, so tests wait on it, not on time.
    #[cfg(test)]
    pub handled: (AtomicU64, tokio::sync::Notify),
}

impl Ephemeral {
    pub fn new(
        me: NodeId,
        key: iroh::SecretKey,
        forwarding: bool,
        latest_capacity: usize,
        subscription_capacity: usize,
        beacon_config: BeaconConfig,
        throttle: Arc<crate::bandwidth::Throttle>,
    ) -> Ephemeral {
        // Numbers start at the clock times 2^20 (see `window`).
        let start = (unix_ms() / 1000) << 20;
        Ephemeral {
            me,
            key,
            next_seq: AtomicU64::new(start),
            peers: Mutex::new(HashMap::new()),
            seen: Mutex::new(Windows::new(WINDOW_ORIGINS)),
            latest: Mutex::new(Latest::new(latest_capacity)),
            hub: Hub::new(subscription_capacity),
            counters: Arc::new(Counters::default()),
            forwarding,
            beacons: BeaconTable::new(beacon_config.table_capacity, subscription_capacity),
            beacon_config,
            own_beacon: Mutex::new(None),
            beacon_changed: tokio::sync::Notify::new(),
            multicast: std::sync::OnceLock::new(),
            throttle,
            #[cfg(test)]
            handled: Default::default(),
        }
    }

    /// A connection speaking the ephemeral protocol came up.
    pub fn attach(&self, conn: Arc<Admitted>) {
        let now = Instant::now();
        self.peers.locked().insert(
            conn.peer(),
            Peer {
                conn,
                verify: Bucket::new(VERIFY_PER_SEC, now),
                forward: Bucket::new(FORWARD_PER_SEC, now),
                space: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            },
        );
    }

    /// It went down (a newer connection to the same peer stays).
    pub fn detach(&self, conn: &Arc<Admitted>) {
        let mut peers = self.peers.locked();
        if peers
            .get(&conn.peer())
            .is_some_and(|p| Arc::ptr_eq(&p.conn, conn))
        {
            peers.remove(&conn.peer());
        }
    }

    /// The counters (lock-free: safe to poll while messages flow).
    pub fn stats(&self) -> EphemeralStats {
        self.counters.snapshot()
    }

    /// Publishes an application message.
    pub fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        json: bool,
        opts: PublishOptions,
    ) -> Result<usize> {
        check_topic(topic)?;
        if topic.starts_with(RESERVED_PREFIX) {
            return Err(Error::InvalidArgument(format!(
                "topics starting with {RESERVED_PREFIX:?} are reserved for the node"
            )));
        }
        self.publish_raw(topic, payload, json, opts, false)
    }

    /// Publishes a message (reserved topics too); signed if it may be
    /// forwarded or `sign` asks. Returns the number of peers it went to.
    pub fn publish_raw(
        &self,
        topic: &str,
        payload: &[u8],
        json: bool,
        opts: PublishOptions,
        sign: bool,
    ) -> Result<usize> {
        let ttl_ms = u32::try_from(opts.ttl.as_millis()).unwrap_or(u32::MAX);
        let mut w = Wire {
            json,
            hops_left: opts.hop_limit,
            hops: 0,
            age_ms: 0,
            origin: *self.me.as_bytes(),
            seq: self.next_seq.fetch_add(1, Relaxed),
            sent_at_ms: unix_ms(),
            ttl_ms,
            topic: topic.to_string(),
            payload: payload.to_vec(),
            signature: None,
        };
        w.check()?;
        let multicast = self.multicast.get().filter(|_| opts.multicast);
        // The multicast path and forwarders need the origin's signature.
        if sign || opts.hop_limit > 0 || multicast.is_some() {
            w.sign(&self.key);
        }
        self.counters.published.fetch_add(1, Relaxed);
        let bytes = Bytes::from(w.encode());
        if let Some(m) = multicast {
            m.send(&bytes, &self.counters);
        }
        Ok(self.send(bytes, opts.priority, |_| true))
    }

    /// Sends one datagram in `class` to every peer `to` accepts; returns how
    /// many took it.
    pub fn send(
        &self,
        bytes: Bytes,
        class: crate::Priority,
        to: impl Fn(&NodeId) -> bool,
    ) -> usize {
        type Space = Arc<std::sync::atomic::AtomicUsize>;
        let conns: Vec<(NodeId, Arc<Admitted>, Space)> = self
            .peers
            .locked()
            .iter()
            .filter(|(id, _)| to(id))
            .map(|(id, p)| (*id, p.conn.clone(), p.space.clone()))
            .collect();
        let mut n = 0;
        for (id, c, space) in conns {
            let len = bytes.len();
            if !self.throttle.try_take_datagram(&id, class, len as u64) {
                continue;
            }
            let mut floor = space.load(Relaxed);
            if floor < len {
                floor = c.conn().datagram_send_buffer_space();
                if floor < len {
                    // QUIC makes room by dropping the oldest queued datagram.
                    self.counters.displaced.fetch_add(1, Relaxed);
                }
            }
            space.store(floor.saturating_sub(len), Relaxed);
            match c.conn().send_datagram(bytes.clone()) {
                Ok(()) => {
                    n += 1;
                    self.counters.sent.fetch_add(1, Relaxed);
                }
                Err(SendDatagramError::TooLarge) => {
                    self.counters.too_large_for_path.fetch_add(1, Relaxed);
                }
                Err(SendDatagramError::UnsupportedByPeer) | Err(SendDatagramError::Disabled) => {
                    self.counters.unsupported.fetch_add(1, Relaxed);
                }
                Err(_) => {} // the connection is going away
            }
        }
        n
    }

    /// Takes a datagram from `via`.
    pub fn receive(&self, bytes: &[u8], via: Via) {
        self.counters.received.fetch_add(1, Relaxed);
        match Wire::decode(bytes) {
            Ok(w) => self.accept(w, via),
            Err(e) => {
                self.counters.malformed.fetch_add(1, Relaxed);
                tracing::debug!(?via, error = %e, "ephemeral datagram dropped");
            }
        }
        #[cfg(test)]
        self.handled_one();
    }

    #[cfg(test)]
    pub fn handled_one(&self) {
        self.handled.0.fetch_add(1, Relaxed);
        self.handled.1.notify_waiters();
    }

    /// Takes a decoded message: who may say it, whether it is alive and new;
    /// then delivers and forwards it.
    pub fn accept(&self, w: Wire, via: Via) {
        let c = &self.counters;
        let now = Instant::now();
        if w.origin == *self.me.as_bytes() {
            c.duplicates.fetch_add(1, Relaxed);
            return;
        }
        // The origin as a node id: the connection's peer when the message
        // came straight from its publisher (no signature needed: QUIC
        // authenticated it), else parsed once by the signature check (parsing
        // a key decompresses a curve point, ~10 µs: never twice).
        let origin = match via {
            Via::Peer(p) if p.as_bytes() == &w.origin => p,
            _ => {
                if w.signature.is_none() {
                    c.unsigned.fetch_add(1, Relaxed);
                    return;
                }
                if let Via::Peer(p) = via {
                    let ok = self
                        .peers
                        .locked()
                        .get_mut(&p)
                        .is_some_and(|peer| peer.verify.take(now));
                    if !ok {
                        c.rate_limited.fetch_add(1, Relaxed);
                        return;
                    }
                }
                match w.verified_origin() {
                    Some(o) => o,
                    None => {
                        c.bad_signature.fetch_add(1, Relaxed);
                        return;
                    }
                }
            }
        };
        let Some(remaining) = w.remaining(Duration::ZERO) else {
            c.expired.fetch_add(1, Relaxed);
            return;
        };
        match self.seen.locked().check(&w.origin, w.seq) {
            Seen::New => {}
            Seen::Duplicate => {
                c.duplicates.fetch_add(1, Relaxed);
                return;
            }
            Seen::TooOld => {
                c.stale.fetch_add(1, Relaxed);
                return;
            }
        }
        self.deliver(&w, origin, via, now + remaining);
        if self.forwarding && w.hops_left > 0 && w.signature.is_some() {
            self.forward(w, origin, via, now);
        }
    }

    fn deliver(&self, w: &Wire, origin: NodeId, via: Via, expires_at: Instant) {
        if w.topic == BEACON_TOPIC {
            match crate::beacons::decode_beacon(&w.payload) {
                Ok((info, geohash)) => {
                    let b = Beacon {
                        node: origin,
                        info,
                        geohash,
                        timestamp_ms: w.sent_at_ms,
                        received_ms: unix_ms(),
                        hops: w.hops,
                    };
                    let ttl = expires_at.saturating_duration_since(Instant::now());
                    self.counters.delivered.fetch_add(1, Relaxed);
                    self.beacons.insert(b, ttl, Instant::now());
                }
                Err(e) => {
                    self.beacons.count_malformed();
                    self.counters.malformed.fetch_add(1, Relaxed);
                    tracing::debug!(peer = %origin.short(), error = %e, "beacon dropped");
                }
            }
            return;
        }
        if w.topic.starts_with(RESERVED_PREFIX) {
            self.counters.malformed.fetch_add(1, Relaxed);
            return;
        }
        let m = Message {
            origin,
            topic: w.topic.clone(),
            payload: Bytes::copy_from_slice(&w.payload),
            json: w.json,
            seq: w.seq,
            sent_at_ms: w.sent_at_ms,
            hops: w.hops,
            via,
            expires_at,
        };
        // Counted first: a subscriber that sees the message sees it counted.
        self.counters.delivered.fetch_add(1, Relaxed);
        self.latest.locked().put(&m, Instant::now(), &self.counters);
        self.hub.publish(&m, |f| f.matches(&m.topic));
    }

    fn forward(&self, mut w: Wire, origin: NodeId, via: Via, received: Instant) {
        if let Via::Peer(p) = via {
            let ok = self
                .peers
                .locked()
                .get_mut(&p)
                .is_some_and(|peer| peer.forward.take(received));
            if !ok {
                self.counters.forward_limited.fetch_add(1, Relaxed);
                return;
            }
        }
        w.hops_left -= 1;
        w.hops += 1;
        let held = received.elapsed().as_millis() as u32;
        w.age_ms = w.age_ms.saturating_add(held);
        if w.remaining(Duration::ZERO).is_none() {
            return;
        }
        let from = match via {
            Via::Peer(p) => Some(p),
            Via::Multicast => None,
        };
        let class = PublishOptions::default().priority;
        let n = self.send(Bytes::from(w.encode()), class, |id| {
            *id != origin && Some(*id) != from
        });
        if n > 0 {
            self.counters.forwarded.fetch_add(1, Relaxed);
        }
    }

    /// Subscribes to topics.
    pub fn subscribe(&self, filter: &str, latest_only: bool) -> Result<TopicSubscription> {
        let f = TopicFilter::parse(filter)?;
        let coalesce =
            latest_only.then_some(same_origin_and_topic as fn(&Message, &Message) -> bool);
        Ok(TopicSubscription {
            inner: self.hub.subscribe_with(f, coalesce),
            counters: self.counters.clone(),
        })
    }

    /// The latest live message of each origin and topic the filter takes.
    pub fn latest(&self, filter: &str) -> Result<Vec<Message>> {
        let f = TopicFilter::parse(filter)?;
        Ok(self
            .latest
            .locked()
            .matching(&f, Instant::now(), &self.counters))
    }

    pub fn subscription_count(&self) -> usize {
        self.hub.len() + self.beacons.hub.len()
    }

    pub fn queued_events(&self) -> usize {
        self.hub.queued() + self.beacons.hub.queued()
    }

    pub fn close_subscriptions(&self) {
        self.hub.close_all();
        self.beacons.hub.close_all();
    }

    /// Publishes this node's beacon now, if set.
    /// Sets (checked and encoded now) or clears this node's beacon, and has
    /// the beacon task send it at once.
    pub fn set_beacon(&self, info: Option<&BeaconInfo>) -> Result<()> {
        let payload = match info {
            Some(i) => Some(crate::beacons::encode_beacon(i, self.beacon_config.precision)?.0),
            None => None,
        };
        let set = payload.is_some();
        *self.own_beacon.locked() = payload;
        if set {
            self.beacon_changed.notify_one();
        }
        Ok(())
    }

    pub fn send_beacon(&self) -> Result<()> {
        let Some(payload) = self.own_beacon.locked().clone() else {
            return Ok(());
        };
        let opts = PublishOptions {
            ttl: self.beacon_config.ttl,
            hop_limit: self.beacon_config.hop_limit,
            multicast: true,
            ..PublishOptions::default()
        };
        self.publish_raw(BEACON_TOPIC, &payload, false, opts, true)?;
        Ok(())
    }
}

/// The node's beacon task: sends its beacon every interval (at once when it
/// changes) and sweeps expired beacons from the table, until cancelled.
pub(crate) async fn run_beacons(e: Arc<Ephemeral>, cancel: tokio_util::sync::CancellationToken) {
    let interval = e.beacon_config.interval;
    let mut next_send = Instant::now() + interval;
    loop {
        let next_sweep = e.beacons.sweep(Instant::now());
        let wake = next_sweep.map_or(next_send, |s| s.min(next_send));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = e.beacon_changed.notified() => {
                if let Err(err) = e.send_beacon() {
                    tracing::warn!(error = %err, "beacon not sent");
                }
                next_send = Instant::now() + interval;
            }
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= next_send {
                    if let Err(err) = e.send_beacon() {
                        tracing::warn!(error = %err, "beacon not sent");
                    }
                    next_send = Instant::now() + interval;
                }
            }
        }
    }
}

/// Reads the multicast socket until cancelled: each datagram opened and
/// checked by the path, then taken like a peer's.
pub(crate) async fn run_multicast(
    e: Arc<Ephemeral>,
    path: Arc<super::multicast::MulticastPath>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut buf = vec![0u8; super::seal::MAX_SEALED + 1];
    loop {
        let n = tokio::select! {
            _ = cancel.cancelled() => return,
            r = path.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(err) => {
                    tracing::debug!(error = %err, "multicast receive failed");
                    // e.g. an ICMP error from an earlier send; go on
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if let Some(w) = path.open_datagram(&buf[..n], &e.counters) {
            e.accept(w, Via::Multicast);
        }
        #[cfg(test)]
        e.handled_one();
    }
}

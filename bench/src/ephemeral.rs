//! `ephemeral` and `beacons`: the fast path beside the documents.
//!
//! - ephemeral: messages/s A→B of 100-byte payloads over QUIC datagrams
//!   (hop limit 0: not signed; and hop limit 1: signed), counted as B's
//!   subscriber reads them, and publish-to-
//!   receive latency p50/p99 (one at a time, A publishes, B's subscription
//!   yields it). Baseline: the same datagrams (same size) between two bare
//!   iroh endpoints, and the same one-way timing on them.
//! - beacons: 10,000 beacons in a table; radius query time (1 km and 10 km
//!   around random points of the region) against a brute-force scan of the
//!   same positions (the baseline), and memory per beacon measured in a child
//!   process (RSS growth over 100,000 beacons) against a plain map of the
//!   same beacons without the indexes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use iroh::endpoint::VarInt;
use peat_mesh::{Event, PublishOptions};

use crate::baseline::{endpoint, ratio_rate, ratio_time};
use crate::{open, pct, Out, Size};

const PAYLOAD: usize = 100;
/// An ephemeral datagram of a 100-byte payload on topic "pos/bench"
/// (header 61 + topic 9 + length 2), unsigned.
const DATAGRAM: usize = 61 + 9 + 2 + PAYLOAD;

pub(crate) async fn ephemeral(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(200_000, 5_000);
    let (a, _da) = open().await?;
    let (b, _db) = open().await?;
    b.connect(&a.peer_addr()).await?;
    let payload = [7u8; PAYLOAD];
    let (tally, counting) = tally_messages(&b, "pos/bench")?;
    for (label, hop_limit) in [("direct", 0u8), ("signed", 1)] {
        let opts = PublishOptions {
            ttl: Duration::from_secs(30),
            hop_limit,
            multicast: false,
            ..Default::default()
        };
        let (got, took) = windowed(n, WINDOW, &tally, |k| {
            for _ in 0..k {
                a.publish("pos/bench", &payload, opts)?;
            }
            Ok(())
        })
        .await?;
        let rate = got as f64 / took.as_secs_f64();
        out.fig("ephemeral", &format!("{label} 100 B msgs/s"), rate, "msg/s");
        out.fig(
            "ephemeral",
            &format!("{label} delivered of {n}"),
            100.0 * got as f64 / n as f64,
            "%",
        );
        if hop_limit == 0 {
            let base = raw_datagrams(n).await?;
            out.fig(
                "ephemeral",
                "raw iroh datagrams/s (baseline)",
                base,
                "msg/s",
            );
            ratio_rate(out, "ephemeral", "direct msgs/s", rate, base);
        }
    }
    counting.abort();
    multicast(out, size).await?;
    // Latency, one message at a time.
    let sub = b.subscribe_topic("lat/*", false)?;
    let samples = size.n(5_000, 300);
    let mut times = Vec::with_capacity(samples);
    let direct = PublishOptions {
        ttl: Duration::from_secs(5),
        hop_limit: 0,
        ..Default::default()
    };
    for i in 0..samples {
        let t = Instant::now();
        a.publish("lat/x", &(i as u64).to_le_bytes(), direct)?;
        loop {
            match sub.next_timeout(Duration::from_secs(1)).await? {
                Some(Event::Item(m)) if m.payload[..] == (i as u64).to_le_bytes() => break,
                Some(_) => continue,
                // lost: publish again (a datagram may be dropped)
                None => {
                    a.publish("lat/x", &(i as u64).to_le_bytes(), direct)?;
                }
            }
        }
        times.push(t.elapsed());
    }
    times.sort();
    let base = raw_one_way(samples).await?;
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        out.fig(
            "ephemeral",
            &format!("publish->receive {name}"),
            pct(&times, p),
            "ms",
        );
        out.fig(
            "ephemeral",
            &format!("raw datagram one-way {name} (baseline)"),
            pct(&base, p),
            "ms",
        );
        ratio_time(out, "ephemeral", name, pct(&times, p), pct(&base, p));
    }
    for n in [a, b] {
        n.close(Duration::from_secs(5)).await?;
    }
    Ok(())
}

/// Two nodes with no connection, on the secured multicast path over
/// 127.0.0.1 (group 239.255.77.2): messages/s delivered, against plain UDP
/// datagrams of the sealed size to the same kind of group (the baseline).
async fn multicast(out: &Out, size: &Size) -> Result<()> {
    use peat_mesh::ephemeral::MulticastConfig;
    use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
    let n = size.n(50_000, 2_000);
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 2), port);
    let open_mc = || async {
        let dir = tempfile::tempdir()?;
        let cfg = peat_mesh::NodeConfig::new(dir.path(), crate::formation())
            .listen("127.0.0.1:0".parse()?)
            .multicast(MulticastConfig::new(group, Ipv4Addr::LOCALHOST));
        Ok::<_, anyhow::Error>((peat_mesh::Node::open(cfg).await?, dir))
    };
    let (a, _da) = open_mc().await?;
    let (b, _db) = open_mc().await?;
    let payload = [7u8; PAYLOAD];
    let opts = PublishOptions {
        ttl: Duration::from_secs(30),
        hop_limit: 0,
        multicast: true,
        ..Default::default()
    };
    let (tally, counting) = tally_messages(&b, "pos/bench")?;
    let (got, took) = windowed(n, MULTICAST_WINDOW, &tally, |k| {
        for _ in 0..k {
            a.publish("pos/bench", &payload, opts)?;
        }
        Ok(())
    })
    .await?;
    let rate = got as f64 / took.as_secs_f64();
    out.fig("ephemeral", "multicast 100 B msgs/s", rate, "msg/s");
    out.fig(
        "ephemeral",
        &format!("multicast delivered of {n}"),
        100.0 * got as f64 / n as f64,
        "%",
    );
    counting.abort();
    for node in [a, b] {
        node.close(Duration::from_secs(5)).await?;
    }
    // Baseline: plain datagrams of the sealed size (header 69 + signed
    // message + AEAD tag 16) through a group on the loopback interface.
    let base_group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 3), port);
    let rx = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
    rx.join_multicast_v4(base_group.ip(), &Ipv4Addr::LOCALHOST)?;
    rx.set_nonblocking(true)?;
    let rx = tokio::net::UdpSocket::from_std(rx)?;
    // Out of the loopback interface only (never the default route's).
    let tx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    tx.bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())?;
    tx.set_multicast_if_v4(&Ipv4Addr::LOCALHOST)?;
    let tx: std::net::UdpSocket = tx.into();
    let counter = Arc::new(Tally::default());
    let reader = tokio::spawn({
        let counter = counter.clone();
        async move {
            let mut buf = [0u8; 2048];
            while rx.recv_from(&mut buf).await.is_ok() {
                counter.add();
            }
        }
    });
    let d = vec![7u8; 69 + DATAGRAM + 64 + 16];
    let (bgot, btook) = windowed(n, MULTICAST_WINDOW, &counter, |k| {
        for _ in 0..k {
            tx.send_to(&d, base_group)?;
        }
        Ok(())
    })
    .await?;
    reader.abort();
    let base = bgot as f64 / btook.as_secs_f64();
    out.fig(
        "ephemeral",
        "plain UDP multicast msgs/s (baseline)",
        base,
        "msg/s",
    );
    ratio_rate(out, "ephemeral", "multicast msgs/s", rate, base);
    Ok(())
}

/// Messages in flight at once: the sender sends a window, then waits until
/// the receiver has it (or nothing more arrives for 20 ms: the rest was
/// lost) before the next. Datagrams have no flow control, so a sender that
/// outruns the path only measures loss; the same window for the baseline.
const WINDOW: usize = 1_000;
/// The window on the multicast path: a socket's default receive buffer
/// (~200 KB) holds ~150 sealed datagrams of ~1.2 KB.
const MULTICAST_WINDOW: usize = 100;

/// What a receiver counted, and a wake-up for the waiting sender (so that
/// nobody spins on a counter while the receiver needs the CPU).
#[derive(Default)]
struct Tally {
    count: std::sync::atomic::AtomicU64,
    changed: tokio::sync::Notify,
}

impl Tally {
    fn add(&self) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.changed.notify_one();
    }

    fn get(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Counts, in a task, what a node's subscription to `topic` delivers (as an
/// application reads it).
fn tally_messages(
    node: &peat_mesh::Node,
    topic: &str,
) -> Result<(Arc<Tally>, tokio::task::JoinHandle<()>)> {
    let sub = node.subscribe_topic(topic, false)?;
    let tally = Arc::new(Tally::default());
    let t = tally.clone();
    let task = tokio::spawn(async move {
        while let Some(ev) = sub.next().await {
            if let Event::Item(_) = ev {
                t.add();
            }
        }
    });
    Ok((tally, task))
}

/// Sends `n` in windows of `window` with `send(k)`; the number `tally` counted arrived,
/// and the time it all took.
async fn windowed(
    n: usize,
    window: usize,
    tally: &Tally,
    mut send: impl FnMut(usize) -> Result<()>,
) -> Result<(u64, Duration)> {
    let start = tally.get();
    let t = Instant::now();
    let mut sent = 0usize;
    while sent < n {
        let k = window.min(n - sent);
        send(k)?;
        sent += k;
        loop {
            let notified = tally.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if tally.get() - start >= sent as u64 {
                break;
            }
            if tokio::time::timeout(Duration::from_millis(20), notified)
                .await
                .is_err()
            {
                break;
            }
        }
    }
    Ok((tally.get() - start, t.elapsed()))
}

const ALPN: &[u8] = b"peat-bench/raw/1";

async fn raw_pair() -> Result<(
    iroh::Endpoint,
    iroh::Endpoint,
    iroh::endpoint::Connection,
    iroh::endpoint::Connection,
)> {
    let a = endpoint().await?;
    let b = endpoint().await?;
    let addr = iroh::EndpointAddr::from_parts(
        a.id(),
        a.bound_sockets().into_iter().map(iroh::TransportAddr::Ip),
    );
    let accept = tokio::spawn({
        let a = a.clone();
        async move {
            let conn = a.accept().await.context("no connection")?.await?;
            Ok::<_, anyhow::Error>(conn)
        }
    });
    let out = b.connect(addr, ALPN).await?;
    // The accepting side sees the connection once the dialler speaks.
    let (mut s, _r) = out.open_bi().await?;
    s.write_all(b"x").await?;
    let inbound = accept.await??;
    Ok((a, b, inbound, out))
}

/// Datagrams of the same size sent as fast as the bare connection takes them:
/// received per second.
async fn raw_datagrams(n: usize) -> Result<f64> {
    let (a, b, inbound, out) = raw_pair().await?;
    let counter = Arc::new(Tally::default());
    let reader = tokio::spawn({
        let counter = counter.clone();
        async move {
            while inbound.read_datagram().await.is_ok() {
                counter.add();
            }
        }
    });
    let d = Bytes::from(vec![7u8; DATAGRAM]);
    let (got, took) = windowed(n, WINDOW, &counter, |k| {
        for _ in 0..k {
            out.send_datagram(d.clone())?;
        }
        Ok(())
    })
    .await?;
    out.close(VarInt::from_u32(0), b"done");
    reader.abort();
    b.close().await;
    a.close().await;
    Ok(got as f64 / took.as_secs_f64())
}

/// One datagram at a time, the receiving task signalling through a channel
/// (as a subscription does); sorted times.
async fn raw_one_way(n: usize) -> Result<Vec<Duration>> {
    let (a, b, inbound, out) = raw_pair().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let reader = tokio::spawn(async move {
        while inbound.read_datagram().await.is_ok() {
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    let d = Bytes::from(vec![7u8; DATAGRAM]);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        out.send_datagram(d.clone())?;
        loop {
            match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                Ok(Some(())) => break,
                Ok(None) => bail!("receiver ended"),
                Err(_) => out.send_datagram(d.clone())?,
            }
        }
        times.push(t.elapsed());
    }
    times.sort();
    out.close(VarInt::from_u32(0), b"done");
    reader.abort();
    b.close().await;
    a.close().await;
    Ok(times)
}

/// A deterministic spread of points over a 100 km square near Stockholm.
fn points(n: usize) -> Vec<(f64, f64)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| (59.0 + 0.9 * next(), 17.5 + 1.8 * next()))
        .collect()
}

fn beacon(i: usize, lat: f64, lon: f64) -> peat_mesh::Beacon {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    peat_mesh::Beacon {
        node: peat_mesh::NodeId::from_bytes(iroh::SecretKey::from_bytes(&seed).public().as_bytes())
            .expect("a public key is a node id"),
        info: peat_mesh::BeaconInfo {
            role: "sensor".into(),
            capabilities: vec!["camera".into()],
            battery_pct: Some(80),
            ..peat_mesh::BeaconInfo::at(lat, lon)
        },
        geohash: peat_mesh::beacons::Cell::of(lat, lon, 7)
            .map(|c| c.to_hash())
            .unwrap_or_default(),
        timestamp_ms: 1,
        received_ms: 1,
        hops: 0,
    }
}

pub(crate) async fn beacons(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(10_000, 1_000);
    let table = peat_mesh::bench_support::BeaconTable::new(n, 16);
    let pts = points(n);
    let now = tokio::time::Instant::now();
    for (i, (lat, lon)) in pts.iter().enumerate() {
        table.insert(beacon(i, *lat, *lon), Duration::from_secs(3600), now);
    }
    let queries = points(size.n(2_000, 200));
    for radius in [1_000.0, 10_000.0] {
        let t = Instant::now();
        let mut found = 0usize;
        for (lat, lon) in &queries {
            found += table.near(*lat, *lon, radius, now)?.len();
        }
        let per = t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64;
        // the same answers by measuring every beacon
        let t = Instant::now();
        let mut brute = 0usize;
        for (lat, lon) in &queries {
            let mut hits: Vec<f64> = pts
                .iter()
                .map(|(a, b)| peat_mesh::beacons::distance_m(*lat, *lon, *a, *b))
                .filter(|d| *d <= radius)
                .collect();
            hits.sort_by(f64::total_cmp);
            brute += hits.len();
        }
        let base = t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64;
        if brute != found {
            bail!("the table found {found} beacons, a full scan {brute}");
        }
        let km = radius / 1000.0;
        out.fig(
            "beacons",
            &format!("radius {km} km query, {n} beacons"),
            per,
            "ms",
        );
        out.fig(
            "beacons",
            &format!("radius {km} km full scan (baseline)"),
            base,
            "ms",
        );
        ratio_time(out, "beacons", &format!("radius {km} km"), per, base);
        out.fig(
            "beacons",
            &format!("radius {km} km mean hits"),
            found as f64 / queries.len() as f64,
            "beacons",
        );
    }
    let count = size.n(100_000, 10_000);
    let child = |what: &str| -> Result<f64> {
        let o = std::process::Command::new(std::env::current_exe()?)
            .args(["__beacon-mem", what, &count.to_string()])
            .output()?;
        if !o.status.success() {
            bail!(
                "memory child failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8(o.stdout)?.trim().parse()?)
    };
    let table_b = child("table")?;
    let map_b = child("map")?;
    out.fig("beacons", "memory per beacon in the table", table_b, "B");
    out.fig(
        "beacons",
        "memory per beacon in a plain map (baseline)",
        map_b,
        "B",
    );
    ratio_time(out, "beacons", "memory per beacon", table_b, map_b);
    Ok(())
}

/// Child of [`beacons`]: `__beacon-mem table|map N` prints the RSS growth per
/// beacon of N beacons kept in the table, or in a plain map without indexes.
pub(crate) fn beacon_mem_child(args: &[String]) -> Result<()> {
    let what = args.first().context("table|map")?.clone();
    let n: usize = args.get(1).context("N")?.parse()?;
    let pts = points(n);
    let now = tokio::time::Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _g = rt.enter();
    let table = peat_mesh::bench_support::BeaconTable::new(n, 16);
    let mut map = std::collections::HashMap::new();
    let rss_before = crate::rss_kib("VmRSS:");
    // Each beacon is made as it is kept, so its strings count too.
    for (i, (lat, lon)) in pts.iter().enumerate() {
        let b = beacon(i, *lat, *lon);
        if what == "table" {
            table.insert(b, Duration::from_secs(3600), now);
        } else {
            map.insert(b.node, b);
        }
    }
    let after = crate::rss_kib("VmRSS:");
    println!("{}", (after - rss_before) * 1024.0 / n as f64);
    std::hint::black_box((&table, &map));
    Ok(())
}

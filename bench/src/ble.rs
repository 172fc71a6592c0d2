//! `ble`: the BLE link over the in-process radio double (this machine has no
//! Bluetooth radio): MTU 185, 100 kB/s each way, 7.5 ms one-way latency.
//!
//! - documents of ~200 B pushed live A→B: per second, and bytes on the air
//!   per document;
//! - a 1 MiB blob A→B: throughput; baseline: the same number of bytes sent as
//!   raw GATT fragments over a connection of the same double, measured in the
//!   same run (the limit any protocol over that radio has; nominally
//!   100 kB/s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use peat_mesh::blobs::FetchOptions;
use peat_mesh::links::PacePolicy;
use peat_mesh::{Node, NodeConfig};
use peat_mesh_ble::ble_link;
use peat_mesh_ble::double::{Air, AirConfig};
use tempfile::TempDir;

use crate::{baseline, doc_body, formation, wait_until, Out, Size};

async fn open(air: &Air, addr: [u8; 6]) -> Result<(Node, TempDir)> {
    let dir = tempfile::tempdir()?;
    let radio: Arc<dyn peat_mesh_ble::Radio> = air.radio(addr)?;
    let (link, _handle) = ble_link("ble", radio)?;
    let mut cfg = NodeConfig::new(dir.path(), formation())
        .link(link)
        .pace(PacePolicy::default());
    cfg.udp = false;
    Ok((Node::open(cfg).await?, dir))
}

pub(crate) async fn ble(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(300, 50);
    let config = AirConfig::default();
    let air = Air::new(config);
    let (a, _da) = open(&air, [2, 0, 0, 0, 0, 0xa1]).await?;
    let (b, _db) = open(&air, [2, 0, 0, 0, 0, 0xb2]).await?;
    b.connect(&a.peer_addr()).await?;

    let before = air.stats().delivered_bytes;
    let t = Instant::now();
    for i in 0..n {
        a.put("ble", &format!("doc-{i:04}"), &doc_body(i)).await?;
    }
    wait_until(Duration::from_secs(300), || {
        Ok(b.document_count()? as usize >= n)
    })
    .await?;
    let secs = t.elapsed().as_secs_f64();
    let air_bytes = (air.stats().delivered_bytes - before) as f64;
    out.fig(
        "ble",
        &format!("{n} docs pushed live: docs/s"),
        n as f64 / secs,
        "/s",
    );
    out.fig(
        "ble",
        "air bytes per doc (both ways)",
        air_bytes / n as f64,
        "B",
    );

    let blob = vec![0x5a; size.n(1 << 20, 256 << 10)];
    let info = a.blobs().add_bytes(blob.clone()).await?;
    let t = Instant::now();
    let got = b
        .blobs()
        .fetch(
            info.hash,
            FetchOptions {
                providers: vec![a.id()],
                ..FetchOptions::default()
            },
        )
        .wait()
        .await?;
    anyhow::ensure!(got.size == blob.len() as u64, "blob size");
    let rate = blob.len() as f64 / t.elapsed().as_secs_f64() / 1000.0;
    let radio = raw_rate(config, blob.len()).await?;
    out.fig(
        "ble",
        &format!("{} KiB blob: throughput", blob.len() >> 10),
        rate,
        "kB/s",
    );
    out.fig(
        "ble",
        "raw GATT fragments on the same radio (baseline)",
        radio,
        "kB/s",
    );
    baseline::ratio_rate(out, "ble", "blob throughput", rate, radio);
    a.close(Duration::from_secs(5)).await?;
    b.close(Duration::from_secs(5)).await?;
    Ok(())
}

/// kB/s of `bytes` sent as full-size fragments over one connection of a
/// fresh air with `config`: the radio's own limit.
async fn raw_rate(config: AirConfig, bytes: usize) -> Result<f64> {
    let air = Air::new(config);
    let (a, b) = (
        air.radio([2, 0, 0, 0, 0, 1])?,
        air.radio([2, 0, 0, 0, 0, 2])?,
    );
    let mut incoming = peat_mesh_ble::Radio::take_incoming(&*b).context("incoming")?;
    let conn = peat_mesh_ble::Radio::connect(&*a, [2, 0, 0, 0, 0, 2]).await?;
    let mut far = incoming.recv().await.context("accepted")?;
    let fragment = bytes::Bytes::from(vec![0u8; config.mtu - 3]);
    let t = Instant::now();
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < bytes {
            match far.inc.recv().await {
                Some(f) => got += f.len(),
                None => break,
            }
        }
        got
    });
    let mut sent = 0;
    while sent < bytes {
        conn.out.send(fragment.clone()).await?;
        sent += fragment.len();
    }
    let got = reader.await?;
    anyhow::ensure!(got >= bytes, "the double delivered {got} of {bytes} bytes");
    Ok(got as f64 / t.elapsed().as_secs_f64() / 1000.0)
}

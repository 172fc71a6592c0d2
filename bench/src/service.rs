//! The node as a service (issue 19).
//!
//! `http`: GET of one document and durable PUTs through the HTTP API, loaded
//! by `wrk` (Debian's package, a separate process on loopback, 2 threads, 64
//! connections, a bearer token on every request). Baselines in the same
//! run: `wrk` on the health route (the HTTP stack's ceiling on this machine,
//! no store), and the same reads and writes through the library in process
//! (`get_json`, and `put` from 64 concurrent tasks).
//!
//! `ws-fanout`: 100 WebSocket clients subscribed to one collection, 1,000
//! updates written on the node; the latency from the write call to each
//! client's receipt. Baseline: the same updates to 100 in-process library
//! subscriptions.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use peat_mesh::Event;
use peat_mesh_service::auth::hash_token;
use peat_mesh_service::{Layer, Service, Settings};
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{pct, Out, Size};

const TOKEN: &str = "bench-token-0123456789";

async fn start(dir: &std::path::Path) -> Result<Service> {
    let text = format!(
        "data_dir = {:?}\nformation = \"bench\"\nlisten = \"127.0.0.1:0\"\n[http]\nbind = \"127.0.0.1:0\"\n[[http.tokens]]\nname = \"bench\"\nsha256 = \"{}\"\nscopes = [\"read\", \"write\"]\n",
        dir.display().to_string(),
        hash_token(TOKEN)
    );
    let env = Layer::from_env([("PEAT_SECRET".to_string(), "05".repeat(32))])?;
    let s = Settings::resolve(Layer::from_toml(&text)?.merge(env))?;
    Ok(Service::start(&s).await?)
}

/// What `wrk --latency` reported.
struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn ms(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, scale) = if let Some(v) = t.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = t.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

/// Runs wrk against `url` for `secs`, with an optional Lua `script`.
fn wrk(url: &str, secs: u64, script: Option<&std::path::Path>) -> Result<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c64", &format!("-d{secs}s"), "--latency"])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(url)
        .output()
        .context("running wrk (Debian package `wrk`)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "wrk failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("wrk saw failed requests:\n{text}");
    }
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.trim().parse().ok())
        .context("wrk printed no Requests/sec")?;
    let p50_ms = field("50%").and_then(ms).context("no 50% latency")?;
    let p99_ms = field("99%").and_then(ms).context("no 99% latency")?;
    Ok(Wrk {
        rps,
        p50_ms,
        p99_ms,
    })
}

pub(crate) async fn http(out: &Out, size: &Size) -> Result<()> {
    let secs = size.n(5, 1) as u64;
    let dir = tempfile::tempdir()?;
    let svc = start(dir.path()).await?;
    let node = svc.node().clone();
    let base = format!("http://{}", svc.http_addr());
    for i in 0..1000 {
        node.put(
            "bench",
            &format!("d{i}"),
            &json!({"n": i, "callsign": "ALPHA", "pos": [1.5, 2.5]}),
        )
        .await?;
    }
    let health = tokio::task::block_in_place(|| wrk(&format!("{base}/api/v1/health"), secs, None))?;
    out.fig(
        "http",
        "health GET/s (HTTP ceiling, baseline)",
        health.rps,
        "req/s",
    );
    let get = tokio::task::block_in_place(|| {
        wrk(
            &format!("{base}/api/v1/collections/bench/documents/d42"),
            secs,
            None,
        )
    })?;
    out.fig("http", "document GET/s", get.rps, "req/s");
    out.fig("http", "document GET p50", get.p50_ms, "ms");
    out.fig("http", "document GET p99", get.p99_ms, "ms");
    out.fig("http", "GET vs health route", get.rps / health.rps, "ratio");
    // the library in process: one read per call, on two tasks
    let reads = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (node, reads) = (node.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                for _ in 0..256 {
                    let _ = node.get_json("bench", "d42");
                }
                reads.fetch_add(256, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let lib_reads = reads.load(Ordering::Relaxed) as f64 / secs as f64;
    out.fig("http", "library get_json/s (baseline)", lib_reads, "ops/s");

    let script = dir.path().join("put.lua");
    // Headers given to wrk.format replace -H ones: the token goes here too.
    // Each wrk thread has its own Lua state: ids carry the thread's number.
    std::fs::write(
        &script,
        format!("local threads = 0\nsetup = function(thread)\n  threads = threads + 1\n  thread:set(\"tid\", threads)\nend\ncounter = 0\nrequest = function()\n  counter = counter + 1\n  local path = \"/api/v1/collections/puts/documents/t\" .. tid .. \"-\" .. counter\n  return wrk.format(\"PUT\", path, {{[\"Content-Type\"] = \"application/json\", [\"Authorization\"] = \"Bearer {TOKEN}\"}}, '{{\"n\":' .. counter .. ',\"callsign\":\"ALPHA\"}}')\nend\n"),
    )?;
    let before = node.document_count()?;
    let put = tokio::task::block_in_place(|| wrk(&base, secs, Some(&script)))?;
    out.fig("http", "durable PUT/s", put.rps, "req/s");
    out.fig("http", "PUT p50", put.p50_ms, "ms");
    out.fig("http", "PUT p99", put.p99_ms, "ms");
    let stored = node.document_count()? - before;
    // every acknowledged PUT is a distinct document, stored
    if (stored as f64) < put.rps * secs as f64 * 0.95 {
        bail!(
            "{stored} documents stored for {} PUTs/s over {secs} s",
            put.rps
        );
    }
    // the library in process: 64 concurrent writers
    let writes = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..64 {
        let (node, writes) = (node.clone(), writes.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < stop_at {
                i += 1;
                if node
                    .put(
                        "libputs",
                        &format!("w{w}-{i}"),
                        &json!({"n": i, "callsign": "ALPHA"}),
                    )
                    .await
                    .is_ok()
                {
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let lib_puts = writes.load(Ordering::Relaxed) as f64 / secs as f64;
    out.fig(
        "http",
        "library put/s, 64 tasks (baseline)",
        lib_puts,
        "ops/s",
    );
    out.fig(
        "http",
        "HTTP PUT vs library put",
        put.rps / lib_puts,
        "ratio",
    );
    svc.shutdown(Duration::from_secs(10)).await?;
    Ok(())
}

/// The parts of a WebSocket message the fan-out reads.
#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    value: Option<Stamp>,
    missed: Option<u64>,
}

#[derive(Deserialize)]
struct Stamp {
    t: u64,
}

pub(crate) async fn ws_fanout(out: &Out, size: &Size) -> Result<()> {
    let clients = size.n(100, 20);
    let updates = size.n(1000, 100);
    let dir = tempfile::tempdir()?;
    let svc = start(dir.path()).await?;
    let node = svc.node().clone();
    let addr = svc.http_addr();
    let t0 = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..clients {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{addr}/api/v1/ws").into_client_request()?;
        req.headers_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse()?);
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await?;
        use futures_util::SinkExt;
        let sub = json!({"op": "subscribe", "sub": "fan", "collection": "fan"});
        ws.send(Message::Text(sub.to_string().into())).await?;
        // wait for "subscribed" so no update is missed
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("subscribed") => break,
                Some(Ok(_)) => continue,
                other => bail!("no subscribed reply: {other:?}"),
            }
        }
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(updates);
            let mut lagged = 0u64;
            while lat.len() + (lagged as usize) < updates {
                let Some(Ok(m)) = ws.next().await else { break };
                let Message::Text(t) = m else { continue };
                let at = t0.elapsed();
                // only the fields needed: the client's parse shares the cores
                let Ok(m) = serde_json::from_str::<Msg>(t.as_str()) else {
                    continue;
                };
                match m.kind {
                    "doc" => {
                        let sent = Duration::from_micros(m.value.map_or(0, |v| v.t));
                        lat.push(at.saturating_sub(sent));
                    }
                    "lagged" => lagged += m.missed.unwrap_or(0),
                    _ => {}
                }
            }
            (lat, lagged)
        }));
    }
    let writing = Instant::now();
    for i in 0..updates {
        let t = t0.elapsed().as_micros() as u64;
        node.put("fan", &format!("d{}", i % 10), &json!({"t": t, "i": i}))
            .await?;
    }
    let write_rate = updates as f64 / writing.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut lagged = 0;
    for r in readers {
        let (lat, l) = tokio::time::timeout(Duration::from_secs(60), r)
            .await
            .context("a client did not receive every update")??;
        all.extend(lat);
        lagged += l;
    }
    all.sort();
    out.fig(
        "ws-fanout",
        &format!("{clients} clients, deliveries"),
        all.len() as f64,
        "msgs",
    );
    out.fig(
        "ws-fanout",
        "updates written (durable, back to back)",
        write_rate,
        "updates/s",
    );
    out.fig(
        "ws-fanout",
        "lagged (dropped, reported)",
        lagged as f64,
        "msgs",
    );
    out.fig("ws-fanout", "delivery p50", pct(&all, 0.50), "ms");
    out.fig("ws-fanout", "delivery p99", pct(&all, 0.99), "ms");
    svc.shutdown(Duration::from_secs(10)).await?;

    // baseline: the same fan-out to in-process library subscriptions
    let (node, _dir) = crate::open().await?;
    let subs: Vec<_> = (0..clients)
        .map(|_| node.subscribe("fan", None, false))
        .collect::<peat_mesh::Result<_>>()?;
    let t0 = Instant::now();
    let mut readers = Vec::new();
    for sub in subs {
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(updates);
            while lat.len() < updates {
                match sub.next().await {
                    Some(Event::Item(ev)) => {
                        let at = t0.elapsed();
                        let t = ev.value.as_ref().and_then(|v| v["t"].as_u64()).unwrap_or(0);
                        lat.push(at.saturating_sub(Duration::from_micros(t)));
                    }
                    Some(Event::Lagged(n)) => lat.extend((0..n).map(|_| Duration::ZERO)),
                    None => break,
                }
            }
            lat
        }));
    }
    for i in 0..updates {
        let t = t0.elapsed().as_micros() as u64;
        node.put("fan", &format!("d{}", i % 10), &json!({"t": t, "i": i}))
            .await?;
    }
    let mut base = Vec::new();
    for r in readers {
        base.extend(r.await?);
    }
    base.sort();
    out.fig(
        "ws-fanout",
        "library subscriptions p99 (baseline)",
        pct(&base, 0.99),
        "ms",
    );
    node.close(Duration::from_secs(5)).await?;
    Ok(())
}

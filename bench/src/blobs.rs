//! Blob scenarios: `blob-add`, `blob-transfer`, `blob-resume`. The receiving node
//! runs in a child process (`peat-bench __blob-recv ...`) so that its peak
//! resident memory is its own.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use peat_mesh::blobs::{BlobHash, FetchOptions, TransferProfile};
use peat_mesh::{Node, NodeConfig, NodeId, PeerAddr};

use crate::{baseline, formation, open, Out, Size};

/// Writes `size` pseudo-random bytes (BLAKE3 output) to a file, streamed.
fn make_file(path: &std::path::Path, size: u64) -> Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut xof = blake3::Hasher::new().update(b"peat-bench").finalize_xof();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        xof.fill(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// Child side: `__blob-recv <memory|store> <id@addr> <hash> <dir> [rate]`.
pub fn recv_child(args: &[String]) -> Result<()> {
    let mode = args.first().context("mode")?.clone();
    let (id, addr) = args
        .get(1)
        .context("peer")?
        .split_once('@')
        .context("id@addr")?;
    let peer = PeerAddr::new(id.parse::<NodeId>()?, addr.parse()?);
    let hash: BlobHash = args.get(2).context("hash")?.parse()?;
    let dir = args.get(3).context("dir")?.clone();
    let rate: Option<u64> = args.get(4).map(|r| r.parse()).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let node =
            Node::open(NodeConfig::new(&dir, formation()).listen("127.0.0.1:0".parse()?)).await?;
        node.connect(&peer).await?;
        let t0 = Instant::now();
        let mut bytes = 0u64;
        if mode == "memory" {
            let mut s = node.blobs().stream(hash, peer.id);
            while let Some(piece) = s.next().await {
                bytes += piece?.len() as u64;
            }
        } else {
            let mut opts = FetchOptions::default()
                .from([peer.id])
                .profile(TransferProfile::DATACENTER);
            opts.rate_limit = rate;
            let t = node.blobs().fetch(hash, opts);
            let mut w = t.watch();
            let waiter = {
                let t = t.clone();
                tokio::spawn(async move { t.wait().await })
            };
            if mode == "store-progress" {
                while w.changed().await.is_ok() {
                    let p = w.borrow_and_update().clone();
                    println!("DONE {} {}", p.done, p.received);
                    if p.finished {
                        break;
                    }
                }
            }
            let info = waiter.await??;
            let p = t.progress();
            bytes = info.size;
            println!("RESUMED {} RECEIVED {}", p.resumed, p.received);
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "BYTES {bytes} SECS {secs} PEAK_KIB {}",
            crate::rss_kib("VmHWM:") as u64
        );
        node.close(Duration::from_secs(10)).await?;
        Ok::<_, anyhow::Error>(())
    })
}

fn spawn_recv(
    mode: &str,
    a: &Node,
    hash: BlobHash,
    dir: &std::path::Path,
    rate: Option<u64>,
) -> Result<Child> {
    let peer = a.peer_addr();
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("__blob-recv")
        .arg(mode)
        .arg(format!("{}@{}", peer.id, peer.addrs[0]))
        .arg(hash.to_string())
        .arg(dir);
    if let Some(r) = rate {
        cmd.arg(r.to_string());
    }
    Ok(cmd.stdout(Stdio::piped()).spawn()?)
}

/// Parses the child's `BYTES b SECS s PEAK_KIB k` line.
fn result_of(child: Child) -> Result<(u64, f64, u64)> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("receiver failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("BYTES "))
        .context("receiver printed no result")?;
    let f: Vec<&str> = line.split_whitespace().collect();
    Ok((f[1].parse()?, f[3].parse()?, f[5].parse()?))
}

pub async fn blob_add(out: &Out, size: &Size) -> Result<()> {
    let n = if size.small { 64 << 20 } else { 1 << 30 };
    let (a, dir) = open().await?;
    let src = dir.path().join("source.bin");
    make_file(&src, n)?;
    let t = Instant::now();
    let (hash, _) = a.blobs().hash_file(&src).await?;
    let secs = t.elapsed().as_secs_f64();
    let hash_rate = n as f64 / secs / 1e6;
    out.fig(
        "blob-add",
        &format!("hash {} MiB file (BLAKE3 + SHA-256)", n >> 20),
        hash_rate,
        "MB/s",
    );
    let t = Instant::now();
    let info = a.blobs().add_file(&src).await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(info.hash == hash);
    let import_rate = info.size as f64 / secs / 1e6;
    out.fig(
        "blob-add",
        &format!("import {} MiB file (BLAKE3+SHA-256, copy, fsync)", n >> 20),
        import_rate,
        "MB/s",
    );
    a.close(Duration::from_secs(10)).await?;
    let (b3, both, copy) = tokio::task::spawn_blocking(move || {
        Ok::<_, anyhow::Error>((
            baseline::blake3_file(&src)?,
            baseline::blake3_sha256_file(&src)?,
            baseline::copy_sync(&src)?,
        ))
    })
    .await??;
    out.fig(
        "blob-add",
        "plain BLAKE3, one thread (baseline)",
        b3,
        "MB/s",
    );
    out.fig(
        "blob-add",
        "plain BLAKE3 + SHA-256, two threads (baseline)",
        both,
        "MB/s",
    );
    out.fig(
        "blob-add",
        "copy the file + sync_all (baseline)",
        copy,
        "MB/s",
    );
    baseline::ratio_rate(out, "blob-add", "hash", hash_rate, both);
    baseline::ratio_rate(out, "blob-add", "import", import_rate, copy);
    drop(dir);
    Ok(())
}

pub async fn blob_transfer(out: &Out, size: &Size) -> Result<()> {
    let sizes: Vec<u64> = if size.small {
        vec![64 << 20]
    } else {
        vec![1 << 30, 4 << 30]
    };
    for n in sizes {
        let (a, dir) = open().await?;
        let src = dir.path().join("source.bin");
        make_file(&src, n)?;
        let info = a.blobs().add_file(&src).await?;
        std::fs::remove_file(&src)?;
        let label = if n >= 1 << 30 {
            format!("{} GiB", n >> 30)
        } else {
            format!("{} MiB", n >> 20)
        };
        let mut rates = Vec::new();
        for mode in ["memory", "store"] {
            let rdir = tempfile::tempdir()?;
            let child = spawn_recv(mode, &a, info.hash, rdir.path(), None)?;
            let (bytes, secs, peak) = result_of(child)?;
            let what = if mode == "memory" {
                "into memory (verified stream)"
            } else {
                "into the durable store"
            };
            rates.push((mode, bytes as f64 / secs / 1e6));
            out.fig(
                "blob-transfer",
                &format!("{label} A->B {what}"),
                bytes as f64 / secs / 1e6,
                "MB/s",
            );
            out.fig(
                "blob-transfer",
                &format!("{label} {mode}: receiver peak RSS"),
                peak as f64 / 1024.0,
                "MiB",
            );
        }
        a.close(Duration::from_secs(10)).await?;
        let raw = baseline::iroh_stream(n).await?;
        out.fig(
            "blob-transfer",
            &format!("{label} raw iroh stream A->B (baseline)"),
            raw,
            "MB/s",
        );
        for (mode, rate) in rates {
            baseline::ratio_rate(out, "blob-transfer", &format!("{label} {mode}"), rate, raw);
        }
    }
    Ok(())
}

pub async fn blob_resume(out: &Out, size: &Size) -> Result<()> {
    let n: u64 = if size.small { 64 << 20 } else { 512 << 20 };
    let (a, dir) = open().await?;
    let src = dir.path().join("source.bin");
    make_file(&src, n)?;
    let info = a.blobs().add_file(&src).await?;
    let rdir = tempfile::tempdir()?;
    // Full speed, killed just past half-way.
    let mut child = spawn_recv("store-progress", &a, info.hash, rdir.path(), None)?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut done = (0u64, 0u64);
    // Past half-way and inside a request (requests are 32 MiB), not between two.
    while done.0 < n / 2 + (3 << 20) {
        let line = lines.next().context("receiver ended early")??;
        if let Some(rest) = line.strip_prefix("DONE ") {
            let (d, r) = rest.split_once(' ').context("DONE line")?;
            done = (d.parse()?, r.parse()?);
        }
    }
    child.kill()?;
    child.wait()?;
    for line in lines.map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("DONE ") {
            let (d, r) = rest.split_once(' ').context("DONE line")?;
            done = (d.parse()?, r.parse()?);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let child = spawn_recv("store", &a, info.hash, rdir.path(), None)?;
    let output = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESUMED "))
        .context("no RESUMED line")?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let resumed: u64 = f[1].parse()?;
    let served = a.blobs().stats().bytes_served;
    out.fig(
        "blob-resume",
        "fetcher bytes lost at SIGKILL (received, not kept)",
        done.1.saturating_sub(resumed) as f64,
        "bytes",
    );
    out.fig(
        "blob-resume",
        "provider bytes sent twice (incl. QUIC in flight)",
        served.saturating_sub(n) as f64,
        "bytes",
    );
    out.fig(
        "blob-resume",
        "chunk size (datacenter profile)",
        TransferProfile::DATACENTER.chunk_size as f64,
        "bytes",
    );
    a.close(Duration::from_secs(10)).await?;
    Ok(())
}

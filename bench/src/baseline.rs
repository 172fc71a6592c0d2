//! In-run baselines: the work of a scenario done with the plain libraries, or
//! the machine's limit for it, measured in the same run. Absolute figures
//! differ 2–3× between machines of one kind; a figure divided by its baseline
//! travels better. Each prints as a figure whose metric ends in "(baseline)".
//!
//! Raw iroh endpoints are bound as the node binds its own: no relays, no
//! address lookup, one socket on 127.0.0.1, iroh's default QUIC settings (the
//! same 1.25 MB stream window the node uses).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use iroh::endpoint::{presets, Connection, VarInt};
use iroh::{Endpoint, EndpointAddr, EndpointId, TransportAddr};

use crate::{doc_body, Out};

const ALPN: &[u8] = b"peat-bench/raw/1";

/// Prints `figure ÷ baseline` (for times: how many times the baseline's
/// time the figure takes).
pub(crate) fn ratio_time(out: &Out, scenario: &str, what: &str, figure: f64, baseline: f64) {
    out.fig(
        scenario,
        &format!("{what} / baseline"),
        figure / baseline,
        "x",
    );
}

/// Prints `baseline ÷ figure` (for rates: how many times slower than the
/// baseline the figure is).
pub(crate) fn ratio_rate(out: &Out, scenario: &str, what: &str, figure: f64, baseline: f64) {
    out.fig(
        scenario,
        &format!("baseline / {what}"),
        baseline / figure,
        "x",
    );
}

/// A bare iroh endpoint on 127.0.0.1.
pub(crate) async fn endpoint() -> Result<Endpoint> {
    let listen: SocketAddr = "127.0.0.1:0".parse()?;
    Ok(Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr(listen)?
        .alpns(vec![ALPN.to_vec()])
        .bind()
        .await?)
}

fn addr_of(ep: &Endpoint) -> EndpointAddr {
    EndpointAddr::from_parts(
        ep.id(),
        ep.bound_sockets().into_iter().map(TransportAddr::Ip),
    )
}

/// Accepts connections on `ep`; for each bi-stream, reads the request to its
/// end and answers with `reply(request)`, then waits for the peer to close.
fn serve(ep: Endpoint, reply: fn(Vec<u8>) -> Vec<u8>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok((mut s, mut r)) = conn.accept_bi().await {
                    let Ok(req) = r.read_to_end(1 << 20).await else {
                        return;
                    };
                    if s.write_all(&reply(req)).await.is_err() || s.finish().is_err() {
                        return;
                    }
                }
            });
        }
    })
}

/// Connect plus one bi-stream round trip of a 32-byte message, `n` times,
/// between two bare endpoints; sorted times.
pub(crate) async fn iroh_connect(n: usize) -> Result<Vec<Duration>> {
    let a = endpoint().await?;
    let b = endpoint().await?;
    let addr = addr_of(&a);
    let server = serve(a.clone(), |req| req);
    let msg = [7u8; 32];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let conn = b.connect(addr.clone(), ALPN).await?;
        let (mut s, mut r) = conn.open_bi().await?;
        s.write_all(&msg).await?;
        s.finish()?;
        let echo = r.read_to_end(64).await?;
        times.push(t.elapsed());
        anyhow::ensure!(echo == msg, "echo differs");
        conn.close(VarInt::from_u32(0), b"done");
        conn.closed().await;
    }
    times.sort();
    b.close().await;
    a.close().await;
    server.abort();
    Ok(times)
}

/// One-way delivery of a 100-byte message from B to A over one open
/// bi-stream (the receiving task tells the sender through an in-process
/// channel, as a node's subscription does), `n` times; sorted times.
pub(crate) async fn iroh_one_way(n: usize) -> Result<Vec<Duration>> {
    const LEN: usize = 100;
    let a = endpoint().await?;
    let b = endpoint().await?;
    let addr = addr_of(&a);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let receiver = tokio::spawn({
        let a = a.clone();
        async move {
            let conn = a.accept().await.context("no connection")?.await?;
            let (_s, mut r) = conn.accept_bi().await?;
            let mut buf = [0u8; LEN];
            loop {
                if r.read_exact(&mut buf).await.is_err() {
                    return Ok::<_, anyhow::Error>(());
                }
                if tx.send(()).is_err() {
                    return Ok(());
                }
            }
        }
    });
    let conn = b.connect(addr, ALPN).await?;
    let (mut s, _r) = conn.open_bi().await?;
    let msg = [9u8; LEN];
    // The first message opens the stream on A's side; not timed.
    s.write_all(&msg).await?;
    rx.recv().await.context("receiver ended")?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&msg).await?;
        rx.recv().await.context("receiver ended")?;
        times.push(t.elapsed());
    }
    times.sort();
    s.finish()?;
    receiver.await??;
    conn.close(VarInt::from_u32(0), b"done");
    b.close().await;
    a.close().await;
    Ok(times)
}

/// Raw iroh stream throughput in MB/s: a child process (`__raw-recv`, as the
/// blob receiver is a child) dials a bare endpoint here, asks for `bytes`
/// on one bi-stream and discards them as they arrive.
pub(crate) async fn iroh_stream(bytes: u64) -> Result<f64> {
    let a = endpoint().await?;
    let server = tokio::spawn({
        let a = a.clone();
        async move {
            let conn = a.accept().await.context("no connection")?.await?;
            let (mut s, mut r) = conn.accept_bi().await?;
            let req = r.read_to_end(64).await?;
            let n = u64::from_le_bytes(req.as_slice().try_into()?);
            let mut piece = vec![0u8; 1 << 20];
            blake3::Hasher::new()
                .update(b"peat-bench raw")
                .finalize_xof()
                .fill(&mut piece);
            let mut left = n;
            while left > 0 {
                let k = left.min(piece.len() as u64) as usize;
                s.write_all(&piece[..k]).await?;
                left -= k as u64;
            }
            s.finish()?;
            conn.closed().await;
            Ok::<_, anyhow::Error>(())
        }
    });
    let addr = addr_of(&a);
    let sock = addr.ip_addrs().next().context("no address")?;
    let child = std::process::Command::new(std::env::current_exe()?)
        .arg("__raw-recv")
        .arg(format!("{}@{}", addr.id, sock))
        .arg(bytes.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    anyhow::ensure!(out.status.success(), "raw receiver failed: {}", out.status);
    server.await??;
    a.close().await;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    anyhow::ensure!(
        f.len() == 4 && f[0] == "BYTES",
        "raw receiver said {text:?}"
    );
    let (got, secs): (u64, f64) = (f[1].parse()?, f[3].parse()?);
    anyhow::ensure!(got == bytes, "raw receiver got {got} of {bytes} bytes");
    Ok(got as f64 / secs / 1e6)
}

/// Child side of [`iroh_stream`]: `__raw-recv <id@addr> <bytes>`.
pub(crate) fn raw_recv_child(args: &[String]) -> Result<()> {
    let (id, sock) = args
        .first()
        .context("peer")?
        .split_once('@')
        .context("id@addr")?;
    let id: EndpointId = id.parse()?;
    let sock: SocketAddr = sock.parse()?;
    let want: u64 = args.get(1).context("bytes")?.parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ep = endpoint().await?;
        let conn = ep
            .connect(
                EndpointAddr::from_parts(id, [TransportAddr::Ip(sock)]),
                ALPN,
            )
            .await?;
        let t0 = Instant::now();
        let (mut s, mut r) = conn.open_bi().await?;
        s.write_all(&want.to_le_bytes()).await?;
        s.finish()?;
        let mut got = 0u64;
        while let Some(chunk) = r.read_chunk(1 << 20).await? {
            got += chunk.len() as u64;
        }
        let secs = t0.elapsed().as_secs_f64();
        println!("BYTES {got} SECS {secs}");
        close(&conn);
        ep.close().await;
        Ok(())
    })
}

fn close(conn: &Connection) {
    conn.close(VarInt::from_u32(0), b"done");
}

/// The same `n` document bodies moved one document at a time between two
/// in-process Automerge documents with Automerge's own sync protocol (messages
/// encoded and decoded as over a wire). Building A's documents is not timed.
pub(crate) fn automerge_sync(n: usize) -> Result<Duration> {
    use peat_mesh::automerge::sync::{Message, State, SyncDoc};
    use peat_mesh::automerge::{transaction::Transactable, Automerge, ScalarValue, ROOT};
    let mut docs = Vec::with_capacity(n);
    for i in 0..n {
        let body = doc_body(i);
        let mut doc = Automerge::new();
        doc.transact::<_, _, peat_mesh::automerge::AutomergeError>(|tx| {
            for (k, v) in body.as_object().expect("object") {
                let v = match v {
                    serde_json::Value::String(s) => ScalarValue::Str(s.as_str().into()),
                    serde_json::Value::Number(x) => match x.as_i64() {
                        Some(i) => ScalarValue::Int(i),
                        None => ScalarValue::F64(x.as_f64().unwrap_or(0.0)),
                    },
                    _ => ScalarValue::Null,
                };
                tx.put(ROOT, k.as_str(), v)?;
            }
            Ok(())
        })
        .map_err(|f| f.error)?;
        docs.push(doc);
    }
    let t = Instant::now();
    let mut moved = 0;
    for a in &mut docs {
        let mut b = Automerge::new();
        let (mut sa, mut sb) = (State::new(), State::new());
        loop {
            let mut sent = false;
            if let Some(m) = a.generate_sync_message(&mut sa) {
                b.receive_sync_message(&mut sb, Message::decode(&m.encode())?)?;
                sent = true;
            }
            if let Some(m) = b.generate_sync_message(&mut sb) {
                a.receive_sync_message(&mut sa, Message::decode(&m.encode())?)?;
                sent = true;
            }
            if !sent {
                break;
            }
        }
        anyhow::ensure!(b.get_heads() == a.get_heads(), "sync did not converge");
        moved += 1;
    }
    let took = t.elapsed();
    anyhow::ensure!(moved == n);
    Ok(took)
}

/// The `n` document bodies (JSON, padded to 200 bytes) committed to a fresh
/// redb file in a temp dir, `batch` rows per transaction, each commit with
/// `Durability::Immediate`; rows/s, and the file (for [`redb_rewrite`] and
/// [`redb_reopen`]).
pub(crate) fn redb_batches(n: usize, batch: usize) -> Result<(f64, RedbFile)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("baseline.redb");
    let db = redb::Database::create(&path)?;
    let rows: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let mut v = serde_json::to_vec(&doc_body(i)).expect("json");
            v.resize(200, b' ');
            (format!("doc-{i:08}"), v)
        })
        .collect();
    let t = Instant::now();
    for chunk in rows.chunks(batch) {
        let mut tx = db.begin_write()?;
        tx.set_durability(redb::Durability::Immediate)?;
        {
            let mut table = tx.open_table(ROWS)?;
            for (k, v) in chunk {
                table.insert(k.as_str(), v.as_slice())?;
            }
        }
        tx.commit()?;
    }
    Ok((
        n as f64 / t.elapsed().as_secs_f64(),
        RedbFile { _dir: dir, path },
    ))
}

const ROWS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("docs");

/// A redb file written by [`redb_batches`], in a temp dir of its own.
pub(crate) struct RedbFile {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

/// What a node's close does to a bloated file, with redb alone: every row
/// copied into a fresh file in one durable transaction, renamed over the old
/// one, the directory synced.
pub(crate) fn redb_rewrite(f: &RedbFile) -> Result<Duration> {
    use redb::{ReadableDatabase, ReadableTable};
    let t = Instant::now();
    let db = redb::Database::open(&f.path)?;
    let tmp = f.path.with_extension("vacuum");
    {
        let fresh = redb::Database::create(&tmp)?;
        let read = db.begin_read()?;
        let src = read.open_table(ROWS)?;
        let write = fresh.begin_write()?;
        {
            let mut dst = write.open_table(ROWS)?;
            for row in src.iter()? {
                let (k, v) = row?;
                dst.insert(k.value(), v.value())?;
            }
        }
        write.commit()?;
    }
    drop(db);
    std::fs::rename(&tmp, &f.path)?;
    std::fs::File::open(f.path.parent().context("dir")?)?.sync_all()?;
    Ok(t.elapsed())
}

/// Opening the file with redb and counting its rows.
pub(crate) fn redb_reopen(f: &RedbFile) -> Result<Duration> {
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let t = Instant::now();
    let db = redb::Database::open(&f.path)?;
    let n = db.begin_read()?.open_table(ROWS)?.len()?;
    std::hint::black_box(n);
    Ok(t.elapsed())
}

/// fsyncs per second: a 64-byte write at the start of a file then
/// `sync_data`, repeated for `dur`, on the disk of the temp dir. Measured once
/// per process.
pub(crate) fn fsync_rate(dur: Duration) -> Result<f64> {
    static RATE: OnceLock<f64> = OnceLock::new();
    if let Some(r) = RATE.get() {
        return Ok(*r);
    }
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir()?;
    let f = std::fs::File::create(dir.path().join("fsync"))?;
    f.write_all_at(&[1u8; 4096], 0)?;
    f.sync_all()?;
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < dur {
        f.write_all_at(&n.to_le_bytes().repeat(8), 0)?;
        f.sync_data()?;
        n += 1;
    }
    let r = n as f64 / t.elapsed().as_secs_f64();
    Ok(*RATE.get_or_init(|| r))
}

/// Plain BLAKE3 (`Hasher::update`, one thread) over `path` read in 1 MiB
/// pieces; MB/s.
pub(crate) fn blake3_file(path: &std::path::Path) -> Result<f64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut h = blake3::Hasher::new();
    let mut total = 0u64;
    let t = Instant::now();
    loop {
        let k = read_full(&mut f, &mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        total += k as u64;
    }
    std::hint::black_box(h.finalize());
    Ok(total as f64 / t.elapsed().as_secs_f64() / 1e6)
}

/// Plain BLAKE3 on this thread and plain SHA-256 (`sha2`) on a second one, fed
/// the same 1 MiB pieces of `path`: the node's hashing work, in the node's
/// shape, with the libraries alone; MB/s.
pub(crate) fn blake3_sha256_file(path: &std::path::Path) -> Result<f64> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let t = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::sync::Arc<Vec<u8>>>(4);
    let sha = std::thread::spawn(move || {
        let mut h = sha2::Sha256::new();
        for piece in rx {
            h.update(&piece[..]);
        }
        h.finalize()
    });
    let mut h = blake3::Hasher::new();
    let mut total = 0u64;
    loop {
        let mut buf = vec![0u8; 1 << 20];
        let k = read_full(&mut f, &mut buf)?;
        if k == 0 {
            break;
        }
        buf.truncate(k);
        let piece = std::sync::Arc::new(buf);
        tx.send(piece.clone())?;
        h.update(&piece);
        total += k as u64;
    }
    drop(tx);
    std::hint::black_box(h.finalize());
    std::hint::black_box(sha.join().map_err(|_| anyhow::anyhow!("sha thread"))?);
    Ok(total as f64 / t.elapsed().as_secs_f64() / 1e6)
}

/// Copies `path` to a new file beside it in 1 MiB pieces, then `sync_all`
/// (the disk's limit for a durable import); MB/s. The copy is removed.
pub(crate) fn copy_sync(path: &std::path::Path) -> Result<f64> {
    let dst = path.with_extension("copy");
    let mut src = std::fs::File::open(path)?;
    let t = Instant::now();
    let mut out = std::fs::File::create(&dst)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let k = read_full(&mut src, &mut buf)?;
        if k == 0 {
            break;
        }
        out.write_all(&buf[..k])?;
        total += k as u64;
    }
    out.sync_all()?;
    let rate = total as f64 / t.elapsed().as_secs_f64() / 1e6;
    drop(out);
    std::fs::remove_file(&dst)?;
    Ok(rate)
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> Result<usize> {
    let mut k = 0;
    while k < buf.len() {
        let r = f.read(&mut buf[k..])?;
        if r == 0 {
            break;
        }
        k += r;
    }
    Ok(k)
}

/// redb alone deleting every row of a [`redb_batches`] file, `page` rows per
/// durable commit (what one garbage-collection page does with its rows).
pub(crate) fn redb_delete_pages(f: &RedbFile, page: usize) -> Result<Duration> {
    use redb::{ReadableDatabase, ReadableTable};
    let db = redb::Database::open(&f.path)?;
    let t = Instant::now();
    loop {
        let keys: Vec<String> = {
            let tx = db.begin_read()?;
            let table = tx.open_table(ROWS)?;
            let mut keys = Vec::with_capacity(page);
            for row in table.iter()? {
                keys.push(row?.0.value().to_string());
                if keys.len() == page {
                    break;
                }
            }
            keys
        };
        if keys.is_empty() {
            return Ok(t.elapsed());
        }
        let mut tx = db.begin_write()?;
        tx.set_durability(redb::Durability::Immediate)?;
        {
            let mut table = tx.open_table(ROWS)?;
            for k in &keys {
                table.remove(k.as_str())?;
            }
        }
        tx.commit()?;
    }
}

/// Plain Automerge: a document updated `n` times (one change each), saved;
/// and its final state written into a fresh document, saved.
pub(crate) fn automerge_growth(n: usize) -> Result<(usize, usize)> {
    use peat_mesh::automerge::transaction::Transactable;
    use peat_mesh::automerge::{AutoCommit, ROOT};
    let mut d = AutoCommit::new();
    for i in 0..n {
        d.put(ROOT, "lat", 59.0 + i as f64 * 1e-6)?;
        d.put(ROOT, "lon", 18.0)?;
        d.put(ROOT, "seq", i as i64)?;
        d.commit();
    }
    let grown = d.save().len();
    let mut fresh = AutoCommit::new();
    fresh.put(ROOT, "lat", 59.0 + (n - 1) as f64 * 1e-6)?;
    fresh.put(ROOT, "lon", 18.0)?;
    fresh.put(ROOT, "seq", (n - 1) as i64)?;
    fresh.commit();
    Ok((grown, fresh.save().len()))
}

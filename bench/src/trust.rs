//! `trust`: what checking membership certificates costs — a chain of one
//! certificate (signed by the authority) and the longest chain (four), per
//! check — beside one bare Ed25519 signature verification (the baseline: the
//! check is one verification per certificate plus its rules); and what
//! admission with certificates adds to a connection, beside admission by the
//! formation secret in the same run.

use std::time::{Duration, Instant};

use anyhow::Result;
use peat_mesh::trust::{
    issue, validate_chain, AdmissionMode, Authority, Grant, Permissions, Tier, TrustConfig,
};
use peat_mesh::{Node, NodeConfig, NodeId};

use crate::{Out, Size};

fn key(i: u8) -> (iroh::SecretKey, NodeId) {
    let k = iroh::SecretKey::from_bytes(&[i; 32]);
    let id = k.public().to_string().parse().expect("a node id");
    (k, id)
}

fn grant(subject: NodeId, tier: Tier) -> Grant {
    Grant {
        subject,
        tier,
        permissions: Permissions::ENROLL | Permissions::RELAY,
        not_before_ms: now_ms() - 1000,
        valid_for: Duration::from_secs(3600),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Microseconds per call of `f`, over `n` calls.
fn per_call(n: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

pub(crate) fn trust(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(20_000, 2_000);
    let authority = Authority::generate("bench")?;
    let keys: Vec<(iroh::SecretKey, NodeId)> = (1..=4).map(key).collect();
    let mut chain = vec![authority.issue(&grant(keys[0].1, Tier::Enterprise))?];
    for (i, tier) in [Tier::Regional, Tier::Tactical, Tier::Edge]
        .into_iter()
        .enumerate()
    {
        chain.insert(0, issue(&keys[i].0, "bench", &grant(keys[i + 1].1, tier))?);
    }
    let genesis = authority.genesis().clone();
    let now = now_ms();
    let one = [authority.issue(&grant(keys[3].1, Tier::Edge))?];
    anyhow::ensure!(validate_chain(&genesis, &one, now).is_ok());
    anyhow::ensure!(validate_chain(&genesis, &chain, now).is_ok());
    let f = |m: &str, v: f64, u: &str| out.fig("trust", m, v, u);
    let single = per_call(n, || {
        let _ = std::hint::black_box(validate_chain(&genesis, &one, now));
    });
    let four = per_call(n / 4, || {
        let _ = std::hint::black_box(validate_chain(&genesis, &chain, now));
    });
    // Baseline: one bare verification of a signature over as many bytes.
    let (k, _) = key(9);
    let msg = one[0].to_bytes();
    let sig = k.sign(&msg);
    let public = k.public();
    let bare = per_call(n, || {
        let _ = std::hint::black_box(public.verify(&msg, &sig));
    });
    f("check a chain of 1 certificate", single, "us");
    f("check a chain of 4 certificates", four, "us");
    f("baseline: one Ed25519 verification", bare, "us");
    f("chain of 1 / baseline", single / bare, "x");
    f("chain of 4 / (4 x baseline)", four / (4.0 * bare), "x");
    // What a signed change will cost to check: a signature over a 32-byte
    // change hash (with a short domain and document key), alone and in a
    // batch of 64 from 4 authors, as a sync frame would carry them.
    let authors: Vec<ed25519_dalek::SigningKey> = (0..4u8)
        .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i + 20; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..64u8)
        .map(|i| {
            let mut m = b"peat-mesh change v1\0bench/tracks/t1".to_vec();
            m.extend_from_slice(&[i; 32]);
            m
        })
        .collect();
    use ed25519_dalek::Signer;
    let sigs: Vec<ed25519_dalek::Signature> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| authors[i % 4].sign(m))
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> =
        (0..64).map(|i| authors[i % 4].verifying_key()).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    anyhow::ensure!(ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok());
    let one_change = per_call(n, || {
        let _ = std::hint::black_box(keys[0].verify_strict(&msgs[0], &sigs[0]));
    });
    let batch = per_call(n / 64, || {
        let _ = std::hint::black_box(ed25519_dalek::verify_batch(&refs, &sigs, &keys));
    }) / 64.0;
    f("a change hash's signature, alone", one_change, "us");
    f("a change hash's signature, in a batch of 64", batch, "us");
    f("batched / alone", batch / one_change, "x");
    Ok(())
}

/// Opens a node on loopback: by the formation secret only (`authority`
/// `None`), or in certificate mode with a chain of one from `authority`.
async fn open_node(authority: Option<&Authority>) -> Result<(Node, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let key = iroh::SecretKey::generate();
    let mut cfg = NodeConfig::new(dir.path(), crate::formation())
        .listen("127.0.0.1:0".parse()?)
        .secret_key(key.to_bytes());
    if let Some(a) = authority {
        let me: NodeId = key.public().to_string().parse()?;
        let chain = vec![a.issue(&grant(me, Tier::Tactical))?];
        cfg = cfg
            .trust(TrustConfig::new(a.genesis().clone(), AdmissionMode::Certificate).chain(chain));
    }
    Ok((Node::open(cfg).await?, dir))
}

/// Connect + admission times of `n` dials between two nodes.
async fn dial_times(authority: Option<&Authority>, n: usize) -> Result<Vec<Duration>> {
    let (a, _da) = open_node(authority).await?;
    let (b, _db) = open_node(authority).await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        b.connect(&a.peer_addr()).await?;
        times.push(t.elapsed());
        b.disconnect(&a.id());
        crate::wait_until(Duration::from_secs(5), || {
            Ok(a.connected_peers() == 0 && b.connected_peers() == 0)
        })
        .await?;
    }
    a.close(Duration::from_secs(5)).await?;
    b.close(Duration::from_secs(5)).await?;
    times.sort();
    Ok(times)
}

/// `trust` (admission): connect + admission with certificates (both sides
/// check the other's chain and revocations) beside the same with the
/// formation secret only, the baseline, in the same run.
pub(crate) async fn admission(out: &Out, size: &Size) -> Result<()> {
    let n = size.n(200, 20);
    let authority = Authority::generate("bench")?;
    // interleaved halves, so drift on the machine hits both alike
    let (mut secret, mut certs) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        secret.extend(dial_times(None, n / 2).await?);
        certs.extend(dial_times(Some(&authority), n / 2).await?);
    }
    secret.sort();
    certs.sort();
    let f = |m: &str, v: f64, u: &str| out.fig("trust", m, v, u);
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        let (c, s) = (crate::pct(&certs, p), crate::pct(&secret, p));
        f(
            &format!("connect+admission with certificates {name}"),
            c,
            "ms",
        );
        f(
            &format!("baseline: connect+admission by secret {name}"),
            s,
            "ms",
        );
        f(&format!("certificates - secret {name}"), c - s, "ms");
    }
    Ok(())
}

/// Opens a node whose `tracks` collection has signature policy `p`.
async fn open_signing(p: peat_mesh::SignaturePolicy) -> Result<(Node, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let policies = peat_mesh::Policies::default().with(
        "tracks",
        peat_mesh::CollectionPolicy::default().signatures(p),
    )?;
    let cfg = NodeConfig::new(dir.path(), crate::formation())
        .listen("127.0.0.1:0".parse()?)
        .policies(policies);
    Ok((Node::open(cfg).await?, dir))
}

/// Wall and CPU (both nodes) milliseconds for `n` one-change documents
/// written on A to reach B once B connects, both with signature policy `p`;
/// and B's signature stats.
async fn sync_time(
    p: peat_mesh::SignaturePolicy,
    n: usize,
) -> Result<(f64, f64, peat_mesh::SignatureStats)> {
    let (a, _da) = open_signing(p).await?;
    let (b, _db) = open_signing(p).await?;
    crate::fill(&a, "tracks", n, 64).await?;
    let t = Instant::now();
    let cpu = crate::cpu_ms();
    b.connect(&a.peer_addr()).await?;
    crate::wait_until(Duration::from_secs(300), || {
        Ok(b.document_count()? as usize >= n)
    })
    .await?;
    let took = t.elapsed().as_secs_f64() * 1000.0;
    let cpu = crate::cpu_ms() - cpu;
    let stats = b.signature_stats();
    a.close(Duration::from_secs(5)).await?;
    b.close(Duration::from_secs(5)).await?;
    Ok((took, cpu, stats))
}

/// `trust` (signed changes): initial sync of `n` documents whose changes
/// are signed and checked on receipt (policy `reject`), beside the same
/// unsigned (policy `off`, the baseline) in the same run, interleaved (3
/// runs each, the median taken); the CPU difference per change is what
/// checking (and carrying) a signature costs inside sync.
pub(crate) async fn signed_sync(out: &Out, size: &Size) -> Result<()> {
    use peat_mesh::SignaturePolicy;
    let n = size.n(10_000, 500);
    let (mut signed, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (t, cpu, stats) = sync_time(SignaturePolicy::Reject, n).await?;
        anyhow::ensure!(
            stats.verified as usize >= n && stats.rejected == 0,
            "not every change was checked: {stats:?}"
        );
        signed.push((t, cpu));
        let (t, cpu, _) = sync_time(SignaturePolicy::Off, n).await?;
        plain.push((t, cpu));
    }
    let median = |v: &[(f64, f64)], cpu: bool| {
        let mut x: Vec<f64> = v.iter().map(|p| if cpu { p.1 } else { p.0 }).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let (s, u) = (median(&signed, false), median(&plain, false));
    let (sc, uc) = (median(&signed, true), median(&plain, true));
    let f = |m: &str, v: f64, unit: &str| out.fig("trust", m, v, unit);
    f(
        &format!("sync of {n} signed changes (reject), median of 3"),
        s,
        "ms",
    );
    f("baseline: the same unsigned, median of 3", u, "ms");
    f("signed throughput / unsigned", u / s, "x");
    f("CPU of both nodes, signed", sc, "ms");
    f("baseline: CPU of both nodes, unsigned", uc, "ms");
    f(
        "CPU added per received change (checking and carrying its signature)",
        (sc - uc) * 1000.0 / n as f64,
        "us",
    );
    Ok(())
}

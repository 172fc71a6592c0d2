//! `trust`: what checking membership certificates costs — a chain of one
//! certificate (signed by the authority) and the longest chain (four), per
//! check — beside one bare Ed25519 signature verification (the baseline: the
//! check is one verification per certificate plus its rules).

use std::time::{Duration, Instant};

use anyhow::Result;
use peat_mesh::trust::{issue, validate_chain, Authority, Grant, Permissions, Tier};
use peat_mesh::NodeId;

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
    Ok(())
}

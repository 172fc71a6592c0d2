//! The `run` flags that give a node links besides its UDP socket and a PACE
//! policy: `--link NAME=BIND[@LEVEL]` (repeatable), `--links-only`,
//! `--pace-probe-ms`, `--pace-dead-ms`, `--pace-hold-down-ms`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use peat_mesh::links::{Link, PacePolicy};
use peat_mesh::NodeConfig;

/// One `--link NAME=BIND[@LEVEL]`: a UDP link of its own bound to `BIND`, at
/// PACE level `LEVEL` (0 primary; default: its position among the links).
fn parse_link(spec: &str, position: usize) -> Result<(Link, usize)> {
    let (name, rest) = spec
        .split_once('=')
        .with_context(|| format!("--link {spec:?}: want NAME=BIND[@LEVEL]"))?;
    if name.is_empty() {
        bail!("--link {spec:?}: empty name");
    }
    let (bind, level) = match rest.rsplit_once('@') {
        Some((b, l)) => (
            b,
            l.parse()
                .with_context(|| format!("--link {spec:?}: level {l:?}"))?,
        ),
        None => (rest, position),
    };
    let bind = bind
        .parse()
        .with_context(|| format!("--link {spec:?}: bind address {bind:?}"))?;
    Ok((Link::udp(name, bind), level))
}

fn ms_flag(args: &[String], name: &str, default: Duration) -> Result<Duration> {
    match super::flag(args, name) {
        Some(v) => Ok(Duration::from_millis(
            v.parse().with_context(|| format!("{name} {v:?}"))?,
        )),
        None => Ok(default),
    }
}

/// Adds the links and PACE policy the flags name to `cfg`. `--links-only`
/// binds no UDP socket, which also means no mDNS.
pub fn apply(args: &[String], mut cfg: NodeConfig) -> Result<NodeConfig> {
    let mut levels: Vec<Vec<String>> = Vec::new();
    let specs = args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--link")
        .map(|(i, _)| args.get(i + 1).context("--link needs NAME=BIND[@LEVEL]"));
    for (position, spec) in specs.enumerate() {
        let (link, level) = parse_link(spec?, position)?;
        if level >= 8 {
            bail!("--link {}: level {level} (levels 0–7)", link.name());
        }
        if levels.len() <= level {
            levels.resize(level + 1, Vec::new());
        }
        levels[level].push(link.name().to_string());
        cfg = cfg.link(link);
    }
    let d = PacePolicy::default();
    cfg = cfg.pace(PacePolicy {
        levels,
        probe_interval: ms_flag(args, "--pace-probe-ms", d.probe_interval)?,
        dead_after: ms_flag(args, "--pace-dead-ms", d.dead_after)?,
        hold_down: ms_flag(args, "--pace-hold-down-ms", d.hold_down)?,
        ..d
    });
    if args.iter().any(|a| a == "--links-only") {
        cfg.udp = false;
        cfg.mdns = false;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_specs_parse_or_say_why() {
        let (l, level) = parse_link("lan=10.0.0.1:7401@2", 0).unwrap();
        assert_eq!((l.name(), level), ("lan", 2));
        assert_eq!(parse_link("radio=10.0.0.1:0", 3).unwrap().1, 3);
        for bad in ["lan", "=1.2.3.4:5", "lan=nowhere", "lan=1.2.3.4:5@x"] {
            assert!(parse_link(bad, 0).is_err(), "{bad}");
        }
    }
}

//! The `run` flags that give a node links besides its UDP socket and a PACE
//! policy: `--link NAME=BIND[@LEVEL]` (repeatable; `BIND` is a socket
//! address for a UDP link, or `ble` / `ble:ADAPTER` for a Bluetooth LE link
//! on the first adapter or the one named), `--links-only`,
//! `--pace-probe-ms`, `--pace-dead-ms`, `--pace-hold-down-ms`, and
//! `--blobs-below-level N` (blob transfers only over links of a level below
//! `N`), `--collection-below-level NAME=N` (documents of collection `NAME`
//! likewise; repeatable).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use peat_mesh::links::{Link, PacePolicy};
use peat_mesh::NodeConfig;

/// Where a `--link` attaches.
#[derive(Debug, PartialEq)]
enum Bind {
    Udp(std::net::SocketAddr),
    /// A BLE adapter (`None`: the first one).
    Ble(Option<String>),
}

/// One `--link NAME=BIND[@LEVEL]`: its name, where it attaches and its PACE
/// level `LEVEL` (0 primary; default: its position among the links).
fn parse_link(spec: &str, position: usize) -> Result<(String, Bind, usize)> {
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
    let bind = match bind.strip_prefix("ble") {
        Some("") => Bind::Ble(None),
        Some(rest) if rest.starts_with(':') && rest.len() > 1 => Bind::Ble(Some(rest[1..].into())),
        _ => Bind::Udp(bind.parse().with_context(|| {
            format!("--link {spec:?}: bind address {bind:?} (or ble[:ADAPTER])")
        })?),
    };
    Ok((name.to_string(), bind, level))
}

/// Opens the link: binds the UDP socket, or opens the Bluetooth adapter (a
/// clear error where there is none).
async fn open_link(name: &str, bind: Bind) -> Result<Link> {
    Ok(match bind {
        Bind::Udp(at) => Link::udp(name, at),
        Bind::Ble(adapter) => {
            let radio = peat_mesh_ble::BtleCentral::open(adapter.as_deref())
                .await
                .with_context(|| format!("--link {name}"))?;
            peat_mesh_ble::ble_link(name, radio)?.0
        }
    })
}

/// Every `--collection-below-level NAME=N`: documents of collection `NAME`
/// go to a peer only over links of a level below `N` (1–8).
fn collection_rules(args: &[String]) -> Result<Vec<(String, usize)>> {
    let mut rules = Vec::new();
    for (i, _) in args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--collection-below-level")
    {
        let spec = args
            .get(i + 1)
            .context("--collection-below-level needs NAME=N")?;
        let rule = spec
            .split_once('=')
            .and_then(|(name, n)| Some((name, n.parse::<usize>().ok()?)))
            .filter(|(name, n)| !name.is_empty() && (1..=8).contains(n));
        let Some((name, n)) = rule else {
            bail!("--collection-below-level {spec:?}: want NAME=N with N 1–8");
        };
        rules.push((name.to_string(), n - 1));
    }
    Ok(rules)
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
pub async fn apply(args: &[String], mut cfg: NodeConfig) -> Result<NodeConfig> {
    let mut named = Vec::new();
    let specs = args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--link")
        .map(|(i, _)| args.get(i + 1).context("--link needs NAME=BIND[@LEVEL]"));
    for (position, spec) in specs.enumerate() {
        let (name, bind, level) = parse_link(spec?, position)?;
        named.push((name, bind, level));
    }
    let levels =
        PacePolicy::levels_of(named.iter().map(|(n, _, l)| (n.as_str(), *l))).context("--link")?;
    for (name, bind, _) in named {
        cfg = cfg.link(open_link(&name, bind).await?);
    }
    let d = PacePolicy::default();
    cfg = cfg.pace(PacePolicy {
        levels,
        probe_interval: ms_flag(args, "--pace-probe-ms", d.probe_interval)?,
        dead_after: ms_flag(args, "--pace-dead-ms", d.dead_after)?,
        hold_down: ms_flag(args, "--pace-hold-down-ms", d.hold_down)?,
        bulk_max_level: match super::flag(args, "--blobs-below-level") {
            None => None,
            Some(v) => match v.parse::<usize>() {
                Ok(n @ 1..=8) => Some(n - 1),
                _ => bail!(
                    "--blobs-below-level {v:?}: want 1–8 (blobs only over links of a lower level)"
                ),
            },
        },
        collection_max_level: collection_rules(args)?,
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
        let (name, bind, level) = parse_link("lan=10.0.0.1:7401@2", 0).unwrap();
        assert_eq!((name.as_str(), level), ("lan", 2));
        assert_eq!(bind, Bind::Udp("10.0.0.1:7401".parse().unwrap()));
        assert_eq!(parse_link("radio=10.0.0.1:0", 3).unwrap().2, 3);
        assert_eq!(parse_link("b=ble@3", 0).unwrap().1, Bind::Ble(None));
        assert_eq!(
            parse_link("b=ble:hci1", 0).unwrap().1,
            Bind::Ble(Some("hci1".into()))
        );
        for bad in [
            "lan",
            "=1.2.3.4:5",
            "lan=nowhere",
            "lan=1.2.3.4:5@x",
            "b=ble:",
            "b=blex",
        ] {
            assert!(parse_link(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn collection_rules_parse_or_say_why() {
        let args: Vec<String> = ["--collection-below-level", "imagery=1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            collection_rules(&args).unwrap(),
            vec![("imagery".into(), 0)]
        );
        for bad in ["imagery", "=1", "imagery=0", "imagery=9", "imagery=x"] {
            let args = vec!["--collection-below-level".to_string(), bad.to_string()];
            assert!(collection_rules(&args).is_err(), "{bad}");
        }
    }
}

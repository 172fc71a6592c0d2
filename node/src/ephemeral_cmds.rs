//! The ephemeral flags and `--control` commands of `run`:
//!
//! ```text
//! --multicast GROUP:PORT@IFACE_ADDR   the secured multicast path (e.g. 239.255.77.1:7450@10.0.0.5)
//! --beacon-preset default|tactical|distributed
//! topic-subscribe FILTER              print each message as `MSG ORIGIN TOPIC HOPS VIA PAYLOAD`
//! publish TOPIC TEXT                  publish TEXT (ttl 10 s, 2 hops, multicast if configured)
//! beacon LAT LON                      set this node's beacon
//! near LAT LON RADIUS_M               print `NEAR NODEID:METRES ...`
//! beacon-subscribe                    print each beacon event as `BEACON KIND NODEID`
//! ephemeral-stats                     print `ESTATS` with the counters
//! ```

use anyhow::{bail, Context, Result};
use peat_mesh::ephemeral::{MulticastConfig, Via};
use peat_mesh::{BeaconConfig, BeaconEvent, BeaconInfo, Event, Node, NodeConfig, PublishOptions};

/// Applies `--multicast` and `--beacon-preset`.
pub fn apply(args: &[String], mut cfg: NodeConfig) -> Result<NodeConfig> {
    if let Some(spec) = crate::flag(args, "--multicast") {
        let (group, iface) = spec
            .split_once('@')
            .context("--multicast takes GROUP:PORT@IFACE_ADDR")?;
        let group = group
            .parse()
            .with_context(|| format!("--multicast group {group:?} is not IPv4 ADDR:PORT"))?;
        let iface = iface
            .parse()
            .with_context(|| format!("--multicast interface {iface:?} is not an IPv4 address"))?;
        cfg = cfg.multicast(MulticastConfig::new(group, iface));
    }
    if let Some(p) = crate::flag(args, "--beacon-preset") {
        cfg = cfg.beacons(BeaconConfig::preset(p)?);
    }
    Ok(cfg)
}

/// Runs an ephemeral command; `None` if `cmd` is not one.
pub fn command(node: &Node, cmd: &str, rest: &str) -> Option<Result<String>> {
    Some(match cmd {
        "topic-subscribe" => subscribe(node, rest.trim()),
        "publish" => publish(node, rest),
        "beacon" => beacon(node, rest),
        "near" => near(node, rest),
        "beacon-subscribe" => beacon_subscribe(node),
        "ephemeral-stats" => Ok(format!("ESTATS {:?}", node.ephemeral_stats())),
        _ => return None,
    })
}

fn subscribe(node: &Node, filter: &str) -> Result<String> {
    let sub = node.subscribe_topic(filter, false)?;
    tokio::spawn(async move {
        while let Some(ev) = sub.next().await {
            match ev {
                Event::Item(m) => {
                    let via = match m.via {
                        Via::Peer(p) => p.to_string(),
                        Via::Multicast => "multicast".into(),
                    };
                    println!(
                        "MSG {} {} {} {via} {}",
                        m.origin,
                        m.topic,
                        m.hops,
                        String::from_utf8_lossy(&m.payload)
                    );
                }
                Event::Lagged(n) => println!("MSG lagged {n}"),
            }
        }
    });
    Ok(format!("OK topic-subscribe {filter}"))
}

fn publish(node: &Node, rest: &str) -> Result<String> {
    let (topic, text) = rest.split_once(' ').context("publish TOPIC TEXT")?;
    let n = node.publish(topic, text.as_bytes(), PublishOptions::default())?;
    Ok(format!("OK publish {topic} {n}"))
}

fn numbers(rest: &str, want: usize, usage: &str) -> Result<Vec<f64>> {
    let v: Vec<f64> = rest
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| usage.to_string())?;
    if v.len() != want {
        bail!("{usage}");
    }
    Ok(v)
}

fn beacon(node: &Node, rest: &str) -> Result<String> {
    let v = numbers(rest, 2, "beacon LAT LON")?;
    node.set_beacon(BeaconInfo::at(v[0], v[1]))?;
    Ok("OK beacon".into())
}

fn near(node: &Node, rest: &str) -> Result<String> {
    let v = numbers(rest, 3, "near LAT LON RADIUS_M")?;
    let list: Vec<String> = node
        .beacons_near(v[0], v[1], v[2])?
        .iter()
        .map(|n| format!("{}:{:.0}", n.beacon.node, n.distance_m))
        .collect();
    Ok(format!("NEAR {}", list.join(" ")))
}

fn beacon_subscribe(node: &Node) -> Result<String> {
    let sub = node.subscribe_beacons()?;
    tokio::spawn(async move {
        while let Some(ev) = sub.next().await {
            let line = match ev {
                Event::Item(BeaconEvent::Appeared(b)) => format!("appeared {}", b.node),
                Event::Item(BeaconEvent::Updated(b)) => format!("updated {}", b.node),
                Event::Item(BeaconEvent::Expired(n)) => format!("expired {n}"),
                Event::Item(BeaconEvent::Evicted(n)) => format!("evicted {n}"),
                Event::Lagged(n) => format!("lagged {n}"),
            };
            println!("BEACON {line}");
        }
    });
    Ok("OK beacon-subscribe".into())
}

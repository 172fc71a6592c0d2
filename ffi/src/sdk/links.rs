//! Links at open and at runtime: UDP links of their own, Bluetooth LE links
//! (on Linux: a btleplug central on a BlueZ adapter, from `peat-mesh-ble`),
//! the PACE policy from the options, and silencing a link.
//!
//! A link's `bind` says what it is: a socket address (`10.0.2.1:0`) for a
//! UDP link, `ble` or `ble:ADAPTER` for a BLE link on the first adapter or
//! the one named. A BLE link opens its adapter when the node opens; where
//! there is no Bluetooth, opening the node fails with a `Network` error
//! that says so.

use std::time::Duration;

use peat_mesh::links::{Link, PacePolicy};
use peat_mesh::NodeConfig;

use super::args::ms;
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::handles;
use crate::records::{CollectionRule, LinkOptions, PaceOptions};

/// PACE levels a link may name (primary, alternate, contingency, emergency
/// and a few more).
pub const MAX_PACE_LEVELS: usize = peat_mesh::links::MAX_LEVELS;

/// Where one link attaches.
#[derive(Debug)]
enum Attach {
    Udp(std::net::SocketAddr),
    /// A BLE adapter (`None`: the first one).
    Ble(Option<String>),
}

fn attach(l: &LinkOptions) -> SdkResult<Attach> {
    match l.bind.strip_prefix("ble") {
        Some("") => Ok(Attach::Ble(None)),
        Some(rest) if rest.len() > 1 && rest.starts_with(':') => {
            Ok(Attach::Ble(Some(rest[1..].to_string())))
        }
        _ => l.bind.parse().map(Attach::Udp).map_err(|e| {
            SdkError::invalid(format!(
                "link {:?} bind {:?}: {e} (a socket address, or ble / ble:ADAPTER)",
                l.name, l.bind
            ))
        }),
    }
}

/// A node's links, checked, and its PACE policy; opened by [`LinkPlan::open`].
#[derive(Debug)]
pub(crate) struct LinkPlan {
    links: Vec<(String, Attach)>,
    pace: PacePolicy,
}

impl LinkPlan {
    /// Checks the options: levels from each link's `level` (links of one
    /// level in the order given), zero thresholds left at their defaults.
    pub(crate) fn new(links: &[LinkOptions], p: &PaceOptions) -> SdkResult<LinkPlan> {
        let planned = links
            .iter()
            .map(|l| Ok((l.name.clone(), attach(l)?)))
            .collect::<SdkResult<_>>()?;
        let levels =
            PacePolicy::levels_of(links.iter().map(|l| (l.name.as_str(), l.level as usize)))?;
        Ok(LinkPlan {
            links: planned,
            pace: pace(levels, p)?,
        })
    }

    /// Opens the links (a BLE link opens its adapter) and adds them and the
    /// policy to `cfg`. Runs on the SDK's runtime.
    pub(crate) async fn open(self, mut cfg: NodeConfig) -> SdkResult<NodeConfig> {
        for (name, at) in self.links {
            let link = match at {
                Attach::Udp(addr) => Link::udp(&name, addr),
                Attach::Ble(adapter) => ble(&name, adapter.as_deref()).await?,
            };
            cfg = cfg.link(link);
        }
        Ok(cfg.pace(self.pace))
    }
}

/// A BLE link on `adapter`: btleplug's central on Linux (BlueZ).
#[cfg(target_os = "linux")]
async fn ble(name: &str, adapter: Option<&str>) -> SdkResult<Link> {
    let io = |e: String| SdkError::new(ErrorCode::Network, format!("link {name:?}: {e}"));
    let radio = peat_mesh_ble::BtleCentral::open(adapter)
        .await
        .map_err(|e| io(e.to_string()))?;
    Ok(peat_mesh_ble::ble_link(name, radio)
        .map_err(|e| io(e.to_string()))?
        .0)
}

/// BLE links are built for Linux (BlueZ) in this SDK; elsewhere opening
/// one says so.
#[cfg(not(target_os = "linux"))]
async fn ble(name: &str, _adapter: Option<&str>) -> SdkResult<Link> {
    Err(SdkError::new(
        ErrorCode::Network,
        format!("link {name:?}: Bluetooth LE links are available on Linux (BlueZ) in this build"),
    ))
}

/// The PACE policy: `levels`, and `p`'s thresholds (zero: the default).
fn pace(levels: Vec<Vec<String>>, p: &PaceOptions) -> SdkResult<PacePolicy> {
    let d = PacePolicy::default();
    let or = |v: u64, default: Duration| if v == 0 { default } else { ms(v) };
    if !(0.0..=1.0).contains(&p.degraded_loss) {
        return Err(SdkError::invalid(format!(
            "pace degraded_loss {} is not 0.0–1.0",
            p.degraded_loss
        )));
    }
    Ok(PacePolicy {
        // An empty level (a gap in the numbers) holds no link; PACE skips it.
        levels,
        probe_interval: or(p.probe_interval_ms, d.probe_interval),
        dead_after: or(p.dead_after_ms, d.dead_after),
        degraded_rtt: or(p.degraded_rtt_ms, d.degraded_rtt),
        degraded_loss: if p.degraded_loss == 0.0 {
            d.degraded_loss
        } else {
            p.degraded_loss
        },
        hold_down: or(p.hold_down_ms, d.hold_down),
        collection_max_level: collection_rules(&p.collection_rules)?,
        bulk_max_level: match p.blobs_below_level {
            0 => None,
            n if n as usize <= MAX_PACE_LEVELS => Some(n as usize - 1),
            n => {
                return Err(SdkError::invalid(format!(
                    "pace blobs_below_level {n} (0 for any level, else 1–{MAX_PACE_LEVELS})"
                )))
            }
        },
    })
}

/// The per-collection rules as the core takes them: `below_level` 1–8
/// becomes the best level allowed (0–7); each collection named once.
fn collection_rules(rules: &[CollectionRule]) -> SdkResult<Vec<(String, usize)>> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for r in rules {
        super::args::check_name("collection", &r.collection)?;
        if r.collection.is_empty() {
            return Err(SdkError::invalid("a collection rule names no collection"));
        }
        if !(1..=MAX_PACE_LEVELS as u32).contains(&r.below_level) {
            return Err(SdkError::invalid(format!(
                "collection rule {:?}: below_level {} (1–{MAX_PACE_LEVELS})",
                r.collection, r.below_level
            )));
        }
        if out.iter().any(|(c, _)| c == &r.collection) {
            return Err(SdkError::invalid(format!(
                "two rules for collection {:?}",
                r.collection
            )));
        }
        out.push((r.collection.clone(), r.below_level as usize - 1));
    }
    Ok(out)
}

/// Silences the node's link `name` (emission control: it sends nothing, and
/// its peers move to another link at once, each with a link-changed event),
/// or lets it speak again. `InvalidArgument` if the node has no such link.
pub fn set_link_silent(node: u64, name: &str, silent: bool) -> SdkResult<()> {
    Ok(handles::node(node)?.set_link_silent(name, silent)?)
}

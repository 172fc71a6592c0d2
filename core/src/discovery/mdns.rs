//! mDNS (DNS-SD) discovery with the `mdns-sd` crate: each node announces
//! `_peat-mesh._udp.local.` with TXT fields `id` (node id), `v` (protocol
//! version) and `ft` (formation tag: derived from the formation id, never the
//! secret), and browses for the others. Peers with our tag go to the
//! connection manager; others are reported as seen and never dialled.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

use super::{Source, MDNS_SERVICE};
use crate::config::PeerAddr;
use crate::error::{Error, Result};
use crate::hex::hex;
use crate::locks::LockExt;
use crate::transport::manager::Manager;
use crate::transport::PeerEvent;
use crate::wire::PROTOCOL_VERSION;
use crate::NodeId;

/// How long browsing may find nothing before the node says so in its logs.
const QUIET_WARNING: Duration = Duration::from_secs(10);

/// mDNS service names remembered (to tell which peer a removal is about).
const MAX_NAMES: usize = 256;

/// A running mDNS announcement and browser; shut down with [`Mdns::stop`].
pub(crate) struct Mdns {
    daemon: ServiceDaemon,
    fullname: String,
}

/// What one announcement says, parsed from its TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announcement {
    pub id: NodeId,
    pub version: u32,
    pub tag: String,
}

/// Parses the TXT fields of an announcement; `None` if any is missing or bad.
pub(crate) fn parse_txt(get: impl Fn(&str) -> Option<String>) -> Option<Announcement> {
    let id = get("id")?.parse::<NodeId>().ok()?;
    let version = get("v")?.parse::<u32>().ok()?;
    let tag = get("ft")?;
    if tag.len() != 16 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Announcement { id, version, tag })
}

impl Mdns {
    /// Announces this node (listening on `port`) and starts browsing.
    pub(crate) fn start(manager: Arc<Manager>, port: u16) -> Result<Mdns> {
        let engine = manager.ctx.clone();
        let me = engine.me;
        let my_tag = hex(&engine.formation.tag());
        let daemon = ServiceDaemon::new()
            .map_err(|e| Error::Network(format!("mDNS daemon could not start: {e}")))?;
        let id_hex = me.to_string();
        // DNS labels hold at most 63 bytes: the instance name is a prefix of the
        // id; the whole id travels in TXT.
        let instance = format!("peat-{}", &id_hex[..32]);
        let host = format!("{instance}.local.");
        let props = [
            ("id", id_hex.as_str()),
            ("v", &PROTOCOL_VERSION.to_string()),
            ("ft", my_tag.as_str()),
        ];
        let info = ServiceInfo::new(MDNS_SERVICE, &instance, &host, "", port, &props[..])
            .map_err(|e| Error::Network(format!("mDNS service record: {e}")))?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_string();
        daemon
            .register(info)
            .map_err(|e| Error::Network(format!("mDNS announce: {e}")))?;
        let events = daemon
            .browse(MDNS_SERVICE)
            .map_err(|e| Error::Network(format!("mDNS browse: {e}")))?;
        if let Ok(monitor) = daemon.monitor() {
            let cancel = engine.cancel.clone();
            engine.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        ev = monitor.recv_async() => match ev {
                            Ok(mdns_sd::DaemonEvent::Error(e)) => {
                                tracing::warn!(error = %e, "mDNS error (multicast may be blocked here; static peers still work)");
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        },
                    }
                }
            });
        }
        let cancel = engine.cancel.clone();
        let names: Arc<Mutex<HashMap<String, NodeId>>> = Arc::default();
        engine.tasks.spawn(async move {
            let mut found_any = false;
            let quiet = tokio::time::sleep(QUIET_WARNING);
            tokio::pin!(quiet);
            loop {
                let ev = tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = &mut quiet, if !found_any => {
                        found_any = true; // warn once
                        tracing::warn!(
                            "mDNS has found no peers in {QUIET_WARNING:?}: multicast may be blocked on \
                             this network, or no other node is up; static peers still work"
                        );
                        continue;
                    }
                    ev = events.recv_async() => match ev {
                        Ok(ev) => ev,
                        Err(_) => return,
                    },
                };
                match ev {
                    ServiceEvent::ServiceResolved(svc) => {
                        let Some(a) = parse_txt(|k| svc.get_property_val_str(k).map(str::to_string))
                        else {
                            tracing::debug!(name = %svc.fullname, "mDNS announcement without valid peat fields");
                            continue;
                        };
                        if a.id == me {
                            continue;
                        }
                        found_any = true;
                        {
                            let mut names = names.locked();
                            if names.len() >= MAX_NAMES && !names.contains_key(&svc.fullname) {
                                tracing::debug!(name = %svc.fullname, "too many mDNS names; announcement ignored");
                                continue;
                            }
                            names.insert(svc.fullname.clone(), a.id);
                        }
                        if a.tag != my_tag || a.version != PROTOCOL_VERSION {
                            tracing::debug!(peer = %a.id.short(), tag = %a.tag, v = a.version, "seen by mDNS: other formation or version; not dialled");
                            manager.ctx.peers.other_formation(a.id);
                            manager.ctx.peer_hub.publish(
                                &PeerEvent::SeenOtherFormation { peer: a.id },
                                |_| true,
                            );
                            continue;
                        }
                        let addrs: Vec<SocketAddr> = svc
                            .addresses
                            .iter()
                            .map(|ip| ip.to_ip_addr())
                            .filter(usable)
                            .map(|ip| SocketAddr::new(ip, svc.port))
                            .collect();
                        if addrs.is_empty() {
                            continue;
                        }
                        tracing::debug!(peer = %a.id.short(), ?addrs, "discovered by mDNS");
                        manager.want(PeerAddr::with_addrs(a.id, addrs), Source::Mdns);
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => {
                        let id = names
                            .locked()
                            .remove(&fullname);
                        if let Some(id) = id {
                            manager.unwant(&id, Source::Mdns);
                        }
                    }
                    _ => {}
                }
            }
        });
        tracing::info!(service = MDNS_SERVICE, %port, "mDNS discovery on");
        Ok(Mdns { daemon, fullname })
    }

    /// Withdraws the announcement (peers see the node leave) and stops.
    pub(crate) fn stop(&self) {
        if let Ok(rx) = self.daemon.unregister(&self.fullname) {
            let _ = rx.recv_timeout(Duration::from_millis(500));
        }
        let _ = self.daemon.shutdown();
    }
}

/// Addresses worth dialling: not unspecified, not IPv6 link-local (which needs
/// a scope the announcement does not carry).
fn usable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_unspecified(),
        IpAddr::V6(v6) => !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields<'a>(m: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            m.iter()
                .find(|(kk, _)| *kk == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn txt_fields_parse_and_reject() {
        let id = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
        let good = [("id", id), ("v", "1"), ("ft", "00112233aabbccdd")];
        let a = parse_txt(fields(&good)).unwrap();
        assert_eq!(a.version, 1);
        assert_eq!(a.id.to_string(), id);
        for bad in [
            [("id", "xyz"), ("v", "1"), ("ft", "00112233aabbccdd")],
            [("id", id), ("v", "one"), ("ft", "00112233aabbccdd")],
            [("id", id), ("v", "1"), ("ft", "0011")],
            [("id", id), ("v", "1"), ("ft", "zz112233aabbccdd")],
        ] {
            assert!(parse_txt(fields(&bad)).is_none());
        }
        assert!(parse_txt(fields(&[("id", id)])).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_txt_values_never_panic(id in ".{0,80}", v in ".{0,12}", ft in ".{0,24}") {
            let m = [("id", id.as_str()), ("v", v.as_str()), ("ft", ft.as_str())];
            let _ = parse_txt(fields(&m));
        }
    }

    #[test]
    fn link_local_v6_is_skipped() {
        assert!(!usable(&"fe80::1".parse().unwrap()));
        assert!(usable(&"10.0.0.1".parse().unwrap()));
        assert!(!usable(&"0.0.0.0".parse().unwrap()));
    }
}

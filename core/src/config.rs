//! Node configuration: where data lives, which formation to join, where to listen
//! and which peers to dial.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::beacons::BeaconConfig;
use crate::links::{Link, LinkAddr, PacePolicy};
use crate::policy::Policies;
use crate::security::Formation;
use crate::NodeId;

/// A peer known in advance: its node id and the socket addresses it listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// The peer's node id (its Ed25519 public key).
    pub id: NodeId,
    /// Socket addresses to try, in order.
    pub addrs: Vec<SocketAddr>,
    /// Addresses on links other than UDP ([`crate::links`]); empty for a
    /// peer reached only over UDP.
    pub links: Vec<LinkAddr>,
}

impl PeerAddr {
    /// A peer reachable at one address.
    pub fn new(id: NodeId, addr: SocketAddr) -> Self {
        PeerAddr {
            id,
            addrs: vec![addr],
            links: Vec::new(),
        }
    }

    /// A peer reachable at these socket addresses.
    pub fn with_addrs(id: NodeId, addrs: Vec<SocketAddr>) -> Self {
        PeerAddr {
            id,
            addrs,
            links: Vec::new(),
        }
    }
}

/// The text form: `NODEID@ADDR[,ADDR…]`, each `ADDR` a socket address
/// (`HOST:PORT`, `[V6]:PORT`) or a link address ([`LinkAddr`], `KIND_HEX`);
/// socket addresses first, then link addresses.
impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@", self.id)?;
        let mut first = true;
        let socket = self.addrs.iter().map(|a| a as &dyn fmt::Display);
        let links = self.links.iter().map(|l| l as &dyn fmt::Display);
        for a in socket.chain(links) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Addresses one peer string may carry.
pub const MAX_PEER_ADDRS: usize = 16;

impl std::str::FromStr for PeerAddr {
    type Err = crate::Error;

    /// Parses `NODEID@ADDR[,ADDR…]` (see [`PeerAddr`]'s `Display`): at least
    /// one and at most [`MAX_PEER_ADDRS`] addresses.
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = |why: String| crate::Error::InvalidArgument(format!("peer {s:?}: {why}"));
        let (id, rest) = s
            .split_once('@')
            .ok_or_else(|| bad("not NODEID@ADDR[,ADDR…]".into()))?;
        let id: NodeId = id.parse()?;
        let mut peer = PeerAddr::with_addrs(id, Vec::new());
        for (n, a) in rest.split(',').enumerate() {
            if n == MAX_PEER_ADDRS {
                return Err(bad(format!("more than {MAX_PEER_ADDRS} addresses")));
            }
            if let Ok(sock) = a.parse::<SocketAddr>() {
                peer.addrs.push(sock);
            } else if a.contains('_') {
                peer.links.push(a.parse()?);
            } else {
                return Err(bad(format!(
                    "{a:?} is neither HOST:PORT nor a link address"
                )));
            }
        }
        Ok(peer)
    }
}

/// Where the ephemeral multicast path ([`crate::ephemeral`]) sends and listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulticastConfig {
    /// An IPv4 multicast group (224.0.0.0/4) or a broadcast address, and the
    /// port every node of the formation uses.
    pub group: SocketAddrV4,
    /// The address of the local interface to send from and join the group on.
    pub interface: Ipv4Addr,
    /// IP TTL of the datagrams: 1 keeps them on the local segment. Default 1.
    pub hops: u32,
}

impl MulticastConfig {
    /// The path to `group` on the interface with address `interface`.
    pub fn new(group: SocketAddrV4, interface: Ipv4Addr) -> MulticastConfig {
        MulticastConfig {
            group,
            interface,
            hops: 1,
        }
    }
}

/// Everything [`crate::Node::open`] needs.
///
/// ```
/// use peat_mesh::{NodeConfig, Formation};
/// let cfg = NodeConfig::new("/tmp/peat-doc-example", Formation::new("alpha", [7u8; 32]))
///     .listen("127.0.0.1:0".parse().unwrap());
/// assert_eq!(cfg.formation.id(), "alpha");
/// ```
///
/// `Debug` never prints secrets (the formation's nor the identity key), and
/// both are wiped from memory when the config is dropped.
#[derive(Clone)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Directory for the redb database, the identity key and blobs. Created if missing.
    pub data_dir: PathBuf,
    /// The formation this node belongs to; only peers that prove the same secret are admitted.
    pub formation: Formation,
    /// UDP socket address to listen on. Default `0.0.0.0:0` (any interface, OS-chosen port).
    pub listen: SocketAddr,
    /// Peers to dial at start.
    pub static_peers: Vec<PeerAddr>,
    /// Identity secret key. `None`: load `identity.key` from the data dir, or
    /// create it. Wiped from memory when dropped.
    pub secret_key: Option<Zeroizing<[u8; 32]>>,
    /// How often connected peers re-run set reconciliation as a safety net. Default 30 s.
    pub anti_entropy_interval: Duration,
    /// Capacity of each subscription's queue before it reports lag. Default 1024.
    pub subscription_capacity: usize,
    /// Capacity of each peer's live-update queue before updates are coalesced. Default 4096.
    pub peer_queue_capacity: usize,
    /// Number of loaded documents kept in memory. Default 1024.
    pub doc_cache_capacity: usize,
    /// Announce this node and find peers of the formation on the LAN by mDNS.
    /// Default off in the library (the application chooses its discovery);
    /// `peat-mesh-node run` turns it on.
    pub mdns: bool,
    /// Most peers connected at once; further dials wait and further inbound
    /// connections are refused. Default 64.
    pub max_peers: usize,
    /// A link that carries nothing for this long is declared down (keep-alives
    /// go every quarter of it). Default 5 s.
    pub link_timeout: Duration,
    /// Blob garbage collection spares blobs added less than this long ago, so a
    /// blob added just before the document that refers to it is written survives.
    /// Default one hour.
    pub blob_gc_grace: Duration,
    /// Links besides the UDP socket ([`crate::links`]). Default none.
    pub links: Vec<Link>,
    /// Carry connections over UDP (the `listen` socket). Default true; false
    /// for a node that reaches peers over its links only (a device whose only
    /// link is a radio), which then binds no socket at all.
    pub udp: bool,
    /// How the links are ranked and judged (PACE). Default: each link its own
    /// level, in the order added; see [`PacePolicy`] for the thresholds.
    pub pace: PacePolicy,
    /// Pass on ephemeral messages that may be forwarded (hop limit above 0)
    /// to peers that did not send them ([`crate::ephemeral`]). Default true.
    pub ephemeral_forwarding: bool,
    /// Most entries of the latest-message table ([`crate::Node::latest`]);
    /// when full, the entry expiring soonest is evicted. Default 4096.
    pub latest_capacity: usize,
    /// How beacons are published and kept ([`crate::beacons`]). Default: the
    /// `default` preset.
    pub beacons: BeaconConfig,
    /// The secured multicast path for ephemeral messages and beacons
    /// ([`crate::ephemeral::MulticastConfig`]); default none: nothing is sent
    /// to any group.
    pub multicast: Option<MulticastConfig>,
    /// Per-collection policies ([`crate::policy`]): priority, sync mode, TTL,
    /// retention, delete rule. Default: every collection [`crate::CollectionPolicy::default`].
    pub policies: Policies,
    /// How often garbage collection runs (expired documents and tombstones,
    /// retention, unreferenced blobs; [`crate::Node::collect_garbage`] runs it
    /// on demand). The first pass runs one interval after open. Default 60 s.
    pub gc_interval: Duration,
    /// Priority classes on the wire (see [`crate::policy::Priority`]): higher
    /// classes first, low and bulk on the bulk lane, blobs below document
    /// sync. Default true; false sends every class alike and blobs at the
    /// same QUIC priority as documents (to measure what the classes do).
    pub qos: bool,
    /// A node-wide byte budget for documents ([`crate::StorageBudget`]):
    /// past its high-water mark, garbage collection evicts by class and age
    /// down to its low-water mark, never critical documents. Default none.
    pub storage_budget: Option<crate::StorageBudget>,
    /// Bandwidth budgets: bytes per second to each peer and over each link
    /// ([`crate::Bandwidth`]; changeable with [`crate::Node::set_bandwidth`]).
    /// Default: no limits.
    pub bandwidth: crate::Bandwidth,
    /// Membership certificates ([`crate::trust`]): the formation's genesis,
    /// what admission asks of peers, and this node's chain. Default none:
    /// admission by the formation secret only.
    pub trust: Option<crate::trust::TrustConfig>,
}

impl NodeConfig {
    /// A config with defaults for everything but the data dir and formation.
    pub fn new(data_dir: impl Into<PathBuf>, formation: Formation) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            formation,
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            static_peers: Vec::new(),
            secret_key: None,
            anti_entropy_interval: Duration::from_secs(30),
            subscription_capacity: 1024,
            peer_queue_capacity: 4096,
            doc_cache_capacity: 1024,
            blob_gc_grace: Duration::from_secs(3600),
            mdns: false,
            max_peers: 64,
            link_timeout: Duration::from_secs(5),
            links: Vec::new(),
            udp: true,
            pace: PacePolicy::default(),
            ephemeral_forwarding: true,
            latest_capacity: 4096,
            beacons: BeaconConfig::default(),
            multicast: None,
            policies: Policies::default(),
            gc_interval: Duration::from_secs(60),
            qos: true,
            storage_budget: None,
            bandwidth: crate::Bandwidth::default(),
            trust: None,
        }
    }

    /// Sets the per-collection policies.
    pub fn policies(mut self, policies: Policies) -> Self {
        self.policies = policies;
        self
    }

    /// Sends and receives ephemeral messages on a secured multicast path.
    pub fn multicast(mut self, config: MulticastConfig) -> Self {
        self.multicast = Some(config);
        self
    }

    /// Sets how beacons are published and kept.
    pub fn beacons(mut self, config: BeaconConfig) -> Self {
        self.beacons = config;
        self
    }

    /// Sets the listen address.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Adds a static peer.
    pub fn peer(mut self, peer: PeerAddr) -> Self {
        self.static_peers.push(peer);
        self
    }

    /// Adds a link besides the UDP socket.
    pub fn link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// Sets the PACE policy for the links.
    pub fn pace(mut self, policy: PacePolicy) -> Self {
        self.pace = policy;
        self
    }

    /// Turns mDNS discovery on or off.
    pub fn mdns(mut self, on: bool) -> Self {
        self.mdns = on;
        self
    }

    /// Sets the bandwidth budgets.
    pub fn bandwidth(mut self, bandwidth: crate::Bandwidth) -> Self {
        self.bandwidth = bandwidth;
        self
    }

    /// Sets the trust settings (admission with certificates).
    pub fn trust(mut self, trust: crate::trust::TrustConfig) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Uses this identity secret instead of the one stored in the data dir.
    pub fn secret_key(mut self, key: [u8; 32]) -> Self {
        self.secret_key = Some(Zeroizing::new(key));
        self
    }
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be left out (or leak) unnoticed.
        let NodeConfig {
            data_dir,
            formation,
            listen,
            static_peers,
            secret_key,
            anti_entropy_interval,
            subscription_capacity,
            peer_queue_capacity,
            doc_cache_capacity,
            mdns,
            max_peers,
            link_timeout,
            blob_gc_grace,
            links,
            udp,
            pace,
            ephemeral_forwarding,
            latest_capacity,
            beacons,
            multicast,
            policies,
            gc_interval,
            qos,
            storage_budget,
            bandwidth,
            trust,
        } = self;
        f.debug_struct("NodeConfig")
            .field("data_dir", data_dir)
            .field("formation", formation)
            .field("listen", listen)
            .field("static_peers", static_peers)
            .field("secret_key", &secret_key.as_ref().map(|_| "<redacted>"))
            .field("anti_entropy_interval", anti_entropy_interval)
            .field("subscription_capacity", subscription_capacity)
            .field("peer_queue_capacity", peer_queue_capacity)
            .field("doc_cache_capacity", doc_cache_capacity)
            .field("mdns", mdns)
            .field("max_peers", max_peers)
            .field("link_timeout", link_timeout)
            .field("blob_gc_grace", blob_gc_grace)
            .field("links", links)
            .field("udp", udp)
            .field("pace", pace)
            .field("ephemeral_forwarding", ephemeral_forwarding)
            .field("latest_capacity", latest_capacity)
            .field("beacons", beacons)
            .field("multicast", multicast)
            .field("policies", policies)
            .field("gc_interval", gc_interval)
            .field("qos", qos)
            .field("storage_budget", storage_budget)
            .field("bandwidth", bandwidth)
            .field("trust", trust)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::hex;

    #[test]
    fn debug_never_prints_secrets() {
        let formation_secret = Formation::generate_secret();
        let identity = Formation::generate_secret();
        let cfg = NodeConfig::new("/tmp/x", Formation::new("alpha", formation_secret))
            .secret_key(identity);
        for text in [format!("{cfg:?}"), format!("{cfg:#?}")] {
            assert!(
                text.contains("alpha") && text.contains("redacted"),
                "{text}"
            );
            for secret in [formation_secret, identity] {
                assert!(!text.contains(&hex(&secret)), "{text}");
                assert!(!text.contains(&format!("{:?}", &secret[..4])), "{text}");
                assert!(!text.contains(&format!("{:?}", &secret[28..])), "{text}");
            }
        }
        let plain = NodeConfig::new("/tmp/x", Formation::new("alpha", formation_secret));
        assert!(format!("{plain:?}").contains("secret_key: None"));
    }

    fn some_id() -> NodeId {
        NodeId(iroh::SecretKey::from_bytes(&[9u8; 32]).public())
    }

    #[test]
    fn peer_strings_round_trip_and_bad_ones_are_refused() {
        let id = some_id();
        let link = iroh_base::CustomAddr::from_parts(crate::links::BOND_TRANSPORT_ID, &[1, 2, 3]);
        let p = PeerAddr {
            id,
            addrs: vec![
                "127.0.0.1:4000".parse().unwrap(),
                "[::1]:5".parse().unwrap(),
            ],
            links: vec![LinkAddr(link)],
        };
        let text = p.to_string();
        assert!(
            text.starts_with(&format!("{id}@127.0.0.1:4000,[::1]:5,")),
            "{text}"
        );
        assert_eq!(text.parse::<PeerAddr>().unwrap(), p);
        for bad in [
            String::new(),
            "nonsense".into(),
            format!("{id}@"),
            format!("{id}@127.0.0.1"),
            format!("{id}@127.0.0.1:1,,"),
            format!("{id}@zz_zz"),
            format!("{id}@{}", vec!["127.0.0.1:1"; MAX_PEER_ADDRS + 1].join(",")),
            "abc@127.0.0.1:1".into(),
        ] {
            let e = bad.parse::<PeerAddr>().unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_peer_string_parses_or_errs_and_round_trips(tail in "[0-9a-f_:.,\\[\\]]{0,80}") {
            let text = format!("{}@{tail}", some_id());
            if let Ok(p) = text.parse::<PeerAddr>() {
                proptest::prop_assert_eq!(p.to_string().parse::<PeerAddr>().unwrap(), p);
            }
        }
    }
}

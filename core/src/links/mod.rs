//! Links besides the UDP socket, bonded under iroh as one custom transport.
//!
//! A node always has its UDP socket; each [`Link`] in its configuration adds
//! another way to reach peers. All of them go into the node's [`Bond`]: one
//! iroh path per peer, whose packets ride the link PACE chooses
//! ([`PacePolicy`]: primary, alternate, contingency, emergency levels, from
//! each link's probed health). When the link in use dies, the next packets
//! take another one: the admitted connection and its sync session go on —
//! no re-admission, no new session, no reconciliation from scratch.
//!
//! - [`Medium`] — an in-process link with injectable [`Faults`] (loss, delay,
//!   jitter, rate, scripted outages), for tests, demos and `peat-bench`.
//! - [`Link::udp`] — a UDP socket of its own on one interface's address.
//! - [`ble_frame`] — fragmentation and reassembly of the bond's frames for a
//!   BLE GATT link.
//! - [`Link::external`] — a link provided by another crate through
//!   [`LinkPort`]: the BLE link of `peat-mesh-ble`.
//!
//! A peer learns a node's link address through [`crate::PeerAddr::links`]
//! ([`crate::Node::peer_addr`] fills it in). While the bond has a link to a
//! peer, iroh is told to prefer it over the UDP path; the UDP path stays open
//! as iroh's fallback.
//!
//! Nothing on a link can read or forge the node's packets: QUIC encrypts
//! and authenticates every packet, whatever link carries it. What the bond's
//! own frames (unauthenticated, like UDP headers) allow is disturbance, and
//! it is bounded: a claim to be a peer the bond hears from at another address
//! is refused while that peer is alive (counted in
//! [`BondStats::dropped_claims`]); a peer silent for the dead-link time may
//! be claimed (a restarted peer must be able to come back at new ports), and
//! a station on the same link that sees the probes (each carries a random
//! nonce the echo must bring back) could answer them and so keep a dead link
//! looking alive — both deny service at worst, as source spoofing can on any
//! IP network.

mod addr;
pub mod ble_frame;
mod bond;
mod external;
mod faults;
mod frame;
mod medium;
mod pace;
mod report;
mod select;
mod transport;
mod udp;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use iroh_base::CustomAddr;
use tokio_util::sync::CancellationToken;

pub use addr::BOND_TRANSPORT_ID;
pub use bond::{Bond, BOND_RECV_QUEUE, MAX_BOND_PEERS, SWITCH_EVENT_QUEUE};
pub use external::{LinkFrames, LinkPort};
pub use faults::{Drop, Fate, Faults, Outage};
pub use medium::{
    Medium, MediumLink, MediumStats, MAX_IN_FLIGHT, MAX_STATIONS, MEDIUM_TRANSPORT_ID, RECV_QUEUE,
};
pub use pace::{LinkState, PacePolicy, MAX_LEVELS};
pub use report::{BondStats, LinkHealth, LinkSwitch};
pub(crate) use select::BondFirst;
pub use udp::UDP_LINK_ID;

/// A link a node carries connections over, besides its UDP socket.
#[derive(Clone, Debug)]
pub struct Link {
    name: String,
    kind: LinkKind,
}

#[derive(Clone, Debug)]
enum LinkKind {
    Medium(MediumLink),
    Udp(std::net::SocketAddr),
    External(Arc<dyn LinkPort>, Arc<std::sync::Mutex<Option<LinkFrames>>>),
}

impl Link {
    /// A station on an in-process [`Medium`], named for PACE levels.
    pub fn medium(name: impl Into<String>, station: MediumLink) -> Self {
        Link {
            name: name.into(),
            kind: LinkKind::Medium(station),
        }
    }

    /// A UDP socket of its own bound to `bind` (an interface's address: a
    /// second LAN, an IP radio). It carries traffic to peers' links of the
    /// same name only.
    pub fn udp(name: impl Into<String>, bind: std::net::SocketAddr) -> Self {
        Link {
            name: name.into(),
            kind: LinkKind::Udp(bind),
        }
    }

    /// A link provided outside the core (such as `peat-mesh-ble`'s BLE
    /// link): its port and the frames arriving on it. A node opens it once.
    pub fn external(name: impl Into<String>, port: Arc<dyn LinkPort>, frames: LinkFrames) -> Self {
        Link {
            name: name.into(),
            kind: LinkKind::External(port, Arc::new(std::sync::Mutex::new(Some(frames)))),
        }
    }

    /// The name PACE levels refer to.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn open(&self) -> std::io::Result<(Arc<dyn bond::Member>, bond::Incoming)> {
        match &self.kind {
            LinkKind::Medium(m) => m.open(),
            LinkKind::Udp(bind) => udp::open(&self.name, *bind),
            LinkKind::External(port, frames) => external::open(port, frames),
        }
    }
}

/// Opens the bond over `links`; `id` names this node to its peers' bonds.
pub(crate) fn open_bond(
    id: u64,
    links: &[Link],
    policy: PacePolicy,
    cancel: CancellationToken,
) -> crate::Result<Bond> {
    let mut names = std::collections::HashSet::new();
    let mut opened = Vec::new();
    for l in links {
        if !names.insert(l.name.clone()) {
            return Err(crate::Error::InvalidArgument(format!(
                "two links named {:?}",
                l.name
            )));
        }
        let (port, rx) = l
            .open()
            .map_err(|e| crate::Error::InvalidArgument(format!("link {:?}: {e}", l.name)))?;
        opened.push((l.name.clone(), port, rx));
    }
    Bond::open(id, opened, policy, cancel)
        .map_err(|e| crate::Error::InvalidArgument(format!("links: {e}")))
}

/// The id a node's bond goes by on its links: the first 8 bytes of its node id.
pub(crate) fn bond_id(node: &crate::NodeId) -> u64 {
    let b = node.0.as_bytes();
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A node's address on its links (its bond's address). Its text form is
/// `<kind hex>_<address hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkAddr(pub(crate) CustomAddr);

impl LinkAddr {
    /// An address of link kind `kind` (a custom-transport id) with `data`.
    pub fn new(kind: u64, data: &[u8]) -> Self {
        LinkAddr(CustomAddr::from_parts(kind, data))
    }

    /// The link kind (iroh's custom-transport id), e.g. [`BOND_TRANSPORT_ID`].
    pub fn kind(&self) -> u64 {
        self.0.id()
    }

    /// The address within its kind.
    pub fn data(&self) -> &[u8] {
        self.0.data()
    }
}

impl fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for LinkAddr {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        s.parse::<CustomAddr>()
            .map(LinkAddr)
            .map_err(|e| crate::Error::InvalidArgument(format!("link address {s:?}: {e}")))
    }
}

/// The link decoders, for the fuzz targets.
#[cfg(fuzzing)]
pub(crate) mod fuzz_decoders {
    pub(crate) fn frame(data: &[u8]) {
        if let Ok(f) = super::frame::Frame::decode(bytes::Bytes::copy_from_slice(data)) {
            let _ = f.encode();
            if let super::frame::Frame::DataFrom { from_addr, .. } = f {
                if let Ok(a) = iroh_base::CustomAddr::from_bytes(&from_addr) {
                    let _ = super::addr::BondAddr::from_custom(&a);
                }
            }
        }
        let _ = super::addr::BondAddr::from_custom(&iroh_base::CustomAddr::from_parts(
            super::addr::BOND_TRANSPORT_ID,
            data,
        ));
        let _ = super::udp::decode(&iroh_base::CustomAddr::from_parts(
            super::udp::UDP_LINK_ID,
            data,
        ));
        // The same bytes as BLE fragments: [len][fragment] runs, MTU from the
        // first byte.
        if let Some((&m, mut rest)) = data.split_first() {
            let mtu = super::ble_frame::MIN_MTU + m as usize * 2;
            if let Ok(mut r) = super::ble_frame::Reassembler::new(mtu) {
                while let Some((&len, tail)) = rest.split_first() {
                    let len = (len as usize).min(tail.len());
                    let _ = r.push(&tail[..len]);
                    rest = &tail[len..];
                }
            }
        }
    }
}

//! Links provided outside the core — the BLE link lives in a crate of its
//! own (`peat-mesh-ble`) so that the core never depends on a Bluetooth
//! stack. Such a link implements [`LinkPort`] and hands the core its port
//! and the frames arriving on it ([`super::Link::external`]); the bond then
//! treats it as any other link.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use iroh_base::CustomAddr;
use tokio::sync::mpsc;

use super::bond::{Incoming, Member};
use super::LinkAddr;

/// A link's sending side as the bond uses it. Every call must return at
/// once: a link that cannot take a frame now drops it and says so (QUIC
/// resends), as a full socket buffer would.
pub trait LinkPort: Send + Sync + std::fmt::Debug + 'static {
    /// This node's address on the link; its kind (a custom-transport id)
    /// names the link kind.
    fn addr(&self) -> LinkAddr;
    /// Whether `addr` (a peer's address as its bond lists it) is reachable
    /// over this link.
    fn carries(&self, addr: &LinkAddr) -> bool;
    /// Sends one bond frame to `to`.
    fn send(&self, to: &LinkAddr, frame: Bytes) -> io::Result<()>;
}

/// Frames arriving on an external link, each with the address it came from.
pub type LinkFrames = mpsc::Receiver<(LinkAddr, Bytes)>;

#[derive(Debug)]
struct Adapter(Arc<dyn LinkPort>);

impl Member for Adapter {
    fn addr(&self) -> CustomAddr {
        self.0.addr().0
    }

    fn carries(&self, addr: &CustomAddr) -> bool {
        self.0.carries(&LinkAddr(addr.clone()))
    }

    fn send(&self, to: &CustomAddr, frame: Bytes) -> io::Result<()> {
        self.0.send(&LinkAddr(to.clone()), frame)
    }
}

/// The bond's view of an external link: its port, and its frames as they
/// are (the link's own queue bounds them).
pub(crate) fn open(
    port: &Arc<dyn LinkPort>,
    frames: &std::sync::Mutex<Option<LinkFrames>>,
) -> io::Result<(Arc<dyn Member>, Incoming)> {
    use crate::locks::LockExt;
    let frames = frames
        .locked()
        .take()
        .ok_or_else(|| io::Error::other("this link is already open"))?;
    Ok((Arc::new(Adapter(port.clone())), frames))
}

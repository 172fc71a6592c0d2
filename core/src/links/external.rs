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

/// Frames waiting between an external link and the bond.
const EXTERNAL_QUEUE: usize = 256;

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

/// The bond's view of an external link. Must run inside a tokio runtime.
pub(crate) fn open(
    port: &Arc<dyn LinkPort>,
    frames: &std::sync::Mutex<Option<LinkFrames>>,
) -> io::Result<(Arc<dyn Member>, Incoming)> {
    use crate::locks::LockExt;
    let mut rx = frames
        .locked()
        .take()
        .ok_or_else(|| io::Error::other("this link is already open"))?;
    let (tx, incoming) = mpsc::channel(EXTERNAL_QUEUE);
    // Ends when the link closes its frames or the bond stops reading.
    tokio::spawn(async move {
        while let Some((from, frame)) = rx.recv().await {
            if tx.send((from.0, frame)).await.is_err() {
                break;
            }
        }
    });
    Ok((Arc::new(Adapter(port.clone())), incoming))
}

//! What the BLE link needs from a radio: dial a peer, take connections from
//! centrals, and per connection move GATT-sized fragments both ways with
//! back-pressure. btleplug ([`crate::BtleCentral`]) and the in-process
//! double ([`crate::double`]) both provide it, so the link's framing, flow
//! control and reconnection run the same code over either.

use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::mpsc;

/// A Bluetooth device address.
pub type BleAddr = [u8; 6];

/// A future a radio returns.
pub type RadioFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One GATT connection, as fragments. Dropping `out` ends the connection.
#[derive(Debug)]
pub struct GattConn {
    /// The other end's device address.
    pub peer: BleAddr,
    /// The ATT MTU negotiated for this connection (23–517).
    pub mtu: usize,
    /// Fragments to send, each at most `mtu − 3` bytes. Bounded: `send`
    /// waits while the radio cannot take more (its flow control).
    pub out: mpsc::Sender<Bytes>,
    /// Fragments received; ends when the connection drops.
    pub inc: mpsc::Receiver<Bytes>,
}

/// A Bluetooth LE radio as the link uses it.
pub trait Radio: Send + Sync + std::fmt::Debug + 'static {
    /// This radio's device address.
    fn addr(&self) -> BleAddr;

    /// Connects to `peer` (as a central) and sets the link's GATT service up.
    fn connect(&self, peer: BleAddr) -> RadioFuture<'_, io::Result<GattConn>>;

    /// Connections centrals make to this radio (as a peripheral), taken once;
    /// `None` for a radio that cannot be a peripheral.
    fn take_incoming(&self) -> Option<mpsc::Receiver<GattConn>>;
}

//! The BLE link's radio on Linux and desktops: btleplug in the central role
//! (BlueZ over D-Bus on Linux). It scans for peripherals advertising the
//! peat-mesh service ([`crate::gatt::SERVICE`]), connects to the one a
//! peer's link address names, subscribes to [`crate::gatt::TX`] and writes
//! fragments to [`crate::gatt::RX`] without response. The MTU is the one the
//! stack negotiated (`Peripheral::mtu`); nothing here is assumed.
//!
//! btleplug is central-only, so this radio accepts no connections: the
//! peripheral side runs on a device that has it (see [`crate::gatt`]).

use std::io;
use std::sync::Arc;

use btleplug::api::{
    Central, CentralState, Characteristic, Manager as _, Peripheral as _, ScanFilter, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use bytes::Bytes;
use futures::StreamExt;
use peat_mesh::links::ble_frame;
use tokio::sync::mpsc;

use crate::gatt;
use crate::radio::{BleAddr, GattConn, Radio, RadioFuture};

/// Why the BLE radio could not start.
#[derive(Debug, thiserror::Error)]
pub enum BleError {
    /// The Bluetooth stack cannot be reached (on Linux: BlueZ over the
    /// system D-Bus).
    #[error("Bluetooth unavailable: cannot reach the Bluetooth stack ({0})")]
    Unavailable(String),
    /// The stack answered but has no adapter (or none of that name).
    #[error("no Bluetooth adapter{}", .0.as_deref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NoAdapter(Option<String>),
    /// The adapter is off or reports no address.
    #[error("Bluetooth adapter not usable: {0}")]
    AdapterNotReady(String),
}

/// A btleplug central on one adapter.
#[derive(Debug)]
pub struct BtleCentral {
    adapter: Adapter,
    addr: BleAddr,
}

impl BtleCentral {
    /// Opens the adapter whose description contains `adapter` (e.g. `hci0`),
    /// or the first one, and starts scanning for the peat-mesh service.
    pub async fn open(adapter: Option<&str>) -> Result<Arc<Self>, BleError> {
        let manager = Manager::new()
            .await
            .map_err(|e| BleError::Unavailable(e.to_string()))?;
        let adapters = manager
            .adapters()
            .await
            .map_err(|e| BleError::Unavailable(e.to_string()))?;
        let mut chosen = None;
        for a in adapters {
            let info = a.adapter_info().await.unwrap_or_default();
            if adapter.is_none_or(|name| info.contains(name)) {
                chosen = Some(a);
                break;
            }
        }
        let adapter_ = chosen.ok_or_else(|| BleError::NoAdapter(adapter.map(str::to_string)))?;
        match adapter_.adapter_state().await {
            Ok(CentralState::PoweredOn) => {}
            Ok(s) => return Err(BleError::AdapterNotReady(format!("state {s:?}"))),
            Err(e) => return Err(BleError::AdapterNotReady(e.to_string())),
        }
        let addr = adapter_
            .adapter_address()
            .await
            .map_err(|e| BleError::AdapterNotReady(e.to_string()))?
            .ok_or_else(|| BleError::AdapterNotReady("the adapter reports no address".into()))?
            .into_inner();
        adapter_
            .start_scan(ScanFilter {
                services: vec![gatt::SERVICE],
            })
            .await
            .map_err(|e| BleError::AdapterNotReady(format!("scan: {e}")))?;
        Ok(Arc::new(BtleCentral {
            adapter: adapter_,
            addr,
        }))
    }

    async fn dial(&self, peer: BleAddr) -> io::Result<GattConn> {
        let p = self
            .adapter
            .peripherals()
            .await
            .map_err(io::Error::other)?
            .into_iter()
            .find(|p| p.address().into_inner() == peer)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "device not seen by the scan yet")
            })?;
        p.connect().await.map_err(io::Error::other)?;
        p.discover_services().await.map_err(io::Error::other)?;
        let find = |uuid| {
            p.characteristics()
                .into_iter()
                .find(|c| c.uuid == uuid && c.service_uuid == gatt::SERVICE)
                .ok_or_else(|| io::Error::other("the device lacks the peat-mesh GATT service"))
        };
        let (rx, tx) = (find(gatt::RX)?, find(gatt::TX)?);
        p.subscribe(&tx).await.map_err(io::Error::other)?;
        let mtu = p.mtu() as usize;
        if !(ble_frame::MIN_MTU..=ble_frame::MAX_MTU).contains(&mtu) {
            let _ = p.disconnect().await;
            return Err(io::Error::other(format!("negotiated ATT MTU {mtu}")));
        }
        let mut notes = p.notifications().await.map_err(io::Error::other)?;
        let (out, outgoing) = mpsc::channel::<Bytes>(crate::double::CONTROLLER_BUFFER);
        let (inc_tx, inc) = mpsc::channel::<Bytes>(crate::double::CONTROLLER_BUFFER);
        tokio::spawn(async move {
            while let Some(n) = notes.next().await {
                if n.uuid == gatt::TX && inc_tx.send(Bytes::from(n.value)).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(write_loop(p, rx, outgoing));
        Ok(GattConn {
            peer,
            mtu,
            out,
            inc,
        })
    }
}

/// Writes each fragment without response, one at a time (the stack's queue
/// is the flow control); disconnects when the link drops its sender or a
/// write fails.
async fn write_loop(p: Peripheral, rx: Characteristic, mut outgoing: mpsc::Receiver<Bytes>) {
    while let Some(f) = outgoing.recv().await {
        if let Err(e) = p.write(&rx, &f, WriteType::WithoutResponse).await {
            tracing::debug!(error = %e, "BLE write failed");
            break;
        }
    }
    let _ = p.disconnect().await;
}

impl Radio for BtleCentral {
    fn addr(&self) -> BleAddr {
        self.addr
    }

    fn connect(&self, peer: BleAddr) -> RadioFuture<'_, io::Result<GattConn>> {
        Box::pin(self.dial(peer))
    }

    fn take_incoming(&self) -> Option<mpsc::Receiver<GattConn>> {
        None
    }
}

//! A Bluetooth LE link for peat-mesh.
//!
//! The core bonds a node's links under one iroh transport and lets PACE
//! pick one per peer ([`peat_mesh::links`]); this crate adds BLE as such a
//! link, kept out of the core so that the core never depends on a Bluetooth
//! stack. [`ble_link`] turns any [`Radio`] into a [`peat_mesh::links::Link`]:
//!
//! - [`BtleCentral`] — a real radio: btleplug in the central role (BlueZ on
//!   Linux). Opening it on a machine without Bluetooth is a clear
//!   [`BleError`].
//! - [`double::Air`] — an in-process radio double (MTU, throughput, latency,
//!   loss, disconnects, out of range), for tests and benchmarks on machines
//!   without a radio; the link's framing, flow control and reconnection run
//!   the same code over it.
//!
//! [`gatt`] holds the service and characteristic UUIDs, and what the
//! peripheral side (Android, ESP32) implements.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use peat_mesh_ble::{ble_link, BtleCentral};
//! let radio = BtleCentral::open(Some("hci0")).await?;
//! let (link, _handle) = ble_link("ble", radio)?;
//! // NodeConfig::new(...).link(link) — and name "ble" in the PACE levels.
//! # Ok(()) }
//! ```

mod central;
pub mod double;
pub mod gatt;
mod port;
mod radio;

pub use central::{BleError, BtleCentral};
pub use port::{
    ble_link, link_addr, BleLinkHandle, BleStats, BLE_LINK_ID, DIAL_TIMEOUT, FRAME_QUEUE,
    MAX_BLE_CONNECTIONS, REDIAL_AFTER, TO_BOND_QUEUE,
};
pub use radio::{BleAddr, GattConn, Radio, RadioFuture};

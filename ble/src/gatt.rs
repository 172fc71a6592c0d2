//! The GATT service every peat-mesh BLE link speaks, with stable UUIDs.
//!
//! One primary service with two characteristics:
//!
//! - [`RX`]: the central writes to it (write without response); the
//!   peripheral receives.
//! - [`TX`]: the peripheral notifies on it; the central subscribes.
//!
//! Each write or notification is one fragment of a bond frame
//! ([`peat_mesh::links::ble_frame`]: 4-byte header, at most ATT MTU − 3
//! bytes in all). Nothing else crosses: no pairing data, no names. QUIC
//! encrypts and authenticates every packet whatever link carries it, so the
//! service needs no GATT-level security; a central that is not of the
//! formation gets nothing past admission.
//!
//! **The peripheral side** (an Android phone, an ESP32) is not built in this
//! crate (btleplug is central-only): it advertises [`SERVICE`], exposes
//! [`RX`] (properties WRITE_NO_RESPONSE) and [`TX`] (NOTIFY, with its CCCD),
//! negotiates the largest ATT MTU it can (Android: `requestMtu(517)`),
//! reassembles the fragments written to RX per central, and notifies one
//! fragment at a time on TX, waiting for `onNotificationSent` before the next
//! (that is its flow control). Its link address is its Bluetooth device
//! address as the central sees it (a peripheral that rotates a random
//! address must publish the current one with its peer string).

use uuid::Uuid;

/// The peat-mesh link service.
pub const SERVICE: Uuid = Uuid::from_u128(0xbbda7dfd_724b_4e79_b118_040b532206c5);
/// Central → peripheral fragments (write without response).
pub const RX: Uuid = Uuid::from_u128(0x8e1c7582_75de_46be_b9c1_5f2f0ff79a64);
/// Peripheral → central fragments (notify).
pub const TX: Uuid = Uuid::from_u128(0xfec0ae78_a1c2_41ca_8541_81a8dc67d957);

//! Wire format shared by admission and sync: length-prefixed frames.
//!
//! Each frame is a 4-byte big-endian length followed by that many bytes of a
//! [postcard](https://docs.rs/postcard)-encoded [`Frame`]. Lengths above
//! [`MAX_FRAME_LEN`] are rejected before any allocation, and decoding never panics:
//! a malformed frame is a [`Error::Protocol`] that closes the connection.

mod frame;
mod framing;
mod split;
#[cfg(test)]
mod tests;

pub use frame::{
    ChangeSig, Frame, Hash32, ProtocolOffer, MAX_PROTOCOLS, MAX_PROTOCOL_NAME,
    MAX_PROTOCOL_VERSIONS,
};
#[cfg(any(test, fuzzing))]
pub use framing::decode;
pub use framing::encode;
#[cfg(test)]
pub use framing::MAX_REASON_LEN;
pub use framing::{
    read_frame_max, sanitize_reason, write_frame, FrameReader, MAX_ADMISSION_FRAME,
    MAX_MEMBERSHIP_FRAME,
};
pub use split::{split_changes, CHANGE_FRAME_BUDGET, MAX_CHANGE_LEN, MAX_HEADS};

/// The largest frame body accepted (16 MiB).
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// Version of the connection layout (admission, control stream, stream
/// headers) carried in the ALPN and in [`Frame::Hello`]. The protocols inside a
/// connection (sync, blobs, ...) have versions of their own, negotiated with
/// [`Frame::Protocols`].
pub const PROTOCOL_VERSION: u32 = 2;

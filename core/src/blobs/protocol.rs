//! The blob request protocol. Each request is one QUIC bi-stream opened on an
//! admitted peer connection (so only members of the formation can fetch), sent
//! at a lower priority than document sync so that documents keep flowing while
//! a large blob moves.
//!
//! ```text
//! fetcher -> provider   u32 length, postcard BlobRequest
//! provider -> fetcher   u32 length, postcard BlobResponse
//!                       [outboard: 32 bytes per 64 KiB leaf, if asked for]
//!                       [the bytes of each requested leaf range, in order]
//! ```
//!
//! Raw data after the header is not framed: its length follows from the size and
//! the ranges, and every leaf is checked against the outboard on arrival.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::hash::{leaf_count, BlobHash};
use crate::error::{Error, Result};

/// Largest request or response header accepted.
const MAX_HEADER: usize = 64 * 1024;

/// Versions of the blob protocol this node speaks (negotiated per connection,
/// see `transport::router`).
/// Version 2 adds [`BlobRequest::GetInClass`].
pub(crate) const VERSIONS: &[u16] = &[1, 2];

/// Priority of blob streams: below document sync (0), so documents overtake bulk data.
pub(crate) const BLOB_PRIORITY: i32 = -1;
/// Most leaf ranges in one request.
pub(crate) const MAX_RANGES: usize = 1024;

/// A request for a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BlobRequest {
    /// Does the provider hold this blob completely? Answered with `Found` or `NotFound`.
    Query { hash: BlobHash },
    /// Send the outboard (if `outboard`) and then the given half-open leaf ranges.
    Get {
        hash: BlobHash,
        outboard: bool,
        ranges: Vec<(u64, u64)>,
        /// Pace sending to this many bytes per second; 0 for no limit.
        rate: u64,
    },
    /// `Get` in a priority class (version 2): `class` is 0 (critical) to 4
    /// (bulk), see [`crate::Priority::index`].
    GetInClass {
        hash: BlobHash,
        outboard: bool,
        ranges: Vec<(u64, u64)>,
        rate: u64,
        class: u8,
    },
}

impl BlobRequest {
    /// A `Get`, in `class` when the peer speaks version 2 (`Some`).
    pub(crate) fn get(
        hash: BlobHash,
        outboard: bool,
        ranges: Vec<(u64, u64)>,
        rate: u64,
        class: Option<crate::Priority>,
    ) -> BlobRequest {
        match class {
            Some(c) => BlobRequest::GetInClass {
                hash,
                outboard,
                ranges,
                rate,
                class: c.index() as u8,
            },
            None => BlobRequest::Get {
                hash,
                outboard,
                ranges,
                rate,
            },
        }
    }
}

/// The class a provider serves a request in: the one asked for, but never
/// above `Normal` (the higher classes are for documents: a captured peer cannot put its
/// blob fetches ahead of them); `Bulk` for a version 1 `Get`. An unknown
/// class is a protocol error.
pub(crate) fn served_class(class: Option<u8>) -> Result<crate::Priority> {
    let Some(c) = class else {
        return Ok(crate::Priority::Bulk);
    };
    let asked = crate::Priority::ALL
        .get(c as usize)
        .copied()
        .ok_or_else(|| Error::Protocol(format!("unknown blob class {c}")))?;
    Ok(asked.max(crate::Priority::Normal))
}

/// The provider's answer, before any data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BlobResponse {
    Found { size: u64 },
    NotFound,
    Refused { reason: String },
}

async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<()> {
    let body = postcard::to_allocvec(msg).map_err(|e| Error::Internal(e.to_string()))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await.map_err(Error::network)
}

async fn read_msg<R: AsyncRead + Unpin, T: for<'a> Deserialize<'a>>(r: &mut R) -> Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.map_err(eof_is_protocol)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HEADER {
        return Err(Error::Protocol(format!(
            "blob header of {len} bytes exceeds {MAX_HEADER}"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(eof_is_protocol)?;
    decode(&body)
}

pub(crate) fn decode<T: for<'a> Deserialize<'a>>(body: &[u8]) -> Result<T> {
    let (v, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|e| Error::Protocol(format!("malformed blob message: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::Protocol(format!(
            "{} trailing bytes after a blob message",
            rest.len()
        )));
    }
    Ok(v)
}

pub(crate) fn eof_is_protocol(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::Protocol("blob stream ended early".into())
    } else {
        Error::network(e)
    }
}

pub(crate) async fn write_request<W: AsyncWrite + Unpin>(w: &mut W, r: &BlobRequest) -> Result<()> {
    write_msg(w, r).await
}

pub(crate) async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> Result<BlobRequest> {
    read_msg(r).await
}

pub(crate) async fn write_response<W: AsyncWrite + Unpin>(
    w: &mut W,
    r: &BlobResponse,
) -> Result<()> {
    write_msg(w, r).await
}

pub(crate) async fn read_response<R: AsyncRead + Unpin>(r: &mut R) -> Result<BlobResponse> {
    read_msg(r).await
}

/// Checks that `ranges` are sorted, disjoint, non-empty and inside a blob of `size`.
pub(crate) fn check_ranges(ranges: &[(u64, u64)], size: u64) -> Result<()> {
    if ranges.len() > MAX_RANGES {
        return Err(Error::Protocol(format!(
            "{} ranges requested",
            ranges.len()
        )));
    }
    let n = leaf_count(size);
    let mut prev = 0;
    for &(a, b) in ranges {
        if a >= b || b > n || a < prev {
            return Err(Error::Protocol(format!(
                "leaf range {a}..{b} is empty, unsorted or past the {n} leaves of the blob"
            )));
        }
        prev = b;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_are_validated() {
        let size = 10 * super::super::hash::LEAF_SIZE;
        assert!(check_ranges(&[(0, 2), (2, 10)], size).is_ok());
        assert!(check_ranges(&[(0, 11)], size).is_err());
        assert!(check_ranges(&[(3, 3)], size).is_err());
        assert!(check_ranges(&[(4, 6), (0, 2)], size).is_err());
        assert!(check_ranges(&[(0, 1)], 0).is_err());
    }

    #[tokio::test]
    async fn headers_round_trip_and_reject_garbage() {
        let req = BlobRequest::Get {
            hash: BlobHash([7; 32]),
            outboard: true,
            ranges: vec![(0, 4), (9, 12)],
            rate: 1000,
        };
        let mut buf = Vec::new();
        write_request(&mut buf, &req).await.unwrap();
        assert_eq!(read_request(&mut &buf[..]).await.unwrap(), req);
        for cut in 0..buf.len() {
            assert!(read_request(&mut &buf[..cut]).await.is_err());
        }
        let huge = (MAX_HEADER as u32 + 1).to_be_bytes();
        assert!(read_request(&mut &huge[..]).await.is_err());
    }

    proptest! {
        #[test]
        fn random_headers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<BlobRequest>(&body);
            let _ = decode::<BlobResponse>(&body);
        }

        #[test]
        fn requests_round_trip(hash in any::<[u8; 32]>(), ob in any::<bool>(),
                               ranges in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..20),
                               rate in any::<u64>()) {
            let r = BlobRequest::Get { hash: BlobHash(hash), outboard: ob, ranges: ranges.clone(), rate };
            let body = postcard::to_allocvec(&r).unwrap();
            prop_assert_eq!(decode::<BlobRequest>(&body).unwrap(), r);
            let r = BlobRequest::GetInClass { hash: BlobHash(hash), outboard: ob, ranges, rate, class: rate as u8 };
            let body = postcard::to_allocvec(&r).unwrap();
            prop_assert_eq!(decode::<BlobRequest>(&body).unwrap(), r);
        }

        #[test]
        fn a_served_class_is_never_above_normal_and_unknown_ones_are_refused(c in any::<u8>()) {
            match served_class(Some(c)) {
                Ok(p) => prop_assert!(c < 5 && p >= crate::Priority::Normal && p.index() == (c as usize).max(2)),
                Err(e) => prop_assert!(c >= 5 && e.kind() == crate::ErrorKind::Protocol),
            }
        }
    }
}

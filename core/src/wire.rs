//! Wire format shared by admission and sync: length-prefixed frames.
//!
//! Each frame is a 4-byte big-endian length followed by that many bytes of a
//! [postcard](https://docs.rs/postcard)-encoded [`Frame`]. Lengths above
//! [`MAX_FRAME_LEN`] are rejected before any allocation, and decoding never panics:
//! a malformed frame is a [`Error::Protocol`] that closes the connection.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

/// The largest frame body accepted (16 MiB).
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// Version of the sync protocol carried in the ALPN and in [`Frame::Hello`].
pub const PROTOCOL_VERSION: u32 = 1;

/// A 32-byte hash (document version id, change hash, nonce or MAC).
pub type Hash32 = [u8; 32];

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Admission, initiator → responder: protocol version, formation tag and a fresh nonce.
    Hello {
        /// Protocol version.
        version: u32,
        /// Public formation tag.
        formation_tag: [u8; 8],
        /// Initiator nonce.
        nonce: Hash32,
    },
    /// Admission, responder → initiator: responder nonce and proof of the formation secret.
    Challenge {
        /// Responder nonce.
        nonce: Hash32,
        /// Responder's MAC over both ids and both nonces.
        proof: Hash32,
    },
    /// Admission, initiator → responder: initiator's proof.
    Proof {
        /// Initiator's MAC over both ids and both nonces.
        proof: Hash32,
    },
    /// Admission succeeded; sync frames may follow.
    Welcome,
    /// Admission or session refused, with a reason, just before the connection closes.
    Refused {
        /// Human-readable reason.
        reason: String,
    },
    /// A set-reconciliation message (either direction), see [`crate::sync::rbsr`].
    Reconcile {
        /// True on the initiator's first message of a round: the responder takes a
        /// fresh snapshot of its version set.
        start: bool,
        /// Encoded reconciliation message.
        msg: Vec<u8>,
    },
    /// Ask the peer for the documents whose version ids start with these
    /// prefixes (reconciliation tells the initiator only prefixes of the ids it
    /// lacks).
    Want {
        /// Version id prefixes learnt from reconciliation.
        prefixes: Vec<[u8; 8]>,
    },
    /// "These are my heads of this document". A peer that knows all of them
    /// answers with the changes we lack. A peer that does not answers with its own
    /// heads (`answer: true`); if the first side does not know all of those either,
    /// the two have diverged, and it sends its changes and offers its heads again.
    Heads {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// Automerge change hashes.
        heads: Vec<Hash32>,
        /// True when this answers a `Heads` offer the sender could not place.
        answer: bool,
    },
    /// Automerge changes for one document, one encoded change chunk per entry.
    Changes {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// Encoded change chunks.
        changes: Vec<Vec<u8>>,
        /// The sender's heads once these changes are applied. A receiver that
        /// still lacks one of them asks for the rest with [`Frame::Heads`].
        heads: Vec<Hash32>,
    },
}

impl Frame {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "Hello",
            Frame::Challenge { .. } => "Challenge",
            Frame::Proof { .. } => "Proof",
            Frame::Welcome => "Welcome",
            Frame::Refused { .. } => "Refused",
            Frame::Reconcile { .. } => "Reconcile",
            Frame::Want { .. } => "Want",
            Frame::Heads { .. } => "Heads",
            Frame::Changes { .. } => "Changes",
        }
    }
}

/// Encodes a frame with its length prefix.
pub fn encode(frame: &Frame) -> Result<Vec<u8>> {
    let mut out = vec![0u8; 4];
    let body = postcard::to_extend(frame, Vec::new())
        .map_err(|e| Error::Internal(format!("encode {}: {e}", frame.name())))?;
    if body.len() > MAX_FRAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "{} frame of {} bytes exceeds the {} byte limit",
            frame.name(),
            body.len(),
            MAX_FRAME_LEN
        )));
    }
    out[..4].copy_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a frame body (without the length prefix). Trailing bytes are an error.
pub fn decode(body: &[u8]) -> Result<Frame> {
    let (frame, rest) = postcard::take_from_bytes::<Frame>(body)
        .map_err(|e| Error::Protocol(format!("malformed frame: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::Protocol(format!(
            "{} trailing bytes after {} frame",
            rest.len(),
            frame.name()
        )));
    }
    Ok(frame)
}

/// Reads one frame. `Ok(None)` on a clean end of stream before a new frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>> {
    Ok(read_frame_sized(r).await?.map(|(f, _)| f))
}

/// Like [`read_frame`], also returning the frame's size on the wire.
pub async fn read_frame_sized<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<(Frame, usize)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::network(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return Err(Error::Protocol(format!(
            "frame length {len} exceeds the {MAX_FRAME_LEN} byte limit"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Protocol(format!("stream ended inside a {len} byte frame"))
        } else {
            Error::network(e)
        }
    })?;
    decode(&body).map(|f| Some((f, len + 4)))
}

/// Reads frames through its own buffer, so that a caller can take every frame
/// that has already arrived without waiting ([`FrameReader::next_buffered`]) and
/// process them as a batch.
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a byte stream.
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
        }
    }

    /// A complete frame from the buffer, if one is there; never waits.
    pub fn next_buffered(&mut self) -> Result<Option<(Frame, usize)>> {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(Error::Protocol(format!(
                "frame length {len} exceeds the {MAX_FRAME_LEN} byte limit"
            )));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let frame = decode(&avail[4..4 + len])?;
        self.start += 4 + len;
        Ok(Some((frame, len + 4)))
    }

    /// The next frame, waiting for it. `Ok(None)` on a clean end of stream.
    pub async fn read(&mut self) -> Result<Option<(Frame, usize)>> {
        loop {
            if let Some(f) = self.next_buffered()? {
                return Ok(Some(f));
            }
            // Compact, then read whatever has arrived.
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let have = self.buf.len();
            self.buf.resize(have + 64 * 1024, 0);
            let n = self.inner.read(&mut self.buf[have..]).await;
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(Error::network(e));
                }
            };
            self.buf.truncate(have + n);
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::Protocol(format!(
                        "stream ended inside a frame ({} bytes buffered)",
                        self.buf.len()
                    )))
                };
            }
        }
    }
}

/// Writes one frame; returns its size on the wire.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> Result<usize> {
    let bytes = encode(frame)?;
    w.write_all(&bytes).await.map_err(Error::network)?;
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_hash() -> impl Strategy<Value = Hash32> {
        any::<[u8; 32]>()
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            (any::<u32>(), any::<[u8; 8]>(), arb_hash()).prop_map(
                |(version, formation_tag, nonce)| {
                    Frame::Hello {
                        version,
                        formation_tag,
                        nonce,
                    }
                }
            ),
            (arb_hash(), arb_hash()).prop_map(|(nonce, proof)| Frame::Challenge { nonce, proof }),
            arb_hash().prop_map(|proof| Frame::Proof { proof }),
            Just(Frame::Welcome),
            ".{0,40}".prop_map(|reason| Frame::Refused { reason }),
            (
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..300)
            )
                .prop_map(|(start, msg)| Frame::Reconcile { start, msg }),
            proptest::collection::vec(any::<[u8; 8]>(), 0..10)
                .prop_map(|prefixes| Frame::Want { prefixes }),
            (
                ".{0,20}",
                ".{0,20}",
                proptest::collection::vec(arb_hash(), 0..4),
                any::<bool>()
            )
                .prop_map(|(collection, id, heads, answer)| Frame::Heads {
                    collection,
                    id,
                    heads,
                    answer
                }),
            (
                ".{0,20}",
                ".{0,20}",
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..4),
                proptest::collection::vec(arb_hash(), 0..3)
            )
                .prop_map(|(collection, id, changes, heads)| Frame::Changes {
                    collection,
                    id,
                    changes,
                    heads
                }),
        ]
    }

    proptest! {
        #[test]
        fn frames_round_trip(frame in arb_frame()) {
            let bytes = encode(&frame).unwrap();
            prop_assert_eq!(u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
            prop_assert_eq!(decode(&bytes[4..]).unwrap(), frame);
        }

        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&body);
        }

        #[test]
        fn truncated_frames_are_errors(frame in arb_frame(), cut in 0usize..64) {
            let bytes = encode(&frame).unwrap();
            let body = &bytes[4..];
            if cut < body.len() {
                prop_assert!(decode(&body[..body.len() - cut - 1]).is_err());
            }
        }

        #[test]
        fn trailing_garbage_is_an_error(frame in arb_frame(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
            let mut body = encode(&frame).unwrap()[4..].to_vec();
            body.extend(extra);
            prop_assert!(decode(&body).is_err());
        }
    }

    proptest! {
        #[test]
        fn frame_reader_splits_any_chunking(frames in proptest::collection::vec(arb_frame(), 1..8), chunk in 1usize..50) {
            let mut bytes = Vec::new();
            for f in &frames {
                bytes.extend(encode(f).unwrap());
            }
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = rt.block_on(async {
                let (mut w, r) = tokio::io::duplex(64);
                let writer = async move {
                    use tokio::io::AsyncWriteExt;
                    for c in bytes.chunks(chunk) {
                        w.write_all(c).await.unwrap();
                    }
                };
                let reader = async move {
                    let mut fr = FrameReader::new(r);
                    let mut out = Vec::new();
                    while let Some((f, _)) = fr.read().await.unwrap() {
                        out.push(f);
                        while let Some((f, _)) = fr.next_buffered().unwrap() {
                            out.push(f);
                        }
                    }
                    out
                };
                tokio::join!(writer, reader).1
            });
            prop_assert_eq!(got, frames);
        }
    }

    #[tokio::test]
    async fn frame_reader_rejects_truncation_and_oversize() {
        let mut bytes = encode(&Frame::Welcome).unwrap();
        bytes.pop();
        let mut r = FrameReader::new(&bytes[..]);
        assert_eq!(
            r.read().await.unwrap_err().kind(),
            crate::ErrorKind::Protocol
        );
        let big: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0];
        let mut r = FrameReader::new(big);
        assert_eq!(
            r.read().await.unwrap_err().kind(),
            crate::ErrorKind::Protocol
        );
    }

    #[tokio::test]
    async fn oversized_length_is_rejected_without_allocating() {
        let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = read_frame(&mut bytes).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Protocol);
    }

    #[tokio::test]
    async fn stream_cut_inside_frame_is_a_protocol_error() {
        let bytes = encode(&Frame::Welcome).unwrap();
        let mut longer = bytes.clone();
        longer[3] = 10; // claims 10 bytes, has 1
        let mut r: &[u8] = &longer;
        assert_eq!(
            read_frame(&mut r).await.unwrap_err().kind(),
            crate::ErrorKind::Protocol
        );
        let mut r: &[u8] = &bytes;
        assert_eq!(read_frame(&mut r).await.unwrap(), Some(Frame::Welcome));
        assert_eq!(read_frame(&mut r).await.unwrap(), None);
    }
}

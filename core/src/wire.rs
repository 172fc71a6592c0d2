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

/// Version of the connection layout (admission, control stream, stream
/// headers) carried in the ALPN and in [`Frame::Hello`]. The protocols inside a
/// connection (sync, blobs, ...) have versions of their own, negotiated with
/// [`Frame::Protocols`].
pub const PROTOCOL_VERSION: u32 = 2;

/// A protocol a node speaks and the versions of it, in [`Frame::Protocols`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolOffer {
    /// Protocol name (`sync`, `blobs`, ...), at most [`MAX_PROTOCOL_NAME`] bytes.
    pub name: String,
    /// Versions spoken, at most [`MAX_PROTOCOL_VERSIONS`].
    pub versions: Vec<u16>,
}

/// Longest protocol name in an offer or a stream header.
pub const MAX_PROTOCOL_NAME: usize = 32;
/// Most protocols one node offers.
pub const MAX_PROTOCOLS: usize = 16;
/// Most versions offered per protocol.
pub const MAX_PROTOCOL_VERSIONS: usize = 8;

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
    /// Complete changes of one document that did not fit in one frame: apply
    /// them, and wait for the [`Frame::Changes`] that ends the run (it carries
    /// the heads) before answering.
    MoreChanges {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// Encoded change chunks.
        changes: Vec<Vec<u8>>,
    },
    /// A piece of one change too large for a frame. Pieces of a change come in
    /// order with nothing of another document between them; the one with `last`
    /// completes the change, which then counts as part of a [`Frame::MoreChanges`].
    ChangePiece {
        /// Collection.
        collection: String,
        /// Document id.
        id: String,
        /// The next bytes of the change.
        bytes: Vec<u8>,
        /// True on the change's final piece.
        last: bool,
    },
    /// Right after admission, on the admission (control) stream, each way: the
    /// protocols the sender speaks. Each protocol then runs at the highest
    /// version both sides offer.
    Protocols {
        /// At most [`MAX_PROTOCOLS`] offers.
        offers: Vec<ProtocolOffer>,
    },
    /// First frame of every stream but the control stream: the protocol the
    /// stream carries and the negotiated version.
    Open {
        /// Protocol name.
        protocol: String,
        /// Version both sides offered.
        version: u16,
    },
    /// On the control stream: asks for nothing; its transport acknowledgement
    /// shows the peer is alive.
    Ping,
}

/// Most bytes of change data put in one frame; a larger reply is split into
/// [`Frame::MoreChanges`] and [`Frame::ChangePiece`] frames by [`split_changes`].
pub const CHANGE_FRAME_BUDGET: usize = 1 << 20;

/// Largest single Automerge change accepted, from a peer or from a local
/// write (64 MiB). A document's whole history may be larger: it is sent as many
/// changes, each inside this bound.
pub const MAX_CHANGE_LEN: usize = 64 << 20;

/// Most heads accepted in one frame. A document has one head per concurrent
/// branch not yet merged; real documents have a handful.
pub const MAX_HEADS: usize = 1024;

/// Splits a [`Frame::Changes`] whose change data exceeds
/// [`CHANGE_FRAME_BUDGET`] into frames that each stay within it: complete
/// changes grouped into [`Frame::MoreChanges`], changes larger than the budget
/// cut into [`Frame::ChangePiece`]s, and a final `Changes` with the heads. Any
/// other frame is returned as it is.
pub fn split_changes(frame: Frame) -> Vec<Frame> {
    let Frame::Changes {
        collection,
        id,
        changes,
        heads,
    } = frame
    else {
        return vec![frame];
    };
    if changes.iter().map(Vec::len).sum::<usize>() <= CHANGE_FRAME_BUDGET {
        return vec![Frame::Changes {
            collection,
            id,
            changes,
            heads,
        }];
    }
    let mut out = Vec::new();
    let mut group: Vec<Vec<u8>> = Vec::new();
    let mut group_len = 0;
    let flush = |group: &mut Vec<Vec<u8>>, group_len: &mut usize, out: &mut Vec<Frame>| {
        if !group.is_empty() {
            out.push(Frame::MoreChanges {
                collection: collection.clone(),
                id: id.clone(),
                changes: std::mem::take(group),
            });
            *group_len = 0;
        }
    };
    for c in changes {
        if c.len() > CHANGE_FRAME_BUDGET {
            flush(&mut group, &mut group_len, &mut out);
            let n = c.len().div_ceil(CHANGE_FRAME_BUDGET);
            for (i, piece) in c.chunks(CHANGE_FRAME_BUDGET).enumerate() {
                out.push(Frame::ChangePiece {
                    collection: collection.clone(),
                    id: id.clone(),
                    bytes: piece.to_vec(),
                    last: i + 1 == n,
                });
            }
            continue;
        }
        if group_len + c.len() > CHANGE_FRAME_BUDGET {
            flush(&mut group, &mut group_len, &mut out);
        }
        group_len += c.len();
        group.push(c);
    }
    out.push(Frame::Changes {
        collection,
        id,
        changes: group,
        heads,
    });
    out
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
            Frame::MoreChanges { .. } => "MoreChanges",
            Frame::ChangePiece { .. } => "ChangePiece",
            Frame::Protocols { .. } => "Protocols",
            Frame::Open { .. } => "Open",
            Frame::Ping => "Ping",
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
    read_frame_max(r, MAX_FRAME_LEN).await
}

/// Largest admission frame accepted: admission messages are under 100 bytes
/// (a `Refused` reason is cut to [`MAX_REASON_LEN`]).
pub const MAX_ADMISSION_FRAME: usize = 256;

/// Longest peer-supplied reason kept (in characters).
pub const MAX_REASON_LEN: usize = 120;

/// A peer's free text made safe to log and show: printable ASCII only (other
/// characters become `?`), at most [`MAX_REASON_LEN`] characters.
pub fn sanitize_reason(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_REASON_LEN)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().count() > MAX_REASON_LEN {
        out.push_str("...");
    }
    out
}

/// Reads one frame of at most `max` bytes. `Ok(None)` on a clean end of stream.
pub async fn read_frame_max<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<(Frame, usize)>> {
    let max = max.min(MAX_FRAME_LEN);
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::network(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(Error::Protocol(format!(
            "frame length {len} exceeds the {max} byte limit"
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
            (
                ".{0,20}",
                ".{0,20}",
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..4),
            )
                .prop_map(|(collection, id, changes)| Frame::MoreChanges {
                    collection,
                    id,
                    changes,
                }),
            (
                ".{0,20}",
                ".{0,20}",
                proptest::collection::vec(any::<u8>(), 0..100),
                any::<bool>()
            )
                .prop_map(|(collection, id, bytes, last)| Frame::ChangePiece {
                    collection,
                    id,
                    bytes,
                    last
                }),
            proptest::collection::vec(
                (".{0,10}", proptest::collection::vec(any::<u16>(), 0..4)),
                0..4
            )
            .prop_map(|o| Frame::Protocols {
                offers: o
                    .into_iter()
                    .map(|(name, versions)| ProtocolOffer { name, versions })
                    .collect()
            }),
            (".{0,10}", any::<u16>())
                .prop_map(|(protocol, version)| Frame::Open { protocol, version }),
            Just(Frame::Ping),
        ]
    }

    /// Reassembles what [`split_changes`] made, as a receiver does.
    fn reassemble(frames: &[Frame]) -> (Vec<Vec<u8>>, Vec<Hash32>) {
        let (mut changes, mut piece) = (Vec::new(), Vec::new());
        for f in frames {
            match f {
                Frame::MoreChanges { changes: c, .. } => changes.extend(c.iter().cloned()),
                Frame::ChangePiece { bytes, last, .. } => {
                    piece.extend_from_slice(bytes);
                    if *last {
                        changes.push(std::mem::take(&mut piece));
                    }
                }
                Frame::Changes {
                    changes: c, heads, ..
                } => {
                    changes.extend(c.iter().cloned());
                    assert!(piece.is_empty());
                    return (changes, heads.clone());
                }
                other => panic!("unexpected {}", other.name()),
            }
        }
        panic!("no final Changes frame")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn split_changes_stays_in_budget_and_reassembles(
            sizes in proptest::collection::vec(0usize..(3 * CHANGE_FRAME_BUDGET), 0..6),
        ) {
            let changes: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| vec![i as u8; *n])
                .collect();
            let heads = vec![[7u8; 32]];
            let frames = split_changes(Frame::Changes {
                collection: "c".into(),
                id: "d".into(),
                changes: changes.clone(),
                heads: heads.clone(),
            });
            for f in &frames {
                prop_assert!(encode(f).unwrap().len() <= CHANGE_FRAME_BUDGET + 1024);
            }
            prop_assert_eq!(reassemble(&frames), (changes, heads));
        }
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
    async fn admission_frames_are_capped() {
        let big = encode(&Frame::Refused {
            reason: "x".repeat(1000),
        })
        .unwrap();
        let mut r: &[u8] = &big;
        let err = read_frame_max(&mut r, MAX_ADMISSION_FRAME)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("256"), "{err}");
    }

    #[test]
    fn reasons_are_cut_and_made_printable() {
        assert_eq!(sanitize_reason("ok reason"), "ok reason");
        assert_eq!(sanitize_reason("a\nb\u{1b}[31mc"), "a?b?[31mc");
        let long = sanitize_reason(&"y".repeat(10_000));
        assert_eq!(long.len(), MAX_REASON_LEN + 3);
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

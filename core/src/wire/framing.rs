//! Length-prefixed framing: encoding, decoding (bounded, never panicking),
//! reading and writing frames on a stream.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Frame, MAX_FRAME_LEN};
use crate::error::{Error, Result};

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

/// Largest admission frame accepted: admission messages are under 100 bytes
/// (a `Refused` reason is cut to [`MAX_REASON_LEN`]).
pub const MAX_ADMISSION_FRAME: usize = 256;

/// Largest frame admission reads: room for a [`Frame::Membership`] of
/// [`crate::trust::MAX_CHAIN`] certificates of [`crate::trust::MAX_CERT_LEN`].
pub const MAX_MEMBERSHIP_FRAME: usize = 4096;

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

//! The bond's frames on a member link: QUIC packets and the probes that
//! measure each link.
//!
//! ```text
//! Data      0x01 | sender bond id (8) | QUIC packet
//! DataFrom  0x02 | sender bond address (len u16 + bytes) | QUIC packet
//! Probe     0x03 | sender bond id (8) | seq (4) | sender's clock, µs (8)
//! Echo      0x04 | sender bond id (8) | seq (4) | the probe's clock, µs (8) | known (1)
//! ```
//!
//! `DataFrom` carries the sender's whole bond address (needed by the receiver
//! to answer) until an echo from that peer says it knows the sender (`known`
//! = 1); after that `Data` names the sender by its 8-byte id alone, so a thin
//! link carries 9 bytes of overhead per packet. An echo with `known` = 0 (the
//! peer restarted, or forgot this node) brings `DataFrom` back. All integers are big-endian. Decoding never
//! panics; a malformed frame is an error and is dropped by the caller.

use bytes::{BufMut, Bytes, BytesMut};

/// Longest bond address a frame may carry.
pub(crate) const MAX_ADDR_LEN: usize = 1024;

/// One frame on a member link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    Data {
        from: u64,
        packet: Bytes,
    },
    DataFrom {
        from_addr: Bytes,
        packet: Bytes,
    },
    /// A probe of one link. `nonce` is random: only an echo carrying it back
    /// counts, so nobody who did not see the probe can answer it.
    Probe {
        from: u64,
        seq: u32,
        nonce: u64,
    },
    Echo {
        from: u64,
        seq: u32,
        nonce: u64,
        known: bool,
    },
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    #[error("frame truncated")]
    Truncated,
    #[error("bond address of {0} bytes (at most {MAX_ADDR_LEN})")]
    AddrTooLong(usize),
    #[error("{0} trailing bytes after a probe")]
    Trailing(usize),
    #[error("echo flag {0} (0 or 1)")]
    BadFlag(u8),
}

const DATA: u8 = 0x01;
const DATA_FROM: u8 = 0x02;
const PROBE: u8 = 0x03;
const ECHO: u8 = 0x04;

impl Frame {
    pub(crate) fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        match self {
            Frame::Data { from, packet } => {
                b.reserve(9 + packet.len());
                b.put_u8(DATA);
                b.put_u64(*from);
                b.put_slice(packet);
            }
            Frame::DataFrom { from_addr, packet } => {
                b.reserve(3 + from_addr.len() + packet.len());
                b.put_u8(DATA_FROM);
                b.put_u16(from_addr.len() as u16);
                b.put_slice(from_addr);
                b.put_slice(packet);
            }
            Frame::Probe { from, seq, nonce } => {
                b.put_u8(PROBE);
                b.put_u64(*from);
                b.put_u32(*seq);
                b.put_u64(*nonce);
            }
            Frame::Echo {
                from,
                seq,
                nonce,
                known,
            } => {
                b.put_u8(ECHO);
                b.put_u64(*from);
                b.put_u32(*seq);
                b.put_u64(*nonce);
                b.put_u8(u8::from(*known));
            }
        }
        b.freeze()
    }

    pub(crate) fn decode(mut b: Bytes) -> Result<Frame, FrameError> {
        let kind = *b.first().ok_or(FrameError::Empty)?;
        let _ = b.split_to(1);
        let take = |b: &mut Bytes, n: usize| -> Result<Bytes, FrameError> {
            if b.len() < n {
                return Err(FrameError::Truncated);
            }
            Ok(b.split_to(n))
        };
        let u64_of = |s: Bytes| u64::from_be_bytes(s[..].try_into().unwrap_or([0; 8]));
        match kind {
            DATA => {
                let from = u64_of(take(&mut b, 8)?);
                Ok(Frame::Data { from, packet: b })
            }
            DATA_FROM => {
                let l = take(&mut b, 2)?;
                let len = u16::from_be_bytes([l[0], l[1]]) as usize;
                if len > MAX_ADDR_LEN {
                    return Err(FrameError::AddrTooLong(len));
                }
                let from_addr = take(&mut b, len)?;
                Ok(Frame::DataFrom {
                    from_addr,
                    packet: b,
                })
            }
            PROBE | ECHO => {
                let from = u64_of(take(&mut b, 8)?);
                let s = take(&mut b, 4)?;
                let seq = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
                let nonce = u64_of(take(&mut b, 8)?);
                let known = if kind == ECHO {
                    match take(&mut b, 1)?[0] {
                        0 => Some(false),
                        1 => Some(true),
                        f => return Err(FrameError::BadFlag(f)),
                    }
                } else {
                    None
                };
                if !b.is_empty() {
                    return Err(FrameError::Trailing(b.len()));
                }
                Ok(match known {
                    None => Frame::Probe { from, seq, nonce },
                    Some(known) => Frame::Echo {
                        from,
                        seq,
                        nonce,
                        known,
                    },
                })
            }
            k => Err(FrameError::UnknownKind(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame() -> impl Strategy<Value = Frame> {
        let bytes = |n| proptest::collection::vec(any::<u8>(), 0..n).prop_map(Bytes::from);
        prop_oneof![
            (any::<u64>(), bytes(1500)).prop_map(|(from, packet)| Frame::Data { from, packet }),
            (bytes(MAX_ADDR_LEN), bytes(1500))
                .prop_map(|(from_addr, packet)| Frame::DataFrom { from_addr, packet }),
            (any::<u64>(), any::<u32>(), any::<u64>())
                .prop_map(|(from, seq, nonce)| { Frame::Probe { from, seq, nonce } }),
            (any::<u64>(), any::<u32>(), any::<u64>(), any::<bool>()).prop_map(
                |(from, seq, nonce, known)| Frame::Echo {
                    from,
                    seq,
                    nonce,
                    known,
                }
            ),
        ]
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(Frame::decode(Bytes::new()), Err(FrameError::Empty));
        assert_eq!(
            Frame::decode(Bytes::from_static(&[9])),
            Err(FrameError::UnknownKind(9))
        );
        assert_eq!(
            Frame::decode(Bytes::from_static(&[DATA, 1, 2])),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            Frame::decode(Bytes::from_static(&[DATA_FROM, 0xff, 0xff])),
            Err(FrameError::AddrTooLong(0xffff))
        );
        assert_eq!(
            Frame::decode(Bytes::from_static(&[DATA_FROM, 0, 4, 1])),
            Err(FrameError::Truncated)
        );
        let mut probe = Frame::Probe {
            from: 1,
            seq: 2,
            nonce: 3,
        }
        .encode()
        .to_vec();
        probe.push(0);
        assert_eq!(
            Frame::decode(Bytes::from(probe)),
            Err(FrameError::Trailing(1))
        );
        let mut echo = Frame::Echo {
            from: 1,
            seq: 2,
            nonce: 3,
            known: true,
        }
        .encode()
        .to_vec();
        *echo.last_mut().unwrap() = 2;
        assert_eq!(
            Frame::decode(Bytes::from(echo)),
            Err(FrameError::BadFlag(2))
        );
    }

    proptest! {
        #[test]
        fn frames_round_trip(f in frame()) {
            prop_assert_eq!(Frame::decode(f.encode()), Ok(f));
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Frame::decode(Bytes::from(b));
        }

        #[test]
        fn every_truncation_of_a_probe_fails(f in frame(), cut in 0usize..22) {
            if matches!(f, Frame::Probe { .. } | Frame::Echo { .. }) {
                let e = f.encode();
                let cut = cut.min(e.len() - 1);
                prop_assert!(Frame::decode(e.slice(..cut)).is_err());
            }
        }
    }
}

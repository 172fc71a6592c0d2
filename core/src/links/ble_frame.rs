//! Fragmentation of the bond's frames for a BLE GATT link.
//!
//! A GATT write or notification carries at most ATT_MTU − 3 bytes (20 at the
//! minimum MTU of 23, 514 at the maximum of 517); a bond frame is a QUIC
//! packet (≥ 1,200 bytes) plus a few bytes. Each frame is cut into fragments
//! with a 4-byte header:
//!
//! ```text
//! message id (u16 BE) | index (u8) | count (u8) | payload
//! ```
//!
//! The receiver reassembles per message id, keeps at most
//! [`MAX_PARTIAL`] messages in progress (the oldest is dropped past it: a
//! lost fragment must not pin memory), and refuses fragments that contradict
//! each other (another count, an index past the count, a repeated index with
//! other bytes) or would make a message longer than [`MAX_MESSAGE`]. Every
//! refusal is an error value, never a panic. Written by hand: a GATT link's
//! segmentation is a few dozen lines and no crate offers it apart from a
//! whole BLE stack.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

/// Smallest ATT MTU a BLE link may have.
pub const MIN_MTU: usize = 23;
/// Largest ATT MTU.
pub const MAX_MTU: usize = 517;
/// Bytes of ATT overhead in a write or notification.
const ATT_OVERHEAD: usize = 3;
/// Bytes of the fragment header.
pub const HEADER: usize = 4;
/// Longest message (bond frame) carried: what 255 fragments hold at the
/// smallest MTU (16 payload bytes each).
pub const MAX_MESSAGE: usize = 255 * (MIN_MTU - ATT_OVERHEAD - HEADER);
/// Messages reassembled at once.
pub const MAX_PARTIAL: usize = 4;

/// Why a fragment or message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BleFrameError {
    #[error("ATT MTU {0} outside {MIN_MTU}..={MAX_MTU}")]
    Mtu(usize),
    #[error("message of {0} bytes (at most {MAX_MESSAGE})")]
    TooLong(usize),
    #[error("fragment of {0} bytes: shorter than its header or longer than the MTU allows")]
    BadLength(usize),
    #[error("fragment {index} of {count}")]
    BadIndex { index: u8, count: u8 },
    #[error("fragment says {got} fragments, earlier ones said {want}")]
    CountChanged { want: u8, got: u8 },
    #[error("fragment {0} repeated with other bytes")]
    Conflict(u8),
}

fn payload_per_fragment(mtu: usize) -> Result<usize, BleFrameError> {
    if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
        return Err(BleFrameError::Mtu(mtu));
    }
    Ok(mtu - ATT_OVERHEAD - HEADER)
}

/// Cuts `message` into fragments for a link of ATT MTU `mtu`.
pub fn fragment(id: u16, message: &[u8], mtu: usize) -> Result<Vec<Bytes>, BleFrameError> {
    let per = payload_per_fragment(mtu)?;
    if message.len() > MAX_MESSAGE {
        return Err(BleFrameError::TooLong(message.len()));
    }
    let count = message.len().div_ceil(per).max(1);
    let count = u8::try_from(count).map_err(|_| BleFrameError::TooLong(message.len()))?;
    let mut out = Vec::with_capacity(count as usize);
    for index in 0..count {
        let start = index as usize * per;
        let end = (start + per).min(message.len());
        let mut b = BytesMut::with_capacity(HEADER + end - start);
        b.put_u16(id);
        b.put_u8(index);
        b.put_u8(count);
        b.put_slice(&message[start..end]);
        out.push(b.freeze());
    }
    Ok(out)
}

#[derive(Debug)]
struct Partial {
    id: u16,
    count: u8,
    parts: Vec<Option<Bytes>>,
    bytes: usize,
}

/// Reassembles fragments arriving on one link from one peer.
#[derive(Debug)]
pub struct Reassembler {
    mtu: usize,
    partial: VecDeque<Partial>,
    /// Messages dropped unfinished (evicted by newer ones).
    pub dropped: u64,
}

impl Reassembler {
    /// A reassembler for a link of ATT MTU `mtu`.
    pub fn new(mtu: usize) -> Result<Self, BleFrameError> {
        payload_per_fragment(mtu)?;
        Ok(Reassembler {
            mtu,
            partial: VecDeque::new(),
            dropped: 0,
        })
    }

    /// Takes one fragment; returns the message it completes, if any.
    pub fn push(&mut self, fragment: &[u8]) -> Result<Option<Bytes>, BleFrameError> {
        let max = self.mtu - ATT_OVERHEAD;
        if fragment.len() < HEADER || fragment.len() > max {
            return Err(BleFrameError::BadLength(fragment.len()));
        }
        let id = u16::from_be_bytes([fragment[0], fragment[1]]);
        let (index, count) = (fragment[2], fragment[3]);
        if count == 0 || index >= count {
            return Err(BleFrameError::BadIndex { index, count });
        }
        let payload = Bytes::copy_from_slice(&fragment[HEADER..]);
        let per = max - HEADER;
        if count as usize * per > MAX_MESSAGE + per {
            return Err(BleFrameError::TooLong(count as usize * per));
        }
        if count == 1 {
            return Ok(Some(payload));
        }
        let pos = match self.partial.iter().position(|p| p.id == id) {
            Some(i) => i,
            None => {
                if self.partial.len() >= MAX_PARTIAL {
                    self.partial.pop_front();
                    self.dropped += 1;
                }
                // Sized from the peer's count: at most 255 slots (a u8), for at
                // most MAX_PARTIAL messages, each holding at most MAX_MESSAGE bytes.
                self.partial.push_back(Partial {
                    id,
                    count,
                    parts: vec![None; count as usize],
                    bytes: 0,
                });
                self.partial.len() - 1
            }
        };
        let p = &mut self.partial[pos];
        if p.count != count {
            let want = p.count;
            self.partial.remove(pos);
            return Err(BleFrameError::CountChanged { want, got: count });
        }
        match &p.parts[index as usize] {
            Some(old) if *old != payload => {
                self.partial.remove(pos);
                return Err(BleFrameError::Conflict(index));
            }
            Some(_) => return Ok(None), // a repeat: nothing new
            None => {}
        }
        p.bytes += payload.len();
        if p.bytes > MAX_MESSAGE {
            let len = p.bytes;
            self.partial.remove(pos);
            return Err(BleFrameError::TooLong(len));
        }
        p.parts[index as usize] = Some(payload);
        if p.parts.iter().all(Option::is_some) {
            let done = self.partial.remove(pos).map(|p| p.parts);
            let mut out = BytesMut::new();
            for part in done.into_iter().flatten().flatten() {
                out.put_slice(&part);
            }
            return Ok(Some(out.freeze()));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any message, any MTU, fragments in any order (and some repeated):
        /// the message comes back whole, once.
        #[test]
        fn fragments_reassemble_in_any_order(
            msg in proptest::collection::vec(any::<u8>(), 0..MAX_MESSAGE),
            mtu in MIN_MTU..=MAX_MTU,
            id in any::<u16>(),
            seed in any::<u64>(),
        ) {
            let mut frags = fragment(id, &msg, mtu).unwrap();
            prop_assert!(frags.iter().all(|f| f.len() <= mtu - 3));
            // A deterministic shuffle and one repeat.
            let n = frags.len();
            for i in (1..n).rev() {
                let j = (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize;
                frags.swap(i, j);
            }
            if n > 1 { let f = frags[0].clone(); frags.insert(1, f); }
            let mut r = Reassembler::new(mtu).unwrap();
            let mut got = Vec::new();
            for f in &frags {
                if let Some(m) = r.push(f).unwrap() { got.push(m); }
            }
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0][..], &msg[..]);
        }

        /// Any bytes as a fragment: a clean error or a result, never a panic,
        /// and never more than MAX_PARTIAL messages held.
        #[test]
        fn any_bytes_are_handled(frags in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..50), mtu in MIN_MTU..=MAX_MTU) {
            let mut r = Reassembler::new(mtu).unwrap();
            for f in frags {
                let _ = r.push(&f);
                prop_assert!(r.partial.len() <= MAX_PARTIAL);
            }
        }
    }

    #[test]
    fn contradictions_are_errors() {
        let mut r = Reassembler::new(23).unwrap();
        assert_eq!(r.push(&[0, 1, 0]), Err(BleFrameError::BadLength(3)));
        assert_eq!(r.push(&[0; 21]), Err(BleFrameError::BadLength(21)));
        assert_eq!(
            r.push(&[0, 1, 3, 3, 9]),
            Err(BleFrameError::BadIndex { index: 3, count: 3 })
        );
        assert_eq!(
            r.push(&[0, 1, 0, 0, 9]),
            Err(BleFrameError::BadIndex { index: 0, count: 0 })
        );
        assert_eq!(r.push(&[0, 1, 0, 3, 9]), Ok(None));
        assert_eq!(
            r.push(&[0, 1, 1, 4, 9]),
            Err(BleFrameError::CountChanged { want: 3, got: 4 })
        );
        assert_eq!(r.push(&[0, 2, 0, 3, 9]), Ok(None));
        assert_eq!(r.push(&[0, 2, 0, 3, 8]), Err(BleFrameError::Conflict(0)));
        // 510 payload bytes per fragment at MTU 517: 255 of them exceed the cap.
        let mut big = Reassembler::new(517).unwrap();
        assert!(matches!(
            big.push(&[0, 3, 0, 255, 1]),
            Err(BleFrameError::TooLong(_))
        ));
        assert_eq!(fragment(0, &[0; 10], 22), Err(BleFrameError::Mtu(22)));
        assert_eq!(
            fragment(0, &[0; MAX_MESSAGE + 1], 517),
            Err(BleFrameError::TooLong(MAX_MESSAGE + 1))
        );
    }

    #[test]
    fn lost_fragments_do_not_pin_memory() {
        let mut r = Reassembler::new(23).unwrap();
        for id in 0..10u16 {
            // First fragment of a 3-fragment message, the rest never comes.
            assert_eq!(r.push(&[(id >> 8) as u8, id as u8, 0, 3, 1]), Ok(None));
        }
        assert_eq!(r.partial.len(), MAX_PARTIAL);
        assert_eq!(r.dropped, 10 - MAX_PARTIAL as u64);
    }
}

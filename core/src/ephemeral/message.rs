//! The wire form of an ephemeral message: one QUIC datagram (or one sealed
//! multicast datagram) each.
//!
//! A fixed layout, big-endian, written by hand: it is eleven fields, decoded
//! on every datagram at tens of thousands a second, and each length is checked
//! against its bound before anything is copied — a general serialiser would
//! add no safety and cost a pass over the payload.
//!
//! ```text
//! off  len  field
//!   0    1  tag          0xE1: ephemeral message, layout 1
//!   1    1  flags        bit 0 JSON payload, bit 1 signed; others must be 0
//!   2    1  hops_left    how many more times it may be forwarded
//!   3    1  hops         how many times it was forwarded
//!   4    4  age_ms       time spent in transit and in forwarders so far
//!   8   32  origin       the publisher's node id (Ed25519 public key)
//!  40    8  seq          the publisher's message number (with origin: the id)
//!  48    8  sent_at_ms   the publisher's wall clock, Unix ms
//!  56    4  ttl_ms       lifetime given at publish (1 ms ..= MAX_TTL)
//!  60    1  topic_len    1 ..= MAX_TOPIC
//!  61    n  topic        UTF-8, no control characters
//!   .    2  payload_len  0 ..= MAX_PAYLOAD
//!   .    m  payload
//!   .   64  signature    only if signed: the origin's Ed25519 signature
//! ```
//!
//! The signature covers a domain label, the flags and every byte from
//! `origin` to the end of the payload: what a forwarder changes (`hops_left`,
//! `hops`, `age_ms`) is outside it, what the publisher said is inside.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::NodeId;

/// First byte of an ephemeral datagram.
pub const TAG: u8 = 0xE1;
/// Longest topic, in bytes.
pub const MAX_TOPIC: usize = 64;
/// Largest payload, in bytes: the whole message then fits one QUIC datagram
/// on a path of the minimum QUIC MTU (1200 bytes), signature included.
pub const MAX_PAYLOAD: usize = 960;
/// Longest lifetime a message may be given.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// Most hops a message may be forwarded.
pub const MAX_HOPS: u8 = 8;

const FLAG_JSON: u8 = 1;
const FLAG_SIGNED: u8 = 2;
const HEADER: usize = 61;
const SIG_LEN: usize = 64;
/// Largest encoded message.
pub const MAX_MESSAGE: usize = HEADER + MAX_TOPIC + 2 + MAX_PAYLOAD + SIG_LEN;
const SIGN_DOMAIN: &[u8] = b"peat-mesh ephemeral v1";

/// A decoded message, as it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    pub json: bool,
    pub hops_left: u8,
    pub hops: u8,
    pub age_ms: u32,
    pub origin: [u8; 32],
    pub seq: u64,
    pub sent_at_ms: u64,
    pub ttl_ms: u32,
    pub topic: String,
    pub payload: Vec<u8>,
    pub signature: Option<[u8; 64]>,
}

/// Checks a topic: 1 to [`MAX_TOPIC`] bytes of UTF-8 without control characters.
pub fn check_topic(topic: &str) -> Result<()> {
    if topic.is_empty() || topic.len() > MAX_TOPIC {
        return Err(Error::InvalidArgument(format!(
            "a topic is 1 to {MAX_TOPIC} bytes, not {}",
            topic.len()
        )));
    }
    if topic.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(
            "a topic may not hold control characters".into(),
        ));
    }
    Ok(())
}

impl Wire {
    /// The bytes the origin's signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGN_DOMAIN.len() + 1 + 64 + self.payload.len());
        out.extend_from_slice(SIGN_DOMAIN);
        out.push(self.flags());
        self.put_body(&mut out);
        out
    }

    fn flags(&self) -> u8 {
        (if self.json { FLAG_JSON } else { 0 })
            | (if self.signature.is_some() {
                FLAG_SIGNED
            } else {
                0
            })
    }

    fn put_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.origin);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.sent_at_ms.to_be_bytes());
        out.extend_from_slice(&self.ttl_ms.to_be_bytes());
        out.push(self.topic.len() as u8);
        out.extend_from_slice(self.topic.as_bytes());
        out.extend_from_slice(&(self.payload.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.payload);
    }

    /// Encodes; the caller has checked the bounds (see [`Wire::check`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.topic.len() + 2 + self.payload.len() + 64);
        out.push(TAG);
        out.push(self.flags());
        out.push(self.hops_left);
        out.push(self.hops);
        out.extend_from_slice(&self.age_ms.to_be_bytes());
        self.put_body(&mut out);
        if let Some(s) = &self.signature {
            out.extend_from_slice(s);
        }
        out
    }

    /// Checks every bound a receiver checks, so a sender refuses what a
    /// receiver would drop.
    pub fn check(&self) -> Result<()> {
        check_topic(&self.topic)?;
        if self.payload.len() > MAX_PAYLOAD {
            return Err(Error::InvalidArgument(format!(
                "an ephemeral payload is at most {MAX_PAYLOAD} bytes, not {}",
                self.payload.len()
            )));
        }
        if self.ttl_ms == 0 || u64::from(self.ttl_ms) > MAX_TTL.as_millis() as u64 {
            return Err(Error::InvalidArgument(format!(
                "a ttl is 1 ms to {} s",
                MAX_TTL.as_secs()
            )));
        }
        if self.hops_left > MAX_HOPS || self.hops > MAX_HOPS {
            return Err(Error::InvalidArgument(format!(
                "a hop limit is at most {MAX_HOPS}"
            )));
        }
        Ok(())
    }

    /// Decodes a datagram. Every length is checked against its bound and the
    /// datagram's length before anything is copied; an error says what was
    /// wrong.
    pub fn decode(b: &[u8]) -> Result<Wire> {
        let bad = |what: &str| Error::Protocol(format!("ephemeral datagram: {what}"));
        if b.len() > MAX_MESSAGE {
            return Err(bad("longer than the largest message"));
        }
        if b.len() < HEADER {
            return Err(bad("shorter than the header"));
        }
        if b[0] != TAG {
            return Err(bad("unknown tag"));
        }
        let flags = b[1];
        if flags & !(FLAG_JSON | FLAG_SIGNED) != 0 {
            return Err(bad("unknown flags"));
        }
        let be32 = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let be64 = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            u64::from_be_bytes(a)
        };
        let mut origin = [0u8; 32];
        origin.copy_from_slice(&b[8..40]);
        let topic_len = b[60] as usize;
        if topic_len > MAX_TOPIC {
            return Err(bad("topic longer than the largest"));
        }
        let topic_end = HEADER + topic_len;
        if b.len() < topic_end + 2 {
            return Err(bad("truncated topic"));
        }
        let topic = std::str::from_utf8(&b[HEADER..topic_end])
            .map_err(|_| bad("topic is not UTF-8"))?
            .to_string();
        let payload_len = u16::from_be_bytes([b[topic_end], b[topic_end + 1]]) as usize;
        if payload_len > MAX_PAYLOAD {
            return Err(bad("payload larger than the largest"));
        }
        let payload_end = topic_end + 2 + payload_len;
        let sig_len = if flags & FLAG_SIGNED != 0 { SIG_LEN } else { 0 };
        if b.len() != payload_end + sig_len {
            return Err(bad("length does not match its fields"));
        }
        let signature = (sig_len > 0).then(|| {
            let mut s = [0u8; 64];
            s.copy_from_slice(&b[payload_end..]);
            s
        });
        let w = Wire {
            json: flags & FLAG_JSON != 0,
            hops_left: b[2],
            hops: b[3],
            age_ms: be32(4),
            origin,
            seq: be64(40),
            sent_at_ms: be64(48),
            ttl_ms: be32(56),
            topic,
            payload: b[topic_end + 2..payload_end].to_vec(),
            signature,
        };
        w.check().map_err(|e| bad(&e.to_string()))?;
        Ok(w)
    }

    /// Signs as `key` (whose public key must be `origin`).
    pub fn sign(&mut self, key: &iroh::SecretKey) {
        self.signature = Some([0; 64]);
        let sig = key.sign(&self.signed_bytes());
        self.signature = Some(sig.to_bytes());
    }

    /// True if the message carries a valid signature of its origin.
    #[cfg(any(test, fuzzing))]
    pub fn verify(&self) -> bool {
        self.verified_origin().is_some()
    }

    /// The origin, if the message carries a valid signature of it.
    pub fn verified_origin(&self) -> Option<NodeId> {
        let sig = self.signature?;
        let origin = NodeId::from_bytes(&self.origin).ok()?;
        origin
            .0
            .verify(&self.signed_bytes(), &iroh::Signature::from_bytes(&sig))
            .ok()?;
        Some(origin)
    }

    /// Time left to live after `extra` more in transit, if any.
    pub fn remaining(&self, extra: Duration) -> Option<Duration> {
        let used = Duration::from_millis(u64::from(self.age_ms)) + extra;
        Duration::from_millis(u64::from(self.ttl_ms))
            .checked_sub(used)
            .filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Wire {
        Wire {
            json: true,
            hops_left: 2,
            hops: 0,
            age_ms: 0,
            origin: *iroh::SecretKey::from_bytes(&[3; 32]).public().as_bytes(),
            seq: 42,
            sent_at_ms: 1_700_000_000_000,
            ttl_ms: 5_000,
            topic: "pos/alpha".into(),
            payload: br#"{"lat":1}"#.to_vec(),
            signature: None,
        }
    }

    #[test]
    fn round_trips_signed_and_verifies() {
        let key = iroh::SecretKey::from_bytes(&[3; 32]);
        let mut w = sample();
        w.sign(&key);
        assert!(w.verify());
        let back = Wire::decode(&w.encode()).unwrap();
        assert_eq!(back, w);
        assert!(back.verify());
        // a forwarder's changes leave the signature valid
        let mut fwd = back.clone();
        fwd.hops_left -= 1;
        fwd.hops += 1;
        fwd.age_ms += 30;
        assert!(Wire::decode(&fwd.encode()).unwrap().verify());
        // the publisher's words do not
        let mut lie = back.clone();
        lie.payload = br#"{"lat":2}"#.to_vec();
        assert!(!lie.verify());
        let mut lie = back;
        lie.ttl_ms += 1;
        assert!(!lie.verify());
    }

    #[test]
    fn bounds_are_refused_at_both_ends() {
        let mut w = sample();
        w.payload = vec![0; MAX_PAYLOAD + 1];
        assert!(w.check().is_err());
        let bytes = w.encode();
        assert!(Wire::decode(&bytes).is_err());
        let mut w = sample();
        w.topic = "t\n".into();
        assert!(Wire::decode(&w.encode()).is_err());
        let mut w = sample();
        w.ttl_ms = 0;
        assert!(Wire::decode(&w.encode()).is_err());
        let mut w = sample();
        w.payload = vec![7; MAX_PAYLOAD];
        w.topic = "x".repeat(MAX_TOPIC);
        w.sign(&iroh::SecretKey::from_bytes(&[3; 32]));
        assert_eq!(w.encode().len(), MAX_MESSAGE);
        assert!(Wire::decode(&w.encode()).is_ok());
    }

    #[test]
    fn remaining_counts_age_and_transit() {
        let mut w = sample();
        w.age_ms = 4_000;
        assert_eq!(
            w.remaining(Duration::from_millis(500)),
            Some(Duration::from_millis(500))
        );
        assert_eq!(w.remaining(Duration::from_millis(1_000)), None);
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..1400)) {
            let _ = Wire::decode(&b);
        }

        #[test]
        fn decoding_mutated_messages_never_panics(flip in 0usize..200, to in any::<u8>(), cut in 0usize..200) {
            let mut b = sample().encode();
            let i = flip % b.len();
            b[i] = to;
            let _ = Wire::decode(&b);
            b.truncate(cut % (b.len() + 1));
            let _ = Wire::decode(&b);
        }

        #[test]
        fn valid_messages_round_trip(
            topic in "[a-z/]{1,64}",
            payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD),
            json in any::<bool>(), hops_left in 0u8..=MAX_HOPS, age in any::<u32>(),
            seq in any::<u64>(), ttl in 1u32..=3_600_000,
        ) {
            let w = Wire { json, hops_left, hops: 0, age_ms: age, origin: [9; 32], seq,
                sent_at_ms: 5, ttl_ms: ttl, topic, payload, signature: None };
            prop_assert_eq!(Wire::decode(&w.encode()).unwrap(), w);
        }
    }
}

//! Sealing ephemeral messages for the multicast path, where there is no QUIC
//! connection to authenticate and encrypt them.
//!
//! **Keys.** Time is cut into key epochs of [`EPOCH`] (the key id on the
//! wire is the epoch number); a receiver takes the epochs before and after
//! its own too, so clocks may differ by up to an epoch at a boundary. Each
//! epoch the formation has a *group* X25519 key pair derived from the
//! formation secret (BLAKE3's key derivation over the secret, the epoch and
//! the formation id): every member can compute it, nobody else can. Each
//! node's own X25519 key is its Ed25519 identity key in Montgomery form (the
//! standard conversion), so the key a sender seals with is bound to its node
//! id: `k = KDF(X25519(sender, group) ‖ sender id ‖ epoch)`, which a member
//! computes from the other side as `X25519(group, sender)`. Distinct senders
//! and epochs never share a key, and the per-sender keys are cached.
//!
//! **Seal.** XChaCha20-Poly1305 under `k` with a random 24-byte nonce (random
//! nonces of that size never repeat in practice); the header is the
//! additional data, so nothing in it can be changed either.
//!
//! **Sender authenticity** comes from the inner message's Ed25519 signature,
//! which the multicast path requires: every member holds the group key, so
//! a MAC or the AEAD alone would let any member speak for any other (and
//! beacons and forwarding rely on who the origin is). Signing costs ~25 µs a
//! message, affordable for positions and beacons on a local segment.
//!
//! **Replay.** The origin's message-number window (as for forwarding) drops a
//! replay while the receiver remembers the origin; after that (or across a
//! receiver restart) the publisher's timestamp must be within the message's
//! lifetime plus [`MAX_SKEW`] of the receiver's clock.
//!
//! What is visible on the wire: the formation tag (public: it names the
//! formation, not its secret), the key epoch and the sender's node id.
//!
//! ```text
//! off  len  field
//!   0    1  tag       0xE2: sealed ephemeral message, layout 1
//!   1    8  formation Formation::tag()
//!   9    4  epoch     key id
//!  13   32  sender    node id
//!  45   24  nonce
//!  69    n  sealed    XChaCha20-Poly1305 of the message (with its 16-byte tag)
//! ```

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use lru::LruCache;
use rand::RngCore;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

use super::message::MAX_MESSAGE;
use crate::security::Formation;

/// First byte of a sealed datagram.
pub const TAG: u8 = 0xE2;
/// Length of a key epoch.
pub const EPOCH: Duration = Duration::from_secs(3600);
/// How far a publisher's clock may be from a receiver's.
pub const MAX_SKEW: Duration = Duration::from_secs(120);
const HEADER: usize = 69;
const AEAD_TAG: usize = 16;
/// Largest sealed datagram.
pub const MAX_SEALED: usize = HEADER + MAX_MESSAGE + AEAD_TAG;
/// Senders whose keys are cached.
const KEY_CACHE: usize = 1024;

/// Why a sealed datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a sealed datagram (too short or long, wrong tag, bad sender id).
    Malformed,
    /// Sealed for another formation.
    ForeignFormation,
    /// A key epoch too far from this node's clock.
    WrongKey,
    /// Did not open: forged, tampered or sealed with another secret.
    BadSeal,
}

/// Seals and opens for one node of one formation.
pub struct Sealer {
    formation: Formation,
    me: [u8; 32],
    my_secret: StaticSecret,
    /// Per (sender, epoch): the key.
    keys: LruCache<([u8; 32], u32), Zeroizing<[u8; 32]>>,
    /// Per epoch: the group secret.
    groups: HashMap<u32, StaticSecret>,
}

/// The key epoch of a Unix time in seconds.
pub fn epoch_of(unix_s: u64) -> u32 {
    u32::try_from(unix_s / EPOCH.as_secs()).unwrap_or(u32::MAX)
}

impl Sealer {
    pub fn new(formation: Formation, key: &iroh::SecretKey) -> Sealer {
        let scalar = Zeroizing::new(key.as_signing_key().to_scalar_bytes());
        Sealer {
            formation,
            me: *key.public().as_bytes(),
            my_secret: StaticSecret::from(*scalar),
            keys: LruCache::new(NonZeroUsize::new(KEY_CACHE).unwrap_or(NonZeroUsize::MIN)),
            groups: HashMap::new(),
        }
    }

    fn group(&mut self, epoch: u32) -> &StaticSecret {
        if self.groups.len() > 4 {
            // only a few epochs around now are ever used
            self.groups.retain(|e, _| e.abs_diff(epoch) <= 1);
        }
        let formation = &self.formation;
        self.groups
            .entry(epoch)
            .or_insert_with(|| StaticSecret::from(*formation.multicast_group_secret(epoch)))
    }

    /// The key `sender` seals with in `epoch`; `None` for a sender id that is
    /// not a usable point (no contributory agreement).
    fn key(&mut self, sender: [u8; 32], epoch: u32) -> Option<Zeroizing<[u8; 32]>> {
        if let Some(k) = self.keys.get(&(sender, epoch)) {
            return Some(k.clone());
        }
        let shared = if sender == self.me {
            let group_public = XPublic::from(self.group(epoch));
            self.my_secret.diffie_hellman(&group_public)
        } else {
            let vk = iroh::PublicKey::from_bytes(&sender)
                .ok()?
                .as_verifying_key();
            let their = XPublic::from(vk.to_montgomery().to_bytes());
            self.group(epoch).diffie_hellman(&their)
        };
        if !shared.was_contributory() {
            return None;
        }
        let mut material = Zeroizing::new([0u8; 68]);
        material[..32].copy_from_slice(shared.as_bytes());
        material[32..64].copy_from_slice(&sender);
        material[64..].copy_from_slice(&epoch.to_be_bytes());
        let k = Zeroizing::new(blake3::derive_key(
            "peat-mesh multicast sender key v1",
            &material[..],
        ));
        self.keys.put((sender, epoch), k.clone());
        Some(k)
    }

    /// Seals an encoded message for the current epoch of `unix_s`.
    pub fn seal(&mut self, message: &[u8], unix_s: u64) -> Option<Vec<u8>> {
        let epoch = epoch_of(unix_s);
        let key = self.key(self.me, epoch)?;
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(HEADER + message.len() + AEAD_TAG);
        out.push(TAG);
        out.extend_from_slice(&self.formation.tag());
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&self.me);
        out.extend_from_slice(&nonce);
        let cipher = XChaCha20Poly1305::new(&(*key).into());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: message,
                    aad: &out[..HEADER],
                },
            )
            .ok()?;
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// Opens a sealed datagram received at `unix_s`: the encoded message and
    /// the sender named in the header (the message's signature must still be
    /// checked against its origin).
    pub fn open(&mut self, d: &[u8], unix_s: u64) -> Result<(Vec<u8>, [u8; 32]), Refused> {
        if d.len() < HEADER + AEAD_TAG || d.len() > MAX_SEALED || d[0] != TAG {
            return Err(Refused::Malformed);
        }
        if d[1..9] != self.formation.tag() {
            return Err(Refused::ForeignFormation);
        }
        let epoch = u32::from_be_bytes([d[9], d[10], d[11], d[12]]);
        if epoch.abs_diff(epoch_of(unix_s)) > 1 {
            return Err(Refused::WrongKey);
        }
        let mut sender = [0u8; 32];
        sender.copy_from_slice(&d[13..45]);
        let key = self.key(sender, epoch).ok_or(Refused::Malformed)?;
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&d[45..69]);
        let cipher = XChaCha20Poly1305::new(&(*key).into());
        let plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &d[HEADER..],
                    aad: &d[..HEADER],
                },
            )
            .map_err(|_| Refused::BadSeal)?;
        Ok((plain, sender))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_800_000_000;

    fn pair(f: &Formation) -> (Sealer, Sealer, iroh::SecretKey) {
        let a = iroh::SecretKey::from_bytes(&[1; 32]);
        let b = iroh::SecretKey::from_bytes(&[2; 32]);
        (Sealer::new(f.clone(), &a), Sealer::new(f.clone(), &b), a)
    }

    #[test]
    fn members_open_what_members_seal_and_nothing_else() {
        let f = Formation::new("alpha", [9; 32]);
        let (mut a, mut b, ka) = pair(&f);
        let sealed = a.seal(b"position 59.3 18.0", NOW).unwrap();
        assert!(
            !sealed.windows(8).any(|w| w == b"position"),
            "not plaintext"
        );
        let (plain, sender) = b.open(&sealed, NOW).unwrap();
        assert_eq!(
            (&plain[..], sender),
            (&b"position 59.3 18.0"[..], *ka.public().as_bytes())
        );
        // the next epoch still opens it; two away does not
        assert!(b.open(&sealed, NOW + EPOCH.as_secs()).is_ok());
        assert_eq!(
            b.open(&sealed, NOW + 2 * EPOCH.as_secs()),
            Err(Refused::WrongKey)
        );
        // another formation's secret under the same name: does not open
        let (_, mut other, _) = pair(&Formation::new("alpha", [8; 32]));
        assert_eq!(other.open(&sealed, NOW), Err(Refused::BadSeal));
        // another formation by name: told apart before any crypto
        let (_, mut beta, _) = pair(&Formation::new("beta", [9; 32]));
        assert_eq!(beta.open(&sealed, NOW), Err(Refused::ForeignFormation));
        // a tampered byte anywhere: header (sender, epoch, nonce) or body
        for i in [9, 13, 50, 70, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 1;
            let r = b.open(&t, NOW);
            assert!(
                matches!(
                    r,
                    Err(Refused::BadSeal | Refused::WrongKey | Refused::Malformed)
                ),
                "byte {i}: {r:?}"
            );
        }
        // claiming another sender with the same body: the key differs
        let mut claim = sealed.clone();
        claim[13..45].copy_from_slice(iroh::SecretKey::from_bytes(&[3; 32]).public().as_bytes());
        assert_eq!(b.open(&claim, NOW), Err(Refused::BadSeal));
        assert_eq!(b.open(&sealed[..40], NOW), Err(Refused::Malformed));
    }

    #[test]
    fn keys_are_per_sender_and_epoch() {
        let f = Formation::new("alpha", [9; 32]);
        let (mut a, mut b, ka) = pair(&f);
        let ida = *ka.public().as_bytes();
        let kab = b.key(ida, 7).unwrap();
        assert_eq!(a.key(ida, 7).unwrap(), kab, "both sides agree");
        assert_ne!(a.key(ida, 8).unwrap(), kab);
        let idb = *iroh::SecretKey::from_bytes(&[2; 32]).public().as_bytes();
        assert_ne!(a.key(idb, 7).unwrap(), kab);
    }

    proptest! {
        #[test]
        fn opening_any_bytes_never_panics(d in proptest::collection::vec(any::<u8>(), 0..1400)) {
            let f = Formation::new("alpha", [9; 32]);
            let (_, mut b, _) = pair(&f);
            let _ = b.open(&d, NOW);
            let mut tagged = d.clone();
            if tagged.len() > 13 {
                tagged[0] = TAG;
                tagged[1..9].copy_from_slice(&f.tag());
                tagged[9..13].copy_from_slice(&epoch_of(NOW).to_be_bytes());
                prop_assert!(b.open(&tagged, NOW).is_err());
            }
        }
    }
}

//! Signed changes: who wrote each change of a document, provably.
//!
//! **Scheme.** A node signs each change it writes, in collections whose
//! [`SignaturePolicy`] is not `off`, with its node key (Ed25519, the key
//! QUIC authenticates it with) over
//! `"peat-mesh change v1\0" ‖ formation id ‖ 0 ‖ collection ‖ 0 ‖ document id ‖ 0 ‖ change hash`.
//! The change hash is Automerge's SHA-256 of the change — its operations,
//! actor, sequence number, time and the hashes of the changes it builds on —
//! so the signature covers the content and the history it was written on;
//! signing the hash keeps the work at 32 bytes whatever the change's size,
//! and survives the change being re-encoded on the way. The formation and
//! document key in the message stop a signature being replayed into another
//! document or formation. A change's author is the signing key, not the
//! change's Automerge actor (a node takes a fresh actor at each open).
//!
//! **Travel.** Signatures are kept in the store beside their changes and sent
//! with them (sync protocol v3, `Signatures` frame before the
//! frame carrying the changes); a relay passes on the signatures it holds
//! whatever its own policy (unless `off`), so authorship survives any path.
//!
//! **Checking.** A receiver checks every signature of a frame in one
//! Ed25519 batch before applying anything of it (one by one only when the
//! batch fails, to find which). In a `reject` collection, unsigned and forged
//! changes and every change depending on one are never applied; the refused
//! changes are remembered ([`MAX_REFUSED`], with their dependencies) so the
//! node neither asks for them again nor mistakes the peer's heads for
//! something it lacks: valid changes from the same peer keep flowing.

#[cfg(test)]
mod hostile_tests;
mod refused;
mod screen;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};

use automerge::Change;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::policy::SignaturePolicy;
use crate::storage::{DocKey, SigRow};
use crate::wire::Hash32;
use crate::NodeId;

pub(crate) use refused::Refused;
pub use refused::MAX_REFUSED;

/// A received document's key, changes and their signatures (one per
/// change, or none), as [`Authorship::check_all`] takes them.
pub(crate) type Received<'a> = (&'a DocKey, &'a [Change], &'a [Option<SigRow>]);

/// One change of a document and who wrote it, from [`crate::Node::authors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeAuthor {
    /// The Automerge change hash.
    pub hash: [u8; 32],
    /// The time the writer stamped it with (ms since the Unix epoch).
    pub time_ms: i64,
    /// The key that signed it, `None` when it carries no signature.
    pub author: Option<NodeId>,
    /// Whether the signature checks out for this change, document and
    /// formation (false when unsigned).
    pub valid: bool,
}

impl ChangeAuthor {
    /// [`ChangeAuthor::hash`] as 64 lower-case hex digits.
    pub fn hash_hex(&self) -> String {
        crate::hex::hex(&self.hash)
    }
}

/// What the node did with change signatures since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureStats {
    /// Changes written here and signed.
    pub signed: u64,
    /// Received changes whose signature checked out.
    pub verified: u64,
    /// Received changes whose signature did not (a forged or damaged one).
    pub forged: u64,
    /// Received changes without a signature (in collections not `off`).
    pub unsigned: u64,
    /// Unsigned or forged changes applied in `flag` collections.
    pub flagged: u64,
    /// Changes refused in `reject` collections (unsigned, forged, or
    /// depending on one).
    pub rejected: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    signed: AtomicU64,
    verified: AtomicU64,
    forged: AtomicU64,
    unsigned: AtomicU64,
    flagged: AtomicU64,
    rejected: AtomicU64,
}

fn add(c: &AtomicU64, n: usize) {
    if n > 0 {
        c.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The node's signing key and what it checks signatures against.
pub(crate) struct Authorship {
    key: SigningKey,
    formation: String,
    pub counters: Counters,
    /// Changes refused in `reject` collections.
    pub refused: Refused,
}

impl Authorship {
    pub(crate) fn new(secret: &iroh::SecretKey, formation: &str) -> Self {
        Authorship {
            key: SigningKey::from_bytes(&secret.to_bytes()),
            formation: formation.to_string(),
            counters: Counters::default(),
            refused: Refused::default(),
        }
    }

    /// The signed message for a change of document `key`.
    fn message(&self, key: &DocKey, hash: &Hash32) -> Vec<u8> {
        let mut m = Vec::with_capacity(24 + self.formation.len() + key.collection().len() + 64);
        m.extend_from_slice(b"peat-mesh change v1\0");
        for part in [self.formation.as_str(), key.collection(), key.id()] {
            m.extend_from_slice(part.as_bytes());
            m.push(0);
        }
        m.extend_from_slice(hash);
        m
    }

    /// This node's signature row for a change it wrote.
    pub(crate) fn sign(&self, key: &DocKey, hash: &Hash32) -> SigRow {
        let sig = self.key.sign(&self.message(key, hash));
        self.counters.signed.fetch_add(1, Ordering::Relaxed);
        let mut row = [0u8; 96];
        row[..32].copy_from_slice(self.key.verifying_key().as_bytes());
        row[32..].copy_from_slice(&sig.to_bytes());
        row
    }

    /// Checks signature rows of changes of `key` (see [`Self::verify_items`]).
    pub(crate) fn verify(&self, key: &DocKey, items: &[(Hash32, SigRow)]) -> Vec<bool> {
        let items: Vec<(&DocKey, Hash32, SigRow)> =
            items.iter().map(|(h, r)| (key, *h, *r)).collect();
        self.verify_items(&items)
    }

    /// For each received document (key, changes, signatures: one per change
    /// or none), which changes carry a signature that checks out — all of
    /// them in one batch, however many documents.
    pub(crate) fn check_all(&self, docs: &[Received<'_>]) -> Vec<Vec<bool>> {
        let mut items = Vec::new();
        let mut at = Vec::new();
        for (d, (key, changes, sigs)) in docs.iter().enumerate() {
            for (i, (c, s)) in changes.iter().zip(sigs.iter()).enumerate() {
                if let Some(row) = s {
                    items.push((*key, c.hash().0, *row));
                    at.push((d, i));
                }
            }
        }
        let ok = self.verify_items(&items);
        let mut out: Vec<Vec<bool>> = docs.iter().map(|(_, c, _)| vec![false; c.len()]).collect();
        for ((d, i), ok) in at.into_iter().zip(ok) {
            out[d][i] = ok;
        }
        out
    }

    /// Checks signature rows, each of a change of its document: one batch
    /// verification, and one by one only when it fails. A row whose key is
    /// not a valid point, or is weak, fails.
    pub(crate) fn verify_items(&self, items: &[(&DocKey, Hash32, SigRow)]) -> Vec<bool> {
        let mut ok = vec![false; items.len()];
        let mut msgs = Vec::with_capacity(items.len());
        let mut sigs = Vec::with_capacity(items.len());
        let mut keys = Vec::with_capacity(items.len());
        let mut at = Vec::with_capacity(items.len());
        let mut last: Option<([u8; 32], VerifyingKey)> = None;
        for (i, (key, hash, row)) in items.iter().enumerate() {
            let mut author = [0u8; 32];
            author.copy_from_slice(&row[..32]);
            let vk = match last {
                Some((a, vk)) if a == author => vk,
                // A weak (small-order) key signs many messages at once: never
                // an author.
                _ => match VerifyingKey::from_bytes(&author) {
                    Ok(vk) if !vk.is_weak() => {
                        last = Some((author, vk));
                        vk
                    }
                    _ => continue,
                },
            };
            let mut s = [0u8; 64];
            s.copy_from_slice(&row[32..]);
            msgs.push(self.message(key, hash));
            sigs.push(Signature::from_bytes(&s));
            keys.push(vk);
            at.push(i);
        }
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        if ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok() {
            for i in at {
                ok[i] = true;
            }
        } else {
            for (j, i) in at.into_iter().enumerate() {
                ok[i] = keys[j].verify_strict(refs[j], &sigs[j]).is_ok();
            }
        }
        ok
    }

    pub(crate) fn stats(&self) -> SignatureStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SignatureStats {
            signed: g(&c.signed),
            verified: g(&c.verified),
            forged: g(&c.forged),
            unsigned: g(&c.unsigned),
            flagged: g(&c.flagged),
            rejected: g(&c.rejected),
        }
    }
}

/// Whether changes of a collection under `policy` are signed and checked.
pub(crate) fn is_on(policy: SignaturePolicy) -> bool {
    policy != SignaturePolicy::Off
}

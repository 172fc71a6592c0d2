//! A formation: a named group of nodes sharing a 32-byte secret.

use std::fmt;

use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// A formation groups nodes that may sync with each other. Only nodes that prove
/// knowledge of the same secret are admitted; the secret never crosses the wire.
///
/// The secret is wiped from memory when the value is dropped, and `Debug` never
/// prints it. Make a new formation's secret with [`Formation::generate`] (or
/// [`Formation::generate_secret`]) and share it out of band; build one from
/// bytes you were given with [`Formation::try_new`], which refuses an all-zero
/// (unset) secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Formation {
    id: String,
    secret: [u8; 32],
}

impl Formation {
    /// A formation from its public id and its shared secret, unchecked here:
    /// prefer [`Formation::try_new`] for secrets that come from outside the
    /// program (configuration, a command line, another language). An all-zero
    /// secret is refused anyway when a node is opened with it.
    pub fn new(id: impl Into<String>, secret: [u8; 32]) -> Self {
        Formation {
            id: id.into(),
            secret,
        }
    }

    /// A formation from its public id and its shared secret, refusing an
    /// all-zero secret (the value of a secret that was never set) with
    /// [`Error::InvalidArgument`].
    pub fn try_new(id: impl Into<String>, secret: [u8; 32]) -> Result<Self> {
        let secret = Zeroizing::new(secret);
        if secret.iter().all(|b| *b == 0) {
            return Err(Error::InvalidArgument(
                "the formation secret is all zeros (never set?): use a random one".into(),
            ));
        }
        Ok(Formation::new(id, *secret))
    }

    /// A new formation with a fresh random secret (32 bytes from the thread's
    /// CSPRNG, seeded by the operating system).
    pub fn generate(id: impl Into<String>) -> Self {
        let secret = Zeroizing::new(Self::generate_secret());
        Formation::new(id, *secret)
    }

    /// 32 random bytes for a new formation secret, from a cryptographically
    /// secure generator (the thread's CSPRNG, seeded by the operating system).
    /// Never all zeros. The caller should wipe it after use (`zeroize`).
    pub fn generate_secret() -> [u8; 32] {
        let mut secret = [0u8; 32];
        let mut rng = rand::rng();
        // All zeros has probability 2^-256; it would be refused by try_new.
        while secret.iter().all(|b| *b == 0) {
            rng.fill_bytes(&mut secret);
        }
        secret
    }

    /// Whether the secret is all zeros (never set); [`crate::Node::open`]
    /// refuses such a formation whichever constructor made it.
    pub(crate) fn secret_is_unset(&self) -> bool {
        self.secret.iter().all(|b| *b == 0)
    }

    /// The public formation id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A short public tag derived from the formation id (never from the secret),
    /// safe to announce on the network so nodes can tell formations apart.
    pub fn tag(&self) -> [u8; 8] {
        let h = blake3::derive_key("peat-mesh formation tag v1", self.id.as_bytes());
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&h[..8]);
        tag
    }

    /// The secret of the multicast group in key epoch `epoch` (see
    /// `crate::ephemeral::seal`): derived from the secret, the id and the epoch.
    pub(crate) fn multicast_group_secret(&self, epoch: u32) -> Zeroizing<[u8; 32]> {
        let mut material = Zeroizing::new(Vec::with_capacity(36 + self.id.len()));
        material.extend_from_slice(&self.secret);
        material.extend_from_slice(&epoch.to_be_bytes());
        material.extend_from_slice(self.id.as_bytes());
        Zeroizing::new(blake3::derive_key(
            "peat-mesh multicast group secret v1",
            &material,
        ))
    }

    /// The key used for admission MACs, derived from the secret and the id.
    pub(crate) fn admission_key(&self) -> [u8; 32] {
        let mut material = Zeroizing::new(Vec::with_capacity(32 + self.id.len()));
        material.extend_from_slice(&self.secret);
        material.extend_from_slice(self.id.as_bytes());
        blake3::derive_key("peat-mesh formation admission key v1", &material)
    }
}

impl Formation {
    fn wipe(&mut self) {
        self.secret.zeroize();
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl fmt::Debug for Formation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Formation")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::hex;

    #[test]
    fn debug_hides_secret_and_tag_ignores_it() {
        let a = Formation::new("alpha", [1; 32]);
        let b = Formation::new("alpha", [2; 32]);
        assert!(!format!("{a:?}").contains("1, 1"));
        assert_eq!(a.tag(), b.tag());
        assert_ne!(a.admission_key(), b.admission_key());
        assert_ne!(a.tag(), Formation::new("beta", [1; 32]).tag());
    }

    #[test]
    fn debug_never_prints_the_secret_bytes() {
        let secret = Formation::generate_secret();
        let f = Formation::new("alpha", secret);
        for text in [format!("{f:?}"), format!("{f:#?}")] {
            assert!(
                text.contains("alpha") && text.contains("redacted"),
                "{text}"
            );
            assert!(!text.contains(&hex(&secret)), "{text}");
            assert!(!text.contains(&hex(&secret).to_uppercase()), "{text}");
            assert!(!text.contains(&format!("{:?}", &secret[..4])), "{text}");
        }
    }

    #[test]
    fn generated_secrets_are_random_and_never_zero() {
        let a = Formation::generate_secret();
        let b = Formation::generate_secret();
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
        let f = Formation::generate("g");
        assert_eq!(f.id(), "g");
        assert_ne!(f.secret, [0; 32]);
        assert_ne!(Formation::generate("g").admission_key(), f.admission_key());
    }

    #[test]
    fn all_zero_secret_is_refused_by_try_new() {
        let e = Formation::try_new("alpha", [0; 32]).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let mut one = [0; 32];
        one[31] = 1;
        assert_eq!(
            Formation::try_new("alpha", one).unwrap(),
            Formation::new("alpha", one)
        );
    }

    #[test]
    fn the_secret_is_wiped_on_drop() {
        // Drop calls wipe(); the storage is not observable after a real drop
        // without unsafe code, so wipe is checked directly.
        let mut f = Formation::new("alpha", [0xa5; 32]);
        f.wipe();
        assert_eq!(f.secret, [0; 32]);
    }
}

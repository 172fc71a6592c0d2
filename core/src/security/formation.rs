//! A formation: a named group of nodes sharing a 32-byte secret.

use std::fmt;

/// A formation groups nodes that may sync with each other. Only nodes that prove
/// knowledge of the same secret are admitted; the secret never crosses the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Formation {
    id: String,
    secret: [u8; 32],
}

impl Formation {
    /// A formation from its public id and its shared secret.
    pub fn new(id: impl Into<String>, secret: [u8; 32]) -> Self {
        Formation {
            id: id.into(),
            secret,
        }
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

    /// The key used for admission MACs, derived from the secret and the id.
    pub(crate) fn admission_key(&self) -> [u8; 32] {
        let mut material = Vec::with_capacity(32 + self.id.len());
        material.extend_from_slice(&self.secret);
        material.extend_from_slice(self.id.as_bytes());
        blake3::derive_key("peat-mesh formation admission key v1", &material)
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

    #[test]
    fn debug_hides_secret_and_tag_ignores_it() {
        let a = Formation::new("alpha", [1; 32]);
        let b = Formation::new("alpha", [2; 32]);
        assert!(!format!("{a:?}").contains("1, 1"));
        assert_eq!(a.tag(), b.tag());
        assert_ne!(a.admission_key(), b.admission_key());
        assert_ne!(a.tag(), Formation::new("beta", [1; 32]).tag());
    }
}

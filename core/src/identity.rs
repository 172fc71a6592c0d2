//! Node ids: a node's Ed25519 public key, as every module names a node
//! (the secret key is kept by [`crate::security`]).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A node's id: its Ed25519 public key. Displays and parses as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) iroh::PublicKey);

impl NodeId {
    /// The 32 raw bytes of the public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Parses 32 raw bytes, checking that they are a valid Ed25519 point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        iroh::PublicKey::from_bytes(bytes)
            .map(NodeId)
            .map_err(|e| Error::InvalidArgument(format!("not a node id: {e}")))
    }

    /// A short form for logs.
    pub fn short(&self) -> String {
        self.to_string()[..10].to_string()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("node id must be 64 hex digits: {s:?}"));
        let s = s.as_bytes();
        if s.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
        }
        NodeId::from_bytes(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_round_trips_through_hex() {
        let id = NodeId(iroh::SecretKey::generate().public());
        let parsed: NodeId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
        assert!("zz".parse::<NodeId>().is_err());
        assert!("g".repeat(64).parse::<NodeId>().is_err());
    }
}

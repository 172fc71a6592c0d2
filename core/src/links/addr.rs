//! A bond's address: its id and its member links' addresses, carried inside
//! one iroh custom address so that a peer dialling it knows every link.
//!
//! ```text
//! id (u64 BE) | count (u8) | count × [ len (u8) | member address (iroh's binary form) ]
//! ```

use iroh_base::CustomAddr;

/// The iroh custom-transport id of a bond's addresses.
pub const BOND_TRANSPORT_ID: u64 = 0x5045_4154_0000;

/// Most member links in one bond address.
pub(crate) const MAX_MEMBERS: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BondAddr {
    pub id: u64,
    pub members: Vec<CustomAddr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AddrError {
    #[error("not a bond address (transport {0:#x})")]
    NotABond(u64),
    #[error("bond address truncated")]
    Truncated,
    #[error("bond address with {0} members (at most {MAX_MEMBERS})")]
    TooMany(usize),
    #[error("bad member address: {0}")]
    Member(&'static str),
    #[error("{0} trailing bytes in a bond address")]
    Trailing(usize),
}

impl BondAddr {
    /// The iroh address; `None` if a member's address is too long to carry.
    pub(crate) fn to_custom(&self) -> Option<CustomAddr> {
        if self.members.len() > MAX_MEMBERS {
            return None;
        }
        let mut d = Vec::with_capacity(9 + self.members.len() * 24);
        d.extend_from_slice(&self.id.to_be_bytes());
        d.push(self.members.len() as u8);
        for m in &self.members {
            let b = m.to_vec();
            d.push(u8::try_from(b.len()).ok()?);
            d.extend_from_slice(&b);
        }
        Some(CustomAddr::from_parts(BOND_TRANSPORT_ID, &d))
    }

    /// The bond id of a bond address, read without decoding its members.
    pub(crate) fn id_of(addr: &CustomAddr) -> Option<u64> {
        if addr.id() != BOND_TRANSPORT_ID {
            return None;
        }
        Some(u64::from_be_bytes(addr.data().get(..8)?.try_into().ok()?))
    }

    pub(crate) fn from_custom(addr: &CustomAddr) -> Result<Self, AddrError> {
        if addr.id() != BOND_TRANSPORT_ID {
            return Err(AddrError::NotABond(addr.id()));
        }
        let mut d = addr.data();
        let mut take = |n: usize| -> Result<&[u8], AddrError> {
            if d.len() < n {
                return Err(AddrError::Truncated);
            }
            let (a, b) = d.split_at(n);
            d = b;
            Ok(a)
        };
        let id = u64::from_be_bytes(take(8)?.try_into().map_err(|_| AddrError::Truncated)?);
        let count = take(1)?[0] as usize;
        if count > MAX_MEMBERS {
            return Err(AddrError::TooMany(count));
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let len = take(1)?[0] as usize;
            members.push(CustomAddr::from_bytes(take(len)?).map_err(AddrError::Member)?);
        }
        if !d.is_empty() {
            return Err(AddrError::Trailing(d.len()));
        }
        Ok(BondAddr { id, members })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member() -> impl Strategy<Value = CustomAddr> {
        (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(id, d)| CustomAddr::from_parts(id, &d))
    }

    proptest! {
        #[test]
        fn bond_addresses_round_trip(id in any::<u64>(), members in proptest::collection::vec(member(), 0..=MAX_MEMBERS)) {
            let a = BondAddr { id, members };
            let c = a.to_custom().unwrap();
            prop_assert_eq!(BondAddr::id_of(&c), Some(id));
            prop_assert_eq!(BondAddr::from_custom(&c), Ok(a));
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(d in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = BondAddr::from_custom(&CustomAddr::from_parts(BOND_TRANSPORT_ID, &d));
        }
    }

    #[test]
    fn malformed_addresses_are_errors() {
        let c = |d: &[u8]| CustomAddr::from_parts(BOND_TRANSPORT_ID, d);
        assert_eq!(
            BondAddr::from_custom(&CustomAddr::from_parts(7, &[])),
            Err(AddrError::NotABond(7))
        );
        assert_eq!(
            BondAddr::from_custom(&c(&[1, 2])),
            Err(AddrError::Truncated)
        );
        assert_eq!(
            BondAddr::from_custom(&c(&[0, 0, 0, 0, 0, 0, 0, 1, 9])),
            Err(AddrError::TooMany(9))
        );
        // A member of 3 bytes: shorter than iroh's 8-byte transport id.
        assert!(matches!(
            BondAddr::from_custom(&c(&[0, 0, 0, 0, 0, 0, 0, 1, 1, 3, 1, 2, 3])),
            Err(AddrError::Member(_))
        ));
        assert_eq!(
            BondAddr::from_custom(&c(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 5])),
            Err(AddrError::Trailing(1))
        );
    }
}

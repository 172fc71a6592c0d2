//! Lower-case hex of bytes, for names on the wire (mDNS) and in tests. Three
//! lines, not worth a dependency.

/// `bytes` as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

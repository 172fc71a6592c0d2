//! Lower-case hex of bytes, for names on the wire (mDNS), trust records as
//! text, and tests. A few lines, not worth a dependency.

/// `bytes` as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex (either case, surrounding white space ignored); `None` if
/// `s` is not an even number of hex digits.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| {
            let p = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(p, 16).ok()
        })
        .collect()
}

//! Argument checks and conversions every SDK call shares: deadlines, peer
//! addresses, names and JSON documents. Refused arguments are `InvalidArgument`.

use std::time::Duration;

use peat_mesh::PeerAddr;

use crate::error::{SdkError, SdkResult};

/// A deadline in milliseconds.
pub(crate) fn ms(timeout_ms: u64) -> Duration {
    Duration::from_millis(timeout_ms)
}

/// A peer as `NODEID@ADDR[,ADDR…]`, each address `HOST:PORT` or a link
/// address (see [`peat_mesh::PeerAddr`]'s text form).
pub(crate) fn parse_peer(s: &str) -> SdkResult<PeerAddr> {
    Ok(s.parse::<PeerAddr>()?)
}

/// Valid collection names and document ids: non-empty UTF-8 of at most
/// `peat_mesh::storage::MAX_NAME_LEN` (512) bytes without NUL. The core checks
/// emptiness and length; NUL is refused here for every binding, since C strings
/// end at NUL and C or Go would see a different id than the one stored.
pub(crate) fn check_name(what: &str, s: &str) -> SdkResult<()> {
    if s.contains('\0') {
        return Err(SdkError::invalid(format!(
            "{what} must not contain NUL (collection names and document ids are \
             non-empty UTF-8 of at most 512 bytes without NUL)"
        )));
    }
    Ok(())
}

/// [`check_name`] for a collection and, when given, a document id.
pub(crate) fn check_doc(collection: &str, id: Option<&str>) -> SdkResult<()> {
    check_name("collection", collection)?;
    id.map_or(Ok(()), |id| check_name("document id", id))
}

/// A document body from JSON text: an object, nested at most
/// `peat_mesh::storage::MAX_NESTING` levels, integers inside 64 bits.
pub(crate) fn parse_json(json: &str) -> SdkResult<serde_json::Value> {
    Ok(peat_mesh::storage::parse_document(json)?)
}

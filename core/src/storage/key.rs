//! Document keys: a collection name and a document id.

use std::fmt;

use crate::error::{Error, Result};

/// Longest accepted collection name or document id, in bytes.
pub const MAX_NAME_LEN: usize = 512;

/// Identifies a document: `(collection, id)`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocKey {
    collection: String,
    id: String,
}

impl DocKey {
    /// A key, validated: both parts non-empty, at most 512 bytes, and the
    /// collection without NUL characters.
    pub fn new(collection: impl Into<String>, id: impl Into<String>) -> Result<Self> {
        let (collection, id) = (collection.into(), id.into());
        check_collection(&collection)?;
        check_name("document id", &id)?;
        Ok(DocKey { collection, id })
    }

    /// The collection name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The document id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn storage_key(&self) -> String {
        storage_prefix(&self.collection, &self.id)
    }

    pub(crate) fn from_storage_key(s: &str) -> Result<Self> {
        let (c, i) = s
            .split_once('\0')
            .ok_or_else(|| Error::Corrupt(format!("bad stored key {s:?}")))?;
        DocKey::new(c, i)
    }
}

/// `collection\0id_prefix`: the storage-key prefix of ids starting with `id_prefix`.
pub(crate) fn storage_prefix(collection: &str, id_prefix: &str) -> String {
    let mut s = String::with_capacity(collection.len() + 1 + id_prefix.len());
    s.push_str(collection);
    s.push('\0');
    s.push_str(id_prefix);
    s
}

/// Checks a collection name: not empty, not too long, no NUL.
pub(crate) fn check_collection(collection: &str) -> Result<()> {
    check_name("collection", collection)?;
    if collection.contains('\0') {
        return Err(Error::InvalidArgument(
            "collection must not contain NUL".into(),
        ));
    }
    Ok(())
}

fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes, the limit is {MAX_NAME_LEN}",
            s.len()
        )));
    }
    Ok(())
}

impl fmt::Display for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.collection, self.id)
    }
}

impl fmt::Debug for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_round_trips() {
        let k = DocKey::new("tracks", "a/b").unwrap();
        assert_eq!(DocKey::from_storage_key(&k.storage_key()).unwrap(), k);
        assert!(DocKey::new("", "x").is_err());
        assert!(DocKey::new("x", "").is_err());
        assert!(DocKey::new("a\0b", "x").is_err());
        assert!(DocKey::new("x", "y".repeat(513)).is_err());
        assert!(DocKey::from_storage_key("nonul").is_err());
    }
}

//! The node's identity key: an Ed25519 secret kept in the data dir (the
//! node id, [`crate::NodeId`], is its public key).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

const IDENTITY_FILE: &str = "identity.key";

/// Refuses a key file other users may read or write (as ssh does): the
/// operator fixes it, the node does not guess.
fn check_owner_only(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InvalidArgument(format!(
                "{} is open to other users (mode {mode:o}): make it owner-only (chmod 600)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Writes a new identity key to `data_dir`, owner-only, durably, replacing
/// the one there (renamed over it: a crash leaves the old or the new key).
fn write_new_identity(data_dir: &Path) -> Result<iroh::SecretKey> {
    let path = data_dir.join(IDENTITY_FILE);
    let key = iroh::SecretKey::generate();
    let tmp = data_dir.join(format!("{IDENTITY_FILE}.tmp"));
    // A leftover from a crash may carry other permissions: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(&key.to_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(key)
}

/// Gives the node of `data_dir` a new identity key, used from its next open
/// (a node running on the dir keeps its key until it closes): its node id
/// changes, its documents, blobs and revocations stay. Its stored
/// certificate chain no longer applies (it certified the old key) and is
/// dropped at the next open; get the new key a certificate (enroll again, or
/// from the authority) and revoke the old one. Returns the new node id.
pub fn rotate_identity(data_dir: &Path) -> Result<crate::NodeId> {
    let path = data_dir.join(IDENTITY_FILE);
    if !path.exists() {
        return Err(Error::NotFound(format!(
            "{} (no identity to rotate)",
            path.display()
        )));
    }
    Ok(crate::NodeId(write_new_identity(data_dir)?.public()))
}

/// Loads the identity secret from `data_dir`, creating it on first start.
/// A damaged key file is an error: it is never silently replaced; nor is one
/// other users may read (see [`check_owner_only`]).
pub(crate) fn load_or_create_identity(data_dir: &Path) -> Result<iroh::SecretKey> {
    let path = data_dir.join(IDENTITY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            check_owner_only(&path)?;
            let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                Error::Corrupt(format!(
                    "{} holds {} bytes, expected 32",
                    path.display(),
                    bytes.len()
                ))
            })?;
            Ok(iroh::SecretKey::from_bytes(&arr))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_new_identity(data_dir),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_truncation_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_identity(dir.path()).unwrap();
        let b = load_or_create_identity(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        std::fs::write(dir.path().join(IDENTITY_FILE), [1u8; 5]).unwrap();
        let err = load_or_create_identity(dir.path()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
        // the damaged file is left for the operator to inspect
        assert_eq!(
            std::fs::read(dir.path().join(IDENTITY_FILE)).unwrap().len(),
            5
        );
    }

    #[cfg(unix)]
    #[test]
    fn identity_key_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // a stale temporary file with open permissions is not reused as it is
        let tmp = dir.path().join(format!("{IDENTITY_FILE}.tmp"));
        std::fs::write(&tmp, b"x").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create_identity(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // a key file others may read is refused, with what to do
        let key = dir.path().join(IDENTITY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = load_or_create_identity(dir.path()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        load_or_create_identity(dir.path()).unwrap();
    }

    #[test]
    fn rotation_gives_a_new_key_and_keeps_it_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            rotate_identity(dir.path()).unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
        let old = load_or_create_identity(dir.path()).unwrap().public();
        let new = rotate_identity(dir.path()).unwrap();
        assert_ne!(new.0, old);
        assert_eq!(load_or_create_identity(dir.path()).unwrap().public(), new.0);
    }
}

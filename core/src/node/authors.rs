//! Who wrote a document's changes ([`crate::authorship`]): the node signs
//! its changes in collections whose policy asks for it, and answers who
//! signed each change of a document.

use std::sync::Arc;

use super::Node;
use crate::authorship::{is_on, ChangeAuthor, SignatureStats};
use crate::error::Result;
use crate::storage::{DocKey, SigRow};
use crate::sync::Engine;
use crate::NodeId;

/// Gives the store its signer: changes written here in a collection whose
/// signature policy is not `off` are signed with the node key.
pub(super) fn install_signer(engine: &Arc<Engine>) {
    let authorship = engine.authorship.clone();
    let lifecycle = engine.lifecycle.clone();
    engine.store.set_signer(Box::new(move |key, hash| {
        let policy = lifecycle
            .policies
            .get()
            .for_collection(key.collection())
            .signatures;
        is_on(policy).then(|| authorship.sign(key, hash))
    }));
}

impl Node {
    /// Every change of a document, oldest first (causal order), with who
    /// signed it and whether the signature checks out (each is checked
    /// again now). `None` if the document does not exist here.
    pub async fn authors(&self, collection: &str, id: &str) -> Result<Option<Vec<ChangeAuthor>>> {
        self.check_open()?;
        let key = DocKey::new(collection, id)?;
        let engine = &self.inner.engine;
        // Signatures are read from the database: the latest writes first.
        engine.store.flush().await?;
        // The history, the rows and every signature check: off the runtime.
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || authors_of(&engine, &key))
            .await
            .map_err(|e| crate::Error::Internal(format!("authors: {e}")))?
    }

    /// What the node did with change signatures since it opened.
    pub fn signature_stats(&self) -> SignatureStats {
        self.inner.engine.authorship.stats()
    }
}

/// Each change of `key`, oldest first, with its stored signature, checked;
/// `None` if the document does not exist.
fn authors_of(engine: &Engine, key: &DocKey) -> Result<Option<Vec<ChangeAuthor>>> {
    let changes = engine.store.read(key, |doc| {
        Ok(doc
            .get_changes(&[])
            .iter()
            .map(|c| (c.hash().0, c.timestamp()))
            .collect::<Vec<_>>())
    })?;
    let Some(changes) = changes else {
        return Ok(None);
    };
    let stored = engine.store.all_signatures(key)?;
    let signed: Vec<([u8; 32], SigRow)> = changes
        .iter()
        .filter_map(|(h, _)| stored.get(h).map(|r| (*h, *r)))
        .collect();
    let valid: std::collections::HashMap<[u8; 32], bool> = signed
        .iter()
        .map(|(h, _)| *h)
        .zip(engine.authorship.verify(key, &signed))
        .collect();
    Ok(Some(
        changes
            .into_iter()
            .map(|(hash, time_ms)| {
                let author = stored.get(&hash).and_then(|r| {
                    let mut k = [0u8; 32];
                    k.copy_from_slice(&r[..32]);
                    NodeId::from_bytes(&k).ok()
                });
                ChangeAuthor {
                    hash,
                    time_ms,
                    author,
                    valid: valid.get(&hash).copied().unwrap_or(false),
                }
            })
            .collect(),
    ))
}

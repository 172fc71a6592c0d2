//! The receiving side's bookkeeping: received frames grouped into work
//! batches, change pieces reassembled, and the per-frame caps checked.

use crate::error::{Error, Result};
use crate::storage::DocKey;
use crate::wire::{Frame, Hash32, MAX_CHANGE_LEN, MAX_HEADS};

/// Frames taken from the receive buffer in one batch, at most.
pub(super) const MAX_BATCH_FRAMES: usize = 1024;

/// Change chunks received for one document, and the sender's latest heads
/// (`None` while only [`Frame::MoreChanges`] arrived: apply, do not answer yet).
pub(super) type DocChanges = (Vec<Vec<u8>>, Option<Vec<Hash32>>);

/// Received changes grouped per document, in arrival order per document.
#[derive(Default)]
pub(super) struct ChangeBatch {
    order: Vec<DocKey>,
    docs: std::collections::HashMap<DocKey, DocChanges>,
}

impl ChangeBatch {
    pub(super) fn add(&mut self, key: DocKey, chunks: Vec<Vec<u8>>, heads: Option<Vec<Hash32>>) {
        match self.docs.get_mut(&key) {
            Some((c, h)) => {
                c.extend(chunks);
                if heads.is_some() {
                    *h = heads; // the sender's heads after the latest of them
                }
            }
            None => {
                self.order.push(key.clone());
                self.docs.insert(key, (chunks, heads));
            }
        }
    }

    pub(super) fn take(&mut self) -> Vec<(DocKey, DocChanges)> {
        let mut docs = std::mem::take(&mut self.docs);
        std::mem::take(&mut self.order)
            .into_iter()
            .filter_map(|k| docs.remove(&k).map(|v| (k, v)))
            .collect()
    }
}

/// What a batch of received frames asks for, in arrival order.
pub(super) enum Work {
    /// Changes of one document (with the sender's heads once a run ends).
    Changes(DocKey, Vec<Vec<u8>>, Option<Vec<Hash32>>),
    /// Any other frame.
    Frame(Frame),
}

/// A change arriving in [`Frame::ChangePiece`]s. One at a time per session, at
/// most [`MAX_CHANGE_LEN`] bytes: that is this session's bound for it.
#[derive(Default)]
pub(super) struct PieceAssembly {
    key: Option<DocKey>,
    bytes: Vec<u8>,
}

impl PieceAssembly {
    /// Adds a piece; returns the whole change once its last piece arrived.
    pub(super) fn add(
        &mut self,
        key: DocKey,
        bytes: Vec<u8>,
        last: bool,
    ) -> Result<Option<Vec<u8>>> {
        if self.key.as_ref().is_some_and(|k| k != &key) {
            return Err(Error::Protocol(
                "change pieces of two documents interleaved".into(),
            ));
        }
        if self.bytes.len() + bytes.len() > MAX_CHANGE_LEN {
            return Err(Error::Protocol(format!(
                "a change of more than {MAX_CHANGE_LEN} bytes"
            )));
        }
        self.bytes.extend_from_slice(&bytes);
        self.key = Some(key);
        if !last {
            return Ok(None);
        }
        self.key = None;
        Ok(Some(std::mem::take(&mut self.bytes)))
    }

    pub(super) fn check_idle(&self, what: &str) -> Result<()> {
        match &self.key {
            Some(k) => Err(Error::Protocol(format!(
                "{what} frame inside the pieces of a change of {k}"
            ))),
            None => Ok(()),
        }
    }
}

pub(super) fn check_heads(heads: &[Hash32]) -> Result<()> {
    if heads.len() > MAX_HEADS {
        return Err(Error::Protocol(format!(
            "{} heads in one frame (at most {MAX_HEADS})",
            heads.len()
        )));
    }
    Ok(())
}

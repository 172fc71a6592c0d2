//! The receiving side's bookkeeping: received frames grouped into work
//! batches, change pieces reassembled, and the per-frame caps checked.

use crate::error::{Error, Result};
use crate::storage::{DocKey, SigRow};
use crate::wire::{ChangeSig, Frame, Hash32, MAX_CHANGE_LEN, MAX_HEADS};

/// Frames taken from the receive buffer in one batch, at most.
pub(super) const MAX_BATCH_FRAMES: usize = 1024;

/// Change chunks received for one document, their signatures (one per
/// chunk, or empty when none came) and the sender's latest heads (`None`
/// while only [`Frame::MoreChanges`] arrived: apply, do not answer yet).
pub(super) type DocChanges = (Vec<Vec<u8>>, Vec<Option<SigRow>>, Option<Vec<Hash32>>);

/// Received changes grouped per document, in arrival order per document.
#[derive(Default)]
pub(super) struct ChangeBatch {
    order: Vec<DocKey>,
    docs: std::collections::HashMap<DocKey, DocChanges>,
}

impl ChangeBatch {
    pub(super) fn add(
        &mut self,
        key: DocKey,
        chunks: Vec<Vec<u8>>,
        sigs: Vec<Option<SigRow>>,
        heads: Option<Vec<Hash32>>,
    ) {
        match self.docs.get_mut(&key) {
            Some((c, s, h)) => {
                if !sigs.is_empty() || !s.is_empty() {
                    s.resize(c.len(), None);
                    if sigs.is_empty() {
                        s.resize(c.len() + chunks.len(), None);
                    } else {
                        s.extend(sigs);
                    }
                }
                c.extend(chunks);
                if heads.is_some() {
                    *h = heads; // the sender's heads after the latest of them
                }
            }
            None => {
                self.order.push(key.clone());
                self.docs.insert(key, (chunks, sigs, heads));
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
    /// Changes of one document, their signatures if any came, and the
    /// sender's heads once a run ends.
    Changes(
        DocKey,
        Vec<Vec<u8>>,
        Vec<Option<SigRow>>,
        Option<Vec<Hash32>>,
    ),
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

/// Signatures received for the next frame carrying changes (at most one
/// [`Frame::Signatures`] waits per lane: it must be followed at once by
/// the frame whose changes it signs).
#[derive(Default)]
pub(super) struct PendingSigs {
    next: Option<(DocKey, Vec<Option<SigRow>>)>,
    /// Held for a change arriving in pieces, until its last piece.
    piece: Option<Option<SigRow>>,
}

impl PendingSigs {
    /// Takes a `Signatures` frame's entries (checked).
    pub(super) fn set(
        &mut self,
        key: DocKey,
        authors: &[[u8; 32]],
        entries: Vec<Option<ChangeSig>>,
    ) -> Result<()> {
        if self.next.is_some() {
            return Err(Error::Protocol(
                "two Signatures frames without changes between them".into(),
            ));
        }
        let rows = entries
            .into_iter()
            .map(|e| {
                e.map(|e| {
                    let author = authors.get(e.author as usize).ok_or_else(|| {
                        Error::Protocol(format!(
                            "signature author {} is not in the frame",
                            e.author
                        ))
                    })?;
                    if e.sig.len() != 64 {
                        return Err(Error::Protocol(format!(
                            "a signature of {} bytes (not 64)",
                            e.sig.len()
                        )));
                    }
                    let mut row = [0u8; 96];
                    row[..32].copy_from_slice(author);
                    row[32..].copy_from_slice(&e.sig);
                    Ok(row)
                })
                .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        self.next = Some((key, rows));
        Ok(())
    }

    /// The signatures of a frame of `n` changes of `key` (empty when none
    /// came). Pending signatures for another document or another number of
    /// changes are a protocol error.
    pub(super) fn take(&mut self, key: &DocKey, n: usize) -> Result<Vec<Option<SigRow>>> {
        match self.next.take() {
            None => Ok(Vec::new()),
            Some((k, rows)) if &k == key && rows.len() == n => Ok(rows),
            Some((k, rows)) => Err(Error::Protocol(format!(
                "{} signatures of {k} followed by {n} changes of {key}",
                rows.len()
            ))),
        }
    }

    /// For a change in pieces: at its first piece takes its signature; at
    /// its last returns it.
    pub(super) fn piece(&mut self, key: &DocKey, last: bool) -> Result<Vec<Option<SigRow>>> {
        if self.piece.is_none() {
            let rows = self.take(key, 1)?;
            self.piece = Some(rows.into_iter().next().flatten());
        }
        if !last {
            return Ok(Vec::new());
        }
        Ok(match self.piece.take().flatten() {
            Some(row) => vec![Some(row)],
            None => Vec::new(),
        })
    }

    /// Any other frame: nothing may be pending.
    pub(super) fn check_idle(&self, what: &str) -> Result<()> {
        match &self.next {
            Some((k, _)) => Err(Error::Protocol(format!(
                "{what} frame after the Signatures of {k}"
            ))),
            None => Ok(()),
        }
    }
}

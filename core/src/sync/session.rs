//! One sync session per admitted connection: the reader, which applies what
//! the peer sends and answers it, and the rendering of what is owed to the
//! peer. The writer that drains the outbox is in [`super::writer`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use iroh::endpoint::{Connection, RecvStream};

use super::engine::Engine;
use super::incoming::{
    check_heads, ChangeBatch, PendingSigs, PieceAssembly, Work, MAX_BATCH_FRAMES,
};
use super::outbox::{Outbox, BULK};
use super::rbsr;
use super::reconcile::{self, Reconciler};
use super::replies::Reply;
use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::storage::{heads_to_wire, DocKey};
use crate::wire::{Frame, FrameReader, Hash32};
use crate::NodeId;

/// A peer may make this node snapshot its version set (a flush and a scan of
/// every document) at most this often; an earlier `Reconcile{start}` waits.
const MIN_RESPONDER_ROUND: std::time::Duration = std::time::Duration::from_secs(1);

/// Version ids per `Want` frame, at most.
const WANT_CHUNK: usize = 4096;

/// Documents stored in at most this many bytes are sent whole in answer to `Want`.
const SEND_WHOLE_BELOW: usize = 8 * 1024;

/// A reconciliation round this node started.
pub(crate) struct Round {
    r: Reconciler,
    /// The delivery clock when its snapshot was taken.
    started: u64,
    /// Documents whose versions the peer lacked.
    only_here: HashSet<DocKey>,
}

/// Session state the reader keeps.
pub(crate) struct Session {
    pub engine: Arc<Engine>,
    pub peer: NodeId,
    pub outbox: Arc<Outbox>,
    pub conn: Connection,
    /// The negotiated sync protocol version (signatures travel from 3 on).
    pub version: u16,
    /// Initiator state of the current reconciliation round, if any.
    pub initiator: Mutex<Option<Round>>,
    responder: Mutex<Option<Reconciler>>,
    /// When this peer last started a round with us as responder.
    last_responder_round: Mutex<Option<tokio::time::Instant>>,
}

impl Session {
    pub(crate) fn new(
        engine: Arc<Engine>,
        peer: NodeId,
        outbox: Arc<Outbox>,
        conn: Connection,
        version: u16,
    ) -> Self {
        Session {
            engine,
            peer,
            outbox,
            conn,
            version,
            initiator: Mutex::new(None),
            responder: Mutex::new(None),
            last_responder_round: Mutex::new(None),
        }
    }

    /// Starts a reconciliation round as initiator.
    /// Does nothing while a round is still running.
    ///
    /// The version snapshot is taken after flushing the store, so it covers every
    /// change committed before this session was registered; changes committed
    /// after that are pushed live. Together they leave no gap.
    pub(crate) async fn start_reconcile(&self) -> Result<()> {
        if self.initiator.locked().is_some() {
            return Ok(());
        }
        let started = self.engine.lifecycle.delivery.round_started();
        self.engine.store.flush().await?;
        // A scan of every document's version: on a blocking thread.
        let engine = self.engine.clone();
        let items = tokio::task::spawn_blocking(move || engine.versions())
            .await
            .map_err(|e| Error::Internal(format!("version scan: {e}")))??;
        let mut init = self.initiator.locked();
        if init.is_some() {
            return Ok(());
        }
        let mut r = reconcile::reconciler(items);
        let msg = reconcile::initiate(&mut r);
        *init = Some(Round {
            r,
            started,
            only_here: HashSet::new(),
        });
        self.outbox.send(Frame::Reconcile { start: true, msg })
    }

    /// Reads and handles frames of one lane until its stream ends or a frame
    /// is bad. The bulk lane carries only document data and heads: a
    /// reconciliation or want frame on it is a protocol error.
    ///
    /// Reading, checking frames and assembling change pieces happen here, on
    /// the runtime; the work the frames ask for (applying changes, store reads,
    /// reconciliation steps) runs on a blocking thread, one batch at a time, so
    /// a peer with a large backlog never holds a runtime worker.
    pub(crate) async fn read_loop(self: &Arc<Self>, recv: RecvStream, lane: usize) -> Result<()> {
        let mut reader = FrameReader::new(recv);
        let mut pieces = PieceAssembly::default();
        let mut sigs = PendingSigs::default();
        loop {
            let Some(first) = reader.read().await? else {
                return Ok(());
            };
            // Take everything that has already arrived: under load, many changes
            // to one document are applied in one call, which automerge does far
            // faster than one by one (its per-call cost grows with history).
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_FRAMES {
                match reader.next_buffered()? {
                    Some(f) => batch.push(f),
                    None => break,
                }
            }
            let rtt = self
                .conn
                .paths()
                .iter()
                .find(|p| p.is_selected())
                .map(|p| p.rtt());
            self.engine.ctx.peers.seen(self.peer, rtt);
            let received = batch.iter().map(|(_, size)| *size as u64).sum();
            self.engine.ctx.peers.traffic(self.peer, 0, received);
            let mut work = Vec::with_capacity(batch.len());
            for (frame, size) in batch {
                self.engine.counters.received(&frame, size);
                match frame {
                    Frame::Changes {
                        collection,
                        id,
                        changes: chunks,
                        heads,
                    } => {
                        pieces.check_idle("Changes")?;
                        check_heads(&heads)?;
                        let key = DocKey::new(collection, id)?;
                        let s = sigs.take(&key, chunks.len())?;
                        work.push(Work::Changes(key, chunks, s, Some(heads)));
                    }
                    Frame::MoreChanges {
                        collection,
                        id,
                        changes: chunks,
                    } => {
                        pieces.check_idle("MoreChanges")?;
                        let key = DocKey::new(collection, id)?;
                        let s = sigs.take(&key, chunks.len())?;
                        work.push(Work::Changes(key, chunks, s, None));
                    }
                    Frame::ChangePiece {
                        collection,
                        id,
                        bytes,
                        last,
                    } => {
                        let key = DocKey::new(collection, id)?;
                        let s = sigs.piece(&key, last)?;
                        if let Some(change) = pieces.add(key.clone(), bytes, last)? {
                            work.push(Work::Changes(key, vec![change], s, None));
                        }
                    }
                    Frame::Signatures {
                        collection,
                        id,
                        authors,
                        entries,
                    } => {
                        pieces.check_idle("Signatures")?;
                        sigs.set(DocKey::new(collection, id)?, &authors, entries)?;
                    }
                    other => {
                        pieces.check_idle(other.name())?;
                        sigs.check_idle(other.name())?;
                        if lane == BULK && !matches!(other, Frame::Heads { .. }) {
                            return Err(Error::Protocol(format!(
                                "{} frame on the bulk lane",
                                other.name()
                            )));
                        }
                        if matches!(other, Frame::Reconcile { start: true, .. }) {
                            // Everything before it first; then the responder's
                            // snapshot must cover what it committed before this
                            // session existed (see `start_reconcile`).
                            self.run_blocking(std::mem::take(&mut work)).await?;
                            self.pace_responder_round().await;
                            self.engine.store.flush().await?;
                        }
                        work.push(Work::Frame(other));
                    }
                }
            }
            self.run_blocking(work).await?;
        }
    }

    /// Does the work of a batch of frames on a blocking thread.
    async fn run_blocking(self: &Arc<Self>, work: Vec<Work>) -> Result<()> {
        if work.is_empty() {
            return Ok(());
        }
        let session = self.clone();
        tokio::task::spawn_blocking(move || session.run(work))
            .await
            .map_err(|e| Error::Internal(format!("sync worker: {e}")))?
    }

    /// Applies changes (grouped per document) and handles the other frames in
    /// arrival order: every frame sees the changes that arrived before it.
    fn run(&self, work: Vec<Work>) -> Result<()> {
        let mut changes = ChangeBatch::default();
        for item in work {
            match item {
                Work::Changes(key, chunks, sigs, heads) => changes.add(key, chunks, sigs, heads),
                Work::Frame(frame) => {
                    self.apply_batch(&mut changes)?;
                    self.handle(frame)?;
                }
            }
        }
        self.apply_batch(&mut changes)
    }

    /// Waits until [`MIN_RESPONDER_ROUND`] has passed since the peer's last
    /// round start. The reader stops meanwhile, so a peer that restarts rounds
    /// in a loop only slows itself.
    async fn pace_responder_round(&self) {
        let now = tokio::time::Instant::now();
        let wait_until = {
            let mut last = self.last_responder_round.locked();
            let at = last.map_or(now, |t| (t + MIN_RESPONDER_ROUND).max(now));
            *last = Some(at);
            at
        };
        tokio::time::sleep_until(wait_until).await;
    }

    /// Applies a batch of documents' changes: their signatures are checked
    /// first, all in one batch (see [`crate::authorship`]).
    fn apply_batch(&self, batch: &mut ChangeBatch) -> Result<()> {
        let mut docs = Vec::new();
        for (key, (chunks, sigs, heads)) in batch.take() {
            let changes = crate::storage::parse_changes(chunks)?;
            docs.push((key, changes, sigs, heads));
        }
        let engine = &self.engine;
        let checks: Vec<_> = docs
            .iter()
            .map(|(k, c, s, _)| {
                let on = crate::authorship::is_on(engine.policy_of(k.collection()).signatures);
                (k, c.as_slice(), if on { s.as_slice() } else { &[][..] })
            })
            .collect();
        let valid = engine.authorship.check_all(&checks);
        for ((key, changes, sigs, heads), valid) in docs.into_iter().zip(valid) {
            self.on_changes(key, changes, &sigs, &valid, heads.as_deref())?;
        }
        Ok(())
    }

    fn handle(&self, frame: Frame) -> Result<()> {
        match frame {
            Frame::Reconcile { start, msg } => self.on_reconcile(start, &msg),
            Frame::Want { prefixes } if prefixes.len() > WANT_CHUNK => Err(Error::Protocol(
                format!("Want of {} ids (at most {WANT_CHUNK})", prefixes.len()),
            )),
            Frame::Want { prefixes } => self.on_want(&prefixes),
            Frame::Heads {
                collection,
                id,
                heads,
                answer,
            } => {
                check_heads(&heads)?;
                self.on_heads(DocKey::new(collection, id)?, &heads, answer)
            }
            other => Err(Error::Protocol(format!(
                "unexpected {} frame after admission",
                other.name()
            ))),
        }
    }

    fn on_reconcile(&self, start: bool, msg: &[u8]) -> Result<()> {
        let mut init = self.initiator.locked();
        if let Some(round) = init.as_mut().filter(|_| !start) {
            let (mut have, mut need) = (Vec::new(), Vec::new());
            let next = reconcile::step(&mut round.r, msg, &mut have, &mut need)?;
            let have: Vec<[u8; 8]> = have.iter().map(|id| rbsr::prefix_of(id)).collect();
            let keys = self.engine.store.keys_for_version_prefixes(&have)?;
            round.only_here.extend(keys.iter().cloned());
            if next.is_none() {
                if let Some(done) = init.take() {
                    let delivery = &self.engine.lifecycle.delivery;
                    delivery.round_done(done.started, &done.only_here);
                }
            }
            drop(init);
            for key in keys {
                self.outbox.reply(Reply::Offer(key))?;
            }
            // Versions this node refused before (expired or removed here) are
            // not asked for again.
            let lc = &self.engine.lifecycle;
            need.retain(|p| !lc.was_refused(p));
            for chunk in need.chunks(WANT_CHUNK) {
                self.outbox.send(Frame::Want {
                    prefixes: chunk.to_vec(),
                })?;
            }
            if let Some(msg) = next {
                self.outbox.send(Frame::Reconcile { start: false, msg })?;
            }
            return Ok(());
        }
        drop(init);
        let mut resp = self.responder.locked();
        if start || resp.is_none() {
            if !start {
                return Err(Error::Protocol(
                    "reconciliation message outside a round".into(),
                ));
            }
            *resp = Some(reconcile::reconciler(self.engine.versions()?));
        }
        let r = resp
            .as_mut()
            .ok_or_else(|| Error::Internal("responder state missing".into()))?;
        let answer = reconcile::respond(r, msg)?;
        self.outbox.send(Frame::Reconcile {
            start: false,
            msg: answer,
        })
    }

    /// The peer lacks these versions: each document is owed (rendered when sent).
    fn on_want(&self, prefixes: &[[u8; 8]]) -> Result<()> {
        for key in self.engine.store.keys_for_version_prefixes(prefixes)? {
            self.outbox.reply(Reply::Wanted(key))?;
        }
        Ok(())
    }

    /// The peer offered its heads: our answer is owed (rendered when sent).
    /// Changes this node refused count as what they build on (see
    /// [`crate::authorship`]).
    fn on_heads(&self, key: DocKey, theirs: &[Hash32], answer: bool) -> Result<()> {
        self.outbox.reply(Reply::AnswerHeads {
            key,
            theirs: self.engine.authorship.refused.accepted_heads(theirs),
            answer,
        })
    }

    /// Renders what is owed to the peer into frames (reading the store).
    pub(super) fn render(&self, r: Reply) -> Result<Vec<Frame>> {
        let store = &self.engine.store;
        let changes_frame =
            |key: &DocKey, (changes, hashes): (Vec<Vec<u8>>, Vec<Hash32>), heads| {
                super::signing::signed_changes(store, self.version, key, changes, &hashes, heads)
            };
        let held_back = match &r {
            Reply::Offer(k)
            | Reply::Wanted(k)
            | Reply::AnswerHeads { key: k, .. }
            | Reply::Ahead { key: k, .. } => self.engine.holds_back(&self.peer, k.collection()),
            Reply::Frame(_) => false,
        };
        if held_back {
            // The link policy keeps this collection off the peer's link now;
            // a round after a better link returns sends it.
            return Ok(Vec::new());
        }
        Ok(match r {
            Reply::Frame(f) => vec![f],
            Reply::Offer(key) => store
                .read(&key, |d| Ok(heads_to_wire(&d.get_heads())))?
                .map(|heads| heads_frame(&key, heads, false))
                .into_iter()
                .collect(),
            // Small documents are sent whole at once (one leg instead of three; a
            // peer holding an older version just sees some changes twice); larger
            // ones start the heads exchange.
            Reply::Wanted(key) => match store.read_sized(&key, |doc, stored| {
                Ok(if stored <= SEND_WHOLE_BELOW {
                    Ok((
                        crate::storage::changes_since_hashed(doc, &[]),
                        heads_to_wire(&doc.get_heads()),
                    ))
                } else {
                    Err(heads_to_wire(&doc.get_heads()))
                })
            })? {
                Some(Ok((changes, heads))) => changes_frame(&key, changes, heads)?,
                Some(Err(heads)) => vec![heads_frame(&key, heads, false)],
                None => Vec::new(),
            },
            Reply::AnswerHeads {
                key,
                theirs,
                answer,
            } => {
                let reply = store.read(&key, |doc| {
                    let unknown = !crate::storage::unknown_hashes(doc, &theirs).is_empty();
                    // Knowing all their heads, we send exactly what they lack. Not
                    // knowing some, we first only answer with our heads; only when
                    // that is already an answer (both sides diverged) do we send
                    // changes bounded by the heads we do know, which may repeat
                    // some the peer has.
                    let changes = if !unknown || answer {
                        crate::storage::changes_since_hashed(doc, &theirs)
                    } else {
                        Default::default()
                    };
                    Ok((changes, unknown, heads_to_wire(&doc.get_heads())))
                })?;
                let mut out = Vec::new();
                match reply {
                    Some((changes, unknown, ours)) => {
                        if !changes.0.is_empty() {
                            out.extend(changes_frame(&key, changes, ours.clone())?);
                        }
                        if unknown {
                            // An offer of ours after diverged changes; an answer otherwise.
                            out.push(heads_frame(&key, ours, !answer));
                        }
                    }
                    // We have nothing: ask for everything (unless they have nothing either).
                    None if !theirs.is_empty() => out.push(heads_frame(&key, Vec::new(), false)),
                    None => {}
                }
                out
            }
            Reply::Ahead { key, theirs } => store
                .read(&key, |d| {
                    Ok((
                        crate::storage::changes_since_hashed(d, &theirs),
                        heads_to_wire(&d.get_heads()),
                    ))
                })?
                .filter(|(changes, _)| !changes.0.is_empty())
                .map(|(changes, heads)| changes_frame(&key, changes, heads))
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// Applies received changes; with the sender's heads (`theirs`), also
    /// answers: asks for what is still missing or sends what the peer lacks.
    fn on_changes(
        &self,
        key: DocKey,
        changes: Vec<automerge::Change>,
        sigs: &[Option<crate::storage::SigRow>],
        valid: &[bool],
        theirs: Option<&[Hash32]>,
    ) -> Result<()> {
        if let Some(theirs) = theirs {
            if self.refuses(&key, &changes, theirs)? {
                return Ok(());
            }
        }
        let engine = &self.engine;
        let policy = engine.policy_of(key.collection()).signatures;
        let screened = engine.authorship.screen(policy, &key, changes, sigs, valid);
        if screened.refused > 0 {
            if let Some(theirs) = theirs {
                let heads: Vec<automerge::ChangeHash> =
                    theirs.iter().map(|h| automerge::ChangeHash(*h)).collect();
                let vid = crate::storage::version_id(&key, &heads);
                engine.lifecycle.remember_refused(&vid);
            }
        }
        let applied = if screened.apply.is_empty() {
            Ok(false)
        } else {
            engine.apply_remote(&key, screened.apply, &screened.rows, self.peer)
        };
        let missing = match applied {
            Ok(m) => m,
            // The store refused the document (too deep, a change too large):
            // nothing of it was kept; the session and every other document go on.
            Err(e) if e.kind() == crate::ErrorKind::InvalidArgument => {
                self.engine.counters.refused_document();
                tracing::warn!(peer = %self.peer.short(), %key, error = %e, "refused a document from a peer");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let Some(theirs) = theirs else {
            return Ok(()); // more of this run follows
        };
        // What this node refused (unsigned, forged) it does not lack.
        let theirs = &engine.authorship.refused.accepted_heads(theirs)[..];
        let state = self.engine.store.read(&key, |d| {
            let behind = !crate::storage::unknown_hashes(d, theirs).is_empty();
            Ok((behind, heads_to_wire(&d.get_heads())))
        })?;
        let (behind, ours) = match state {
            Some(s) => s,
            None if theirs.is_empty() => return Ok(()), // all of it refused
            None => (true, Vec::new()),
        };
        if missing || behind {
            // Dependencies or earlier concurrent changes have not arrived: ask for them.
            self.outbox.send(heads_frame(&key, ours, false))
        } else if !same_set(&ours, theirs) {
            // Knowing all their heads, anything beyond them is ours alone: send it.
            // (Our own earlier changes may not have reached them when the
            // reconciliation snapshot went stale.)
            self.outbox.reply(Reply::Ahead {
                key,
                theirs: theirs.to_vec(),
            })
        } else {
            Ok(())
        }
    }
}

impl Session {
    /// A document this node does not hold, all of whose offered changes are
    /// older than its collection's lifetime or retention allows here, is
    /// refused (and its version remembered, so it is not asked for again).
    /// Only whole offers (ending with the sender's heads) are judged: a
    /// document sent in several frames is taken, and removed by the next
    /// garbage collection if it is expired.
    fn refuses(
        &self,
        key: &DocKey,
        changes: &[automerge::Change],
        theirs: &[Hash32],
    ) -> Result<bool> {
        let newest = changes
            .iter()
            .map(|c| c.timestamp().max(0) as u64)
            .max()
            .unwrap_or(0);
        let lc = &self.engine.lifecycle;
        let Some(why) = lc.refusal(key.collection(), newest) else {
            return Ok(false);
        };
        if self.engine.store.meta(key)?.is_some() {
            return Ok(false);
        }
        let heads: Vec<automerge::ChangeHash> =
            theirs.iter().map(|h| automerge::ChangeHash(*h)).collect();
        lc.refused(why, &crate::storage::version_id(key, &heads));
        tracing::debug!(peer = %self.peer.short(), %key, ?why, "refused a document removed here");
        Ok(true)
    }
}

fn same_set(a: &[Hash32], b: &[Hash32]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let b: HashSet<&Hash32> = b.iter().collect();
    a.iter().all(|h| b.contains(h))
}

fn heads_frame(key: &DocKey, heads: Vec<Hash32>, answer: bool) -> Frame {
    Frame::Heads {
        collection: key.collection().to_string(),
        id: key.id().to_string(),
        heads,
        answer,
    }
}

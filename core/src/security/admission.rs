//! Formation admission: a mutual challenge-response run on the first stream of
//! every connection, before any document byte flows.
//!
//! ```text
//! initiator                                   responder
//!   Hello{version, formation_tag, nonce_i}  →
//!                                           ←  Challenge{nonce_r, mac(R, ...)}
//!   Proof{mac(I, ...)}, Protocols{..}       →
//!                                           ←  Welcome, Protocols{..}
//! ```
//! `mac(role, ...)` is a keyed BLAKE3 over the role, both node ids (as authenticated
//! by the QUIC/TLS handshake) and both nonces, keyed by a key derived from the
//! formation secret. The secret never crosses the wire, each proof is bound to this
//! pair of nodes and these nonces, so it cannot be replayed elsewhere. A side that
//! refuses sends `Refused{reason}` and closes. Each side's `Protocols` (what it
//! speaks, see [`crate::transport::router`]) travels with its last admission
//! frame, so the offers cost no extra round trip; the stream then stays open as
//! the connection's control stream.

use tokio::io::{AsyncRead, AsyncWrite};

use super::gate::{Gate, PeerMembership};
use super::{Formation, NodeId};
use crate::error::{Error, Result};
use crate::wire::{
    read_frame_max, sanitize_reason, write_frame, Frame, Hash32, ProtocolOffer,
    MAX_MEMBERSHIP_FRAME, MAX_PROTOCOLS, MAX_PROTOCOL_NAME, MAX_PROTOCOL_VERSIONS,
    PROTOCOL_VERSION,
};

/// One side's view of an admission.
pub(crate) struct Admission<'a> {
    pub formation: &'a Formation,
    pub gate: &'a Gate,
    pub me: &'a NodeId,
    pub peer: &'a NodeId,
    pub offers: &'a [ProtocolOffer],
}

/// What admission learnt of the peer.
pub(crate) struct AdmittedPeer {
    pub offers: Vec<ProtocolOffer>,
    /// The peer's membership, when this node checks certificates.
    pub membership: Option<PeerMembership>,
}

/// Reads the peer's `Protocols` (after `first`, if already read) and checks
/// it against the offer bounds.
async fn read_offers<R, W>(r: &mut R, w: &mut W, first: Option<Frame>) -> Result<Vec<ProtocolOffer>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let frame = match first {
        Some(Frame::Membership { .. } | Frame::Enroll { .. }) | None => {
            expect(r, "Protocols").await?
        }
        Some(f) => f,
    };
    let offers = match frame {
        Frame::Protocols { offers } => offers,
        other => return Err(refuse(w, format!("expected Protocols, got {}", other.name())).await),
    };
    let bad = offers.len() > MAX_PROTOCOLS
        || offers.iter().any(|o| {
            o.name.is_empty()
                || o.name.len() > MAX_PROTOCOL_NAME
                || o.versions.len() > MAX_PROTOCOL_VERSIONS
        });
    if bad {
        return Err(refuse(w, "protocol offers beyond the limits".into()).await);
    }
    Ok(offers)
}

#[derive(Clone, Copy)]
enum Role {
    Initiator = 1,
    Responder = 2,
}

fn mac(
    key: &[u8; 32],
    role: Role,
    initiator: &NodeId,
    responder: &NodeId,
    nonce_i: &Hash32,
    nonce_r: &Hash32,
) -> blake3::Hash {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&[role as u8]);
    h.update(initiator.as_bytes());
    h.update(responder.as_bytes());
    h.update(nonce_i);
    h.update(nonce_r);
    h.finalize()
}

fn nonce() -> Hash32 {
    rand::random()
}

async fn refuse<W: AsyncWrite + Unpin>(w: &mut W, reason: String) -> Error {
    // Best effort: the peer may already be gone.
    let _ = write_frame(
        w,
        &Frame::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    Error::AdmissionRefused(reason)
}

async fn expect<R: AsyncRead + Unpin>(r: &mut R, stage: &str) -> Result<Frame> {
    match read_frame_max(r, MAX_MEMBERSHIP_FRAME)
        .await?
        .map(|(f, _)| f)
    {
        Some(Frame::Refused { reason }) => Err(Error::AdmissionRefused(format!(
            "peer refused: {}",
            sanitize_reason(&reason)
        ))),
        Some(f) => Ok(f),
        None => Err(Error::AdmissionRefused(format!(
            "peer closed the stream before {stage}"
        ))),
    }
}

/// A write failed: the responder may have refused on what it had read and
/// stopped reading, in which case its `Refused` frame (already sent) is the
/// better error; else `e`.
async fn refusal_or<R: AsyncRead + Unpin>(r: &mut R, e: Error) -> Error {
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        read_frame_max(r, MAX_MEMBERSHIP_FRAME),
    )
    .await;
    match read {
        Ok(Ok(Some((Frame::Refused { reason }, _)))) => {
            Error::AdmissionRefused(format!("peer refused: {}", sanitize_reason(&reason)))
        }
        _ => e,
    }
}

impl Admission<'_> {
    /// Judges the frame where a peer that uses certificates sends its
    /// `Membership` (or, a device without a chain, its `Enroll` request):
    /// when this node checks certificates it must be a chain that passes,
    /// or a request this node answers (with `Enrolled`, written here); when
    /// it does not, it must be neither (the peer would require a chain this
    /// node does not have). Refuses the peer, with the reason, otherwise.
    async fn judge<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        frame: &Frame,
    ) -> Result<Option<PeerMembership>> {
        let reason = match (self.gate.mode().certificates(), frame) {
            (false, Frame::Membership { .. }) => {
                "certificate required by the peer: this node has none (no trust settings)".into()
            }
            (false, Frame::Enroll { .. }) => {
                "this node does not enroll devices (no trust settings)".into()
            }
            (false, _) => return Ok(None),
            (true, Frame::Membership { chain }) => match self.gate.check_peer(self.peer, chain) {
                Ok(m) => return Ok(Some(m)),
                Err(reason) => format!("certificate refused: {reason}"),
            },
            (true, Frame::Enroll { request }) => {
                match self.gate.answer_enrollment(self.peer, request) {
                    Ok(chain) => {
                        let m = self.gate.check_peer(self.peer, &chain);
                        write_frame(w, &Frame::Enrolled { chain }).await?;
                        match m {
                            Ok(m) => return Ok(Some(m)),
                            Err(reason) => format!("the issued chain does not pass: {reason}"),
                        }
                    }
                    Err(reason) => format!("enrollment refused: {reason}"),
                }
            }
            (true, _) => "certificate required: the peer presented none".into(),
        };
        Err(refuse(w, reason).await)
    }

    /// Sends this node's chain when its mode uses certificates, or its
    /// enrollment request when it has no chain and is enrolling.
    async fn present<W: AsyncWrite + Unpin>(&self, w: &mut W) -> Result<()> {
        if !self.gate.mode().certificates() {
            return Ok(());
        }
        let frame = match self.gate.enrollment_request(self.peer) {
            Some(request) => Frame::Enroll { request },
            None => Frame::Membership {
                chain: self.gate.chain_bytes(),
            },
        };
        write_frame(w, &frame).await.map(|_| ())
    }
}

/// Runs admission as the side that opened the connection.
pub(crate) async fn admit_outbound<R, W>(
    r: &mut R,
    w: &mut W,
    a: &Admission<'_>,
) -> Result<AdmittedPeer>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (me, peer) = (a.me, a.peer);
    let key = a.formation.admission_key();
    let nonce_i = nonce();
    write_frame(
        w,
        &Frame::Hello {
            version: PROTOCOL_VERSION,
            formation_tag: a.formation.tag(),
            nonce: nonce_i,
        },
    )
    .await?;
    let (nonce_r, proof) = match expect(r, "Challenge").await? {
        Frame::Challenge { nonce, proof } => (nonce, proof),
        other => return Err(refuse(w, format!("expected Challenge, got {}", other.name())).await),
    };
    // In certificate mode the secret is not checked (the chain is).
    let checks = a.gate.mode().secret();
    if checks
        && mac(&key, Role::Responder, me, peer, &nonce_i, &nonce_r) != blake3::Hash::from(proof)
    {
        return Err(refuse(w, "responder failed the formation proof".into()).await);
    }
    let proof = mac(&key, Role::Initiator, me, peer, &nonce_i, &nonce_r);
    let wrote: Result<()> = async {
        write_frame(
            w,
            &Frame::Proof {
                proof: *proof.as_bytes(),
            },
        )
        .await?;
        a.present(w).await?;
        write_frame(
            w,
            &Frame::Protocols {
                offers: a.offers.to_vec(),
            },
        )
        .await?;
        Ok(())
    }
    .await;
    if let Err(e) = wrote {
        return Err(refusal_or(r, e).await);
    }
    // The responder's chain (if it sends one) comes before its Welcome; an
    // enroller's answer before that.
    let mut frame = expect(r, "Welcome").await?;
    if let Frame::Enrolled { chain } = &frame {
        if let Err(reason) = a.gate.accept_enrolled(chain) {
            return Err(refuse(w, format!("the enrolled chain does not pass: {reason}")).await);
        }
        frame = expect(r, "Welcome").await?;
    }
    let membership = a.judge(w, &frame).await?;
    if matches!(frame, Frame::Membership { .. }) {
        frame = expect(r, "Welcome").await?;
    }
    match frame {
        Frame::Welcome => {}
        other => return Err(refuse(w, format!("expected Welcome, got {}", other.name())).await),
    }
    Ok(AdmittedPeer {
        offers: read_offers(r, w, None).await?,
        membership,
    })
}

/// Runs admission as the side that accepted the connection.
pub(crate) async fn admit_inbound<R, W>(
    r: &mut R,
    w: &mut W,
    a: &Admission<'_>,
) -> Result<AdmittedPeer>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (me, peer) = (a.me, a.peer);
    let key = a.formation.admission_key();
    let nonce_i = match expect(r, "Hello").await? {
        Frame::Hello {
            version,
            formation_tag,
            nonce,
        } => {
            if version != PROTOCOL_VERSION {
                return Err(refuse(w, format!("protocol version {version} not supported")).await);
            }
            if formation_tag != a.formation.tag() {
                return Err(refuse(w, "different formation".into()).await);
            }
            nonce
        }
        other => return Err(refuse(w, format!("expected Hello, got {}", other.name())).await),
    };
    let nonce_r = nonce();
    let proof = mac(&key, Role::Responder, peer, me, &nonce_i, &nonce_r);
    write_frame(
        w,
        &Frame::Challenge {
            nonce: nonce_r,
            proof: *proof.as_bytes(),
        },
    )
    .await?;
    let proof = match expect(r, "Proof").await? {
        Frame::Proof { proof } => proof,
        other => return Err(refuse(w, format!("expected Proof, got {}", other.name())).await),
    };
    let checks = a.gate.mode().secret();
    if checks
        && mac(&key, Role::Initiator, peer, me, &nonce_i, &nonce_r) != blake3::Hash::from(proof)
    {
        return Err(refuse(w, "initiator failed the formation proof".into()).await);
    }
    // The initiator's chain (if it sends one) comes before its Protocols.
    let next = expect(r, "Protocols").await?;
    let membership = a.judge(w, &next).await?;
    a.present(w).await?;
    write_frame(w, &Frame::Welcome).await?;
    write_frame(
        w,
        &Frame::Protocols {
            offers: a.offers.to_vec(),
        },
    )
    .await?;
    Ok(AdmittedPeer {
        offers: read_offers(r, w, Some(next)).await?,
        membership,
    })
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;

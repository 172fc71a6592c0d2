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

use super::{Formation, NodeId};
use crate::error::{Error, Result};
use crate::wire::{
    read_frame_max, sanitize_reason, write_frame, Frame, Hash32, ProtocolOffer,
    MAX_ADMISSION_FRAME, MAX_PROTOCOLS, MAX_PROTOCOL_NAME, MAX_PROTOCOL_VERSIONS, PROTOCOL_VERSION,
};

/// Reads the peer's `Protocols` and checks it against the offer bounds.
async fn read_offers<R, W>(r: &mut R, w: &mut W) -> Result<Vec<ProtocolOffer>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let offers = match expect(r, "Protocols").await? {
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
    formation: &Formation,
    role: Role,
    initiator: &NodeId,
    responder: &NodeId,
    nonce_i: &Hash32,
    nonce_r: &Hash32,
) -> blake3::Hash {
    let mut h = blake3::Hasher::new_keyed(&formation.admission_key());
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
    match read_frame_max(r, MAX_ADMISSION_FRAME)
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

/// Runs admission as the side that opened the connection.
pub(crate) async fn admit_outbound<R, W>(
    r: &mut R,
    w: &mut W,
    formation: &Formation,
    me: &NodeId,
    peer: &NodeId,
    offers: &[ProtocolOffer],
) -> Result<Vec<ProtocolOffer>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let nonce_i = nonce();
    write_frame(
        w,
        &Frame::Hello {
            version: PROTOCOL_VERSION,
            formation_tag: formation.tag(),
            nonce: nonce_i,
        },
    )
    .await?;
    let (nonce_r, proof) = match expect(r, "Challenge").await? {
        Frame::Challenge { nonce, proof } => (nonce, proof),
        other => return Err(refuse(w, format!("expected Challenge, got {}", other.name())).await),
    };
    if mac(formation, Role::Responder, me, peer, &nonce_i, &nonce_r) != blake3::Hash::from(proof) {
        return Err(refuse(w, "responder failed the formation proof".into()).await);
    }
    let proof = mac(formation, Role::Initiator, me, peer, &nonce_i, &nonce_r);
    write_frame(
        w,
        &Frame::Proof {
            proof: *proof.as_bytes(),
        },
    )
    .await?;
    write_frame(
        w,
        &Frame::Protocols {
            offers: offers.to_vec(),
        },
    )
    .await?;
    match expect(r, "Welcome").await? {
        Frame::Welcome => {}
        other => return Err(refuse(w, format!("expected Welcome, got {}", other.name())).await),
    }
    read_offers(r, w).await
}

/// Runs admission as the side that accepted the connection.
pub(crate) async fn admit_inbound<R, W>(
    r: &mut R,
    w: &mut W,
    formation: &Formation,
    me: &NodeId,
    peer: &NodeId,
    offers: &[ProtocolOffer],
) -> Result<Vec<ProtocolOffer>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let nonce_i = match expect(r, "Hello").await? {
        Frame::Hello {
            version,
            formation_tag,
            nonce,
        } => {
            if version != PROTOCOL_VERSION {
                return Err(refuse(w, format!("protocol version {version} not supported")).await);
            }
            if formation_tag != formation.tag() {
                return Err(refuse(w, "different formation".into()).await);
            }
            nonce
        }
        other => return Err(refuse(w, format!("expected Hello, got {}", other.name())).await),
    };
    let nonce_r = nonce();
    let proof = mac(formation, Role::Responder, peer, me, &nonce_i, &nonce_r);
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
    if mac(formation, Role::Initiator, peer, me, &nonce_i, &nonce_r) != blake3::Hash::from(proof) {
        return Err(refuse(w, "initiator failed the formation proof".into()).await);
    }
    write_frame(w, &Frame::Welcome).await?;
    write_frame(
        w,
        &Frame::Protocols {
            offers: offers.to_vec(),
        },
    )
    .await?;
    read_offers(r, w).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> NodeId {
        NodeId(iroh::SecretKey::generate().public())
    }

    fn offers(name: &str) -> Vec<ProtocolOffer> {
        vec![ProtocolOffer {
            name: name.into(),
            versions: vec![1, 2],
        }]
    }

    async fn run(
        fa: Formation,
        fb: Formation,
    ) -> (Result<Vec<ProtocolOffer>>, Result<Vec<ProtocolOffer>>) {
        let (a, b) = tokio::io::duplex(4096);
        let (mut ar, mut aw) = tokio::io::split(a);
        let (mut br, mut bw) = tokio::io::split(b);
        let (ia, ib) = (id(), id());
        tokio::join!(
            async move { admit_outbound(&mut ar, &mut aw, &fa, &ia, &ib, &offers("a")).await },
            async move { admit_inbound(&mut br, &mut bw, &fb, &ib, &ia, &offers("b")).await },
        )
    }

    #[tokio::test]
    async fn same_secret_is_admitted() {
        let f = Formation::new("alpha", [9; 32]);
        let (a, b) = run(f.clone(), f).await;
        // each side learns the other's offers
        assert_eq!(a.unwrap(), offers("b"));
        assert_eq!(b.unwrap(), offers("a"));
    }

    #[tokio::test]
    async fn wrong_secret_is_refused_on_both_sides() {
        let (a, b) = run(
            Formation::new("alpha", [9; 32]),
            Formation::new("alpha", [8; 32]),
        )
        .await;
        assert_eq!(a.unwrap_err().kind(), crate::ErrorKind::AdmissionRefused);
        assert_eq!(b.unwrap_err().kind(), crate::ErrorKind::AdmissionRefused);
    }

    #[tokio::test]
    async fn other_formation_is_refused_on_both_sides() {
        let (a, b) = run(
            Formation::new("alpha", [9; 32]),
            Formation::new("beta", [9; 32]),
        )
        .await;
        assert!(a.unwrap_err().to_string().contains("different formation"));
        assert_eq!(b.unwrap_err().kind(), crate::ErrorKind::AdmissionRefused);
    }

    #[tokio::test]
    async fn garbage_instead_of_hello_is_refused() {
        let (a, b) = tokio::io::duplex(4096);
        let (mut br, mut bw) = tokio::io::split(b);
        let (mut _ar, mut aw) = tokio::io::split(a);
        use tokio::io::AsyncWriteExt;
        aw.write_all(&[0, 0, 0, 3, 0xde, 0xad, 0xbe]).await.unwrap();
        let f = Formation::new("alpha", [9; 32]);
        let err = admit_inbound(&mut br, &mut bw, &f, &id(), &id(), &[])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Protocol);
    }
}

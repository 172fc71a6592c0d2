//! [`Admitted`]: a connection whose peer passed admission. Only [`admit`] makes
//! one, so a protocol handler, which takes an `Admitted`, cannot run on a
//! connection that was not admitted.

use iroh::endpoint::{Connection, RecvStream, SendStream};

use super::admission::{admit_inbound, admit_outbound, Admission};
use super::gate::{Gate, PeerMembership};
use super::{Formation, NodeId};
use crate::error::{Error, Result};
use crate::locks::LockExt;
use crate::wire::ProtocolOffer;

/// An admitted connection: the peer's identity (authenticated by QUIC/TLS) proved
/// the formation secret on it, and told which protocols it speaks.
pub(crate) struct Admitted {
    conn: Connection,
    peer: NodeId,
    outbound: bool,
    theirs: Vec<ProtocolOffer>,
    /// What the peer's certificate chain said, when this node checks them.
    membership: Option<PeerMembership>,
    /// Why this node closed the connection, first reason wins.
    closed_because: std::sync::Mutex<Option<String>>,
}

/// The control stream of an admitted connection (the stream admission ran on).
pub(crate) struct Control {
    pub send: SendStream,
    pub recv: RecvStream,
}

impl Admitted {
    /// The QUIC connection.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The peer.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// The peer's membership (when this node checks certificates).
    pub fn membership(&self) -> Option<&PeerMembership> {
        self.membership.as_ref()
    }

    /// True if this node dialled the connection.
    pub fn outbound(&self) -> bool {
        self.outbound
    }

    /// Closes the connection with a QUIC application `code` and `reason`, and
    /// remembers the reason (the first one given) for the `Disconnected` event.
    pub fn close(&self, code: u32, reason: &str) {
        {
            let mut c = self.closed_because.locked();
            if c.is_none() {
                *c = Some(reason.to_string());
            }
        }
        self.conn
            .close(iroh::endpoint::VarInt::from_u32(code), reason.as_bytes());
    }

    /// Why this node closed the connection, if it did through [`Admitted::close`].
    pub fn closed_because(&self) -> Option<String> {
        self.closed_because.locked().clone()
    }

    /// The highest version of protocol `name` that both this node (`ours`) and
    /// the peer speak, if any.
    pub fn version_of(&self, name: &str, ours: &[u16]) -> Option<u16> {
        let theirs = self.theirs.iter().find(|o| o.name == name)?;
        ours.iter()
            .filter(|v| theirs.versions.contains(v))
            .max()
            .copied()
    }
}

/// Runs admission on a fresh connection: the dialler opens the control stream,
/// both sides prove the formation secret (or show their certificates, as
/// `gate` says) and exchange `offers`.
pub(crate) async fn admit(
    conn: Connection,
    outbound: bool,
    formation: &Formation,
    gate: &Gate,
    me: &NodeId,
    offers: &[ProtocolOffer],
) -> Result<(Admitted, Control)> {
    let peer = NodeId(conn.remote_id());
    let (mut send, mut recv) = if outbound {
        conn.open_bi().await.map_err(Error::network)?
    } else {
        conn.accept_bi().await.map_err(Error::network)?
    };
    let a = Admission {
        formation,
        gate,
        me,
        peer: &peer,
        offers,
    };
    let admitted = if outbound {
        admit_outbound(&mut recv, &mut send, &a).await
    } else {
        admit_inbound(&mut recv, &mut send, &a).await
    };
    let admitted = admitted?;
    Ok((
        Admitted {
            conn,
            peer,
            outbound,
            theirs: admitted.offers,
            membership: admitted.membership,
            closed_because: std::sync::Mutex::new(None),
        },
        Control { send, recv },
    ))
}

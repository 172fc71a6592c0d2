//! The ephemeral protocol of the router: on each admitted connection whose
//! peer speaks it, read the connection's QUIC datagrams (every datagram on a
//! peat-mesh connection is an ephemeral message: its first byte,
//! [`super::message::TAG`], leaves room for others) and hand them to the
//! node's ephemeral path. It opens no streams.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::service::Ephemeral;
use super::Via;
use crate::security::Admitted;
use crate::transport::router::{IncomingStream, Protocol, ProtocolTask};

pub(crate) const NAME: &str = "ephemeral";
const VERSIONS: &[u16] = &[1];

pub(crate) struct EphemeralProtocol {
    pub shared: Arc<Ephemeral>,
    pub cancel: CancellationToken,
}

impl Protocol for EphemeralProtocol {
    fn name(&self) -> &'static str {
        NAME
    }

    fn versions(&self) -> &'static [u16] {
        VERSIONS
    }

    fn run(
        self: Arc<Self>,
        conn: Arc<Admitted>,
        _version: u16,
        incoming: mpsc::Receiver<IncomingStream>,
    ) -> ProtocolTask {
        // Attached now, before the connection is reported up: a publish right
        // after `connect` returns reaches the peer.
        self.shared.attach(conn.clone());
        // No streams belong to this protocol: a peer opening one gets it
        // refused (the router's send fails once this is dropped).
        drop(incoming);
        Box::pin(async move {
            let via = Via::Peer(conn.peer());
            loop {
                tokio::select! {
                    _ = self.cancel.cancelled() => break,
                    d = conn.conn().read_datagram() => match d {
                        Ok(bytes) => self.shared.receive(&bytes, via),
                        Err(_) => break,
                    },
                }
            }
            self.shared.detach(&conn);
        })
    }
}

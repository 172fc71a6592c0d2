//! Document sync as a protocol of the router: the dialling side opens one sync
//! stream per connection and both sides run the session over it.

use std::sync::Arc;

use iroh::endpoint::VarInt;
use tokio::sync::mpsc;

use super::Engine;
use crate::security::Admitted;
use crate::transport::close_code;
use crate::transport::router::{open_stream, IncomingStream, Protocol, ProtocolTask};

/// Versions of the sync protocol this node speaks.
const VERSIONS: &[u16] = &[1];

/// The sync protocol of a node.
pub(crate) struct SyncProtocol(pub Arc<Engine>);

impl Protocol for SyncProtocol {
    fn name(&self) -> &'static str {
        "sync"
    }

    fn versions(&self) -> &'static [u16] {
        VERSIONS
    }

    fn run(
        self: Arc<Self>,
        conn: Arc<Admitted>,
        _version: u16,
        mut incoming: mpsc::Receiver<IncomingStream>,
    ) -> ProtocolTask {
        Box::pin(async move {
            let engine = &self.0;
            let streams = if conn.outbound() {
                open_stream(&conn, "sync", VERSIONS).await.ok()
            } else {
                tokio::select! {
                    s = incoming.recv() => s.map(|s| (s.send, s.recv)),
                    _ = conn.conn().closed() => None,
                }
            };
            let Some((send, recv)) = streams else {
                return;
            };
            // One sync stream per connection: any further one is refused.
            let extra = async {
                while let Some(mut s) = incoming.recv().await {
                    let _ = s.send.reset(VarInt::from_u32(close_code::PROTOCOL));
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                _ = engine.run_session(&conn, send, recv) => {}
                _ = extra => {}
            }
        })
    }
}

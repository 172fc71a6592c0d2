//! The router: one place that takes every stream of an admitted connection and
//! hands it to the protocol it names.
//!
//! A connection carries several protocols (document sync, blobs, ...). After
//! admission each side has told the other which protocols it speaks and in which
//! versions ([`crate::wire::Frame::Protocols`]); each protocol both speak runs at
//! the highest common version. Every stream but the control stream starts with
//! [`crate::wire::Frame::Open`] naming its protocol and that version, so what a
//! stream carries never depends on the order streams were opened in.
//!
//! Adding a protocol: implement [`Protocol`] (a name, the versions it speaks, and
//! what to do with an admitted connection and the streams the peer opens for it)
//! and register it with the node's router. Nothing in sync, blobs or discovery
//! changes; a peer that does not speak it simply never gets its streams.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{RecvStream, SendStream, VarInt};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::security::Admitted;
use crate::wire::{
    read_frame_max, write_frame, Frame, ProtocolOffer, MAX_ADMISSION_FRAME, MAX_PROTOCOLS,
    MAX_PROTOCOL_NAME, MAX_PROTOCOL_VERSIONS,
};

/// A future a protocol runs for one connection.
pub(crate) type ProtocolTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A stream the peer opened for a protocol (its header already read).
pub(crate) struct IncomingStream {
    pub send: SendStream,
    pub recv: RecvStream,
}

/// A protocol carried on admitted connections.
pub(crate) trait Protocol: Send + Sync + 'static {
    /// Its name in offers and stream headers (at most 32 bytes).
    fn name(&self) -> &'static str;

    /// The versions this node speaks, any order.
    fn versions(&self) -> &'static [u16];

    /// Runs for an admitted connection whose peer also speaks this protocol, at
    /// `version`. `incoming` yields the streams the peer opens for it and ends
    /// when the connection does. Spawned on the node's task tracker.
    fn run(
        self: Arc<Self>,
        conn: Arc<Admitted>,
        version: u16,
        incoming: mpsc::Receiver<IncomingStream>,
    ) -> ProtocolTask;
}

/// Streams of one protocol waiting to be taken by it, per connection; past it
/// the router waits (and QUIC's stream limit holds the peer back).
const STREAM_BACKLOG: usize = 4;

/// How long a peer may take to send a new stream's header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Stream reset codes.
mod reset {
    /// The stream named a protocol or version this node does not run with the peer.
    pub const UNKNOWN_PROTOCOL: u32 = 0x10;
    /// The stream's header was missing, late or malformed.
    pub const BAD_HEADER: u32 = 0x11;
}

/// The protocols of a node.
pub(crate) struct Router {
    protocols: Vec<Arc<dyn Protocol>>,
}

impl Router {
    /// A router for `protocols`; names must be unique, non-empty and short, and
    /// each protocol must speak at least one version.
    pub fn new(protocols: Vec<Arc<dyn Protocol>>) -> Result<Router> {
        if protocols.len() > MAX_PROTOCOLS {
            return Err(Error::InvalidArgument(format!(
                "at most {MAX_PROTOCOLS} protocols"
            )));
        }
        for (i, p) in protocols.iter().enumerate() {
            let n = p.name();
            if n.is_empty() || n.len() > MAX_PROTOCOL_NAME {
                return Err(Error::InvalidArgument(format!("protocol name {n:?}")));
            }
            if p.versions().is_empty() || p.versions().len() > MAX_PROTOCOL_VERSIONS {
                return Err(Error::InvalidArgument(format!(
                    "protocol {n} must speak 1 to {MAX_PROTOCOL_VERSIONS} versions"
                )));
            }
            if protocols[..i].iter().any(|q| q.name() == n) {
                return Err(Error::InvalidArgument(format!(
                    "protocol {n} registered twice"
                )));
            }
        }
        Ok(Router { protocols })
    }

    /// What this node offers at admission.
    pub fn offers(&self) -> Vec<ProtocolOffer> {
        self.protocols
            .iter()
            .map(|p| ProtocolOffer {
                name: p.name().to_string(),
                versions: p.versions().to_vec(),
            })
            .collect()
    }

    /// Runs `conn` until it closes: starts every protocol both sides speak and
    /// routes each stream the peer opens to its protocol.
    ///
    /// Each protocol's [`Protocol::run`] is called before this returns (its
    /// synchronous part runs at once: sync registers the session's outbox
    /// there, so a write made right after `connect` returns reaches the peer);
    /// the returned future then routes the streams.
    pub fn serve(&self, conn: Arc<Admitted>, tasks: &TaskTracker) -> impl Future<Output = ()> {
        let mut routes: HashMap<&'static str, (u16, mpsc::Sender<IncomingStream>)> = HashMap::new();
        for p in &self.protocols {
            match conn.version_of(p.name(), p.versions()) {
                Some(v) => {
                    let (tx, rx) = mpsc::channel(STREAM_BACKLOG);
                    routes.insert(p.name(), (v, tx));
                    tasks.spawn(p.clone().run(conn.clone(), v, rx));
                }
                None => tracing::debug!(
                    peer = %conn.peer().short(),
                    protocol = p.name(),
                    "the peer does not speak this protocol (or no common version)"
                ),
            }
        }
        route_streams(conn, Arc::new(routes), tasks.clone())
    }
}

/// Hands every stream the peer opens on `conn` to its protocol, until the
/// connection closes.
async fn route_streams(
    conn: Arc<Admitted>,
    routes: Arc<HashMap<&'static str, (u16, mpsc::Sender<IncomingStream>)>>,
    tasks: TaskTracker,
) {
    {
        loop {
            let (send, recv) = match conn.conn().accept_bi().await {
                Ok(s) => s,
                Err(_) => return,
            };
            // The header is read off the accept loop, so a peer that opens a
            // stream and says nothing holds up nothing but that stream (QUIC's
            // stream limit bounds how many it can open).
            let routes = routes.clone();
            let peer = conn.peer();
            tasks.spawn(async move {
                if let Err(e) = route(&routes, send, recv).await {
                    tracing::debug!(peer = %peer.short(), error = %e, "stream refused");
                }
            });
        }
    }
}

async fn route(
    routes: &HashMap<&'static str, (u16, mpsc::Sender<IncomingStream>)>,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<()> {
    let header = tokio::time::timeout(
        HEADER_TIMEOUT,
        read_frame_max(&mut recv, MAX_ADMISSION_FRAME),
    )
    .await;
    let (protocol, version) = match header {
        Ok(Ok(Some((Frame::Open { protocol, version }, _)))) => (protocol, version),
        other => {
            let _ = send.reset(VarInt::from_u32(reset::BAD_HEADER));
            let _ = recv.stop(VarInt::from_u32(reset::BAD_HEADER));
            return Err(Error::Protocol(match other {
                Err(_) => "no stream header in time".into(),
                Ok(Err(e)) => format!("stream header: {e}"),
                Ok(Ok(None)) => "stream ended before its header".into(),
                Ok(Ok(Some((f, _)))) => format!("expected Open, got {}", f.name()),
            }));
        }
    };
    match routes.get(protocol.as_str()) {
        Some((v, tx)) if *v == version => {
            // Waits while the protocol's backlog is full (back-pressure).
            tx.send(IncomingStream { send, recv })
                .await
                .map_err(|_| Error::Closed)
        }
        _ => {
            let _ = send.reset(VarInt::from_u32(reset::UNKNOWN_PROTOCOL));
            let _ = recv.stop(VarInt::from_u32(reset::UNKNOWN_PROTOCOL));
            Err(Error::Protocol(format!(
                "stream for {:?} version {version}, which is not running on this connection",
                crate::wire::sanitize_reason(&protocol)
            )))
        }
    }
}

/// Opens a stream for protocol `name` on `conn`, at the highest version both
/// sides speak (`ours` are this node's). Fails with `Protocol` if the peer does
/// not speak it.
pub(crate) async fn open_stream(
    conn: &Admitted,
    name: &str,
    ours: &[u16],
) -> Result<(SendStream, RecvStream)> {
    let version = conn.version_of(name, ours).ok_or_else(|| {
        Error::Protocol(format!(
            "peer {} does not speak {name} (versions {ours:?})",
            conn.peer().short()
        ))
    })?;
    let (mut send, recv) = conn.conn().open_bi().await.map_err(Error::network)?;
    write_frame(
        &mut send,
        &Frame::Open {
            protocol: name.to_string(),
            version,
        },
    )
    .await?;
    Ok((send, recv))
}

/// A toy protocol added through the router, in two versions, to show what
/// adding a protocol takes and how versions are negotiated.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Formation, Node, NodeConfig};
    use std::sync::Mutex;

    /// Echoes every stream back, prefixed with the version it runs at.
    struct Echo {
        versions: &'static [u16],
        ran_at: Mutex<Vec<u16>>,
    }

    impl Protocol for Echo {
        fn name(&self) -> &'static str {
            "echo"
        }

        fn versions(&self) -> &'static [u16] {
            self.versions
        }

        fn run(
            self: Arc<Self>,
            _conn: Arc<Admitted>,
            version: u16,
            mut incoming: mpsc::Receiver<IncomingStream>,
        ) -> ProtocolTask {
            self.ran_at.lock().unwrap().push(version);
            Box::pin(async move {
                while let Some(mut s) = incoming.recv().await {
                    let body = s.recv.read_to_end(1024).await.unwrap_or_default();
                    let reply = [format!("v{version}:").into_bytes(), body].concat();
                    let _ = s.send.write_all(&reply).await;
                    let _ = s.send.finish();
                }
            })
        }
    }

    async fn node_with(
        versions: &'static [u16],
        f: &Formation,
    ) -> (Node, Arc<Echo>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let echo = Arc::new(Echo {
            versions,
            ran_at: Mutex::new(Vec::new()),
        });
        let cfg = NodeConfig::new(dir.path(), f.clone()).listen("127.0.0.1:0".parse().unwrap());
        let node = Node::open_with(cfg, vec![echo.clone() as Arc<dyn Protocol>])
            .await
            .unwrap();
        (node, echo, dir)
    }

    async fn echo(from: &Node, to: &Node, ours: &[u16]) -> Result<Vec<u8>> {
        let conn = from.connections_for_tests().get(&to.id()).unwrap();
        let (mut send, mut recv) = open_stream(&conn, "echo", ours).await?;
        send.write_all(b"hello").await.unwrap();
        send.finish().unwrap();
        Ok(recv.read_to_end(1024).await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mixed_versions_settle_on_the_highest_common_one() {
        let f = Formation::new("toy", [4; 32]);
        let (a, echo_a, _da) = node_with(&[1, 2], &f).await;
        let (b, echo_b, _db) = node_with(&[1], &f).await;
        let (c, _echo_c, _dc) = node_with(&[2], &f).await;
        b.connect(&a.peer_addr()).await.unwrap();
        c.connect(&a.peer_addr()).await.unwrap();
        c.connect(&b.peer_addr()).await.unwrap();
        // a (1, 2) and b (1) speak 1; a and c (2) speak 2
        assert_eq!(echo(&b, &a, &[1]).await.unwrap(), b"v1:hello");
        assert_eq!(echo(&a, &b, &[1, 2]).await.unwrap(), b"v1:hello");
        assert_eq!(echo(&c, &a, &[2]).await.unwrap(), b"v2:hello");
        assert!(echo_a.ran_at.lock().unwrap().contains(&2));
        assert_eq!(*echo_b.ran_at.lock().unwrap(), vec![1]);
        // b (1) and c (2) share no version: no echo between them, a clear
        // error, and everything else on the connection goes on
        let err = echo(&b, &c, &[1]).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Protocol, "{err}");
        let arrived = c.subscribe("docs", Some("d"), false).unwrap();
        b.put("docs", "d", &serde_json::json!({"x": 1}))
            .await
            .unwrap();
        match arrived.next_timeout(Duration::from_secs(20)).await.unwrap() {
            Some(crate::Event::Item(e)) => assert_eq!(e.value, Some(serde_json::json!({"x": 1}))),
            other => panic!("sync stopped: {other:?}"),
        }
        for n in [a, b, c] {
            n.close(Duration::from_secs(5)).await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_for_a_protocol_not_running_is_reset() {
        let f = Formation::new("toy", [4; 32]);
        let (a, _echo, _da) = node_with(&[1], &f).await;
        let (_ep, conn) = crate::node::test_support::raw_connection(&a, &f).await;
        // the raw peer offered no echo: a stream claiming it anyway is refused
        let (mut send, mut recv) = conn.conn().open_bi().await.unwrap();
        let header = Frame::Open {
            protocol: "echo".into(),
            version: 1,
        };
        // The node may stop the stream as soon as it has read the header, so
        // a write after it can fail (that is a refusal too); the read must.
        let _ = write_frame(&mut send, &header).await;
        let _ = send.write_all(b"hello").await;
        let got = recv.read_to_end(1024).await;
        assert!(got.is_err(), "answered: {got:?}");
        // a stream without a header, too
        let (mut send, mut recv) = conn.conn().open_bi().await.unwrap();
        let _ = send.write_all(&[0, 0, 0, 1, 0xff]).await;
        assert!(recv.read_to_end(1024).await.is_err());
        a.close(Duration::from_secs(5)).await.unwrap();
    }

    #[test]
    fn names_must_be_unique_and_versions_given() {
        let e = |v: &'static [u16]| {
            Arc::new(Echo {
                versions: v,
                ran_at: Mutex::new(Vec::new()),
            }) as Arc<dyn Protocol>
        };
        assert!(Router::new(vec![e(&[1]), e(&[2])]).is_err());
        assert!(Router::new(vec![e(&[])]).is_err());
        assert_eq!(Router::new(vec![e(&[1, 2])]).unwrap().offers().len(), 1);
    }
}

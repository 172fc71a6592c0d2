//! Raw peers for tests that speak the wire protocol by hand.

use super::*;
use crate::security::{Admitted, Formation};
use crate::storage::DocKey;
use crate::wire::ProtocolOffer;
use automerge::ReadDoc;
use iroh::endpoint::{RecvStream, SendStream};

/// A raw iroh peer that dials `node`, passes admission by hand and opens a
/// sync stream, for tests that then speak the sync protocol (or misbehave)
/// directly. Returns the endpoint, the admitted connection, the sync stream.
pub(crate) async fn raw_admitted(
    node: &Node,
    formation: &Formation,
) -> (Endpoint, Arc<Admitted>, SendStream, RecvStream) {
    let (ep, conn) = raw_connection(node, formation).await;
    let (send, recv) = crate::transport::router::open_stream(&conn, "sync", &[1])
        .await
        .unwrap();
    (ep, conn, send, recv)
}

/// A raw admitted connection to `node` offering sync, blobs and ephemeral (version 1).
pub(crate) async fn raw_connection(
    node: &Node,
    formation: &Formation,
) -> (Endpoint, Arc<Admitted>) {
    raw_connection_as(node, formation, iroh::SecretKey::generate()).await
}

/// [`raw_connection`] with a given identity.
pub(crate) async fn raw_connection_as(
    node: &Node,
    formation: &Formation,
    secret: iroh::SecretKey,
) -> (Endpoint, Arc<Admitted>) {
    raw_connection_offering(node, formation, secret, &[1]).await
}

/// [`raw_connection_as`] offering the given sync versions.
pub(crate) async fn raw_connection_offering(
    node: &Node,
    formation: &Formation,
    secret: iroh::SecretKey,
    sync_versions: &[u16],
) -> (Endpoint, Arc<Admitted>) {
    let me = NodeId(secret.public());
    let ep = crate::transport::bind_small_window_endpoint(secret, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr =
        EndpointAddr::from_parts(node.id().0, node.addrs().into_iter().map(TransportAddr::Ip));
    let conn = ep.connect(addr, MESH_ALPN).await.unwrap();
    let offers = [
        ProtocolOffer {
            name: "sync".into(),
            versions: sync_versions.to_vec(),
        },
        ProtocolOffer {
            name: "blobs".into(),
            versions: vec![1],
        },
        ProtocolOffer {
            name: "ephemeral".into(),
            versions: vec![1],
        },
    ];
    let gate = crate::security::Gate::secret_only(me);
    raw_admit(ep, conn, formation, &gate, &offers).await
}

/// Admission by hand on a fresh connection, with `gate` (certificates too).
pub(crate) async fn raw_admit(
    ep: Endpoint,
    conn: iroh::endpoint::Connection,
    formation: &Formation,
    gate: &crate::security::Gate,
    offers: &[ProtocolOffer],
) -> (Endpoint, Arc<Admitted>) {
    let me = NodeId(ep.secret_key().public());
    let (admitted, control) = crate::security::admit(conn, true, formation, gate, &me, offers)
        .await
        .unwrap();
    // A clean end of the control stream is no error to the node.
    drop(control);
    (ep, Arc::new(admitted))
}

/// A raw member of `node`'s formation (certificate mode, chain in `gate`)
/// offering only the revocations protocol.
pub(crate) async fn raw_member(
    node: &Node,
    formation: &Formation,
    gate: &crate::security::Gate,
    secret: iroh::SecretKey,
) -> (Endpoint, Arc<Admitted>) {
    let ep = crate::transport::bind_small_window_endpoint(secret, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr =
        EndpointAddr::from_parts(node.id().0, node.addrs().into_iter().map(TransportAddr::Ip));
    let conn = ep.connect(addr, MESH_ALPN).await.unwrap();
    let offers = [ProtocolOffer {
        name: "revocations".into(),
        versions: vec![1],
    }];
    raw_admit(ep, conn, formation, gate, &offers).await
}

/// Changes of a document waiting in Automerge's queue for dependencies
/// (counted by the distinct hashes they wait for).
pub(crate) fn waiting_deps(node: &Node, collection: &str, id: &str) -> usize {
    let key = DocKey::new(collection, id).unwrap();
    node.inner
        .engine
        .store
        .read(&key, |d| Ok(d.get_missing_deps(&[]).len()))
        .unwrap()
        .unwrap_or(0)
}

impl super::Node {
    pub(crate) fn manager_for_tests(&self) -> Arc<Manager> {
        self.inner.manager.clone()
    }

    pub(crate) fn engine_for_tests(&self) -> Arc<Engine> {
        self.inner.engine.clone()
    }

    pub(crate) fn connections_for_tests(&self) -> Arc<Connections> {
        self.inner.connections.clone()
    }

    pub(crate) fn ephemeral_for_tests(&self) -> Arc<crate::ephemeral::service::Ephemeral> {
        self.inner.ephemeral.clone()
    }
}

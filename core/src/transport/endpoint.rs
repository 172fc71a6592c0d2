//! Binding the iroh endpoint with nothing beyond what the configuration names:
//! no relays, no address-lookup services, no port mapping, one listen socket.

use std::net::SocketAddr;
use std::time::Duration;

use iroh::endpoint::{presets, QuicTransportConfig, VarInt};
use iroh::Endpoint;

use crate::error::{Error, Result};
use crate::links::{Bond, BondFirst};
use std::sync::Arc;

/// Bidirectional streams a peer may have open at once: the sync session and
/// the blob requests (see `blobs::provider::MAX_STREAMS_PER_PEER`), with room
/// for a few more that are accepted only to be refused.
const MAX_BIDI_STREAMS: u32 = 16;

/// ALPN of a peat-mesh connection; the suffix is the connection layout's
/// version ([`crate::wire::PROTOCOL_VERSION`]: admission, control stream, stream
/// headers). The protocols inside (sync, blobs, ...) negotiate their own
/// versions after admission (see [`super::router`]).
pub(crate) const MESH_ALPN: &[u8] = b"peat-mesh/2";

/// Binds an endpoint on `listen` only (no UDP socket at all if `None`: the
/// node then reaches peers over its links only). The builder starts empty (relays disabled,
/// no address lookup) and the `portmapper` feature is not compiled in, so the
/// node emits no packet to the internet or to the gateway unless told to.
///
/// `link_timeout` is how long a silent link lives: keep-alives go every quarter
/// of it, so a dead link is noticed within it and a live one never idles out.
pub(crate) async fn bind_endpoint(
    secret: iroh::SecretKey,
    listen: Option<SocketAddr>,
    link_timeout: Duration,
    bond: Option<&Bond>,
) -> Result<Endpoint> {
    bind_with_windows(secret, listen, link_timeout, bond, 1_250_000, 16 << 20).await
}

/// A test peer that takes in little (64 KiB per stream): what it is sent but
/// does not read then costs its own process little, so memory measured in a
/// test is the node's.
#[cfg(test)]
pub(crate) async fn bind_small_window_endpoint(
    secret: iroh::SecretKey,
    listen: SocketAddr,
) -> Result<Endpoint> {
    bind_with_windows(
        secret,
        Some(listen),
        Duration::from_secs(6),
        None,
        64 << 10,
        1 << 20,
    )
    .await
}

async fn bind_with_windows(
    secret: iroh::SecretKey,
    listen: Option<SocketAddr>,
    link_timeout: Duration,
    bond: Option<&Bond>,
    stream_window: u32,
    conn_window: u32,
) -> Result<Endpoint> {
    let idle = link_timeout.clamp(Duration::from_secs(1), Duration::from_secs(15));
    // Explicit limits, not the library's defaults: one sync stream plus the blob
    // streams a provider serves at once (a few spare for requests being
    // refused), no unidirectional streams, and receive windows that bound what
    // one peer can make this node buffer: 1.25 MB per stream (the library's
    // own default, sized for 100 Mbit/s at 100 ms) and 16 MiB in all (the
    // library's default is unbounded).
    let transport = QuicTransportConfig::builder()
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_BIDI_STREAMS))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(stream_window))
        .receive_window(VarInt::from_u32(conn_window))
        .keep_alive_interval(idle / 4)
        .default_path_keep_alive_interval(idle / 4)
        .default_path_max_idle_timeout(idle)
        .max_idle_timeout(Some(idle.try_into().map_err(|e| {
            Error::InvalidArgument(format!("link timeout {link_timeout:?}: {e}"))
        })?))
        .build();
    let mut builder = Endpoint::builder(presets::Minimal).transport_config(transport);
    // The links besides UDP: one more path, preferred while it lives.
    if let Some(bond) = bond {
        builder = builder
            .add_custom_transport(Arc::new(bond.clone()))
            .path_selector(Arc::new(BondFirst));
    }
    builder = builder.clear_ip_transports();
    if let Some(listen) = listen {
        builder = builder
            .bind_addr(listen)
            .map_err(|e| Error::InvalidArgument(format!("listen address {listen}: {e}")))?;
    }
    builder
        .secret_key(secret)
        .alpns(vec![MESH_ALPN.to_vec()])
        .bind()
        .await
        .map_err(|e| Error::Network(format!("bind {listen:?}: {e}")))
}

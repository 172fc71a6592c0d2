//! Binding the iroh endpoint with nothing beyond what the configuration names:
//! no relays, no address-lookup services, no port mapping, one listen socket.

use std::net::SocketAddr;

use iroh::endpoint::presets;
use iroh::Endpoint;

use crate::error::{Error, Result};

/// ALPN of the document sync protocol; the suffix is the protocol version.
pub(crate) const SYNC_ALPN: &[u8] = b"peat-mesh/sync/1";

/// Binds an endpoint on `listen` only. The builder starts empty (relays disabled,
/// no address lookup) and the `portmapper` feature is not compiled in, so the
/// node emits no packet to the internet or to the gateway unless told to.
pub(crate) async fn bind_endpoint(secret: iroh::SecretKey, listen: SocketAddr) -> Result<Endpoint> {
    Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr(listen)
        .map_err(|e| Error::InvalidArgument(format!("listen address {listen}: {e}")))?
        .secret_key(secret)
        .alpns(vec![SYNC_ALPN.to_vec()])
        .bind()
        .await
        .map_err(|e| Error::Network(format!("bind {listen}: {e}")))
}

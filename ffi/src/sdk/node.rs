//! The library's lifecycle and nodes: formation secrets, cancel tokens,
//! opening and closing nodes, and shutting the SDK down.

use std::time::Duration;

use peat_mesh::{Formation, Node, NodeConfig};

use super::args::{ms, parse_peer};
use super::links::LinkPlan;
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::handles::{self, Object};
use crate::records::NodeOptions;
use crate::runtime;

/// The node's configuration; its links, when it has any, open in [`node_open`]
/// (a BLE link opens its adapter there).
fn node_config(o: &NodeOptions) -> SdkResult<(NodeConfig, Option<LinkPlan>)> {
    if o.data_dir.is_empty() {
        return Err(SdkError::invalid("data_dir must not be empty"));
    }
    let secret: zeroize::Zeroizing<[u8; 32]> = zeroize::Zeroizing::new(
        o.formation_secret
            .as_slice()
            .try_into()
            .map_err(|_| SdkError::invalid("formation secret must be 32 bytes"))?,
    );
    // An all-zero secret (one never set) is refused for every binding.
    let formation = Formation::try_new(&o.formation_id, *secret)?;
    let listen = if o.listen.is_empty() {
        "0.0.0.0:0"
    } else {
        &o.listen
    };
    let mut cfg = NodeConfig::new(&o.data_dir, formation).listen(
        listen
            .parse()
            .map_err(|e| SdkError::invalid(format!("listen address {listen:?}: {e}")))?,
    );
    for p in &o.peers {
        cfg = cfg.peer(parse_peer(p)?);
    }
    cfg.udp = !o.links_only;
    let links = if o.links.is_empty() {
        None
    } else {
        Some(LinkPlan::new(&o.links, &o.pace)?)
    };
    let cfg = super::ephemeral::apply(&o.ephemeral, cfg)?;
    let cfg = super::lifecycle::apply(o, cfg)?;
    let cfg = super::bandwidth::apply(o, cfg)?;
    let cfg = super::trust::apply(o, cfg)?;
    Ok((cfg.mdns(o.mdns), links))
}

/// A new random 32-byte formation secret from a cryptographically secure
/// generator (never all zeros). Share it with the formation's nodes out of band.
pub fn generate_formation_secret() -> [u8; 32] {
    Formation::generate_secret()
}

/// A new cancel token (a handle). Pass it to long operations; [`cancel`] ends them.
pub fn cancel_new() -> u64 {
    handles::insert(Object::Cancel(tokio_util::sync::CancellationToken::new()))
}

/// Triggers a cancel token: every operation waiting on it ends with `Cancelled`
/// and its work is dropped. Later operations given the token end at once.
pub fn cancel(token: u64) -> SdkResult<()> {
    handles::cancel_token(token)?
        .ok_or_else(|| SdkError::new(ErrorCode::InvalidHandle, "null cancel token handle"))?
        .cancel();
    Ok(())
}

/// Frees a cancel token's handle; 0 (no token) is accepted and does nothing.
pub fn cancel_free(token: u64) -> SdkResult<()> {
    if token == 0 {
        return Ok(());
    }
    handles::cancel_token(token)?;
    handles::remove(token).map(|_| ())
}

/// Opens a node; returns its handle. `cancel` is a token handle or 0.
pub fn node_open(opts: &NodeOptions, timeout_ms: u64, cancel: u64) -> SdkResult<u64> {
    let (cfg, links) = node_config(opts)?;
    let token = handles::cancel_token(cancel)?;
    let node = runtime::block_on_cancellable(ms(timeout_ms), token, async move {
        let cfg = match links {
            Some(plan) => plan.open(cfg).await?,
            None => cfg,
        };
        Node::open(cfg).await.map_err(SdkError::from)
    })?;
    Ok(handles::insert(Object::Node(node)))
}

/// Closes a node and frees its handle. Its subscriptions end (their handles stay
/// valid until closed and report `Closed`). Closing twice is an `InvalidHandle` error.
pub fn node_close(node: u64, timeout_ms: u64) -> SdkResult<()> {
    handles::node(node)?;
    let Object::Node(n) = handles::remove(node)? else {
        return Err(SdkError::new(ErrorCode::Internal, "handle changed type"));
    };
    crate::backlog::forget(node);
    runtime::block_on(async move { n.close(ms(timeout_ms)).await.map_err(SdkError::from) })?
}

/// Handles of every node open in this process, oldest first. A host whose
/// code was reloaded (an ATAK plugin) finds the nodes its previous incarnation
/// left open here, to reuse or close them.
pub fn node_handles() -> Vec<u64> {
    handles::nodes()
}

/// This node's id (64 hex digits).
pub fn node_id(node: u64) -> SdkResult<String> {
    Ok(handles::node(node)?.id().to_string())
}

/// Strings another node can dial to reach this one: `NODEID@HOST:PORT` per
/// socket address, then, with links, `NODEID@LINKADDR` (its links' bond
/// address). Join addresses with commas to give a peer several:
/// `NODEID@HOST:PORT,LINKADDR`.
pub fn node_addrs(node: u64) -> SdkResult<Vec<String>> {
    let n = handles::node(node)?;
    let p = n.peer_addr();
    let socket = p.addrs.iter().map(|a| a.to_string());
    let links = p.links.iter().map(|l| l.to_string());
    Ok(socket
        .chain(links)
        .map(|a| format!("{}@{a}", p.id))
        .collect())
}

/// The longest [`shutdown`] gives each open node to close (sessions flushed,
/// tasks ended); the store is flushed and released whatever this deadline.
pub const SHUTDOWN_NODE_CLOSE: Duration = Duration::from_secs(5);

/// How much longer than its close deadline [`shutdown`] waits for a node's store
/// to flush and release its database file before leaving it behind.
const SHUTDOWN_STORE_GRACE: Duration = Duration::from_secs(10);

/// Shuts the SDK down. Every handle is freed: subscriptions end and push
/// delivery stops first (no callback starts after this returns), then every
/// open node is closed as [`peat_mesh::Node::close`] does (all at once, each
/// within `timeout_ms` but at most [`SHUTDOWN_NODE_CLOSE`]): connections closed,
/// the store flushed and its database file released, so the data dir can be
/// reopened at once, by this process's successor or another one. Then the
/// runtime stops (waiting up to `timeout_ms` for tasks). Afterwards every call
/// returns [`ErrorCode::ShutDown`]. Idempotent.
pub fn shutdown(timeout_ms: u64) -> SdkResult<()> {
    runtime::refuse_on_runtime_thread("shutdown called from an SDK runtime thread")?;
    let timeout = ms(timeout_ms);
    let nodes = handles::clear();
    // Later calls see ShutDown at once, while the nodes close below.
    if let Some(rt) = runtime::stop() {
        close_nodes(&rt, nodes, timeout.min(SHUTDOWN_NODE_CLOSE));
        rt.shutdown_timeout(timeout);
    }
    Ok(())
}

/// Closes `nodes` on the runtime, concurrently, each within `close`; waits at
/// most `close` + [`SHUTDOWN_STORE_GRACE`] in all. Failures are logged.
fn close_nodes(rt: &tokio::runtime::Runtime, nodes: Vec<Node>, close: Duration) {
    if nodes.is_empty() {
        return;
    }
    let closing: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            rt.spawn(async move {
                if let Err(e) = n.close(close).await {
                    tracing::warn!(node = %n.id(), "closing the node at shutdown: {e}");
                }
            })
        })
        .collect();
    let all = async move {
        for task in closing {
            let _ = task.await;
        }
    };
    // The timer is made inside the runtime's context, never on the caller's thread.
    let bounded = async move { tokio::time::timeout(close + SHUTDOWN_STORE_GRACE, all).await };
    if rt.block_on(bounded).is_err() {
        tracing::warn!("shutdown: a node did not finish closing; left behind");
    }
}

//! Revocations spread through the mesh, and bite.
//!
//! A node with trust settings runs the `revocations` protocol on every
//! admitted connection: one stream (opened by the dialler) on which each
//! side first lists the certificate ids whose revocations it holds (pages of
//! [`IDS_PER_FRAME`]); each side then sends the other every revocation it
//! lacks ([`crate::trust::RevocationRecord`]: the signed revocation and the
//! revoker's chain), and from then on every revocation it learns, at once.
//! A receiver checks each record ([`crate::trust::Revocation::check`])
//! before keeping it; one that does not check out is counted and dropped
//! (never passed on), and a known one is not passed on again, so a
//! revocation crosses each connection once and the flood ends.
//!
//! So a node that was offline learns every revocation from the first node it
//! reconnects to that knows it, and a new revocation reaches every connected
//! node in one round trip per hop (bounded by the bandwidth budgets like
//! everything else).
//!
//! The [`enforce`] task closes every connection whose peer's chain a
//! revocation names, at once when one is learnt and in a sweep every
//! [`SWEEP_EVERY`] (which also closes peers whose certificates expired,
//! past the clock skew); admission refuses the revoked chain afterwards, so
//! the peer cannot come back, fetch a blob or sync anything.

mod protocol;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

pub(crate) use protocol::RevocationProtocol;

use crate::security::Gate;
use crate::transport::{close_code, Connections, NodeContext, PeerEvent};

/// Ids per `RevocationIds` frame.
pub(crate) const IDS_PER_FRAME: usize = 1024;

/// How often every connection's chain is checked again (revocations learnt
/// are applied at once; this catches expiries and a connection admitted
/// while a revocation was being learnt).
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Closes the connections of revoked (or expired) peers, and publishes
/// [`PeerEvent::Revoked`] for each revocation learnt, until the node closes.
pub(crate) async fn enforce(ctx: Arc<NodeContext>, connections: Arc<Connections>) {
    let gate = &ctx.gate;
    let mut news = gate.subscribe();
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            n = news.recv() => match n {
                Ok(n) => {
                    if let Some(peer) = n.record.revocation.subject() {
                        ctx.peer_hub.publish(&PeerEvent::Revoked { peer }, |_| true);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "revocations learnt faster than announced: some have no event");
                }
                Err(RecvError::Closed) => return,
            },
            _ = sweep.tick() => gate.forget_expired(),
        }
        cut_revoked(gate, &connections);
    }
}

/// Closes every connection whose peer's membership no longer holds.
fn cut_revoked(gate: &Gate, connections: &Connections) {
    for conn in connections.admitted() {
        let Some(m) = conn.membership() else { continue };
        if let Some(reason) = gate.revoked(m) {
            tracing::info!(peer = %conn.peer().short(), %reason, "closing a connection whose certificate no longer holds");
            conn.close(close_code::REVOKED, &reason);
        }
    }
}

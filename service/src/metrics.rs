//! Prometheus metrics at `/metrics` (text exposition format 0.0.4).
//!
//! The node's figures are read when scraped (peers, sessions, documents,
//! store size, sync frames and bytes per kind and direction, reconciliation
//! rounds, blob bytes, signatures, subscriptions); the service adds its own
//! (HTTP requests and their latency histogram per route, WebSocket clients,
//! messages and lag).
//!
//! The text is written here rather than with `prometheus-client`: every node
//! figure is a snapshot the core already keeps, and the exposition format is
//! a small, stable spec; mirroring each snapshot into a client registry
//! would add code, not remove it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use peat_mesh::{Node, PeerState};

/// Upper bounds (seconds) of the request-latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Distinct (method, route, status) series kept at most; requests beyond
/// are counted under `route="other"`. Routes are the API's templates (not
/// raw paths), so the real number is small; the bound holds anyway.
pub const MAX_SERIES: usize = 512;

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (b, le) in self.buckets.iter_mut().zip(BUCKETS) {
            if secs <= le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// The service's own counters.
#[derive(Default)]
pub struct ServiceMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    pub ws_clients: AtomicU64,
    pub ws_messages: AtomicU64,
    pub ws_lagged: AtomicU64,
    pub ws_dropped: AtomicU64,
}

impl ServiceMetrics {
    /// Records one HTTP request.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = (method.to_string(), route.to_string(), status);
        if !m.contains_key(&key) && m.len() >= MAX_SERIES {
            key = ("other".into(), "other".into(), 0);
        }
        m.entry(key).or_default().observe(took.as_secs_f64());
    }
}

/// Writes `# HELP` and `# TYPE` lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped for the text format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn one(out: &mut String, name: &str, kind: &str, help: &str, v: u64) {
    head(out, name, kind, help);
    let _ = writeln!(out, "{name} {v}");
}

/// The whole exposition.
pub async fn render(
    node: &Node,
    svc: &ServiceMetrics,
    kubernetes: Option<&peat_mesh_k8s::Discovery>,
) -> String {
    let mut out = String::with_capacity(8 << 10);
    let o = &mut out;

    let peers = node.peers();
    head(o, "peat_peers", "gauge", "Peers known, by state.");
    for (state, name) in [
        (PeerState::Connected, "connected"),
        (PeerState::Disconnected, "disconnected"),
        (PeerState::Discovered, "discovered"),
        (PeerState::OtherFormation, "other_formation"),
    ] {
        let n = peers.iter().filter(|p| p.state == state).count();
        let _ = writeln!(o, "peat_peers{{state=\"{name}\"}} {n}");
    }
    one(
        o,
        "peat_sessions",
        "gauge",
        "Admitted connections (sync sessions).",
        node.connected_peers() as u64,
    );
    head(
        o,
        "peat_peer_rtt_seconds",
        "gauge",
        "Round-trip time to each connected peer.",
    );
    for p in peers.iter().filter(|p| p.state == PeerState::Connected) {
        if let Some(rtt) = p.rtt {
            let _ = writeln!(
                o,
                "peat_peer_rtt_seconds{{peer=\"{}\"}} {}",
                p.id,
                rtt.as_secs_f64()
            );
        }
    }

    // Per peer: the peer table is bounded (1,024 entries), so are these series.
    head(
        o,
        "peat_peer_sync_bytes_total",
        "counter",
        "Sync bytes exchanged with each peer since the node opened, by direction.",
    );
    for p in &peers {
        for (dir, n) in [
            ("sent", p.sync_bytes_sent),
            ("received", p.sync_bytes_received),
        ] {
            if n > 0 {
                let _ = writeln!(
                    o,
                    "peat_peer_sync_bytes_total{{peer=\"{}\",direction=\"{dir}\"}} {n}",
                    p.id
                );
            }
        }
    }
    head(
        o,
        "peat_peer_sync_queue",
        "gauge",
        "What waits in each connected peer's sync queues: live updates, and bytes of owed answers.",
    );
    for p in peers.iter().filter(|p| p.state == PeerState::Connected) {
        let _ = writeln!(
            o,
            "peat_peer_sync_queue{{peer=\"{}\",queue=\"updates\"}} {}",
            p.id, p.sync_queued_updates
        );
        let _ = writeln!(
            o,
            "peat_peer_sync_queue{{peer=\"{}\",queue=\"reply_bytes\"}} {}",
            p.id, p.sync_queued_reply_bytes
        );
    }

    if let Ok(st) = node.storage_stats().await {
        one(
            o,
            "peat_documents",
            "gauge",
            "Live documents stored.",
            st.documents,
        );
        one(
            o,
            "peat_tombstones",
            "gauge",
            "Deleted documents not yet purged.",
            st.tombstones,
        );
        one(
            o,
            "peat_store_document_bytes",
            "gauge",
            "Bytes the documents and tombstones take in the store.",
            st.document_bytes,
        );
        head(
            o,
            "peat_documents_removed_total",
            "counter",
            "Documents removed by the lifecycle, by cause.",
        );
        for (cause, n) in [
            ("expired", st.expired_total),
            ("retention", st.evicted_total),
            ("budget", st.budget_evicted_total),
        ] {
            let _ = writeln!(o, "peat_documents_removed_total{{cause=\"{cause}\"}} {n}");
        }
    }

    let sync = node.sync_stats();
    head(
        o,
        "peat_sync_frames_total",
        "counter",
        "Sync frames, by direction and kind.",
    );
    for (dir, t) in [("sent", &sync.sent), ("received", &sync.received)] {
        for (kind, (frames, _)) in &t.by_kind {
            let _ = writeln!(
                o,
                "peat_sync_frames_total{{direction=\"{dir}\",kind=\"{kind}\"}} {frames}"
            );
        }
    }
    head(
        o,
        "peat_sync_bytes_total",
        "counter",
        "Sync bytes (encoded frames), by direction and kind.",
    );
    for (dir, t) in [("sent", &sync.sent), ("received", &sync.received)] {
        for (kind, (_, bytes)) in &t.by_kind {
            let _ = writeln!(
                o,
                "peat_sync_bytes_total{{direction=\"{dir}\",kind=\"{kind}\"}} {bytes}"
            );
        }
    }
    let h = &sync.update_latency;
    head(
        o,
        "peat_update_latency_seconds",
        "histogram",
        "Changes from peers: from the commit at their author to their application here (the clocks' skew shifts it).",
    );
    for (le, n) in peat_mesh::sync::LATENCY_BOUNDS_MS.iter().zip(h.buckets) {
        let _ = writeln!(
            o,
            "peat_update_latency_seconds_bucket{{le=\"{}\"}} {n}",
            *le as f64 / 1000.0
        );
    }
    let _ = writeln!(
        o,
        "peat_update_latency_seconds_bucket{{le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(
        o,
        "peat_update_latency_seconds_sum {}",
        h.sum_ms as f64 / 1000.0
    );
    let _ = writeln!(o, "peat_update_latency_seconds_count {}", h.count);
    let rounds = sync.sent.by_kind.get("Reconcile").map_or(0, |v| v.0);
    one(
        o,
        "peat_reconciliation_rounds_total",
        "counter",
        "Reconciliation messages this node sent (one per round and peer).",
        rounds,
    );
    one(
        o,
        "peat_sync_refused_documents_total",
        "counter",
        "Documents or changes from peers refused (too deep, too large).",
        sync.refused_documents,
    );

    let blobs = node.blobs().stats();
    head(
        o,
        "peat_blob_bytes_total",
        "counter",
        "Blob bytes, by direction.",
    );
    for (dir, n) in [
        ("served", blobs.bytes_served),
        ("received", blobs.bytes_received),
        ("rejected", blobs.bytes_rejected),
    ] {
        let _ = writeln!(o, "peat_blob_bytes_total{{direction=\"{dir}\"}} {n}");
    }

    let sig = node.signature_stats();
    head(
        o,
        "peat_signatures_total",
        "counter",
        "Change signatures, by outcome.",
    );
    for (what, n) in [
        ("signed", sig.signed),
        ("verified", sig.verified),
        ("forged", sig.forged),
        ("unsigned", sig.unsigned),
        ("rejected", sig.rejected),
    ] {
        let _ = writeln!(o, "peat_signatures_total{{outcome=\"{what}\"}} {n}");
    }
    one(
        o,
        "peat_subscriptions",
        "gauge",
        "Live document subscriptions (SDK and WebSocket).",
        node.subscription_count() as u64,
    );
    one(
        o,
        "peat_subscription_queued_events",
        "gauge",
        "Events waiting unread in the node's subscriptions (each queue bounded).",
        node.queued_events(),
    );

    one(
        o,
        "peat_ws_clients",
        "gauge",
        "WebSocket clients connected.",
        svc.ws_clients.load(Ordering::Relaxed),
    );
    one(
        o,
        "peat_ws_messages_total",
        "counter",
        "Messages sent to WebSocket clients.",
        svc.ws_messages.load(Ordering::Relaxed),
    );
    one(
        o,
        "peat_ws_lagged_total",
        "counter",
        "Lag notices sent to WebSocket clients that read too slowly.",
        svc.ws_lagged.load(Ordering::Relaxed),
    );
    one(
        o,
        "peat_ws_dropped_events_total",
        "counter",
        "Events dropped for WebSocket clients that read too slowly (each counted in a lag notice).",
        svc.ws_dropped.load(Ordering::Relaxed),
    );

    if let Some(k) = kubernetes {
        kubernetes_metrics(o, &k.stats());
    }

    let requests = svc
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    head(
        o,
        "peat_http_request_duration_seconds",
        "histogram",
        "HTTP request latency, by method, route and status.",
    );
    for ((method, route, status), h) in &requests {
        let labels = format!(
            "method=\"{}\",route=\"{}\",status=\"{status}\"",
            esc(method),
            esc(route)
        );
        for (le, n) in BUCKETS.iter().zip(h.buckets) {
            let _ = writeln!(
                o,
                "peat_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "peat_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            o,
            "peat_http_request_duration_seconds_sum{{{labels}}} {}",
            h.sum
        );
        let _ = writeln!(
            o,
            "peat_http_request_duration_seconds_count{{{labels}}} {}",
            h.count
        );
    }
    out
}

/// Kubernetes discovery's figures (present only when it runs).
fn kubernetes_metrics(o: &mut String, k: &peat_mesh_k8s::Stats) {
    head(
        o,
        "peat_kubernetes_endpoints",
        "gauge",
        "Endpoints of the watched EndpointSlices, by state (unidentified: ready, but its pod has not announced a node id).",
    );
    for (state, n) in [
        ("ready", k.counts.ready),
        ("not_ready", k.counts.not_ready),
        ("unidentified", k.counts.unidentified),
    ] {
        let _ = writeln!(o, "peat_kubernetes_endpoints{{state=\"{state}\"}} {n}");
    }
    one(
        o,
        "peat_kubernetes_slices_without_port",
        "gauge",
        "Watched EndpointSlices without the configured UDP port (not dialled).",
        k.counts.slices_without_port as u64,
    );
    one(
        o,
        "peat_kubernetes_over_limit",
        "gauge",
        "Slices, endpoints, pods or peers left out at discovery's bounds.",
        k.counts.over_limit as u64,
    );
    one(
        o,
        "peat_kubernetes_peers",
        "gauge",
        "Peers Kubernetes discovery wants dialled.",
        k.peers as u64,
    );
    one(
        o,
        "peat_kubernetes_synced",
        "gauge",
        "1 once both watches have listed their objects.",
        u64::from(k.synced),
    );
    one(
        o,
        "peat_kubernetes_announced",
        "gauge",
        "1 while this node's pod carries its node id.",
        u64::from(k.announced),
    );
    one(
        o,
        "peat_kubernetes_watch_errors_total",
        "counter",
        "Watch errors (each followed by a re-list after a backoff).",
        k.watch_errors,
    );
    one(
        o,
        "peat_kubernetes_announce_errors_total",
        "counter",
        "Failed attempts to write this node's id into its pod.",
        k.announce_errors,
    );
    one(
        o,
        "peat_kubernetes_events_total",
        "counter",
        "Watch events received.",
        k.events,
    );
}

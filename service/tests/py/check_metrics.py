"""Checks a running node's /metrics with the Prometheus project's Python
parser (prometheus-client): the exposition parses, the expected families
are there with their types, and figures follow what this script does
(documents written over HTTP, requests counted in the latency histogram).

Needs PEAT_HTTP (host:port) and PEAT_TOKEN in the environment.
"""

import json
import os
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BASE = "http://" + os.environ["PEAT_HTTP"]
TOKEN = os.environ["PEAT_TOKEN"]


def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(BASE + path, data=body, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape() -> dict:
    status, body = call("GET", "/metrics")
    assert status == 200, status
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(families: dict, name: str, sample: str | None = None, **labels: str) -> float:
    fam = families[name]
    for s in fam.samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no sample {sample or name} {labels} in {fam.samples}")


def main() -> None:
    before = scrape()
    docs_before = value(before, "peat_documents")
    for i in range(7):
        status, body = call("PUT", f"/api/v1/collections/metrics/documents/m{i}", json.dumps({"i": i}).encode())
        assert status == 204, (status, body)
    status, _ = call("GET", "/api/v1/collections/metrics/documents/m3")
    assert status == 200
    status, _ = call("GET", "/metrics", None)
    after = scrape()

    expected = {
        "peat_peers": "gauge",
        "peat_sessions": "gauge",
        "peat_peer_rtt_seconds": "gauge",
        "peat_documents": "gauge",
        "peat_tombstones": "gauge",
        "peat_store_document_bytes": "gauge",
        "peat_documents_removed": "counter",
        "peat_sync_frames": "counter",
        "peat_sync_bytes": "counter",
        "peat_reconciliation_rounds": "counter",
        "peat_sync_refused_documents": "counter",
        "peat_blob_bytes": "counter",
        "peat_signatures": "counter",
        "peat_subscriptions": "gauge",
        "peat_ws_clients": "gauge",
        "peat_ws_messages": "counter",
        "peat_ws_lagged": "counter",
        "peat_ws_dropped_events": "counter",
        "peat_http_request_duration_seconds": "histogram",
        "peat_peer_sync_bytes": "counter",
        "peat_peer_sync_queue": "gauge",
        "peat_update_latency_seconds": "histogram",
        "peat_subscription_queued_events": "gauge",
    }
    for name, kind in expected.items():
        assert name in after, f"{name} missing; have {sorted(after)}"
        assert after[name].type == kind, f"{name}: {after[name].type} != {kind}"

    assert value(after, "peat_documents") == docs_before + 7
    assert value(after, "peat_peers", state="connected") == 0
    assert value(after, "peat_sessions") == 0
    assert value(after, "peat_store_document_bytes") > 0
    # no peer: no change arrived, nothing per peer
    assert value(after, "peat_update_latency_seconds", "peat_update_latency_seconds_count") == 0
    assert not after["peat_peer_sync_bytes"].samples and not after["peat_peer_sync_queue"].samples
    put_route = "/api/v1/collections/{collection}/documents/{id}"
    puts = value(after, "peat_http_request_duration_seconds", "peat_http_request_duration_seconds_count",
                 method="PUT", route=put_route, status="204")
    assert puts >= 7, puts
    inf = value(after, "peat_http_request_duration_seconds", "peat_http_request_duration_seconds_bucket",
                method="PUT", route=put_route, status="204", le="+Inf")
    assert inf == puts
    # no raw path (with a document id) ever becomes a label
    for s in after["peat_http_request_duration_seconds"].samples:
        assert "m3" not in s.labels.get("route", ""), s
    # without the token: 401, and nothing is exposed
    req = urllib.request.Request(BASE + "/metrics")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("/metrics answered without a token")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
    print(f"metrics: {len(after)} families parsed, {int(puts)} PUTs in the histogram")


if __name__ == "__main__":
    sys.exit(main())

"""The status page in real headless Chromium (Debian's `chromium`), driven
over the DevTools protocol (websocket-client from PyPI): the page loads with
the token given in its URL fragment, goes live over the WebSocket, shows a
peer that connects during the test (a second `peat-mesh-node serve`), a
collection with its count and the change written meanwhile; then a
screenshot is saved.

Needs PEAT_HTTP, PEAT_TOKEN, PEAT_BIN (the node binary), PEAT_SECRET_FILE,
PEAT_WORK (a scratch dir) and PEAT_SCREENSHOT (where the PNG goes).
Chromium is kept off every network but loopback.
"""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

import websocket  # websocket-client

HTTP = os.environ["PEAT_HTTP"]
TOKEN = os.environ["PEAT_TOKEN"]
BIN = os.environ["PEAT_BIN"]
WORK = os.environ["PEAT_WORK"]
SHOT = os.environ["PEAT_SCREENSHOT"]


def api(method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{HTTP}/api/v1{path}", data=data, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return json.loads(text) if text else {}


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"the page could not run {expr!r}: {r['exceptionDetails']}")
        return r.get("result", {}).get("value")

    def wait_for(self, what: str, expr: str, seconds: float = 30.0):
        """Re-checks `expr` in the page until it is truthy: the page changes
        on its own (WebSocket events, its refresh timers)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.eval(expr):
                return
            time.sleep(0.1)
        body = self.eval("document.body.innerText") + "\n" + str(self.eval("document.querySelector('#peers').outerHTML"))
        raise AssertionError(f"the page never showed {what}; it shows:\n{body}")


def start_chromium(profile: str) -> tuple[subprocess.Popen, str]:
    args = [
        "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
        "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}", "--window-size=1280,900",
        # nothing but loopback
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-default-apps", "--no-first-run",
        "--disable-domain-reliability", "--disable-breakpad",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(WORK, "chromium.log"), "w"))
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + 60
    while not os.path.exists(port_file) or not open(port_file).read().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("Chromium did not start: " + open(os.path.join(WORK, "chromium.log")).read()[-2000:])
        time.sleep(0.1)
    port = open(port_file).read().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
        tabs = [t for t in json.load(r) if t.get("type") == "page"]
    return proc, tabs[0]["webSocketDebuggerUrl"]


def start_peer(peer_addr: str) -> tuple[subprocess.Popen, str]:
    cfg = os.path.join(WORK, "peer.toml")
    with open(cfg, "w") as f:
        f.write(f'data_dir = "{WORK}/peer-data"\nformation = "service-check"\n'
                f'secret_file = "{os.environ["PEAT_SECRET_FILE"]}"\nlisten = "127.0.0.1:0"\n'
                f'peers = ["{peer_addr}"]\n[http]\nbind = "127.0.0.1:0"\n')
    out = open(os.path.join(WORK, "peer.out"), "w+")
    proc = subprocess.Popen([BIN, "serve", "--config", cfg], stdout=out,
                            stderr=open(os.path.join(WORK, "peer.err"), "w"), stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out.seek(0)
        for line in out.read().splitlines():
            if line.startswith("READY "):
                return proc, line.split()[1]
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError("the peer did not start: " + open(os.path.join(WORK, "peer.err")).read())


def main() -> None:
    profile = os.path.join(WORK, "chromium-profile")
    os.makedirs(profile, exist_ok=True)
    chromium, ws_url = start_chromium(profile)
    peer = None
    try:
        page = Page(ws_url)
        page.call("Page.enable")
        page.call("Page.navigate", url=f"http://{HTTP}/#token={TOKEN}")
        # Page.navigate answers before the new document exists: until it has
        # loaded, the old (blank) one answers the checks.
        page.wait_for("the page loaded", f"location.host === {json.dumps(HTTP)} && document.readyState === 'complete'")
        node = api("GET", "/node")
        page.wait_for("the node's id", f"document.getElementById('node-id')?.title === {json.dumps(node['id'])}")
        page.wait_for("the live WebSocket", "document.getElementById('live')?.textContent === 'live'")
        assert page.eval("location.hash") == "", "the token is taken out of the address bar"

        api("PUT", "/collections/tracks/documents/t1", {"callsign": "ALPHA-1"})
        page.wait_for("the collection and its count",
                      "[...document.querySelectorAll('#collections td')].map(t => t.textContent).join('|').includes('tracks|1')")
        # the page subscribes to the collections it shows: a later write shows live
        api("PUT", "/collections/tracks/documents/t2", {"callsign": "BRAVO-2"})
        page.wait_for("the change", "document.getElementById('changes').textContent.includes('tracks/t2')")

        peer, peer_id = start_peer(node["peer"])
        page.wait_for("the new peer, connected",
                      f"(() => {{ const r = document.querySelector('#peers tr[data-peer=\"{peer_id}\"]');"
                      " return r && r.textContent.includes('connected'); })()")
        page.wait_for("the peer in the graph", f"!!document.querySelector('#graph circle[data-peer=\"{peer_id}\"]')")
        page.wait_for("the connection event", "document.getElementById('events').textContent.includes('connected')")
        shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000, len(shot)
        with open(SHOT, "wb") as f:
            f.write(shot)
        print(f"status page: live, peer {peer_id[:10]} shown; screenshot {SHOT} ({len(shot)} bytes)")
    finally:
        if peer is not None:
            peer.terminate()
            peer.wait(timeout=30)
        chromium.terminate()
        try:
            chromium.wait(timeout=30)
        except subprocess.TimeoutExpired:
            chromium.kill()


if __name__ == "__main__":
    sys.exit(main())

"""A 100 MiB blob through a running node's HTTP API, with the node's memory
watched: uploaded as a stream, downloaded whole and by byte ranges, each
checked against the bytes sent. The node process's peak resident memory
(VmHWM) may grow by at most MAX_GROWTH over the whole exercise, far less
than the blob: neither direction holds the blob in memory.

Needs PEAT_HTTP (host:port), PEAT_TOKEN and PEAT_PID in the environment.
"""

import hashlib
import os
import sys
import urllib.request

BASE = "http://" + os.environ["PEAT_HTTP"]
TOKEN = os.environ["PEAT_TOKEN"]
PID = int(os.environ["PEAT_PID"])
SIZE = 100 << 20
PIECE = 1 << 20
MAX_GROWTH = 40 << 20


def peak_rss() -> int:
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def piece(i: int) -> bytes:
    # distinct, reproducible pieces: a wrong offset shows
    return hashlib.sha256(i.to_bytes(8, "big")).digest() * (PIECE // 32)


def content(first: int, last: int) -> bytes:
    out = bytearray()
    for i in range(first // PIECE, last // PIECE + 1):
        out += piece(i)
    base = (first // PIECE) * PIECE
    return bytes(out[first - base : last - base + 1])


def request(method: str, path: str, data=None, headers=None):
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    return urllib.request.urlopen(req, timeout=120)


def main() -> None:
    before = peak_rss()
    whole = hashlib.sha256()
    for i in range(SIZE // PIECE):
        whole.update(piece(i))

    def body():
        for i in range(SIZE // PIECE):
            yield piece(i)

    with request("POST", "/api/v1/blobs", body(),
                 {"Content-Type": "application/octet-stream", "Content-Length": str(SIZE)}) as r:
        assert r.status == 201, r.status
        import json
        info = json.loads(r.read())
    assert info["size"] == SIZE and info["sha256"] == whole.hexdigest(), info
    path = "/api/v1/blobs/" + info["hash"]

    got = hashlib.sha256()
    n = 0
    with request("GET", path) as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == SIZE
        while chunk := r.read(PIECE):
            got.update(chunk)
            n += len(chunk)
    assert n == SIZE and got.hexdigest() == whole.hexdigest()

    for first, last in [(0, 99), (PIECE - 10, PIECE + 10), (SIZE // 2, SIZE // 2 + 3 * PIECE), (SIZE - 5, SIZE - 1)]:
        with request("GET", path, headers={"Range": f"bytes={first}-{last}"}) as r:
            assert r.status == 206, r.status
            assert r.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
            assert r.read() == content(first, last), (first, last)
    # a range to the end, streamed
    first = 37 * PIECE + 123
    tail = hashlib.sha256()
    with request("GET", path, headers={"Range": f"bytes={first}-"}) as r:
        assert r.status == 206
        while chunk := r.read(PIECE):
            tail.update(chunk)
    want = hashlib.sha256()
    want.update(content(first, 38 * PIECE - 1))
    for i in range(38, SIZE // PIECE):
        want.update(piece(i))
    assert tail.hexdigest() == want.hexdigest()

    after = peak_rss()
    growth = after - before
    print(f"blobs: 100 MiB up and down (whole, 5 ranges); node peak RSS {before >> 20} -> {after >> 20} MiB")
    assert growth <= MAX_GROWTH, f"the node's peak RSS grew by {growth >> 20} MiB"


if __name__ == "__main__":
    sys.exit(main())

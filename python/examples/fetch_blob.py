"""Two nodes on loopback: A adds a file as a blob, B fetches it with a
progress bar, then exports it and checks the SHA-256.

    python examples/fetch_blob.py [FILE]

Without FILE, a 64 MiB file of random bytes is made in a temp dir.
"""

import asyncio
import hashlib
import os
import sys
import tempfile

import peat_mesh

# Made once per formation and shared with its nodes out of band (here: one process).
SECRET = peat_mesh.generate_formation_secret()


def bar(p: peat_mesh.Progress, width: int = 40) -> str:
    frac = p.done / p.total if p.total else 0.0
    filled = int(frac * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {frac:6.1%} {p.rate / 1e6:7.1f} MB/s"


async def main(path: str, work: str) -> None:
    a = await peat_mesh.Node.open(os.path.join(work, "a"), "demo", SECRET, listen="127.0.0.1:0")
    b = await peat_mesh.Node.open(os.path.join(work, "b"), "demo", SECRET, listen="127.0.0.1:0")
    async with a, b:
        await b.connect(a.addrs()[0])
        info = await a.add_blob_file(path)
        print(f"A added {info.size} bytes as {info.hash[:16]}… (sha256 {info.sha256[:16]}…)")
        with b.fetch_blob(info.hash, profile="datacenter") as transfer:
            async for p in transfer.updates(0.1):
                print("\r" + bar(p), end="", flush=True)
            got = await transfer
        print()
        out = os.path.join(work, "fetched.bin")
        await b.export_blob(got.hash, out)
        with open(out, "rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") else hashlib.sha256(f.read()).hexdigest()
        assert sha == info.sha256, "SHA-256 mismatch"
        print(f"B exported {got.size} bytes to {out}; SHA-256 matches")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as work:
        if len(sys.argv) > 1:
            src = sys.argv[1]
        else:
            src = os.path.join(work, "random.bin")
            with open(src, "wb") as f:
                for _ in range(64):
                    f.write(os.urandom(1 << 20))
        asyncio.run(main(src, work))

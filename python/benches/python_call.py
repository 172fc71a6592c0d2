"""python-call: per-call overhead of a small-document get from Python, and
put/get throughput (blocking API). Run after `pip install ./python`:
    python benches/python_call.py [--small]"""

import sys
import tempfile
import threading
import time

import peat_mesh

small = "--small" in sys.argv
gets = 2_000 if small else 200_000
puts = 200 if small else 5_000

with tempfile.TemporaryDirectory() as tmp:
    with peat_mesh.SyncNode.open(tmp, "bench", peat_mesh.generate_formation_secret(), listen="127.0.0.1:0") as n:
        n.put("b", "small", {"callsign": "A-1", "lat": 59.3, "lon": 18.1})
        for _ in range(1000):
            n.get("b", "small")
        t = time.perf_counter()
        for _ in range(gets):
            n.get("b", "small")
        per_get = (time.perf_counter() - t) / gets * 1e6
        print(f"python-call        small-document get (per call)                  {per_get:14.3f} us")

        # durable puts from 16 threads (group commit), each followed by a get
        def worker(k: int) -> None:
            for i in range(puts // 16):
                n.put("t", f"{k}-{i}", {"i": i})
                n.get("t", f"{k}-{i}")

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        rate = (puts // 16 * 16) / (time.perf_counter() - t)
        print(f"python-call        durable put+get pairs/s (16 threads)           {rate:14.1f} pairs/s")

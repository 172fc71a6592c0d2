"""Two nodes of one formation on loopback: a document written on one appears on
the other. Run after `pip install ./python`:  python examples/two_nodes.py"""

import asyncio
import tempfile

import peat_mesh

# Made once per formation and shared with its nodes out of band (here: one process).
SECRET = peat_mesh.generate_formation_secret()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with await peat_mesh.Node.open(f"{tmp}/a", "example", SECRET, listen="127.0.0.1:0") as a, \
                await peat_mesh.Node.open(f"{tmp}/b", "example", SECRET, listen="127.0.0.1:0") as b:
            with b.subscribe("tracks") as events:
                await b.connect(a.addrs()[0])
                await a.put("tracks", "alpha-1", {"callsign": "ALPHA-1", "lat": 59.33, "lon": 18.06})
                async for ev in events:
                    if isinstance(ev, peat_mesh.DocEvent):
                        print(f"B received {ev.collection}/{ev.id} from {(ev.peer or str(ev.origin))[:10]}: {ev.value}")
                        break


if __name__ == "__main__":
    asyncio.run(main())

"""Conformance scenario 27 in Python: bandwidth budgets at open and at
runtime, ephemeral messages past a budget dropped and counted, bad budgets
refused with the old ones kept; with the blocking and the asyncio API."""

import asyncio

import pytest

import peat_mesh
from peat_mesh import Bandwidth

from conftest import SECRET


def test_bandwidth_budgets(tmp_path):
    with peat_mesh.SyncNode.open(str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0") as a, peat_mesh.SyncNode.open(
        str(tmp_path / "b"), "py", SECRET, listen="127.0.0.1:0", bandwidth=Bandwidth(per_peer=1024)
    ) as b:
        assert b.bandwidth() == Bandwidth(per_peer=1024)
        assert a.bandwidth() == Bandwidth()
        b.connect(a.addrs()[0])
        payload = bytes([7]) * 900
        sent = sum(b.publish("pos/b", payload, hop_limit=0, multicast=False) for _ in range(100))
        assert 1 <= sent <= 20
        st = b.bandwidth_stats()
        assert st.dropped_datagrams == 100 - sent
        assert st.bytes_limited >= 900 * sent

        socket = Bandwidth(links={"socket": 40_000})
        b.set_bandwidth(socket)
        assert b.bandwidth() == socket
        for bad in (Bandwidth(links={"radio": 5000}), Bandwidth(per_peer=10)):
            with pytest.raises(peat_mesh.InvalidArgumentError):
                b.set_bandwidth(bad)
            assert b.bandwidth() == socket
        with pytest.raises(TypeError):
            b.set_bandwidth({"per_peer": 5000})  # type: ignore[arg-type]
        b.set_bandwidth(Bandwidth())
        assert b.bandwidth() == Bandwidth()
        assert b.publish("pos/b", payload, hop_limit=0, multicast=False) == 1
        # a message's class; an unknown one is refused
        assert b.publish("pos/b", payload, hop_limit=0, multicast=False, priority=peat_mesh.Priority.LOW) == 1
        with pytest.raises(peat_mesh.InvalidArgumentError):
            b.publish("pos/b", payload, hop_limit=0, multicast=False, priority="urgent")

        # a blob fetched in the high class; an unknown class is refused
        src = tmp_path / "photo.bin"
        src.write_bytes(bytes(range(256)) * 400)
        info = a.add_blob_file(src)
        with b.fetch_blob(info.hash, providers=[a.id], priority=peat_mesh.Priority.HIGH) as t:
            assert t.wait_blocking(timeout=30).size == info.size
        with pytest.raises(peat_mesh.InvalidArgumentError):
            b.fetch_blob(info.hash, priority="urgent")

    with pytest.raises(peat_mesh.InvalidArgumentError):
        peat_mesh.SyncNode.open(
            str(tmp_path / "c"), "py", SECRET, listen="127.0.0.1:0", bandwidth=Bandwidth(links={"radio": 5000})
        )


def test_bandwidth_with_asyncio(tmp_path):
    async def main() -> None:
        async with await peat_mesh.Node.open(
            str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0", bandwidth=Bandwidth(per_peer=50_000)
        ) as a:
            assert a.bandwidth() == Bandwidth(per_peer=50_000)
            a.set_bandwidth(Bandwidth(links={"socket": 100_000}))
            assert a.bandwidth().links == {"socket": 100_000}
            assert a.bandwidth_stats().dropped_datagrams == 0

    asyncio.run(main())

"""Conformance scenario 25 in Python: ephemeral topics (JSON and bytes,
latest-only, bounds), the multicast path, beacons (events, queries, bad
coordinates, expiry), with the blocking and the asyncio API."""

import asyncio
import math
import socket

import pytest

import peat_mesh
from peat_mesh import BeaconEventKind, BeaconInfo, Ephemeral, Message, NodeState

from conftest import SECRET


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def opened(tmp_path, name, eph):
    return peat_mesh.SyncNode.open(str(tmp_path / name), "py", SECRET, listen="127.0.0.1:0", ephemeral=eph)


def next_from(sub, origin, timeout=10.0):
    for _ in range(int(timeout / 0.2)):
        m = sub.next(0.2)
        if isinstance(m, Message) and m.origin == origin:
            return m
    raise AssertionError(f"no message from {origin}")


def next_beacon_event(sub, kind, node, timeout=10.0):
    for _ in range(int(timeout / 0.2)):
        ev = sub.next(0.2)
        if ev is not None and ev.kind == kind and ev.node == node:
            return ev
    raise AssertionError(f"no {kind} for {node}")


def test_ephemeral_topics_beacons_and_multicast(tmp_path):
    eph = Ephemeral(
        beacon_preset="tactical",
        beacon_interval=0.2,
        beacon_ttl=1.0,
        multicast_group=f"239.255.77.7:{free_port()}",
        multicast_interface="127.0.0.1",
    )
    before = peat_mesh.live_handles()
    a, b, c = (opened(tmp_path, n, eph) for n in "abc")
    with a.subscribe_topic("pos/*") as every, a.subscribe_topic("pos/*", latest_only=True) as newest:
        beacons = a.subscribe_beacons()
        b.connect(a.addrs()[0])
        assert b.publish("pos/b", {"lat": 59.3}, ttl=10.0, hop_limit=0, multicast=False) == 1
        m = next_from(every, b.id)
        assert (m.topic, m.json, m.hops, m.via_peer) == ("pos/b", True, 0, b.id)
        assert m.value() == {"lat": 59.3}
        assert 0 < m.ttl_left <= 10.0
        for p in (b"1", b"2", b"3"):
            b.publish("pos/b", p, hop_limit=0, multicast=False)
            next_from(every, b.id)
        kept = a.latest("pos/*")
        assert [k.payload for k in kept] == [b"3"]
        only = newest.next(1.0)
        assert only.payload == b"3", "latest-only keeps the newest"
        assert newest.next(0.05) is None
        # bounds
        for topic, payload, hops in [("", b"x", 0), ("pos/x", bytes(961), 0), ("_peat/x", b"x", 0), ("pos/x", b"x", 9)]:
            with pytest.raises(peat_mesh.InvalidArgumentError):
                b.publish(topic, payload, hop_limit=hops)
        with pytest.raises(peat_mesh.InvalidArgumentError):
            a.subscribe_topic("")
        # the multicast path: c has no connection to a
        assert c.publish("pos/c", b"over the group", hop_limit=0) == 0
        m = next_from(every, c.id)
        assert (m.payload, m.via_peer) == (b"over the group", None)

        b.set_beacon(
            BeaconInfo(59.3293, 18.0686, role="sensor", capabilities=("camera",), state=NodeState.READY, battery_pct=80)
        )
        seen = next_beacon_event(beacons, BeaconEventKind.APPEARED, b.id).beacon
        assert (seen.info.role, seen.info.state, seen.info.battery_pct, seen.info.capabilities) == (
            "sensor",
            NodeState.READY,
            80,
            ("camera",),
        )
        assert len(seen.geohash) == 8 and seen.info.alt_m is None
        near = a.beacons_near(59.33, 18.07, 1000)
        assert [n.node for n in near] == [b.id] and near[0].distance_m < 1000
        assert a.beacons_near(0, 0, 1000) == []
        assert len(a.beacons_in_cell(seen.geohash[:5], neighbours=True)) == 1
        assert len(a.beacons_since(0)) == 1
        for bad in (BeaconInfo(math.nan, 0), BeaconInfo(91, 0), BeaconInfo(0, 181), BeaconInfo(0, 0, battery_pct=101)):
            with pytest.raises(peat_mesh.InvalidArgumentError):
                b.set_beacon(bad)
        with pytest.raises(peat_mesh.InvalidArgumentError):
            a.beacons_near(0, 0, -1)
        b.clear_beacon()
        next_beacon_event(beacons, BeaconEventKind.EXPIRED, b.id)
        beacons.close()
        st = a.ephemeral_stats()
        assert st.delivered >= 5 and st.malformed == 0
    for bad in (
        Ephemeral(beacon_preset="nope"),
        Ephemeral(multicast_group="239.255.77.7:7000"),
        Ephemeral(beacon_interval=5.0, beacon_ttl=1.0),
    ):
        with pytest.raises(peat_mesh.InvalidArgumentError):
            opened(tmp_path, "bad", bad)
    for n in (a, b, c):
        n.close()
    assert peat_mesh.live_handles() == before


def test_async_topics(tmp_path):
    async def main():
        a = await peat_mesh.Node.open(str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0")
        b = await peat_mesh.Node.open(str(tmp_path / "b"), "py", SECRET, listen="127.0.0.1:0")
        async with a, b:
            sub = a.subscribe_topic("tele*")
            await b.connect(a.addrs()[0])
            b.publish("telemetry", {"cpu": 12}, hop_limit=0)
            async for m in sub:
                assert (m.topic, m.value()) == ("telemetry", {"cpu": 12})
                break
            sub.close()

    asyncio.run(asyncio.wait_for(main(), 30))

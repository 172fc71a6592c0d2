"""Conformance scenario 26 in Python: collection policies at open and at
runtime, retention by garbage collection, storage counters, bad policies
refused; with the blocking and the asyncio API."""

import asyncio

import pytest

import peat_mesh
from peat_mesh import CollectionPolicy, DeleteRule, Priority, SyncMode

from conftest import SECRET


def test_policies_retention_and_storage_counters(tmp_path):
    with peat_mesh.SyncNode.open(
        str(tmp_path / "a"),
        "py",
        SECRET,
        listen="127.0.0.1:0",
        policies={"log": CollectionPolicy(priority=Priority.BULK, max_documents=3)},
    ) as a:
        log = a.policy("log")
        assert log.priority is Priority.BULK and log.max_documents == 3
        other = a.policy("other")
        assert other.priority is Priority.NORMAL and other.sync is SyncMode.FULL
        assert other.tombstone_ttl == 7 * 24 * 3600 and other.ttl is None

        a.set_policy("cache", CollectionPolicy(ttl=3600, delete=DeleteRule.UPDATE_WINS))
        cache = a.policy("cache")
        assert cache.ttl == 3600 and cache.delete is DeleteRule.UPDATE_WINS
        a.set_policy(None, CollectionPolicy(priority=Priority.HIGH))
        assert a.policy("other").priority is Priority.HIGH
        default, own = a.policies()
        assert default.priority is Priority.HIGH and set(own) == {"cache", "log"}
        assert a.remove_policy("cache") is True
        assert a.remove_policy("cache") is False

        for i in range(5):
            a.put("log", f"e{i}", {"i": i})
        report = a.collect_garbage()
        assert (report.evicted_documents, report.expired_documents, report.purged_tombstones) == (2, 0, 0)
        assert a.list("log")[0] == ["e2", "e3", "e4"]
        a.delete("log", "e4")
        st = a.storage_stats()
        assert (st.documents, st.tombstones, st.evicted_total) == (2, 1, 2)
        assert st.gc_runs >= 1 and st.document_bytes > 0 and st.refused_expired_total == 0

        with pytest.raises(ValueError):
            CollectionPolicy.from_json('{"priority": "urgent"}')
        with pytest.raises(ValueError):
            a.set_policy("log", CollectionPolicy(ttl=0))
        with pytest.raises(peat_mesh.InvalidArgumentError):
            a.set_policy("log", CollectionPolicy(max_documents=-1))
        with pytest.raises(peat_mesh.InvalidArgumentError):
            a.policy("")
        assert a.policy("log").priority is Priority.BULK


def test_a_storage_budget_evicts(tmp_path):
    with peat_mesh.SyncNode.open(str(tmp_path / "b"), "py", SECRET, listen="127.0.0.1:0", storage_budget=1) as b:
        b.put("tiles", "t0", {"x": 1})
        b.put("tiles", "t1", {"x": 1})
        # a collection kept until delivered: no peer holds its document, so it stays
        b.set_policy("orders", CollectionPolicy(keep_until_delivered=True))
        assert b.policy("orders").keep_until_delivered is True
        b.put("orders", "o1", {"x": 1})
        with b.subscribe_peers() as events:
            assert b.collect_garbage().budget_evicted == 2
            ev = events.next(timeout=5.0)
            assert ev.kind is peat_mesh.PeerEventKind.STORAGE_EVICTED and ev.peer is None
            assert ev.evicted == 2 and ev.stored_bytes > 0
        st = b.storage_stats()
        assert st.budget_evicted_total == 2 and st.documents == 1
        assert b.get("orders", "o1") is not None
    with pytest.raises(peat_mesh.InvalidArgumentError):
        peat_mesh.SyncNode.open(str(tmp_path / "c"), "py", SECRET, listen="127.0.0.1:0", storage_budget=0)


def test_a_bad_policy_at_open_is_refused(tmp_path):
    with pytest.raises(peat_mesh.InvalidArgumentError):
        peat_mesh.SyncNode.open(
            str(tmp_path / "bad"),
            "py",
            SECRET,
            listen="127.0.0.1:0",
            policies={"": CollectionPolicy()},
        )


def test_async_policies_and_garbage_collection(tmp_path):
    async def main():
        async with await peat_mesh.Node.open(
            str(tmp_path / "b"), "py", SECRET, listen="127.0.0.1:0", default_policy=CollectionPolicy(max_documents=1)
        ) as b:
            await b.put("t", "x", {"n": 1})
            await b.put("t", "y", {"n": 2})
            report = await b.collect_garbage()
            assert report.evicted_documents == 1
            st = await b.storage_stats()
            assert st.documents == 1 and st.evicted_total == 1
            assert b.policy("t").max_documents == 1

    asyncio.run(main())

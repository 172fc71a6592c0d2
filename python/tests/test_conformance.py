"""The conformance scenarios (docs/conformance.md) and Python specifics."""

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import peat_mesh
from peat_mesh import DocEvent, Lagged

from conftest import SECRET


def wait_doc(sub, doc_id, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ev = sub.next(0.2)
        if isinstance(ev, DocEvent) and ev.id == doc_id:
            return ev
    raise AssertionError(f"no event for {doc_id}")


def test_open_close_frees_handles(open_node):
    before = peat_mesh.live_handles()
    n = open_node("a")
    assert len(n.id) == 64
    assert peat_mesh.live_handles() == before + 1
    n.close()
    n.close()  # idempotent
    assert peat_mesh.live_handles() == before
    with pytest.raises(peat_mesh.ClosedError):
        n.put("c", "d", {})


def test_two_nodes_sync(open_node):
    a, b = open_node("a"), open_node("b")
    with b.subscribe("tracks") as sub:
        b.connect(a.addrs()[0])
        a.put("tracks", "t1", {"lat": 1.5})
        ev = wait_doc(sub, "t1")
        assert ev.value == {"lat": 1.5} and ev.origin == peat_mesh.Origin.PEER and ev.peer == a.id
    assert b.get("tracks", "t1") == {"lat": 1.5}
    peers = b.peers()
    assert len(peers) == 1 and peers[0].connected and peers[0].id == a.id
    st = b.stats()
    assert isinstance(st, peat_mesh.NodeStats)
    assert st.connected_peers == 1 and st.subscriptions == 0  # the subscription was closed
    assert st.frames_received > 0 and st.bytes_received > 0 and st.frames_sent > 0
    # a normal sync refuses nothing (the Rust hostile-peer suite covers the other case)
    assert st.refused_documents == 0


def _until(pred, timeout=10.0):
    """Polls ``pred`` (a node's counters) until it holds or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    return pred()


def test_peer_traffic_queues_and_latency(open_node):
    """Scenario 33: per-peer sync traffic and queues, unread events, update latency."""
    a, b = open_node("a"), open_node("b")
    # `sub` is left unread; `seen` (subscribed after it, so served after it)
    # tells when the three changes have arrived.
    with b.subscribe("q") as sub:
        with b.subscribe("q") as seen:
            b.connect(a.addrs()[0])
            for i in range(3):
                a.put("q", f"d{i}", {"n": 1})
            wait_doc(seen, "d2")
        st = b.stats()
        assert st.queued_events == 3 and st.update_latency_count >= 3
        assert st.update_latency_sum_ms < st.update_latency_count * 60_000
        (at_b,) = b.peers()
        assert at_b.sync_bytes_sent > 0 and at_b.sync_bytes_received > 0
        at_a = _until(lambda: (p := a.peers()[0]).sync_queued_updates == 0 and p.sync_queued_reply_bytes == 0 and p)
        assert at_a and at_a.sync_bytes_sent > 0
        for _ in range(3):
            assert isinstance(sub.next(5), DocEvent)
        assert b.stats().queued_events == 0


def test_get_list_delete_export_import(open_node):
    n = open_node()
    for i in "abc":
        n.put("u", i, {"id": i})
    ids, nxt = n.list("u", limit=2)
    assert ids == ["a", "b"] and nxt
    ids, nxt = n.list("u", after=nxt)
    assert ids == ["c"] and nxt is None
    assert n.delete("u", "a") is True
    assert n.get("u", "a") is None
    assert n.delete("u", "a") is False
    data = n.export("u", "b")
    n.import_bytes("copy", "b", data)
    assert n.get("copy", "b") == {"id": "b"}
    n.merge_patch("u", "b", {"x": 1})
    assert n.get("u", "b") == {"id": "b", "x": 1}


def test_subscribe_with_snapshot(open_node):
    n = open_node()
    n.put("s", "x", {"v": 1})
    with n.subscribe("s", snapshot=True) as sub:
        ev = sub.next(2)
        assert ev.origin == "snapshot" and ev.id == "x"
        n.put("s", "y", {"v": 2})
        assert wait_doc(sub, "y").origin == "local"
        assert sub.next(0.01) is None


def test_unsubscribe_during_burst(open_node):
    n = open_node()
    sub = n.subscribe("b")
    for i in range(50):
        n.put("b", str(i), {})
        if i == 25:
            sub.close()
    with pytest.raises(peat_mesh.InvalidHandleError):
        peat_mesh._native.next_doc_event(sub._handle, 10)


def test_subscription_cycles_and_gc_free_everything(open_node):
    n = open_node()
    base = peat_mesh.live_handles()
    for _ in range(2000):
        n.subscribe("c").close()
    for _ in range(200):
        n.subscribe("c")  # dropped without close: the finaliser frees it
    gc.collect()
    assert peat_mesh.live_handles() == base


def test_lag_is_reported(open_node, tmp_path):
    n = open_node()
    with n.subscribe("lag") as sub:
        # the SDK queue holds 1024 events; write more without reading
        for i in range(1100):
            n.merge_patch("lag", "d", {"i": i})
        events = []
        while True:
            ev = sub.next(0.2)
            if ev is None:
                break
            events.append(ev)
        assert any(isinstance(e, Lagged) and e.dropped > 0 for e in events)


def test_error_kinds(open_node):
    n = open_node("a")
    with pytest.raises(peat_mesh.InvalidArgumentError):
        n.put("", "d", {})
    with pytest.raises(peat_mesh.InvalidArgumentError):
        peat_mesh._native.put(n.handle, "c", "d", "{bad")
    with pytest.raises(peat_mesh.InvalidArgumentError):
        n.import_bytes("c", "d", b"not automerge")
    with pytest.raises(peat_mesh.InvalidHandleError):
        peat_mesh._native.get(0, "c", "d")
    other = open_node("b", secret=bytes([1]) * 32)
    with pytest.raises(peat_mesh.AdmissionRefusedError):
        other.connect(n.addrs()[0])
    with pytest.raises(peat_mesh.PeatTimeoutError):
        n.connect("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29@127.0.0.1:9", timeout=0.3)
    assert issubclass(peat_mesh.NotFoundError, peat_mesh.PeatError)


def test_nul_in_names_is_refused(open_node):
    # NUL in a collection or id: a C string would end there, so C and Go
    # would see another id. Every call that takes one refuses it.
    n = open_node()
    for c, i in [("c", "a\0b"), ("c\0d", "a")]:
        for call in (
            lambda: n.put(c, i, {"x": 1}),
            lambda: n.merge_patch(c, i, {"x": 1}),
            lambda: n.get(c, i),
            lambda: n.delete(c, i),
            lambda: n.export(c, i),
            lambda: n.import_bytes(c, i, b"\0"),
            lambda: n.subscribe(c, i),
            lambda: n.on_change(c, lambda ev: None, id=i),
        ):
            with pytest.raises(peat_mesh.InvalidArgumentError, match="NUL"):
                call()
    with pytest.raises(peat_mesh.InvalidArgumentError):
        n.list("c", prefix="a\0")
    with pytest.raises(peat_mesh.InvalidArgumentError):
        n.subscribe("c\0")
    assert n.list("c")[0] == []


def test_document_limits(open_node):
    # JSON nested deeper than 100 levels or with an integer outside 64 bits is
    # refused and stores nothing; the largest u64 round-trips exactly; a garbage
    # or cut Automerge import is refused and leaves the document byte-identical.
    n = open_node()
    deep = json.loads('{"a":' * 150 + "1" + "}" * 150)
    for doc in ({"n": 2**64 + 1}, deep):
        with pytest.raises(peat_mesh.InvalidArgumentError):
            n.put("lim", "x", doc)
        with pytest.raises(peat_mesh.InvalidArgumentError):
            n.merge_patch("lim", "x", doc)
    assert json.dumps({"n": 2**64 + 1}) == '{"n": 18446744073709551617}'
    assert n.get("lim", "x") is None
    n.put("lim", "max", {"n": 2**64 - 1})
    assert n.get("lim", "max") == {"n": 18446744073709551615}
    assert peat_mesh._native.get(n.handle, "lim", "max") == '{"n":18446744073709551615}'
    n.put("lim", "src", {"y": "a longer value so the save has some body to cut"})
    save = n.export("lim", "src")
    before = n.export("lim", "max")
    for data in (b"\x85\x6f\x4a\x83 definitely not automerge", save[: len(save) // 2]):
        with pytest.raises(peat_mesh.InvalidArgumentError):
            n.import_bytes("lim", "max", data)
        assert n.export("lim", "max") == before


def test_generate_formation_secret(tmp_path):
    a, b = peat_mesh.generate_formation_secret(), peat_mesh.generate_formation_secret()
    assert isinstance(a, bytes) and len(a) == 32 and a != bytes(32) and a != b
    # an all-zero secret (one never set) is refused; a generated one opens
    with pytest.raises(peat_mesh.InvalidArgumentError, match="zero"):
        peat_mesh.SyncNode.open(str(tmp_path / "z"), "py", bytes(32), listen="127.0.0.1:0")
    with peat_mesh.SyncNode.open(str(tmp_path / "g"), "py", a, listen="127.0.0.1:0") as n:
        assert len(n.id) == 64


def test_close_with_subscriptions_in_flight(open_node):
    a, b = open_node("a"), open_node("b")
    sub = a.subscribe("x")
    peers = a.subscribe_peers()
    b.connect(a.addrs()[0])
    for i in range(20):
        b.put("x", "k", {"i": i})
    start = time.time()
    a.close(timeout=2)
    assert time.time() - start < 3
    assert list(sub) is not None  # iteration ends once the node closed
    sub.close()
    peers.close()


def test_gil_released_during_native_wait(open_node):
    n = open_node()
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    with n.subscribe("quiet") as sub:
        assert sub.next(0.5) is None  # a 0.5 s native wait
    stop.set()
    t.join()
    assert len(ticks) >= 20


def test_threads_share_one_node(open_node):
    n = open_node()
    errors = []

    def worker(k):
        try:
            for i in range(25):
                n.put("m", f"{k}-{i}", {"k": k})
                assert n.get("m", f"{k}-{i}") == {"k": k}
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(n.list("m", limit=1000)[0]) == 200


def test_asyncio_api_and_cancellation(tmp_path):
    async def main():
        async with await peat_mesh.Node.open(str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0") as a:
            async with await peat_mesh.Node.open(str(tmp_path / "b"), "py", SECRET, listen="127.0.0.1:0") as b:
                sub = b.subscribe("t")
                await b.connect(a.addrs()[0])
                await a.put("t", "1", {"v": 1})
                async for ev in sub:
                    if isinstance(ev, DocEvent) and ev.id == "1":
                        assert ev.value == {"v": 1}
                        break
                sub.close()
                # cancelling the task cancels the native dial
                task = asyncio.ensure_future(
                    a.connect("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29@127.0.0.1:9", timeout=30)
                )
                await asyncio.sleep(0.2)
                start = time.time()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert time.time() - start < 5

    asyncio.run(main())


def run_child(code, *args, timeout=30):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout
    )


def test_exit_with_open_node(tmp_path):
    r = run_child(
        """
        import sys, peat_mesh
        n = peat_mesh.SyncNode.open(sys.argv[1], "py", bytes([7]) * 32, listen="127.0.0.1:0")
        n.put("x", "y", {"a": 1})
        """,
        str(tmp_path / "c"),
    )
    assert r.returncode == 0, r.stderr


def test_two_python_processes_sync(open_node, tmp_path):
    n = open_node("parent")
    with n.subscribe("procs", "from-child") as sub:
        r = run_child(
            """
            import sys, peat_mesh
            with peat_mesh.SyncNode.open(sys.argv[1], "py", bytes([7]) * 32, listen="127.0.0.1:0") as c:
                c.connect(sys.argv[2])
                c.put("procs", "from-child", {"hello": "parent"})
                c.close()
            """,
            str(tmp_path / "child"),
            n.addrs()[0],
        )
        assert r.returncode == 0, r.stderr
        assert wait_doc(sub, "from-child").value == {"hello": "parent"}


# Skipped only where os.fork does not exist (Windows); it runs on Linux and in CI.
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_child_gets_a_clear_error(open_node):
    n = open_node()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            n.put("c", "d", {})
            os.write(w, b"no error")
        except peat_mesh.PeatError as e:
            os.write(w, b"ok " + str(e).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    msg = os.read(r, 200).decode()
    assert msg.startswith("ok") and "fork" in msg, msg


def test_blob_fetch_progress_cancel_resume(tmp_path):
    """Scenario 11, async: monotonic progress, task cancellation stops the
    transfer, a later fetch resumes, the export matches."""
    data = os.urandom(2 << 20)
    src = tmp_path / "src.bin"
    src.write_bytes(data)

    async def main():
        a = await peat_mesh.Node.open(str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0")
        b = await peat_mesh.Node.open(str(tmp_path / "b"), "py", SECRET, listen="127.0.0.1:0")
        async with a, b:
            await b.connect(a.addrs()[0])
            info = await a.add_blob_file(src)
            assert info.size == len(data) and len(info.hash) == 64 and len(info.sha256) == 64
            with pytest.raises(peat_mesh.InvalidArgumentError):
                b.fetch_blob(info.hash, profile="warp")
            with b.fetch_blob(info.hash, providers=[a.id], profile=peat_mesh.TransferProfile.EDGE, rate_limit=256 << 10) as t:
                waiter = asyncio.ensure_future(t.wait())
                seen = []
                async for p in t.updates(0.02):
                    seen.append(p.done)
                    if p.done >= 256 << 10:
                        break
                waiter.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiter
                assert seen == sorted(seen)
                await asyncio.sleep(0.3)
                stopped = t.progress()
                await asyncio.sleep(0.3)
                assert t.progress().done == stopped.done and stopped.finished
            st = b.blob_status(info.hash)
            assert st.state == "partial" and 256 << 10 <= st.present < st.size
            with b.fetch_blob(info.hash) as t:
                got = await t
                p = t.progress()
            assert got == info
            assert p.resumed >= st.present and p.received == p.total - p.resumed
            out = tmp_path / "out.bin"
            assert await b.export_blob(info.hash, out) == len(data)
            assert out.read_bytes() == data
            with pytest.raises(peat_mesh.InvalidArgumentError):
                b.fetch_blob("nothex")

    before = peat_mesh.live_handles()
    asyncio.run(main())
    assert peat_mesh.live_handles() == before


def test_blob_blocking_api(open_node, tmp_path):
    a, b = open_node("a"), open_node("b")
    b.connect(a.addrs()[0])
    src = tmp_path / "s.bin"
    src.write_bytes(os.urandom(300_000))
    info = a.add_blob_file(src)
    with b.fetch_blob(info.hash) as t:
        assert t.wait_blocking(20.0) == info
    assert b.blob_status(info.hash).state == "complete"
    assert b.blob_status("0" * 64).state == "missing"


def test_blob_expected_size_and_discard_partial(tmp_path):
    """Scenario 22: a fetch expecting another size than the only provider's fails
    with CorruptError and keeps nothing; discarding a partial is refused while its
    fetch runs, then returns True once and False after; the next fetch (with the
    right expected size) starts from nothing; a complete blob is never discarded."""
    data = os.urandom(2 << 20)
    src = tmp_path / "src.bin"
    src.write_bytes(data)

    async def main():
        a = await peat_mesh.Node.open(str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0")
        b = await peat_mesh.Node.open(str(tmp_path / "b"), "py", SECRET, listen="127.0.0.1:0")
        async with a, b:
            await b.connect(a.addrs()[0])
            info = await a.add_blob_file(src)
            with b.fetch_blob(info.hash, providers=[a.id], expected_size=info.size + 1) as t:
                with pytest.raises(peat_mesh.CorruptError):
                    await t
            assert b.blob_status(info.hash).state == "missing"

            started = asyncio.Event()

            def on_progress(p):
                if p.done >= 64 << 10:
                    started.set()

            with b.fetch_blob(
                info.hash, providers=[a.id], profile="edge", rate_limit=256 << 10, expected_size=info.size
            ) as t:
                with t.on_progress(on_progress):
                    await asyncio.wait_for(started.wait(), 20)
                    with pytest.raises(peat_mesh.InvalidArgumentError):
                        await b.discard_partial(info.hash)
                    t.cancel()
                    with pytest.raises(peat_mesh.OperationCancelledError):
                        await t
            assert b.blob_status(info.hash).state == "partial"
            assert await b.discard_partial(info.hash) is True
            st = b.blob_status(info.hash)
            assert st.state == "missing" and st.present == 0
            assert await b.discard_partial(info.hash) is False

            with b.fetch_blob(info.hash, providers=[a.id], expected_size=info.size) as t:
                assert await t == info
                p = t.progress()
            assert p.resumed == 0 and p.done == len(data)
            assert await b.discard_partial(info.hash) is False
            assert b.blob_status(info.hash).state == "complete"
            with pytest.raises(peat_mesh.InvalidArgumentError):
                await b.discard_partial("nothex")
            with pytest.raises(peat_mesh.InvalidArgumentError):
                b.fetch_blob(info.hash, expected_size=-1)

    before = peat_mesh.live_handles()
    asyncio.run(main())
    assert peat_mesh.live_handles() == before


def test_storage_failed(tmp_path):
    """Scenario 23: a node whose data dir (a 3 MiB tmpfs) fills up raises
    StorageError (the Io kind) for the failing put and every later one, and its
    peer-event subscription reports "storage_failed" once, with a reason and no
    peer. Mounting needs root (CI runs as root): without it this fails."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    assert r.returncode == 0, f"mounting a tmpfs failed: this test needs root (run it as root, as CI does): {r.stderr!r}"
    try:
        (mnt / "filler").write_bytes(bytes(256 * 1024))
        with peat_mesh.SyncNode.open(str(mnt / "node"), "py", SECRET, listen="127.0.0.1:0") as n:
            with n.subscribe_peers() as sub:
                pad = "x" * 2000
                acknowledged = 0
                with pytest.raises(peat_mesh.StorageError):
                    for i in range(100_000):
                        # varied content so nothing compresses away
                        n.put("fill", f"d{i}", {"i": i, "pad": f"{pad}{i}", "k": i * 7919})
                        acknowledged += 1
                assert acknowledged > 0
                with pytest.raises(peat_mesh.StorageError):
                    n.put("small", "s", {"a": 1})
                ev = sub.next(10.0)
                assert isinstance(ev, peat_mesh.PeerEvent), ev
                assert ev.kind == "storage_failed" and ev.peer is None and ev.reason, ev
                assert sub.next(0.3) is None  # once (the node has no peers)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_static_peer_added_and_removed(open_node):
    a, b = open_node("a"), open_node("b")
    sub = a.subscribe_peers()
    a.add_peer(b.addrs()[0])
    kinds = set()
    deadline = time.time() + 10
    while time.time() < deadline and not {"discovered", "connected"} <= kinds:
        ev = sub.next(0.2)
        if ev is not None and not isinstance(ev, Lagged):
            kinds.add(ev.kind)
    assert {"discovered", "connected"} <= kinds, kinds
    (p,) = a.peers()
    assert p.state == "connected" and p.sources == {peat_mesh.PeerSource.STATIC}
    assert a.remove_peer(b.id) is True
    assert a.remove_peer(b.id) is False
    with pytest.raises(peat_mesh.InvalidArgumentError):
        a.add_peer("nonsense")
    sub.close()


def test_mdns_switch_opens_a_node(tmp_path):
    with peat_mesh.SyncNode.open(str(tmp_path / "m"), "py", SECRET, listen="127.0.0.1:0", mdns=True) as n:
        assert len(n.id) == 64


def test_log_handler_receives_records(tmp_path):
    got = []
    peat_mesh.set_log_handler(lambda lvl, tgt, msg: got.append((lvl, tgt, msg)), max_level=3)
    try:
        with peat_mesh.SyncNode.open(str(tmp_path / "l"), "py", SECRET, listen="127.0.0.1:0"):
            pass
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            time.sleep(0.05)
        assert got and all(1 <= lvl <= 3 for lvl, _, _ in got)
    finally:
        peat_mesh.clear_log_handler()


def test_shutdown_in_a_child_process(tmp_path):
    r = run_child(
        """
        import subprocess, sys, peat_mesh
        n = peat_mesh.SyncNode.open(sys.argv[1], "py", bytes([7]) * 32, listen="127.0.0.1:0")
        sub = n.subscribe("s", snapshot=True)
        for i in range(100):
            n.put("s", "last", {"n": i})
        peat_mesh.shutdown(5)  # closes the node left open
        assert peat_mesh.live_handles() == 0
        # another process reopens the data dir while this one runs: the database
        # was released and the last acknowledged write is there
        reopen = subprocess.run([sys.executable, "-c", sys.argv[2], sys.argv[1]], capture_output=True, text=True, timeout=30)
        assert reopen.returncode == 0 and "REOPENED" in reopen.stdout, reopen.stderr
        try:
            peat_mesh.SyncNode.open(sys.argv[1] + "x", "py", bytes([7]) * 32)
        except peat_mesh.ShutDownError:
            pass
        else:
            raise SystemExit("open worked after shutdown")
        try:
            peat_mesh.set_log_handler(lambda *a: None)
        except peat_mesh.ShutDownError:
            pass
        else:
            raise SystemExit("log handler installed after shutdown")
        peat_mesh.clear_log_handler()
        peat_mesh.shutdown(1)
        print("OK")
        """,
        str(tmp_path / "s"),
        textwrap.dedent(
            """
            import sys, peat_mesh
            with peat_mesh.SyncNode.open(sys.argv[1], "py", bytes([7]) * 32, listen="127.0.0.1:0") as n:
                assert n.get("s", "last") == {"n": 99}, n.get("s", "last")
            print("REOPENED")
            """
        ),
    )
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr


def next_link_change(sub, timeout=10.0):
    """The next "link_changed" event among ``sub``'s peer events that moves
    from a link (first uses, from None, and other events are skipped), as
    (link_from, link_to, level)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ev = sub.next(0.2)
        if isinstance(ev, peat_mesh.PeerEvent) and ev.kind == peat_mesh.PeerEventKind.LINK_CHANGED:
            if ev.link_from is not None:
                return (ev.link_from, ev.link_to, ev.level)
    raise AssertionError(f"no link change within {timeout} s")


def test_links_pace_and_silencing(tmp_path):
    """Two nodes on two UDP links each ("primary" at PACE level 0, "alternate"
    at level 1) and no UDP socket besides: documents sync over the primary,
    whose health is measured; silencing it moves both sides to the alternate
    and un-silencing brings them back (as the SDK's Rust test)."""
    links = [peat_mesh.Link("primary", "127.0.0.1:0", level=0), peat_mesh.Link("alternate", "127.0.0.1:0", level=1)]
    pace = peat_mesh.Pace(
        probe_interval=0.1, dead_after=0.6, hold_down=1.0, blobs_below_level=1, collections_below_level={"imagery": 1}
    )

    def open_linked(name):
        return peat_mesh.SyncNode.open(
            str(tmp_path / name), "py", SECRET, links=links, links_only=True, pace=pace, timeout=5.0
        )

    with open_linked("a") as a, open_linked("b") as b:
        addrs = a.addrs()
        assert len(addrs) == 1, f"links only: one link address {addrs}"
        with a.subscribe_peers() as ea, b.subscribe_peers() as eb, b.subscribe("c") as docs:
            b.connect(addrs[0], timeout=5.0)
            a.put("c", "d", {"x": 1})
            wait_doc(docs, "d")

            def links_of_a():
                (p,) = [p for p in b.peers() if p.id == a.id]
                return p.links

            # the primary's probes are answered within a few probe intervals
            deadline = time.time() + 10
            while True:
                lk = links_of_a()
                if len(lk) == 2 and lk[0].rtt_us is not None and lk[0].last_answer_ms is not None:
                    break
                assert time.time() < deadline, f"primary never measured: {lk}"
                time.sleep(0.02)
            primary, alternate = lk
            assert isinstance(primary, peat_mesh.LinkHealth)
            assert primary.name == "primary" and primary.in_use and primary.level == 0, lk
            assert alternate.name == "alternate" and not alternate.in_use and alternate.level == 1, lk
            assert primary.state != peat_mesh.LinkState.DEAD and isinstance(primary.state, peat_mesh.LinkState), lk
            assert 0.0 <= primary.loss <= 1.0 and not primary.silent, lk

            with pytest.raises(peat_mesh.InvalidArgumentError):
                a.set_link_silent("nope", True)
            a.set_link_silent("primary", True)
            b.set_link_silent("primary", True)
            moved = ("primary", "alternate", 1)
            assert next_link_change(ea) == moved
            assert next_link_change(eb) == moved
            a.put("c", "e", {"x": 2})
            assert wait_doc(docs, "e").value == {"x": 2}
            assert links_of_a()[0].silent
            a.set_link_silent("primary", False)
            b.set_link_silent("primary", False)
            back = ("alternate", "primary", 0)
            assert next_link_change(ea) == back
            assert next_link_change(eb) == back

    for bad in [peat_mesh.Link("x", "nowhere"), peat_mesh.Link("x", "127.0.0.1:0", level=8)]:
        with pytest.raises(peat_mesh.InvalidArgumentError):
            peat_mesh.SyncNode.open(
                str(tmp_path / "bad"), "py", SECRET, listen="127.0.0.1:0", links=[bad], timeout=5.0
            )
    for bad_pace in [peat_mesh.Pace(blobs_below_level=9), peat_mesh.Pace(collections_below_level={"imagery": 0})]:
        with pytest.raises(peat_mesh.InvalidArgumentError):
            peat_mesh.SyncNode.open(
                str(tmp_path / "bad"),
                "py",
                SECRET,
                listen="127.0.0.1:0",
                links=[peat_mesh.Link("x", "127.0.0.1:0")],
                pace=bad_pace,
                timeout=5.0,
            )
    # A BLE link opens where there is Bluetooth; here (no adapter, no BlueZ)
    # the open fails with a network error naming Bluetooth.
    try:
        peat_mesh.SyncNode.open(
            str(tmp_path / "ble"), "py", SECRET, listen="127.0.0.1:0", links=[peat_mesh.Link("radio", "ble")], timeout=5.0
        ).close()
    except peat_mesh.NetworkError as e:
        assert "Bluetooth" in str(e), e


def test_collections_and_transfers(open_node, tmp_path):
    """Scenario 32: collections with their live counts, a page at a time; the
    blob fetches running, listed while they run and not once cancelled."""
    a, b = open_node("a"), open_node("b")
    a.put("alpha", "a1", {"n": 1})
    a.put("alpha", "a2", {"n": 2})
    a.put("beta", "b1", {"n": 1})
    a.put("beta", "b2", {"n": 2})
    assert a.delete("beta", "b1")
    assert a.collections() == [peat_mesh.Collection("alpha", 2), peat_mesh.Collection("beta", 1)]
    assert a.collections(limit=1) == [peat_mesh.Collection("alpha", 2)]
    assert a.collections(after="alpha", limit=1) == [peat_mesh.Collection("beta", 1)]
    assert a.collections(after="beta") == []
    with pytest.raises(peat_mesh.InvalidArgumentError):
        a.collections(limit=0)
    assert asyncio.run(_async_collections(tmp_path)) == [peat_mesh.Collection("c", 1)]

    assert b.blob_transfers() == []
    b.connect(a.addrs()[0])
    src = tmp_path / "s.bin"
    src.write_bytes(os.urandom(2 << 20))
    info = a.add_blob_file(src)
    with b.fetch_blob(info.hash, profile=peat_mesh.TransferProfile.EDGE, rate_limit=128 << 10) as t:
        running = b.blob_transfers()
        assert [r.hash for r in running] == [info.hash]
        assert running[0].progress.total in (0, 2 << 20)
        t.cancel()
        with pytest.raises(peat_mesh.OperationCancelledError):
            t.wait_blocking(10.0)
    assert b.blob_transfers() == []


async def _async_collections(tmp_path):
    n = await peat_mesh.Node.open(str(tmp_path / "c"), "py", SECRET, listen="127.0.0.1:0")
    async with n:
        await n.put("c", "x", {"k": 1})
        return await n.collections()

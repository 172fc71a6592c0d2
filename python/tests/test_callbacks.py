"""Scenario 12 (push delivery) in Python: callback subscriptions on the SDK
dispatcher thread or on an asyncio loop, and pushed transfer progress."""

import asyncio
import gc
import os
import threading
import time
import weakref

import pytest

import peat_mesh
from peat_mesh import DocEvent

from conftest import SECRET


def eventually(cond, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


class Recorder:
    """A callable that records events and the thread it ran on."""

    def __init__(self, node=None):
        self.events = []
        self.threads = set()
        self.node = node
        self.reads = []

    def __call__(self, ev):
        self.threads.add(threading.get_ident())
        if self.node is not None and isinstance(ev, DocEvent):
            # calling the SDK (a blocking read) from inside the callback; done
            # before the event is recorded, so a test that sees the event sees the read
            self.reads.append(self.node.get(ev.collection, ev.id))
        self.events.append(ev)


def test_callback_subscription_delivers_and_may_call_the_sdk(open_node):
    a, b = open_node("a"), open_node("b")
    rec = Recorder(node=b)
    with b.on_change("tracks", rec) as sub:
        b.connect(a.addrs()[0])
        a.put("tracks", "t1", {"lat": 1.5})
        assert eventually(lambda: any(isinstance(e, DocEvent) and e.id == "t1" for e in rec.events))
        ev = next(e for e in rec.events if isinstance(e, DocEvent) and e.id == "t1")
        assert ev.value == {"lat": 1.5} and ev.origin == peat_mesh.Origin.PEER and ev.peer == a.id
        assert {"lat": 1.5} in rec.reads
        assert threading.get_ident() not in rec.threads  # the SDK dispatcher thread
        assert not sub.ended


def test_nothing_is_delivered_after_close_returns(open_node):
    n = open_node()
    rec = Recorder()
    sub = n.on_change("burst", rec)
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            n.put("burst", str(i % 50), {"i": i})
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    assert eventually(lambda: len(rec.events) > 20)
    sub.close()
    count = len(rec.events)
    time.sleep(0.3)
    stop.set()
    t.join()
    assert len(rec.events) == count
    sub.close()  # idempotent


def test_cleanup_runs_once_and_cycles_free_everything(open_node):
    n = open_node()
    base = peat_mesh.live_handles()
    released = []
    for i in range(2000):
        rec = Recorder()
        weakref.finalize(rec, released.append, i)
        n.on_change("c", rec).close()
        del rec
    gc.collect()
    assert eventually(lambda: (gc.collect(), len(released))[1] == 2000)
    assert sorted(released) == list(range(2000))  # each callback released exactly once
    assert peat_mesh.live_handles() == base


def test_end_of_subscription_when_the_node_closes(open_node):
    n = open_node()
    base = peat_mesh.live_handles()
    ended = threading.Event()
    rec = Recorder()
    sub = n.on_peer_event(rec, on_end=ended.set)
    docs = n.on_change("c", Recorder())
    assert peat_mesh.live_handles() == base + 2
    n.close()
    assert ended.wait(10)
    assert eventually(lambda: sub.ended and docs.ended)
    # the ended subscriptions freed their handles; the node's is gone too
    assert eventually(lambda: peat_mesh.live_handles() == base - 1)
    sub.close()


def test_an_exception_in_a_callback_does_not_stop_delivery(open_node, capfd):
    n = open_node()
    got = []

    def flaky(ev):
        got.append(ev.id)
        if ev.id == "1":
            raise RuntimeError("boom in callback")

    with n.on_change("c", flaky):
        for i in range(3):
            n.put("c", str(i), {"i": i})
        assert eventually(lambda: got == ["0", "1", "2"]), got
    assert "boom in callback" in capfd.readouterr().err


def test_asyncio_callbacks_run_on_the_loop(tmp_path):
    async def main():
        loop_thread = threading.get_ident()
        async with await peat_mesh.Node.open(str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0") as a:
            plain, from_coro = asyncio.Queue(), asyncio.Queue()
            threads = set()

            def on_doc(ev):
                threads.add(threading.get_ident())
                plain.put_nowait(ev)

            async def on_doc_async(ev):
                await asyncio.sleep(0)
                await from_coro.put(ev)

            with a.on_change("t", on_doc), a.on_change("t", on_doc_async, id="1"):
                await a.put("t", "1", {"v": 1})
                ev = await asyncio.wait_for(plain.get(), 10)
                ev2 = await asyncio.wait_for(from_coro.get(), 10)
                assert ev.value == {"v": 1} and ev2.value == {"v": 1}
                assert threads == {loop_thread}

    asyncio.run(main())


def test_pushed_transfer_progress(tmp_path):
    data = os.urandom(3 << 20)
    src = tmp_path / "src.bin"
    src.write_bytes(data)

    async def main():
        a = await peat_mesh.Node.open(str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0")
        b = await peat_mesh.Node.open(str(tmp_path / "b"), "py", SECRET, listen="127.0.0.1:0")
        async with a, b:
            await b.connect(a.addrs()[0])
            info = await a.add_blob_file(src)
            seen = []
            ended = asyncio.Event()
            with b.fetch_blob(info.hash, providers=[a.id], rate_limit=4 << 20) as t:
                with t.on_progress(seen.append, on_end=ended.set):
                    assert await t == info
                    await asyncio.wait_for(ended.wait(), 10)
            done = [p.done for p in seen]
            assert done == sorted(done) and len(seen) > 2
            assert seen[-1].finished and seen[-1].done == len(data)

    before = peat_mesh.live_handles()
    asyncio.run(main())
    assert peat_mesh.live_handles() == before


def test_on_change_on_a_closed_node_raises(open_node):
    n = open_node()
    n.close()
    with pytest.raises(peat_mesh.PeatError):
        n.on_change("c", print)


def test_a_failed_subscribe_releases_the_callback_once_and_never_calls_it(open_node):
    n = open_node()
    base = peat_mesh.live_handles()
    released = []
    calls = []

    def make(i):
        def cb(ev):
            calls.append(ev)

        weakref.finalize(cb, released.append, i)
        return cb

    for i in range(50):
        cb = make(i)
        with pytest.raises(peat_mesh.InvalidArgumentError):
            n.on_change("c", cb, id="x" * 600)  # ids are at most 512 bytes
        del cb
    assert eventually(lambda: (gc.collect(), len(released))[1] == 50)
    assert sorted(released) == list(range(50))  # each released exactly once
    assert calls == [] and peat_mesh.live_handles() == base


def _run_child(code, *args, timeout=60):
    import subprocess
    import sys
    import textwrap

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout
    )


def test_clearing_the_log_handler_while_it_runs_does_not_deadlock(tmp_path):
    # The log handler is slow (it sleeps without the GIL, then needs it back);
    # another thread clears (then replaces) it while it runs. Clearing waits for
    # the running handler, so it must not hold the GIL while it waits. A
    # deadlock shows as the child timing out.
    r = _run_child(
        """
        import sys, threading, peat_mesh, time
        started = threading.Event()

        def slow(level, target, message):
            started.set()
            time.sleep(0.5)
            sum(range(10000))  # runs with the GIL after the sleep

        for i, change in enumerate([peat_mesh.clear_log_handler,
                                    lambda: peat_mesh.set_log_handler(lambda *a: None)]):
            started.clear()
            peat_mesh.set_log_handler(slow, max_level=5)
            with peat_mesh.SyncNode.open(sys.argv[1] + str(i), "py", bytes([7]) * 32, listen="127.0.0.1:0"):
                pass
            assert started.wait(10), "no log record"
            t = threading.Thread(target=change)
            t.start()
            t.join(20)
            assert not t.is_alive(), "deadlock"
        peat_mesh.clear_log_handler()
        print("OK")
        """,
        str(tmp_path / "l"),
    )
    assert r.returncode == 0 and "OK" in r.stdout, (r.stdout, r.stderr)

"""peat-mesh for Python: Automerge documents that sync between peers of a
formation, durably, with no server.

Async-first::

    async with await peat_mesh.Node.open("/tmp/a", "alpha", secret) as node:
        await node.put("tracks", "t1", {"lat": 59.3})
        async for event in node.subscribe("tracks"):
            ...

and a blocking twin, :class:`SyncNode`, for scripts. Everything here only
converts types around the shared Rust SDK layer; every wait releases the GIL.
"""

from __future__ import annotations

import asyncio
import atexit
import enum
import json
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from . import _ephemeral
from . import _lifecycle
from . import _trust
from ._polled import ClosesOnExit as _ClosesOnExit
from ._polled import Polled
from ._ephemeral import (
    Beacon,
    BeaconEvent,
    BeaconEventKind,
    BeaconInfo,
    BeaconSubscription,
    Ephemeral,
    EphemeralStats,
    Message,
    NodeState,
    TopicSubscription,
)
from ._lifecycle import (
    Bandwidth,
    BandwidthStats,
    CollectionPolicy,
    DeleteRule,
    SignaturePolicy,
    GarbageReport,
    Priority,
    StorageStats,
    SyncMode,
)
from ._trust import (
    AdmissionMode,
    Authority,
    CertificateInfo,
    ChangeAuthor,
    Membership,
    Permission,
    Tier,
    Trust,
    TrustStats,
    certificate_info,
    rotate_identity,
)
from ._native import (
    AdmissionRefusedError,
    ClosedError,
    CorruptError,
    InternalError,
    InvalidArgumentError,
    InvalidHandleError,
    NetworkError,
    NotFoundError,
    OperationCancelledError,
    PeatError,
    PeatTimeoutError,
    ProtocolError,
    ShutDownError,
    StorageError,
    WouldDeadlockError,
)

__all__ = [
    "Node",
    "Collection",
    "TransferStatus",
    "Ephemeral",
    "Message",
    "TopicSubscription",
    "BeaconInfo",
    "Beacon",
    "BeaconEvent",
    "BeaconEventKind",
    "BeaconSubscription",
    "NodeState",
    "EphemeralStats",
    "CollectionPolicy",
    "Priority",
    "SyncMode",
    "DeleteRule",
    "SignaturePolicy",
    "GarbageReport",
    "StorageStats",
    "Bandwidth",
    "BandwidthStats",
    "Authority",
    "AdmissionMode",
    "CertificateInfo",
    "Membership",
    "Permission",
    "Tier",
    "Trust",
    "TrustStats",
    "ChangeAuthor",
    "certificate_info",
    "rotate_identity",
    "generate_formation_secret",
    "set_log_handler",
    "clear_log_handler",
    "shutdown",
    "BlobInfo",
    "BlobStatus",
    "Progress",
    "Transfer",
    "SyncNode",
    "Subscription",
    "CallbackSubscription",
    "DocEvent",
    "PeerEvent",
    "PeerEventKind",
    "Lagged",
    "PeerInfo",
    "Link",
    "Pace",
    "LinkHealth",
    "LinkState",
    "PeerState",
    "PeerSource",
    "Origin",
    "BlobState",
    "TransferProfile",
    "NodeStats",
    "live_handles",
    "PeatError",
    "InvalidArgumentError",
    "NotFoundError",
    "InvalidHandleError",
    "ClosedError",
    "PeatTimeoutError",
    "StorageError",
    "NetworkError",
    "AdmissionRefusedError",
    "ProtocolError",
    "CorruptError",
    "ShutDownError",
    "WouldDeadlockError",
    "InternalError",
    "OperationCancelledError",
]

_PID = os.getpid()
_open_nodes: "weakref.WeakSet[SyncNode]" = weakref.WeakSet()


def _check_process() -> None:
    """A forked child cannot use the parent's runtime: fail clearly instead of hanging."""
    if os.getpid() != _PID:
        raise PeatError("peat_mesh was initialised in another process (fork); use it only in the parent, or spawn")


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


def generate_formation_secret() -> bytes:
    """A new random 32-byte formation secret from a cryptographically secure
    generator (never all zeros: an all-zero secret is refused when a node
    opens). Share it with the formation's nodes out of band."""
    return _native.generate_formation_secret()


def live_handles() -> int:
    """Number of live SDK handles (nodes, subscriptions) in the process, for leak checks."""
    return _native.live_handles()


class _Named(str, enum.Enum):
    """An enum whose members are their SDK names: ``PeerState.CONNECTED ==
    "connected"``, and ``str()`` gives the name."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    __hash__ = str.__hash__


class Origin(_Named):
    """Where the change of a :class:`DocEvent` came from."""

    SNAPSHOT = "snapshot"  # the subscription's initial snapshot
    LOCAL = "local"  # a write on this node
    PEER = "peer"  # a peer: the event's ``peer`` is its node id


class PeerState(_Named):
    """Where a node stands with a peer."""

    CONNECTED = "connected"  # admitted and syncing
    DISCONNECTED = "disconnected"  # was connected; not now
    DISCOVERED = "discovered"  # found by a discovery, not connected yet
    OTHER_FORMATION = "other_formation"  # announcing another formation; never dialled


class PeerSource(_Named):
    """A discovery that wants a peer."""

    STATIC = "static"  # configured, or added with add_peer
    MDNS = "mdns"  # announced on the local network
    DIRECT = "direct"  # dialled with connect
    KUBERNETES = "kubernetes"  # a ready endpoint of the Kubernetes Service (peat-mesh-node)


class PeerEventKind(_Named):
    """What a :class:`PeerEvent` reports."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ADMISSION_REFUSED = "admission_refused"
    REVOKED = "revoked"  # a certificate of the peer was revoked: cut off and refused
    DISCOVERED = "discovered"
    LOST = "lost"
    OTHER_FORMATION = "other_formation"
    STORAGE_FAILED = "storage_failed"
    STORAGE_EVICTED = "storage_evicted"
    LINK_CHANGED = "link_changed"


class LinkState(_Named):
    """How a link to a peer is judged from its probes."""

    HEALTHY = "healthy"  # answering within the thresholds
    DEGRADED = "degraded"  # answering, but lossy or slow past the thresholds
    SUSPECT = "suspect"  # not proven yet, or missed its last answer
    DEAD = "dead"  # no answer for the dead-link time (or silenced)


class BlobState(_Named):
    """How much of a blob a node holds."""

    MISSING = "missing"
    PARTIAL = "partial"  # a download was started: some verified bytes are on disk
    COMPLETE = "complete"


class TransferProfile(_Named):
    """How a blob fetch uses the network."""

    DATACENTER = "datacenter"  # fast, reliable links
    TACTICAL = "tactical"  # lossy, shared links (the default)
    EDGE = "edge"  # slow, intermittent links


@dataclass(frozen=True)
class DocEvent:
    """A document's new state; ``value`` is None when it was deleted. ``peer``
    is the sending peer's node id when ``origin`` is :attr:`Origin.PEER`."""

    collection: str
    id: str
    value: Optional[dict]
    origin: Origin
    peer: Optional[str] = None


@dataclass(frozen=True)
class PeerEvent:
    """``kind`` says what happened; ``reason`` holds the disconnect or refusal
    reason or the store's error of storage_failed (and, for discovered/lost,
    the discovery's name, as ``source`` has it).

    "storage_failed" is not about a peer (``peer`` is None): this node's store
    failed a commit (a full disk, an I/O error) and every write now raises
    :class:`StorageError` until the node is closed and reopened. It comes once.

    "storage_evicted" is not about a peer either: a garbage-collection pass
    evicted ``evicted`` documents to keep the node within its storage budget;
    ``stored_bytes`` is what the documents take after it. Once per such pass.

    "link_changed": the link carrying the peer's traffic changed (PACE failover
    or fail-back, a silenced link, or the first link chosen); the connection and
    its sync session go on. ``link_from`` is the link used before (None at first
    use), ``link_to`` the link used now (None when no link can carry the
    traffic) and ``level`` its PACE level (0 primary)."""

    kind: PeerEventKind
    peer: Optional[str]
    reason: str
    source: Optional[PeerSource] = None  # discovered, lost: the discovery
    link_from: Optional[str] = None  # link_changed: the link used before
    link_to: Optional[str] = None  # link_changed: the link used now
    level: Optional[int] = None  # link_changed: the PACE level of link_to
    evicted: Optional[int] = None  # storage_evicted: documents evicted
    stored_bytes: Optional[int] = None  # storage_evicted: bytes stored after


@dataclass(frozen=True)
class Lagged:
    """This many events were dropped because the reader fell behind."""

    dropped: int


@dataclass(frozen=True)
class Link:
    """A link besides the node's UDP socket: a UDP socket of its own bound to
    ``bind`` (one interface's address, e.g. ``"10.0.2.1:0"``; a second LAN, an
    IP radio). It carries traffic to peers' links of the same ``name`` only
    (names are unique per node). ``level`` is its PACE level: 0 primary,
    1 alternate, 2 contingency, 3 emergency (at most 7; links of one level are
    tried in the order given). ``bind`` may also be ``"ble"`` or
    ``"ble:ADAPTER"``: a Bluetooth LE link (Linux, BlueZ); where there is no
    Bluetooth, opening the node raises :class:`NetworkError`."""

    name: str
    bind: str
    level: int = 0


@dataclass(frozen=True)
class Pace:
    """PACE thresholds: how links are probed and judged. Durations are in
    seconds; None (or 0) takes the default."""

    probe_interval: Optional[float] = None  # how often each link to each peer is probed (0.5 s)
    dead_after: Optional[float] = None  # a link answering no probe this long is dead (2 s)
    degraded_rtt: Optional[float] = None  # smoothed RTT past which a link is degraded (2 s)
    degraded_loss: Optional[float] = None  # probe loss (0.0-1.0) past which a link is degraded (0.25)
    hold_down: Optional[float] = None  # how long a better level must stay healthy before traffic returns (10 s)
    blobs_below_level: int = 0  # blob transfers only over links of a level below this (3: never emergency); 0: any
    # per collection: its documents only over links of a level below the value (1-8); None: no rule
    collections_below_level: Optional[Mapping[str, int]] = None


@dataclass(frozen=True)
class LinkHealth:
    """One link's health towards a peer, measured from its own probes."""

    name: str
    level: Optional[int]  # its PACE level (0 primary); None if the policy does not use it
    state: LinkState
    rtt_us: Optional[int]  # smoothed probe RTT in microseconds, once measured
    rtt_var_us: Optional[int]  # the RTT's smoothed mean deviation in microseconds, once measured
    loss: float  # share of recent probes not answered (0.0-1.0)
    last_answer_ms: Optional[int]  # milliseconds since the link last answered a probe; None if never
    in_use: bool  # whether this link carries the peer's traffic now
    silent: bool  # whether this node has silenced the link


@dataclass(frozen=True)
class PeerInfo:
    """A peer the node has seen."""

    id: str
    connected: bool
    addr: Optional[str]
    rtt_us: Optional[int]
    last_seen_ms: Optional[int]
    state: PeerState
    sources: FrozenSet[PeerSource]  # the discoveries that want the peer
    links: Tuple[LinkHealth, ...] = ()  # each link's health towards the peer (empty without links)
    sync_bytes_sent: int = 0  # sync bytes sent to the peer since the node opened
    sync_bytes_received: int = 0  # sync bytes received from the peer since the node opened
    sync_queued_updates: int = 0  # live updates waiting in the peer's sync queues now
    sync_queued_reply_bytes: int = 0  # bytes of answers queued for the peer now


@dataclass(frozen=True)
class NodeStats:
    """A node's counters since it opened."""

    documents: int  # stored documents, tombstones included
    connected_peers: int
    subscriptions: int
    frames_sent: int
    bytes_sent: int
    frames_received: int
    bytes_received: int
    # documents (or changes) received from peers and refused: nested too deep,
    # or a change too large; nothing of them was stored
    refused_documents: int
    queued_events: int  # events waiting unread in the node's subscriptions now
    # changes from peers applied, and the sum of their update latencies (author's
    # commit to application here, ms; the two clocks' skew shifts it)
    update_latency_count: int
    update_latency_sum_ms: int


Event = Union[DocEvent, PeerEvent, Lagged]


def _doc_event(raw: tuple) -> Event:
    """A native document-event tuple as a :class:`DocEvent` or :class:`Lagged`."""
    if raw[0] == "lagged":
        return Lagged(raw[1])
    _, collection, doc_id, js, origin, peer = raw
    return DocEvent(collection, doc_id, json.loads(js) if js is not None else None, Origin(origin), peer)


def _peer_event(raw: tuple) -> Event:
    """A native peer-event tuple as a :class:`PeerEvent` or :class:`Lagged`."""
    if raw[0] == "lagged":
        return Lagged(raw[1])
    if raw[0] == "storage_evicted":
        return PeerEvent(PeerEventKind.STORAGE_EVICTED, None, "", evicted=raw[1], stored_bytes=raw[2])
    kind, peer, reason, source, link_from, link_to, level = raw
    if source is None:
        return PeerEvent(PeerEventKind(kind), peer, reason, None, link_from, link_to, level)
    return PeerEvent(PeerEventKind(kind), peer, source, PeerSource(source))


class Subscription(Polled):
    """Events of a collection, a document or the peers, in order. Iterate it
    (``for`` or ``async for``) or call :meth:`next`. Close it (or use ``with``)
    to free it; it also ends when its node closes."""

    def __init__(self, handle: int, peers: bool) -> None:
        super().__init__(handle)
        self._peers = peers

    def _next(self, timeout_ms: int) -> Optional[Event]:
        _check_process()
        if self._peers:
            raw = _native.next_peer_event(self._handle, timeout_ms)
            return None if raw is None else _peer_event(raw)
        raw = _native.next_doc_event(self._handle, timeout_ms)
        return None if raw is None else _doc_event(raw)


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class CallbackSubscription(_ClosesOnExit):
    """Push delivery: ``callback(event)`` runs once per event, in order.

    Without an event loop the callback runs on the SDK's dispatcher thread (it
    holds the GIL only for the call, and may call the SDK, blocking calls
    included); with one (the asyncio :class:`Node`, or :meth:`Transfer.on_progress`
    called from a coroutine) it runs on that loop, and a coroutine function's
    result is scheduled as a task. An exception in the callback is printed and
    delivery goes on.

    Once :meth:`close` returns no callback starts. Dropping the object does not
    end delivery (the SDK holds the callback, like any listener): call
    :meth:`close`, use ``with``, or close the node. When the node closes,
    ``on_end()`` runs once and :attr:`ended` becomes true.
    """

    def __init__(
        self,
        subscribe: Callable[[Callable[[tuple], None]], int],
        decode: Callable[[Any], Any],
        callback: Callable[[Any], Any],
        on_end: Optional[Callable[[], Any]],
        loop: Optional[asyncio.AbstractEventLoop],
    ) -> None:
        _check_process()
        self._closed = False
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._handle: Optional[int] = None
        decode_ = decode

        def run(fn: Callable[..., Any], *args: Any) -> None:
            if loop is None:
                fn(*args)
                return

            def on_loop() -> None:
                if self._closed:
                    return
                result = fn(*args)
                if asyncio.iscoroutine(result):
                    loop.create_task(result)

            loop.call_soon_threadsafe(on_loop)

        def deliver(raw: tuple) -> None:
            if raw[0] != "closed":
                run(callback, decode_(raw[1]))
                return
            # The node closed: free the handle (allowed from the dispatcher,
            # it does not wait) and tell the owner once.
            with self._lock:
                self._ended.set()
                handle, self._handle = self._handle, None
            if handle is not None:
                _free_subscription(handle)
            if on_end is not None:
                run(on_end)

        handle = subscribe(deliver)
        with self._lock:
            if self._ended.is_set():
                _free_subscription(handle)
            else:
                self._handle = handle

    @property
    def ended(self) -> bool:
        """True once the subscription ended because its node (or transfer) finished."""
        return self._ended.is_set()

    def close(self) -> None:
        """Ends delivery: no callback starts after this returns (one that is
        running when called from another thread is waited for). Idempotent."""
        with self._lock:
            self._closed = True
            handle, self._handle = self._handle, None
        if handle is not None:
            _free_subscription(handle)

    def __enter__(self) -> "CallbackSubscription":
        return self


def _free_subscription(handle: int) -> None:
    try:
        _native.unsubscribe(handle)
    except (InvalidHandleError, ShutDownError):
        pass


def _pace_ms(what: str, seconds: Optional[float]) -> int:
    """A PACE duration in milliseconds; None or 0 is 0 (the default), anything
    positive at least 1 ms."""
    if seconds is None or seconds == 0:
        return 0
    if not 0 < seconds < 2**53:
        raise InvalidArgumentError(f"pace {what} must be a positive number of seconds, got {seconds!r}")
    return max(1, round(seconds * 1000))


def _blobs_below(level: int) -> int:
    if not isinstance(level, int) or not 0 <= level <= 0xFFFF_FFFF:
        raise InvalidArgumentError(f"pace blobs_below_level must be 0-8, got {level!r}")
    return level


def _collection_rules(rules: Optional[Mapping[str, int]]) -> list:
    out = []
    for collection, below in (rules or {}).items():
        if not isinstance(collection, str) or not isinstance(below, int) or not 0 <= below <= 0xFFFF_FFFF:
            raise InvalidArgumentError(f"collection rule {collection!r}: {below!r} (a name and a level 1-8)")
        out.append((collection, below))
    return out


def _link_arg(link: Link) -> tuple:
    if not isinstance(link, Link):
        raise TypeError(f"links must be peat_mesh.Link values, got {link!r}")
    if not isinstance(link.level, int) or not 0 <= link.level <= 0xFFFF_FFFF:
        raise InvalidArgumentError(f"link {link.name!r} level must be 0-7, got {link.level!r}")
    return (link.name, link.bind, link.level)


def _storage_budget(budget: Optional[int]) -> Tuple[int, int, int]:
    """The native storage budget argument: (bytes, high %, low %), 0 for none/defaults."""
    if budget is None:
        return (0, 0, 0)
    if budget <= 0:
        raise InvalidArgumentError(f"storage_budget must be a positive number of bytes, got {budget!r}")
    return (int(budget), 0, 0)


def _open_args(data_dir, formation_id, formation_secret, listen, peers, mdns, links, links_only, pace, ephemeral, policies, default_policy, storage_budget, bandwidth, trust, timeout):  # type: ignore[no-untyped-def]
    """The native node_open arguments (before the cancel token), shared by both APIs."""
    p = pace if pace is not None else Pace()
    pace_arg = (
        _pace_ms("probe_interval", p.probe_interval),
        _pace_ms("dead_after", p.dead_after),
        _pace_ms("degraded_rtt", p.degraded_rtt),
        float(p.degraded_loss or 0.0),
        _pace_ms("hold_down", p.hold_down),
        _blobs_below(p.blobs_below_level),
        _collection_rules(p.collections_below_level),
    )
    return (
        str(data_dir),
        formation_id,
        bytes(formation_secret),
        listen,
        list(peers),
        bool(mdns),
        [_link_arg(link) for link in links],
        bool(links_only),
        pace_arg,
        _ephemeral.ephemeral_arg(ephemeral),
        _lifecycle.policies_json(policies, default_policy),
        _storage_budget(storage_budget),
        _lifecycle.bandwidth_json(bandwidth),
        _trust.trust_json(trust),
        _ms(timeout),
    )


def _with_cancel(call, *args):  # type: ignore[no-untyped-def]
    """Runs a cancellable native call; returns (token, runner) for asyncio use."""
    token = _native.cancel_new()

    def run():  # type: ignore[no-untyped-def]
        try:
            return call(*args, token)
        finally:
            _native.cancel_free(token)

    return token, run


async def _cancellable(call, *args):  # type: ignore[no-untyped-def]
    """Awaits a native call in a thread; cancelling the task cancels the Rust work."""
    token, run = _with_cancel(call, *args)
    task = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            _native.cancel(token)
        except InvalidHandleError:
            pass
        try:
            await task
        except Exception:
            pass
        raise


def set_log_handler(handler: "Callable[[int, str, str], None]", max_level: int = 3) -> None:
    """Routes the SDK's logs (level 1 error … 5 trace, up to ``max_level``) to
    ``handler(level, target, message)``, called from the SDK's dispatcher thread.
    To feed the ``logging`` module::

        set_log_handler(lambda lvl, tgt, msg: logging.getLogger(tgt).log(60 - 10 * lvl, msg))

    Raises :class:`ShutDownError` after :func:`shutdown`, and
    :class:`InvalidArgumentError` when the process already has another global
    Rust ``tracing`` subscriber; the previous handler then stays.
    """
    _native.set_log_callback(handler, max_level)


def clear_log_handler() -> None:
    """Stops log delivery."""
    _native.clear_log_callback()


def shutdown(timeout: float = 5.0) -> None:
    """Stops the SDK for this process: every open node is closed (each within
    ``timeout``, at most 5 s; its store flushed and the data dir free to reopen),
    then the runtime stops; later calls raise :class:`ShutDownError`."""
    _native.shutdown(_ms(timeout))


# ----- blobs -----


@dataclass(frozen=True)
class BlobInfo:
    """A complete blob: BLAKE3 name (hex), SHA-256 (hex) and size."""

    hash: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Progress:
    """Progress of a :class:`Transfer`."""

    done: int
    total: int
    resumed: int
    received: int
    rate: float
    finished: bool


@dataclass(frozen=True)
class TransferStatus:
    """A blob fetch running on the node: the blob's hash and its progress."""

    hash: str
    progress: Progress


@dataclass(frozen=True)
class Collection:
    """A collection and how many live documents it holds."""

    name: str
    documents: int


@dataclass(frozen=True)
class BlobStatus:
    """How much of a blob is here."""

    state: BlobState
    size: int
    present: int

# Waits without a deadline are done in slices of this many milliseconds.
_WAIT_SLICE_MS = 3_600_000


class Transfer(_ClosesOnExit):
    """A blob fetch in progress. ``await transfer`` (or :meth:`wait`) for the
    :class:`BlobInfo`; cancelling the awaiting task cancels the transfer (what
    it verified stays on disk, and a later fetch resumes from it). Use it as a
    context manager, or call :meth:`close`, to free its handle."""

    def __init__(self, handle: int) -> None:
        self._handle = handle
        self._closed = False

    def progress(self) -> Progress:
        """The current progress."""
        return Progress(*_native.transfer_progress(self._handle))

    async def updates(self, interval: float = 0.1) -> AsyncIterator[Progress]:
        """Progress about every ``interval`` seconds; the last one has ``finished`` set."""
        while True:
            p = self.progress()
            yield p
            if p.finished:
                return
            await asyncio.sleep(interval)

    def on_progress(
        self, callback: Callable[[Progress], Any], on_end: Optional[Callable[[], Any]] = None
    ) -> CallbackSubscription:
        """Pushes every progress change to ``callback`` (the last has
        ``finished`` set). Called from a coroutine, the callback runs on its
        event loop; otherwise on the SDK dispatcher thread. See
        :class:`CallbackSubscription`."""
        return CallbackSubscription(
            lambda deliver: _native.transfer_subscribe_progress(self._handle, deliver),
            lambda raw: Progress(*raw),
            callback,
            on_end,
            _running_loop(),
        )

    async def wait(self) -> BlobInfo:
        """Waits for the end; raises the transfer's error (e.g. :class:`CorruptError`)."""
        while True:
            try:
                return BlobInfo(*await _cancellable(_native.transfer_wait, self._handle, _WAIT_SLICE_MS))
            except PeatTimeoutError:
                continue

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.wait().__await__()

    def wait_blocking(self, timeout: Optional[float] = None) -> BlobInfo:
        """Blocking wait; raises :class:`PeatTimeoutError` after ``timeout`` seconds
        (the transfer goes on)."""
        if timeout is not None:
            return BlobInfo(*_native.transfer_wait(self._handle, _ms(timeout), 0))
        while True:
            try:
                return BlobInfo(*_native.transfer_wait(self._handle, _WAIT_SLICE_MS, 0))
            except PeatTimeoutError:
                continue

    def cancel(self) -> None:
        """Stops the transfer; the object stays usable until closed."""
        _native.transfer_cancel(self._handle)

    def close(self) -> None:
        """Frees the handle (a running transfer goes on: cancel it first to stop it). Idempotent."""
        if not self._closed:
            self._closed = True
            _native.transfer_free(self._handle)

    def __enter__(self) -> "Transfer":
        return self



def _fetch(
    handle: int,
    hash: str,
    providers: Sequence[str],
    profile: Union[TransferProfile, str],
    rate_limit: int,
    expected_size: Optional[int],
    priority: Union[Priority, str] = Priority.BULK,
) -> Transfer:
    if expected_size is not None and expected_size < 0:
        raise InvalidArgumentError(f"expected_size must not be negative, got {expected_size}")
    return Transfer(
        _native.blob_fetch(handle, hash, list(providers), str(profile), rate_limit, expected_size or 0, str(priority))
    )


class SyncNode(_trust.SyncTrustMethods):
    """A node with a blocking API (for scripts). See :class:`Node` for async use."""

    def __init__(self, handle: int) -> None:
        self._handle = handle
        self._closed = False
        self._lock = threading.Lock()
        _open_nodes.add(self)

    @classmethod
    def open(
        cls,
        data_dir: str,
        formation_id: str,
        formation_secret: bytes,
        listen: str = "0.0.0.0:0",
        peers: Sequence[str] = (),
        timeout: float = 30.0,
        mdns: bool = False,
        links: Sequence[Link] = (),
        links_only: bool = False,
        pace: Optional[Pace] = None,
        ephemeral: Optional[Ephemeral] = None,
        policies: Optional[Mapping[str, CollectionPolicy]] = None,
        default_policy: Optional[CollectionPolicy] = None,
        storage_budget: Optional[int] = None,
        bandwidth: Optional[Bandwidth] = None,
        trust: Optional[Trust] = None,
    ) -> "SyncNode":
        """Opens a node. ``formation_secret`` is 32 bytes shared by the formation;
        ``peers`` are static peers (``NODEID@HOST:PORT``, or
        ``NODEID@ADDR,ADDR...`` with several addresses); ``mdns`` announces the
        node and finds peers of the formation on the LAN.

        ``links`` are :class:`Link` values: UDP sockets besides the node's own,
        each on one interface, with their PACE levels; traffic to a peer goes
        over the best healthy level, fails over when it dies and comes back
        after ``pace.hold_down``. ``links_only`` binds no UDP socket of the node
        (``listen`` is ignored; it needs a link and is refused with ``mdns``).
        ``pace`` (a :class:`Pace`) sets how links are probed and judged. A bad
        link (an unparsable ``bind``, a level above 7) raises
        :class:`InvalidArgumentError`.

        ``ephemeral`` (an :class:`Ephemeral`) sets the beacon preset and the
        secured multicast path for ephemeral messages and beacons.

        ``policies`` maps collection names to :class:`CollectionPolicy`;
        ``default_policy`` applies to every other collection. A bad policy
        raises :class:`InvalidArgumentError`. ``storage_budget`` (bytes) caps
        the documents: past 90 % of it garbage collection evicts bulk, then
        low, normal and high documents, oldest first, down to 80 %; critical
        documents are never evicted. ``bandwidth`` (a :class:`Bandwidth`)
        caps the bytes per second sent to each peer and over each link.

        ``trust`` (a :class:`Trust`, e.g. ``Authority.trust()``) admits peers
        by membership certificate: see :meth:`membership` and :meth:`revoke`."""
        _check_process()
        _, run = _with_cancel(
            _native.node_open,
            *_open_args(
                data_dir, formation_id, formation_secret, listen, peers, mdns, links, links_only, pace, ephemeral,
                policies, default_policy, storage_budget, bandwidth, trust, timeout,
            ),
        )
        return cls(run())

    @property
    def handle(self) -> int:
        if self._closed:
            raise ClosedError("node is closed")
        _check_process()
        return self._handle

    @property
    def id(self) -> str:
        """The node id (64 hex digits)."""
        return _native.node_id(self.handle)

    def addrs(self) -> list:
        """Strings another node can dial: ``NODEID@HOST:PORT`` per socket
        address, then ``NODEID@LINKADDR`` (the links' address) when the node
        has links; with ``links_only``, only that one."""
        return _native.node_addrs(self.handle)

    def connect(self, peer: str, timeout: float = 10.0) -> None:
        """Dials a peer (``NODEID@ADDR[,ADDR...]``, an address ``HOST:PORT``
        or a link address, as :meth:`addrs` gives them) and waits for admission."""
        _, run = _with_cancel(_native.connect, self.handle, peer, _ms(timeout))
        run()

    def peers(self) -> list:
        """Every peer seen, with state, health, the discoveries that want it and
        each link's health towards it (see :class:`LinkHealth`)."""
        return [
            PeerInfo(
                id,
                connected,
                addr,
                rtt,
                seen,
                PeerState(state),
                frozenset(PeerSource(s) for s in sources),
                tuple(
                    LinkHealth(name, level, LinkState(ls), lrtt, lvar, loss, last, in_use, silent)
                    for name, level, ls, lrtt, lvar, loss, last, in_use, silent in links
                ),
                *sync,
            )
            for id, connected, addr, rtt, seen, state, sources, links, sync in _native.peers(self.handle)
        ]

    def set_link_silent(self, name: str, silent: bool) -> None:
        """Silences the node's link ``name`` (emission control: it sends
        nothing, and its peers move to another link at once, each with a
        "link_changed" peer event), or, with ``silent=False``, lets it speak
        again. Raises :class:`InvalidArgumentError` if the node has no such link."""
        _native.set_link_silent(self.handle, name, silent)

    def add_peer(self, peer: str) -> None:
        """Adds a static peer (``NODEID@HOST:PORT``), kept connected until removed."""
        _native.add_peer(self.handle, peer)

    def remove_peer(self, peer_id: str) -> bool:
        """Removes a static peer; False if it was not one."""
        return _native.remove_peer(self.handle, peer_id)

    def stats(self) -> NodeStats:
        """The node's counters: stored documents, peers, subscriptions, sync traffic,
        documents refused from peers."""
        return NodeStats(*_native.stats(self.handle))

    def put(self, collection: str, id: str, doc: dict) -> None:
        """Writes a document (a dict of JSON-compatible values); returns once durable."""
        _native.put(self.handle, collection, id, json.dumps(doc))

    def merge_patch(self, collection: str, id: str, patch: dict) -> None:
        """Applies an RFC 7386 merge patch; returns once durable."""
        _native.merge_patch(self.handle, collection, id, json.dumps(patch))

    def get(self, collection: str, id: str) -> Optional[dict]:
        """The document, or None."""
        js = _native.get(self.handle, collection, id)
        return json.loads(js) if js is not None else None

    def delete(self, collection: str, id: str) -> bool:
        """Deletes a document (a tombstone that syncs); False if there was none."""
        return _native.delete(self.handle, collection, id)

    def list(self, collection: str, prefix: str = "", after: Optional[str] = None, limit: int = 100) -> tuple:
        """One page of ids: ``(ids, next_cursor_or_None)``."""
        return _native.list(self.handle, collection, prefix, after, limit)

    def collections(self, after: Optional[str] = None, limit: int = 100) -> List[Collection]:
        """Collections holding live documents, in name order, with their counts:
        at most ``limit`` (1 to 1,024), after ``after`` (the last name of the
        previous page)."""
        return [Collection(n, c) for n, c in _native.collections(self.handle, after, limit)]

    def export(self, collection: str, id: str) -> Optional[bytes]:
        """The document's raw Automerge bytes, or None."""
        data = _native.export(self.handle, collection, id)
        return bytes(data) if data is not None else None

    def import_bytes(self, collection: str, id: str, data: bytes) -> None:
        """Merges raw Automerge bytes (from any implementation) into a document."""
        _native.import_bytes(self.handle, collection, id, bytes(data))

    def subscribe(self, collection: str, id: Optional[str] = None, snapshot: bool = False) -> Subscription:
        """Events of a collection or one document; with ``snapshot``, current documents first."""
        return Subscription(_native.subscribe_docs(self.handle, collection, id, snapshot), peers=False)

    def subscribe_peers(self) -> Subscription:
        """Peer events (see :class:`PeerEvent`): connected, disconnected, admission
        refused, discovered, lost, other formation, link changed, and this node's
        storage failure."""
        return Subscription(_native.subscribe_peers(self.handle), peers=True)

    def on_change(
        self,
        collection: str,
        callback: Callable[[Event], Any],
        id: Optional[str] = None,
        snapshot: bool = False,
        on_end: Optional[Callable[[], Any]] = None,
        loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> CallbackSubscription:
        """Pushes the collection's (or one document's) events to ``callback``
        on the SDK dispatcher thread, or on ``loop`` if given. See
        :class:`CallbackSubscription`."""
        handle = self.handle
        return CallbackSubscription(
            lambda deliver: _native.subscribe_docs_push(handle, collection, id, snapshot, deliver),
            _doc_event,
            callback,
            on_end,
            loop,
        )

    def on_peer_event(
        self,
        callback: Callable[[Event], Any],
        on_end: Optional[Callable[[], Any]] = None,
        loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> CallbackSubscription:
        """Pushes peer events to ``callback``; see :meth:`on_change`."""
        handle = self.handle
        return CallbackSubscription(
            lambda deliver: _native.subscribe_peers_push(handle, deliver), _peer_event, callback, on_end, loop
        )

    def add_blob_file(self, path: Union[str, "os.PathLike[str]"], timeout: float = 3600.0) -> BlobInfo:
        """Adds a file's contents to the blob store."""
        return BlobInfo(*_native.blob_add_file(self.handle, os.fspath(path), _ms(timeout), 0))

    def fetch_blob(
        self,
        hash: str,
        providers: Sequence[str] = (),
        profile: Union[TransferProfile, str] = TransferProfile.TACTICAL,
        rate_limit: int = 0,
        expected_size: Optional[int] = None,
        priority: Union[Priority, str] = Priority.BULK,
    ) -> Transfer:
        """Starts fetching a blob; see :meth:`Node.fetch_blob`."""
        return _fetch(self.handle, hash, providers, profile, rate_limit, expected_size, priority)

    def discard_partial(self, hash: str) -> bool:
        """Throws away the partial download of a blob (what earlier fetches
        verified), so that the next fetch starts from nothing; returns whether
        there was one. A complete blob is never touched. Raises
        :class:`InvalidArgumentError` while a fetch of the blob is running:
        cancel it and wait for it to end first."""
        return _native.blob_discard_partial(self.handle, hash)

    def export_blob(self, hash: str, path: Union[str, "os.PathLike[str]"], timeout: float = 3600.0) -> int:
        """Copies a complete blob to ``path``; returns its size."""
        return _native.blob_export(self.handle, hash, os.fspath(path), _ms(timeout), 0)

    def blob_status(self, hash: str) -> BlobStatus:
        """How much of a blob is here."""
        state, size, present = _native.blob_status(self.handle, hash)
        return BlobStatus(BlobState(state), size, present)

    def blob_transfers(self) -> List[TransferStatus]:
        """The blob fetches running now (one per blob), in hash order."""
        return [
            TransferStatus(h, Progress(done, total, resumed, received, rate, False))
            for h, done, total, resumed, received, rate in _native.blob_transfers(self.handle)
        ]

    # ----- ephemeral messages and beacons -----

    def publish(
        self,
        topic: str,
        payload: Any,
        ttl: float = 10.0,
        hop_limit: int = 2,
        multicast: bool = True,
        priority: Union[Priority, str] = Priority.HIGH,
    ) -> int:
        """Publishes ``payload`` on ``topic`` to every connected peer (``bytes``
        as they are, anything else as JSON); nothing is stored. Receivers drop
        it after ``ttl`` seconds; it may be forwarded ``hop_limit`` times
        (above 0 it is signed); ``multicast`` also sends it on the node's
        multicast path if it has one. ``priority`` is its class under
        bandwidth budgets: never queued, a message a budget has no room for
        is dropped and counted. Returns how many peers it was sent to.
        A topic over 64 bytes, a payload over 960 bytes or a reserved topic
        (``_peat/...``) raises :class:`InvalidArgumentError`."""
        data, js, ttl_ms, hops = _ephemeral.publish_args(payload, ttl, hop_limit)
        return _native.publish(self.handle, topic, data, js, ttl_ms, hops, bool(multicast), str(priority))

    def subscribe_topic(self, filter: str, latest_only: bool = False) -> TopicSubscription:
        """Messages on topics ``filter`` takes: ``"*"``, ``"PREFIX*"`` or one
        topic. ``latest_only`` keeps only the newest of each origin and topic."""
        return TopicSubscription(_native.subscribe_topic(self.handle, filter, bool(latest_only)))

    def latest(self, filter: str = "*") -> list:
        """The latest live :class:`Message` of each origin and topic ``filter`` takes."""
        return [_ephemeral.message(r) for r in _native.latest_messages(self.handle, filter)]

    def set_beacon(self, info: BeaconInfo) -> None:
        """Publishes this node's beacon now and every interval until changed or
        cleared. NaN or out-of-range coordinates raise :class:`InvalidArgumentError`."""
        _native.set_beacon(self.handle, _ephemeral.info_arg(info))

    def clear_beacon(self) -> None:
        """Stops publishing this node's beacon (peers forget it at its ttl)."""
        _native.clear_beacon(self.handle)

    def beacons_near(self, lat: float, lon: float, radius_m: float) -> list:
        """Beacons within ``radius_m`` metres of a point, nearest first."""
        return _ephemeral.beacons(_native.beacons_near(self.handle, float(lat), float(lon), float(radius_m)))

    def beacons_in_cell(self, geohash: str, neighbours: bool = False) -> list:
        """Beacons in a geohash cell, and its eight neighbours if asked."""
        return _ephemeral.beacons(_native.beacons_in_cell(self.handle, geohash, bool(neighbours)))

    def beacons_since(self, since_ms: int = 0) -> list:
        """Beacons heard at or after ``since_ms`` (Unix ms, this node's clock); 0: all."""
        return _ephemeral.beacons(_native.beacons_since(self.handle, int(since_ms)))

    def subscribe_beacons(self) -> BeaconSubscription:
        """Beacon table events (appeared, updated, expired, evicted)."""
        return BeaconSubscription(_native.subscribe_beacons(self.handle))

    def ephemeral_stats(self) -> EphemeralStats:
        """Counters of the ephemeral path."""
        return EphemeralStats(*_native.ephemeral_stats(self.handle))

    def set_policy(self, collection: Optional[str], policy: CollectionPolicy) -> None:
        """Sets ``collection``'s policy (``None``: the default policy of every
        collection without its own); it applies from the next write, sync and
        garbage collection on. :class:`InvalidArgumentError` for a bad value
        or a 1,025th collection."""
        _native.set_policy(self.handle, collection, policy.to_json())

    def remove_policy(self, collection: str) -> bool:
        """Removes ``collection``'s own policy (it follows the default again);
        False if it had none."""
        return _native.remove_policy(self.handle, collection)

    def policy(self, collection: str) -> CollectionPolicy:
        """The policy ``collection`` follows now, every field filled in."""
        return CollectionPolicy.from_json(_native.policy(self.handle, collection))

    def policies(self) -> Tuple[CollectionPolicy, dict]:
        """The default policy and every collection's own, as (default, {name: policy})."""
        d = json.loads(_native.policies(self.handle))
        own = {c: CollectionPolicy.from_json(json.dumps(p)) for c, p in d["collections"].items()}
        return CollectionPolicy.from_json(json.dumps(d["default"])), own

    def collect_garbage(self, timeout: float = 60.0) -> GarbageReport:
        """Runs garbage collection now: expired documents and tombstones,
        retention (oldest first), unreferenced blobs."""
        return GarbageReport(*_native.collect_garbage(self.handle, _ms(timeout)))

    def storage_stats(self, timeout: float = 60.0) -> StorageStats:
        """What the node stores now and what its lifecycle removed or refused."""
        return StorageStats(*_native.storage_stats(self.handle, _ms(timeout)))

    def set_bandwidth(self, bandwidth: Bandwidth) -> None:
        """Replaces the bandwidth budgets (``Bandwidth()`` lifts them). A link
        the node does not have, or a rate below 1024 bytes/s, raises
        :class:`InvalidArgumentError` and the old budgets stay."""
        _native.set_bandwidth(self.handle, _lifecycle.bandwidth_json(bandwidth))

    def bandwidth(self) -> Bandwidth:
        """The bandwidth budgets in force."""
        return Bandwidth.from_json(_native.bandwidth(self.handle))

    def bandwidth_stats(self) -> BandwidthStats:
        """What the bandwidth budgets did since the node opened."""
        return BandwidthStats(*_native.bandwidth_stats(self.handle))

    def close(self, timeout: float = 5.0) -> None:
        """Closes the node within ``timeout`` seconds. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _native.node_close(self._handle, _ms(timeout))

    def __enter__(self) -> "SyncNode":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Node(_trust.AsyncTrustMethods):
    """A node with an asyncio API. Open with ``await Node.open(...)``; use
    ``async with`` or ``await node.close()``."""

    def __init__(self, sync: SyncNode) -> None:
        self.sync = sync

    @classmethod
    async def open(
        cls,
        data_dir: str,
        formation_id: str,
        formation_secret: bytes,
        listen: str = "0.0.0.0:0",
        peers: Sequence[str] = (),
        timeout: float = 30.0,
        mdns: bool = False,
        links: Sequence[Link] = (),
        links_only: bool = False,
        pace: Optional[Pace] = None,
        ephemeral: Optional[Ephemeral] = None,
        policies: Optional[Mapping[str, CollectionPolicy]] = None,
        default_policy: Optional[CollectionPolicy] = None,
        storage_budget: Optional[int] = None,
        bandwidth: Optional[Bandwidth] = None,
        trust: Optional[Trust] = None,
    ) -> "Node":
        """Opens a node (see :meth:`SyncNode.open`, links and PACE included);
        cancelling the awaiting task stops the opening."""
        _check_process()
        handle = await _cancellable(
            _native.node_open,
            *_open_args(
                data_dir, formation_id, formation_secret, listen, peers, mdns, links, links_only, pace, ephemeral,
                policies, default_policy, storage_budget, bandwidth, trust, timeout,
            ),
        )
        return cls(SyncNode(handle))

    @property
    def id(self) -> str:
        """The node id (64 hex digits)."""
        return self.sync.id

    def addrs(self) -> list:
        """Strings another node can dial (see :meth:`SyncNode.addrs`)."""
        return self.sync.addrs()

    async def connect(self, peer: str, timeout: float = 10.0) -> None:
        """Dials a peer and waits for admission; cancelling the task stops the dial."""
        await _cancellable(_native.connect, self.sync.handle, peer, _ms(timeout))

    def peers(self) -> list:
        """Every peer seen."""
        return self.sync.peers()

    def add_peer(self, peer: str) -> None:
        """Adds a static peer (``NODEID@HOST:PORT``), kept connected until removed."""
        self.sync.add_peer(peer)

    def remove_peer(self, peer_id: str) -> bool:
        """Removes a static peer; False if it was not one."""
        return self.sync.remove_peer(peer_id)

    def set_link_silent(self, name: str, silent: bool) -> None:
        """Silences a link or lets it speak again (see :meth:`SyncNode.set_link_silent`)."""
        self.sync.set_link_silent(name, silent)

    def stats(self) -> NodeStats:
        """The node's counters (see :meth:`SyncNode.stats`)."""
        return self.sync.stats()

    async def put(self, collection: str, id: str, doc: dict) -> None:
        """Writes a document; returns once durable."""
        await asyncio.to_thread(self.sync.put, collection, id, doc)

    async def merge_patch(self, collection: str, id: str, patch: dict) -> None:
        """Applies an RFC 7386 merge patch; returns once durable."""
        await asyncio.to_thread(self.sync.merge_patch, collection, id, patch)

    async def get(self, collection: str, id: str) -> Optional[dict]:
        """The document, or None."""
        return self.sync.get(collection, id)

    async def delete(self, collection: str, id: str) -> bool:
        """Deletes a document; False if there was none."""
        return await asyncio.to_thread(self.sync.delete, collection, id)

    async def list(self, collection: str, prefix: str = "", after: Optional[str] = None, limit: int = 100) -> tuple:
        """One page of ids: ``(ids, next_cursor_or_None)``."""
        return self.sync.list(collection, prefix, after, limit)

    async def collections(self, after: Optional[str] = None, limit: int = 100) -> List[Collection]:
        """Collections holding live documents, with their counts (walks their
        documents, so it runs on a worker thread)."""
        return await asyncio.to_thread(self.sync.collections, after, limit)

    async def export(self, collection: str, id: str) -> Optional[bytes]:
        """The document's raw Automerge bytes, or None."""
        return self.sync.export(collection, id)

    async def import_bytes(self, collection: str, id: str, data: bytes) -> None:
        """Merges raw Automerge bytes into a document."""
        await asyncio.to_thread(self.sync.import_bytes, collection, id, data)

    def subscribe(self, collection: str, id: Optional[str] = None, snapshot: bool = False) -> Subscription:
        """Events of a collection or one document (``async for``)."""
        return self.sync.subscribe(collection, id, snapshot)

    def subscribe_peers(self) -> Subscription:
        """Peer events (``async for``)."""
        return self.sync.subscribe_peers()

    def on_change(
        self,
        collection: str,
        callback: Callable[[Event], Any],
        id: Optional[str] = None,
        snapshot: bool = False,
        on_end: Optional[Callable[[], Any]] = None,
    ) -> CallbackSubscription:
        """Pushes events to ``callback`` on the running event loop (a coroutine
        function's result becomes a task). Call it from a coroutine."""
        return self.sync.on_change(collection, callback, id, snapshot, on_end, asyncio.get_running_loop())

    def on_peer_event(
        self, callback: Callable[[Event], Any], on_end: Optional[Callable[[], Any]] = None
    ) -> CallbackSubscription:
        """Pushes peer events to ``callback`` on the running event loop."""
        return self.sync.on_peer_event(callback, on_end, asyncio.get_running_loop())

    async def add_blob_file(self, path: Union[str, "os.PathLike[str]"], timeout: float = 3600.0) -> BlobInfo:
        """Adds a file's contents to the blob store (streamed and hashed, never loaded whole)."""
        return BlobInfo(*await _cancellable(_native.blob_add_file, self.sync.handle, os.fspath(path), _ms(timeout)))

    def fetch_blob(
        self,
        hash: str,
        providers: Sequence[str] = (),
        profile: Union[TransferProfile, str] = TransferProfile.TACTICAL,
        rate_limit: int = 0,
        expected_size: Optional[int] = None,
        priority: Union[Priority, str] = Priority.BULK,
    ) -> Transfer:
        """Starts fetching a blob (from ``providers``, or every connected peer that
        has it); ``profile`` is a :class:`TransferProfile` (or its name); ``rate_limit``
        in bytes per second (0: none); ``expected_size`` is the size the blob must
        have (a blob reference states it; None or 0: unknown): a provider
        claiming another size is not used, and when every provider does, the
        transfer raises :class:`CorruptError` without storing anything.
        ``priority`` (a :class:`Priority`) is the transfer's class: providers
        send it in that class (never above normal), so under a bandwidth budget
        a higher-class fetch overtakes a bulk one."""
        return _fetch(self.sync.handle, hash, providers, profile, rate_limit, expected_size, priority)

    async def discard_partial(self, hash: str) -> bool:
        """Throws away a blob's partial download so the next fetch starts from
        nothing; see :meth:`SyncNode.discard_partial`."""
        return await asyncio.to_thread(self.sync.discard_partial, hash)

    async def export_blob(self, hash: str, path: Union[str, "os.PathLike[str]"], timeout: float = 3600.0) -> int:
        """Copies a complete blob to ``path``; returns its size."""
        return await _cancellable(_native.blob_export, self.sync.handle, hash, os.fspath(path), _ms(timeout))

    def blob_status(self, hash: str) -> BlobStatus:
        """How much of a blob is here."""
        return self.sync.blob_status(hash)

    def blob_transfers(self) -> List[TransferStatus]:
        """The blob fetches running now (one per blob), in hash order."""
        return self.sync.blob_transfers()

    # ----- ephemeral messages and beacons (none of these waits) -----

    def publish(
        self,
        topic: str,
        payload: Any,
        ttl: float = 10.0,
        hop_limit: int = 2,
        multicast: bool = True,
        priority: Union[Priority, str] = Priority.HIGH,
    ) -> int:
        """See :meth:`SyncNode.publish` (it never waits)."""
        return self.sync.publish(topic, payload, ttl, hop_limit, multicast, priority)

    def subscribe_topic(self, filter: str, latest_only: bool = False) -> TopicSubscription:
        """Messages on topics (``async for``); see :meth:`SyncNode.subscribe_topic`."""
        return self.sync.subscribe_topic(filter, latest_only)

    def latest(self, filter: str = "*") -> list:
        """See :meth:`SyncNode.latest`."""
        return self.sync.latest(filter)

    def set_beacon(self, info: BeaconInfo) -> None:
        """See :meth:`SyncNode.set_beacon`."""
        self.sync.set_beacon(info)

    def clear_beacon(self) -> None:
        """See :meth:`SyncNode.clear_beacon`."""
        self.sync.clear_beacon()

    def beacons_near(self, lat: float, lon: float, radius_m: float) -> list:
        """See :meth:`SyncNode.beacons_near`."""
        return self.sync.beacons_near(lat, lon, radius_m)

    def beacons_in_cell(self, geohash: str, neighbours: bool = False) -> list:
        """See :meth:`SyncNode.beacons_in_cell`."""
        return self.sync.beacons_in_cell(geohash, neighbours)

    def beacons_since(self, since_ms: int = 0) -> list:
        """See :meth:`SyncNode.beacons_since`."""
        return self.sync.beacons_since(since_ms)

    def subscribe_beacons(self) -> BeaconSubscription:
        """Beacon events (``async for``)."""
        return self.sync.subscribe_beacons()

    def ephemeral_stats(self) -> EphemeralStats:
        """See :meth:`SyncNode.ephemeral_stats`."""
        return self.sync.ephemeral_stats()

    def set_policy(self, collection: Optional[str], policy: CollectionPolicy) -> None:
        """See :meth:`SyncNode.set_policy`."""
        self.sync.set_policy(collection, policy)

    def remove_policy(self, collection: str) -> bool:
        """See :meth:`SyncNode.remove_policy`."""
        return self.sync.remove_policy(collection)

    def policy(self, collection: str) -> CollectionPolicy:
        """See :meth:`SyncNode.policy`."""
        return self.sync.policy(collection)

    async def collect_garbage(self, timeout: float = 60.0) -> GarbageReport:
        """See :meth:`SyncNode.collect_garbage` (runs off the event loop)."""
        return await asyncio.to_thread(self.sync.collect_garbage, timeout)

    async def storage_stats(self, timeout: float = 60.0) -> StorageStats:
        """See :meth:`SyncNode.storage_stats` (runs off the event loop)."""
        return await asyncio.to_thread(self.sync.storage_stats, timeout)

    def set_bandwidth(self, bandwidth: Bandwidth) -> None:
        """See :meth:`SyncNode.set_bandwidth`."""
        self.sync.set_bandwidth(bandwidth)

    def bandwidth(self) -> Bandwidth:
        """See :meth:`SyncNode.bandwidth`."""
        return self.sync.bandwidth()

    def bandwidth_stats(self) -> BandwidthStats:
        """See :meth:`SyncNode.bandwidth_stats`."""
        return self.sync.bandwidth_stats()

    async def close(self, timeout: float = 5.0) -> None:
        """Closes the node. Idempotent."""
        await asyncio.to_thread(self.sync.close, timeout)

    async def __aenter__(self) -> "Node":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@atexit.register
def _close_all_at_exit() -> None:
    if os.getpid() != _PID:
        return
    for node in list(_open_nodes):
        try:
            node.close(1.0)
        except Exception:
            pass

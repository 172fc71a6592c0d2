"""Ephemeral messages and beacons: the types and subscriptions of the Python
package (see ``peat_mesh.SyncNode.publish`` and ``peat_mesh.SyncNode.set_beacon``).

A message is fire-and-forget: sent to every connected peer as one datagram,
never stored, dropped by every receiver once its ``ttl`` has passed. A beacon
is a node's position and state, kept by every node that hears it in a
bounded table until it expires."""

from __future__ import annotations

import enum
import json as _json
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

from . import _native
from ._polled import Polled

MAX_TOPIC = 64
MAX_PAYLOAD = 960


class NodeState(str, enum.Enum):
    """A node's operational state, as its beacon says."""

    UNKNOWN = "unknown"
    READY = "ready"
    BUSY = "busy"
    DEGRADED = "degraded"
    OFFLINE = "offline"

    def __str__(self) -> str:
        return self.value


class BeaconEventKind(str, enum.Enum):
    """What happened to a node's entry in the beacon table."""

    APPEARED = "appeared"
    UPDATED = "updated"
    EXPIRED = "expired"
    EVICTED = "evicted"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Ephemeral:
    """Ephemeral options at open. ``beacon_preset`` is "default", "tactical"
    or "distributed"; ``beacon_interval``/``beacon_ttl`` (seconds) override
    it. ``multicast_group`` ("ADDR:PORT", an IPv4 multicast group or a
    broadcast address) with ``multicast_interface`` (a local IPv4 address)
    turns on the secured multicast path: nothing is sent to any group
    unless both are given."""

    beacon_preset: str = "default"
    beacon_interval: Optional[float] = None
    beacon_ttl: Optional[float] = None
    multicast_group: Optional[str] = None
    multicast_interface: Optional[str] = None


def _opt_ms(what: str, seconds: Optional[float]) -> int:
    if seconds is None:
        return 0
    if seconds <= 0:
        raise _native.InvalidArgumentError(f"{what} must be positive, got {seconds!r}")
    return int(round(seconds * 1000))


def ephemeral_arg(e: Optional[Ephemeral]) -> tuple:
    """The native ``node_open`` argument for ``e``."""
    e = e if e is not None else Ephemeral()
    return (
        e.beacon_preset or "",
        _opt_ms("beacon_interval", e.beacon_interval),
        _opt_ms("beacon_ttl", e.beacon_ttl),
        e.multicast_group or "",
        e.multicast_interface or "",
    )


@dataclass(frozen=True)
class Message:
    """A message received. ``via_peer`` is the peer it came from (its
    publisher or a forwarder), None when it came on the multicast path;
    ``ttl_left`` is the seconds left before it expires."""

    origin: str
    topic: str
    payload: bytes
    json: bool
    seq: int
    sent_at_ms: int
    hops: int
    via_peer: Optional[str]
    ttl_left: float

    def value(self) -> Any:
        """The payload decoded as JSON (for messages published as JSON)."""
        return _json.loads(self.payload)


@dataclass(frozen=True)
class BeaconInfo:
    """What a node says about itself in its beacon."""

    lat: float
    lon: float
    alt_m: Optional[float] = None
    role: str = ""
    level: int = 0
    capabilities: Tuple[str, ...] = ()
    state: NodeState = NodeState.UNKNOWN
    battery_pct: Optional[int] = None
    cpu_pct: Optional[int] = None
    bandwidth_kbps: Optional[int] = None


@dataclass(frozen=True)
class Beacon:
    """A beacon heard. ``distance_m`` is set by :meth:`SyncNode.beacons_near`."""

    node: str
    info: BeaconInfo
    geohash: str
    timestamp_ms: int
    received_ms: int
    hops: int
    distance_m: Optional[float] = None


@dataclass(frozen=True)
class BeaconEvent:
    """A change of the beacon table: ``beacon`` is set for appeared/updated."""

    kind: BeaconEventKind
    node: str
    beacon: Optional[Beacon] = None


@dataclass(frozen=True)
class EphemeralStats:
    """Counters of a node's ephemeral path since it opened."""

    published: int
    received: int
    delivered: int
    forwarded: int
    duplicates: int
    expired: int
    malformed: int
    bad_signature: int
    refused_sealed: int  # multicast: another formation or key epoch, or did not open
    rate_limited: int
    multicast_sent: int


def message(raw: tuple) -> Message:
    origin, topic, payload, js, seq, sent_at_ms, hops, via_peer, ttl_left_ms = raw
    return Message(origin, topic, bytes(payload), js, seq, sent_at_ms, hops, via_peer, ttl_left_ms / 1000)


def beacon(raw: tuple) -> Beacon:
    node, info, geohash, timestamp_ms, received_ms, hops, distance_m = raw
    lat, lon, alt, role, level, caps, state, battery, cpu, bw = info
    return Beacon(
        node,
        BeaconInfo(lat, lon, alt, role, level, tuple(caps), NodeState(state), battery, cpu, bw),
        geohash,
        timestamp_ms,
        received_ms,
        hops,
        distance_m,
    )


def info_arg(info: BeaconInfo) -> tuple:
    """The native beacon tuple (ranges are checked by the SDK)."""
    if not isinstance(info, BeaconInfo):
        raise TypeError(f"a beacon is a peat_mesh.BeaconInfo, got {info!r}")
    return (
        float(info.lat),
        float(info.lon),
        None if info.alt_m is None else float(info.alt_m),
        info.role,
        info.level,
        list(info.capabilities),
        NodeState(info.state).value,
        info.battery_pct,
        info.cpu_pct,
        info.bandwidth_kbps,
    )


def publish_args(payload: Any, ttl: float, hop_limit: int) -> Tuple[bytes, bool, int, int]:
    """(payload bytes, is JSON, ttl ms, hop limit): bytes go as they are,
    anything else as JSON."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        data, js = bytes(payload), False
    else:
        data, js = _json.dumps(payload, separators=(",", ":")).encode(), True
    if ttl <= 0:
        raise _native.InvalidArgumentError(f"ttl must be positive, got {ttl!r}")
    return data, js, max(1, int(round(ttl * 1000))), hop_limit


class TopicSubscription(Polled):
    """Messages on topics, in arrival order (expired ones never): iterate it
    (``for`` / ``async for``) or call :meth:`next`. A latest-only
    subscription holds only the newest message of each origin and topic."""

    def _next(self, timeout_ms: int) -> Any:
        raw = _native.next_message(self._handle, timeout_ms)
        if raw is None:
            return None
        if raw[0] == "lagged":
            from . import Lagged

            return Lagged(raw[1])
        return message(raw[1])


class BeaconSubscription(Polled):
    """Beacon table events: appeared, updated, expired, evicted."""

    def _next(self, timeout_ms: int) -> Any:
        raw = _native.next_beacon_event(self._handle, timeout_ms)
        if raw is None:
            return None
        kind, what = raw
        if kind == "lagged":
            from . import Lagged

            return Lagged(what)
        if kind in ("appeared", "updated"):
            b = beacon(what)
            return BeaconEvent(BeaconEventKind(kind), b.node, b)
        return BeaconEvent(BeaconEventKind(kind), what)


def beacons(raws: Sequence[tuple]) -> list:
    return [beacon(r) for r in raws]

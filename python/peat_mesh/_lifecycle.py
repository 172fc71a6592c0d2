"""Collection policies and the data lifecycle: the types of the Python package
(see ``peat_mesh.SyncNode.set_policy`` and ``peat_mesh.SyncNode.collect_garbage``).

A policy says how much a collection's data matters (its priority class on
the wire), how much history travels (its sync mode), how long documents live
(``ttl``, from their newest change, the same on every replica), how many a
node keeps (retention: oldest removed first) and whether a delete or a
concurrent edit wins. Give every node of a formation the same policies."""

from __future__ import annotations

import enum
import json as _json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional


class Priority(str, enum.Enum):
    """A collection's class on the wire: higher classes go first on every link."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"
    BULK = "bulk"

    def __str__(self) -> str:
        return self.value


class SyncMode(str, enum.Enum):
    """How much history travels: all of it, only the current state, or the
    history younger than ``CollectionPolicy.window``."""

    FULL = "full"
    LATEST_ONLY = "latest_only"
    WINDOWED = "windowed"

    def __str__(self) -> str:
        return self.value


class DeleteRule(str, enum.Enum):
    """How a delete and an edit it did not see resolve."""

    DELETE_WINS = "delete_wins"
    UPDATE_WINS = "update_wins"

    def __str__(self) -> str:
        return self.value


class SignaturePolicy(str, enum.Enum):
    """What a node does with changes of a collection according to their
    authors' signatures: ``OFF`` (the default: nothing signed or checked),
    ``ACCEPT`` (its changes signed, peers' checked and kept, all applied),
    ``FLAG`` (the same, unsigned or forged ones counted and logged),
    ``REJECT`` (unsigned or forged changes, and those built on one, never
    applied)."""

    OFF = "off"
    ACCEPT = "accept"
    FLAG = "flag"
    REJECT = "reject"

    def __str__(self) -> str:
        return self.value


def _secs(what: str, v: Optional[float]) -> Optional[int]:
    if v is None:
        return None
    if v != v or v <= 0 or int(v) != v:  # NaN, not positive, not whole seconds
        raise ValueError(f"{what} must be a positive whole number of seconds, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class CollectionPolicy:
    """One collection's policy. ``None`` fields take the default policy's
    value (priority normal, full sync, no ttl, tombstones kept 7 days, no
    retention bound, blobs fetched on demand, delete wins, evictable by the
    storage budget). Lifetimes are in seconds. ``keep_until_delivered``: the
    storage budget never evicts a document written here until a peer is known
    to hold its current version. ``signatures``: see :class:`SignaturePolicy`."""

    priority: Optional[Priority] = None
    sync: Optional[SyncMode] = None
    window: Optional[float] = None
    ttl: Optional[float] = None
    tombstone_ttl: Optional[float] = None
    max_documents: Optional[int] = None
    max_bytes: Optional[int] = None
    eager_blobs: Optional[bool] = None
    delete: Optional[DeleteRule] = None
    keep_until_delivered: Optional[bool] = None
    signatures: Optional[SignaturePolicy] = None

    def to_dict(self) -> Dict[str, Any]:
        """The policy in the SDK's JSON form (absent fields left out)."""
        d: Dict[str, Any] = {
            "priority": Priority(self.priority).value if self.priority is not None else None,
            "sync": SyncMode(self.sync).value if self.sync is not None else None,
            "window_secs": _secs("window", self.window),
            "ttl_secs": _secs("ttl", self.ttl),
            "tombstone_ttl_secs": _secs("tombstone_ttl", self.tombstone_ttl),
            "max_documents": self.max_documents,
            "max_bytes": self.max_bytes,
            "eager_blobs": self.eager_blobs,
            "delete": DeleteRule(self.delete).value if self.delete is not None else None,
            "keep_until_delivered": self.keep_until_delivered,
            "signatures": SignaturePolicy(self.signatures).value if self.signatures is not None else None,
        }
        return {k: v for k, v in d.items() if v is not None}

    def to_json(self) -> str:
        return _json.dumps(self.to_dict())

    @staticmethod
    def from_json(text: str) -> "CollectionPolicy":
        """A policy from the SDK's JSON form (every field, as the node gives it)."""
        d = _json.loads(text)
        return CollectionPolicy(
            priority=Priority(d["priority"]) if "priority" in d else None,
            sync=SyncMode(d["sync"]) if "sync" in d else None,
            window=d.get("window_secs"),
            ttl=d.get("ttl_secs"),
            tombstone_ttl=d.get("tombstone_ttl_secs"),
            max_documents=d.get("max_documents"),
            max_bytes=d.get("max_bytes"),
            eager_blobs=d.get("eager_blobs"),
            delete=DeleteRule(d["delete"]) if "delete" in d else None,
            keep_until_delivered=d.get("keep_until_delivered"),
            signatures=SignaturePolicy(d["signatures"]) if "signatures" in d else None,
        )


def policies_json(
    policies: Optional[Mapping[str, CollectionPolicy]], default: Optional[CollectionPolicy]
) -> str:
    """The ``node_open`` argument: "" when nothing is set."""
    if not policies and default is None:
        return ""
    return _json.dumps(
        {
            "default": default.to_dict() if default is not None else {},
            "collections": {c: p.to_dict() for c, p in (policies or {}).items()},
        }
    )


@dataclass(frozen=True)
class GarbageReport:
    """What one garbage collection removed."""

    expired_documents: int
    purged_tombstones: int
    evicted_documents: int
    removed_blobs: int
    blob_bytes_freed: int
    took_ms: int
    budget_evicted: int


@dataclass(frozen=True)
class StorageStats:
    """What the node stores now and what its lifecycle removed or refused since open."""

    documents: int
    tombstones: int
    document_bytes: int
    expired_total: int
    tombstones_purged_total: int
    evicted_total: int
    refused_expired_total: int
    refused_evicted_total: int
    revived_total: int
    gc_runs: int
    budget_evicted_total: int


@dataclass(frozen=True)
class Bandwidth:
    """Bandwidth budgets, in bytes per second: ``per_peer`` caps what the node
    sends to each peer, ``links`` what it sends over each named link (all
    peers together; ``"socket"`` is the node's UDP socket). Every byte waits
    for both, higher priority classes first; ephemeral messages a budget has
    no room for are dropped and counted. ``Bandwidth()`` lifts every limit."""

    per_peer: Optional[int] = None
    links: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        d: dict = {}
        if self.per_peer is not None:
            d["per_peer"] = self.per_peer
        if self.links:
            d["links"] = dict(self.links)
        return _json.dumps(d)

    @staticmethod
    def from_json(text: str) -> "Bandwidth":
        d = _json.loads(text)
        return Bandwidth(per_peer=d.get("per_peer"), links=dict(d.get("links", {})))


def bandwidth_json(bandwidth: Optional[Bandwidth]) -> str:
    """The ``node_open`` argument: "" when no budget is set."""
    if bandwidth is None:
        return ""
    if not isinstance(bandwidth, Bandwidth):
        raise TypeError(f"bandwidth must be a peat_mesh.Bandwidth, got {bandwidth!r}")
    return bandwidth.to_json()


@dataclass(frozen=True)
class BandwidthStats:
    """What the bandwidth budgets did since the node opened."""

    bytes_limited: int
    waits: int
    waited_ms: int
    dropped_datagrams: int

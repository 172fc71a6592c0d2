"""Trust: a formation authority, the membership certificates it issues to
devices, trust settings at open, and revocations that spread and bite (see
``peat_mesh.SyncNode.membership`` and ``peat_mesh.SyncNode.revoke``).

The authority's secret never needs to reach a node: keep it offline,
owner-only. A member's trust settings name the authority's public key; a
node in certificate mode admits only peers whose certificate chain leads to
that key, is in its validity window and is not revoked. Certificates and
revocation records travel as hex text."""

from __future__ import annotations

import asyncio
import enum
import json as _json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import List, Optional, Sequence

from . import _native


class Tier(str, enum.Enum):
    """Where a device sits in the formation (a delegate issues lower tiers only)."""

    ENTERPRISE = "enterprise"
    REGIONAL = "regional"
    TACTICAL = "tactical"
    EDGE = "edge"

    def __str__(self) -> str:
        return self.value


class Permission(enum.IntFlag):
    """What a certificate lets its device do."""

    NONE = 0
    RELAY = 1
    ENROLL = 2
    ADMIN = 4


class AdmissionMode(str, enum.Enum):
    """What admission asks of peers: the formation secret, a certificate
    chain, or both."""

    SECRET = "secret"
    CERTIFICATE = "certificate"
    BOTH = "both"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class CertificateInfo:
    """What a certificate says. Ids and keys are 64 hex digits; times Unix ms."""

    id: str
    formation_id: str
    subject: str
    issuer: str
    tier: Optional[Tier]
    permissions: Permission
    not_before_ms: int
    not_after_ms: int


def certificate_info(certificate: str) -> CertificateInfo:
    """What ``certificate`` (hex) says; :class:`InvalidArgumentError` if it is
    not one."""
    i, f, s, iss, tier, perms, nb, na = _native.certificate_info(certificate)
    return CertificateInfo(i, f, s, iss, Tier(tier) if tier else None, Permission(perms), nb, na)


def rotate_identity(data_dir: str) -> str:
    """Gives the node of ``data_dir`` a new identity key, used from its next
    open (close it first); returns the new node id. Its documents, blobs and
    revocations stay; its stored certificate chain (of the old key) is dropped
    at the next open: certify the new key and revoke the old certificate.
    :class:`NotFoundError` if the dir has no identity."""
    return _native.rotate_identity(str(data_dir))


@dataclass(frozen=True)
class Trust:
    """A node's trust settings at open: the authority's public key (hex), the
    admission mode, and the node's own chain (hex, own certificate first;
    empty: the chain it stored before, if any)."""

    authority: str
    mode: AdmissionMode = AdmissionMode.CERTIFICATE
    chain: Sequence[str] = field(default_factory=tuple)

    def to_json(self) -> str:
        return _json.dumps({"authority": self.authority, "mode": str(self.mode), "chain": list(self.chain)})


def trust_json(trust: Optional[Trust]) -> str:
    """The ``node_open`` argument: "" without trust settings."""
    if trust is None:
        return ""
    if not isinstance(trust, Trust):
        raise TypeError(f"trust must be a peat_mesh.Trust, got {trust!r}")
    return trust.to_json()


class Authority:
    """A formation's authority: its 32-byte secret. ``Authority.generate``
    makes a new one; keep :attr:`secret` offline. ``repr`` never shows it."""

    def __init__(self, formation_id: str, secret: bytes) -> None:
        self.formation_id = formation_id
        self.secret = bytes(secret)
        # checks the secret (32 bytes, not all zeros) at once
        self.public_key = _native.authority_public_key(formation_id, self.secret)

    def __repr__(self) -> str:
        return f"Authority(formation_id={self.formation_id!r}, public_key={self.public_key!r})"

    @classmethod
    def generate(cls, formation_id: str) -> "Authority":
        return cls(formation_id, _native.generate_authority_secret())

    def trust(self, mode: AdmissionMode = AdmissionMode.CERTIFICATE, chain: Sequence[str] = ()) -> Trust:
        """Trust settings naming this authority."""
        return Trust(self.public_key, mode, tuple(chain))

    def issue(
        self,
        subject: str,
        tier: Tier = Tier.TACTICAL,
        permissions: Permission = Permission.RELAY,
        valid_for: timedelta = timedelta(days=30),
        not_before_ms: int = 0,
    ) -> str:
        """A certificate (hex) for node ``subject``; ``not_before_ms`` 0 is now."""
        ms = int(valid_for.total_seconds() * 1000)
        if ms <= 0:
            raise ValueError(f"valid_for must be positive, got {valid_for!r}")
        return _native.authority_issue(
            self.formation_id, self.secret, subject, str(Tier(tier)), int(permissions), int(not_before_ms), ms
        )

    def revoke(self, certificate: str) -> str:
        """A revocation record (hex) of ``certificate``: hand it to any member
        (:meth:`SyncNode.add_revocation`)."""
        return _native.authority_revoke(self.formation_id, self.secret, certificate)


@dataclass(frozen=True)
class Membership:
    """Where a node stands: ``state`` is "secret_only" (no trust settings),
    "no_certificate", "valid", "revoked" or "invalid" (with ``reason``)."""

    state: str
    tier: Optional[Tier]
    permissions: Permission
    not_after_ms: int
    revoked_at_ms: int
    reason: str


@dataclass(frozen=True)
class TrustStats:
    """A node's admission mode, revocation and change-signature counters
    (signature counters since the node opened)."""

    admission_mode: AdmissionMode
    revocations: int
    refused_revocations: int
    #: Changes written here and signed.
    changes_signed: int = 0
    #: Received changes whose signature checked out.
    signatures_verified: int = 0
    #: Received changes whose signature did not (forged or damaged).
    signatures_forged: int = 0
    #: Received changes without a signature (in collections not ``off``).
    changes_unsigned: int = 0
    #: Unsigned or forged changes applied in ``flag`` collections.
    changes_flagged: int = 0
    #: Changes refused in ``reject`` collections.
    changes_rejected: int = 0


@dataclass(frozen=True)
class ChangeAuthor:
    """One change of a document and who signed it."""

    #: The Automerge change hash (64 hex digits).
    hash: str
    #: The time its writer stamped it with (Unix ms).
    time_ms: int
    #: The node id that signed it, ``None`` when unsigned.
    author: Optional[str]
    #: Whether the signature checks out (False when unsigned).
    valid: bool


class SyncTrustMethods:
    """Trust calls of :class:`SyncNode` (``self.handle`` is the node)."""

    handle: int

    def membership(self) -> Membership:
        """Where this node stands in its formation."""
        s, tier, perms, na, ra, reason = _native.membership(self.handle)
        return Membership(s, Tier(tier) if tier else None, Permission(perms), na, ra, reason)

    def certificate_chain(self) -> list:
        """This node's certificate chain (hex, own first)."""
        return list(_native.certificate_chain(self.handle))

    def set_certificate_chain(self, chain: Sequence[str]) -> None:
        """Replaces this node's chain (hex, own first) and stores it; it must
        certify this node and lead to the authority
        (:class:`InvalidArgumentError` otherwise, and nothing changes)."""
        _native.set_certificate_chain(self.handle, list(chain))

    def peer_certificate_chain(self, peer_id: str) -> list:
        """The chain a connected peer showed at admission (empty if none)."""
        return list(_native.peer_certificate_chain(self.handle, peer_id))

    def revoke(self, certificate: str) -> bool:
        """Revokes ``certificate`` with this node's key (an admin, or its
        issuer holding the enroll permission): it spreads, and every node that
        learns it cuts the holder off and refuses it. False if revoked already."""
        return bool(_native.revoke(self.handle, certificate))

    def add_revocation(self, record: str) -> bool:
        """Adds a revocation record (hex) made elsewhere (the authority's):
        checked, kept, spread and enforced. False if known already."""
        return bool(_native.add_revocation(self.handle, record))

    def trust_stats(self) -> TrustStats:
        """The admission mode and revocation counters."""
        mode, n, refused, counts = _native.trust_stats(self.handle)
        return TrustStats(AdmissionMode(mode), n, refused, *counts)

    def authors(self, collection: str, id: str) -> List[ChangeAuthor]:
        """Every change of a document, oldest first, with who signed it and
        whether the signature checks out (checked again by this call).
        Raises :class:`NotFoundError` if the document does not exist here."""
        return [
            ChangeAuthor(h, t, a or None, v)
            for h, t, a, v in _native.authors(self.handle, collection, id)
        ]

    def create_enrollment_token(
        self, tier: Tier, permissions: Permission = Permission.NONE, ttl: timedelta = timedelta(hours=1)
    ) -> str:
        """A one-time enrollment token (64 hex digits; hand it to the device
        out of band) granting ``tier`` (below this node's own) and
        ``permissions`` (within this node's), redeemable for ``ttl``. This
        node's chain must hold :attr:`Permission.ENROLL`."""
        ms = int(ttl.total_seconds() * 1000)
        if ms <= 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        return _native.create_enrollment_token(self.handle, str(Tier(tier)), int(permissions), ms)

    def enroll(self, enroller: str, token: str, timeout: float = 10.0) -> list:
        """Enrolls with ``enroller`` (``NODEID@HOST:PORT``) using its one-time
        ``token``: returns the certificate chain it answered with (hex, own
        first), already stored and in use. A used, expired or unknown token
        raises :class:`AdmissionRefusedError` with the reason, and
        :meth:`membership` then says "denied"."""
        return list(_native.enroll(self.handle, enroller, token, int(timeout * 1000), 0))


class AsyncTrustMethods:
    """Trust calls of :class:`Node` (``self.sync`` is its :class:`SyncNode`)."""

    sync: SyncTrustMethods

    def membership(self) -> Membership:
        """See :meth:`SyncNode.membership`."""
        return self.sync.membership()

    def certificate_chain(self) -> list:
        """See :meth:`SyncNode.certificate_chain`."""
        return self.sync.certificate_chain()

    def set_certificate_chain(self, chain: Sequence[str]) -> None:
        """See :meth:`SyncNode.set_certificate_chain`."""
        self.sync.set_certificate_chain(chain)

    def peer_certificate_chain(self, peer_id: str) -> list:
        """See :meth:`SyncNode.peer_certificate_chain`."""
        return self.sync.peer_certificate_chain(peer_id)

    async def revoke(self, certificate: str) -> bool:
        """See :meth:`SyncNode.revoke` (runs off the event loop)."""
        return await asyncio.to_thread(self.sync.revoke, certificate)

    async def add_revocation(self, record: str) -> bool:
        """See :meth:`SyncNode.add_revocation` (runs off the event loop)."""
        return await asyncio.to_thread(self.sync.add_revocation, record)

    def trust_stats(self) -> TrustStats:
        """See :meth:`SyncNode.trust_stats`."""
        return self.sync.trust_stats()

    async def authors(self, collection: str, id: str) -> List[ChangeAuthor]:
        """See :meth:`SyncNode.authors` (runs off the event loop)."""
        return await asyncio.to_thread(self.sync.authors, collection, id)

    def create_enrollment_token(
        self, tier: Tier, permissions: Permission = Permission.NONE, ttl: timedelta = timedelta(hours=1)
    ) -> str:
        """See :meth:`SyncNode.create_enrollment_token`."""
        return self.sync.create_enrollment_token(tier, permissions, ttl)

    async def enroll(self, enroller: str, token: str, timeout: float = 10.0) -> list:
        """See :meth:`SyncNode.enroll`; cancelling the task stops the enrollment."""
        from . import _cancellable  # the package's helper (imported late: no cycle)

        handle = self.sync.handle  # type: ignore[attr-defined]
        return list(await _cancellable(_native.enroll, handle, enroller, token, int(timeout * 1000)))

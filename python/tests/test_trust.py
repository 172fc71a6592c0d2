"""Conformance scenario 28 in Python: a formation authority, certificates set
at runtime, admission by certificate, a node without one refused with the
reason, a revocation that cuts the peer off and keeps it out, bad input
refused; with the blocking and the asyncio API."""

import asyncio
import time
from datetime import timedelta

import pytest

import peat_mesh
from peat_mesh import AdmissionMode, Authority, Permission, PeerEventKind, Tier, Trust

from conftest import SECRET


def _wait_for(sub, pred, timeout=10.0):
    while True:
        ev = sub.next(timeout=timeout)
        assert ev is not None, "the event never came"
        if isinstance(ev, peat_mesh.PeerEvent) and pred(ev):
            return ev


def test_certificates_admission_and_revocation(tmp_path):
    auth = Authority.generate("py")
    assert len(auth.public_key) == 64 and auth.secret.hex() not in repr(auth)
    trust = auth.trust()
    assert trust == Trust(auth.public_key, AdmissionMode.CERTIFICATE, ())
    open_ = lambda name, **kw: peat_mesh.SyncNode.open(str(tmp_path / name), "py", SECRET, listen="127.0.0.1:0", **kw)
    with open_("a", trust=trust) as a, open_("b", trust=trust) as b, open_("c") as c:
        assert a.membership().state == "no_certificate"
        assert c.membership().state == "secret_only"
        st = a.trust_stats()
        assert (st.admission_mode, st.revocations) == (AdmissionMode.CERTIFICATE, 0)
        certs = {}
        for n in (a, b):
            cert = auth.issue(n.id, Tier.TACTICAL, Permission.RELAY, valid_for=timedelta(hours=1))
            info = peat_mesh.certificate_info(cert)
            assert (info.subject, info.tier, info.permissions) == (n.id, Tier.TACTICAL, Permission.RELAY)
            assert (info.formation_id, info.issuer) == ("py", auth.public_key)
            assert info.not_after_ms - info.not_before_ms == 3_600_000
            n.set_certificate_chain([cert])
            assert n.certificate_chain() == [cert]
            m = n.membership()
            assert (m.state, m.tier, m.permissions) == ("valid", Tier.TACTICAL, Permission.RELAY)
            certs[n.id] = cert
        # another node's certificate is not this node's chain
        with pytest.raises(peat_mesh.InvalidArgumentError):
            a.set_certificate_chain([certs[b.id]])
        with a.subscribe_peers() as events:
            b.connect(a.addrs()[0])
            # a's side registers the connection when it publishes Connected
            _wait_for(events, lambda e: e.kind == PeerEventKind.CONNECTED and e.peer == b.id)
            assert a.peer_certificate_chain(b.id) == [certs[b.id]]
            # a node with the formation secret only is refused, and told why
            with pytest.raises(peat_mesh.AdmissionRefusedError, match="certificate required"):
                c.connect(a.addrs()[0])
            # the authority revokes b: a learns it, cuts b off, and refuses it
            with b.subscribe_peers() as b_events:
                record = auth.revoke(certs[b.id])
                assert a.add_revocation(record) is True
                assert a.add_revocation(record) is False
                _wait_for(events, lambda e: e.kind == PeerEventKind.REVOKED and e.peer == b.id)
                _wait_for(events, lambda e: e.kind == PeerEventKind.DISCONNECTED and e.peer == b.id)
                # b dials again only once it has seen the close: until then its
                # connection still counts as live and connect returns at once
                _wait_for(b_events, lambda e: e.kind == PeerEventKind.DISCONNECTED and e.peer == a.id)
        assert a.trust_stats().revocations == 1
        with pytest.raises(peat_mesh.AdmissionRefusedError, match="revoked"):
            b.connect(a.addrs()[0])
        # bad input
        for bad in (
            lambda: peat_mesh.certificate_info("zz"),
            lambda: auth.issue("not-a-node"),
            lambda: a.add_revocation("00"),
            lambda: a.revoke("abc"),
            lambda: Authority("py", bytes(32)),
            lambda: Authority("py", bytes(31)),
        ):
            with pytest.raises(peat_mesh.InvalidArgumentError):
                bad()
        with pytest.raises(ValueError):
            auth.issue(a.id, valid_for=timedelta(0))
        with pytest.raises(ValueError):
            auth.issue(a.id, tier="general")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        open_("d", trust={"authority": auth.public_key})  # type: ignore[arg-type]
    with pytest.raises(peat_mesh.InvalidArgumentError):
        open_("e", trust=Trust("00"))


def test_trust_with_asyncio(tmp_path):
    async def main() -> None:
        auth = Authority.generate("py")
        async with await peat_mesh.Node.open(
            str(tmp_path / "a"), "py", SECRET, listen="127.0.0.1:0", trust=auth.trust(AdmissionMode.BOTH)
        ) as a:
            cert = auth.issue(a.id)
            a.set_certificate_chain([cert])
            assert a.membership().state == "valid"
            assert a.trust_stats().admission_mode == AdmissionMode.BOTH
            assert await a.add_revocation(auth.revoke(cert)) is True
            assert a.membership().state == "revoked"
            assert a.membership().revoked_at_ms > 0

    asyncio.run(main())


def test_enrollment(tmp_path):
    auth = Authority.generate("py")
    trust = auth.trust()
    open_ = lambda name: peat_mesh.SyncNode.open(str(tmp_path / name), "py", SECRET, listen="127.0.0.1:0", trust=trust)
    with open_("e") as e, open_("d") as d, open_("d2") as d2:
        cert = auth.issue(e.id, Tier.REGIONAL, Permission.ENROLL | Permission.RELAY)
        e.set_certificate_chain([cert])
        token = e.create_enrollment_token(Tier.EDGE, Permission.RELAY, ttl=timedelta(minutes=10))
        assert len(token) == 64
        chain = d.enroll(e.addrs()[0], token)
        assert len(chain) == 2 and chain[1] == cert
        info = peat_mesh.certificate_info(chain[0])
        assert (info.subject, info.issuer, info.tier) == (d.id, e.id, Tier.EDGE)
        m = d.membership()
        assert (m.state, m.tier) == ("valid", Tier.EDGE)
        with pytest.raises(peat_mesh.AdmissionRefusedError, match="already used"):
            d2.enroll(e.addrs()[0], token)
        m = d2.membership()
        assert m.state == "denied" and "already used" in m.reason
        for bad in (
            lambda: e.create_enrollment_token(Tier.REGIONAL),
            lambda: e.create_enrollment_token(Tier.EDGE, Permission.ADMIN),
            lambda: d2.create_enrollment_token(Tier.EDGE),
            lambda: d2.enroll(e.addrs()[0], "zz"),
        ):
            with pytest.raises(peat_mesh.InvalidArgumentError):
                bad()
        with pytest.raises(ValueError):
            e.create_enrollment_token(Tier.EDGE, ttl=timedelta(0))


def test_enrollment_with_asyncio(tmp_path):
    async def main() -> None:
        auth = Authority.generate("py")
        trust = auth.trust()
        async with await peat_mesh.Node.open(
            str(tmp_path / "e"), "py", SECRET, listen="127.0.0.1:0", trust=trust
        ) as e, await peat_mesh.Node.open(str(tmp_path / "d"), "py", SECRET, listen="127.0.0.1:0", trust=trust) as d:
            e.set_certificate_chain([auth.issue(e.id, Tier.REGIONAL, Permission.ENROLL)])
            token = e.create_enrollment_token(Tier.EDGE)
            chain = await d.enroll(e.addrs()[0], token)
            assert len(chain) == 2 and d.membership().state == "valid"

    asyncio.run(main())


def test_key_rotation(tmp_path):
    d = str(tmp_path / "n")
    with pytest.raises(peat_mesh.NotFoundError):
        peat_mesh.rotate_identity(d)
    with peat_mesh.SyncNode.open(d, "py", SECRET, listen="127.0.0.1:0") as n:
        old = n.id
        n.put("notes", "n1", {"kept": True})
    new = peat_mesh.rotate_identity(d)
    assert new != old and len(new) == 64
    with peat_mesh.SyncNode.open(d, "py", SECRET, listen="127.0.0.1:0") as n:
        assert n.id == new
        assert n.get("notes", "n1") == {"kept": True}


def test_signed_changes(tmp_path):
    """Scenario 31: changes signed by their writer and checked by a node
    that rejects unsigned ones; authors answered per change."""
    from peat_mesh import ChangeAuthor, CollectionPolicy, SignaturePolicy

    reject = {"orders": CollectionPolicy(signatures=SignaturePolicy.REJECT)}
    open_ = lambda name, **kw: peat_mesh.SyncNode.open(str(tmp_path / name), "py", SECRET, listen="127.0.0.1:0", **kw)
    with open_("a", policies=reject) as a, open_("b", policies=reject) as b, open_("u") as u:
        assert b.policy("orders").signatures == SignaturePolicy.REJECT
        with b.subscribe("orders") as sub:
            b.connect(a.addrs()[0])
            u.connect(b.addrs()[0])
            u.put("orders", "unsigned", {"v": 0})
            a.put("orders", "o1", {"v": 1})
            while True:
                ev = sub.next(timeout=10.0)
                assert ev is not None, "o1 never arrived"
                if ev.id == "o1":
                    break
        (c,) = b.authors("orders", "o1")
        assert isinstance(c, ChangeAuthor) and c.author == a.id and c.valid
        assert len(c.hash) == 64 and c.time_ms > 0
        for _ in range(500):
            st = b.trust_stats()
            if st.changes_rejected >= 1:
                break
            time.sleep(0.01)
        assert st.changes_rejected >= 1 and st.signatures_verified >= 1 and st.changes_unsigned >= 1
        assert b.get("orders", "unsigned") is None
        assert a.trust_stats().changes_signed >= 1
        (mine,) = u.authors("orders", "unsigned")
        assert (mine.author, mine.valid) == (None, False)
        with pytest.raises(peat_mesh.NotFoundError):
            b.authors("orders", "nope")
        with pytest.raises(peat_mesh.InvalidArgumentError):
            b.authors("orders", "")

        async def main():
            an = peat_mesh.Node(b)
            (x,) = await an.authors("orders", "o1")
            assert x == c

        asyncio.run(main())

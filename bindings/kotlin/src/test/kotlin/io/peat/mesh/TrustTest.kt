package io.peat.mesh

import io.peat.mesh.uniffi.PeatException as Err
import io.peat.mesh.uniffi.PeerEventRecord
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.hours
import kotlin.time.Duration.Companion.minutes

/**
 * Conformance scenario 28: a formation authority, certificates set at
 * runtime, admission by certificate, a node without one refused with the
 * reason, a revocation that cuts the peer off and keeps it out, bad input.
 */
class TrustTest {
    /** Loads the library (Support's initialiser) before the first call. */
    private val lib = Support.libPath

    @Test
    fun certificatesAdmissionAndRevocation() = runBlocking<Unit> {
        val before = PeatMesh.liveHandles()
        val auth = Authority.generate("kotlin")
        assertEquals(64, auth.publicKey.length)
        assertFalse(auth.toString().contains(auth.secret().joinToString("") { "%02x".format(it) }))
        val trust = auth.trust()
        assertEquals(Trust(auth.publicKey, AdmissionMode.CERTIFICATE), trust)
        val open = { t: Trust? -> runBlocking { Node.open(Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", trust = t) } }
        open(trust).use { a ->
            open(trust).use { b ->
                open(null).use { c ->
                    assertEquals("no_certificate", a.membership().state)
                    assertEquals("secret_only", c.membership().state)
                    assertEquals(TrustStats(AdmissionMode.CERTIFICATE, 0, 0), a.trustStats())
                    val certs = mutableMapOf<String, String>()
                    for (n in listOf(a, b)) {
                        val cert = auth.issue(n.id, Tier.TACTICAL, Permission.RELAY, validFor = 1.hours)
                        val info = Authority.certificateInfo(cert)
                        assertEquals(n.id, info.subject)
                        assertEquals("tactical", info.tier)
                        assertEquals(1u, info.permissions)
                        assertEquals("kotlin", info.formationId)
                        assertEquals(auth.publicKey, info.issuer)
                        assertEquals(3_600_000uL, info.notAfterMs - info.notBeforeMs)
                        n.setCertificateChain(listOf(cert))
                        assertEquals(listOf(cert), n.certificateChain())
                        val m = n.membership()
                        assertEquals(Triple("valid", Tier.TACTICAL, Permission.RELAY), Triple(m.state, m.tier, m.permissions))
                        certs[n.id] = cert
                    }
                    // another node's certificate is not this node's chain
                    assertFailsWith<Err.InvalidArgument> { a.setCertificateChain(listOf(certs.getValue(b.id))) }
                    val events = Channel<PeerEventRecord>(Channel.UNLIMITED)
                    // subscribed when this returns (a Flow subscribes only once collected)
                    val subscription = a.onPeerEvent { events.trySend(it) }
                    b.connect(a.addrs[0])
                    // a's side registers the connection when it publishes Connected
                    withTimeout(10_000) {
                        while (true) {
                            val e = events.receive()
                            if (e is PeerEventRecord.Connected && e.peer == b.id) break
                        }
                    }
                    assertEquals(listOf(certs.getValue(b.id)), a.peerCertificateChain(b.id))
                    // a node with the formation secret only is refused, and told why
                    val refused = assertFailsWith<Err.AdmissionRefused> { c.connect(a.addrs[0]) }
                    assertTrue(refused.message!!.contains("certificate required"), refused.message)
                    // the authority revokes b: a learns it, cuts b off and refuses it
                    val bEvents = Channel<PeerEventRecord>(Channel.UNLIMITED)
                    val bSubscription = b.onPeerEvent { bEvents.trySend(it) }
                    val record = auth.revoke(certs.getValue(b.id))
                    assertTrue(a.addRevocation(record))
                    assertFalse(a.addRevocation(record))
                    withTimeout(10_000) {
                        while (true) {
                            val e = events.receive()
                            if (e is PeerEventRecord.Revoked && e.peer == b.id) break
                        }
                        while (true) {
                            val e = events.receive()
                            if (e is PeerEventRecord.Disconnected && e.peer == b.id) break
                        }
                    }
                    subscription.close()
                    assertEquals(1L, a.trustStats().revocations)
                    // b dials again only once it has seen the close: until then
                    // its connection still counts as live and connect returns at once
                    withTimeout(10_000) {
                        while (true) {
                            val e = bEvents.receive()
                            if (e is PeerEventRecord.Disconnected && e.peer == a.id) break
                        }
                    }
                    bSubscription.close()
                    val again = assertFailsWith<Err.AdmissionRefused> { b.connect(a.addrs[0]) }
                    assertTrue(again.message!!.contains("revoked"), again.message)
                    // bad input
                    assertFailsWith<Err.InvalidArgument> { Authority.certificateInfo("zz") }
                    assertFailsWith<Err.InvalidArgument> { auth.issue("not-a-node") }
                    assertFailsWith<Err.InvalidArgument> { a.addRevocation("00") }
                    assertFailsWith<Err.InvalidArgument> { a.revoke("abc") }
                    assertFailsWith<Err.InvalidArgument> { Authority("kotlin", ByteArray(32)) }
                    assertFailsWith<Err.InvalidArgument> { Authority("kotlin", ByteArray(31)) }
                    assertFailsWith<IllegalArgumentException> { auth.issue(a.id, validFor = 0.hours) }
                }
            }
        }
        assertFailsWith<Err.InvalidArgument> { open(Trust("00")) }
        assertEquals(before, PeatMesh.liveHandles())
    }

    @Test
    fun enrollment() = runBlocking<Unit> {
        val before = PeatMesh.liveHandles()
        val auth = Authority.generate("kotlin")
        val open = { runBlocking { Node.open(Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", trust = auth.trust()) } }
        open().use { e ->
            open().use { d ->
                open().use { d2 ->
                    val cert = auth.issue(e.id, Tier.REGIONAL, Permission.ENROLL or Permission.RELAY)
                    e.setCertificateChain(listOf(cert))
                    val token = e.createEnrollmentToken(Tier.EDGE, Permission.RELAY, ttl = 10.minutes)
                    assertEquals(64, token.length)
                    val chain = d.enroll(e.addrs[0], token)
                    assertEquals(2, chain.size)
                    assertEquals(cert, chain[1])
                    val info = Authority.certificateInfo(chain[0])
                    assertEquals(Triple(d.id, e.id, "edge"), Triple(info.subject, info.issuer, info.tier))
                    assertEquals("valid", d.membership().state)
                    assertEquals(Tier.EDGE, d.membership().tier)
                    val spent = assertFailsWith<Err.AdmissionRefused> { d2.enroll(e.addrs[0], token) }
                    assertTrue(spent.message!!.contains("already used"), spent.message)
                    val m = d2.membership()
                    assertEquals("denied", m.state)
                    assertTrue(m.reason.contains("already used"), m.reason)
                    assertFailsWith<Err.InvalidArgument> { e.createEnrollmentToken(Tier.REGIONAL) }
                    assertFailsWith<Err.InvalidArgument> { e.createEnrollmentToken(Tier.EDGE, Permission.ADMIN) }
                    assertFailsWith<Err.InvalidArgument> { d2.createEnrollmentToken(Tier.EDGE) }
                    assertFailsWith<Err.InvalidArgument> { d2.enroll(e.addrs[0], "zz") }
                    assertFailsWith<IllegalArgumentException> { e.createEnrollmentToken(Tier.EDGE, ttl = 0.minutes) }
                }
            }
        }
        assertEquals(before, PeatMesh.liveHandles())
    }

    @Test
    fun keyRotation() = runBlocking<Unit> {
        val dir = Support.tmp()
        assertFailsWith<Err.NotFound> { rotateIdentity(dir) }
        val old = Node.open(dir, "kotlin", Support.SECRET, listen = "127.0.0.1:0").use { n ->
            n.put("notes", "n1", """{"kept":true}""")
            n.id
        }
        val new = rotateIdentity(dir)
        assertTrue(new != old && new.length == 64)
        Node.open(dir, "kotlin", Support.SECRET, listen = "127.0.0.1:0").use { n ->
            assertEquals(new, n.id)
            assertEquals("""{"kept":true}""", n.get("notes", "n1"))
        }
    }

    /** Conformance scenario 31: signed changes checked by a node that rejects unsigned ones; authors per change. */
    @Test
    fun signedChanges() = runBlocking<Unit> {
        val reject = mapOf("orders" to CollectionPolicy(signatures = SignaturePolicy.REJECT))
        val open = { p: Map<String, CollectionPolicy> ->
            runBlocking { Node.open(Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", policies = p) }
        }
        open(reject).use { a ->
            open(reject).use { b ->
                open(emptyMap()).use { u ->
                    assertEquals(SignaturePolicy.REJECT, b.policy("orders").signatures)
                    b.connect(a.addrs[0])
                    u.connect(b.addrs[0])
                    u.put("orders", "unsigned", """{"v":0}""")
                    a.put("orders", "o1", """{"v":1}""")
                    withTimeout(20_000) {
                        while (b.get("orders", "o1") == null) kotlinx.coroutines.delay(10)
                        while (b.trustStats().changesRejected < 1) kotlinx.coroutines.delay(10)
                    }
                    val got = b.authors("orders", "o1")
                    assertEquals(1, got.size)
                    assertEquals(a.id, got[0].author)
                    assertTrue(got[0].valid && got[0].hash.length == 64 && got[0].timeMs > 0)
                    val st = b.trustStats()
                    assertTrue(st.signaturesVerified >= 1 && st.changesUnsigned >= 1, "$st")
                    assertEquals(null, b.get("orders", "unsigned"))
                    assertTrue(a.trustStats().changesSigned >= 1)
                    val mine = u.authors("orders", "unsigned").single()
                    assertEquals(null, mine.author)
                    assertFalse(mine.valid)
                    assertFailsWith<Err.NotFound> { b.authors("orders", "nope") }
                    assertFailsWith<Err.InvalidArgument> { b.authors("orders", "") }
                }
            }
        }
    }
}

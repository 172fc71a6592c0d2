package io.peat.mesh

import io.peat.mesh.uniffi.BeaconEventRecord
import io.peat.mesh.uniffi.BeaconInfoRecord
import io.peat.mesh.uniffi.BeaconRecord
import io.peat.mesh.uniffi.BlobState
import io.peat.mesh.uniffi.CollectionRule
import io.peat.mesh.uniffi.DocEventRecord
import io.peat.mesh.uniffi.EphemeralOptions
import io.peat.mesh.uniffi.LinkOptions
import io.peat.mesh.uniffi.LinkState
import io.peat.mesh.uniffi.MessageEventRecord
import io.peat.mesh.uniffi.MessageRecord
import io.peat.mesh.uniffi.NodeState
import io.peat.mesh.uniffi.Origin
import io.peat.mesh.uniffi.PaceOptions
import io.peat.mesh.uniffi.PeerEventRecord
import io.peat.mesh.uniffi.PeerSource
import io.peat.mesh.uniffi.PeerState
import io.peat.mesh.uniffi.TransferProfile
import io.peat.mesh.uniffi.PeatException as Err
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeoutOrNull
import kotlinx.coroutines.yield
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.io.File
import kotlin.random.Random
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** The conformance scenarios (docs/conformance.md) on the desktop JVM through JNA. */
class ConformanceTest {
    private fun tmp(): String = Support.tmp()

    private suspend fun node(): Node = Support.node()

    @Test
    fun openCloseFreesHandles() = runBlocking<Unit> {
        assertEquals(12, PeatMesh.abiVersion)
        // the test JVM loads the library once, so the JNI path is bound
        assertEquals(if (System.getProperty("peat.mesh.jni") == "false") "jna" else "jni", PeatMesh.callPath)
        val before = PeatMesh.liveHandles()
        node().use { n -> assertEquals(64, n.id.length) }
        assertEquals(before, PeatMesh.liveHandles())
    }

    @Test
    fun twoNodesSyncThroughAFlow() = runBlocking<Unit> {
        node().use { a ->
            node().use { b ->
                val seen = async {
                    withTimeout(10_000) {
                        b.documents("tracks").first { it is DocEventRecord.Changed && it.id == "t1" }
                    }
                }
                delay(100)
                b.connect(a.addrs[0])
                a.put("tracks", "t1", """{"lat":1.5}""")
                val ev = seen.await() as DocEventRecord.Changed
                assertEquals("""{"lat":1.5}""", ev.json)
                assertEquals("""{"lat":1.5}""", b.get("tracks", "t1"))
                // a normal sync refuses nothing (the Rust hostile-peer suite covers the other case)
                val st = b.stats()
                assertTrue(st.framesReceived > 0UL && st.bytesReceived > 0UL && st.connectedPeers == 1UL, "$st")
                assertEquals(0UL, st.refusedDocuments)
                assertTrue(a.delete("tracks", "t1"))
                assertEquals(null, a.get("tracks", "t1"))
            }
        }
    }

    /** Polls [f] (a node's counters) for up to 10 s. */
    private suspend fun until(f: () -> Boolean): Boolean {
        val end = System.nanoTime() + 10_000_000_000L
        while (System.nanoTime() < end) {
            if (f()) return true
            delay(10)
        }
        return f()
    }

    /** Scenario 33: per-peer sync traffic and queues, unread events, update latency. */
    @Test
    fun peerTrafficQueuesAndLatency() = runBlocking<Unit> {
        node().use { a ->
            node().use { b ->
                // The callback holds the first event until the gate opens: the
                // other two wait in the subscription's queue.
                val gate = java.util.concurrent.CountDownLatch(1)
                val seen = AtomicInteger()
                b.onDocument("q") { gate.await(); seen.incrementAndGet() }.use {
                    b.connect(a.addrs[0])
                    repeat(3) { a.put("q", "d$it", """{"n":1}""") }
                    assertTrue(until { b.stats().let { it.queuedEvents >= 2UL && it.updateLatencyCount >= 3UL } }, "${b.stats()}")
                    val st = b.stats()
                    assertTrue(st.updateLatencySumMs < st.updateLatencyCount * 60_000UL, "$st")
                    val atB = b.peers().single()
                    assertTrue(atB.syncBytesSent > 0UL && atB.syncBytesReceived > 0UL, "$atB")
                    assertTrue(until { a.peers().single().let { it.syncQueuedUpdates == 0UL && it.syncQueuedReplyBytes == 0UL } })
                    assertTrue(a.peers().single().syncBytesSent > 0UL)
                    gate.countDown()
                    assertTrue(until { seen.get() == 3 && b.stats().queuedEvents == 0UL }, "${b.stats()}")
                }
            }
        }
    }

    @Test
    fun errorKindsAreTypedExceptions() = runBlocking<Unit> {
        node().use { n ->
            assertFailsWith<Err.InvalidArgument> { n.put("c", "d", "not json") }
            assertFailsWith<Err.InvalidArgument> { n.put("", "d", "{}") }
            assertFailsWith<Err.InvalidArgument> { n.importBytes("c", "d", "not automerge".toByteArray()) }
            assertFailsWith<Err.InvalidArgument> { n.fetchBlob("nothex") }
            assertFailsWith<Err.InvalidArgument> { n.addPeer("not a peer") }
            assertFailsWith<Err.NotFound> { n.exportBlob("00".repeat(32), File(tmp(), "x").path) }
            assertFailsWith<Err.InvalidHandle> { io.peat.mesh.uniffi.get(0u, "c", "d") }
            assertFailsWith<Err.InvalidHandle> { io.peat.mesh.uniffi.unsubscribe(0u) }
            assertFailsWith<Err.Timeout> {
                n.connect("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29@127.0.0.1:9", 300)
            }
            Node.open(tmp(), "kotlin", ByteArray(32) { 1 }, listen = "127.0.0.1:0").use { other ->
                assertFailsWith<Err.AdmissionRefused> { other.connect(n.addrs[0]) }
            }
            // the wrong handle type
            val sub = n.onDocument("c") { }
            assertFailsWith<Err.InvalidHandle> { io.peat.mesh.uniffi.nodeId(0u) }
            sub.close()
            sub.close() // idempotent
        }
        val closed = node()
        closed.close()
        closed.close() // idempotent
        assertFailsWith<Err.InvalidHandle> { closed.get("c", "d") }
        // every kind is a PeatException, and ShutDown is one (provoked in ProcessTest)
        assertTrue(Err.ShutDown("x") is PeatException)
    }

    @Test
    fun generateFormationSecret() = runBlocking<Unit> {
        val a = PeatMesh.generateFormationSecret()
        val b = PeatMesh.generateFormationSecret()
        assertEquals(32, a.size)
        assertTrue(!a.contentEquals(ByteArray(32)) && !a.contentEquals(b))
        // an all-zero secret (one never set) is refused; a generated one opens
        assertFailsWith<Err.InvalidArgument> { Node.open(tmp(), "kotlin", ByteArray(32), listen = "127.0.0.1:0") }
        Node.open(tmp(), "kotlin", a, listen = "127.0.0.1:0").use { n -> assertEquals(64, n.id.length) }
    }

    /** NUL in a collection or id is refused (C strings end there: C and Go would see another id). */
    @Test
    fun nulInNamesIsRefused() = runBlocking<Unit> {
        node().use { n ->
            for ((c, i) in listOf("c" to "a\u0000b", "c\u0000d" to "a")) {
                assertFailsWith<Err.InvalidArgument> { n.put(c, i, """{"x":1}""") }
                assertFailsWith<Err.InvalidArgument> { n.mergePatch(c, i, """{"x":1}""") }
                assertFailsWith<Err.InvalidArgument> { n.get(c, i) }
                assertFailsWith<Err.InvalidArgument> { n.delete(c, i) }
                assertFailsWith<Err.InvalidArgument> { n.export(c, i) }
                assertFailsWith<Err.InvalidArgument> { n.importBytes(c, i, ByteArray(1)) }
                assertFailsWith<Err.InvalidArgument> { n.onDocument(c, i) { } }
            }
            assertFailsWith<Err.InvalidArgument> { n.list("c", prefix = "a\u0000") }
            assertFailsWith<Err.InvalidArgument> { n.onDocument("c\u0000") { } }
            assertEquals(emptyList(), n.list("c").ids)
        }
    }

    /**
     * Document limits: JSON nested deeper than 100 levels or with an integer outside
     * 64 bits is refused and stores nothing; the largest u64 round-trips exactly; a
     * garbage or cut Automerge import is refused and leaves the document byte-identical.
     */
    @Test
    fun documentLimitsAreRefused() = runBlocking<Unit> {
        node().use { n ->
            val big = """{"n":18446744073709551617}"""
            val deep = """{"a":""".repeat(150) + "1" + "}".repeat(150)
            for (doc in listOf(big, deep)) {
                assertFailsWith<Err.InvalidArgument> { n.put("lim", "x", doc) }
                assertFailsWith<Err.InvalidArgument> { n.mergePatch("lim", "x", doc) }
            }
            assertEquals(null, n.get("lim", "x"))
            n.put("lim", "max", """{"n":18446744073709551615}""")
            assertEquals("""{"n":18446744073709551615}""", n.get("lim", "max"))
            n.put("lim", "src", """{"y":"a longer value so the save has some body to cut"}""")
            val save = n.export("lim", "src")!!
            val before = n.export("lim", "max")!!
            val garbage = byteArrayOf(0x85.toByte(), 0x6f, 0x4a, 0x83.toByte()) + " definitely not automerge".toByteArray()
            for (bytes in listOf(garbage, save.copyOf(save.size / 2))) {
                assertFailsWith<Err.InvalidArgument> { n.importBytes("lim", "max", bytes) }
                assertTrue(before.contentEquals(n.export("lim", "max")!!), "a refused import changed the document")
            }
        }
    }

    @Test
    fun getListDeleteExportImport() = runBlocking<Unit> {
        node().use { n ->
            for (i in listOf("a", "b", "c")) n.put("u", i, """{"id":"$i"}""")
            val first = n.list("u", limit = 2)
            assertEquals(listOf("a", "b"), first.ids)
            val second = n.list("u", after = first.next)
            assertEquals(listOf("c"), second.ids)
            assertEquals(null, second.next)
            assertEquals(listOf("b"), n.list("u", prefix = "b").ids)
            n.mergePatch("u", "a", """{"x":1}""")
            assertEquals("""{"id":"a","x":1}""", n.get("u", "a"))
            val bytes = n.export("u", "a")!!
            node().use { m ->
                m.importBytes("u", "a", bytes)
                assertEquals(n.get("u", "a"), m.get("u", "a"))
            }
            assertTrue(n.delete("u", "a"))
            assertEquals(null, n.get("u", "a"))
            assertEquals(false, n.delete("u", "zzz"))
            assertEquals(null, n.export("u", "zzz"))
            assertEquals(3UL, n.stats().documents) // b, c and the tombstone of a
        }
    }

    @Test
    fun subscribeWithSnapshotThenLive() = runBlocking<Unit> {
        node().use { n ->
            n.put("s", "x", """{"v":1}""")
            val events = Channel<DocEventRecord>(Channel.UNLIMITED)
            val job = launch { n.documents("s", snapshot = true).collect { events.send(it) } }
            val snap = withTimeout(5_000) { events.receive() } as DocEventRecord.Changed
            assertEquals("x" to Origin.Snapshot, snap.id to snap.origin)
            n.put("s", "y", """{"v":2}""")
            val live = withTimeout(5_000) { events.receive() } as DocEventRecord.Changed
            assertEquals("y" to Origin.Local, live.id to live.origin)
            // a short wait times out
            assertEquals(null, withTimeoutOrNull(50) { events.receive() })
            job.cancel()
        }
    }

    @Test
    fun nothingArrivesAfterUnsubscribeDuringABurst() = runBlocking<Unit> {
        node().use { n ->
            val seen = AtomicInteger()
            val sub = n.onDocument("b") { seen.incrementAndGet() }
            val writer = launch(Dispatchers.IO) { for (i in 0 until 2_000) n.put("b", (i % 50).toString(), """{"i":$i}""") }
            while (seen.get() < 20) delay(5)
            sub.close()
            val count = seen.get()
            writer.join()
            delay(200)
            assertEquals(count, seen.get())
        }
    }

    @Test
    fun thousandsOfSubscriptionCyclesFreeEverything() = runBlocking<Unit> {
        node().use { n ->
            val base = PeatMesh.liveHandles()
            repeat(2_000) { n.onDocument("c") { }.close() }
            repeat(200) {
                val job = launch { n.documents("c").collect { } }
                yield()
                job.cancelAndJoin()
            }
            assertEquals(base, PeatMesh.liveHandles())
        }
    }

    @Test
    fun closeWithSubscriptionsAndATransferInFlight() = runBlocking<Unit> {
        val a = node()
        node().use { b ->
            b.connect(a.addrs[0])
            val data = Random(3).nextBytes(4 shl 20)
            val info = a.addBlobFile(File(tmp(), "big.bin").apply { writeBytes(data) }.path)
            val flowEnded = async { a.documents("x").toList() } // ends when the node closes
            val ended = CompletableDeferred<Unit>()
            val sub = a.onPeerEvent(onEnd = { ended.complete(Unit) }) { }
            val transfer = b.fetchBlob(info.hash, listOf(a.id), TransferProfile.EDGE, 128L shl 10)
            val writer = launch(Dispatchers.IO) { repeat(20) { b.put("x", "k", """{"i":$it}""") } }
            writer.join()
            delay(200)
            val start = System.nanoTime()
            b.close()
            a.close()
            assertTrue((System.nanoTime() - start) / 1_000_000 < 5_000)
            withTimeout(5_000) { flowEnded.await(); ended.await() }
            val err = runCatching { transfer.await() }.exceptionOrNull()
            assertTrue(err is PeatException, "transfer ended with $err")
            transfer.close()
            sub.close()
        }
    }

    @Test
    fun logsReachTheHandler() = runBlocking<Unit> {
        val lines = java.util.concurrent.ConcurrentLinkedQueue<String>()
        PeatMesh.setLogHandler(5) { level, target, message -> lines.add("$level $target $message") }
        try {
            node().use { }
            withTimeout(5_000) { while (lines.none { it.contains("peat") }) delay(20) }
        } finally {
            PeatMesh.clearLogHandler()
        }
        val n = lines.size
        node().use { }
        delay(200)
        assertEquals(n, lines.size)
    }

    @Test
    fun cancellingTheCoroutineStopsAConnect() = runBlocking<Unit> {
        node().use { n ->
            val start = System.nanoTime()
            val job = async {
                n.connect("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29@127.0.0.1:9", 30_000)
            }
            delay(200)
            job.cancel()
            runCatching { job.await() }
            assertTrue((System.nanoTime() - start) / 1_000_000 < 5_000)
        }
    }

    @Test
    fun blobFetchWithProgressCancelAndResume() = runBlocking<Unit> {
        node().use { a ->
            node().use { b ->
                b.connect(a.addrs[0])
                val data = Random(7).nextBytes(2 shl 20)
                val src = File(tmp(), "src.bin").apply { writeBytes(data) }
                val info = a.addBlobFile(src.absolutePath)
                assertEquals(data.size.toLong(), info.size.toLong())
                // slow fetch; cancelling the awaiting coroutine cancels the transfer
                b.fetchBlob(info.hash, listOf(a.id), TransferProfile.EDGE, 256L shl 10).use { t ->
                    val waiter = async { t.await() }
                    val seen = withTimeout(20_000) {
                        t.updates.takeWhile { it.done < (256UL shl 10) }.toList()
                    }
                    assertTrue(seen.zipWithNext().all { (x, y) -> x.done <= y.done })
                    waiter.cancel()
                    runCatching { waiter.await() }
                    delay(300)
                    assertTrue(t.progress().finished)
                }
                val st = b.blobStatus(info.hash)
                assertEquals(BlobState.PARTIAL, st.state)
                b.fetchBlob(info.hash).use { t ->
                    val got = t.await()
                    assertEquals(info, got)
                    assertTrue(t.progress().resumed >= st.present)
                }
                val out = File(tmp(), "out.bin")
                assertEquals(data.size.toLong(), b.exportBlob(info.hash, out.absolutePath))
                assertTrue(out.readBytes().contentEquals(data))
            }
        }
    }

    /**
     * Scenario 32: collections with their live counts, a page at a time; the
     * blob fetches running, listed while they run and not once cancelled.
     */
    @Test
    fun collectionsAndTransfers() = runBlocking<Unit> {
        node().use { a ->
            node().use { b ->
                for ((c, id) in listOf("alpha" to "a1", "alpha" to "a2", "beta" to "b1", "beta" to "b2")) {
                    a.put(c, id, """{"n":1}""")
                }
                assertTrue(a.delete("beta", "b1"))
                assertEquals(listOf("alpha" to 2UL, "beta" to 1UL), a.collections().map { it.name to it.documents })
                assertEquals(listOf("alpha"), a.collections(limit = 1).map { it.name })
                assertEquals(listOf("beta"), a.collections(after = "alpha", limit = 1).map { it.name })
                assertEquals(emptyList(), a.collections(after = "beta"))
                assertFailsWith<Err.InvalidArgument> { a.collections(limit = 0) }

                assertEquals(emptyList(), b.blobTransfers())
                b.connect(a.addrs[0])
                val src = File(tmp(), "src.bin").apply { writeBytes(Random(32).nextBytes(2 shl 20)) }
                val info = a.addBlobFile(src.absolutePath)
                b.fetchBlob(info.hash, emptyList(), TransferProfile.EDGE, 128L shl 10).use { t ->
                    val running = b.blobTransfers()
                    assertEquals(listOf(info.hash), running.map { it.hash })
                    assertTrue(!running[0].progress.finished)
                    t.cancel()
                    assertFailsWith<Err.Cancelled> { t.await() }
                }
                assertEquals(emptyList(), b.blobTransfers())
            }
        }
    }

    /**
     * Scenario 22: a fetch expecting another size than the only provider's fails
     * with Corrupt and keeps nothing; discarding a partial is refused while its
     * fetch runs, then returns true once and false after; the next fetch (with
     * the right expected size) starts from nothing; a complete blob is never discarded.
     */
    @Test
    fun blobExpectedSizeAndDiscardPartial() = runBlocking<Unit> {
        node().use { a ->
            node().use { b ->
                b.connect(a.addrs[0])
                val data = Random(11).nextBytes(2 shl 20)
                val info = a.addBlobFile(File(tmp(), "src.bin").apply { writeBytes(data) }.absolutePath)
                val size = info.size.toLong()
                b.fetchBlob(info.hash, listOf(a.id), expectedSize = size + 1).use { t ->
                    assertFailsWith<Err.Corrupt> { t.await() }
                }
                assertEquals(BlobState.MISSING, b.blobStatus(info.hash).state)

                b.fetchBlob(info.hash, listOf(a.id), TransferProfile.EDGE, 256L shl 10, expectedSize = size).use { t ->
                    withTimeout(20_000) { t.updates.first { it.done >= (64UL shl 10) } }
                    assertFailsWith<Err.InvalidArgument> { b.discardPartial(info.hash) }
                    t.cancel()
                    assertFailsWith<Err.Cancelled> { t.await() }
                }
                assertEquals(BlobState.PARTIAL, b.blobStatus(info.hash).state)
                assertTrue(b.discardPartial(info.hash))
                assertEquals(BlobState.MISSING, b.blobStatus(info.hash).state)
                assertEquals(0UL, b.blobStatus(info.hash).present)
                assertEquals(false, b.discardPartial(info.hash))

                b.fetchBlob(info.hash, listOf(a.id), expectedSize = size).use { t ->
                    assertEquals(info, t.await())
                    assertEquals(0UL, t.progress().resumed)
                }
                assertEquals(false, b.discardPartial(info.hash)) // a complete blob is never discarded
                assertEquals(BlobState.COMPLETE, b.blobStatus(info.hash).state)
                assertFailsWith<Err.InvalidArgument> { b.discardPartial("nothex") }
                assertFailsWith<Err.InvalidArgument> { b.fetchBlob(info.hash, expectedSize = -1) }
            }
        }
    }

    /**
     * Scenario 23: a node whose data dir (a 3 MiB tmpfs) fills up throws
     * [Err.Io] for the failing put and every later one, and its peer events
     * carry one [PeerEventRecord.StorageFailed] with a reason. Mounting needs
     * root (CI runs as root): without it the test fails and says so.
     */
    @Test
    fun storageFailedOnAFullDataDir() = runBlocking<Unit> {
        val mnt = tmp()
        val mount = ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).redirectErrorStream(true).start()
        val out = mount.inputStream.bufferedReader().readText()
        assertEquals(0, mount.waitFor(), "mounting a tmpfs failed: this test needs root (run it as root, as CI does): $out")
        try {
            File(mnt, "filler").writeBytes(ByteArray(256 * 1024))
            Support.node(File(mnt, "node").path).use { n ->
                val events = Channel<PeerEventRecord>(Channel.UNLIMITED)
                n.onPeerEvent { events.trySend(it) }.use {
                    val pad = "x".repeat(2000)
                    var acknowledged = 0
                    assertFailsWith<Err.Io> {
                        for (i in 0 until 100_000) {
                            // varied content so nothing compresses away
                            n.put("fill", "d$i", """{"i":$i,"pad":"$pad$i","k":${i.toLong() * 7919}}""")
                            acknowledged++
                        }
                    }
                    assertTrue(acknowledged > 0)
                    assertFailsWith<Err.Io> { n.put("small", "s", """{"a":1}""") }
                    val ev = withTimeout(10_000) { events.receive() }
                    assertTrue(ev is PeerEventRecord.StorageFailed && ev.reason.isNotEmpty(), "$ev")
                    assertEquals(null, withTimeoutOrNull(300) { events.receive() }) // once; no peers
                }
            }
        } finally {
            ProcessBuilder("umount", mnt).start().waitFor()
        }
    }

    @Test
    fun staticPeerAndPeerEventsFlow() = runBlocking<Unit> {
        node().use { a ->
            node().use { b ->
                val events = async {
                    withTimeout(10_000) { a.peerEvents().first { it is PeerEventRecord.Connected } }
                }
                delay(100)
                a.addPeer(b.addrs[0])
                events.await()
                val p = a.peers().single()
                assertEquals(PeerState.CONNECTED, p.state)
                assertEquals(listOf(PeerSource.STATIC), p.sources)
                assertTrue(a.removePeer(b.id))
            }
        }
    }

    /** A node on two UDP links of its own on loopback, no UDP socket besides. */
    private suspend fun linkedNode(): Node = Node.open(
        tmp(), "kotlin", Support.SECRET,
        links = listOf(LinkOptions("primary", "127.0.0.1:0", 0u), LinkOptions("alternate", "127.0.0.1:0", 1u)),
        linksOnly = true,
        pace = PaceOptions(
            probeIntervalMs = 100u, deadAfterMs = 600u, degradedRttMs = 0u, degradedLoss = 0.0, holdDownMs = 1000u,
            blobsBelowLevel = 1u, collectionRules = listOf(CollectionRule("imagery", 1u)),
        ),
    )

    /**
     * Waits (10 s at most) until document `c/[id]` is on [n]: its snapshot if
     * it is there already, else its arrival — no race with the subscription.
     */
    private suspend fun arrived(n: Node, id: String) = withTimeout(10_000) {
        n.documents("c", id, snapshot = true).first { it is DocEventRecord.Changed && it.json != null }
    }

    /** The next change away from a link (`from` set) among [events], within 10 s. */
    private suspend fun nextMove(events: Channel<PeerEventRecord>): PeerEventRecord.LinkChanged =
        withTimeout(10_000) {
            var ev: PeerEventRecord
            do { ev = events.receive() } while (!(ev is PeerEventRecord.LinkChanged && ev.from != null))
            ev as PeerEventRecord.LinkChanged
        }

    @Test
    fun linksPaceAndSilencing() = runBlocking<Unit> {
        linkedNode().use { a ->
            linkedNode().use { b ->
                assertEquals(1, a.addrs.size, "links only: one link address")
                val ea = Channel<PeerEventRecord>(Channel.UNLIMITED)
                val eb = Channel<PeerEventRecord>(Channel.UNLIMITED)
                val jobs = listOf(
                    launch { a.peerEvents().collect { ea.send(it) } },
                    launch { b.peerEvents().collect { eb.send(it) } },
                )
                b.connect(a.addrs[0])
                a.put("c", "d", """{"x":1}""")
                arrived(b, "d")
                // The primary's probes are answered within a few probe intervals.
                val links = withTimeout(10_000) {
                    var l = b.peers().single().links
                    while (l.size != 2 || l[0].rttUs == null || l[0].lastAnswerMs == null) {
                        delay(50)
                        l = b.peers().single().links
                    }
                    l
                }
                assertEquals("primary", links[0].name)
                assertTrue(links[0].inUse && links[0].level == 0u && links[0].state != LinkState.DEAD, "$links")
                assertEquals("alternate", links[1].name)
                assertTrue(!links[1].inUse && links[1].level == 1u, "$links")

                assertFailsWith<Err.InvalidArgument> { a.setLinkSilent("nope", true) }
                a.setLinkSilent("primary", true)
                b.setLinkSilent("primary", true)
                for (ev in listOf(nextMove(ea), nextMove(eb))) {
                    assertEquals(Triple("primary", "alternate", 1u), Triple(ev.from, ev.to, ev.level), "$ev")
                }
                a.put("c", "e", """{"x":2}""")
                arrived(b, "e")
                assertTrue(b.peers().single().links[0].silent)
                a.setLinkSilent("primary", false)
                b.setLinkSilent("primary", false)
                for (ev in listOf(nextMove(ea), nextMove(eb))) {
                    assertEquals(Triple("alternate", "primary", 0u), Triple(ev.from, ev.to, ev.level), "$ev")
                }
                jobs.forEach { it.cancelAndJoin() }
            }
        }
        for (bad in listOf(LinkOptions("x", "nowhere", 0u), LinkOptions("x", "127.0.0.1:0", 8u))) {
            assertFailsWith<Err.InvalidArgument> { Node.open(tmp(), "kotlin", Support.SECRET, links = listOf(bad)) }
        }
        assertFailsWith<Err.InvalidArgument> {
            Node.open(
                tmp(), "kotlin", Support.SECRET, links = listOf(LinkOptions("x", "127.0.0.1:0", 0u)),
                pace = Node.DEFAULT_PACE.copy(blobsBelowLevel = 9u),
            )
        }
        assertFailsWith<Err.InvalidArgument> {
            Node.open(
                tmp(), "kotlin", Support.SECRET, links = listOf(LinkOptions("x", "127.0.0.1:0", 0u)),
                pace = Node.DEFAULT_PACE.copy(collectionRules = listOf(CollectionRule("imagery", 0u))),
            )
        }
        // A BLE link opens where there is Bluetooth; here (no adapter, no
        // BlueZ) the open fails with a network error naming Bluetooth.
        try {
            Node.open(tmp(), "kotlin", Support.SECRET, links = listOf(LinkOptions("radio", "ble", 0u))).close()
        } catch (e: Err.Network) {
            assertTrue("Bluetooth" in (e.message ?: ""), "$e")
        }
    }

    /** Scenario 25: ephemeral topics, latest-only, bounds, the multicast path, beacons, expiry. */
    @Test
    fun ephemeralTopicsBeaconsAndMulticast() = runBlocking<Unit> {
        val port = java.net.DatagramSocket(0, java.net.InetAddress.getByName("127.0.0.1")).use { it.localPort }
        val eph = EphemeralOptions("tactical", 200u, 1_000u, "239.255.77.9:$port", "127.0.0.1")
        val before = PeatMesh.liveHandles()
        val open = suspend { Node.open(tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", ephemeral = eph) }
        open().use { a ->
            open().use { b ->
                open().use { c ->
                    val all = Channel<MessageEventRecord>(Channel.UNLIMITED)
                    val beacons = Channel<BeaconEventRecord>(Channel.UNLIMITED)
                    val jobs = listOf(
                        launch { a.messages("pos/*").collect { all.send(it) } },
                        launch { a.beaconEvents().collect { beacons.send(it) } },
                    )
                    suspend fun from(origin: String): MessageRecord = withTimeout(10_000) {
                        var m: MessageRecord? = null
                        while (m == null) m = (all.receive() as? MessageEventRecord.Message)?.v1?.takeIf { it.origin == origin }
                        m
                    }
                    b.connect(a.addrs[0])
                    // the collector subscribes asynchronously: publish until one arrives
                    val first = withTimeout(10_000) {
                        var got: MessageRecord? = null
                        while (got == null) {
                            assertEquals(1, b.publishJson("pos/b", """{"lat":59.3}"""))
                            got = withTimeoutOrNull(300) { from(b.id) }
                        }
                        got
                    }
                    assertEquals(listOf("pos/b", "true", "0", b.id), listOf(first.topic, "${first.json}", "${first.hops}", first.viaPeer))
                    assertEquals("""{"lat":59.3}""", String(first.payload))
                    assertTrue(first.ttlLeftMs in 1u..10_000u)
                    for (p in listOf("1", "2", "3")) {
                        b.publish("pos/b", p.toByteArray())
                        from(b.id)
                    }
                    assertEquals(listOf("3"), a.latest("pos/*").map { String(it.payload) })
                    // a latest-only Flow (coalescing while the reader is behind is
                    // tested in Rust, C, Python and Go, which can read late)
                    val newest = Channel<MessageEventRecord>(Channel.UNLIMITED)
                    val latestJob = launch { a.messages("pos/*", latestOnly = true).collect { newest.send(it) } }
                    val kept = withTimeout(10_000) {
                        var got: MessageRecord? = null
                        while (got == null) {
                            b.publish("pos/b", "4".toByteArray())
                            got = withTimeoutOrNull(300) { (newest.receive() as? MessageEventRecord.Message)?.v1 }
                        }
                        got
                    }
                    assertEquals("4", String(kept.payload))
                    latestJob.cancelAndJoin()
                    for ((topic, payload, hops) in listOf(
                        Triple("", "x".toByteArray(), 0),
                        Triple("pos/x", ByteArray(961), 0),
                        Triple("_peat/x", "x".toByteArray(), 0),
                        Triple("pos/x", "x".toByteArray(), 9),
                    )) {
                        assertFailsWith<Err.InvalidArgument> { b.publish(topic, payload, Node.DIRECT.copy(hopLimit = hops.toUByte())) }
                    }
                    assertFailsWith<Err.InvalidArgument> { b.publishJson("pos/x", "not json") }
                    // the multicast path: c has no connection to a
                    assertEquals(0, c.publish("pos/c", "over the group".toByteArray(), Node.DIRECT.copy(multicast = true)))
                    val m = from(c.id)
                    assertEquals(null, m.viaPeer)
                    assertEquals("over the group", String(m.payload))

                    b.setBeacon(
                        BeaconInfoRecord(59.3293, 18.0686, null, "sensor", 0u, listOf("camera"), NodeState.READY, 80u, null, null),
                    )
                    val seen = withTimeout(10_000) {
                        var ev: BeaconRecord? = null
                        while (ev == null) ev = (beacons.receive() as? BeaconEventRecord.Appeared)?.v1?.takeIf { it.node == b.id }
                        ev
                    }
                    assertEquals(listOf("sensor", "READY", "80", "8"), listOf(seen.info.role, "${seen.info.state}", "${seen.info.batteryPct}", "${seen.geohash.length}"))
                    val near = a.beaconsNear(59.33, 18.07, 1_000.0)
                    assertEquals(listOf(b.id), near.map { it.node })
                    assertTrue(near[0].distanceM!! < 1_000.0)
                    assertTrue(a.beaconsNear(0.0, 0.0, 1_000.0).isEmpty())
                    assertEquals(1, a.beaconsInCell(seen.geohash.take(5), neighbours = true).size)
                    assertEquals(1, a.beaconsSince(0).size)
                    for ((lat, lon) in listOf(Double.NaN to 0.0, 91.0 to 0.0, 0.0 to 181.0)) {
                        assertFailsWith<Err.InvalidArgument> {
                            b.setBeacon(BeaconInfoRecord(lat, lon, null, "", 0u, emptyList(), NodeState.UNKNOWN, null, null, null))
                        }
                    }
                    assertFailsWith<Err.InvalidArgument> { a.beaconsNear(0.0, 0.0, -1.0) }
                    b.clearBeacon()
                    withTimeout(10_000) {
                        while ((beacons.receive() as? BeaconEventRecord.Expired)?.v1 != b.id) {}
                    }
                    val st = a.ephemeralStats()
                    assertTrue(st.delivered >= 5u && st.malformed == 0uL, "$st")
                    jobs.forEach { it.cancelAndJoin() }
                }
            }
        }
        for (bad in listOf(Node.DEFAULT_EPHEMERAL.copy(beaconPreset = "nope"), Node.DEFAULT_EPHEMERAL.copy(multicastGroup = "239.255.77.9:7000"))) {
            assertFailsWith<Err.InvalidArgument> { Node.open(tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", ephemeral = bad) }
        }
        assertEquals(before, PeatMesh.liveHandles())
    }
}

package io.peat.mesh

import io.peat.mesh.uniffi.PeatException as Err
import io.peat.mesh.uniffi.PeerEventRecord
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.days
import kotlin.time.Duration.Companion.hours
import kotlin.time.Duration.Companion.milliseconds

/** Conformance scenario 26: collection policies, retention by garbage collection, storage counters. */
class LifecycleTest {
    /** Loads the library (Support's initialiser) before the first call. */
    private val lib = Support.libPath

    @Test
    fun policiesRetentionAndStorageStats() = runBlocking<Unit> {
        val before = PeatMesh.liveHandles()
        Node.open(
            Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0",
            policies = mapOf("log" to CollectionPolicy(priority = Priority.BULK, maxDocuments = 3)),
        ).use { a ->
            val log = a.policy("log")
            assertEquals(Priority.BULK, log.priority)
            assertEquals(3L, log.maxDocuments)
            val other = a.policy("other")
            assertEquals(Priority.NORMAL, other.priority)
            assertEquals(SyncMode.FULL, other.sync)
            assertEquals(7.days, other.tombstoneTtl)
            assertEquals(null, other.ttl)

            a.setPolicy("cache", CollectionPolicy(ttl = 1.hours, delete = DeleteRule.UPDATE_WINS))
            assertEquals(1.hours, a.policy("cache").ttl)
            assertEquals(DeleteRule.UPDATE_WINS, a.policy("cache").delete)
            a.setPolicy(null, CollectionPolicy(priority = Priority.HIGH))
            val (default, own) = a.policies()
            assertEquals(Priority.HIGH, default.priority)
            assertEquals(setOf("cache", "log"), own.keys)
            assertTrue(a.removePolicy("cache"))
            assertEquals(false, a.removePolicy("cache"))

            for (i in 0 until 5) a.put("log", "e$i", """{"i":$i}""")
            val r = a.collectGarbage()
            assertEquals(2uL, r.evictedDocuments)
            assertEquals(0uL, r.expiredDocuments)
            assertEquals(0uL, r.purgedTombstones)
            assertEquals(listOf("e2", "e3", "e4"), a.list("log").ids)
            a.delete("log", "e4")
            val s = a.storageStats()
            assertEquals(2uL, s.documents)
            assertEquals(1uL, s.tombstones)
            assertEquals(2uL, s.evictedTotal)
            assertTrue(s.gcRuns >= 1uL && s.documentBytes > 0uL)

            assertFailsWith<Err.InvalidArgument> { a.setPolicy("log", CollectionPolicy(maxDocuments = -1)) }
            assertFailsWith<Err.InvalidArgument> { a.setPolicy("log", CollectionPolicy(sync = SyncMode.WINDOWED)) }
            assertFailsWith<Err.InvalidArgument> { a.policy("") }
            assertFailsWith<IllegalArgumentException> { a.setPolicy("log", CollectionPolicy(ttl = 1500.milliseconds)) }
            assertEquals(Priority.BULK, a.policy("log").priority)
        }
        assertFailsWith<Err.InvalidArgument> {
            Node.open(Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", policies = mapOf("" to CollectionPolicy()))
        }
        assertEquals(before, PeatMesh.liveHandles())
        // a collection name that needs escaping round-trips through the JSON
        Node.open(
            Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0",
            policies = mapOf("we\"ird\\name" to CollectionPolicy(priority = Priority.LOW)),
        ).use { b -> assertEquals(Priority.LOW, b.policies().second["we\"ird\\name"]?.priority) }
        // a storage budget of 1 byte: every normal document goes at the next pass
        Node.open(Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", storageBudget = 1).use { c ->
            c.put("tiles", "t0", """{"x":1}""")
            c.put("tiles", "t1", """{"x":1}""")
            // a collection kept until delivered: no peer holds its document, so it stays
            c.setPolicy("orders", CollectionPolicy(keepUntilDelivered = true))
            assertEquals(true, c.policy("orders").keepUntilDelivered)
            c.put("orders", "o1", """{"x":1}""")
            assertEquals(2uL, c.collectGarbage().budgetEvicted)
            assertEquals(2uL, c.storageStats().budgetEvictedTotal)
            assertEquals(1uL, c.storageStats().documents)
            // each eviction is a peer event; the Flow subscribes when collected,
            // so evict again until the collector has seen one
            val evicted = async { withTimeout(10_000) { c.peerEvents().first { it is PeerEventRecord.StorageEvicted } } }
            var n = 0
            while (!evicted.isCompleted) {
                c.put("tiles", "more${n++}", """{"x":1}""")
                c.collectGarbage()
            }
            val ev = evicted.await() as PeerEventRecord.StorageEvicted
            assertEquals(1uL, ev.documents)
            assertTrue(ev.storedBytes > 0uL) // the order is left
        }
    }
}

/** Conformance scenario 27: bandwidth budgets at open and at runtime, datagrams past a budget dropped and counted. */
class BandwidthTest {
    /** Loads the library (Support's initialiser) before the first call. */
    private val lib = Support.libPath

    @Test
    fun bandwidthBudgets() = runBlocking<Unit> {
        val before = PeatMesh.liveHandles()
        Node.open(Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0").use { a ->
            Node.open(Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", bandwidth = Bandwidth(perPeer = 1024)).use { b ->
                assertEquals(Bandwidth(perPeer = 1024), b.bandwidth())
                assertEquals(Bandwidth(), a.bandwidth())
                b.connect(a.addrs[0])
                val payload = ByteArray(900) { 7 }
                val sent = (0 until 100).sumOf { b.publish("pos/b", payload) }
                assertTrue(sent in 1..20, "$sent sent")
                val st = b.bandwidthStats()
                assertEquals((100 - sent).toLong(), st.droppedDatagrams)
                assertTrue(st.bytesLimited >= 900L * sent)

                val socket = Bandwidth(links = mapOf(Bandwidth.SOCKET to 40_000L))
                b.setBandwidth(socket)
                assertEquals(socket, b.bandwidth())
                for (bad in listOf(Bandwidth(links = mapOf("radio" to 5000L)), Bandwidth(perPeer = 10))) {
                    assertFailsWith<Err.InvalidArgument> { b.setBandwidth(bad) }
                    assertEquals(socket, b.bandwidth())
                }
                assertFailsWith<IllegalArgumentException> { b.setBandwidth(Bandwidth(perPeer = -1)) }
                b.setBandwidth(Bandwidth())
                assertEquals(Bandwidth(), b.bandwidth())
                assertEquals(1, b.publish("pos/b", payload))
                // a message's class; an unknown one is refused
                assertEquals(1, b.publish("pos/b", payload, Node.publishOptions(priority = Priority.LOW)))
                assertFailsWith<Err.InvalidArgument> {
                    b.publish("pos/b", payload, io.peat.mesh.uniffi.PublishOptionsRecord(10_000u, 0u, false, "urgent"))
                }

                // a blob fetched in the high class
                val src = java.io.File(Support.tmp(), "photo.bin").apply { writeBytes(ByteArray(100_000) { (it % 251).toByte() }) }
                val info = a.addBlobFile(src.path)
                b.fetchBlob(info.hash, listOf(a.id), priority = Priority.HIGH).use { t -> assertEquals(info.size, t.await().size) }
            }
        }
        assertFailsWith<Err.InvalidArgument> {
            Node.open(Support.tmp(), "kotlin", Support.SECRET, listen = "127.0.0.1:0", bandwidth = Bandwidth(links = mapOf("radio" to 5000L)))
        }
        assertEquals(before, PeatMesh.liveHandles())
    }
}

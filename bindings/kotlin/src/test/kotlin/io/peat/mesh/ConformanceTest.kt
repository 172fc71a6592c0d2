package io.peat.mesh

import io.peat.mesh.uniffi.DocEventRecord
import io.peat.mesh.uniffi.PeerEventRecord
import io.peat.mesh.uniffi.PeatException as Err
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.io.File
import java.nio.file.Files
import kotlin.random.Random
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** The conformance scenarios (docs/conformance.md) on the desktop JVM through JNA. */
class ConformanceTest {
    companion object {
        init {
            val dir = System.getProperty("peat.lib.dir") ?: error("peat.lib.dir not set")
            PeatMesh.loadFrom(File(dir, "libpeat_mesh_ffi.so").absolutePath)
        }
        val SECRET = ByteArray(32) { 7 }
    }

    private fun tmp(): String = Files.createTempDirectory("peat-kt").toString()

    private suspend fun node(): Node = Node.open(tmp(), "kotlin", SECRET, listen = "127.0.0.1:0")

    @Test
    fun openCloseFreesHandles() = runBlocking<Unit> {
        assertTrue(PeatMesh.abiVersion >= 2)
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
                assertTrue(a.delete("tracks", "t1"))
                assertEquals(null, a.get("tracks", "t1"))
            }
        }
    }

    @Test
    fun errorKindsAreTypedExceptions() = runBlocking<Unit> {
        node().use { n ->
            assertFailsWith<Err.InvalidArgument> { n.put("c", "d", "not json") }
            assertFailsWith<Err.InvalidArgument> { n.fetchBlob("nothex") }
        }
        val closed = node()
        closed.close()
        assertFailsWith<Err.InvalidHandle> { closed.get("c", "d") }
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
                b.fetchBlob(info.hash, listOf(a.id), "edge", 256L shl 10).use { t ->
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
                assertEquals(1, st.state)
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
                assertEquals("connected", p.state)
                assertEquals("static", p.sources)
                assertTrue(a.removePeer(b.id))
            }
        }
    }
}

package io.peat.mesh

import io.peat.mesh.uniffi.DocEventRecord
import io.peat.mesh.uniffi.Origin
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.lang.ref.WeakReference
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/** Scenario 12: push delivery through listeners on the SDK dispatcher thread. */
class CallbackTest {
    @Test
    fun callbacksRunOnTheDispatcherAndMayCallTheSdk() = runBlocking<Unit> {
        Support.node().use { a ->
            Support.node().use { b ->
                val reads = CopyOnWriteArrayList<String?>()
                val threads = CopyOnWriteArrayList<String>()
                val got = CompletableDeferred<DocEventRecord.Changed>()
                b.onDocument("tracks") { ev ->
                    threads.add(Thread.currentThread().name)
                    if (ev is DocEventRecord.Changed) {
                        // re-entrancy: a blocking SDK call from inside the callback
                        reads.add(runBlocking { b.get(ev.collection, ev.id) })
                        got.complete(ev)
                    }
                }.use {
                    b.connect(a.addrs[0])
                    a.put("tracks", "t1", """{"lat":1.5}""")
                    val ev = withTimeout(10_000) { got.await() }
                    assertEquals(Origin.Peer(a.id), ev.origin)
                    assertEquals(listOf<String?>("""{"lat":1.5}"""), reads.toList())
                    assertNotEquals(Thread.currentThread().name, threads.first())
                }
            }
        }
    }

    @Test
    fun unsubscribingFromInsideACallbackStopsDelivery() = runBlocking<Unit> {
        Support.node().use { n ->
            val seen = AtomicInteger()
            lateinit var sub: Subscription
            sub = n.onDocument("c") { if (seen.incrementAndGet() == 3) sub.close() }
            repeat(10) { n.put("c", "d$it", """{"i":$it}""") }
            delay(300)
            assertEquals(3, seen.get())
        }
    }

    @Test
    fun eachListenerIsReleasedAndThousandsOfCyclesFreeEverything() = runBlocking<Unit> {
        Support.node().use { n ->
            val base = PeatMesh.liveHandles()
            val refs = ArrayList<WeakReference<Any>>()
            repeat(2_000) { i ->
                // captures i: a lambda capturing nothing is a JVM singleton, never collected
                val callback: (DocEventRecord) -> Unit = { if (i < 0) println(it) }
                refs.add(WeakReference(callback))
                n.onDocument("c", onEvent = callback).close()
            }
            assertEquals(base, PeatMesh.liveHandles())
            // the SDK dropped every listener: the JVM can collect them all
            var alive = refs.count { it.get() != null }
            for (i in 0 until 50) {
                if (alive == 0) break
                System.gc()
                delay(20)
                alive = refs.count { it.get() != null }
            }
            assertEquals(0, alive)
        }
    }

    @Test
    fun theEndIsSeenWhenTheNodeCloses() = runBlocking<Unit> {
        val n = Support.node()
        val ends = AtomicInteger()
        val ended = CompletableDeferred<Unit>()
        val sub = n.onPeerEvent(onEnd = { ends.incrementAndGet(); ended.complete(Unit) }) { }
        n.close()
        withTimeout(5_000) { ended.await() }
        sub.close()
        delay(100)
        assertEquals(1, ends.get())
        assertTrue(runCatching { sub.close() }.isSuccess)
    }
}

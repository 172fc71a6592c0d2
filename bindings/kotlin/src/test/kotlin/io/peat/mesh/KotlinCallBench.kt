package io.peat.mesh

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import java.nio.file.Files

/**
 * kotlin-call: per-call overhead of a small-document get from Kotlin on the
 * JVM, and durable put+get throughput. Run by `scripts/bench-kotlin`:
 * `KotlinCallBenchKt <lib> [--small]`. Each figure is the median of 5 timed
 * rounds after a warm-up round (the JIT compiles the path first).
 */
fun main(args: Array<String>) {
    PeatMesh.loadFrom(args[0])
    val small = "--small" in args
    val gets = if (small) 2_000 else 200_000
    val pairs = if (small) 320 else 8_000
    val dir = Files.createTempDirectory("peat-kt-bench").toString()
    runBlocking {
        Node.open(dir, "bench", PeatMesh.generateFormationSecret(), listen = "127.0.0.1:0").use { n ->
            n.put("b", "small", """{"callsign":"A-1","lat":59.3,"lon":18.1}""")
            val handle = io.peat.mesh.uniffi.nodeHandles().single()
            fun report(what: String, nanosPerCall: Double) =
                println("kotlin-call        %-48s %10.3f us".format(what, nanosPerCall / 1_000))

            check(JniBridge.available) { "the JNI path did not load" }
            val onIo = withContext(Dispatchers.IO) { perCall(gets) { n.get("b", "small") } }
            report("get: Node.get, caller on Dispatchers.IO (JNI)", onIo)
            report("get: JniBridge.get, blocking", perCall(gets) { JniBridge.get(handle.toLong(), "b", "small") })
            // JNA is far slower per call: fewer calls keep the run short
            report("get: generated UniFFI binding, blocking (JNA)", perCall(gets / 20) { io.peat.mesh.uniffi.get(handle, "b", "small") })
            report("get: Node.get from another thread (+ hop to IO)", perCall(gets / 20) { n.get("b", "small") })
            if ("--detail" in args) {
                report("UniFFI liveHandles (no arguments; JNA)", perCall(gets / 20) { io.peat.mesh.uniffi.liveHandles() })
                report("UniFFI nodeId (returns a string; JNA)", perCall(gets / 20) { io.peat.mesh.uniffi.nodeId(handle) })
            }

            // durable puts from 16 coroutines on Dispatchers.IO (group commit), each followed by a get
            val start = System.nanoTime()
            (0 until 16).map { k ->
                async(Dispatchers.IO) {
                    for (i in 0 until pairs / 16) {
                        n.put("t", "$k-$i", """{"i":$i}""")
                        n.get("t", "$k-$i")
                    }
                }
            }.awaitAll()
            val rate = pairs / ((System.nanoTime() - start) / 1e9)
            println("kotlin-call        %-48s %10.1f pairs/s".format("durable put+get (16 coroutines)", rate))
        }
    }
    java.io.File(dir).deleteRecursively()
}

private suspend inline fun perCall(n: Int, crossinline call: suspend () -> Unit): Double {
    val rounds = DoubleArray(5)
    repeat(n) { call() }
    for (r in rounds.indices) {
        val t = System.nanoTime()
        repeat(n) { call() }
        rounds[r] = (System.nanoTime() - t).toDouble() / n
    }
    return rounds.sorted()[rounds.size / 2]
}

package io.peat.mesh

import io.peat.mesh.uniffi.DocEventRecord
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

/**
 * Plays an ATAK plugin across a reload. The child JVM (see `reloadCycle` in
 * ChildMain.kt) loads this class through a fresh URLClassLoader each time,
 * as ATAK's plugin loader does, and calls it by reflection.
 */
object PluginProbe {
    private val SECRET = ByteArray(32) { 7 }

    /** The first load: opens a node, writes, and leaves a listener registered (no cleanup). */
    @JvmStatic
    fun start(lib: String, dir: String): String = runBlocking {
        PeatMesh.loadFrom(lib)
        val n = Node.open(dir, "kotlin", SECRET, listen = "127.0.0.1:0")
        n.put("plugin", "state", """{"loads":1}""")
        n.onDocument("plugin") {
            // JVM-global, so the test sees it whichever class loader runs this
            System.setProperty("peat.probe.oldCalls", ((System.getProperty("peat.probe.oldCalls") ?: "0").toInt() + 1).toString())
        }
        n.put("plugin", "other", """{"x":1}""")
        withTimeout(5_000) { while (System.getProperty("peat.probe.oldCalls") == null) kotlinx.coroutines.delay(10) }
        "${n.id} ${PeatMesh.liveHandles()} ${PeatMesh.callPath}"
    }

    /** The reloaded plugin: finds the node left open, uses it, closes it. */
    @JvmStatic
    fun resume(lib: String): String = runBlocking {
        PeatMesh.loadFrom(lib)
        val n = PeatMesh.openNodes().single()
        val got = CompletableDeferred<String?>()
        n.onDocument("plugin") { ev -> if (ev is DocEventRecord.Changed) got.complete(ev.json) }.use {
            n.put("plugin", "state", """{"loads":2}""")
            withTimeout(5_000) { got.await() }
        }
        val doc = n.get("plugin", "state")
        val id = n.id
        n.close()
        "$id $doc ${PeatMesh.liveHandles()} ${PeatMesh.callPath}"
    }

    /** A third load opens the same data dir again: the node was cleanly gone. */
    @JvmStatic
    fun reopen(lib: String, dir: String): String = runBlocking {
        PeatMesh.loadFrom(lib)
        Node.open(dir, "kotlin", SECRET, listen = "127.0.0.1:0").use {
            "${it.id} ${it.get("plugin", "state")} ${PeatMesh.callPath}"
        }
    }
}

package io.peat.mesh

import kotlinx.coroutines.runBlocking
import java.io.File
import java.nio.file.Files
import kotlin.system.exitProcess

/**
 * The child side of the process tests: `ChildMainKt <lib> <scenario>`.
 * - `exit-with-open-node`: opens a node, writes, and leaves without closing.
 * - `shutdown`: opens nodes and a subscription, writes, shuts the SDK down,
 *   checks every handle is gone, that another JVM (`reopen`) opens the data dir
 *   while this one runs and finds the last write (shutdown closed the node left
 *   open), later calls fail (opening with ShutDown), and that shutdown is idempotent.
 * - `reopen <dir>`: opens `dir` and checks the last write of `shutdown`.
 * - `reload-cycle`: see [reloadCycle].
 * - `jni-only`: JNA cannot load in this JVM (ProcessTest starts it so); two
 *   nodes still open, connect, sync and serve documents over JNI, errors are
 *   typed, and what needs JNA says so.
 */
fun main(args: Array<String>) {
    if (args[1] == "reload-cycle") return reloadCycle(args[0])
    PeatMesh.loadFrom(args[0])
    val dir = Files.createTempDirectory("peat-kt-child").toString()
    runBlocking {
        when (args[1]) {
            "exit-with-open-node" -> {
                val n = Node.open(dir, "kotlin", ByteArray(32) { 7 }, listen = "127.0.0.1:0")
                n.put("c", "d", """{"v":1}""")
                n.onDocument("c") { }
                println("exiting with node open")
            }
            "shutdown" -> {
                val before = PeatMesh.liveHandles()
                val a = Node.open("$dir/a", "kotlin", ByteArray(32) { 7 }, listen = "127.0.0.1:0")
                Node.open("$dir/b", "kotlin", ByteArray(32) { 7 }, listen = "127.0.0.1:0")
                a.onDocument("c") { }
                check(PeatMesh.liveHandles() == before + 3)
                for (i in 0 until 100) a.put("c", "last", """{"n":$i}""")
                PeatMesh.shutdown()
                check(PeatMesh.liveHandles() == 0L) { "handles left: ${PeatMesh.liveHandles()}" }
                val reopen = ProcessBuilder(
                    File(System.getProperty("java.home"), "bin/java").path, "-cp", System.getProperty("java.class.path"),
                    "io.peat.mesh.ChildMainKt", args[0], "reopen", "$dir/a",
                ).redirectErrorStream(true).start()
                val reopenOut = reopen.inputStream.bufferedReader().readText()
                check(reopen.waitFor() == 0 && reopenOut.contains("reopen ok")) { "reopen after shutdown: $reopenOut" }
                check(runCatching { a.put("c", "d", "{}") }.exceptionOrNull() is PeatException)
                val failed = runCatching { Node.open("$dir/c", "kotlin", ByteArray(32) { 7 }) }.exceptionOrNull()
                check(failed is io.peat.mesh.uniffi.PeatException.ShutDown) { "open after shutdown: $failed" }
                PeatMesh.shutdown()
                println("shutdown ok")
            }
            "jni-only" -> {
                check(runCatching { com.sun.jna.Native.POINTER_SIZE }.isFailure) { "JNA loaded after all" }
                val secret = ByteArray(32) { 7 }
                val a = Node.open("$dir/a", "kotlin", secret, listen = "127.0.0.1:0")
                val b = Node.open("$dir/b", "kotlin", secret, listen = "127.0.0.1:0")
                check(PeatMesh.callPath == "jni")
                b.connect(a.addrs[0])
                a.put("c", "d", """{"v":1}""")
                // a listing reads committed rows, which trail a received change by one group commit
                kotlinx.coroutines.withTimeout(10_000) {
                    while (b.get("c", "d") == null || b.list("c").ids.isEmpty()) kotlinx.coroutines.delay(20)
                }
                check(b.list("c").ids == listOf("d"))
                b.importBytes("c", "e", a.export("c", "d")!!)
                check(b.get("c", "e") == """{"v":1}""")
                val bad = runCatching { a.put("c", "x", "not json") }.exceptionOrNull()
                check(bad is io.peat.mesh.uniffi.PeatException.InvalidArgument) { "bad JSON: $bad" }
                val flow = runCatching { a.documents("c").collect { } }.exceptionOrNull()
                check(flow is UnsupportedOperationException) { "Flow without JNA: $flow" }
                check(PeatMesh.openNodes().size == 2)
                a.close()
                b.close()
                check(PeatMesh.liveHandles() == 0L) { "handles left: ${PeatMesh.liveHandles()}" }
                println("jni-only ok")
            }
            "reopen" -> {
                Node.open(args[2], "kotlin", ByteArray(32) { 7 }, listen = "127.0.0.1:0").use { n ->
                    val got = n.get("c", "last")
                    check(got == """{"n":99}""") { "last write: $got" }
                }
                println("reopen ok")
            }
            else -> exitProcess(2)
        }
    }
}

/**
 * A plugin reload, as ATAK does it: the bindings' classes (and JNA and the
 * Kotlin runtime) are loaded by a fresh URLClassLoader whose parent knows none
 * of them, the native library by absolute path. Load 1 opens a node and leaves
 * a listener; the loader is dropped; load 2 finds the node, uses it (the old
 * listener is never called again) and closes it; load 3 reopens the data dir.
 * This class itself never touches the bindings directly.
 */
fun reloadCycle(lib: String) {
    val urls = System.getProperty("java.class.path").split(java.io.File.pathSeparator)
        .map { java.io.File(it).toURI().toURL() }.toTypedArray()
    val dir = Files.createTempDirectory("peat-kt-reload").toString()
    fun load(): java.net.URLClassLoader = java.net.URLClassLoader(urls, ClassLoader.getPlatformClassLoader())
    fun call(loader: ClassLoader, method: String, vararg args: String): String {
        val probe = loader.loadClass("io.peat.mesh.PluginProbe")
        check(probe.classLoader === loader) { "probe came from ${probe.classLoader}" }
        check(loader.loadClass("com.sun.jna.Native").classLoader === loader)
        val types = Array(args.size) { String::class.java }
        return probe.getMethod(method, *types).invoke(null, *args) as String
    }

    var first: java.net.URLClassLoader? = load()
    val (id, handles, firstCalls) = call(first!!, "start", lib, dir).split(" ")
    check(handles.toLong() >= 2) { "handles after start: $handles" }
    val oldCalls = System.getProperty("peat.probe.oldCalls")
    check(oldCalls == "1") { "old listener calls before reload: $oldCalls" }
    first.close()
    first = null
    System.gc()

    val second = load()
    val resumed = call(second, "resume", lib).split(" ")
    check(resumed.take(3) == listOf(id, "{\"loads\":2}", "0")) { "resume: $resumed" }
    check(System.getProperty("peat.probe.oldCalls") == "1") { "the old load's listener was called after the reload" }
    second.close()

    val third = load()
    val reopened = call(third, "reopen", lib, dir).split(" ")
    check(reopened.take(2) == listOf(id, "{\"loads\":2}")) { "reopen: $reopened" }
    third.close()
    // A JVM binds a JNI library to one class loader at a time: later loads
    // use JNI only if the earlier loader was already collected, else JNA.
    println("reload cycle ok (call paths: $firstCalls, ${resumed[3]}, ${reopened[2]})")
}

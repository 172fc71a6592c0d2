package io.peat.mesh

import java.io.File
import java.net.URL
import java.nio.file.Files

/** What every test needs: the library loaded by absolute path, temp dirs, nodes. */
object Support {
    /** The SDK library the build made (`-Dpeat.lib.dir`). */
    val libPath: String = File(System.getProperty("peat.lib.dir") ?: error("peat.lib.dir not set"), "libpeat_mesh_ffi.so").absolutePath

    val SECRET = ByteArray(32) { 7 }

    init {
        PeatMesh.loadFrom(libPath)
    }

    fun tmp(): String = Files.createTempDirectory("peat-kt").toString()

    suspend fun node(dir: String = tmp()): Node = Node.open(dir, "kotlin", SECRET, listen = "127.0.0.1:0")

    /**
     * The class path of the bindings and their dependencies, as URLs: the
     * compiled classes and the jars of kotlin-stdlib, kotlinx-coroutines and
     * JNA (found through a class of each), for a fresh class loader or a child JVM.
     */
    fun classpath(): List<URL> = listOf(
        Support::class.java,          // test classes
        PeatMesh::class.java,         // main classes (bindings + generated)
        Unit::class.java,             // kotlin-stdlib
        kotlinx.coroutines.Job::class.java,
        com.sun.jna.Native::class.java,
    ).map { it.protectionDomain.codeSource.location }.distinct()

    /** Runs `ChildMainKt` in a new JVM with [args]; returns (exit status, output). */
    fun runChild(vararg args: String, timeoutSeconds: Long = 60, jvmArgs: List<String> = emptyList()): Pair<Int, String> {
        val javaBin = File(System.getProperty("java.home"), "bin/java").path
        val cp = classpath().joinToString(File.pathSeparator) { File(it.toURI()).path }
        val p = ProcessBuilder(listOf(javaBin) + jvmArgs + listOf("-cp", cp, "io.peat.mesh.ChildMainKt", libPath) + args)
            .redirectErrorStream(true)
            .start()
        val out = StringBuilder()
        val reader = Thread { out.append(p.inputStream.bufferedReader().readText()) }.apply { start() }
        if (!p.waitFor(timeoutSeconds, java.util.concurrent.TimeUnit.SECONDS)) {
            p.destroyForcibly()
            error("child did not finish in $timeoutSeconds s: $out")
        }
        reader.join()
        return p.exitValue() to out.toString()
    }
}

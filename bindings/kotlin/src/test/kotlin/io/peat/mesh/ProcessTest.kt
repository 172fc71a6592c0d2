package io.peat.mesh

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/**
 * Scenarios 10 and 13, and the plugin reload cycle, each in a child JVM (they
 * end or take over the whole process's SDK state).
 */
class ProcessTest {
    @Test
    fun exitWithAnOpenNodeNeitherCrashesNorHangs() {
        val (status, out) = Support.runChild("exit-with-open-node", timeoutSeconds = 60)
        assertEquals(0, status, out)
        assertTrue(out.contains("exiting with node open"), out)
    }

    @Test
    fun shutdownFreesEveryHandleAndIsIdempotent() {
        val (status, out) = Support.runChild("shutdown")
        assertEquals(0, status, out)
        assertTrue(out.contains("shutdown ok"), out)
    }

    @Test
    fun separateClassLoaderAndReloadCycle() {
        val (status, out) = Support.runChild("reload-cycle")
        println(out.trim())
        assertEquals(0, status, out)
        assertTrue(out.contains("reload cycle ok"), out)
    }

    @Test
    fun withoutJnaNodesStillSyncOverJni() {
        // JNA finds no native support library: the failure ATAK plugins report
        val noJna = listOf("-Djna.nosys=true", "-Djna.nounpack=true", "-Djna.noclasspath=true", "-Djna.boot.library.path=/nonexistent")
        val (status, out) = Support.runChild("jni-only", jvmArgs = noJna)
        assertEquals(0, status, out)
        assertTrue(out.contains("jni-only ok"), out)
    }
}

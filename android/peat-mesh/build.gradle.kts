import org.jetbrains.kotlin.gradle.dsl.JvmTarget
import java.util.zip.ZipFile

plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

val abis = providers.gradleProperty("peat.abis").get().split(",").map { it.trim() }
val nativesDir = layout.buildDirectory.dir("rustJniLibs")

android {
    namespace = "io.peat.mesh"
    compileSdk = 35

    defaultConfig {
        minSdk = providers.gradleProperty("peat.minSdk").get().toInt()
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis }
    }

    sourceSets["main"].apply {
        // One Kotlin source for the JVM and Android: the hand-written layer and
        // the UniFFI-generated code (regenerated and drift-checked on the host).
        java.srcDirs("../../bindings/kotlin/src/main/kotlin", "../../bindings/kotlin/generated")
        jniLibs.srcDir(nativesDir)
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        // The natives are already stripped by the release-android cargo profile.
        jniLibs.keepDebugSymbols += "**/libpeat_mesh_ffi.so"
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    // JNA as an AAR: it carries libjnidispatch.so for every Android ABI.
    implementation(libs.jna) { artifact { type = "aar" } }
    implementation(libs.coroutines.android)
}

// cargo-ndk builds libpeat_mesh_ffi.so for every ABI into build/rustJniLibs.
val buildNatives by tasks.registering(Exec::class) {
    group = "build"
    description = "Builds the Rust natives for ${abis.joinToString()} with cargo-ndk"
    workingDir = rootDir
    commandLine("./build-natives", nativesDir.get().asFile.absolutePath)
}
tasks.named("preBuild") { dependsOn(buildNatives) }

// Fails the build if the release AAR lacks the natives of any ABI.
val verifyAar by tasks.registering {
    group = "verification"
    description = "Checks the release AAR carries libpeat_mesh_ffi.so for ${abis.joinToString()}"
    dependsOn("assembleRelease")
    doLast {
        val aar = layout.buildDirectory.file("outputs/aar/peat-mesh-release.aar").get().asFile
        val entries = ZipFile(aar).use { z -> z.entries().asSequence().map { it.name }.toSet() }
        val missing = abis.filter { "jni/$it/libpeat_mesh_ffi.so" !in entries }
        if (missing.isNotEmpty()) throw GradleException("$aar lacks libpeat_mesh_ffi.so for: $missing")
        logger.lifecycle("verifyAar: ${aar.name} carries natives for ${abis.joinToString()}")
    }
}

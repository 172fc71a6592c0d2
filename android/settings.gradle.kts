// The Android library project that packages peat-mesh as an AAR for ATAK
// plugins (see README.md here). Sources are the JVM bindings in
// ../bindings/kotlin; natives come from ./build-natives (cargo-ndk).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "peat-mesh-android"
include(":peat-mesh")

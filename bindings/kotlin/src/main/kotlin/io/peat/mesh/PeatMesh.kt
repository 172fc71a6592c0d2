package io.peat.mesh

import io.peat.mesh.uniffi.BeaconEventRecord
import io.peat.mesh.uniffi.BeaconInfoRecord
import io.peat.mesh.uniffi.BeaconRecord
import io.peat.mesh.uniffi.BlobInfo
import io.peat.mesh.uniffi.BlobStatusRecord
import io.peat.mesh.uniffi.CollectionRecord
import io.peat.mesh.uniffi.DocEventRecord
import io.peat.mesh.uniffi.EphemeralOptions
import io.peat.mesh.uniffi.EphemeralStatsRecord
import io.peat.mesh.uniffi.GarbageReportRecord
import io.peat.mesh.uniffi.StorageStatsRecord
import io.peat.mesh.uniffi.EventListener
import io.peat.mesh.uniffi.ListPage
import io.peat.mesh.uniffi.LinkOptions
import io.peat.mesh.uniffi.MessageEventRecord
import io.peat.mesh.uniffi.MessageRecord
import io.peat.mesh.uniffi.NodeOptions
import io.peat.mesh.uniffi.PaceOptions
import io.peat.mesh.uniffi.PeerEventRecord
import io.peat.mesh.uniffi.PeerRecord
import io.peat.mesh.uniffi.PublishOptionsRecord
import io.peat.mesh.uniffi.SubEvent
import io.peat.mesh.uniffi.TransferProfile
import io.peat.mesh.uniffi.TransferProgress
import io.peat.mesh.uniffi.TransferStatusRecord
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.channels.trySendBlocking
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.flowOn
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.io.Closeable
import kotlin.time.Duration.Companion.milliseconds
import io.peat.mesh.uniffi.PeatException as NativeException

/** Every SDK error is a [PeatException] subclass, one per stable error kind. */
typealias PeatException = NativeException

/**
 * This copy of the bindings' link to the native library. Before the generated
 * UniFFI code first runs, it tells the library (through plain JNA) that a new
 * load of these classes is taking over: listeners a previous load (a plugin
 * before its reload) left registered are ended and never called again, since
 * the generated code's callback table is process-wide. Every entry point of
 * this layer passes through [generation] first. With JNI bound it attaches
 * through JNI, so JNA is not needed for it.
 */
internal object Attach {
    /** The generation this load attached as; passed when subscribing. */
    val generation: ULong

    init {
        generation = if (JniBridge.available) {
            JniBridge.attach().toULong()
        } else {
            val name = System.getProperty("uniffi.component.peat_mesh.libraryOverride") ?: "peat_mesh_ffi"
            val lib = com.sun.jna.NativeLibrary.getInstance(name)
            lib.getFunction("peat_kotlin_attach").invokeLong(arrayOf()).toULong()
        }
    }
}

/**
 * The JNI path (see `ffi/src/jni_api.rs`): this class loads the library with
 * `System.load`, which makes the JVM run the library's `JNI_OnLoad`, and that
 * binds these natives through this class's own loader, with no JNA involved,
 * at well under a microsecond a call. Every request/response call of this
 * layer goes here when it can; pushed events, blobs and the peer table use the
 * UniFFI binding (JNA). When the JVM will not bind (one class loader per JNI
 * library: after a plugin reload the previous load may still hold it) or
 * `-Dpeat.mesh.jni=false`, everything goes through UniFFI.
 */
internal object JniBridge {
    /** Whether the natives are bound for this class loader. */
    val available: Boolean = System.getProperty("peat.mesh.jni") != "false" && try {
        val path = System.getProperty("uniffi.component.peat_mesh.libraryOverride")
        if (path != null) System.load(path) else System.loadLibrary("peat_mesh_ffi")
        abiVersion() >= 2
    } catch (e: UnsatisfiedLinkError) {
        false
    }

    @JvmStatic external fun abiVersion(): Int
    @JvmStatic external fun attach(): Long
    @JvmStatic external fun generateFormationSecret(): ByteArray
    @JvmStatic external fun liveHandles(): Long
    @JvmStatic external fun nodeHandles(): LongArray
    @JvmStatic external fun cancelNew(): Long
    @JvmStatic external fun cancel(token: Long)
    @JvmStatic external fun cancelFree(token: Long)
    @JvmStatic external fun nodeOpen(
        dataDir: String, formationId: String, secret: ByteArray, listen: String,
        peers: Array<String>, mdns: Boolean,
        linkNames: Array<String>, linkBinds: Array<String>, linkLevels: IntArray, linksOnly: Boolean,
        paceMs: LongArray, degradedLoss: Double, ruleCollections: Array<String>, ruleLevels: IntArray,
        ephemeral: Array<String>, ephemeralMs: LongArray, policiesJson: String, storageBudget: LongArray,
        bandwidthJson: String, trustJson: String, timeoutMs: Long, cancel: Long,
    ): Long
    @JvmStatic external fun setPolicy(node: Long, collection: String?, policyJson: String)
    @JvmStatic external fun removePolicy(node: Long, collection: String): Boolean
    @JvmStatic external fun policy(node: Long, collection: String): String
    @JvmStatic external fun policies(node: Long): String
    @JvmStatic external fun setBandwidth(node: Long, bandwidthJson: String)
    @JvmStatic external fun bandwidth(node: Long): String
    @JvmStatic external fun bandwidthStats(node: Long): LongArray
    @JvmStatic external fun publish(
        node: Long, topic: String, payload: ByteArray, json: Boolean, ttlMs: Long, hopLimit: Int, multicast: Boolean,
        priority: String,
    ): Int
    @JvmStatic external fun setBeacon(
        node: Long, lat: Double, lon: Double, altM: Double, role: String, level: Int, capabilities: Array<String>,
        state: Int, batteryPct: Int, cpuPct: Int, bandwidthKbps: Long,
    )
    @JvmStatic external fun clearBeacon(node: Long)
    @JvmStatic external fun setLinkSilent(node: Long, name: String, silent: Boolean)
    @JvmStatic external fun nodeClose(node: Long, timeoutMs: Long)
    @JvmStatic external fun nodeId(node: Long): String
    @JvmStatic external fun nodeAddrs(node: Long): Array<String>
    @JvmStatic external fun connect(node: Long, peer: String, timeoutMs: Long, cancel: Long)
    @JvmStatic external fun addPeer(node: Long, peer: String)
    @JvmStatic external fun removePeer(node: Long, peerId: String): Boolean
    @JvmStatic external fun get(node: Long, collection: String, id: String): String?
    @JvmStatic external fun put(node: Long, collection: String, id: String, json: String)
    @JvmStatic external fun mergePatch(node: Long, collection: String, id: String, json: String)
    @JvmStatic external fun delete(node: Long, collection: String, id: String): Boolean
    /** The page's ids, then the next cursor (null on the last page). */
    @JvmStatic external fun list(node: Long, collection: String, prefix: String, after: String?, limit: Int): Array<String?>
    @JvmStatic external fun exportDoc(node: Long, collection: String, id: String): ByteArray?
    @JvmStatic external fun importDoc(node: Long, collection: String, id: String, bytes: ByteArray)
}

/** Runs [jni] when the JNI natives are bound for this class loader, else [jna]. */
internal inline fun <T> either(jni: () -> T, jna: () -> T): T = if (JniBridge.available) jni() else jna()

/**
 * Runs a call only the UniFFI binding offers; where JNA cannot load, says so
 * plainly instead of a linkage error.
 */
internal inline fun <T> needsJna(what: String, block: () -> T): T = try {
    block()
} catch (e: LinkageError) {
    throw UnsupportedOperationException("$what needs JNA, which could not load in this process: $e", e)
}

/** Process-wide entry points: loading and leak checks. */
object PeatMesh {
    /**
     * Loads the native library from an absolute path before the first call.
     * ATAK loads plugin classes with its own class loader; the library must
     * come from the plugin's own directory, by absolute path. The generated
     * UniFFI code opens it through JNA by that path; the request/response
     * calls (nodes, peers, documents) also bind it through JNI (`System.load`
     * of the same file) when the JVM lets this class loader do so, see [callPath].
     */
    fun loadFrom(absolutePath: String) {
        require(java.io.File(absolutePath).isAbsolute) { "not an absolute path: $absolutePath" }
        System.setProperty("uniffi.component.peat_mesh.libraryOverride", absolutePath)
    }

    /** The native ABI version. */
    val abiVersion: Int get() = Attach.generation.let { either({ JniBridge.abiVersion() }, { io.peat.mesh.uniffi.abiVersion().toInt() }) }

    /**
     * A new random 32-byte formation secret (cryptographically secure, never
     * all zeros; an all-zero secret is refused by [Node.open]). Share it with
     * the formation's nodes out of band.
     */
    fun generateFormationSecret(): ByteArray =
        Attach.generation.let { either({ JniBridge.generateFormationSecret() }, { io.peat.mesh.uniffi.generateFormationSecret() }) }

    /** "jni" when request/response calls bypass JNA (see [loadFrom]), else "jna". */
    val callPath: String get() = Attach.generation.let { if (JniBridge.available) "jni" else "jna" }

    /** Live SDK handles in this process (for leak checks). */
    fun liveHandles(): Long = Attach.generation.let { either({ JniBridge.liveHandles() }, { io.peat.mesh.uniffi.liveHandles().toLong() }) }

    /**
     * Nodes open in this process, oldest first. The native library outlives a
     * plugin reload (new classes, same process): a freshly loaded plugin finds
     * here the nodes its previous incarnation left open, to reuse or close.
     */
    fun openNodes(): List<Node> = Attach.generation.let {
        either({ JniBridge.nodeHandles().map { it.toULong() } }, { io.peat.mesh.uniffi.nodeHandles() }).map { Node.adopt(it) }
    }

    /**
     * Sends the SDK's log records at or above [maxLevel] (1 error … 5 trace)
     * to [handler], on the SDK dispatcher thread; replaces any previous handler.
     */
    fun setLogHandler(maxLevel: Int = 3, handler: (level: Int, target: String, message: String) -> Unit) = needsJna("setLogHandler") {
        io.peat.mesh.uniffi.setLogListener(Attach.generation, object : EventListener {
            override fun onEvent(event: SubEvent) {
                if (event is SubEvent.Log) handler(event.level.toInt(), event.target, event.message)
            }
        }, maxLevel.toUByte())
    }

    /** Stops forwarding logs; the handler is released. */
    fun clearLogHandler() = Attach.generation.let { needsJna("clearLogHandler") { io.peat.mesh.uniffi.clearLogListener() } }

    /**
     * Closes every node (each within [timeoutMs], at most 5 s; its store flushed
     * and its data dir free to reopen) and frees every handle; every later call fails with
     * [PeatException.ShutDown]. For process exit, not for a plugin reload
     * (use [openNodes] and close them instead). Idempotent.
     */
    suspend fun shutdown(timeoutMs: Long = 5_000) = Attach.generation.let {
        withContext(Dispatchers.IO) { needsJna("shutdown") { io.peat.mesh.uniffi.shutdown(timeoutMs.toULong()) } }
    }
}

/**
 * A push subscription delivering to a listener on the SDK dispatcher thread,
 * one event at a time, in order. Once [close] returns no callback starts (from
 * inside a callback, the running one finishes); the listener is released
 * exactly once. It also ends when its node closes: `onEnd` runs then.
 */
class Subscription internal constructor(private val handle: ULong) : Closeable {
    /** Ends delivery. Idempotent. */
    override fun close() {
        runCatching { needsJna("Subscription.close") { io.peat.mesh.uniffi.unsubscribe(handle) } }
    }
}

/** An [EventListener] that passes the events [pick] keeps to [deliver] and the end to [onEnd]. */
internal fun <T : Any> listener(pick: (SubEvent) -> T?, onEnd: () -> Unit, deliver: (T) -> Unit) =
    object : EventListener {
        override fun onEvent(event: SubEvent) {
            if (event is SubEvent.Closed) onEnd() else pick(event)?.let(deliver)
        }
    }

/**
 * Runs a blocking SDK call on [Dispatchers.IO] with a cancel token: cancelling
 * the calling coroutine cancels the token, which stops the Rust work.
 */
internal suspend fun <T> cancellable(block: (ULong) -> T): T {
    Attach.generation
    val token = either({ JniBridge.cancelNew().toULong() }, { io.peat.mesh.uniffi.cancelNew() })
    try {
        return coroutineScope {
            val watcher = launch(start = CoroutineStart.UNDISPATCHED) {
                try {
                    awaitCancellation()
                } finally {
                    runCatching { either({ JniBridge.cancel(token.toLong()) }, { io.peat.mesh.uniffi.cancel(token) }) }
                }
            }
            try {
                withContext(Dispatchers.IO) { block(token) }
            } finally {
                watcher.cancel()
            }
        }
    } catch (e: NativeException.Cancelled) {
        // Cancelled because this coroutine was: report it the coroutine way.
        currentCoroutineContext().ensureActive()
        throw e
    } finally {
        runCatching { either({ JniBridge.cancelFree(token.toLong()) }, { io.peat.mesh.uniffi.cancelFree(token) }) }
    }
}

/**
 * A Flow over one push subscription: collecting subscribes, [pick] keeps the
 * events of interest, the SDK's end-of-subscription closes the Flow, and
 * cancelling the collector unsubscribes.
 */
internal fun <T : Any> eventFlow(subscribe: (EventListener) -> ULong, pick: (SubEvent) -> T?): Flow<T> =
    callbackFlow {
        val sub = needsJna("event subscriptions") { subscribe(listener(pick, { channel.close() }) { trySendBlocking(it) }) }
        awaitClose { runCatching { io.peat.mesh.uniffi.unsubscribe(sub) } }
    }

private const val LONG_WAIT_MS: ULong = 3_600_000u

/**
 * A running node. Every suspending call runs off the caller's thread; close it
 * with [close] (or `use {}`).
 */
class Node private constructor(private val handle: ULong) : Closeable {
    /** The handle as JNI takes it. */
    private val h: Long = handle.toLong()

    /** The handle as UniFFI takes it (for this package's extensions). */
    internal val sdkHandle: ULong get() = handle

    companion object {
        internal fun adopt(handle: ULong) = Node(handle)

        /** PACE thresholds all at their defaults. */
        val DEFAULT_PACE = PaceOptions(0u, 0u, 0u, 0.0, 0u, 0u, emptyList())

        /** The default beacon preset and no multicast path. */
        val DEFAULT_EPHEMERAL = EphemeralOptions("", 0u, 0u, "", "")

        /** Ten seconds, no forwarding, no multicast. */
        val DIRECT = PublishOptionsRecord(10_000u, 0u, false)

        /** Publish options with a [Priority]: its class under bandwidth budgets (high by default). */
        fun publishOptions(ttlMs: Long = 10_000, hopLimit: Int = 0, multicast: Boolean = false, priority: Priority = Priority.HIGH) =
            PublishOptionsRecord(ttlMs.toULong(), hopLimit.toUByte(), multicast, priority.wire)

        /**
         * Opens a node; cancelling the coroutine stops the opening. [links] are
         * links besides the UDP socket, each with its PACE level; with
         * [linksOnly] the node binds no UDP socket.
         */
        suspend fun open(
            dataDir: String,
            formationId: String,
            secret: ByteArray,
            listen: String = "0.0.0.0:0",
            peers: List<String> = emptyList(),
            mdns: Boolean = false,
            timeoutMs: Long = 30_000,
            links: List<LinkOptions> = emptyList(),
            linksOnly: Boolean = false,
            pace: PaceOptions = DEFAULT_PACE,
            ephemeral: EphemeralOptions = DEFAULT_EPHEMERAL,
            policies: Map<String, CollectionPolicy> = emptyMap(),
            defaultPolicy: CollectionPolicy? = null,
            storageBudget: Long = 0,
            bandwidth: Bandwidth? = null,
            trust: Trust? = null,
        ): Node = policiesJson(policies, defaultPolicy).let { policiesJson -> val bandwidthJson = bandwidth?.toJson() ?: ""
            val trustJson = trust?.toJson() ?: ""
            Node(cancellable { t ->
            either(
                {
                    JniBridge.nodeOpen(
                        dataDir, formationId, secret, listen, peers.toTypedArray(), mdns,
                        links.map { it.name }.toTypedArray(), links.map { it.bind }.toTypedArray(),
                        links.map { it.level.toInt() }.toIntArray(), linksOnly,
                        longArrayOf(
                            pace.probeIntervalMs.toLong(), pace.deadAfterMs.toLong(),
                            pace.degradedRttMs.toLong(), pace.holdDownMs.toLong(),
                            pace.blobsBelowLevel.toLong(),
                        ),
                        pace.degradedLoss,
                        pace.collectionRules.map { it.collection }.toTypedArray(),
                        pace.collectionRules.map { it.belowLevel.toInt() }.toIntArray(),
                        arrayOf(ephemeral.beaconPreset, ephemeral.multicastGroup, ephemeral.multicastInterface),
                        longArrayOf(ephemeral.beaconIntervalMs.toLong(), ephemeral.beaconTtlMs.toLong()),
                        policiesJson, longArrayOf(storageBudget, 0, 0), bandwidthJson, trustJson, timeoutMs, t.toLong(),
                    ).toULong()
                },
                {
                    io.peat.mesh.uniffi.nodeOpen(
                        NodeOptions(
                            dataDir, formationId, secret, listen, peers, mdns, links, linksOnly, pace, ephemeral, policiesJson,
                            storageBudget.also { require(it >= 0) { "storageBudget $it is negative" } }.toULong(), 0u, 0u,
                            bandwidthJson, trustJson,
                        ),
                        timeoutMs.toULong(), t,
                    )
                },
            )
        }) }
    }

    /** This node's id (64 hex digits). */
    val id: String get() = either({ JniBridge.nodeId(h) }, { io.peat.mesh.uniffi.nodeId(handle) })

    /** `NODEID@HOST:PORT` strings another node can dial. */
    val addrs: List<String> get() = either({ JniBridge.nodeAddrs(h).toList() }, { io.peat.mesh.uniffi.nodeAddrs(handle) })

    /** Dials a peer and waits for admission. */
    suspend fun connect(peer: String, timeoutMs: Long = 10_000) =
        cancellable { t ->
            either({ JniBridge.connect(h, peer, timeoutMs, t.toLong()) }, { io.peat.mesh.uniffi.connect(handle, peer, timeoutMs.toULong(), t) })
        }

    /** Adds a static peer, kept connected until [removePeer]. */
    fun addPeer(peer: String) = either({ JniBridge.addPeer(h, peer) }, { io.peat.mesh.uniffi.addPeer(handle, peer) })

    /**
     * Silences the link [name] (emission control: it sends nothing; peers on it
     * move to another link at once, each with a [PeerEventRecord.LinkChanged])
     * or lets it speak again. [PeatException.InvalidArgument] for an unknown link.
     */
    fun setLinkSilent(name: String, silent: Boolean) =
        either({ JniBridge.setLinkSilent(h, name, silent) }, { io.peat.mesh.uniffi.setLinkSilent(handle, name, silent) })

    /** Removes a static peer; false if it was not one. */
    fun removePeer(id: String): Boolean = either({ JniBridge.removePeer(h, id) }, { io.peat.mesh.uniffi.removePeer(handle, id) })

    /** Every peer seen, with state and discovery sources. */
    fun peers(): List<PeerRecord> = needsJna("peers") { io.peat.mesh.uniffi.peers(handle) }

    /** Writes a document (a JSON object); returns once durable. */
    suspend fun put(collection: String, id: String, json: String) = withContext(Dispatchers.IO) {
        either({ JniBridge.put(h, collection, id, json) }, { io.peat.mesh.uniffi.put(handle, collection, id, json) })
    }

    /** Applies an RFC 7386 merge patch. */
    suspend fun mergePatch(collection: String, id: String, json: String) = withContext(Dispatchers.IO) {
        either({ JniBridge.mergePatch(h, collection, id, json) }, { io.peat.mesh.uniffi.mergePatch(handle, collection, id, json) })
    }

    /** The document as JSON, or null. */
    suspend fun get(collection: String, id: String): String? = withContext(Dispatchers.IO) {
        either({ JniBridge.get(h, collection, id) }, { io.peat.mesh.uniffi.get(handle, collection, id) })
    }

    /** Deletes a document; false if there was none. */
    suspend fun delete(collection: String, id: String): Boolean = withContext(Dispatchers.IO) {
        either({ JniBridge.delete(h, collection, id) }, { io.peat.mesh.uniffi.delete(handle, collection, id) })
    }

    /** One page of ids and the cursor of the next. */
    suspend fun list(collection: String, prefix: String = "", after: String? = null, limit: Int = 100) =
        withContext(Dispatchers.IO) {
            either({
                val page = JniBridge.list(h, collection, prefix, after, limit)
                ListPage(page.dropLast(1).map { it!! }, page.last())
            }, { io.peat.mesh.uniffi.list(handle, collection, prefix, after, limit.toUInt()) })
        }

    /**
     * Collections holding live documents, in name order, with their counts:
     * at most [limit] (1 to 1,024), after [after] (the last name of the
     * previous page). Walks their documents, so it runs on the IO dispatcher.
     */
    suspend fun collections(after: String? = null, limit: Int = 100): List<CollectionRecord> =
        withContext(Dispatchers.IO) {
            // a negative limit is refused like 0, with the library's message
            needsJna("collections") { io.peat.mesh.uniffi.collections(handle, after, limit.coerceAtLeast(0).toUInt()) }
        }

    /** The document's raw Automerge bytes, or null. */
    suspend fun export(collection: String, id: String): ByteArray? =
        withContext(Dispatchers.IO) { either({ JniBridge.exportDoc(h, collection, id) }, { io.peat.mesh.uniffi.exportDoc(handle, collection, id) }) }

    /** Merges raw Automerge bytes into a document. */
    suspend fun importBytes(collection: String, id: String, bytes: ByteArray) =
        withContext(Dispatchers.IO) { either({ JniBridge.importDoc(h, collection, id, bytes) }, { io.peat.mesh.uniffi.importDoc(handle, collection, id, bytes) }) }

    /**
     * Counters: stored documents, connected peers, subscriptions, sync traffic,
     * and `refusedDocuments` (documents or changes from peers refused as nested
     * too deep or too large; nothing of them was stored).
     */
    fun stats() = needsJna("stats") { io.peat.mesh.uniffi.stats(handle) }

    /**
     * Document events pushed to [onEvent] on the SDK dispatcher thread (see
     * [Subscription]); [onEnd] runs when the node closes. The callback may call
     * the SDK, blocking calls included; post to the main thread for UI work.
     */
    fun onDocument(
        collection: String,
        id: String? = null,
        snapshot: Boolean = false,
        onEnd: () -> Unit = {},
        onEvent: (DocEventRecord) -> Unit,
    ): Subscription = needsJna("onDocument") {
        Subscription(
            io.peat.mesh.uniffi.subscribeDocs(Attach.generation, handle, collection, id, snapshot, listener({ (it as? SubEvent.Doc)?.v1 }, onEnd, onEvent)),
        )
    }

    /**
     * Peer events pushed to [onEvent]; see [onDocument]. Besides the peer
     * events, [PeerEventRecord.StorageFailed] (once) says this node's store
     * failed a commit (a full disk, an I/O error): every write then throws
     * [PeatException.Io] until the node is closed and reopened.
     */
    fun onPeerEvent(onEnd: () -> Unit = {}, onEvent: (PeerEventRecord) -> Unit): Subscription = needsJna("onPeerEvent") {
        Subscription(io.peat.mesh.uniffi.subscribePeers(Attach.generation, handle, listener({ (it as? SubEvent.Peer)?.v1 }, onEnd, onEvent)))
    }

    /**
     * Document events as a Flow: collecting subscribes, cancelling the
     * collector unsubscribes. Events are produced on the SDK dispatcher thread;
     * collect on `Dispatchers.Main` to touch the UI.
     */
    fun documents(collection: String, id: String? = null, snapshot: Boolean = false): Flow<DocEventRecord> =
        eventFlow({ io.peat.mesh.uniffi.subscribeDocs(Attach.generation, handle, collection, id, snapshot, it) }) { (it as? SubEvent.Doc)?.v1 }

    /** Peer events as a Flow (see [documents]). */
    fun peerEvents(): Flow<PeerEventRecord> =
        eventFlow({ io.peat.mesh.uniffi.subscribePeers(Attach.generation, handle, it) }) { (it as? SubEvent.Peer)?.v1 }

    /** Adds a file's contents as a blob. */
    suspend fun addBlobFile(path: String): BlobInfo =
        cancellable { t -> needsJna("blobs") { io.peat.mesh.uniffi.blobAddFile(handle, path, LONG_WAIT_MS, t) } }

    /**
     * Starts fetching a blob; see [Transfer]. [providers] are node ids (empty:
     * every connected peer that has it); [profile] says how it uses the
     * network (tactical by default); [rateLimit] is bytes per second (0: none);
     * [expectedSize] is the size the blob must have (a blob reference states
     * it; 0: unknown): a provider claiming another size is not used, and when
     * every provider does the transfer fails with [PeatException.Corrupt]
     * without storing anything. [priority] is the transfer's class: providers
     * send it in that class (never above normal), so under a bandwidth budget a
     * higher-class fetch overtakes a bulk one.
     */
    fun fetchBlob(
        hash: String,
        providers: List<String> = emptyList(),
        profile: TransferProfile = TransferProfile.TACTICAL,
        rateLimit: Long = 0,
        expectedSize: Long = 0,
        priority: Priority = Priority.BULK,
    ): Transfer {
        if (rateLimit < 0) throw NativeException.InvalidArgument("rateLimit must not be negative: $rateLimit")
        if (expectedSize < 0) throw NativeException.InvalidArgument("expectedSize must not be negative: $expectedSize")
        return needsJna("blobs") {
            Transfer(io.peat.mesh.uniffi.blobFetch(handle, hash, providers, profile, rateLimit.toULong(), expectedSize.toULong(), priority.wire))
        }
    }

    /**
     * Throws away the partial download of a blob (what earlier fetches
     * verified), so that the next fetch starts from nothing; true if there was
     * one. A complete blob is never touched. While a fetch of the blob is
     * running this throws [PeatException.InvalidArgument]: [Transfer.cancel]
     * it and wait for its end first.
     */
    suspend fun discardPartial(hash: String): Boolean =
        withContext(Dispatchers.IO) { needsJna("blobs") { io.peat.mesh.uniffi.blobDiscardPartial(handle, hash) } }

    /** Copies a complete blob to [path]; returns its size. */
    suspend fun exportBlob(hash: String, path: String): Long =
        cancellable { t -> needsJna("blobs") { io.peat.mesh.uniffi.blobExport(handle, hash, path, LONG_WAIT_MS, t) } }.toLong()

    /** How much of a blob is here (`state`: missing, partial or complete). */
    fun blobStatus(hash: String): BlobStatusRecord = needsJna("blobs") { io.peat.mesh.uniffi.blobStatus(handle, hash) }

    /** The blob fetches running now (one per blob), in hash order, with their progress. */
    fun blobTransfers(): List<TransferStatusRecord> = needsJna("blobs") { io.peat.mesh.uniffi.blobTransfers(handle) }

    // ----- ephemeral messages and beacons -----

    /**
     * Publishes [payload] on [topic] to every connected peer (one datagram
     * each; nothing is stored); returns how many peers it went to. It never
     * waits. A topic over 64 bytes, a payload over 960 bytes or a reserved
     * topic (`_peat/…`) throws [PeatException.InvalidArgument].
     */
    fun publish(topic: String, payload: ByteArray, options: PublishOptionsRecord = DIRECT): Int =
        publishRaw(topic, payload, false, options)

    /** Publishes JSON text (receivers see [MessageRecord.json]). */
    fun publishJson(topic: String, json: String, options: PublishOptionsRecord = DIRECT): Int =
        publishRaw(topic, json.toByteArray(), true, options)

    private fun publishRaw(topic: String, payload: ByteArray, json: Boolean, o: PublishOptionsRecord): Int = either(
        { JniBridge.publish(h, topic, payload, json, o.ttlMs.toLong(), o.hopLimit.toInt(), o.multicast, o.priority) },
        { io.peat.mesh.uniffi.publish(handle, topic, payload, json, o).toInt() },
    )

    /**
     * Messages on the topics [filter] takes (`*`, `PREFIX*` or a topic) as a
     * Flow: collecting subscribes, cancelling unsubscribes. With [latestOnly]
     * only the newest message of each origin and topic waits. Expired messages
     * never arrive.
     */
    fun messages(filter: String, latestOnly: Boolean = false): Flow<MessageEventRecord> = needsJna("messages") {
        polledFlow({ io.peat.mesh.uniffi.subscribeTopic(handle, filter, latestOnly) }) { io.peat.mesh.uniffi.nextMessage(it, 200u) }
    }

    /** The latest live message of each origin and topic [filter] takes. */
    fun latest(filter: String = "*"): List<MessageRecord> = needsJna("latest") { io.peat.mesh.uniffi.latestMessages(handle, filter) }

    /** Publishes this node's beacon now and every interval until changed or cleared. */
    fun setBeacon(info: BeaconInfoRecord) = either(
        {
            JniBridge.setBeacon(
                h, info.lat, info.lon, info.altM?.toDouble() ?: Double.NaN, info.role, info.level.toInt(),
                info.capabilities.toTypedArray(), info.state.ordinal, info.batteryPct?.toInt() ?: -1,
                info.cpuPct?.toInt() ?: -1, info.bandwidthKbps?.toLong() ?: -1L,
            )
        },
        { io.peat.mesh.uniffi.setBeacon(handle, info) },
    )

    /** Stops publishing this node's beacon (peers forget it at its ttl). */
    fun clearBeacon() = either({ JniBridge.clearBeacon(h) }, { io.peat.mesh.uniffi.clearBeacon(handle) })

    /** Beacons within [radiusM] metres of a point, nearest first (with [BeaconRecord.distanceM]). */
    fun beaconsNear(lat: Double, lon: Double, radiusM: Double): List<BeaconRecord> =
        needsJna("beaconsNear") { io.peat.mesh.uniffi.beaconsNear(handle, lat, lon, radiusM) }

    /** Beacons in a geohash cell, and its eight neighbours if asked. */
    fun beaconsInCell(geohash: String, neighbours: Boolean = false): List<BeaconRecord> =
        needsJna("beaconsInCell") { io.peat.mesh.uniffi.beaconsInCell(handle, geohash, neighbours) }

    /** Beacons heard at or after [sinceMs] (Unix ms, this node's clock); 0: all. */
    fun beaconsSince(sinceMs: Long = 0): List<BeaconRecord> =
        needsJna("beaconsSince") { io.peat.mesh.uniffi.beaconsSince(handle, sinceMs.toULong()) }

    /** Beacon table events (appeared, updated, expired, evicted) as a Flow (see [messages]). */
    fun beaconEvents(): Flow<BeaconEventRecord> = needsJna("beaconEvents") {
        polledFlow({ io.peat.mesh.uniffi.subscribeBeacons(handle) }) { io.peat.mesh.uniffi.nextBeaconEvent(it, 200u) }
    }

    /** Counters of the ephemeral path. */
    fun ephemeralStats(): EphemeralStatsRecord = needsJna("ephemeralStats") { io.peat.mesh.uniffi.ephemeralStats(handle) }

    /**
     * Sets [collection]'s policy (null: the default policy of every collection
     * without its own); it applies from the next write, sync and garbage
     * collection on. [PeatException.InvalidArgument] for a bad value or a
     * 1,025th collection.
     */
    fun setPolicy(collection: String?, policy: CollectionPolicy) = policy.toJson().let { js ->
        either({ JniBridge.setPolicy(h, collection, js) }, { io.peat.mesh.uniffi.setPolicy(handle, collection, js) })
    }

    /** Removes [collection]'s own policy; false if it had none. */
    fun removePolicy(collection: String): Boolean =
        either({ JniBridge.removePolicy(h, collection) }, { io.peat.mesh.uniffi.removePolicy(handle, collection) })

    /** The policy [collection] follows now, every field filled in. */
    fun policy(collection: String): CollectionPolicy = CollectionPolicy.fromJson(
        either({ JniBridge.policy(h, collection) }, { io.peat.mesh.uniffi.policy(handle, collection) }),
    )

    /** The default policy and every collection's own. */
    fun policies(): Pair<CollectionPolicy, Map<String, CollectionPolicy>> =
        parsePolicies(either({ JniBridge.policies(h) }, { io.peat.mesh.uniffi.policies(handle) }))

    /** Runs garbage collection now: expired documents and tombstones, retention, unreferenced blobs. */
    suspend fun collectGarbage(timeoutMs: Long = 60_000): GarbageReportRecord = withContext(Dispatchers.IO) {
        needsJna("collectGarbage") { io.peat.mesh.uniffi.collectGarbage(handle, timeoutMs.toULong()) }
    }

    /** What the node stores now and what its lifecycle removed or refused since open. */
    suspend fun storageStats(timeoutMs: Long = 60_000): StorageStatsRecord = withContext(Dispatchers.IO) {
        needsJna("storageStats") { io.peat.mesh.uniffi.storageStats(handle, timeoutMs.toULong()) }
    }

    /** Replaces the bandwidth budgets (`Bandwidth()` lifts them); an unknown link or a rate below 1024 bytes/s is refused and the old budgets stay. */
    fun setBandwidth(bandwidth: Bandwidth) = bandwidth.toJson().let { js ->
        either({ JniBridge.setBandwidth(h, js) }, { io.peat.mesh.uniffi.setBandwidth(handle, js) })
    }

    /** The bandwidth budgets in force. */
    fun bandwidth(): Bandwidth =
        Bandwidth.fromJson(either({ JniBridge.bandwidth(h) }, { io.peat.mesh.uniffi.bandwidth(handle) }))

    /** What the bandwidth budgets did since the node opened. */
    fun bandwidthStats(): BandwidthStats = either(
        { JniBridge.bandwidthStats(h).let { BandwidthStats(it[0], it[1], it[2].milliseconds, it[3]) } },
        {
            io.peat.mesh.uniffi.bandwidthStats(handle).let {
                BandwidthStats(it.bytesLimited.toLong(), it.waits.toLong(), it.waitedMs.toLong().milliseconds, it.droppedDatagrams.toLong())
            }
        },
    )

    /** Closes the node (blocking, bounded by five seconds). Idempotent. */
    override fun close() = closeWithin(5_000)

    /** Closes the node off the caller's thread (for the main thread). Idempotent. */
    suspend fun closeAsync(timeoutMs: Long = 5_000) = withContext(Dispatchers.IO) { closeWithin(timeoutMs) }

    private fun closeWithin(timeoutMs: Long) {
        runCatching { either({ JniBridge.nodeClose(h, timeoutMs) }, { io.peat.mesh.uniffi.nodeClose(handle, timeoutMs.toULong()) }) }
    }
}

/**
 * A Flow over a polled SDK subscription: collecting subscribes, each wait
 * for the next event (up to 200 ms, so cancellation is seen) runs on
 * `Dispatchers.IO`, and the subscription is closed when collection ends.
 */
internal fun <T : Any> polledFlow(subscribe: () -> ULong, next: (ULong) -> T?): Flow<T> = flow {
    val sub = subscribe()
    try {
        while (true) {
            currentCoroutineContext().ensureActive()
            val ev = try {
                next(sub)
            } catch (e: NativeException.Closed) {
                break
            }
            if (ev != null) emit(ev)
        }
    } finally {
        runCatching { io.peat.mesh.uniffi.unsubscribe(sub) }
    }
}.flowOn(Dispatchers.IO)

/** A blob fetch. [await] it; cancelling the awaiting coroutine cancels the fetch. */
class Transfer internal constructor(private val handle: ULong) : Closeable {
    /** Current progress. */
    fun progress(): TransferProgress = io.peat.mesh.uniffi.transferProgress(handle)

    /** Progress as a Flow that ends after the final (finished) value. */
    val updates: Flow<TransferProgress>
        get() = eventFlow({ io.peat.mesh.uniffi.transferSubscribeProgress(Attach.generation, handle, it) }) {
            (it as? SubEvent.Progress)?.v1
        }

    /** Waits for the end; the fetched blob, or the transfer's exception. */
    suspend fun await(): BlobInfo = cancellable { t -> io.peat.mesh.uniffi.transferWait(handle, LONG_WAIT_MS, t) }

    /** Stops the transfer; what it verified stays on disk for a later fetch. */
    fun cancel() = io.peat.mesh.uniffi.transferCancel(handle)

    /** Frees the handle (a running transfer goes on; [cancel] it to stop it). */
    override fun close() {
        runCatching { io.peat.mesh.uniffi.transferFree(handle) }
    }
}

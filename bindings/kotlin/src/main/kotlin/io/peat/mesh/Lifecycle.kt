package io.peat.mesh

import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/** A collection's class on the wire: higher classes go first on every link. */
enum class Priority(val wire: String) { CRITICAL("critical"), HIGH("high"), NORMAL("normal"), LOW("low"), BULK("bulk") }

/** How much of a document's history travels: all, the current state only, or a window. */
enum class SyncMode(val wire: String) { FULL("full"), LATEST_ONLY("latest_only"), WINDOWED("windowed") }

/**
 * What a node does with changes of a collection according to their authors'
 * signatures: [OFF] (the default: nothing signed or checked), [ACCEPT] (its
 * changes signed, peers' checked and kept, all applied), [FLAG] (the same,
 * unsigned or forged ones counted and logged), [REJECT] (unsigned or forged
 * changes, and those built on one, never applied).
 */
enum class SignaturePolicy(val wire: String) { OFF("off"), ACCEPT("accept"), FLAG("flag"), REJECT("reject") }

/** How a delete and an edit it did not see resolve. */
enum class DeleteRule(val wire: String) { DELETE_WINS("delete_wins"), UPDATE_WINS("update_wins") }

/**
 * One collection's policy. A null field takes the default policy's value
 * (priority normal, full sync, no ttl, tombstones kept 7 days, no retention
 * bound, blobs fetched on demand, delete wins, evictable by the storage
 * budget, unsigned). [keepUntilDelivered]: the storage budget never evicts a document
 * written here until a peer is known to hold its current version; [signatures]: see [SignaturePolicy]. Durations are whole seconds
 * (anything else is an [IllegalArgumentException]). Give every node of a
 * formation the same policies: lifetimes run from a document's newest
 * change, the same on every replica.
 */
data class CollectionPolicy(
    val priority: Priority? = null,
    val sync: SyncMode? = null,
    val window: Duration? = null,
    val ttl: Duration? = null,
    val tombstoneTtl: Duration? = null,
    val maxDocuments: Long? = null,
    val maxBytes: Long? = null,
    val eagerBlobs: Boolean? = null,
    val delete: DeleteRule? = null,
    val keepUntilDelivered: Boolean? = null,
    val signatures: SignaturePolicy? = null,
) {
    /** The policy in the SDK's JSON form (null fields left out). */
    fun toJson(): String {
        fun secs(what: String, d: Duration?): Long? = d?.let {
            require(it.isPositive() && it.inWholeSeconds.seconds == it) { "$what $it: a positive whole number of seconds" }
            it.inWholeSeconds
        }
        val fields = listOf(
            "priority" to priority?.wire?.let(::quote),
            "sync" to sync?.wire?.let(::quote),
            "window_secs" to secs("window", window)?.toString(),
            "ttl_secs" to secs("ttl", ttl)?.toString(),
            "tombstone_ttl_secs" to secs("tombstoneTtl", tombstoneTtl)?.toString(),
            "max_documents" to maxDocuments?.toString(),
            "max_bytes" to maxBytes?.toString(),
            "eager_blobs" to eagerBlobs?.toString(),
            "delete" to delete?.wire?.let(::quote),
            "keep_until_delivered" to keepUntilDelivered?.toString(),
            "signatures" to signatures?.wire?.let(::quote),
        )
        return fields.filter { it.second != null }.joinToString(",", "{", "}") { "\"${it.first}\":${it.second}" }
    }

    companion object {
        /** A policy from the SDK's JSON form. */
        fun fromJson(text: String): CollectionPolicy = from(Json(text).value() as Map<*, *>)

        internal fun from(m: Map<*, *>): CollectionPolicy {
            fun long(k: String) = (m[k] as Number?)?.toLong()
            fun secs(k: String) = long(k)?.seconds
            return CollectionPolicy(
                priority = (m["priority"] as String?)?.let { w -> Priority.entries.first { it.wire == w } },
                sync = (m["sync"] as String?)?.let { w -> SyncMode.entries.first { it.wire == w } },
                window = secs("window_secs"),
                ttl = secs("ttl_secs"),
                tombstoneTtl = secs("tombstone_ttl_secs"),
                maxDocuments = long("max_documents"),
                maxBytes = long("max_bytes"),
                eagerBlobs = m["eager_blobs"] as Boolean?,
                delete = (m["delete"] as String?)?.let { w -> DeleteRule.entries.first { it.wire == w } },
                keepUntilDelivered = m["keep_until_delivered"] as Boolean?,
                signatures = (m["signatures"] as String?)?.let { w -> SignaturePolicy.entries.first { it.wire == w } },
            )
        }
    }
}

/** The policies given at open as the SDK's JSON ("" when none). */
internal fun policiesJson(own: Map<String, CollectionPolicy>, default: CollectionPolicy?): String {
    if (own.isEmpty() && default == null) return ""
    val cols = own.entries.joinToString(",", "{", "}") { "${quote(it.key)}:${it.value.toJson()}" }
    return "{\"default\":${(default ?: CollectionPolicy()).toJson()},\"collections\":$cols}"
}

/** Both policy sets of [Node.policies]. */
internal fun parsePolicies(text: String): Pair<CollectionPolicy, Map<String, CollectionPolicy>> {
    val all = Json(text).value() as Map<*, *>
    val own = (all["collections"] as Map<*, *>).entries.associate { (k, v) -> k as String to CollectionPolicy.from(v as Map<*, *>) }
    return CollectionPolicy.from(all["default"] as Map<*, *>) to own
}

/**
 * Bandwidth budgets in bytes per second: [perPeer] caps what the node sends
 * to each peer, [links] what it sends over each named link (all peers
 * together; [SOCKET] is the node's UDP socket). Every byte waits for both,
 * higher priority classes first; ephemeral messages a budget has no room for
 * are dropped and counted. `Bandwidth()` limits nothing; rates are at least
 * 1024 bytes/s.
 */
data class Bandwidth(val perPeer: Long? = null, val links: Map<String, Long> = emptyMap()) {
    /** The SDK's JSON form. */
    fun toJson(): String {
        val parts = mutableListOf<String>()
        perPeer?.let {
            require(it >= 0) { "perPeer $it is negative" }
            parts += "\"per_peer\":$it"
        }
        if (links.isNotEmpty()) {
            parts += "\"links\":" + links.entries.joinToString(",", "{", "}") { (k, v) ->
                require(v >= 0) { "link $k rate $v is negative" }
                "${quote(k)}:$v"
            }
        }
        return parts.joinToString(",", "{", "}")
    }

    companion object {
        /** The name of the node's UDP socket in [links]. */
        const val SOCKET = "socket"

        /** Budgets from the SDK's JSON form. */
        fun fromJson(text: String): Bandwidth {
            val m = Json(text).value() as Map<*, *>
            return Bandwidth(
                perPeer = (m["per_peer"] as Number?)?.toLong(),
                links = (m["links"] as Map<*, *>?)?.entries?.associate { (k, v) -> k as String to (v as Number).toLong() } ?: emptyMap(),
            )
        }
    }
}

/** What the bandwidth budgets did since the node opened. */
data class BandwidthStats(val bytesLimited: Long, val waits: Long, val waited: Duration, val droppedDatagrams: Long)

internal fun quote(s: String): String = buildString {
    append('"')
    for (c in s) when {
        c == '"' -> append("\\\"")
        c == '\\' -> append("\\\\")
        c < ' ' -> append("\\u%04x".format(c.code))
        else -> append(c)
    }
    append('"')
}

/**
 * A reader of the small JSON texts the SDK returns for policies (objects,
 * strings, integers, booleans, null). Written here because the binding has
 * no JSON dependency and these texts are simple and come from the SDK.
 */
private class Json(private val s: String) {
    private var i = 0

    fun value(): Any? {
        ws()
        return when (s[i]) {
            '{' -> obj()
            '"' -> str()
            't' -> lit("true", true)
            'f' -> lit("false", false)
            'n' -> lit("null", null)
            else -> num()
        }
    }

    private fun ws() { while (i < s.length && s[i].isWhitespace()) i++ }

    private fun lit(word: String, v: Any?): Any? {
        require(s.startsWith(word, i)) { "bad JSON at $i" }
        i += word.length
        return v
    }

    private fun num(): Long {
        val start = i
        if (s[i] == '-') i++
        while (i < s.length && s[i].isDigit()) i++
        return s.substring(start, i).toLong()
    }

    private fun str(): String {
        i++ // opening quote
        val b = StringBuilder()
        while (s[i] != '"') {
            if (s[i] == '\\') {
                i++
                when (s[i]) {
                    'n' -> b.append('\n')
                    't' -> b.append('\t')
                    'r' -> b.append('\r')
                    'b' -> b.append('\b')
                    'f' -> b.append('\u000c')
                    'u' -> { b.append(s.substring(i + 1, i + 5).toInt(16).toChar()); i += 4 }
                    else -> b.append(s[i])
                }
            } else {
                b.append(s[i])
            }
            i++
        }
        i++
        return b.toString()
    }

    private fun obj(): Map<String, Any?> {
        val m = LinkedHashMap<String, Any?>()
        i++
        ws()
        if (s[i] == '}') { i++; return m }
        while (true) {
            ws()
            val k = str()
            ws()
            require(s[i] == ':') { "bad JSON at $i" }
            i++
            m[k] = value()
            ws()
            if (s[i] == ',') { i++; continue }
            require(s[i] == '}') { "bad JSON at $i" }
            i++
            return m
        }
    }
}

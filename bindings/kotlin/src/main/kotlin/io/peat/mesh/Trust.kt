package io.peat.mesh

import io.peat.mesh.uniffi.CertificateRecord
import io.peat.mesh.uniffi.GrantRecord
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import kotlin.time.Duration
import kotlin.time.Duration.Companion.days
import kotlin.time.Duration.Companion.hours

/** Where a device sits in its formation; a delegate issues lower tiers only. */
enum class Tier(val wire: String) { ENTERPRISE("enterprise"), REGIONAL("regional"), TACTICAL("tactical"), EDGE("edge") }

/** What admission asks of peers: the formation secret, a certificate chain, or both. */
enum class AdmissionMode(val wire: String) { SECRET("secret"), CERTIFICATE("certificate"), BOTH("both") }

/** Permission bits of a certificate. */
object Permission {
    const val NONE = 0
    const val RELAY = 1
    const val ENROLL = 2
    const val ADMIN = 4
}

/**
 * A node's trust settings at open (`Node.open(trust =)`): the formation
 * authority's public key (hex), the admission mode, and the node's own chain
 * (hex, own certificate first; empty: the chain it stored before, if any).
 */
data class Trust(val authority: String, val mode: AdmissionMode = AdmissionMode.CERTIFICATE, val chain: List<String> = emptyList()) {
    /** The settings in the SDK's JSON form. */
    fun toJson(): String =
        """{"authority":${quote(authority)},"mode":"${mode.wire}","chain":${chain.joinToString(",", "[", "]") { quote(it) }}}"""
}

/**
 * A formation's authority: its 32-byte [secret] (keep it offline,
 * owner-only; it never needs to reach a node). `toString` never shows it.
 * Certificates and revocation records are hex strings.
 */
class Authority(val formationId: String, secret: ByteArray) {
    private val secret: ByteArray = secret.copyOf()

    /** The authority's public key: what members' [Trust.authority] names. */
    val publicKey: String = needsJna("Authority") { io.peat.mesh.uniffi.authorityPublicKey(formationId, this.secret) }

    /** A copy of the secret, to store. */
    fun secret(): ByteArray = secret.copyOf()

    /** Trust settings naming this authority. */
    fun trust(mode: AdmissionMode = AdmissionMode.CERTIFICATE, chain: List<String> = emptyList()) = Trust(publicKey, mode, chain)

    /** A certificate (hex) for node [subject]; [notBeforeMs] 0 is now. */
    fun issue(
        subject: String,
        tier: Tier = Tier.TACTICAL,
        permissions: Int = Permission.RELAY,
        validFor: Duration = 30.days,
        notBeforeMs: Long = 0,
    ): String {
        require(validFor.isPositive()) { "validFor $validFor must be positive" }
        require(notBeforeMs >= 0 && permissions >= 0) { "notBeforeMs and permissions must not be negative" }
        val grant = GrantRecord(subject, tier.wire, permissions.toUInt(), notBeforeMs.toULong(), validFor.inWholeMilliseconds.toULong())
        return needsJna("Authority.issue") { io.peat.mesh.uniffi.authorityIssue(formationId, secret, grant) }
    }

    /** A revocation record (hex) of [certificate]: hand it to any member ([Node.addRevocation]). */
    fun revoke(certificate: String): String =
        needsJna("Authority.revoke") { io.peat.mesh.uniffi.authorityRevoke(formationId, secret, certificate) }

    override fun toString() = "Authority(formationId=$formationId, publicKey=$publicKey)"

    companion object {
        /** A new authority with a random secret. */
        fun generate(formationId: String) = Authority(formationId, needsJna("Authority") { io.peat.mesh.uniffi.generateAuthoritySecret() })

        /** What [certificate] (hex) says. */
        fun certificateInfo(certificate: String): CertificateRecord =
            needsJna("certificateInfo") { io.peat.mesh.uniffi.certificateInfo(certificate) }
    }
}

/**
 * Where a node stands in its formation: [state] is "secret_only" (no trust
 * settings), "no_certificate", "valid", "revoked" or "invalid" (with [reason]).
 */
data class Membership(
    val state: String,
    val tier: Tier?,
    val permissions: Int,
    val notAfterMs: Long,
    val revokedAtMs: Long,
    val reason: String,
)

/**
 * The node's admission mode, revocation counters and change-signature
 * counters since it opened: changes written here and signed, received ones
 * whose signature checked out or did not (forged), unsigned ones (in
 * collections not [SignaturePolicy.OFF]), those applied though flagged, and
 * those refused.
 */
data class TrustStats(
    val admissionMode: AdmissionMode,
    val revocations: Long,
    val refusedRevocations: Long,
    val changesSigned: Long = 0,
    val signaturesVerified: Long = 0,
    val signaturesForged: Long = 0,
    val changesUnsigned: Long = 0,
    val changesFlagged: Long = 0,
    val changesRejected: Long = 0,
)

/** One change of a document: its hash (hex), its time (Unix ms), who signed it (null: unsigned) and whether that checks out. */
data class ChangeAuthor(val hash: String, val timeMs: Long, val author: String?, val valid: Boolean)

private fun tier(wire: String): Tier? = Tier.entries.firstOrNull { it.wire == wire }

/** Where this node stands in its formation. */
fun Node.membership(): Membership = needsJna("membership") { io.peat.mesh.uniffi.membership(sdkHandle) }.let {
    Membership(it.state, tier(it.tier), it.permissions.toInt(), it.notAfterMs.toLong(), it.revokedAtMs.toLong(), it.reason)
}

/** This node's certificate chain (hex, own first). */
fun Node.certificateChain(): List<String> = needsJna("certificateChain") { io.peat.mesh.uniffi.certificateChain(sdkHandle) }

/** Replaces this node's chain and stores it; it must certify this node and lead to the authority. */
fun Node.setCertificateChain(chain: List<String>) =
    needsJna("setCertificateChain") { io.peat.mesh.uniffi.setCertificateChain(sdkHandle, chain) }

/** The chain a connected peer showed at admission (empty if none). */
fun Node.peerCertificateChain(peer: String): List<String> =
    needsJna("peerCertificateChain") { io.peat.mesh.uniffi.peerCertificateChain(sdkHandle, peer) }

/**
 * Revokes [certificate] with this node's key (an admin, or its issuer
 * holding the enroll permission): it spreads, and every node that learns it
 * cuts the holder off and refuses it. False if it was revoked already.
 */
suspend fun Node.revoke(certificate: String): Boolean = withContext(Dispatchers.IO) {
    needsJna("revoke") { io.peat.mesh.uniffi.revoke(sdkHandle, certificate) }
}

/** Adds a revocation record (hex) made elsewhere: checked, kept, spread and enforced. False if known already. */
suspend fun Node.addRevocation(record: String): Boolean = withContext(Dispatchers.IO) {
    needsJna("addRevocation") { io.peat.mesh.uniffi.addRevocation(sdkHandle, record) }
}

/** The admission mode and revocation counters. */
fun Node.trustStats(): TrustStats = needsJna("trustStats") { io.peat.mesh.uniffi.trustStats(sdkHandle) }.let {
    TrustStats(
        AdmissionMode.entries.first { m -> m.wire == it.admissionMode }, it.revocations.toLong(), it.refusedRevocations.toLong(),
        it.changesSigned.toLong(), it.signaturesVerified.toLong(), it.signaturesForged.toLong(),
        it.changesUnsigned.toLong(), it.changesFlagged.toLong(), it.changesRejected.toLong(),
    )
}

/**
 * Every change of document [collection]/[id], oldest first, with who signed
 * it and whether the signature checks out (checked again by this call). A
 * document that does not exist here is [PeatException.NotFound].
 */
suspend fun Node.authors(collection: String, id: String): List<ChangeAuthor> = withContext(Dispatchers.IO) {
    needsJna("authors") { io.peat.mesh.uniffi.authors(sdkHandle, collection, id) }.map {
        ChangeAuthor(it.hash, it.timeMs, it.author.ifEmpty { null }, it.valid)
    }
}

/**
 * A one-time enrollment token (64 hex digits; hand it to the device out of
 * band) granting [tier] (below this node's own) and [permissions] (within
 * this node's), redeemable for [ttl]. This node's chain must hold
 * [Permission.ENROLL].
 */
fun Node.createEnrollmentToken(tier: Tier, permissions: Int = Permission.NONE, ttl: Duration = 1.hours): String {
    require(ttl.isPositive() && permissions >= 0) { "ttl must be positive and permissions not negative" }
    return needsJna("createEnrollmentToken") {
        io.peat.mesh.uniffi.createEnrollmentToken(sdkHandle, tier.wire, permissions.toUInt(), ttl.inWholeMilliseconds.toULong())
    }
}

/**
 * Enrolls with [enroller] (`NODEID@HOST:PORT`) using its one-time [token]:
 * the certificate chain it answered with (hex, own first), already stored and
 * in use. A used, expired or unknown token is a `PeatException.AdmissionRefused`
 * with the reason, and [membership] then says "denied". Cancelling the
 * coroutine stops it.
 */
suspend fun Node.enroll(enroller: String, token: String, timeoutMs: Long = 10_000): List<String> =
    cancellable { t -> needsJna("enroll") { io.peat.mesh.uniffi.enroll(sdkHandle, enroller, token, timeoutMs.toULong(), t) } }

/**
 * Gives the node of [dataDir] a new identity key, used from its next open
 * (close it first); returns its new node id. Its documents, blobs and
 * revocations stay; its stored certificate chain (of the old key) is dropped
 * at the next open: certify the new key and revoke the old certificate. A
 * dir without an identity is a `PeatException.NotFound`.
 */
fun rotateIdentity(dataDir: String): String = needsJna("rotateIdentity") { io.peat.mesh.uniffi.rotateIdentity(dataDir) }

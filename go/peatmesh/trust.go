package peatmesh

/*
#include <stdlib.h>
#include <string.h>
#include "peat_mesh.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"time"
	"unsafe"
)

// Tier is where a device sits in its formation; a delegate issues lower
// tiers only.
type Tier string

// Tiers, highest first.
const (
	TierEnterprise Tier = "enterprise"
	TierRegional   Tier = "regional"
	TierTactical   Tier = "tactical"
	TierEdge       Tier = "edge"
)

// Permission is what a certificate lets its device do (a bit set).
type Permission uint32

// Permissions.
const (
	PermissionRelay  Permission = 1
	PermissionEnroll Permission = 2
	PermissionAdmin  Permission = 4
)

// AdmissionMode is what admission asks of peers.
type AdmissionMode string

// Admission modes.
const (
	AdmitSecret      AdmissionMode = "secret"      // the formation secret only
	AdmitCertificate AdmissionMode = "certificate" // a certificate chain to the authority
	AdmitBoth        AdmissionMode = "both"        // the secret and a chain
)

// Trust is a node's trust settings at open (Config.Trust): the formation
// authority's public key (hex), the admission mode ("" is
// AdmitCertificate), and the node's own chain (hex, own certificate first;
// empty: the chain it stored before, if any).
type Trust struct {
	Authority string
	Mode      AdmissionMode
	Chain     []string
}

// form is the settings in the SDK's JSON form ("" for none).
func (t *Trust) form() string {
	if t == nil {
		return ""
	}
	mode := t.Mode
	if mode == "" {
		mode = AdmitCertificate
	}
	chain := t.Chain
	if chain == nil {
		chain = []string{}
	}
	out, _ := json.Marshal(struct {
		Authority string   `json:"authority"`
		Mode      string   `json:"mode"`
		Chain     []string `json:"chain"`
	}{t.Authority, string(mode), chain}) // strings always marshal
	return string(out)
}

// Authority is a formation's authority: the holder of its 32-byte secret
// (keep it offline, owner-only; it never needs to reach a node).
type Authority struct {
	FormationID string
	PublicKey   string // what members' Trust.Authority names
	secret      [32]byte
}

// GenerateAuthority makes a new authority for a formation.
func GenerateAuthority(formationID string) (*Authority, error) {
	var s [32]byte
	var e *C.PeatError
	if err := check(C.peat_authority_secret_generate((*C.uint8_t)(unsafe.Pointer(&s[0])), 32, &e), e); err != nil {
		return nil, err
	}
	return NewAuthority(formationID, s[:])
}

// NewAuthority is the authority holding secret (32 bytes, not all zeros).
func NewAuthority(formationID string, secret []byte) (*Authority, error) {
	a := &Authority{FormationID: formationID}
	if len(secret) != 32 {
		return nil, &Error{Code: CodeInvalidArgument, Message: "an authority secret is 32 bytes"}
	}
	copy(a.secret[:], secret)
	var out *C.char
	var e *C.PeatError
	rc := C.peat_authority_public_key(str(formationID), (*C.uint8_t)(unsafe.Pointer(&a.secret[0])), 32, &out, &e)
	runtime.KeepAlive(formationID)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	a.PublicKey = takeString(out)
	return a, nil
}

// Secret returns a copy of the authority's secret, to store.
func (a *Authority) Secret() []byte { return append([]byte(nil), a.secret[:]...) }

// Trust returns trust settings naming this authority.
func (a *Authority) Trust(mode AdmissionMode, chain ...string) *Trust {
	return &Trust{Authority: a.PublicKey, Mode: mode, Chain: chain}
}

// Grant is what a new certificate grants.
type Grant struct {
	Subject     string // the device's node id
	Tier        Tier
	Permissions Permission
	NotBefore   time.Time     // zero: now
	ValidFor    time.Duration // more than 0
}

// Issue signs a certificate (hex) for g.
func (a *Authority) Issue(g Grant) (string, error) {
	var mem cMemory
	defer mem.free()
	cg := (*C.PeatGrant)(mem.alloc(unsafe.Sizeof(C.PeatGrant{})))
	var from int64
	if !g.NotBefore.IsZero() {
		from = g.NotBefore.UnixMilli()
	}
	*cg = C.PeatGrant{
		subject:       mem.str(g.Subject),
		tier:          mem.str(string(g.Tier)),
		permissions:   C.uint32_t(g.Permissions),
		not_before_ms: C.uint64_t(from),
		valid_for_ms:  C.uint64_t(g.ValidFor / time.Millisecond),
	}
	var out *C.char
	var e *C.PeatError
	rc := C.peat_authority_issue(mem.str(a.FormationID), (*C.uint8_t)(unsafe.Pointer(&a.secret[0])), 32, cg, &out, &e)
	if err := check(rc, e); err != nil {
		return "", err
	}
	return takeString(out), nil
}

// Revoke signs a revocation record (hex) of cert: hand it to any member
// (Node.AddRevocation).
func (a *Authority) Revoke(cert string) (string, error) {
	var out *C.char
	var e *C.PeatError
	rc := C.peat_authority_revoke(str(a.FormationID), (*C.uint8_t)(unsafe.Pointer(&a.secret[0])), 32, str(cert), &out, &e)
	runtime.KeepAlive(a.FormationID)
	runtime.KeepAlive(cert)
	if err := check(rc, e); err != nil {
		return "", err
	}
	return takeString(out), nil
}

// CertificateInfo is what a certificate says.
type CertificateInfo struct {
	ID          string // what a revocation names
	FormationID string
	Subject     string // the device's node id
	Issuer      string // the authority's key or a delegate's node id
	Tier        Tier
	Permissions Permission
	NotBefore   time.Time
	NotAfter    time.Time
}

// ParseCertificate says what cert (hex) holds; ErrInvalidArgument if it is
// not a certificate.
func ParseCertificate(cert string) (CertificateInfo, error) {
	var c C.PeatCertificateInfo
	var e *C.PeatError
	rc := C.peat_certificate_info(str(cert), &c, &e)
	runtime.KeepAlive(cert)
	if err := check(rc, e); err != nil {
		return CertificateInfo{}, err
	}
	return CertificateInfo{
		ID: C.GoString(&c.id[0]), FormationID: C.GoString(&c.formation_id[0]),
		Subject: C.GoString(&c.subject[0]), Issuer: C.GoString(&c.issuer[0]),
		Tier: Tier(C.GoString(&c.tier[0])), Permissions: Permission(c.permissions),
		NotBefore: time.UnixMilli(int64(c.not_before_ms)), NotAfter: time.UnixMilli(int64(c.not_after_ms)),
	}, nil
}

// Membership is where a node stands in its formation: State is
// "secret_only" (no trust settings), "no_certificate", "valid", "revoked"
// or "invalid" (with Reason).
type Membership struct {
	State       string
	Tier        Tier       // when valid
	Permissions Permission // when valid
	NotAfter    time.Time  // when valid
	RevokedAt   time.Time  // when revoked
	Reason      string     // when invalid
}

// Membership returns where the node stands in its formation.
func (n *Node) Membership() (Membership, error) {
	h, err := n.node()
	if err != nil {
		return Membership{}, err
	}
	var m C.PeatMembership
	var e *C.PeatError
	if err := check(C.peat_node_membership(h, &m, &e), e); err != nil {
		return Membership{}, err
	}
	out := Membership{
		State: C.GoString(&m.state[0]), Tier: Tier(C.GoString(&m.tier[0])),
		Permissions: Permission(m.permissions), Reason: C.GoString(&m.reason[0]),
	}
	if m.not_after_ms > 0 {
		out.NotAfter = time.UnixMilli(int64(m.not_after_ms))
	}
	if m.revoked_at_ms > 0 {
		out.RevokedAt = time.UnixMilli(int64(m.revoked_at_ms))
	}
	return out, nil
}

// CertificateChain returns the node's chain (hex, own first).
func (n *Node) CertificateChain() ([]string, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatStringList
	var e *C.PeatError
	if err := check(C.peat_node_certificate_chain(h, &l, &e), e); err != nil {
		return nil, err
	}
	return takeList(l), nil
}

// SetCertificateChain replaces the node's chain (hex, own first) and stores
// it; it must certify this node and lead to the authority
// (ErrInvalidArgument otherwise, and nothing changes).
func (n *Node) SetCertificateChain(chain []string) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	var mem cMemory
	defer mem.free()
	var e *C.PeatError
	return check(C.peat_node_set_certificate_chain(h, mem.strs(chain), C.size_t(len(chain)), &e), e)
}

// PeerCertificateChain returns the chain a connected peer showed at
// admission (empty if none).
func (n *Node) PeerCertificateChain(peer string) ([]string, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatStringList
	var e *C.PeatError
	rc := C.peat_node_peer_certificate_chain(h, str(peer), &l, &e)
	runtime.KeepAlive(peer)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	return takeList(l), nil
}

// Revoke revokes cert (hex) with the node's key (an admin, or its issuer
// holding the enroll permission): it spreads, and every node that learns it
// cuts the holder off and refuses it. False if it was revoked already.
func (n *Node) Revoke(ctx context.Context, cert string) (bool, error) {
	return n.revocation(ctx, cert, func(h C.PeatNode, s C.PeatStr, out *C.bool, e **C.PeatError) C.int32_t {
		return C.peat_node_revoke(h, s, out, e)
	})
}

// AddRevocation adds a revocation record (hex) made elsewhere (by
// Authority.Revoke, say): checked, kept, spread and enforced. False if it
// was known already.
func (n *Node) AddRevocation(ctx context.Context, record string) (bool, error) {
	return n.revocation(ctx, record, func(h C.PeatNode, s C.PeatStr, out *C.bool, e **C.PeatError) C.int32_t {
		return C.peat_node_add_revocation(h, s, out, e)
	})
}

func (n *Node) revocation(ctx context.Context, text string, f func(C.PeatNode, C.PeatStr, *C.bool, **C.PeatError) C.int32_t) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	h, err := n.node()
	if err != nil {
		return false, err
	}
	var out C.bool
	var e *C.PeatError
	rc := f(h, str(text), &out, &e)
	runtime.KeepAlive(text)
	if err := check(rc, e); err != nil {
		return false, err
	}
	return bool(out), nil
}

// TrustStats is the node's admission mode, revocation and change-signature
// counters (signature counters since the node opened).
type TrustStats struct {
	AdmissionMode      AdmissionMode
	Revocations        uint64 // held, of certificates not yet expired
	RefusedRevocations uint64 // from peers that did not check out, since open
	ChangesSigned      uint64 // changes written here and signed
	SignaturesVerified uint64 // received changes whose signature checked out
	SignaturesForged   uint64 // received changes whose signature did not
	ChangesUnsigned    uint64 // received changes without one (collections not off)
	ChangesFlagged     uint64 // unsigned or forged changes applied in flag collections
	ChangesRejected    uint64 // changes refused in reject collections
}

// ChangeAuthor is one change of a document and who signed it.
type ChangeAuthor struct {
	Hash   string // the Automerge change hash (64 hex digits)
	TimeMs int64  // the time its writer stamped it with (Unix ms)
	Author string // the node id that signed it, "" when unsigned
	Valid  bool   // whether the signature checks out (false when unsigned)
}

// Authors returns every change of document collection/id, oldest first,
// with who signed it and whether the signature checks out (checked again
// by this call). A document that does not exist here is ErrNotFound.
func (n *Node) Authors(ctx context.Context, collection, id string) ([]ChangeAuthor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatChangeAuthorList
	var e *C.PeatError
	rc := C.peat_node_authors(h, str(collection), str(id), &l, &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(id)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	defer C.peat_change_author_list_free(l)
	items := unsafe.Slice(l.items, int(l.len))
	out := make([]ChangeAuthor, len(items))
	for i := range items {
		c := &items[i]
		out[i] = ChangeAuthor{
			Hash: C.GoString(&c.hash[0]), TimeMs: int64(c.time_ms),
			Author: C.GoString(&c.author[0]), Valid: bool(c.valid),
		}
	}
	return out, nil
}

// TrustStats returns the node's admission mode and revocation counters.
func (n *Node) TrustStats() (TrustStats, error) {
	h, err := n.node()
	if err != nil {
		return TrustStats{}, err
	}
	var s C.PeatTrustStats
	var e *C.PeatError
	if err := check(C.peat_node_trust_stats(h, &s, &e), e); err != nil {
		return TrustStats{}, err
	}
	return TrustStats{
		AdmissionMode: AdmissionMode(C.GoString(&s.admission_mode[0])),
		Revocations:   uint64(s.revocations), RefusedRevocations: uint64(s.refused_revocations),
		ChangesSigned: uint64(s.changes_signed), SignaturesVerified: uint64(s.signatures_verified),
		SignaturesForged: uint64(s.signatures_forged), ChangesUnsigned: uint64(s.changes_unsigned),
		ChangesFlagged: uint64(s.changes_flagged), ChangesRejected: uint64(s.changes_rejected),
	}, nil
}

// CreateEnrollmentToken makes a one-time enrollment token (64 hex digits;
// hand it to the device out of band) granting tier (below this node's own)
// and permissions (within this node's), redeemable for ttl. The node's
// chain must hold PermissionEnroll (ErrInvalidArgument otherwise).
func (n *Node) CreateEnrollmentToken(tier Tier, permissions Permission, ttl time.Duration) (string, error) {
	h, err := n.node()
	if err != nil {
		return "", err
	}
	var out *C.char
	var e *C.PeatError
	t := string(tier)
	rc := C.peat_node_create_enrollment_token(h, str(t), C.uint32_t(permissions), C.uint64_t(ttl/time.Millisecond), &out, &e)
	runtime.KeepAlive(t)
	if err := check(rc, e); err != nil {
		return "", err
	}
	return takeString(out), nil
}

// Enroll enrolls with enroller ("NODEID@HOST:PORT") using its one-time
// token: it returns the certificate chain the enroller answered with (hex,
// own first), already stored and in use. A used, expired or unknown token is
// ErrAdmissionRefused with the reason, and Membership then says "denied".
// Cancelling ctx stops it.
func (n *Node) Enroll(ctx context.Context, enroller, token string) ([]string, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatStringList
	err = withCancel(ctx, func(c C.PeatCancel) error {
		var e *C.PeatError
		rc := C.peat_node_enroll(h, str(enroller), str(token), timeoutMs(ctx), c, &l, &e)
		runtime.KeepAlive(enroller)
		runtime.KeepAlive(token)
		return check(rc, e)
	})
	if err != nil {
		return nil, err
	}
	return takeList(l), nil
}

// RotateIdentity gives the node of dataDir a new identity key, used from its
// next open (close it first), and returns its new node id. Its documents,
// blobs and revocations stay; its stored certificate chain (of the old key)
// is dropped at the next open: certify the new key and revoke the old
// certificate. A dir without an identity is ErrNotFound.
func RotateIdentity(dataDir string) (string, error) {
	var out *C.char
	var e *C.PeatError
	rc := C.peat_rotate_identity(str(dataDir), &out, &e)
	runtime.KeepAlive(dataDir)
	if err := check(rc, e); err != nil {
		return "", err
	}
	return takeString(out), nil
}

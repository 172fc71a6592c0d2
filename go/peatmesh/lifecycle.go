package peatmesh

/*
#include <stdlib.h>
#include "peat_mesh.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"
)

// Priority is a collection's class on the wire: higher classes go first on
// every link.
type Priority string

// The priority classes, most important first.
const (
	PriorityCritical Priority = "critical"
	PriorityHigh     Priority = "high"
	PriorityNormal   Priority = "normal"
	PriorityLow      Priority = "low"
	PriorityBulk     Priority = "bulk"
)

// SyncMode says how much of a document's history travels to peers.
type SyncMode string

// The sync modes.
const (
	SyncFull       SyncMode = "full"        // every change
	SyncLatestOnly SyncMode = "latest_only" // the current state, not the history behind it
	SyncWindowed   SyncMode = "windowed"    // history younger than CollectionPolicy.Window
)

// DeleteRule says how a delete and an edit it did not see resolve.
type DeleteRule string

// The delete rules.
const (
	DeleteWins DeleteRule = "delete_wins"
	UpdateWins DeleteRule = "update_wins"
)

// SignaturePolicy says what a node does with changes of a collection
// according to their authors' signatures.
type SignaturePolicy string

// The signature policies.
const (
	// SignaturesOff: nothing signed or checked (the default).
	SignaturesOff SignaturePolicy = "off"
	// SignaturesAccept: this node's changes signed, peers' checked and kept,
	// all applied.
	SignaturesAccept SignaturePolicy = "accept"
	// SignaturesFlag: as accept, and unsigned or forged changes counted and logged.
	SignaturesFlag SignaturePolicy = "flag"
	// SignaturesReject: unsigned or forged changes, and those built on one,
	// never applied.
	SignaturesReject SignaturePolicy = "reject"
)

// CollectionPolicy is one collection's policy. A zero field takes the
// default policy's value (priority normal, full sync, no TTL, tombstones kept
// 7 days, no retention bound, blobs fetched on demand, delete wins).
// Durations are whole seconds; a fraction of a second is ErrInvalidArgument.
// Give every node of a formation the same policies: lifetimes run from a
// document's newest change, the same on every replica.
type CollectionPolicy struct {
	Priority     Priority
	Sync         SyncMode
	Window       time.Duration // with SyncWindowed
	TTL          time.Duration // documents unchanged this long are removed everywhere
	TombstoneTTL time.Duration // deleted documents' tombstones are removed after this
	MaxDocuments uint64        // keep at most this many documents here (oldest removed first)
	MaxBytes     uint64        // keep at most this many bytes of documents here
	EagerBlobs   bool          // fetch referenced blobs as documents arrive
	Delete       DeleteRule
	// KeepUntilDelivered: the storage budget never evicts a document written
	// here until a peer is known to hold its current version.
	KeepUntilDelivered bool
	// Signatures: signing of this node's changes and checking of peers'.
	Signatures SignaturePolicy
}

func secs(what string, d time.Duration) (any, error) {
	if d == 0 {
		return nil, nil
	}
	if d < 0 || d%time.Second != 0 {
		return nil, &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("%s %v: a positive whole number of seconds", what, d)}
	}
	return uint64(d / time.Second), nil
}

// form is the policy in the SDK's JSON form (unset fields left out).
func (p CollectionPolicy) form() (map[string]any, error) {
	f := map[string]any{}
	set := func(k string, v any) {
		if v != nil {
			f[k] = v
		}
	}
	if p.Priority != "" {
		f["priority"] = p.Priority
	}
	if p.Sync != "" {
		f["sync"] = p.Sync
	}
	for _, d := range []struct {
		key, what string
		v         time.Duration
	}{{"window_secs", "window", p.Window}, {"ttl_secs", "TTL", p.TTL}, {"tombstone_ttl_secs", "tombstone TTL", p.TombstoneTTL}} {
		s, err := secs(d.what, d.v)
		if err != nil {
			return nil, err
		}
		set(d.key, s)
	}
	if p.MaxDocuments > 0 {
		f["max_documents"] = p.MaxDocuments
	}
	if p.MaxBytes > 0 {
		f["max_bytes"] = p.MaxBytes
	}
	if p.EagerBlobs {
		f["eager_blobs"] = true
	}
	if p.Delete != "" {
		f["delete"] = p.Delete
	}
	if p.KeepUntilDelivered {
		f["keep_until_delivered"] = true
	}
	if p.Signatures != "" {
		f["signatures"] = p.Signatures
	}
	return f, nil
}

// policyJSON is the form of the SDK's answer (every field written).
type policyJSON struct {
	Priority     Priority        `json:"priority"`
	Sync         SyncMode        `json:"sync"`
	WindowSecs   uint64          `json:"window_secs"`
	TTLSecs      uint64          `json:"ttl_secs"`
	TombstoneTTL uint64          `json:"tombstone_ttl_secs"`
	MaxDocuments uint64          `json:"max_documents"`
	MaxBytes     uint64          `json:"max_bytes"`
	EagerBlobs   bool            `json:"eager_blobs"`
	Delete       DeleteRule      `json:"delete"`
	KeepUntil    bool            `json:"keep_until_delivered"`
	Signatures   SignaturePolicy `json:"signatures"`
}

func (j policyJSON) policy() CollectionPolicy {
	s := func(n uint64) time.Duration { return time.Duration(n) * time.Second }
	return CollectionPolicy{
		Priority: j.Priority, Sync: j.Sync, Window: s(j.WindowSecs), TTL: s(j.TTLSecs),
		TombstoneTTL: s(j.TombstoneTTL), MaxDocuments: j.MaxDocuments, MaxBytes: j.MaxBytes,
		EagerBlobs: j.EagerBlobs, Delete: j.Delete, KeepUntilDelivered: j.KeepUntil,
		Signatures: j.Signatures,
	}
}

// policiesJSON is Config's policies for Open ("" when none are set).
func policiesJSON(own map[string]CollectionPolicy, def *CollectionPolicy) (string, error) {
	if len(own) == 0 && def == nil {
		return "", nil
	}
	all := map[string]any{}
	if def != nil {
		f, err := def.form()
		if err != nil {
			return "", err
		}
		all["default"] = f
	}
	cols := map[string]any{}
	for c, p := range own {
		f, err := p.form()
		if err != nil {
			return "", err
		}
		cols[c] = f
	}
	all["collections"] = cols
	b, err := json.Marshal(all)
	return string(b), err
}

// SetPolicy sets collection's policy ("" sets the default policy of every
// collection without its own); it applies from the next write, sync and
// garbage collection on. A bad value or a 1,025th collection is
// ErrInvalidArgument.
func (n *Node) SetPolicy(collection string, p CollectionPolicy) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	f, err := p.form()
	if err != nil {
		return err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	js := string(b)
	var e *C.PeatError
	rc := C.peat_node_set_policy(h, str(collection), str(js), &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(js)
	return check(rc, e)
}

// RemovePolicy removes collection's own policy (it follows the default
// again); false if it had none.
func (n *Node) RemovePolicy(collection string) (bool, error) {
	h, err := n.node()
	if err != nil {
		return false, err
	}
	var removed C.bool
	var e *C.PeatError
	rc := C.peat_node_remove_policy(h, str(collection), &removed, &e)
	runtime.KeepAlive(collection)
	return bool(removed), check(rc, e)
}

// Policy returns the policy collection follows now, every field filled in.
func (n *Node) Policy(collection string) (CollectionPolicy, error) {
	h, err := n.node()
	if err != nil {
		return CollectionPolicy{}, err
	}
	var out *C.char
	var e *C.PeatError
	rc := C.peat_node_policy(h, str(collection), &out, &e)
	runtime.KeepAlive(collection)
	if err := check(rc, e); err != nil {
		return CollectionPolicy{}, err
	}
	var j policyJSON
	if err := json.Unmarshal([]byte(takeString(out)), &j); err != nil {
		return CollectionPolicy{}, err
	}
	return j.policy(), nil
}

// Policies returns the default policy and every collection's own.
func (n *Node) Policies() (CollectionPolicy, map[string]CollectionPolicy, error) {
	h, err := n.node()
	if err != nil {
		return CollectionPolicy{}, nil, err
	}
	var out *C.char
	var e *C.PeatError
	if err := check(C.peat_node_policies(h, &out, &e), e); err != nil {
		return CollectionPolicy{}, nil, err
	}
	var all struct {
		Default     policyJSON            `json:"default"`
		Collections map[string]policyJSON `json:"collections"`
	}
	if err := json.Unmarshal([]byte(takeString(out)), &all); err != nil {
		return CollectionPolicy{}, nil, err
	}
	own := make(map[string]CollectionPolicy, len(all.Collections))
	for c, p := range all.Collections {
		own[c] = p.policy()
	}
	return all.Default.policy(), own, nil
}

// GarbageReport is what one garbage collection removed.
type GarbageReport struct {
	ExpiredDocuments uint64 // past their collection's TTL
	PurgedTombstones uint64 // past their collection's tombstone TTL
	EvictedDocuments uint64 // beyond their collection's retention
	RemovedBlobs     uint64 // blobs no live document refers to
	BlobBytesFreed   uint64
	Took             time.Duration
	BudgetEvicted    uint64 // by the node's storage budget
}

// CollectGarbage runs garbage collection now: expired documents and
// tombstones, retention (oldest first), unreferenced blobs. It waits until
// ctx's deadline at most.
func (n *Node) CollectGarbage(ctx context.Context) (GarbageReport, error) {
	if err := ctx.Err(); err != nil {
		return GarbageReport{}, err
	}
	h, err := n.node()
	if err != nil {
		return GarbageReport{}, err
	}
	var r C.PeatGarbageReport
	var e *C.PeatError
	if err := check(C.peat_node_collect_garbage(h, timeoutMs(ctx), &r, &e), e); err != nil {
		return GarbageReport{}, err
	}
	return GarbageReport{
		ExpiredDocuments: uint64(r.expired_documents), PurgedTombstones: uint64(r.purged_tombstones),
		EvictedDocuments: uint64(r.evicted_documents), RemovedBlobs: uint64(r.removed_blobs),
		BlobBytesFreed: uint64(r.blob_bytes_freed), Took: time.Duration(r.took_ms) * time.Millisecond,
		BudgetEvicted: uint64(r.budget_evicted),
	}, nil
}

// StorageStats is what the node stores now and what its lifecycle removed
// or refused since open.
type StorageStats struct {
	Documents, Tombstones, DocumentBytes                   uint64
	ExpiredTotal, TombstonesPurgedTotal, EvictedTotal      uint64
	RefusedExpiredTotal, RefusedEvictedTotal, RevivedTotal uint64
	GCRuns, BudgetEvictedTotal                             uint64
}

// StorageStats returns the node's storage counters (one walk over the
// documents' metadata), waiting until ctx's deadline at most.
func (n *Node) StorageStats(ctx context.Context) (StorageStats, error) {
	if err := ctx.Err(); err != nil {
		return StorageStats{}, err
	}
	h, err := n.node()
	if err != nil {
		return StorageStats{}, err
	}
	var s C.PeatStorageStats
	var e *C.PeatError
	if err := check(C.peat_node_storage_stats(h, timeoutMs(ctx), &s, &e), e); err != nil {
		return StorageStats{}, err
	}
	return StorageStats{
		Documents: uint64(s.documents), Tombstones: uint64(s.tombstones), DocumentBytes: uint64(s.document_bytes),
		ExpiredTotal: uint64(s.expired_total), TombstonesPurgedTotal: uint64(s.tombstones_purged_total),
		EvictedTotal: uint64(s.evicted_total), RefusedExpiredTotal: uint64(s.refused_expired_total),
		RefusedEvictedTotal: uint64(s.refused_evicted_total), RevivedTotal: uint64(s.revived_total),
		GCRuns: uint64(s.gc_runs), BudgetEvictedTotal: uint64(s.budget_evicted_total),
	}, nil
}

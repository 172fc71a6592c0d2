// Package peatmesh drives peat-mesh nodes from Go: documents that sync between
// peers of a formation, durably, with no server.
//
// It is a thin cgo layer over the C ABI in include/peat_mesh.h; all behaviour
// lives in the shared Rust SDK layer. The Rust static library
// (libpeat_mesh_ffi.a, built from this repository) is linked into the Go
// binary: set CGO_LDFLAGS=-L<dir holding it>; nothing is needed at run time.
//
// Every call that can wait takes a context.Context: its deadline becomes the
// call's timeout and, for Open and Connect, cancelling it stops the Rust work.
// Close is the contract for releasing a node; a cleanup is only a safety net.
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
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Config describes a node. FormationSecret must be the same on every node that
// may sync with this one; make it once with GenerateFormationSecret (an
// all-zero secret is refused with ErrInvalidArgument).
type Config struct {
	DataDir         string   // created if missing
	FormationID     string   // public formation id
	FormationSecret [32]byte // shared secret, never sent; never all zeros
	Listen          string   // e.g. "127.0.0.1:0"; empty means "0.0.0.0:0"; ignored with LinksOnly
	Peers           []string // static peers, "NODEID@ADDR[,ADDR…]" (ADDR is HOST:PORT or a link address)
	MDNS            bool     // announce and find peers of the formation on the LAN by mDNS
	// Links are links besides the node's UDP socket, each a UDP socket of its
	// own; a link carries traffic to peers' links of the same name only.
	Links []Link
	// LinksOnly carries connections over Links only: no UDP socket is bound
	// (Listen is ignored). It needs a link and is refused with MDNS.
	LinksOnly bool
	// Pace holds the PACE thresholds that judge links and move traffic
	// between them; the zero value is the default policy.
	Pace Pace
	// Ephemeral sets the beacon preset and the secured multicast path of
	// ephemeral messages and beacons; the zero value is the default.
	Ephemeral Ephemeral
	// Policies are collections' own policies; DefaultPolicy (nil: the
	// library's default) applies to every other collection.
	Policies      map[string]CollectionPolicy
	DefaultPolicy *CollectionPolicy
	// StorageBudget caps the documents' bytes (0: none): past 90 % of it
	// garbage collection evicts bulk, then low, normal and high documents,
	// oldest first, down to 80 %; critical documents are never evicted.
	StorageBudget uint64
	// Bandwidth caps the bytes per second sent to each peer and over each
	// link; the zero value limits nothing (see Bandwidth).
	Bandwidth Bandwidth
	// Trust admits peers by membership certificate (see Trust, Authority);
	// nil: by the formation secret only.
	Trust *Trust
}

// Link is a link besides the node's UDP socket (Config.Links): a UDP socket of
// its own bound to one interface's address.
type Link struct {
	Name string // unique per node; peers' links of the same name are its far ends
	Bind string // the address to bind, e.g. "10.0.2.1:0"; or "ble" / "ble:ADAPTER" for a Bluetooth LE link (Linux)
	// Level is the link's PACE level: 0 primary, 1 alternate, 2 contingency,
	// 3 emergency (at most 7; more is ErrInvalidArgument at Open). Links of one
	// level are tried in the order given.
	Level uint32
}

// Pace holds the PACE thresholds (Config.Pace). A zero field takes the
// default; durations are whole milliseconds (a positive duration under 1 ms
// counts as 1 ms) and a negative one is ErrInvalidArgument at Open.
type Pace struct {
	ProbeInterval time.Duration // how often each link to each peer is probed (default 500 ms)
	DeadAfter     time.Duration // a link answering no probe for this long is dead (default 2 s)
	DegradedRTT   time.Duration // smoothed RTT past which a link is degraded (default 2 s)
	DegradedLoss  float64       // probe loss (0.0–1.0) past which a link is degraded (default 0.25)
	// HoldDown is how long a better level must stay healthy before traffic
	// goes back to it (default 10 s).
	HoldDown time.Duration
	// BlobsBelowLevel keeps blob transfers on links of a level below it
	// (3 keeps them off emergency links; 1 on the primary only); 0: any level.
	// At most 8.
	BlobsBelowLevel uint32
	// CollectionsBelowLevel keeps documents of each named collection on links
	// of a level below its value (1–8; 3 keeps them off emergency links); the
	// other collections sync over any link. Nil: no rule.
	CollectionsBelowLevel map[string]uint32
}

// cPace converts p for the C ABI.
func (p Pace) cPace() (C.PeatPaceOptions, error) {
	ms := func(what string, d time.Duration) (C.uint64_t, error) {
		if d < 0 {
			return 0, &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("pace %s is negative (%v)", what, d)}
		}
		return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond), nil
	}
	var out C.PeatPaceOptions
	var err error
	if out.probe_interval_ms, err = ms("ProbeInterval", p.ProbeInterval); err != nil {
		return out, err
	}
	if out.dead_after_ms, err = ms("DeadAfter", p.DeadAfter); err != nil {
		return out, err
	}
	if out.degraded_rtt_ms, err = ms("DegradedRTT", p.DegradedRTT); err != nil {
		return out, err
	}
	if out.hold_down_ms, err = ms("HoldDown", p.HoldDown); err != nil {
		return out, err
	}
	out.degraded_loss = C.double(p.DegradedLoss)
	out.blobs_below_level = C.uint32_t(p.BlobsBelowLevel)
	return out, nil
}

// Node is an open peat-mesh node. Safe for concurrent use.
type Node struct {
	mu     sync.RWMutex
	handle C.PeatNode
	closed bool
}

// defaultTimeout bounds calls whose context has no deadline.
const defaultTimeout = 30 * time.Second

func timeoutMs(ctx context.Context) C.uint64_t {
	if d, ok := ctx.Deadline(); ok {
		ms := time.Until(d).Milliseconds()
		if ms < 0 {
			ms = 0
		}
		return C.uint64_t(ms)
	}
	return C.uint64_t(defaultTimeout.Milliseconds())
}

// withCancel runs f with a cancel token that is triggered if ctx is cancelled
// while f runs, so the Rust work stops.
func withCancel(ctx context.Context, f func(C.PeatCancel) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var token C.PeatCancel
	var e *C.PeatError
	if err := check(C.peat_cancel_new(&token, &e), e); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			C.peat_cancel(token, nil)
		case <-done:
		}
	}()
	err := f(token)
	close(done)
	C.peat_cancel_free(token, nil)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

// GenerateFormationSecret returns a new random formation secret: 32 bytes from
// a cryptographically secure generator, never all zeros. Share it with the
// formation's nodes out of band (not on a command line).
func GenerateFormationSecret() ([32]byte, error) {
	var out [32]byte
	var e *C.PeatError
	// C writes into Go memory during the call only (no Go pointers inside): allowed.
	rc := C.peat_formation_secret_generate((*C.uint8_t)(unsafe.Pointer(&out[0])), 32, &e)
	return out, check(rc, e)
}

// Open opens a node.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Ephemeral.BeaconInterval < 0 || cfg.Ephemeral.BeaconTTL < 0 {
		return nil, &Error{Code: CodeInvalidArgument, Message: "beacon interval and TTL must not be negative"}
	}
	pace, err := cfg.Pace.cPace()
	if err != nil {
		return nil, err
	}
	policies, err := policiesJSON(cfg.Policies, cfg.DefaultPolicy)
	if err != nil {
		return nil, err
	}
	// Everything the options struct points to lives in C memory.
	var mem cMemory
	defer mem.free()
	cstr := mem.str
	peers := mem.strs(cfg.Peers)
	// The per-collection rules, in C memory like the rest.
	rules := mem.alloc(uintptr(len(cfg.Pace.CollectionsBelowLevel)+1) * unsafe.Sizeof(C.PeatCollectionRule{}))
	crules := unsafe.Slice((*C.PeatCollectionRule)(rules), len(cfg.Pace.CollectionsBelowLevel)+1)
	i := 0
	for c, below := range cfg.Pace.CollectionsBelowLevel {
		crules[i] = C.PeatCollectionRule{collection: cstr(c), below_level: C.uint32_t(below)}
		i++
	}
	pace.collection_rules = (*C.PeatCollectionRule)(rules)
	pace.collection_rules_len = C.size_t(len(cfg.Pace.CollectionsBelowLevel))
	// One element more than needed, so that the array is never of size zero.
	links := mem.alloc(uintptr(len(cfg.Links)+1) * unsafe.Sizeof(C.PeatLinkOptions{}))
	clinks := unsafe.Slice((*C.PeatLinkOptions)(links), len(cfg.Links)+1)
	for i, l := range cfg.Links {
		clinks[i] = C.PeatLinkOptions{name: cstr(l.Name), bind: cstr(l.Bind), level: C.uint32_t(l.Level)}
	}
	secret := mem.alloc(32)
	copy(unsafe.Slice((*byte)(secret), 32), cfg.FormationSecret[:])
	// Wiped before the deferred free (defers run last-in, first-out).
	defer C.memset(secret, 0, 32)
	opts := (*C.PeatNodeOptions)(mem.alloc(unsafe.Sizeof(C.PeatNodeOptions{})))
	*opts = C.PeatNodeOptions{
		data_dir:             cstr(cfg.DataDir),
		formation_id:         cstr(cfg.FormationID),
		formation_secret:     (*C.uint8_t)(secret),
		formation_secret_len: 32,
		listen:               cstr(cfg.Listen),
		peers:                peers,
		peers_len:            C.size_t(len(cfg.Peers)),
		mdns:                 C.bool(cfg.MDNS),
		links:                (*C.PeatLinkOptions)(links),
		links_len:            C.size_t(len(cfg.Links)),
		links_only:           C.bool(cfg.LinksOnly),
		pace:                 pace,
		ephemeral: C.PeatEphemeralOptions{
			beacon_preset:       cstr(cfg.Ephemeral.BeaconPreset),
			beacon_interval_ms:  C.uint64_t(cfg.Ephemeral.BeaconInterval / time.Millisecond),
			beacon_ttl_ms:       C.uint64_t(cfg.Ephemeral.BeaconTTL / time.Millisecond),
			multicast_group:     cstr(cfg.Ephemeral.MulticastGroup),
			multicast_interface: cstr(cfg.Ephemeral.MulticastInterface),
		},
		policies_json:        cstr(policies),
		storage_budget_bytes: C.uint64_t(cfg.StorageBudget),
		bandwidth_json:       cstr(cfg.Bandwidth.form()),
		trust_json:           cstr(cfg.Trust.form()),
	}
	n := &Node{}
	var handle C.PeatNode
	err = withCancel(ctx, func(token C.PeatCancel) error {
		var e *C.PeatError
		rc := C.peat_node_open(opts, timeoutMs(ctx), token, &handle, &e)
		return check(rc, e)
	})
	if err != nil {
		return nil, err
	}
	n.handle = handle
	h := n.handle
	// Safety net only: Close is the contract. Never blocks the cleanup goroutine.
	runtime.AddCleanup(n, func(h C.PeatNode) { go C.peat_node_close(h, 1000, nil) }, h)
	return n, nil
}

func (n *Node) node() (C.PeatNode, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return C.PeatNode{}, &Error{Code: CodeClosed, Message: "node is closed"}
	}
	return n.handle, nil
}

// Close closes the node, waiting up to 5 s for its work to end. Idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	h := n.handle
	n.mu.Unlock()
	var e *C.PeatError
	return check(C.peat_node_close(h, 5000, &e), e)
}

// ID is the node's id (64 hex digits).
func (n *Node) ID() (string, error) {
	h, err := n.node()
	if err != nil {
		return "", err
	}
	var out *C.char
	var e *C.PeatError
	if err := check(C.peat_node_id(h, &out, &e), e); err != nil {
		return "", err
	}
	return takeString(out), nil
}

// Addrs lists strings that reach this node: "NODEID@HOST:PORT" per UDP
// socket, then "NODEID@LINKADDR" when the node has Links (with LinksOnly, only
// that one).
func (n *Node) Addrs() ([]string, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var out C.PeatStringList
	var e *C.PeatError
	if err := check(C.peat_node_addrs(h, &out, &e), e); err != nil {
		return nil, err
	}
	return takeList(out), nil
}

// Connect dials a peer ("NODEID@ADDR[,ADDR…]", as its Addrs gives them) and
// waits for admission.
func (n *Node) Connect(ctx context.Context, peer string) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	return withCancel(ctx, func(token C.PeatCancel) error {
		var e *C.PeatError
		rc := C.peat_node_connect(h, str(peer), timeoutMs(ctx), token, &e)
		runtime.KeepAlive(peer)
		return check(rc, e)
	})
}

// PutJSON writes a document given as a JSON object; returns once durable.
func (n *Node) PutJSON(ctx context.Context, collection, id string, doc json.RawMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := n.node()
	if err != nil {
		return err
	}
	js := string(doc)
	var e *C.PeatError
	rc := C.peat_doc_put(h, str(collection), str(id), str(js), &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(id)
	runtime.KeepAlive(js)
	return check(rc, e)
}

// Put writes a document from any value that marshals to a JSON object.
func (n *Node) Put(ctx context.Context, collection, id string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return &Error{Code: CodeInvalidArgument, Message: err.Error()}
	}
	return n.PutJSON(ctx, collection, id, b)
}

// MergePatch applies an RFC 7386 JSON merge patch; returns once durable.
func (n *Node) MergePatch(ctx context.Context, collection, id string, patch any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := n.node()
	if err != nil {
		return err
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return &Error{Code: CodeInvalidArgument, Message: err.Error()}
	}
	js := string(b)
	var e *C.PeatError
	rc := C.peat_doc_merge_patch(h, str(collection), str(id), str(js), &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(id)
	runtime.KeepAlive(js)
	return check(rc, e)
}

// Get returns a document as JSON; ErrNotFound if it does not exist.
func (n *Node) Get(ctx context.Context, collection, id string) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var out *C.char
	var e *C.PeatError
	rc := C.peat_doc_get(h, str(collection), str(id), &out, &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(id)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	return json.RawMessage(takeString(out)), nil
}

// GetAs decodes a document into a T.
func GetAs[T any](ctx context.Context, n *Node, collection, id string) (T, error) {
	var v T
	raw, err := n.Get(ctx, collection, id)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, &Error{Code: CodeInvalidArgument, Message: err.Error()}
	}
	return v, nil
}

// Delete deletes a document (a tombstone that syncs). It reports whether there was one.
func (n *Node) Delete(ctx context.Context, collection, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	h, err := n.node()
	if err != nil {
		return false, err
	}
	var deleted C.bool
	var e *C.PeatError
	rc := C.peat_doc_delete(h, str(collection), str(id), &deleted, &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(id)
	return bool(deleted), check(rc, e)
}

// List returns up to limit document ids of a collection after the cursor
// `after` ("" for the first page), and the cursor for the next page ("" at the end).
func (n *Node) List(ctx context.Context, collection, prefix, after string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	h, err := n.node()
	if err != nil {
		return nil, "", err
	}
	var ids C.PeatStringList
	var next *C.char
	var e *C.PeatError
	rc := C.peat_doc_list(h, str(collection), str(prefix), str(after), C.size_t(limit), &ids, &next, &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(prefix)
	runtime.KeepAlive(after)
	if err := check(rc, e); err != nil {
		return nil, "", err
	}
	cursor := ""
	if next != nil {
		cursor = takeString(next)
	}
	return takeList(ids), cursor, nil
}

// Stats are a node's counters.
type Stats struct {
	Documents, ConnectedPeers, Subscriptions     uint64
	FramesSent, BytesSent, FramesRecv, BytesRecv uint64
	// Documents (or changes to them) received from peers and refused: nested
	// too deep, or a change too large. Nothing of them was stored.
	RefusedDocuments uint64
	// QueuedEvents is the events waiting unread in the node's subscriptions now.
	QueuedEvents uint64
	// UpdateLatencyCount changes from peers were applied since open, their
	// update latencies (author's commit to application here; the clocks'
	// skew shifts it) summing to UpdateLatencySum.
	UpdateLatencyCount uint64
	UpdateLatencySum   time.Duration
}

// Stats returns the node's counters.
func (n *Node) Stats() (Stats, error) {
	h, err := n.node()
	if err != nil {
		return Stats{}, err
	}
	var s C.PeatNodeStats
	var e *C.PeatError
	if err := check(C.peat_node_stats(h, &s, &e), e); err != nil {
		return Stats{}, err
	}
	return Stats{
		Documents: uint64(s.documents), ConnectedPeers: uint64(s.connected_peers),
		Subscriptions: uint64(s.subscriptions), FramesSent: uint64(s.frames_sent),
		BytesSent: uint64(s.bytes_sent), FramesRecv: uint64(s.frames_received),
		BytesRecv: uint64(s.bytes_received), RefusedDocuments: uint64(s.refused_documents),
		QueuedEvents: uint64(s.queued_events), UpdateLatencyCount: uint64(s.update_latency_count),
		UpdateLatencySum: time.Duration(s.update_latency_sum_ms) * time.Millisecond,
	}, nil
}

// LiveHandles is the number of live SDK handles in the process (for leak checks).
func LiveHandles() uint64 { return uint64(C.peat_live_handles()) }

// Export returns the document's raw Automerge bytes; ErrNotFound if it does not exist.
func (n *Node) Export(ctx context.Context, collection, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var out C.PeatBytes
	var e *C.PeatError
	rc := C.peat_doc_export(h, str(collection), str(id), &out, &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(id)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	b := C.GoBytes(unsafe.Pointer(out.ptr), C.int(out.len))
	C.peat_bytes_free(out)
	return b, nil
}

// Import merges raw Automerge bytes (from any implementation) into a document.
func (n *Node) Import(ctx context.Context, collection, id string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := n.node()
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return &Error{Code: CodeInvalidArgument, Message: "no data"}
	}
	var e *C.PeatError
	rc := C.peat_doc_import(h, str(collection), str(id), (*C.uint8_t)(unsafe.Pointer(&data[0])), C.size_t(len(data)), &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(id)
	runtime.KeepAlive(data)
	return check(rc, e)
}

// PeerState says where a node stands with a peer.
type PeerState string

// The peer states.
const (
	StateConnected      PeerState = "connected"       // admitted and syncing
	StateDisconnected   PeerState = "disconnected"    // was connected; not now
	StateDiscovered     PeerState = "discovered"      // found by a discovery, not connected yet
	StateOtherFormation PeerState = "other_formation" // announcing another formation; never dialled
)

var peerStates = map[C.PeatPeerState]PeerState{
	C.PEAT_PEER_STATE_CONNECTED:       StateConnected,
	C.PEAT_PEER_STATE_DISCONNECTED:    StateDisconnected,
	C.PEAT_PEER_STATE_DISCOVERED:      StateDiscovered,
	C.PEAT_PEER_STATE_OTHER_FORMATION: StateOtherFormation,
}

// PeerInfo describes a peer the node has seen.
type PeerInfo struct {
	ID        string
	Connected bool
	Addr      string        // "" if unknown
	RTT       time.Duration // 0 if unknown
	LastSeen  time.Time     // zero if never
	State     PeerState
	Sources   []Source // discoveries that want the peer, in order static, mdns, direct, kubernetes
	// Links is the health towards the peer of each link that reaches it, in
	// the order of Config.Links; nil when the node has no links besides UDP
	// (or has not met the peer on one).
	Links []LinkHealth
	// Sync bytes sent to and received from the peer since the node opened.
	SyncBytesSent, SyncBytesRecv uint64
	// What waits in the peer's sync queues now (0 when not connected): live
	// updates, and bytes of answers owed.
	SyncQueuedUpdates, SyncQueuedReplyBytes uint64
}

// LinkState says how a link to a peer is judged.
type LinkState int

// The link states (the C ABI's PeatLinkState values).
const (
	LinkHealthy  LinkState = C.PEAT_LINK_STATE_HEALTHY  // answering within the thresholds
	LinkDegraded LinkState = C.PEAT_LINK_STATE_DEGRADED // answering, but lossy or slow past the thresholds
	LinkSuspect  LinkState = C.PEAT_LINK_STATE_SUSPECT  // not proven yet, or missed its last answer
	LinkDead     LinkState = C.PEAT_LINK_STATE_DEAD     // no answer for Pace.DeadAfter (or silenced)
)

// String is "healthy", "degraded", "suspect" or "dead".
func (s LinkState) String() string {
	switch s {
	case LinkHealthy:
		return "healthy"
	case LinkDegraded:
		return "degraded"
	case LinkSuspect:
		return "suspect"
	case LinkDead:
		return "dead"
	}
	return fmt.Sprintf("LinkState(%d)", int(s))
}

// LinkHealth is one link's health towards a peer (PeerInfo.Links), measured
// from its own probes. The durations are -1 while unknown (0 is a real value
// for them).
type LinkHealth struct {
	Name   string
	Level  int // PACE level (0 primary); -1 if the policy does not use the link
	State  LinkState
	RTT    time.Duration // smoothed probe RTT; -1 until measured
	RTTVar time.Duration // the RTT's smoothed mean deviation; -1 until measured
	Loss   float64       // share of recent probes not answered (0.0–1.0)
	// LastAnswer is how long ago the link last answered a probe; -1 if never.
	LastAnswer time.Duration
	InUse      bool // the link carries the peer's traffic now
	Silent     bool // this node has silenced the link (SetLinkSilent)
}

func toLinkHealth(l C.PeatLinkHealth) LinkHealth {
	unknownOr := func(v C.int64_t, unit time.Duration) time.Duration {
		if v < 0 {
			return -1
		}
		return time.Duration(v) * unit
	}
	return LinkHealth{
		Name:       goString(l.name),
		Level:      int(l.level),
		State:      LinkState(l.state),
		RTT:        unknownOr(l.rtt_us, time.Microsecond),
		RTTVar:     unknownOr(l.rtt_var_us, time.Microsecond),
		Loss:       float64(l.loss),
		LastAnswer: unknownOr(l.last_answer_ms, time.Millisecond),
		InUse:      bool(l.in_use),
		Silent:     bool(l.silent),
	}
}

// SetLinkSilent silences the node's link name (emission control: it sends
// nothing, not even probe answers; peers on it move to another link at once,
// each with a LinkChanged peer event) when silent is true, or lets it speak
// again (it carries traffic again once its probes prove it, after
// Pace.HoldDown if it is a better level). ErrInvalidArgument if the node has
// no link of that name.
func (n *Node) SetLinkSilent(name string, silent bool) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	var e *C.PeatError
	rc := C.peat_node_set_link_silent(h, str(name), C.bool(silent), &e)
	runtime.KeepAlive(name)
	return check(rc, e)
}

// AddPeer adds a static peer ("NODEID@ADDR[,ADDR…]") at runtime: it is dialled
// now and re-dialled, with backoff and jitter, whenever its link drops.
func (n *Node) AddPeer(peer string) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	var e *C.PeatError
	rc := C.peat_node_add_peer(h, str(peer), &e)
	runtime.KeepAlive(peer)
	return check(rc, e)
}

// RemovePeer removes a static peer by node id; false if it was not one.
func (n *Node) RemovePeer(id string) (bool, error) {
	h, err := n.node()
	if err != nil {
		return false, err
	}
	var removed C.bool
	var e *C.PeatError
	rc := C.peat_node_remove_peer(h, str(id), &removed, &e)
	runtime.KeepAlive(id)
	return bool(removed), check(rc, e)
}

// Peers lists every peer seen, with state and health.
func (n *Node) Peers() ([]PeerInfo, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var list C.PeatPeerList
	var e *C.PeatError
	if err := check(C.peat_node_peers(h, &list, &e), e); err != nil {
		return nil, err
	}
	defer C.peat_peer_list_free(list)
	out := make([]PeerInfo, 0, int(list.len))
	if list.len > 0 {
		for _, p := range unsafe.Slice(list.items, int(list.len)) {
			info := PeerInfo{ID: C.GoString(p.id), Connected: bool(p.connected), Addr: goString(p.addr),
				State: peerStates[p.state], SyncBytesSent: uint64(p.sync_bytes_sent),
				SyncBytesRecv: uint64(p.sync_bytes_received), SyncQueuedUpdates: uint64(p.sync_queued_updates),
				SyncQueuedReplyBytes: uint64(p.sync_queued_reply_bytes)}
			for _, bit := range []C.PeatPeerSource{C.PEAT_PEER_SOURCE_STATIC, C.PEAT_PEER_SOURCE_MDNS, C.PEAT_PEER_SOURCE_DIRECT, C.PEAT_PEER_SOURCE_KUBERNETES} {
				if uint32(p.sources)&uint32(bit) != 0 {
					info.Sources = append(info.Sources, sources[bit])
				}
			}
			if p.rtt_us >= 0 {
				info.RTT = time.Duration(p.rtt_us) * time.Microsecond
			}
			if p.last_seen_ms >= 0 {
				info.LastSeen = time.UnixMilli(int64(p.last_seen_ms))
			}
			if p.links_len > 0 {
				for _, l := range unsafe.Slice(p.links, int(p.links_len)) {
					info.Links = append(info.Links, toLinkHealth(l))
				}
			}
			out = append(out, info)
		}
	}
	return out, nil
}

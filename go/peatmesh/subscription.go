package peatmesh

/*
#include "peat_mesh.h"
PeatReadyCallback peat_go_ready_callback(uintptr_t handle);
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
)

// EventKind says what an Event carries.
type EventKind int

// Event kinds.
const (
	DocChanged EventKind = iota + 1
	DocDeleted
	Lagged
	PeerConnected
	PeerDisconnected
	PeerAdmissionRefused
	peerClosedKind     // the C side's end-of-subscription marker; never delivered
	PeerDiscovered     // Source is the discovery (Reason its name)
	PeerLost           // Source is the discovery (Reason its name)
	PeerOtherFormation // seen by mDNS announcing another formation; not dialled
	// StorageFailed is not about a peer (Peer is ""): this node's store failed a
	// commit (a full disk, an I/O error) and every write returns ErrIO until
	// the node is closed and reopened; Reason is the store's error. Sent once,
	// to peer-event subscriptions.
	StorageFailed
	// LinkChanged: the link carrying a peer's traffic changed (PACE failover
	// or fail-back, a silenced link, the first link chosen); the connection
	// goes on. Peer is set; From is the link used before ("" at first use),
	// To the link used now ("" when no link can carry the traffic) and Level
	// To's PACE level (-1 when To is "").
	LinkChanged
	// StorageEvicted is not about a peer (Peer is ""): a garbage-collection
	// pass evicted Evicted documents to keep the node within its storage
	// budget; StoredBytes is what the documents take after it. Once per such
	// pass, to peer-event subscriptions.
	StorageEvicted
	// PeerRevoked: a certificate of Peer was revoked (this node just learnt
	// it); its connection, if any, is closed and admission refuses it.
	PeerRevoked
)

// The kinds are the C ABI's PeatEventKind values (a compile error otherwise).
var (
	_ = [1]struct{}{}[DocChanged-EventKind(C.PEAT_EVENT_KIND_DOC_CHANGED)]
	_ = [1]struct{}{}[PeerOtherFormation-EventKind(C.PEAT_EVENT_KIND_PEER_OTHER_FORMATION)]
	_ = [1]struct{}{}[StorageFailed-EventKind(C.PEAT_EVENT_KIND_STORAGE_FAILED)]
	_ = [1]struct{}{}[LinkChanged-EventKind(C.PEAT_EVENT_KIND_PEER_LINK_CHANGED)]
	_ = [1]struct{}{}[StorageEvicted-EventKind(C.PEAT_EVENT_KIND_STORAGE_EVICTED)]
	_ = [1]struct{}{}[PeerRevoked-EventKind(C.PEAT_EVENT_KIND_PEER_REVOKED)]
)

// Origin says where the change of a document event came from.
type Origin string

// The origins of document events.
const (
	OriginSnapshot Origin = "snapshot" // the subscription's initial snapshot
	OriginLocal    Origin = "local"    // a write on this node
	OriginPeer     Origin = "peer"     // a peer: Event.Peer is its node id
)

var origins = map[C.PeatOrigin]Origin{
	C.PEAT_ORIGIN_SNAPSHOT: OriginSnapshot,
	C.PEAT_ORIGIN_LOCAL:    OriginLocal,
	C.PEAT_ORIGIN_PEER:     OriginPeer,
}

// Source is a discovery that wants a peer.
type Source string

// The discoveries.
const (
	SourceStatic Source = "static" // configured, or added with AddPeer
	SourceMDNS   Source = "mdns"   // announced on the local network
	SourceDirect Source = "direct" // dialled with Connect
	// SourceKubernetes is a ready endpoint of the Kubernetes Service
	// (peat-mesh-node's discovery; an SDK node never reports it itself).
	SourceKubernetes Source = "kubernetes"
)

var sources = map[C.PeatPeerSource]Source{
	C.PEAT_PEER_SOURCE_STATIC:     SourceStatic,
	C.PEAT_PEER_SOURCE_MDNS:       SourceMDNS,
	C.PEAT_PEER_SOURCE_DIRECT:     SourceDirect,
	C.PEAT_PEER_SOURCE_KUBERNETES: SourceKubernetes,
}

// Event is one subscription event.
type Event struct {
	Kind        EventKind
	Collection  string          // document events
	ID          string          // document events
	JSON        json.RawMessage // DocChanged
	Origin      Origin          // document events
	Peer        string          // peer events ("" for StorageFailed); the sending peer when Origin is OriginPeer
	Source      Source          // PeerDiscovered, PeerLost: the discovery
	Reason      string          // disconnects, refusals, StorageFailed; the discovery's name for PeerDiscovered/PeerLost
	Dropped     uint64          // Lagged: events dropped because the reader fell behind
	From        string          // LinkChanged: the link used before ("" at first use)
	To          string          // LinkChanged: the link used now ("" when none can carry traffic)
	Level       int             // LinkChanged: To's PACE level (0 primary); -1 when To is "" and for other kinds
	Evicted     uint64          // StorageEvicted: documents evicted
	StoredBytes uint64          // StorageEvicted: bytes the documents take after it
}

// Subscription delivers events on a channel, read from a queue the SDK keeps
// for it. The SDK never waits for a slow reader: when more than the
// subscription's buffer of events wait, it drops the oldest and the reader
// gets a Lagged event saying how many (snapshot events are never dropped).
// The channel is closed when the subscription ends (Close, or its node
// closing).
type Subscription struct {
	handle C.PeatSubscription
	state  *subState
}

// subState feeds one subscription's channel: the SDK calls goPeatOnReady
// when events wait in its queue, and the pump goroutine reads them (without
// waiting) into the channel.
type subState struct {
	ch     chan Event
	wake   chan struct{} // the SDK said events wait, or the end (a flag: capacity 1)
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the pump has returned (and closed ch)
	stop   sync.Once
}

func (s *subState) signal() {
	select {
	case s.wake <- struct{}{}:
	default: // already signalled
	}
}

// pump reads every waiting event into the channel after each signal, until
// none is left; it returns (closing the channel) at the subscription's end.
func (s *subState) pump(sub C.PeatSubscription) {
	defer close(s.exited)
	defer close(s.ch)
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		for {
			var ev C.PeatEvent
			rc := C.peat_subscription_next(sub, 0, &ev, nil)
			if rc == C.PEAT_STATUS_TIMEOUT {
				break // none left: the SDK signals again when more wait
			}
			if rc != C.PEAT_STATUS_OK {
				return // ended: closed, its node closed, or the SDK shut down
			}
			e := toEvent(&ev)
			C.peat_event_free(&ev)
			select {
			case s.ch <- e:
			case <-s.done:
				return
			}
		}
	}
}

func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

func toEvent(ev *C.PeatEvent) Event {
	e := Event{
		Kind:        EventKind(ev.kind),
		Collection:  goString(ev.collection),
		ID:          goString(ev.id),
		Origin:      origins[ev.origin],
		Peer:        goString(ev.peer),
		Source:      sources[ev.source],
		Reason:      goString(ev.reason),
		Dropped:     uint64(ev.lagged),
		From:        goString(ev.link_from),
		To:          goString(ev.link_to),
		Level:       int(ev.level),
		Evicted:     uint64(ev.evicted),
		StoredBytes: uint64(ev.stored_bytes),
	}
	if ev.json != nil {
		e.JSON = json.RawMessage(C.GoString(ev.json))
	}
	if e.Source != "" {
		e.Reason = string(e.Source) // as before the Source field
	}
	return e
}

//export goPeatOnReady
func goPeatOnReady(handle C.uintptr_t) {
	cgo.Handle(handle).Value().(*subState).signal()
}

//export goPeatOnReadyDrop
func goPeatOnReadyDrop(handle C.uintptr_t) {
	h := cgo.Handle(handle)
	h.Value().(*subState).signal() // freed without Close (SDK shutdown): the pump ends
	deleteCallbackHandle(h)
}

// subscribe makes a queued subscription with subscribeQueued (one of the
// peat_*_subscribe_queued calls, given the ready callback) and starts its pump.
func subscribe(buffer int, subscribeQueued func(C.size_t, C.PeatReadyCallback, *C.PeatSubscription, **C.PeatError) C.int32_t) (*Subscription, error) {
	if buffer < 0 {
		return nil, &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("buffer is %d", buffer)}
	}
	st := &subState{
		ch:     make(chan Event),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	handle := newCallbackHandle(st)
	var sub C.PeatSubscription
	var e *C.PeatError
	rc := subscribeQueued(C.size_t(buffer), C.peat_go_ready_callback(C.uintptr_t(handle)), &sub, &e)
	if err := check(rc, e); err != nil {
		// On failure the SDK never runs the cleanup hook: the handle is ours.
		deleteCallbackHandle(handle)
		return nil, err
	}
	go st.pump(sub)
	return &Subscription{handle: sub, state: st}, nil
}

// Subscribe delivers changes to a collection (id "") or one document. With
// snapshot, current documents arrive first. buffer is how many events may wait
// for a slow reader before the oldest are dropped (0: 256; at most 65536,
// more is ErrInvalidArgument).
func (n *Node) Subscribe(collection, id string, snapshot bool, buffer int) (*Subscription, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	return subscribe(buffer, func(capacity C.size_t, ready C.PeatReadyCallback, out *C.PeatSubscription, e **C.PeatError) C.int32_t {
		rc := C.peat_doc_subscribe_queued(h, str(collection), str(id), C.bool(snapshot), capacity, ready, out, e)
		runtime.KeepAlive(collection)
		runtime.KeepAlive(id)
		return rc
	})
}

// SubscribePeers delivers peer events (connected, disconnected, admission
// refused, discovered, lost, other formation, link changed) and this node's
// StorageFailed; buffer as for Subscribe.
func (n *Node) SubscribePeers(buffer int) (*Subscription, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	return subscribe(buffer, func(capacity C.size_t, ready C.PeatReadyCallback, out *C.PeatSubscription, e **C.PeatError) C.int32_t {
		return C.peat_peer_subscribe_queued(h, capacity, ready, out, e)
	})
}

// Events is the subscription's channel; it is closed when the subscription ends.
func (s *Subscription) Events() <-chan Event { return s.state.ch }

// Close ends the subscription: no event is sent after it returns, and the
// channel is closed. Closing twice returns ErrInvalidHandle.
func (s *Subscription) Close() error {
	s.state.stop.Do(func() { close(s.state.done) })
	var e *C.PeatError
	err := check(C.peat_subscription_close(s.handle, &e), e)
	<-s.state.exited
	return err
}

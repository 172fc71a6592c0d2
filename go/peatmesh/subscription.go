package peatmesh

/*
#include "peat_mesh.h"
PeatCallback peat_go_callback(uintptr_t handle);
*/
import "C"

import (
	"encoding/json"
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
	PeerDiscovered     // Reason names the discovery: "static", "mdns", "direct"
	PeerLost           // Reason names the discovery
	PeerOtherFormation // seen by mDNS announcing another formation; not dialled
	// StorageFailed is not about a peer (Peer is ""): this node's store failed a
	// commit (a full disk, an I/O error) and every write returns ErrIO until
	// the node is closed and reopened; Reason is the store's error. Sent once,
	// to peer-event subscriptions.
	StorageFailed
)

// The kinds are the C ABI's PeatEventKind values (a compile error otherwise).
var (
	_ = [1]struct{}{}[DocChanged-EventKind(C.PEAT_EVENT_KIND_DOC_CHANGED)]
	_ = [1]struct{}{}[PeerOtherFormation-EventKind(C.PEAT_EVENT_KIND_PEER_OTHER_FORMATION)]
	_ = [1]struct{}{}[StorageFailed-EventKind(C.PEAT_EVENT_KIND_STORAGE_FAILED)]
)

// Event is one subscription event.
type Event struct {
	Kind       EventKind
	Collection string          // document events
	ID         string          // document events
	JSON       json.RawMessage // DocChanged
	Origin     string          // "snapshot", "local" or a peer's node id
	Peer       string          // peer events ("" for StorageFailed)
	Reason     string          // disconnects, refusals, StorageFailed; the discovery of PeerDiscovered/PeerLost
	Dropped    uint64          // Lagged: events dropped because the reader fell behind
}

// Subscription delivers events into a buffered channel. The SDK's dispatcher
// never blocks on a slow reader: when the channel is full, the oldest events
// are dropped and a Lagged event reports how many. The channel is closed when
// the subscription ends (Close, or its node closing).
type Subscription struct {
	handle C.PeatSubscription
	state  *subState
}

type subState struct {
	mu     sync.Mutex
	ch     chan Event
	closed bool
}

// deliver never blocks the SDK's dispatcher. When the channel is full, the
// oldest events are dropped to make room for a Lagged event (carrying how many
// were dropped) followed by the new event, so the reader sees the loss.
func (s *subState) deliver(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if len(s.ch) == cap(s.ch) {
		var dropped uint64
		for len(s.ch) > cap(s.ch)-2 {
			select {
			case old := <-s.ch:
				if old.Kind == Lagged {
					dropped += old.Dropped
				} else {
					dropped++
				}
			default:
			}
		}
		s.ch <- Event{Kind: Lagged, Dropped: dropped}
	}
	s.ch <- ev
}

func (s *subState) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

//export goPeatOnEvent
func goPeatOnEvent(handle C.uintptr_t, ev *C.PeatEvent) {
	s := cgo.Handle(handle).Value().(*subState)
	if ev.kind == C.PEAT_EVENT_KIND_CLOSED {
		s.end()
		return
	}
	e := Event{
		Kind:       EventKind(ev.kind),
		Collection: goString(ev.collection),
		ID:         goString(ev.id),
		Origin:     goString(ev.origin),
		Peer:       goString(ev.peer),
		Reason:     goString(ev.reason),
		Dropped:    uint64(ev.lagged),
	}
	if ev.json != nil {
		e.JSON = json.RawMessage(C.GoString(ev.json))
	}
	s.deliver(e)
}

//export goPeatOnDrop
func goPeatOnDrop(handle C.uintptr_t) {
	h := cgo.Handle(handle)
	h.Value().(*subState).end()
	deleteCallbackHandle(h)
}

func newSubscription(buffer int) (*subState, cgo.Handle) {
	if buffer == 0 {
		buffer = 256
	}
	if buffer < 2 {
		buffer = 2 // room for a Lagged event and the event after it
	}
	st := &subState{ch: make(chan Event, buffer)}
	return st, newCallbackHandle(st)
}

// Subscribe delivers changes to a collection (id "") or one document. With
// snapshot, current documents arrive first. buffer sizes the channel (0: 256).
func (n *Node) Subscribe(collection, id string, snapshot bool, buffer int) (*Subscription, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	st, handle := newSubscription(buffer)
	var sub C.PeatSubscription
	var e *C.PeatError
	rc := C.peat_doc_subscribe_callback(h, str(collection), str(id), C.bool(snapshot),
		C.peat_go_callback(C.uintptr_t(handle)), &sub, &e)
	runtime.KeepAlive(collection)
	runtime.KeepAlive(id)
	if err := check(rc, e); err != nil {
		// On failure the SDK never runs the cleanup hook: the handle is ours.
		deleteCallbackHandle(handle)
		return nil, err
	}
	return &Subscription{handle: sub, state: st}, nil
}

// SubscribePeers delivers peer events (connected, disconnected, admission
// refused, discovered, lost, other formation) and this node's StorageFailed.
func (n *Node) SubscribePeers(buffer int) (*Subscription, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	st, handle := newSubscription(buffer)
	var sub C.PeatSubscription
	var e *C.PeatError
	rc := C.peat_peer_subscribe_callback(h, C.peat_go_callback(C.uintptr_t(handle)), &sub, &e)
	if err := check(rc, e); err != nil {
		// On failure the SDK never runs the cleanup hook: the handle is ours.
		deleteCallbackHandle(handle)
		return nil, err
	}
	return &Subscription{handle: sub, state: st}, nil
}

// Events is the subscription's channel; it is closed when the subscription ends.
func (s *Subscription) Events() <-chan Event { return s.state.ch }

// Close ends the subscription: no event is sent after it returns, and the
// channel is closed. Closing twice returns ErrInvalidHandle.
func (s *Subscription) Close() error {
	var e *C.PeatError
	return check(C.peat_subscription_close(s.handle, &e), e)
}

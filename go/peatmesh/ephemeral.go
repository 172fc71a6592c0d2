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
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Ephemeral holds the ephemeral options of a node (Config.Ephemeral); the
// zero value is the "default" beacon preset and no multicast path.
type Ephemeral struct {
	BeaconPreset   string        // "default", "tactical" or "distributed"; "" for "default"
	BeaconInterval time.Duration // overrides the preset's interval when non-zero
	BeaconTTL      time.Duration // overrides the preset's time to live when non-zero
	// MulticastGroup ("ADDR:PORT", an IPv4 multicast group or a broadcast
	// address) and MulticastInterface (a local IPv4 address) turn on the
	// secured multicast path; nothing is sent to any group without both.
	MulticastGroup     string
	MulticastInterface string
}

// PublishOptions says how Publish sends one message. The zero value is a
// 10 s lifetime, no forwarding and no multicast.
type PublishOptions struct {
	TTL       time.Duration // lifetime (1 ms to 1 h; 0 for 10 s); receivers drop it after
	HopLimit  uint8         // how many times it may be forwarded (0-8); above 0 it is signed
	Multicast bool          // also send it on the node's multicast path, if it has one
	// Its class under bandwidth budgets ("": PriorityHigh). A message is
	// never queued: one a budget has no room for is dropped and counted
	// (BandwidthStats.DroppedDatagrams).
	Priority Priority
}

// Message is an ephemeral message received.
type Message struct {
	Origin   string // publisher's node id
	Topic    string
	Payload  []byte
	JSON     bool   // published as JSON (Payload is JSON text)
	Seq      uint64 // the publisher's number for it
	SentAtMs uint64 // the publisher's clock at publish, Unix ms
	Hops     uint8  // how many nodes forwarded it
	ViaPeer  string // the peer it came from; "" when it came on the multicast path
	TTLLeft  time.Duration
}

// MessageEvent is what a topic subscription delivers: a message, or (Message
// nil) Lagged messages dropped because the reader fell behind.
type MessageEvent struct {
	Message *Message
	Lagged  uint64
}

// NodeState is a node's operational state in its beacon.
type NodeState int

// The operational states (the C ABI's PeatNodeState values).
const (
	NodeStateUnknown  NodeState = 0
	NodeStateReady    NodeState = 1
	NodeStateBusy     NodeState = 2
	NodeStateDegraded NodeState = 3
	NodeStateOffline  NodeState = 4
)

// BeaconInfo is what a node says about itself in its beacon. Optional fields
// are pointers (nil: not said).
type BeaconInfo struct {
	Lat, Lon      float64 // degrees; NaN or out of range is ErrInvalidArgument
	AltM          *float64
	Role          string // up to 32 bytes
	Level         uint8  // level in the hierarchy (0 = the edge)
	Capabilities  []string
	State         NodeState
	BatteryPct    *uint8
	CPUPct        *uint8
	BandwidthKbps *uint32
}

// Beacon is a beacon heard.
type Beacon struct {
	Node        string // the node it is about (its signature was checked)
	Info        BeaconInfo
	Geohash     string // at the publisher's precision
	TimestampMs uint64 // the publisher's clock when sent, Unix ms
	ReceivedMs  uint64 // this node's clock when heard, Unix ms
	Hops        uint8
	DistanceM   *float64 // metres from the point of BeaconsNear; nil otherwise
}

// BeaconEventKind says what happened to a node's entry in the beacon table.
type BeaconEventKind int

// The beacon event kinds (the C ABI's PeatBeaconEventKind values).
const (
	BeaconAppeared BeaconEventKind = 1
	BeaconUpdated  BeaconEventKind = 2
	BeaconExpired  BeaconEventKind = 3
	BeaconEvicted  BeaconEventKind = 4
	BeaconLagged   BeaconEventKind = 5
)

// BeaconEvent is a beacon table event: Beacon is set for Appeared and
// Updated, Node for every kind but Lagged.
type BeaconEvent struct {
	Kind   BeaconEventKind
	Node   string
	Beacon *Beacon
	Lagged uint64
}

// EphemeralStats are counters of a node's ephemeral path.
type EphemeralStats struct {
	Published, Received, Delivered, Forwarded, Duplicates, Expired     uint64
	Malformed, BadSignature, RefusedSealed, RateLimited, MulticastSent uint64
}

// Publish sends payload on topic to every connected peer (one datagram each;
// nothing is stored) and returns how many peers it went to. It never waits.
// A topic over 64 bytes, a payload over 960 bytes, a reserved topic
// ("_peat/...") or options out of range are ErrInvalidArgument.
func (n *Node) Publish(topic string, payload []byte, opts PublishOptions) (int, error) {
	return n.publish(topic, payload, false, opts)
}

// PublishJSON publishes v marshalled as JSON (receivers see Message.JSON).
func (n *Node) PublishJSON(topic string, v any, opts PublishOptions) (int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, &Error{Code: CodeInvalidArgument, Message: err.Error()}
	}
	return n.publish(topic, b, true, opts)
}

func (n *Node) publish(topic string, payload []byte, isJSON bool, opts PublishOptions) (int, error) {
	h, err := n.node()
	if err != nil {
		return 0, err
	}
	if opts.TTL < 0 {
		return 0, &Error{Code: CodeInvalidArgument, Message: "TTL must not be negative"}
	}
	ttl := uint64(opts.TTL / time.Millisecond)
	if opts.TTL > 0 && ttl == 0 {
		ttl = 1
	}
	// The options struct is Go memory, so the string it holds must be C memory.
	var class C.PeatStr
	if opts.Priority != "" {
		cs := C.CString(string(opts.Priority))
		defer C.free(unsafe.Pointer(cs))
		class = C.PeatStr{ptr: (*C.uint8_t)(unsafe.Pointer(cs)), len: C.size_t(len(opts.Priority))}
	}
	o := C.PeatPublishOptions{ttl_ms: C.uint64_t(ttl), hop_limit: C.uint8_t(opts.HopLimit), multicast: C.bool(opts.Multicast), priority: class}
	var p *C.uint8_t
	if len(payload) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&payload[0]))
	}
	var peers C.uint32_t
	var e *C.PeatError
	rc := C.peat_publish(h, str(topic), p, C.size_t(len(payload)), C.bool(isJSON), &o, &peers, &e)
	runtime.KeepAlive(topic)
	runtime.KeepAlive(payload)
	return int(peers), check(rc, e)
}

func goMessage(m *C.PeatMessage) *Message {
	out := &Message{
		Origin:   C.GoString(m.origin),
		Topic:    C.GoString(m.topic),
		Payload:  C.GoBytes(unsafe.Pointer(m.payload.ptr), C.int(m.payload.len)),
		JSON:     bool(m.json),
		Seq:      uint64(m.seq),
		SentAtMs: uint64(m.sent_at_ms),
		Hops:     uint8(m.hops),
		TTLLeft:  time.Duration(m.ttl_left_ms) * time.Millisecond,
	}
	if m.via_peer != nil {
		out.ViaPeer = C.GoString(m.via_peer)
	}
	return out
}

// Latest returns the latest live message of each origin and topic filter
// takes ("*", "PREFIX*" or a topic).
func (n *Node) Latest(filter string) ([]Message, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatMessageList
	var e *C.PeatError
	rc := C.peat_latest_messages(h, str(filter), &l, &e)
	runtime.KeepAlive(filter)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	defer C.peat_message_list_free(l)
	out := make([]Message, 0, int(l.len))
	if l.len > 0 {
		items := unsafe.Slice(l.items, int(l.len))
		for i := range items {
			out = append(out, *goMessage(&items[i]))
		}
	}
	return out, nil
}

// poller reads a polled SDK subscription: pulled with next (Next), or
// pumped into a channel by a goroutine started on first use of the channel.
// The goroutine waits in the SDK for the next event (up to 200 ms at a time,
// so Close is seen) and blocks on the channel while the reader is behind — the
// SDK's bounded queue then drops the oldest events and reports them as lagged.
type poller[T any] struct {
	handle C.PeatSubscription
	next   nextFn[T]
	buffer int
	ch     chan T
	start  sync.Once
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
}

// nextFn reads one event waiting up to ms: ok false on a timeout; err once
// the subscription ended.
type nextFn[T any] func(sub C.PeatSubscription, ms C.uint64_t) (T, bool, error)

func newPoller[T any](handle C.PeatSubscription, buffer int, next nextFn[T]) *poller[T] {
	if buffer < 1 {
		buffer = 64
	}
	return &poller[T]{handle: handle, next: next, buffer: buffer, done: make(chan struct{}), exited: make(chan struct{})}
}

func (p *poller[T]) channel() chan T {
	p.start.Do(func() {
		p.ch = make(chan T, p.buffer)
		go func() {
			defer close(p.exited)
			defer close(p.ch)
			for {
				select {
				case <-p.done:
					return
				default:
				}
				ev, ok, err := p.next(p.handle, 200)
				if err != nil {
					return
				}
				if !ok {
					continue
				}
				select {
				case p.ch <- ev:
				case <-p.done:
					return
				}
			}
		}()
	})
	return p.ch
}

// pull waits for the next event until ctx is done.
func (p *poller[T]) pull(ctx context.Context) (T, error) {
	for {
		var zero T
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		ms := C.uint64_t(200)
		if d, ok := ctx.Deadline(); ok {
			if left := time.Until(d); left < 200*time.Millisecond {
				ms = C.uint64_t(max(left/time.Millisecond, 0))
			}
		}
		ev, ok, err := p.next(p.handle, ms)
		if err != nil {
			return zero, err
		}
		if ok {
			return ev, nil
		}
	}
}

func (p *poller[T]) close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		var e *C.PeatError
		err = check(C.peat_subscription_close(p.handle, &e), e)
		started := true
		p.start.Do(func() { started = false })
		if started {
			<-p.exited
		}
	})
	return err
}

// TopicSubscription delivers ephemeral messages: pulled with Next, or on the
// channel of Messages (closed when the subscription ends: Close, or its node
// closing); use one or the other. Expired messages are never delivered. For a
// latest-only subscription read with Next: the channel's buffer holds
// messages already taken from the SDK, which the newest no longer replaces.
type TopicSubscription struct{ p *poller[MessageEvent] }

// Messages is the channel of messages (its goroutine starts on first call).
func (s *TopicSubscription) Messages() <-chan MessageEvent { return s.p.channel() }

// Next waits for the next message until ctx is done (then ctx.Err()); once
// the subscription has ended, an error with CodeClosed.
func (s *TopicSubscription) Next(ctx context.Context) (MessageEvent, error) { return s.p.pull(ctx) }

// Close ends the subscription; nothing is delivered after it returns. Idempotent.
func (s *TopicSubscription) Close() error { return s.p.close() }

// SubscribeTopic subscribes to the topics filter takes ("*", "PREFIX*" or a
// topic); with latestOnly the SDK keeps only the newest message of each
// origin and topic waiting. buffer is the channel's capacity (0: 64).
func (n *Node) SubscribeTopic(filter string, latestOnly bool, buffer int) (*TopicSubscription, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var sub C.PeatSubscription
	var e *C.PeatError
	rc := C.peat_topic_subscribe(h, str(filter), C.bool(latestOnly), &sub, &e)
	runtime.KeepAlive(filter)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	return &TopicSubscription{newPoller(sub, buffer, func(s C.PeatSubscription, ms C.uint64_t) (MessageEvent, bool, error) {
		var ev C.PeatMessageEvent
		var e *C.PeatError
		rc := C.peat_topic_next(s, ms, &ev, &e)
		if Code(rc) == CodeTimeout {
			check(rc, e)
			return MessageEvent{}, false, nil
		}
		if err := check(rc, e); err != nil {
			return MessageEvent{}, false, err
		}
		defer C.peat_message_event_free(&ev)
		if ev.kind == C.PEAT_MESSAGE_EVENT_KIND_LAGGED {
			return MessageEvent{Lagged: uint64(ev.lagged)}, true, nil
		}
		return MessageEvent{Message: goMessage(&ev.message)}, true, nil
	})}, nil
}

func goBeacon(b *C.PeatBeacon) Beacon {
	out := Beacon{
		Node:        C.GoString(b.node),
		Geohash:     C.GoString(b.geohash),
		TimestampMs: uint64(b.timestamp_ms),
		ReceivedMs:  uint64(b.received_ms),
		Hops:        uint8(b.hops),
		Info: BeaconInfo{
			Lat:   float64(b.lat),
			Lon:   float64(b.lon),
			Role:  C.GoString(b.role),
			Level: uint8(b.level),
			State: NodeState(b.state),
		},
	}
	if !math.IsNaN(float64(b.alt_m)) {
		v := float64(b.alt_m)
		out.Info.AltM = &v
	}
	if b.capabilities.len > 0 {
		for _, c := range unsafe.Slice(b.capabilities.items, int(b.capabilities.len)) {
			out.Info.Capabilities = append(out.Info.Capabilities, C.GoString(c))
		}
	}
	if b.battery_pct >= 0 {
		v := uint8(b.battery_pct)
		out.Info.BatteryPct = &v
	}
	if b.cpu_pct >= 0 {
		v := uint8(b.cpu_pct)
		out.Info.CPUPct = &v
	}
	if b.bandwidth_kbps >= 0 {
		v := uint32(b.bandwidth_kbps)
		out.Info.BandwidthKbps = &v
	}
	if !math.IsNaN(float64(b.distance_m)) {
		v := float64(b.distance_m)
		out.DistanceM = &v
	}
	return out
}

func takeBeacons(rc C.int32_t, e *C.PeatError, l C.PeatBeaconList) ([]Beacon, error) {
	if err := check(rc, e); err != nil {
		return nil, err
	}
	defer C.peat_beacon_list_free(l)
	out := make([]Beacon, 0, int(l.len))
	if l.len > 0 {
		items := unsafe.Slice(l.items, int(l.len))
		for i := range items {
			out = append(out, goBeacon(&items[i]))
		}
	}
	return out, nil
}

// SetBeacon publishes this node's beacon now and every interval of its
// preset, until changed or cleared.
func (n *Node) SetBeacon(info BeaconInfo) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	var mem cMemory
	defer mem.free()
	cstr := mem.str
	ci := (*C.PeatBeaconInfo)(mem.alloc(unsafe.Sizeof(C.PeatBeaconInfo{})))
	*ci = C.PeatBeaconInfo{
		lat: C.double(info.Lat), lon: C.double(info.Lon), alt_m: C.double(math.NaN()),
		role: cstr(info.Role), level: C.uint8_t(info.Level),
		capabilities: mem.strs(info.Capabilities), capabilities_len: C.size_t(len(info.Capabilities)),
		state: C.PeatNodeState(info.State), battery_pct: -1, cpu_pct: -1, bandwidth_kbps: -1,
	}
	if info.AltM != nil {
		ci.alt_m = C.double(*info.AltM)
	}
	if info.BatteryPct != nil {
		ci.battery_pct = C.int32_t(*info.BatteryPct)
	}
	if info.CPUPct != nil {
		ci.cpu_pct = C.int32_t(*info.CPUPct)
	}
	if info.BandwidthKbps != nil {
		ci.bandwidth_kbps = C.int64_t(*info.BandwidthKbps)
	}
	var e *C.PeatError
	return check(C.peat_beacon_set(h, ci, &e), e)
}

// ClearBeacon stops publishing this node's beacon (peers forget it at its ttl).
func (n *Node) ClearBeacon() error {
	h, err := n.node()
	if err != nil {
		return err
	}
	var e *C.PeatError
	return check(C.peat_beacon_clear(h, &e), e)
}

// BeaconsNear returns the beacons heard within radiusM metres of a point,
// nearest first (each with DistanceM).
func (n *Node) BeaconsNear(lat, lon, radiusM float64) ([]Beacon, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatBeaconList
	var e *C.PeatError
	rc := C.peat_beacons_near(h, C.double(lat), C.double(lon), C.double(radiusM), &l, &e)
	return takeBeacons(rc, e, l)
}

// BeaconsInCell returns the beacons in a geohash cell, and in its eight
// neighbours if neighbours is set.
func (n *Node) BeaconsInCell(geohash string, neighbours bool) ([]Beacon, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatBeaconList
	var e *C.PeatError
	rc := C.peat_beacons_in_cell(h, str(geohash), C.bool(neighbours), &l, &e)
	runtime.KeepAlive(geohash)
	return takeBeacons(rc, e, l)
}

// BeaconsSince returns the beacons heard at or after sinceMs (Unix ms, this
// node's clock; 0 for all), oldest first.
func (n *Node) BeaconsSince(sinceMs uint64) ([]Beacon, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatBeaconList
	var e *C.PeatError
	rc := C.peat_beacons_since(h, C.uint64_t(sinceMs), &l, &e)
	return takeBeacons(rc, e, l)
}

// BeaconSubscription delivers beacon events: pulled with Next, or on the
// channel of Events (closed when the subscription ends); use one or the other.
type BeaconSubscription struct{ p *poller[BeaconEvent] }

// Events is the channel of beacon events (its goroutine starts on first call).
func (s *BeaconSubscription) Events() <-chan BeaconEvent { return s.p.channel() }

// Next waits for the next beacon event until ctx is done.
func (s *BeaconSubscription) Next(ctx context.Context) (BeaconEvent, error) { return s.p.pull(ctx) }

// Close ends the subscription. Idempotent.
func (s *BeaconSubscription) Close() error { return s.p.close() }

// SubscribeBeacons subscribes to beacon table events; buffer is the
// channel's capacity (0: 64).
func (n *Node) SubscribeBeacons(buffer int) (*BeaconSubscription, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var sub C.PeatSubscription
	var e *C.PeatError
	if err := check(C.peat_beacon_subscribe(h, &sub, &e), e); err != nil {
		return nil, err
	}
	return &BeaconSubscription{newPoller(sub, buffer, func(s C.PeatSubscription, ms C.uint64_t) (BeaconEvent, bool, error) {
		var ev C.PeatBeaconEvent
		var e *C.PeatError
		rc := C.peat_beacon_next(s, ms, &ev, &e)
		if Code(rc) == CodeTimeout {
			check(rc, e)
			return BeaconEvent{}, false, nil
		}
		if err := check(rc, e); err != nil {
			return BeaconEvent{}, false, err
		}
		defer C.peat_beacon_event_free(&ev)
		out := BeaconEvent{Kind: BeaconEventKind(ev.kind), Lagged: uint64(ev.lagged)}
		switch out.Kind {
		case BeaconAppeared, BeaconUpdated:
			b := goBeacon(&ev.beacon)
			out.Beacon = &b
			out.Node = b.Node
		case BeaconExpired, BeaconEvicted:
			out.Node = C.GoString(ev.node)
		}
		return out, true, nil
	})}, nil
}

// EphemeralStats returns the counters of the node's ephemeral path.
func (n *Node) EphemeralStats() (EphemeralStats, error) {
	h, err := n.node()
	if err != nil {
		return EphemeralStats{}, err
	}
	var s C.PeatEphemeralStats
	var e *C.PeatError
	if err := check(C.peat_ephemeral_stats(h, &s, &e), e); err != nil {
		return EphemeralStats{}, err
	}
	return EphemeralStats{
		Published: uint64(s.published), Received: uint64(s.received), Delivered: uint64(s.delivered),
		Forwarded: uint64(s.forwarded), Duplicates: uint64(s.duplicates), Expired: uint64(s.expired),
		Malformed: uint64(s.malformed), BadSignature: uint64(s.bad_signature),
		RefusedSealed: uint64(s.refused_sealed), RateLimited: uint64(s.rate_limited),
		MulticastSent: uint64(s.multicast_sent),
	}, nil
}

package peatmesh

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"testing"
	"time"
)

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func awaitMessage(t *testing.T, s *TopicSubscription, origin string) *Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.Messages():
			if !ok {
				t.Fatalf("subscription ended waiting for %s", origin)
			}
			if ev.Message != nil && ev.Message.Origin == origin {
				return ev.Message
			}
		case <-deadline:
			t.Fatalf("no message from %s", origin)
		}
	}
}

func awaitBeacon(t *testing.T, s *BeaconSubscription, kind BeaconEventKind, node string) BeaconEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatalf("beacon subscription ended")
			}
			if ev.Kind == kind && ev.Node == node {
				return ev
			}
		case <-deadline:
			t.Fatalf("no beacon event %d for %s", kind, node)
		}
	}
}

// Conformance scenario 25: ephemeral topics, latest-only, bounds, the
// multicast path, beacons with events and queries, expiry.
func TestEphemeralTopicsBeaconsAndMulticast(t *testing.T) {
	before := LiveHandles()
	eph := Ephemeral{
		BeaconPreset: "tactical", BeaconInterval: 200 * time.Millisecond, BeaconTTL: time.Second,
		MulticastGroup: fmt.Sprintf("239.255.77.8:%d", freeUDPPort(t)), MulticastInterface: "127.0.0.1",
	}
	openEph := func() *Node {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := Open(ctx, Config{DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0", Ephemeral: eph})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return n
	}
	a, b, c := openEph(), openEph(), openEph()
	all, err := a.SubscribeTopic("pos/*", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	newest, err := a.SubscribeTopic("pos/*", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	beacons, err := a.SubscribeBeacons(0)
	if err != nil {
		t.Fatal(err)
	}
	connect(t, b, a)
	bid, _ := b.ID()
	cid, _ := c.ID()
	direct := PublishOptions{TTL: 10 * time.Second}
	if n, err := b.PublishJSON("pos/b", map[string]float64{"lat": 59.3}, direct); err != nil || n != 1 {
		t.Fatalf("publish: %d %v", n, err)
	}
	m := awaitMessage(t, all, bid)
	if m.Topic != "pos/b" || !m.JSON || string(m.Payload) != `{"lat":59.3}` || m.ViaPeer != bid || m.Hops != 0 ||
		m.TTLLeft <= 0 || m.TTLLeft > 10*time.Second {
		t.Fatalf("message %+v", m)
	}
	for _, p := range []string{"1", "2", "3"} {
		if _, err := b.Publish("pos/b", []byte(p), direct); err != nil {
			t.Fatal(err)
		}
		awaitMessage(t, all, bid)
	}
	kept, err := a.Latest("pos/*")
	if err != nil || len(kept) != 1 || string(kept[0].Payload) != "3" {
		t.Fatalf("latest %+v %v", kept, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	only, err := newest.Next(ctx)
	cancel()
	if err != nil || only.Message == nil || string(only.Message.Payload) != "3" {
		t.Fatalf("latest-only gave %+v %v", only, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	if ev, err := newest.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("latest-only kept more: %+v %v", ev, err)
	}
	cancel()
	for _, bad := range []struct {
		topic   string
		payload []byte
		hops    uint8
	}{{"", []byte("x"), 0}, {"pos/x", make([]byte, 961), 0}, {"_peat/x", []byte("x"), 0}, {"pos/x", []byte("x"), 9}} {
		if _, err := b.Publish(bad.topic, bad.payload, PublishOptions{HopLimit: bad.hops}); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("publish %q: %v", bad.topic, err)
		}
	}
	if _, err := a.SubscribeTopic("", false, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty filter: %v", err)
	}
	// the multicast path: c has no connection to a
	if n, err := c.Publish("pos/c", []byte("over the group"), PublishOptions{Multicast: true}); err != nil || n != 0 {
		t.Fatalf("multicast publish: %d %v", n, err)
	}
	if m := awaitMessage(t, all, cid); m.ViaPeer != "" || string(m.Payload) != "over the group" {
		t.Fatalf("multicast message %+v", m)
	}

	battery := uint8(80)
	if err := b.SetBeacon(BeaconInfo{Lat: 59.3293, Lon: 18.0686, Role: "sensor", Capabilities: []string{"camera"},
		State: NodeStateReady, BatteryPct: &battery}); err != nil {
		t.Fatal(err)
	}
	seen := awaitBeacon(t, beacons, BeaconAppeared, bid).Beacon
	if seen.Info.Role != "sensor" || seen.Info.State != NodeStateReady || seen.Info.BatteryPct == nil ||
		*seen.Info.BatteryPct != 80 || seen.Info.CPUPct != nil || seen.Info.AltM != nil || len(seen.Geohash) != 8 ||
		len(seen.Info.Capabilities) != 1 || seen.Info.Capabilities[0] != "camera" {
		t.Fatalf("beacon %+v", seen)
	}
	near, err := a.BeaconsNear(59.33, 18.07, 1000)
	if err != nil || len(near) != 1 || near[0].Node != bid || near[0].DistanceM == nil || *near[0].DistanceM >= 1000 {
		t.Fatalf("near %+v %v", near, err)
	}
	if far, _ := a.BeaconsNear(0, 0, 1000); len(far) != 0 {
		t.Fatalf("far %+v", far)
	}
	if cell, err := a.BeaconsInCell(seen.Geohash[:5], true); err != nil || len(cell) != 1 || cell[0].DistanceM != nil {
		t.Fatalf("cell %+v %v", cell, err)
	}
	if since, err := a.BeaconsSince(0); err != nil || len(since) != 1 {
		t.Fatalf("since %+v %v", since, err)
	}
	for _, bad := range []BeaconInfo{{Lat: math.NaN()}, {Lat: 91}, {Lon: 181}} {
		if err := b.SetBeacon(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("bad beacon %+v: %v", bad, err)
		}
	}
	if _, err := a.BeaconsNear(0, 0, -1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative radius: %v", err)
	}
	if err := b.ClearBeacon(); err != nil {
		t.Fatal(err)
	}
	awaitBeacon(t, beacons, BeaconExpired, bid)
	if st, err := a.EphemeralStats(); err != nil || st.Delivered < 5 || st.Malformed != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
	for _, bad := range []Ephemeral{{BeaconPreset: "nope"}, {MulticastGroup: "239.255.77.8:7000"}, {BeaconInterval: -time.Second}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Open(ctx, Config{DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0", Ephemeral: bad})
		cancel()
		if !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("bad options %+v: %v", bad, err)
		}
	}
	for _, s := range []interface{ Close() error }{all, newest, beacons} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := <-all.Messages(); ok {
		t.Fatal("channel still open after Close")
	}
	for _, n := range []*Node{a, b, c} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if LiveHandles() != before {
		t.Fatalf("handles leaked: %d != %d", LiveHandles(), before)
	}
}

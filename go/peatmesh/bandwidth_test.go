package peatmesh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Conformance scenario 27: bandwidth budgets at open and at runtime,
// ephemeral messages past a budget dropped and counted, bad budgets refused
// with the old ones kept.
func TestBandwidthBudgets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := open(t, secret)
	b, err := Open(ctx, Config{
		DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0",
		Bandwidth: Bandwidth{PerPeer: 1024},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if bw, err := b.Bandwidth(); err != nil || !reflect.DeepEqual(bw, Bandwidth{PerPeer: 1024}) {
		t.Fatalf("bandwidth %+v %v", bw, err)
	}
	connect(t, b, a)
	payload := make([]byte, 900)
	sent := 0
	for i := 0; i < 100; i++ {
		n, err := b.Publish("pos/b", payload, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	if sent < 1 || sent > 20 {
		t.Fatalf("%d of 100 sent under a 1024 B/s budget", sent)
	}
	st, err := b.BandwidthStats()
	if err != nil || st.DroppedDatagrams != uint64(100-sent) || st.BytesLimited < uint64(900*sent) {
		t.Fatalf("stats %+v %v (sent %d)", st, err, sent)
	}
	socket := Bandwidth{Links: map[string]uint64{SocketLink: 40_000}}
	if err := b.SetBandwidth(socket); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Bandwidth{{Links: map[string]uint64{"radio": 5000}}, {PerPeer: 10}} {
		if err := b.SetBandwidth(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("%+v: %v", bad, err)
		}
		if bw, _ := b.Bandwidth(); !reflect.DeepEqual(bw, socket) {
			t.Fatalf("after a refused budget: %+v", bw)
		}
	}
	if err := b.SetBandwidth(Bandwidth{}); err != nil {
		t.Fatal(err)
	}
	if bw, _ := b.Bandwidth(); !reflect.DeepEqual(bw, Bandwidth{}) {
		t.Fatalf("lifted: %+v", bw)
	}
	if n, err := b.Publish("pos/b", payload, PublishOptions{}); n != 1 || err != nil {
		t.Fatalf("after lifting: %d %v", n, err)
	}
	// a message's class; an unknown one is refused
	if n, err := b.Publish("pos/b", payload, PublishOptions{Priority: PriorityLow}); n != 1 || err != nil {
		t.Fatalf("low class: %d %v", n, err)
	}
	if _, err := b.Publish("pos/b", payload, PublishOptions{Priority: "urgent"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown class: %v", err)
	}
	// a blob fetched in the high class; an unknown class is refused
	src := filepath.Join(t.TempDir(), "photo.bin")
	if err := os.WriteFile(src, make([]byte, 100_000), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := a.AddBlobFile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	aid, _ := a.ID()
	tr, err := b.FetchBlob(info.Hash, FetchOptions{Providers: []string{aid}, Priority: PriorityHigh})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if got, err := tr.Wait(ctx); err != nil || got.Size != info.Size {
		t.Fatalf("high-class fetch: %+v %v", got, err)
	}
	if _, err := b.FetchBlob(info.Hash, FetchOptions{Priority: "urgent"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown class: %v", err)
	}
	_, err = Open(ctx, Config{
		DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0",
		Bandwidth: Bandwidth{Links: map[string]uint64{"radio": 5000}},
	})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("open with an unknown link: %v", err)
	}
}

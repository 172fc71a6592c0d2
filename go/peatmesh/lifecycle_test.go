package peatmesh

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// Conformance scenario 26: collection policies at open and at runtime,
// retention by garbage collection, storage counters, bad policies refused.
func TestPoliciesRetentionAndStorageStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := Open(ctx, Config{
		DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0",
		Policies: map[string]CollectionPolicy{"log": {Priority: PriorityBulk, MaxDocuments: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	log, err := a.Policy("log")
	if err != nil || log.Priority != PriorityBulk || log.MaxDocuments != 3 {
		t.Fatalf("log policy %+v, %v", log, err)
	}
	other, err := a.Policy("other")
	if err != nil || other.Priority != PriorityNormal || other.Sync != SyncFull || other.TombstoneTTL != 7*24*time.Hour || other.TTL != 0 {
		t.Fatalf("default policy %+v, %v", other, err)
	}
	if err := a.SetPolicy("cache", CollectionPolicy{TTL: time.Hour, Delete: UpdateWins}); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.Policy("cache"); c.TTL != time.Hour || c.Delete != UpdateWins {
		t.Fatalf("cache policy %+v", c)
	}
	if err := a.SetPolicy("", CollectionPolicy{Priority: PriorityHigh}); err != nil {
		t.Fatal(err)
	}
	def, own, err := a.Policies()
	if err != nil || def.Priority != PriorityHigh || len(own) != 2 || own["log"].MaxDocuments != 3 {
		t.Fatalf("policies %+v %+v %v", def, own, err)
	}
	if removed, err := a.RemovePolicy("cache"); !removed || err != nil {
		t.Fatalf("remove: %v %v", removed, err)
	}
	if removed, err := a.RemovePolicy("cache"); removed || err != nil {
		t.Fatalf("second remove: %v %v", removed, err)
	}

	for i := 0; i < 5; i++ {
		if err := a.Put(ctx, "log", "e"+string(rune('0'+i)), map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := a.CollectGarbage(ctx)
	if err != nil || r.EvictedDocuments != 2 || r.ExpiredDocuments != 0 || r.PurgedTombstones != 0 {
		t.Fatalf("gc %+v %v", r, err)
	}
	ids, _, err := a.List(ctx, "log", "", "", 10)
	if err != nil || !reflect.DeepEqual(ids, []string{"e2", "e3", "e4"}) {
		t.Fatalf("kept %v %v", ids, err)
	}
	if _, err := a.Delete(ctx, "log", "e4"); err != nil {
		t.Fatal(err)
	}
	s, err := a.StorageStats(ctx)
	if err != nil || s.Documents != 2 || s.Tombstones != 1 || s.EvictedTotal != 2 || s.GCRuns < 1 || s.DocumentBytes == 0 {
		t.Fatalf("stats %+v %v", s, err)
	}

	for _, bad := range []CollectionPolicy{
		{Priority: "urgent"}, {TTL: 1500 * time.Millisecond}, {TTL: -time.Second}, {Sync: SyncWindowed},
	} {
		if err := a.SetPolicy("log", bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := a.Policy(""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty collection: %v", err)
	}
	if log, _ := a.Policy("log"); log.Priority != PriorityBulk {
		t.Errorf("a refused policy changed it: %+v", log)
	}
	_, err = Open(ctx, Config{
		DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0",
		Policies: map[string]CollectionPolicy{"": {}},
	})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("open with a bad policy: %v", err)
	}

	// a storage budget of 1 byte: every normal document goes at the next pass
	b, err := Open(ctx, Config{DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0", StorageBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, id := range []string{"t0", "t1"} {
		if err := b.Put(ctx, "tiles", id, map[string]int{"x": 1}); err != nil {
			t.Fatal(err)
		}
	}
	// a collection kept until delivered: no peer holds its document, so it stays
	if err := b.SetPolicy("orders", CollectionPolicy{KeepUntilDelivered: true}); err != nil {
		t.Fatal(err)
	}
	if p, err := b.Policy("orders"); err != nil || !p.KeepUntilDelivered {
		t.Fatalf("orders policy %+v %v", p, err)
	}
	if err := b.Put(ctx, "orders", "o1", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	events, err := b.SubscribePeers(8)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	if r, err := b.CollectGarbage(ctx); err != nil || r.BudgetEvicted != 2 {
		t.Fatalf("budget gc %+v %v", r, err)
	}
	select {
	case ev := <-events.Events():
		if ev.Kind != StorageEvicted || ev.Peer != "" || ev.Evicted != 2 || ev.StoredBytes == 0 {
			t.Fatalf("event %+v, want StorageEvicted of 2 documents", ev)
		}
	case <-ctx.Done():
		t.Fatal("no StorageEvicted event")
	}
	if s, err := b.StorageStats(ctx); err != nil || s.BudgetEvictedTotal != 2 || s.Documents != 1 {
		t.Fatalf("budget stats %+v %v", s, err)
	}
}

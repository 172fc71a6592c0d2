package peatmesh

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Scenario 32: collections with their live counts, a page at a time; the
// blob fetches running, listed while they run and not once cancelled.
func TestCollectionsAndTransfers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := open(t, secret), open(t, secret)
	for _, d := range []struct{ c, id string }{{"alpha", "a1"}, {"alpha", "a2"}, {"beta", "b1"}, {"beta", "b2"}} {
		if err := a.Put(ctx, d.c, d.id, map[string]any{"n": 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Delete(ctx, "beta", "b1"); err != nil {
		t.Fatal(err)
	}
	all, err := a.Collections(ctx, "", 10)
	want := []Collection{{"alpha", 2}, {"beta", 1}}
	if err != nil || !reflect.DeepEqual(all, want) {
		t.Fatalf("collections %+v %v", all, err)
	}
	page, err := a.Collections(ctx, "alpha", 1)
	if err != nil || !reflect.DeepEqual(page, want[1:]) {
		t.Fatalf("the page after alpha %+v %v", page, err)
	}
	if rest, err := a.Collections(ctx, "beta", 1); err != nil || len(rest) != 0 {
		t.Fatalf("past the end %+v %v", rest, err)
	}
	if _, err := a.Collections(ctx, "", 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("limit 0: %v", err)
	}

	if running, err := b.BlobTransfers(); err != nil || len(running) != 0 {
		t.Fatalf("nothing running yet %+v %v", running, err)
	}
	connect(t, b, a)
	data := make([]byte, 2<<20)
	rand.New(rand.NewSource(32)).Read(data)
	src := filepath.Join(t.TempDir(), "src.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := a.AddBlobFile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := b.FetchBlob(info.Hash, FetchOptions{Profile: "edge", RateLimit: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	running, err := b.BlobTransfers()
	if err != nil || len(running) != 1 || running[0].Hash != info.Hash || running[0].Progress.Finished {
		t.Fatalf("the running fetch %+v %v", running, err)
	}
	if err := tr.Cancel(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Wait(ctx); !errors.Is(err, ErrCancelled) {
		t.Fatalf("cancelled fetch: %v", err)
	}
	if running, err := b.BlobTransfers(); err != nil || len(running) != 0 {
		t.Fatalf("after the cancel %+v %v", running, err)
	}
}

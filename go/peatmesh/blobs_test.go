package peatmesh

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBlobFetchProgressCancelResume(t *testing.T) {
	before := LiveHandles()
	a, b := open(t, secret), open(t, secret)
	connect(t, b, a)
	data := make([]byte, 2<<20)
	rand.New(rand.NewSource(7)).Read(data)
	src := filepath.Join(t.TempDir(), "src.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := a.AddBlobFile(ctx, src)
	if err != nil || info.Size != uint64(len(data)) || len(info.Hash) != 64 || len(info.SHA256) != 64 {
		t.Fatalf("add: %+v %v", info, err)
	}
	aid, _ := a.ID()
	if _, err := b.FetchBlob(info.Hash, FetchOptions{Profile: "warp"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("an unknown profile: %v", err)
	}

	// A slow fetch; cancelling the context that Wait runs under stops it.
	tr, err := b.FetchBlob(info.Hash, FetchOptions{Providers: []string{aid}, Profile: "edge", RateLimit: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	var last uint64
	go func() {
		for p := range tr.Updates(wctx, 20*time.Millisecond) {
			if p.Done < last {
				t.Errorf("progress went back: %d < %d", p.Done, last)
			}
			last = p.Done
			if p.Done >= 256<<10 {
				wcancel()
			}
		}
	}()
	_, err = tr.Wait(wctx)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	st, err := b.BlobStatus(info.Hash)
	if err != nil || st.State != BlobPartial || st.Present < 256<<10 || st.Present >= st.Size {
		t.Fatalf("status after cancel: %+v %v", st, err)
	}
	// The transfer really stopped: its bytes do not grow any more.
	time.Sleep(300 * time.Millisecond)
	p1, _ := tr.Progress()
	time.Sleep(300 * time.Millisecond)
	p2, _ := tr.Progress()
	if !p2.Finished || p2.Done != p1.Done {
		t.Fatalf("transfer still running after cancel: %+v %+v", p1, p2)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); !errors.Is(err, ErrInvalidHandle) {
		t.Fatalf("double close: %v", err)
	}

	// Resume at full speed.
	tr, err = b.FetchBlob(info.Hash, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tr.Wait(ctx)
	if err != nil || got != info {
		t.Fatalf("resumed fetch: %+v %v", got, err)
	}
	p, _ := tr.Progress()
	if p.Resumed < st.Present || p.Received != p.Total-p.Resumed {
		t.Fatalf("did not resume: %+v (had %d)", p, st.Present)
	}
	_ = tr.Close()
	out := filepath.Join(t.TempDir(), "out.bin")
	if n, err := b.ExportBlob(ctx, info.Hash, out); err != nil || n != info.Size {
		t.Fatalf("export: %d %v", n, err)
	}
	back, _ := os.ReadFile(out)
	if !bytes.Equal(back, data) {
		t.Fatal("exported bytes differ")
	}
	if _, err := b.FetchBlob("nothex", FetchOptions{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad hash: %v", err)
	}
	_ = a.Close()
	_ = b.Close()
	if LiveHandles() != before {
		t.Fatalf("live handles %d, want %d", LiveHandles(), before)
	}
}

// Scenario 22: a fetch expecting another size than the only provider's fails
// with ErrCorrupt and keeps nothing; DiscardPartial is refused while its fetch
// runs, then reports true once and false after; the next fetch (with the right
// ExpectedSize) starts from nothing; a complete blob is never discarded.
func TestBlobExpectedSizeAndDiscardPartial(t *testing.T) {
	before := LiveHandles()
	a, b := open(t, secret), open(t, secret)
	connect(t, b, a)
	data := make([]byte, 2<<20)
	rand.New(rand.NewSource(11)).Read(data)
	src := filepath.Join(t.TempDir(), "src.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info, err := a.AddBlobFile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	aid, _ := a.ID()
	fetch := func(o FetchOptions) *Transfer {
		t.Helper()
		tr, err := b.FetchBlob(info.Hash, o)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	status := func() BlobStatus {
		t.Helper()
		st, err := b.BlobStatus(info.Hash)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	tr := fetch(FetchOptions{Providers: []string{aid}, ExpectedSize: info.Size + 1})
	if _, err := tr.Wait(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong expected size: %v, want ErrCorrupt", err)
	}
	_ = tr.Close()
	if st := status(); st.State != BlobMissing {
		t.Fatalf("after a refused fetch: %+v", st)
	}

	// A slow fetch: discarding is refused while it runs.
	tr = fetch(FetchOptions{Providers: []string{aid}, Profile: "edge", RateLimit: 256 << 10, ExpectedSize: info.Size})
	uctx, ucancel := context.WithCancel(ctx)
	started := false
	for p := range tr.Updates(uctx, 10*time.Millisecond) {
		if p.Done >= 64<<10 {
			started = true
			break
		}
	}
	ucancel()
	if !started {
		t.Fatal("the slow fetch made no progress")
	}
	if _, err := b.DiscardPartial(ctx, info.Hash); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("discard while fetching: %v, want ErrInvalidArgument", err)
	}
	if err := tr.Cancel(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Wait(ctx); !errors.Is(err, ErrCancelled) {
		t.Fatalf("cancelled transfer: %v", err)
	}
	_ = tr.Close()
	if st := status(); st.State != BlobPartial {
		t.Fatalf("after cancel: %+v", st)
	}
	if had, err := b.DiscardPartial(ctx, info.Hash); !had || err != nil {
		t.Fatalf("discard: %v %v", had, err)
	}
	if st := status(); st.State != BlobMissing || st.Present != 0 {
		t.Fatalf("after discard: %+v", st)
	}
	if had, err := b.DiscardPartial(ctx, info.Hash); had || err != nil {
		t.Fatalf("second discard: %v %v", had, err)
	}

	// The next fetch starts from nothing.
	tr = fetch(FetchOptions{Providers: []string{aid}, ExpectedSize: info.Size})
	got, err := tr.Wait(ctx)
	if err != nil || got != info {
		t.Fatalf("fetch: %+v %v", got, err)
	}
	if p, _ := tr.Progress(); p.Resumed != 0 || p.Done != info.Size {
		t.Fatalf("did not start from nothing: %+v", p)
	}
	_ = tr.Close()
	if had, err := b.DiscardPartial(ctx, info.Hash); had || err != nil {
		t.Fatalf("discard of a complete blob: %v %v", had, err)
	}
	if st := status(); st.State != BlobComplete {
		t.Fatalf("complete blob touched: %+v", st)
	}
	if _, err := b.DiscardPartial(ctx, "nothex"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad hash: %v", err)
	}
	_ = a.Close()
	_ = b.Close()
	if LiveHandles() != before {
		t.Fatalf("live handles %d, want %d", LiveHandles(), before)
	}
}

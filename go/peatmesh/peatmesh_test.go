package peatmesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var secret = [32]byte{7, 7, 7}

func open(t testing.TB, s [32]byte) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := Open(ctx, Config{DataDir: t.TempDir(), FormationID: "go", FormationSecret: s, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func connect(t *testing.T, from, to *Node) {
	t.Helper()
	addrs, err := to.Addrs()
	if err != nil || len(addrs) == 0 {
		t.Fatalf("addrs: %v %v", addrs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := from.Connect(ctx, addrs[0]); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

func awaitDoc(t *testing.T, sub *Subscription, id string) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription closed while waiting for %s", id)
			}
			if ev.Kind == DocChanged && ev.ID == id {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event for %s", id)
		}
	}
}

func TestOpenCloseFreesHandles(t *testing.T) {
	before := LiveHandles()
	n := open(t, secret)
	id, err := n.ID()
	if err != nil || len(id) != 64 {
		t.Fatalf("id %q %v", id, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("close is idempotent: %v", err)
	}
	if _, err := n.ID(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if LiveHandles() > before {
		t.Fatalf("handles leaked: %d > %d", LiveHandles(), before)
	}
}

// until polls f (a node's counters) until it returns true, for at most 10 s.
func until(f func() bool) bool {
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		if f() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f()
}

// Scenario 33: per-peer sync traffic and queues, unread events, update latency.
func TestPeerTrafficQueuesAndLatency(t *testing.T) {
	a, b := open(t, secret), open(t, secret)
	sub, err := b.Subscribe("q", "", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	connect(t, b, a)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := a.Put(ctx, "q", fmt.Sprintf("d%d", i), map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
	}
	// The pump holds one event for the unread channel; the rest wait queued.
	var st Stats
	if !until(func() bool { st, _ = b.Stats(); return st.QueuedEvents >= 2 && st.UpdateLatencyCount >= 3 }) {
		t.Fatalf("stats %+v", st)
	}
	if st.UpdateLatencySum >= time.Duration(st.UpdateLatencyCount)*time.Minute {
		t.Fatalf("update latency %v over %d changes", st.UpdateLatencySum, st.UpdateLatencyCount)
	}
	atB, err := b.Peers()
	if err != nil || len(atB) != 1 || atB[0].SyncBytesSent == 0 || atB[0].SyncBytesRecv == 0 {
		t.Fatalf("peers at b %+v %v", atB, err)
	}
	var atA []PeerInfo
	if !until(func() bool {
		atA, _ = a.Peers()
		return len(atA) == 1 && atA[0].SyncQueuedUpdates == 0 && atA[0].SyncQueuedReplyBytes == 0
	}) || atA[0].SyncBytesSent == 0 {
		t.Fatalf("peers at a %+v", atA)
	}
	for i := 0; i < 3; i++ {
		select {
		case <-sub.Events():
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}
	if !until(func() bool { st, _ = b.Stats(); return st.QueuedEvents == 0 }) {
		t.Fatalf("events still queued after reading: %+v", st)
	}
}

func TestTwoNodesSync(t *testing.T) {
	a, b := open(t, secret), open(t, secret)
	sub, err := b.Subscribe("tracks", "", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	connect(t, b, a)
	ctx := context.Background()
	type track struct {
		Lat float64 `json:"lat"`
	}
	if err := a.Put(ctx, "tracks", "t1", track{Lat: 1.5}); err != nil {
		t.Fatal(err)
	}
	ev := awaitDoc(t, sub, "t1")
	if aid, _ := a.ID(); string(ev.JSON) != `{"lat":1.5}` || ev.Origin != OriginPeer || ev.Peer != aid {
		t.Fatalf("event %s from %q %q", ev.JSON, ev.Origin, ev.Peer)
	}
	got, err := GetAs[track](ctx, b, "tracks", "t1")
	if err != nil || got.Lat != 1.5 {
		t.Fatalf("GetAs %v %v", got, err)
	}
	peers, err := b.Peers()
	aid, _ := a.ID()
	if err != nil || len(peers) != 1 || peers[0].ID != aid || !peers[0].Connected || peers[0].LastSeen.IsZero() {
		t.Fatalf("peers %+v %v", peers, err)
	}
	// A normal sync refuses nothing (the Rust hostile-peer suite covers the other case).
	st, err := b.Stats()
	if err != nil || st.ConnectedPeers != 1 || st.Subscriptions != 1 || st.FramesRecv == 0 || st.BytesRecv == 0 ||
		st.RefusedDocuments != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
}

func TestGetListDelete(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if err := n.Put(ctx, "u", id, map[string]any{"id": id}); err != nil {
			t.Fatal(err)
		}
	}
	ids, next, err := n.List(ctx, "u", "", "", 2)
	if err != nil || strings.Join(ids, ",") != "a,b" || next == "" {
		t.Fatalf("page 1: %v %q %v", ids, next, err)
	}
	ids, next, err = n.List(ctx, "u", "", next, 10)
	if err != nil || strings.Join(ids, ",") != "c" || next != "" {
		t.Fatalf("page 2: %v %q %v", ids, next, err)
	}
	if ok, err := n.Delete(ctx, "u", "a"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, err := n.Get(ctx, "u", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	data, err := n.Export(ctx, "u", "c")
	if err != nil || len(data) == 0 {
		t.Fatalf("export: %v", err)
	}
	if err := n.Import(ctx, "copy", "c", data); err != nil {
		t.Fatal(err)
	}
	if raw, _ := n.Get(ctx, "copy", "c"); string(raw) != `{"id":"c"}` {
		t.Fatalf("imported %s", raw)
	}
	if err := n.Import(ctx, "copy", "x", []byte("not automerge")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad import: %v", err)
	}
	if err := n.MergePatch(ctx, "u", "b", map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	raw, _ := n.Get(ctx, "u", "b")
	if string(raw) != `{"id":"b","x":1}` {
		t.Fatalf("merged %s", raw)
	}
}

func TestSubscribeWithSnapshot(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	_ = n.Put(ctx, "s", "x", map[string]int{"v": 1})
	sub, err := n.Subscribe("s", "", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := awaitDoc(t, sub, "x"); ev.Origin != "snapshot" {
		t.Fatalf("origin %q", ev.Origin)
	}
	_ = n.Put(ctx, "s", "y", map[string]int{"v": 2})
	if ev := awaitDoc(t, sub, "y"); ev.Origin != "local" {
		t.Fatalf("origin %q", ev.Origin)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.Events(); ok {
		// drain: buffered events may remain, but the channel must end
		for range sub.Events() {
		}
	}
	if err := sub.Close(); !errors.Is(err, ErrInvalidHandle) {
		t.Fatalf("double close: %v", err)
	}
}

func TestUnsubscribeDuringBurst(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	sub, _ := n.Subscribe("b", "", false, 1024)
	var afterClose int
	for i := 0; i < 60; i++ {
		_ = n.Put(ctx, "b", fmt.Sprint(i), map[string]int{"i": i})
		if i == 30 {
			_ = sub.Close()
			afterClose = len(sub.Events())
		}
	}
	time.Sleep(100 * time.Millisecond)
	count := 0
	for range sub.Events() {
		count++
	}
	if count != afterClose {
		t.Fatalf("%d events arrived after Close returned (had %d queued)", count-afterClose, afterClose)
	}
}

func TestSlowReaderGetsLagEvent(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	sub, _ := n.Subscribe("lag", "", false, 4)
	defer sub.Close()
	for i := 0; i < 40; i++ {
		_ = n.Put(ctx, "lag", fmt.Sprint(i), map[string]int{"i": i})
	}
	time.Sleep(200 * time.Millisecond)
	lagged := uint64(0)
	for i := 0; i < 40; i++ {
		select {
		case ev := <-sub.Events():
			if ev.Kind == Lagged {
				lagged += ev.Dropped
			}
		case <-time.After(300 * time.Millisecond):
			i = 40
		}
	}
	if lagged == 0 {
		t.Fatalf("expected a lag event")
	}
}

func TestThousandsOfSubscriptionsFreeEverything(t *testing.T) {
	n := open(t, secret)
	base := LiveHandles()
	for i := 0; i < 2000; i++ {
		sub, err := n.Subscribe("c", "", false, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-sub.Events(); ok {
			t.Fatal("channel not closed")
		}
	}
	if LiveHandles() != base {
		t.Fatalf("handles %d != %d", LiveHandles(), base)
	}
}

func TestErrorKinds(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	var perr *Error
	if err := n.PutJSON(ctx, "c", "d", []byte("{bad")); !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &perr) {
		t.Fatalf("bad json: %v", err)
	}
	if err := n.PutJSON(ctx, "c", "d", []byte("[1]")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("array: %v", err)
	}
	if err := n.Put(ctx, "", "d", map[string]int{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty collection: %v", err)
	}
	if err := n.Put(ctx, "c\xff", "d", map[string]int{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("invalid utf-8: %v", err)
	}
	if _, err := n.Get(ctx, "c", "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	time.Sleep(2 * time.Millisecond)
	if err := n.Connect(short, "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29@127.0.0.1:9"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: %v", err)
	}
	other := open(t, [32]byte{1})
	addrs, _ := n.Addrs()
	cctx, c2 := context.WithTimeout(ctx, 10*time.Second)
	defer c2()
	if err := other.Connect(cctx, addrs[0]); !errors.Is(err, ErrAdmissionRefused) {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestCancelContextStopsConnect(t *testing.T) {
	n := open(t, secret)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	err := n.Connect(ctx, "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29@127.0.0.1:9")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Fatalf("cancelled connect: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
}

func TestCloseWithSubscriptionsInFlight(t *testing.T) {
	a, b := open(t, secret), open(t, secret)
	sub, _ := a.Subscribe("x", "", false, 8)
	peers, _ := a.SubscribePeers(8)
	connect(t, b, a)
	for i := 0; i < 20; i++ {
		_ = b.Put(context.Background(), "x", "k", map[string]int{"i": i})
	}
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 6*time.Second {
		t.Fatalf("close took %v", time.Since(start))
	}
	// the node's end closes both channels
	for _, s := range []*Subscription{sub, peers} {
		timeout := time.After(5 * time.Second)
		for done := false; !done; {
			select {
			case _, ok := <-s.Events():
				done = !ok
			case <-timeout:
				t.Fatal("channel not closed after node close")
			}
		}
		_ = s.Close()
	}
}

func TestManyGoroutinesOneNode(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				if err := n.Put(ctx, "m", id, map[string]int{"g": g}); err != nil {
					errs <- err
					return
				}
				if _, err := n.Get(ctx, "m", id); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ids, _, _ := n.List(ctx, "m", "", "", 1000)
	if len(ids) != 400 {
		t.Fatalf("%d docs", len(ids))
	}
}

// The child side of the process tests, selected by environment.
func TestMain(m *testing.M) {
	switch os.Getenv("PEATMESH_CHILD") {
	case "exit-open":
		n, err := Open(context.Background(), Config{DataDir: os.Getenv("PEATMESH_DIR"), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0"})
		if err != nil {
			os.Exit(2)
		}
		_ = n.Put(context.Background(), "x", "y", map[string]int{})
		os.Exit(0) // node left open on purpose
	case "writer":
		n, err := Open(context.Background(), Config{DataDir: os.Getenv("PEATMESH_DIR"), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0"})
		if err != nil {
			os.Exit(2)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Connect(ctx, os.Getenv("PEATMESH_PEER")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		_ = n.Put(ctx, "procs", "from-child", map[string]string{"hello": "parent"})
		sub, _ := n.Subscribe("procs", "from-parent", true, 8)
		select {
		case <-sub.Events():
		case <-ctx.Done():
			os.Exit(4)
		}
		_ = n.Close()
		os.Exit(0)
	case "shutdown":
		n, err := Open(context.Background(), Config{DataDir: os.Getenv("PEATMESH_DIR"), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0"})
		if err != nil {
			os.Exit(2)
		}
		// Left open, with a subscription, through Shutdown: it closes the node.
		if _, err := n.Subscribe("s", "", true, 8); err != nil {
			os.Exit(12)
		}
		for i := 0; i < 100; i++ {
			if err := n.Put(context.Background(), "s", "last", map[string]int{"n": i}); err != nil {
				os.Exit(13)
			}
		}
		if err := Shutdown(5 * time.Second); err != nil || LiveHandles() != 0 {
			os.Exit(3)
		}
		// Another process opens the data dir while this one still runs: the
		// database was released and the last acknowledged write is there.
		reopen := exec.Command(os.Args[0], "-test.run=^$")
		reopen.Env = append(os.Environ(), "PEATMESH_CHILD=reopen")
		if out, err := reopen.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "reopen after Shutdown: %v %s\n", err, out)
			os.Exit(11)
		}
		if _, err := n.Get(context.Background(), "c", "d"); err == nil {
			os.Exit(4)
		}
		_, err = Open(context.Background(), Config{DataDir: os.Getenv("PEATMESH_DIR"), FormationID: "go", FormationSecret: secret})
		if !errors.Is(err, ErrShutDown) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
		if err := Shutdown(time.Second); err != nil { // idempotent
			os.Exit(6)
		}
		// Refused calls that take a callback: the cgo handle is deleted once, by us.
		base := liveCallbacks.Load()
		if err := SetLogHandler(LogInfo, func(LogLevel, string, string) {}); !errors.Is(err, ErrShutDown) {
			fmt.Fprintln(os.Stderr, "SetLogHandler after Shutdown:", err)
			os.Exit(7)
		}
		if _, err := n.SubscribePeers(8); err == nil {
			os.Exit(8)
		}
		if _, err := n.Subscribe("c", "", false, 8); err == nil {
			os.Exit(9)
		}
		if liveCallbacks.Load() != base {
			fmt.Fprintln(os.Stderr, "callback handles leaked:", liveCallbacks.Load()-base)
			os.Exit(10)
		}
		os.Exit(0)
	case "reopen":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := Open(ctx, Config{DataDir: os.Getenv("PEATMESH_DIR"), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			os.Exit(2)
		}
		if got, err := n.Get(ctx, "s", "last"); err != nil || string(got) != `{"n":99}` {
			fmt.Fprintf(os.Stderr, "last write: %s %v\n", got, err)
			os.Exit(3)
		}
		if err := n.Close(); err != nil {
			os.Exit(4)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestShutdownInAChildProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PEATMESH_CHILD=shutdown", "PEATMESH_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
}

// A refused subscribe deletes its cgo handle exactly once (the SDK does not run
// the cleanup hook on failure); a successful one deletes it at Close.
func TestFailedSubscribeReleasesItsCallbackOnce(t *testing.T) {
	n := open(t, secret)
	base := liveCallbacks.Load()
	for i := 0; i < 3; i++ {
		_, err := n.Subscribe("c", strings.Repeat("x", 600), false, 8)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("subscribe with an over-long id: %v", err)
		}
	}
	if got := liveCallbacks.Load(); got != base {
		t.Fatalf("callback handles after failed subscribes: %d, want %d", got, base)
	}
	sub, err := n.Subscribe("c", "", false, 8)
	if err != nil {
		t.Fatal(err)
	}
	if liveCallbacks.Load() != base+1 {
		t.Fatalf("a live subscription holds one handle")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if got := liveCallbacks.Load(); got != base {
		t.Fatalf("callback handles after close: %d, want %d", got, base)
	}
}

// Document limits: JSON nested deeper than 100 levels or with an integer
// outside 64 bits is refused with ErrInvalidArgument and stores nothing; the
// largest uint64 round-trips exactly; a garbage or cut Automerge import is
// refused and leaves the document byte-identical.
func TestDocumentLimits(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	big := json.RawMessage(`{"n":18446744073709551617}`)
	deep := json.RawMessage(strings.Repeat(`{"a":`, 150) + "1" + strings.Repeat("}", 150))
	for _, doc := range []json.RawMessage{big, deep} {
		if err := n.PutJSON(ctx, "lim", "x", doc); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("put of %.40s: %v", doc, err)
		}
		if err := n.MergePatch(ctx, "lim", "x", doc); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("merge patch of %.40s: %v", doc, err)
		}
	}
	if _, err := n.Get(ctx, "lim", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused write stored something: %v", err)
	}
	if err := n.PutJSON(ctx, "lim", "max", json.RawMessage(`{"n":18446744073709551615}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := n.Get(ctx, "lim", "max"); err != nil || string(got) != `{"n":18446744073709551615}` {
		t.Fatalf("u64 max: %s %v", got, err)
	}
	if v, err := GetAs[struct{ N uint64 }](ctx, n, "lim", "max"); err != nil || v.N != math.MaxUint64 {
		t.Fatalf("u64 max decoded: %v %v", v, err)
	}
	if err := n.Put(ctx, "lim", "src", map[string]string{"y": "a longer value so the save has some body to cut"}); err != nil {
		t.Fatal(err)
	}
	save, err := n.Export(ctx, "lim", "src")
	if err != nil {
		t.Fatal(err)
	}
	before, err := n.Export(ctx, "lim", "max")
	if err != nil {
		t.Fatal(err)
	}
	for what, data := range map[string][]byte{
		"garbage":        []byte("\x85\x6f\x4a\x83 definitely not automerge"),
		"truncated save": save[:len(save)/2],
	} {
		if err := n.Import(ctx, "lim", "max", data); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("import of %s: %v", what, err)
		}
		after, err := n.Export(ctx, "lim", "max")
		if err != nil || !bytes.Equal(after, before) {
			t.Fatalf("import of %s changed the document (%v)", what, err)
		}
	}
}

// NUL in a collection or id is refused with ErrInvalidArgument: the C strings
// the SDK hands back would end there, and Go would see another id.
func TestNulInNamesIsRefused(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	for _, ci := range [][2]string{{"c", "a\x00b"}, {"c\x00d", "a"}} {
		c, id := ci[0], ci[1]
		checks := map[string]error{
			"Put":        n.Put(ctx, c, id, map[string]int{"x": 1}),
			"MergePatch": n.MergePatch(ctx, c, id, map[string]int{"x": 1}),
			"Import":     n.Import(ctx, c, id, []byte{0}),
		}
		_, checks["Get"] = n.Get(ctx, c, id)
		_, checks["Delete"] = n.Delete(ctx, c, id)
		_, checks["Export"] = n.Export(ctx, c, id)
		_, checks["Subscribe"] = n.Subscribe(c, id, false, 8)
		for name, err := range checks {
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "NUL") {
				t.Errorf("%s(%q, %q): %v", name, c, id, err)
			}
		}
	}
	if _, _, err := n.List(ctx, "c", "a\x00", "", 10); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("List with a NUL prefix: %v", err)
	}
	if _, err := n.Subscribe("c\x00", "", false, 8); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Subscribe to a NUL collection: %v", err)
	}
	ids, _, err := n.List(ctx, "c", "", "", 10)
	if err != nil || len(ids) != 0 {
		t.Fatalf("something was stored: %v %v", ids, err)
	}
}

func TestGenerateFormationSecret(t *testing.T) {
	a, err := GenerateFormationSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateFormationSecret()
	if err != nil {
		t.Fatal(err)
	}
	if a == ([32]byte{}) || a == b {
		t.Fatalf("not random: %x %x", a, b)
	}
	// an all-zero secret (one never set) is refused; a generated one opens
	_, err = Open(context.Background(), Config{DataDir: t.TempDir(), FormationID: "go", Listen: "127.0.0.1:0"})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("open with an all-zero secret: %v", err)
	}
	n := open(t, a)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLogHandlerReceivesRecords(t *testing.T) {
	got := make(chan string, 64)
	if err := SetLogHandler(LogInfo, func(level LogLevel, target, message string) {
		select {
		case got <- message:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ClearLogHandler() }()
	n := open(t, secret) // opening a node logs at info level
	_ = n.Close()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no log record arrived")
	}
}

func TestExitWithOpenNode(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PEATMESH_CHILD=exit-open", "PEATMESH_DIR="+t.TempDir())
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child hung at exit")
	}
}

func TestTwoProcessesSync(t *testing.T) {
	n := open(t, secret)
	ctx := context.Background()
	_ = n.Put(ctx, "procs", "from-parent", map[string]string{"hello": "child"})
	sub, _ := n.Subscribe("procs", "from-child", true, 8)
	defer sub.Close()
	addrs, _ := n.Addrs()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PEATMESH_CHILD=writer", "PEATMESH_DIR="+t.TempDir(), "PEATMESH_PEER="+addrs[0])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	ev := awaitDoc(t, sub, "from-child")
	if string(ev.JSON) != `{"hello":"parent"}` {
		t.Fatalf("got %s", ev.JSON)
	}
}

func BenchmarkGet(b *testing.B) {
	n := open(b, secret)
	ctx := context.Background()
	_ = n.Put(ctx, "bench", "small", map[string]any{"callsign": "A-1", "lat": 59.3, "lon": 18.1})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.Get(ctx, "bench", "small"); err != nil {
			b.Fatal(err)
		}
	}
}

// Durable puts from many goroutines (group commit), each followed by a get.
func BenchmarkPutGetParallel(b *testing.B) {
	n := open(b, secret)
	ctx := context.Background()
	var seq sync.Mutex
	next := 0
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq.Lock()
			id := fmt.Sprint(next)
			next++
			seq.Unlock()
			if err := n.Put(ctx, "bench", id, map[string]int{"v": 1}); err != nil {
				b.Fatal(err)
			}
			if _, err := n.Get(ctx, "bench", id); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestStaticPeerAddedAndRemoved(t *testing.T) {
	a, b := open(t, secret), open(t, secret)
	sub, err := a.SubscribePeers(16)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	addrs, _ := b.Addrs()
	if err := a.AddPeer(addrs[0]); err != nil {
		t.Fatal(err)
	}
	discovered, connected := false, false
	deadline := time.After(10 * time.Second)
	for !(discovered && connected) {
		select {
		case ev := <-sub.Events():
			if ev.Kind == PeerDiscovered && ev.Reason == "static" {
				discovered = true
			}
			if ev.Kind == PeerConnected {
				connected = true
			}
		case <-deadline:
			t.Fatalf("discovered=%v connected=%v", discovered, connected)
		}
	}
	peers, _ := a.Peers()
	if len(peers) != 1 || peers[0].State != "connected" || len(peers[0].Sources) != 1 || peers[0].Sources[0] != "static" {
		t.Fatalf("peers: %+v", peers)
	}
	bid, _ := b.ID()
	if ok, err := a.RemovePeer(bid); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	if ok, _ := a.RemovePeer(bid); ok {
		t.Fatal("removed twice")
	}
	if err := a.AddPeer("nonsense"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad peer: %v", err)
	}
}

// A node whose data dir (a 3 MiB tmpfs) fills up: the failing Put returns
// ErrIO, so does every later one, and SubscribePeers delivers StorageFailed
// once, with a reason and no peer. Mounting needs root (CI runs as root):
// without it the test fails and says so.
func TestStorageFailed(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs failed: this test needs root (run it as root, as CI does): %v %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("umount: %v %s", err, out)
		}
	}()
	if err := os.WriteFile(mnt+"/filler", make([]byte, 256<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Open(ctx, Config{DataDir: mnt + "/node", FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer n.Close() // before the umount
	sub, err := n.SubscribePeers(16)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pad := strings.Repeat("x", 2000)
	acknowledged := 0
	for i := 0; i < 100_000; i++ {
		// varied content so nothing compresses away
		doc := map[string]any{"i": i, "pad": fmt.Sprintf("%s%d", pad, i), "k": i * 7919}
		if err = n.Put(ctx, "fill", fmt.Sprintf("d%d", i), doc); err != nil {
			break
		}
		acknowledged++
	}
	if !errors.Is(err, ErrIO) || acknowledged == 0 {
		t.Fatalf("after %d puts: %v, want ErrIO", acknowledged, err)
	}
	if err := n.Put(ctx, "small", "s", map[string]int{"a": 1}); !errors.Is(err, ErrIO) {
		t.Fatalf("a later put: %v, want ErrIO", err)
	}
	select {
	case ev := <-sub.Events():
		if ev.Kind != StorageFailed || ev.Peer != "" || ev.Reason == "" {
			t.Fatalf("event %+v, want StorageFailed with a reason", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no StorageFailed event")
	}
	select {
	case ev := <-sub.Events():
		t.Fatalf("a second event: %+v", ev) // once; the node has no peers
	case <-time.After(300 * time.Millisecond):
	}
}

// linkedConfig is a node on two UDP links of its own on loopback ("primary"
// at level 0, "alternate" at level 1) and no UDP socket besides, with quick
// PACE thresholds.
func linkedConfig(dir string) Config {
	return Config{
		DataDir: dir, FormationID: "go", FormationSecret: secret,
		Links: []Link{
			{Name: "primary", Bind: "127.0.0.1:0", Level: 0},
			{Name: "alternate", Bind: "127.0.0.1:0", Level: 1},
		},
		LinksOnly: true,
		Pace: Pace{
			ProbeInterval: 100 * time.Millisecond, DeadAfter: 600 * time.Millisecond, HoldDown: time.Second,
			BlobsBelowLevel: 1, CollectionsBelowLevel: map[string]uint32{"imagery": 1},
		},
	}
}

// awaitLinkChange returns the next LinkChanged event with a From (a move from
// one link to another, not the first use) among sub's events, within 10 s.
func awaitLinkChange(t *testing.T, sub *Subscription) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatal("subscription closed while waiting for a link change")
			}
			if ev.Kind == LinkChanged && ev.From != "" {
				return ev
			}
		case <-deadline:
			t.Fatal("no link change within 10 s")
		}
	}
}

// Two nodes on links only: the peer list shows each link's health, silencing
// the primary moves traffic to the alternate (a LinkChanged event on both
// sides) and un-silencing brings it back; bad links are refused at Open.
func TestLinksPaceAndSilencing(t *testing.T) {
	before := LiveHandles()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := Open(ctx, linkedConfig(t.TempDir()))
	if err != nil {
		t.Fatalf("open a: %v", err)
	}
	defer a.Close()
	b, err := Open(ctx, linkedConfig(t.TempDir()))
	if err != nil {
		t.Fatalf("open b: %v", err)
	}
	defer b.Close()
	addrs, err := a.Addrs()
	if err != nil || len(addrs) != 1 {
		t.Fatalf("links only: one link address, got %q %v", addrs, err)
	}
	ea, err := a.SubscribePeers(64)
	if err != nil {
		t.Fatal(err)
	}
	defer ea.Close()
	eb, err := b.SubscribePeers(64)
	if err != nil {
		t.Fatal(err)
	}
	defer eb.Close()
	docs, err := b.Subscribe("c", "", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer docs.Close()
	if err := b.Connect(ctx, addrs[0]); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := a.Put(ctx, "c", "d", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	awaitDoc(t, docs, "d")

	aid, _ := a.ID()
	links := func() []LinkHealth {
		t.Helper()
		peers, err := b.Peers()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			if p.ID == aid {
				return p.Links
			}
		}
		t.Fatalf("a is not among b's peers: %+v", peers)
		return nil
	}
	// The primary's probes are answered within a few probe intervals.
	l := links()
	for deadline := time.Now().Add(10 * time.Second); !(len(l) == 2 && l[0].RTT >= 0 && l[0].LastAnswer >= 0); l = links() {
		if time.Now().After(deadline) {
			t.Fatalf("no measured primary within 10 s: %+v", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p := l[0]; p.Name != "primary" || !p.InUse || p.Level != 0 || p.State == LinkDead || p.Silent || p.RTTVar < 0 {
		t.Fatalf("primary: %+v", l)
	}
	if alt := l[1]; alt.Name != "alternate" || alt.InUse || alt.Level != 1 {
		t.Fatalf("alternate: %+v", l)
	}

	if err := a.SetLinkSilent("nope", true); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("silencing an unknown link: %v", err)
	}
	for _, n := range []*Node{a, b} {
		if err := n.SetLinkSilent("primary", true); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*Subscription{ea, eb} {
		if ev := awaitLinkChange(t, s); ev.From != "primary" || ev.To != "alternate" || ev.Level != 1 || ev.Peer == "" {
			t.Fatalf("after silencing the primary: %+v", ev)
		}
	}
	if err := a.Put(ctx, "c", "e", map[string]int{"x": 2}); err != nil {
		t.Fatal(err)
	}
	awaitDoc(t, docs, "e")
	if l := links(); !l[0].Silent || l[0].InUse || !l[1].InUse {
		t.Fatalf("silenced primary: %+v", l)
	}
	for _, n := range []*Node{a, b} {
		if err := n.SetLinkSilent("primary", false); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*Subscription{ea, eb} {
		if ev := awaitLinkChange(t, s); ev.From != "alternate" || ev.To != "primary" || ev.Level != 0 {
			t.Fatalf("after un-silencing the primary: %+v", ev)
		}
	}

	for _, bad := range []Config{
		{Links: []Link{{Name: "x", Bind: "nowhere"}}},
		{Links: []Link{{Name: "x", Bind: "127.0.0.1:0", Level: 8}}},
		{Links: []Link{{Name: "x", Bind: "127.0.0.1:0"}}, Pace: Pace{HoldDown: -time.Second}},
		{Links: []Link{{Name: "x", Bind: "127.0.0.1:0"}}, Pace: Pace{BlobsBelowLevel: 9}},
		{Links: []Link{{Name: "x", Bind: "127.0.0.1:0"}}, Pace: Pace{CollectionsBelowLevel: map[string]uint32{"imagery": 0}}},
	} {
		bad.DataDir, bad.FormationID, bad.FormationSecret, bad.Listen = t.TempDir(), "go", secret, "127.0.0.1:0"
		if n, err := Open(ctx, bad); !errors.Is(err, ErrInvalidArgument) {
			if n != nil {
				_ = n.Close()
			}
			t.Fatalf("open with %+v %+v: %v, want ErrInvalidArgument", bad.Links, bad.Pace, err)
		}
	}
	// A BLE link: opens where there is Bluetooth; here (no adapter, no
	// BlueZ) the open fails with a network error naming Bluetooth.
	bleCfg := Config{
		DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0",
		Links: []Link{{Name: "radio", Bind: "ble"}},
	}
	if n, err := Open(ctx, bleCfg); err == nil {
		_ = n.Close()
	} else if !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "Bluetooth") {
		t.Fatalf("open with a BLE link: %v, want ErrNetwork naming Bluetooth", err)
	}
	if s := fmt.Sprint(LinkHealthy, LinkDegraded, LinkSuspect, LinkDead); s != "healthy degraded suspect dead" {
		t.Fatalf("link states print as %q", s)
	}

	for _, s := range []*Subscription{ea, eb, docs} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*Node{a, b} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if LiveHandles() > before {
		t.Fatalf("handles leaked: %d > %d", LiveHandles(), before)
	}
}

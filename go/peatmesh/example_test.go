package peatmesh_test

import (
	"context"
	"fmt"
	"os"

	"github.com/peat-mesh/peat-mesh/go/peatmesh"
)

// Two nodes of one formation on loopback: a document written on one arrives on
// the other.
func Example() {
	ctx := context.Background()
	dirA, _ := os.MkdirTemp("", "peat-a")
	dirB, _ := os.MkdirTemp("", "peat-b")
	defer os.RemoveAll(dirA)
	defer os.RemoveAll(dirB)
	secret, err := peatmesh.GenerateFormationSecret() // once per formation; share it out of band
	if err != nil {
		fmt.Println(err)
		return
	}
	a, _ := peatmesh.Open(ctx, peatmesh.Config{DataDir: dirA, FormationID: "example", FormationSecret: secret, Listen: "127.0.0.1:0"})
	defer a.Close()
	b, _ := peatmesh.Open(ctx, peatmesh.Config{DataDir: dirB, FormationID: "example", FormationSecret: secret, Listen: "127.0.0.1:0"})
	defer b.Close()

	sub, _ := b.Subscribe("tracks", "t1", false, 0)
	defer sub.Close()
	addrs, _ := a.Addrs()
	if err := b.Connect(ctx, addrs[0]); err != nil {
		fmt.Println(err)
		return
	}
	_ = a.Put(ctx, "tracks", "t1", map[string]any{"callsign": "ALPHA-1"})
	ev := <-sub.Events()
	fmt.Println(ev.ID, string(ev.JSON))
	// Output: t1 {"callsign":"ALPHA-1"}
}

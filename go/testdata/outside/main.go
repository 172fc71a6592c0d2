// A program in a module of its own that uses peatmesh as a dependency, the way
// the README describes; scripts/test-go builds and runs it. It opens a node in
// the directory given as its argument, writes a document and reads it back.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/peat-mesh/peat-mesh/go/peatmesh"
)

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "outside:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	ctx := context.Background()
	node, err := peatmesh.Open(ctx, peatmesh.Config{DataDir: dir, FormationID: "outside", FormationSecret: [32]byte{7}, Listen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer node.Close()
	if err := node.Put(ctx, "demo", "d1", map[string]any{"n": 42}); err != nil {
		return err
	}
	raw, err := node.Get(ctx, "demo", "d1")
	if err != nil {
		return err
	}
	fmt.Printf("outside: got %s\n", raw)
	return nil
}

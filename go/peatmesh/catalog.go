package peatmesh

/*
#include "peat_mesh.h"
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"
)

// Collection is a collection and how many live documents it holds.
type Collection struct {
	Name      string
	Documents uint64
}

// TransferStatus is a blob fetch running on the node.
type TransferStatus struct {
	Hash     string // BLAKE3, 64 hex digits
	Progress Progress
}

// Collections returns the collections holding live documents, in name
// order, with their counts: at most limit (1 to 1,024), after after (""
// for the first page, else the last name of the previous page). It walks
// the documents of the collections it returns.
func (n *Node) Collections(ctx context.Context, after string, limit int) ([]Collection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 0 {
		limit = 0 // refused below, with the library's message
	}
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatCollectionList
	var e *C.PeatError
	rc := C.peat_node_collections(h, str(after), C.size_t(limit), &l, &e)
	runtime.KeepAlive(after)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	defer C.peat_collection_list_free(l)
	// At most limit (≤ 1,024) items: the library caps the page.
	items := unsafe.Slice(l.items, int(l.len))
	out := make([]Collection, len(items))
	for i := range items {
		out[i] = Collection{Name: C.GoString(items[i].name), Documents: uint64(items[i].documents)}
	}
	return out, nil
}

// BlobTransfers returns the blob fetches running now (one per blob), in
// hash order, with their progress.
func (n *Node) BlobTransfers() ([]TransferStatus, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	var l C.PeatTransferStatusList
	var e *C.PeatError
	if err := check(C.peat_blob_transfers(h, &l, &e), e); err != nil {
		return nil, err
	}
	defer C.peat_transfer_status_list_free(l)
	// One item per fetch this process started (none comes from a peer).
	items := unsafe.Slice(l.items, int(l.len))
	out := make([]TransferStatus, len(items))
	for i := range items {
		p := items[i].progress
		out[i] = TransferStatus{
			Hash: C.GoString(&items[i].hash[0]),
			Progress: Progress{
				Done: uint64(p.done), Total: uint64(p.total), Resumed: uint64(p.resumed),
				Received: uint64(p.received), Rate: float64(p.rate), Finished: bool(p.finished),
			},
		}
	}
	return out, nil
}

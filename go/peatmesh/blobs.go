package peatmesh

/*
#include <stdlib.h>
#include "peat_mesh.h"
*/
import "C"

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// BlobInfo describes a complete blob: its BLAKE3 name, SHA-256 and size.
type BlobInfo struct {
	Hash   string // BLAKE3, 64 hex digits
	SHA256 string // 64 hex digits
	Size   uint64
}

func blobInfo(r *C.PeatBlobInfo) BlobInfo {
	return BlobInfo{
		Hash:   C.GoString(&r.hash[0]),
		SHA256: C.GoString(&r.sha256[0]),
		Size:   uint64(r.size),
	}
}

// Progress of a transfer.
type Progress struct {
	Done     uint64  // verified bytes held locally
	Total    uint64  // blob size, 0 until known
	Resumed  uint64  // bytes found on disk when the transfer started
	Received uint64  // bytes received from the network
	Rate     float64 // recent bytes per second
	Finished bool
}

// BlobState says how much of a blob a node holds.
type BlobState int

// The blob states (the C ABI's PeatBlobState values).
const (
	BlobMissing  BlobState = C.PEAT_BLOB_STATE_MISSING
	BlobPartial  BlobState = C.PEAT_BLOB_STATE_PARTIAL
	BlobComplete BlobState = C.PEAT_BLOB_STATE_COMPLETE
)

// TransferProfile says how a fetch uses the network.
type TransferProfile string

// The transfer profiles; "" is ProfileTactical.
const (
	ProfileTactical   TransferProfile = "tactical"   // lossy, shared links (the default)
	ProfileDatacenter TransferProfile = "datacenter" // fast, reliable links
	ProfileEdge       TransferProfile = "edge"       // slow, intermittent links
)

// cProfiles maps each profile to the C ABI's PeatTransferProfile.
var cProfiles = map[TransferProfile]C.int32_t{
	"":                C.PEAT_TRANSFER_PROFILE_TACTICAL,
	ProfileTactical:   C.PEAT_TRANSFER_PROFILE_TACTICAL,
	ProfileDatacenter: C.PEAT_TRANSFER_PROFILE_DATACENTER,
	ProfileEdge:       C.PEAT_TRANSFER_PROFILE_EDGE,
}

// BlobStatus is how much of a blob is here.
type BlobStatus struct {
	State   BlobState
	Size    uint64
	Present uint64
}

// FetchOptions choose providers, profile, rate cap and expected size of a fetch.
type FetchOptions struct {
	// Node ids to fetch from; empty means every connected peer that has the blob.
	Providers []string
	// ProfileTactical (the default, also ""), ProfileDatacenter or ProfileEdge.
	Profile TransferProfile
	// Bytes per second; 0 for no cap.
	RateLimit uint64
	// The size the blob must have (a blob reference states it); 0 for unknown.
	// A provider claiming another size is not used; when every provider does,
	// Wait returns ErrCorrupt and nothing is stored.
	ExpectedSize uint64
	// The transfer's class ("": PriorityBulk): providers send it in that
	// class (never above PriorityNormal), so under a bandwidth budget a
	// higher-class fetch overtakes a bulk one.
	Priority Priority
}

// AddBlobFile adds a file's contents to the node's blob store.
func (n *Node) AddBlobFile(ctx context.Context, path string) (BlobInfo, error) {
	h, err := n.node()
	if err != nil {
		return BlobInfo{}, err
	}
	var out C.PeatBlobInfo
	err = withCancel(ctx, func(token C.PeatCancel) error {
		var e *C.PeatError
		rc := C.peat_blob_add_file(h, str(path), timeoutMs(ctx), token, &out, &e)
		runtime.KeepAlive(path)
		return check(rc, e)
	})
	if err != nil {
		return BlobInfo{}, err
	}
	return blobInfo(&out), nil
}

// Transfer is a blob fetch in progress. Close it when done with it.
type Transfer struct {
	mu     sync.Mutex
	handle C.PeatTransfer
	closed bool
}

// FetchBlob starts fetching a blob and returns at once; use Wait for the end.
func (n *Node) FetchBlob(hash string, opts FetchOptions) (*Transfer, error) {
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	profile, ok := cProfiles[opts.Profile]
	if !ok {
		return nil, &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("unknown transfer profile %q", opts.Profile)}
	}
	// The provider strings live in C memory for the call: a Go slice of structs
	// holding Go pointers must not be passed to C.
	var provs *C.PeatStr
	if len(opts.Providers) > 0 {
		size := C.size_t(len(opts.Providers)) * C.size_t(unsafe.Sizeof(C.PeatStr{}))
		provs = (*C.PeatStr)(C.malloc(size))
		defer C.free(unsafe.Pointer(provs))
		items := unsafe.Slice(provs, len(opts.Providers))
		for i, p := range opts.Providers {
			cs := C.CString(p)
			defer C.free(unsafe.Pointer(cs))
			items[i] = C.PeatStr{ptr: (*C.uint8_t)(unsafe.Pointer(cs)), len: C.size_t(len(p))}
		}
	}
	var t C.PeatTransfer
	var e *C.PeatError
	priority := string(opts.Priority)
	rc := C.peat_blob_fetch(h, str(hash), provs, C.size_t(len(opts.Providers)), profile,
		C.uint64_t(opts.RateLimit), C.uint64_t(opts.ExpectedSize), str(priority), &t, &e)
	runtime.KeepAlive(hash)
	runtime.KeepAlive(priority)
	if err := check(rc, e); err != nil {
		return nil, err
	}
	tr := &Transfer{handle: t}
	runtime.AddCleanup(tr, func(h C.PeatTransfer) { C.peat_transfer_free(h, nil) }, t)
	return tr, nil
}

func (t *Transfer) h() (C.PeatTransfer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return C.PeatTransfer{}, ErrInvalidHandle
	}
	return t.handle, nil
}

// Progress returns the transfer's current progress.
func (t *Transfer) Progress() (Progress, error) {
	h, err := t.h()
	if err != nil {
		return Progress{}, err
	}
	var p C.PeatTransferProgress
	var e *C.PeatError
	if err := check(C.peat_transfer_progress(h, &p, &e), e); err != nil {
		return Progress{}, err
	}
	return Progress{
		Done: uint64(p.done), Total: uint64(p.total), Resumed: uint64(p.resumed),
		Received: uint64(p.received), Rate: float64(p.rate), Finished: bool(p.finished),
	}, nil
}

// Updates sends the transfer's progress about every interval until it
// finishes (the last value has Finished set) or ctx ends; then the channel closes.
func (t *Transfer) Updates(ctx context.Context, interval time.Duration) <-chan Progress {
	ch := make(chan Progress, 1)
	go func() {
		defer close(ch)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			p, err := t.Progress()
			if err != nil {
				return
			}
			select {
			case ch <- p:
			case <-ctx.Done():
				return
			}
			if p.Finished {
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// Wait waits for the transfer to end. Cancelling ctx cancels the transfer
// itself (what it verified stays on disk for a later fetch to resume); a
// deadline only stops waiting.
func (t *Transfer) Wait(ctx context.Context) (BlobInfo, error) {
	h, err := t.h()
	if err != nil {
		return BlobInfo{}, err
	}
	var out C.PeatBlobInfo
	for {
		err = withCancel(ctx, func(token C.PeatCancel) error {
			var e *C.PeatError
			ms := timeoutMs(ctx)
			if _, ok := ctx.Deadline(); !ok {
				ms = C.uint64_t(time.Hour.Milliseconds())
			}
			return check(C.peat_transfer_wait(h, ms, token, &out, &e), e)
		})
		if err == nil {
			return blobInfo(&out), nil
		}
		// Without a deadline, wait as long as the transfer runs.
		if _, ok := ctx.Deadline(); !ok && ctx.Err() == nil && isCode(err, CodeTimeout) {
			continue
		}
		return BlobInfo{}, err
	}
}

func isCode(err error, c Code) bool {
	e, ok := err.(*Error)
	return ok && e.Code == c
}

// Cancel stops the transfer; the handle stays valid until Close.
func (t *Transfer) Cancel() error {
	h, err := t.h()
	if err != nil {
		return err
	}
	var e *C.PeatError
	return check(C.peat_transfer_cancel(h, &e), e)
}

// Close frees the transfer handle. A running transfer goes on; Cancel it first
// to stop it. Closing twice returns ErrInvalidHandle.
func (t *Transfer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrInvalidHandle
	}
	t.closed = true
	var e *C.PeatError
	return check(C.peat_transfer_free(t.handle, &e), e)
}

// ExportBlob copies a complete blob to path; returns its size.
func (n *Node) ExportBlob(ctx context.Context, hash, path string) (uint64, error) {
	h, err := n.node()
	if err != nil {
		return 0, err
	}
	var size C.uint64_t
	err = withCancel(ctx, func(token C.PeatCancel) error {
		var e *C.PeatError
		rc := C.peat_blob_export(h, str(hash), str(path), timeoutMs(ctx), token, &size, &e)
		runtime.KeepAlive(hash)
		runtime.KeepAlive(path)
		return check(rc, e)
	})
	return uint64(size), err
}

// DiscardPartial throws away the partial download of a blob (what earlier
// fetches verified), so that the next fetch starts from nothing; it reports
// whether there was one. A complete blob is never touched. While a fetch of the
// blob is running it returns ErrInvalidArgument: Cancel the transfer and Wait
// for its end first.
func (n *Node) DiscardPartial(ctx context.Context, hash string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	h, err := n.node()
	if err != nil {
		return false, err
	}
	var had C.bool
	var e *C.PeatError
	rc := C.peat_blob_discard_partial(h, str(hash), &had, &e)
	runtime.KeepAlive(hash)
	if err := check(rc, e); err != nil {
		return false, err
	}
	return bool(had), nil
}

// BlobStatus says how much of a blob is here.
func (n *Node) BlobStatus(hash string) (BlobStatus, error) {
	h, err := n.node()
	if err != nil {
		return BlobStatus{}, err
	}
	var s C.PeatBlobStatus
	var e *C.PeatError
	rc := C.peat_blob_status(h, str(hash), &s, &e)
	runtime.KeepAlive(hash)
	if err := check(rc, e); err != nil {
		return BlobStatus{}, err
	}
	return BlobStatus{State: BlobState(s.state), Size: uint64(s.size), Present: uint64(s.present)}, nil
}

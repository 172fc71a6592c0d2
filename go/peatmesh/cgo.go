package peatmesh

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
// The Rust static library is linked into the Go binary, so nothing has to be
// installed next to it at run time. On Linux "-l:" makes the linker take the
// .a even where the shared library sits beside it; elsewhere -lpeat_mesh_ffi
// takes whichever the linker prefers. The system libraries are the ones
// `rustc --print native-static-libs` lists for this crate (libdbus-1: the
// Bluetooth LE links reach BlueZ over D-Bus).
#cgo linux LDFLAGS: -l:libpeat_mesh_ffi.a -ldbus-1 -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo !linux LDFLAGS: -lpeat_mesh_ffi -lpthread -ldl -lm
#include <stdlib.h>
#include "peat_mesh.h"

extern void goPeatOnReady(uintptr_t handle);
extern void goPeatOnReadyDrop(uintptr_t handle);

static void peat_go_on_ready(void *ctx) { goPeatOnReady((uintptr_t)ctx); }
static void peat_go_on_ready_drop(void *ctx) { goPeatOnReadyDrop((uintptr_t)ctx); }

extern void goPeatOnLog(uintptr_t handle, int32_t level, char *target, char *message);
extern void goPeatOnLogDrop(uintptr_t handle);

static void peat_go_on_log(void *ctx, int32_t level, const char *target, const char *message) {
	goPeatOnLog((uintptr_t)ctx, level, (char *)target, (char *)message);
}
static void peat_go_on_log_drop(void *ctx) { goPeatOnLogDrop((uintptr_t)ctx); }

PeatLogCallback peat_go_log_callback(uintptr_t handle) {
	PeatLogCallback cb = {(void *)handle, peat_go_on_log, peat_go_on_log_drop};
	return cb;
}

// The Go side's readiness callback of a queued subscription: ctx carries a
// cgo.Handle value.
PeatReadyCallback peat_go_ready_callback(uintptr_t handle) {
	PeatReadyCallback cb = {(void *)handle, peat_go_on_ready, peat_go_on_ready_drop};
	return cb;
}
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync/atomic"
	"unsafe"
)

// liveCallbacks counts the cgo handles given to the SDK as callback contexts
// and not yet deleted (for leak checks in tests).
var liveCallbacks atomic.Int64

// newCallbackHandle makes the cgo handle passed as a callback's ctx. It is
// deleted exactly once: by the SDK's cleanup hook (on_drop) when the call that
// took it succeeded, or by the caller when that call failed (the SDK never
// runs on_drop then).
func newCallbackHandle(v any) cgo.Handle {
	liveCallbacks.Add(1)
	return cgo.NewHandle(v)
}

func deleteCallbackHandle(h cgo.Handle) {
	h.Delete()
	liveCallbacks.Add(-1)
}

// str borrows a Go string as a PeatStr for the duration of one C call. The
// caller keeps s alive (runtime.KeepAlive) until the call returns.
func str(s string) C.PeatStr {
	if len(s) == 0 {
		return C.PeatStr{ptr: nil, len: 0}
	}
	return C.PeatStr{ptr: (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), len: C.size_t(len(s))}
}

// cMemory holds the C allocations of one call's arguments: a Go pointer may
// not be stored in memory that C reads, so structs the SDK reads, and what
// they point to, live in C memory until free.
type cMemory struct{ ptrs []unsafe.Pointer }

func (m *cMemory) alloc(size uintptr) unsafe.Pointer {
	p := C.malloc(C.size_t(size))
	m.ptrs = append(m.ptrs, p)
	return p
}

// str copies s into C memory.
func (m *cMemory) str(s string) C.PeatStr {
	p := C.CBytes([]byte(s))
	m.ptrs = append(m.ptrs, p)
	return C.PeatStr{ptr: (*C.uint8_t)(p), len: C.size_t(len(s))}
}

// strs copies a list of strings into a C array (one element more than
// needed, so that it is never of size zero).
func (m *cMemory) strs(list []string) *C.PeatStr {
	arr := unsafe.Slice((*C.PeatStr)(m.alloc(uintptr(len(list)+1)*unsafe.Sizeof(C.PeatStr{}))), len(list)+1)
	for i, s := range list {
		arr[i] = m.str(s)
	}
	return &arr[0]
}

func (m *cMemory) free() {
	for _, p := range m.ptrs {
		C.free(p)
	}
	m.ptrs = nil
}

// check turns a status and optional error object into a Go error, freeing it.
func check(rc C.int32_t, e *C.PeatError) error {
	if rc == 0 {
		return nil
	}
	msg := ""
	if e != nil {
		msg = C.GoString(C.peat_error_message(e))
		C.peat_error_free(e)
	}
	return &Error{Code: Code(rc), Message: msg}
}

func takeString(p *C.char) string {
	s := C.GoString(p)
	C.peat_string_free(p)
	return s
}

func takeList(l C.PeatStringList) []string {
	n := int(l.len)
	out := make([]string, 0, n)
	if n > 0 {
		items := unsafe.Slice(l.items, n)
		for _, p := range items {
			out = append(out, C.GoString(p))
		}
	}
	C.peat_string_list_free(l)
	return out
}

var _ = runtime.KeepAlive

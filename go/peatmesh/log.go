package peatmesh

/*
#include "peat_mesh.h"
PeatLogCallback peat_go_log_callback(uintptr_t handle);
*/
import "C"

import (
	"runtime/cgo"
	"time"
)

// LogLevel is the severity of an SDK log record: 1 error … 5 trace.
type LogLevel int

// Log levels.
const (
	LogError LogLevel = iota + 1
	LogWarn
	LogInfo
	LogDebug
	LogTrace
)

// LogHandler receives the SDK's log records on the SDK's dispatcher thread,
// one at a time; it may call the package, but should return quickly.
type LogHandler func(level LogLevel, target, message string)

//export goPeatOnLog
func goPeatOnLog(handle C.uintptr_t, level C.int32_t, target, message *C.char) {
	cgo.Handle(handle).Value().(LogHandler)(LogLevel(level), C.GoString(target), C.GoString(message))
}

//export goPeatOnLogDrop
func goPeatOnLogDrop(handle C.uintptr_t) {
	deleteCallbackHandle(cgo.Handle(handle))
}

// SetLogHandler routes the SDK's logs up to maxLevel to h, replacing any
// previous handler. It fails (and the previous handler stays) after Shutdown
// (ErrShutDown), or with ErrInvalidArgument when the process already has
// another global Rust tracing subscriber.
func SetLogHandler(maxLevel LogLevel, h LogHandler) error {
	handle := newCallbackHandle(h)
	var e *C.PeatError
	rc := C.peat_log_set_callback(C.peat_go_log_callback(C.uintptr_t(handle)), C.int32_t(maxLevel), &e)
	if err := check(rc, e); err != nil {
		// On failure the SDK never runs the cleanup hook: the handle is ours.
		deleteCallbackHandle(handle)
		return err
	}
	return nil
}

// ClearLogHandler stops log delivery.
func ClearLogHandler() error {
	var e *C.PeatError
	return check(C.peat_log_clear_callback(&e), e)
}

// Shutdown stops the SDK for this process: subscriptions end, every open node
// is closed (each within timeout, at most 5 s; its store flushed and its
// database file released, so the data dir can be reopened at once), the
// runtime stops (waiting up to timeout), every handle is freed and every later
// call returns ErrShutDown. For programs that must end the SDK before they
// exit; ordinary programs need not.
func Shutdown(timeout time.Duration) error {
	var e *C.PeatError
	return check(C.peat_shutdown(C.uint64_t(timeout.Milliseconds()), &e), e)
}

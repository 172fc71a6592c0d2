package peatmesh

import "fmt"

// Code is a stable error kind shared by every peat-mesh binding.
type Code int32

// Error codes (the C ABI's PeatStatus values).
const (
	CodeInvalidArgument  Code = 1
	CodeNotFound         Code = 2
	CodeInvalidHandle    Code = 3
	CodeClosed           Code = 4
	CodeTimeout          Code = 5
	CodeIO               Code = 6
	CodeNetwork          Code = 7
	CodeAdmissionRefused Code = 8
	CodeProtocol         Code = 9
	CodeCorrupt          Code = 10
	CodeShutDown         Code = 11
	CodeWouldDeadlock    Code = 12
	CodeInternal         Code = 13
	CodeCancelled        Code = 14
)

// Error is every error the package returns. Compare kinds with errors.Is against
// the Err* sentinels, or read Code with errors.As.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("peatmesh: %s", e.Message) }

// Is reports whether target is an *Error of the same Code (so errors.Is(err,
// peatmesh.ErrNotFound) works).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalidArgument  = &Error{Code: CodeInvalidArgument, Message: "invalid argument"}
	ErrNotFound         = &Error{Code: CodeNotFound, Message: "not found"}
	ErrInvalidHandle    = &Error{Code: CodeInvalidHandle, Message: "invalid handle"}
	ErrClosed           = &Error{Code: CodeClosed, Message: "closed"}
	ErrTimeout          = &Error{Code: CodeTimeout, Message: "timeout"}
	ErrIO               = &Error{Code: CodeIO, Message: "io"}
	ErrNetwork          = &Error{Code: CodeNetwork, Message: "network"}
	ErrAdmissionRefused = &Error{Code: CodeAdmissionRefused, Message: "admission refused"}
	ErrProtocol         = &Error{Code: CodeProtocol, Message: "protocol"}
	ErrCorrupt          = &Error{Code: CodeCorrupt, Message: "corrupt"}
	ErrShutDown         = &Error{Code: CodeShutDown, Message: "shut down"}
	ErrInternal         = &Error{Code: CodeInternal, Message: "internal"}
	ErrCancelled        = &Error{Code: CodeCancelled, Message: "cancelled"}
)

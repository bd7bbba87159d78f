package client

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors returned by the client. An error answer from the router is an
// *Error, which matches the sentinel for its code under errors.Is, so
// callers write errors.Is(err, client.ErrNotFound) whatever the message.
var (
	// ErrNotFound: the path, or one of its parents, does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrExists: the target exists and the operation does not replace it.
	ErrExists = errors.New("already exists")
	// ErrNotEmpty: the directory has entries; delete it recursively.
	ErrNotEmpty = errors.New("directory not empty")
	// ErrNotDir: a path component that must be a directory is a file.
	ErrNotDir = errors.New("not a directory")
	// ErrIsDir: the operation needs a file but the path is a directory.
	ErrIsDir = errors.New("is a directory")
	// ErrConflict: the operation conflicts with the current tree (any 409
	// answer, including the more precise codes above).
	ErrConflict = errors.New("conflict")
	// ErrNotPermitted: the operation is never allowed on this kind of
	// file, such as a hard link to a directory (403).
	ErrNotPermitted = errors.New("operation not permitted")
	// ErrPermission: the caller's user may not do this to this file: a
	// mode bit forbids it (403, like EACCES).
	ErrPermission = errors.New("permission denied")
	// ErrUnauthorized: the router did not accept the token: none was given,
	// it is malformed, or its user was removed or given a new one (401).
	ErrUnauthorized = errors.New("not authenticated")
	// ErrInvalid: the router rejected the path or the operation (400).
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge: the body is over the router's limit (413).
	ErrTooLarge = errors.New("too large")
	// ErrNoSpace: the cluster has no room for the data (507).
	ErrNoSpace = errors.New("no space left in the cluster")
	// ErrUnavailable: the router could not reach the group that owns the
	// data, typically while a new primary takes over (503). Requests are
	// retried for Config.Retry503 before this is returned.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrUnreachable: no connection could be made to the router, so the
	// request was not sent and had no effect.
	ErrUnreachable = errors.New("cannot reach router")
	// ErrTimeout: the router did not answer within Config.Timeout.
	ErrTimeout = errors.New("router did not answer in time")
)

// The error codes of the HTTP API, carried in the "error" field of every
// error answer.
const (
	codeInvalidPath = "invalid_path"
	codeInvalidOp   = "invalid_op"
	codeNotFound    = "not_found"
	codeExists      = "exists"
	codeNotEmpty    = "not_empty"
	codeNotDir      = "not_dir"
	codeIsDir       = "is_dir"
	codeConflict    = "conflict"
	codeTooLarge    = "too_large"
	codeUnavailable = "unavailable"
	codeNoSpace     = "no_space"
	codeNotPermit   = "not_permitted"
	codePermission  = "permission_denied"
	codeUnauth      = "unauthorized"
)

// Error is an error answer from the router.
type Error struct {
	// Status is the HTTP status code of the answer.
	Status int
	// Code is the API error code ("not_found", "exists", ...); empty when
	// the answer did not come from a Shoal router (a proxy's error page).
	Code string
	// Message is the router's explanation for a person.
	Message string
}

// Error returns the message followed by the code, or by the HTTP status
// when there is no code.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", msg, e.Status)
	}
	return fmt.Sprintf("%s (%s)", msg, e.Code)
}

// Is reports whether target is the sentinel for e's code. An answer
// without a known code falls back on its status, so an error page from a
// proxy in front of the router still matches ErrUnavailable or ErrNotFound.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case codeNotFound:
		return target == ErrNotFound
	case codeExists, codeNotEmpty, codeNotDir, codeIsDir:
		return target == ErrConflict || target == sentinelOfCode(e.Code)
	case codeConflict:
		return target == ErrConflict
	case codeInvalidPath, codeInvalidOp:
		return target == ErrInvalid
	case codeTooLarge:
		return target == ErrTooLarge
	case codeUnavailable:
		return target == ErrUnavailable
	case codeNoSpace:
		return target == ErrNoSpace
	case codeNotPermit:
		return target == ErrNotPermitted
	case codePermission:
		return target == ErrPermission
	case codeUnauth:
		return target == ErrUnauthorized
	}
	return target == sentinelOfStatus(e.Status)
}

func sentinelOfCode(code string) error {
	switch code {
	case codeExists:
		return ErrExists
	case codeNotEmpty:
		return ErrNotEmpty
	case codeNotDir:
		return ErrNotDir
	case codeIsDir:
		return ErrIsDir
	}
	return nil
}

func sentinelOfStatus(status int) error {
	switch status {
	case http.StatusBadRequest:
		return ErrInvalid
	case http.StatusForbidden:
		return ErrPermission
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusServiceUnavailable:
		return ErrUnavailable
	case http.StatusInsufficientStorage:
		return ErrNoSpace
	}
	return nil
}

package client

import (
	"errors"
	"fmt"
	"net/http"

	"shoal/api"
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
	// ErrKeyReused: the request's Idempotency-Key was already used for a
	// different request (422); nothing was changed. Each request needs a
	// key of its own (the client makes one for every call).
	ErrKeyReused = errors.New("idempotency key already used for a different request")
	// ErrPrecondition: a conditional write's condition did not hold
	// (412): something was at the path it was to create, or the file there
	// was not the version named. Nothing was changed.
	ErrPrecondition = errors.New("precondition failed")
	// ErrLocked: the lock is held in a mode that excludes the one asked
	// for, or others wait for it first (409), and no wait was asked for
	// or the wait ran out.
	ErrLocked = errors.New("lock is held")
	// ErrLeaseLost: the lease named was released or ran out (409): the
	// lock may be someone else's now.
	ErrLeaseLost = errors.New("lease does not hold the lock")
	// ErrFenced: a change sent with a fencing token was refused because
	// the token's lease no longer holds its lock (409); nothing changed.
	ErrFenced = errors.New("fencing token no longer holds its lock")
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

// Error is an error answer from the router.
type Error struct {
	// Status is the HTTP status code of the answer.
	Status int
	// Code is the API error code ("not_found", "exists", ...: the api.Code
	// constants); empty when the answer did not come from a Shoal router
	// (a proxy's error page).
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

// Is reports whether target is the sentinel for e's code: the one place
// API codes become the client's errors. An answer without a known code
// falls back on its status, so an error page from a proxy in front of the
// router still matches ErrUnavailable or ErrNotFound.
func (e *Error) Is(target error) bool {
	switch code := api.Code(e.Code); code {
	case api.CodeNotFound:
		return target == ErrNotFound
	case api.CodeExists, api.CodeNotEmpty, api.CodeNotDir, api.CodeIsDir, api.CodeLocked, api.CodeNotHolder, api.CodeFenced:
		return target == ErrConflict || target == sentinelOfCode(code)
	case api.CodeConflict:
		return target == ErrConflict
	case api.CodeInvalidPath, api.CodeInvalidOp:
		return target == ErrInvalid
	case api.CodeTooLarge:
		return target == ErrTooLarge
	case api.CodeUnavailable:
		return target == ErrUnavailable
	case api.CodeNoSpace:
		return target == ErrNoSpace
	case api.CodeNotPermitted:
		return target == ErrNotPermitted
	case api.CodePermissionDenied:
		return target == ErrPermission
	case api.CodeUnauthorized:
		return target == ErrUnauthorized
	case api.CodeKeyReused:
		return target == ErrKeyReused
	case api.CodePreconditionFailed:
		return target == ErrPrecondition
	}
	return target == sentinelOfStatus(e.Status)
}

func sentinelOfCode(code api.Code) error {
	switch code {
	case api.CodeExists:
		return ErrExists
	case api.CodeNotEmpty:
		return ErrNotEmpty
	case api.CodeNotDir:
		return ErrNotDir
	case api.CodeIsDir:
		return ErrIsDir
	case api.CodeLocked:
		return ErrLocked
	case api.CodeNotHolder:
		return ErrLeaseLost
	case api.CodeFenced:
		return ErrFenced
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
	case http.StatusPreconditionFailed:
		return ErrPrecondition
	}
	return nil
}

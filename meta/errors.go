package meta

import "errors"

// Errors of the namespace and of stored data, the same on every member and
// carried between nodes by Code or by the wire's error table. Callers test
// them with errors.Is; router maps them to HTTP status codes.
var (
	// ErrNotFound: the path, or one of its parents, does not exist.
	ErrNotFound = errors.New("no such file or directory")
	// ErrExists: the target exists and the operation does not replace it.
	ErrExists = errors.New("already exists")
	// ErrNotDir: a path component that must be a directory is a file.
	ErrNotDir = errors.New("not a directory")
	// ErrIsDir: the operation needs a file but the path is a directory.
	ErrIsDir = errors.New("is a directory")
	// ErrNotEmpty: a directory that must be empty has entries.
	ErrNotEmpty = errors.New("directory not empty")
	// ErrInvalid: the operation cannot apply to these paths (the root, a
	// directory moved into itself, an unknown operation).
	ErrInvalid = errors.New("invalid operation")
	// ErrConflict: the file changed since the content of an OpUpdate was
	// computed from it; read it again and redo the change.
	ErrConflict = errors.New("changed meanwhile")
	// ErrNotPermitted (EPERM): the operation is never allowed on this
	// kind of inode (a hard link to a directory), or only its owner or an
	// admin may make it (chmod, chown, setting times, removing another
	// user's file from a sticky directory, managing users).
	ErrNotPermitted = errors.New("operation not permitted")
	// ErrPermission (EACCES): the caller lacks a read, write or search
	// permission bit the operation needs; ask the owner for access.
	ErrPermission = errors.New("permission denied")
	// ErrKeyReused: an idempotency key already named another request;
	// each distinct request needs a key of its own.
	ErrKeyReused = errors.New("idempotency key already used for a different request")
	// ErrPrecondition: the request's condition on what a path holds
	// (If-Match, If-None-Match) did not hold; nothing was changed. Read
	// the path again and decide anew.
	ErrPrecondition = errors.New("precondition failed")
	// ErrLocked: the lock is held in a mode that excludes the caller's,
	// or others wait for it first; nothing was changed.
	ErrLocked = errors.New("lock is held")
	// ErrNotHolder: the lease named (token and key) does not hold the
	// lock: it was released or ran out, and the lock may have passed on.
	ErrNotHolder = errors.New("lease does not hold the lock")
	// ErrFenced: the op's fencing token no longer holds its lock (its
	// lease was released or ran out, and a newer holder may be working);
	// nothing was changed.
	ErrFenced = errors.New("fencing token no longer holds its lock")
	// ErrCorrupt: stored bytes do not match their checksum.
	ErrCorrupt = errors.New("checksum mismatch")
	// ErrNoSpace: no room for new data: it would take a node past its
	// capacity, or its disk under the reserve kept for metadata (or the
	// disk is full). Deletes, renames and reads still work.
	ErrNoSpace = errors.New("no space left on device")
	// ErrDiskFailed: a node's disk refused a write it needs: the file
	// system turned read-only, an I/O error, or no room left for the log.
	// That node takes no writes until its disk is fixed, and its group goes
	// on with its other members; a request it refused may be sent again,
	// to whichever member leads next.
	ErrDiskFailed = errors.New("disk refused a write")
	// ErrCompacted: the requested log entries were discarded by a snapshot.
	ErrCompacted = errors.New("log entries compacted")
)

// Code is the stable, wire-safe name of a namespace error, carried in a
// Result so that every member of a group reports the same outcome.
type Code string

// The codes of the namespace errors above.
const (
	CodeOK        Code = ""
	CodeNotFound  Code = "not_found"
	CodeExists    Code = "exists"
	CodeNotDir    Code = "not_dir"
	CodeIsDir     Code = "is_dir"
	CodeNotEmpty  Code = "not_empty"
	CodeInvalid   Code = "invalid"
	CodeConflict  Code = "conflict"
	CodePerm      Code = "not_permitted"
	CodeAccess    Code = "permission_denied"
	CodeKeyReused Code = "key_reused"
	CodePrecond   Code = "precondition_failed"
	CodeLocked    Code = "locked"
	CodeNotHolder Code = "not_holder"
	CodeFenced    Code = "fenced"
)

var codeErrs = map[Code]error{
	CodeNotFound:  ErrNotFound,
	CodeExists:    ErrExists,
	CodeNotDir:    ErrNotDir,
	CodeIsDir:     ErrIsDir,
	CodeNotEmpty:  ErrNotEmpty,
	CodeInvalid:   ErrInvalid,
	CodeConflict:  ErrConflict,
	CodePerm:      ErrNotPermitted,
	CodeAccess:    ErrPermission,
	CodeKeyReused: ErrKeyReused,
	CodePrecond:   ErrPrecondition,
	CodeLocked:    ErrLocked,
	CodeNotHolder: ErrNotHolder,
	CodeFenced:    ErrFenced,
}

// CodeOf returns the code for a namespace error, or CodeInvalid for an error
// that has none.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	for c, e := range codeErrs {
		if errors.Is(err, e) {
			return c
		}
	}
	return CodeInvalid
}

// Err returns the sentinel error for a code, or nil for CodeOK.
func (c Code) Err() error {
	if c == CodeOK {
		return nil
	}
	if e, ok := codeErrs[c]; ok {
		return e
	}
	return ErrInvalid
}

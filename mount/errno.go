package mount

import (
	"context"
	"errors"
	"syscall"

	"shoal/client"
)

// errno maps err to an errno, logging the errors a program would see as
// EIO and the like: those say the cluster failed, not the program.
func (m *fsys) errno(err error) syscall.Errno {
	e := errno(err)
	if errors.Is(err, client.ErrUnauthorized) {
		m.cfg.Logger.Warn("the router refused the mount's token (rotated, or its user removed): mount again with a valid --token", "err", err)
		return e
	}
	switch e {
	case syscall.EIO, syscall.ETIMEDOUT, syscall.ENOTCONN:
		m.cfg.Logger.Warn("a request failed", "errno", e.Error(), "err", err)
	case 0:
	default:
		m.cfg.Logger.Debug("a request was refused", "errno", e.Error(), "err", err)
	}
	return e
}

// errno maps an error of the client to the errno a program sees. This is
// the only place errors become errno values. Unavailability that outlasts
// the client's retries is EIO: the data cannot be reached from any
// replica right now.
func errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, client.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, client.ErrExists):
		return syscall.EEXIST
	case errors.Is(err, client.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, client.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, client.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, client.ErrNotPermitted):
		return syscall.EPERM
	case errors.Is(err, client.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, client.ErrUnauthorized):
		// The mount's token was rotated or its user removed: nothing this
		// program may do goes through until the mount gets a new one.
		return syscall.EACCES
	case errors.Is(err, client.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, client.ErrTooLarge):
		return syscall.EFBIG
	case errors.Is(err, client.ErrNoSpace):
		return syscall.ENOSPC
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, client.ErrUnreachable):
		return syscall.ENOTCONN
	case errors.Is(err, client.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	}
	return syscall.EIO
}

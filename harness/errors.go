package harness

import "errors"

// Errors of the harness. Each is wrapped with what failed, so test them
// with errors.Is.
var (
	// ErrNoDeadline: WaitFor was given a context without a deadline. Give
	// it one (context.WithTimeout): a wait must end.
	ErrNoDeadline = errors.New("wait without a deadline")
	// ErrBadSpec: a Spec cannot be started; the message says which field
	// to fix.
	ErrBadSpec = errors.New("invalid cluster spec")
	// ErrNotRunning: a signal was meant for a process that is not running
	// (never started, killed, or exited).
	ErrNotRunning = errors.New("process not running")
	// ErrKilled: a process did not stop within its grace period after
	// SIGTERM and was killed.
	ErrKilled = errors.New("process killed after its grace period")
)

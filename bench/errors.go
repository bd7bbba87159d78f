package bench

import "errors"

// Errors returned by Run; each is wrapped with what failed, so test with
// errors.Is.
var (
	// ErrConfig: a flag or Config field is out of range; the message says
	// which and what to give instead.
	ErrConfig = errors.New("invalid benchmark configuration")
	// ErrMismatch: a file read back differs from what was written to it.
	ErrMismatch = errors.New("content read back differs from what was written")
	// ErrLostWrites: the failover workload found acknowledged writes that
	// could not be read back afterwards. The report is still printed.
	ErrLostWrites = errors.New("acknowledged writes lost")
	// ErrNotReady: the local cluster did not reach a primary with every
	// member in sync before its deadline; its logs say why.
	ErrNotReady = errors.New("local cluster not ready")
	// ErrRegression: with Config.Guard, a figure fell under its floor
	// relative to what the machine measured in the same run (guard.go).
	// The report is still printed.
	ErrRegression = errors.New("performance regression")
)

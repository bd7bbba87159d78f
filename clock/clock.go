// Package clock is the wall clock of a Shoal process: the time it stamps
// on what it stores or sends (a file's mtime, a certificate's validity)
// and checks certificates against. It is time.Now shifted by an offset,
// zero unless the process was started with --clock-offset, which makes
// one process behave as on a machine whose clock is wrong.
//
// Nothing that keeps the cluster correct reads this clock: timeouts,
// leases, grace periods and the age of chunks use the monotonic clock of
// the process, and what must expire the same way on every member (request
// results kept for retries) expires by the group's own clock, carried in
// its log. So a machine whose clock is an hour ahead or behind gets its
// mtimes wrong, and nothing else.
package clock

import (
	"sync/atomic"
	"time"
)

var offset atomic.Int64

// Now returns the current wall time of this process.
func Now() time.Time {
	now := time.Now()
	if d := offset.Load(); d != 0 {
		// Strip the monotonic reading: a shifted time must only ever be
		// compared as a wall time.
		return now.Round(0).Add(time.Duration(d))
	}
	return now
}

// SetOffset shifts Now by d from the machine's clock.
func SetOffset(d time.Duration) { offset.Store(int64(d)) }

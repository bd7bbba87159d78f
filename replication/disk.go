package replication

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"shoal/meta"
)

// diskHealth is what a node knows of its own disk: the last write it
// refused (meta.ErrDiskFailed: read-only, an I/O error, no room for the
// log), until a write succeeds again. While it refuses, the node counts
// as out of sync: it cannot acknowledge entries, so it must neither lead
// nor be shown as holding what the group holds. Every goroutine that
// writes reports here: the run goroutine, the background log writer and
// the chunk handlers.
type diskHealth struct {
	log *slog.Logger
	// every bounds how often a disk that keeps refusing is logged again.
	every time.Duration

	mu      sync.Mutex
	err     error     // the last refusal; nil while the disk takes writes
	since   time.Time // when the disk began to refuse
	refused int       // refusals since the last line logged
	logged  time.Time
	// began is when the latest refused write began: a write that began
	// before it and went through says nothing of the disk now (it may have
	// passed the disk before the disk began to refuse).
	began time.Time
}

// diskLogEvery is how often a disk that keeps refusing writes is logged
// again, with the count of refusals since.
const diskLogEvery = 30 * time.Second

// report records the outcome, at now, of a write that began at began: a
// refusal of the disk (an error wrapping meta.ErrDiskFailed) or a success
// (nil). Other errors say nothing of the disk, and neither does the
// success of a write that began before the latest refused one did. It
// returns whether the disk's state changed.
func (d *diskHealth) report(err error, what string, began, now time.Time) bool {
	if err != nil && !errors.Is(err, meta.ErrDiskFailed) {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil && began.After(d.began) {
		d.began = began
	}
	switch {
	case err == nil && d.err == nil:
		return false
	case err == nil && !began.After(d.began):
		return false // it may have passed the disk before the refusal
	case err == nil:
		d.log.Info("the disk takes writes again", "refused_for", now.Sub(d.since).Round(time.Millisecond), "write", what)
		d.err, d.refused = nil, 0
		return true
	case d.err == nil:
		d.log.Error("the disk refused a write: this node takes no writes and counts as out of sync until the disk is fixed; its group goes on with the other members",
			"write", what, "err", err)
		d.err, d.since, d.logged, d.refused = err, now, now, 0
		return true
	}
	d.err = err
	d.refused++
	if now.Sub(d.logged) >= d.every {
		d.log.Error("the disk still refuses writes", "since", d.since, "refused", d.refused, "write", what, "err", err)
		d.logged, d.refused = now, 0
	}
	return false
}

// failure is the last write the disk refused, nil while it takes writes.
func (d *diskHealth) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

package harness

import (
	"context"
	"fmt"
	"time"

	"shoal/wait"
)

// Cond is what WaitFor and Await poll: a predicate, or a func() (bool,
// error). The second form also says why the condition does not hold yet
// (false and an error, quoted if the wait times out) or that it never will
// (true and an error, which ends the wait with that error at once).
type Cond interface {
	func() bool | func() (bool, error)
}

// Polling starts fast, for conditions that hold within milliseconds in
// unit tests, and slows to pollMax, so that a wait of a minute on a real
// cluster asks its router twenty times a second, not two hundred.
const (
	pollMin = 5 * time.Millisecond
	pollMax = 50 * time.Millisecond
)

// WaitFor calls cond until it holds and returns nil, or returns an error
// once ctx ends, naming what it waited for, how long, and the last reason
// cond gave. ctx must carry a deadline (ErrNoDeadline otherwise): every
// wait ends.
func WaitFor[C Cond](ctx context.Context, what string, cond C) error {
	if _, ok := ctx.Deadline(); !ok {
		return fmt.Errorf("%w: waiting for %s", ErrNoDeadline, what)
	}
	check := asCheck(cond)
	start := time.Now()
	var last error
	for pause := pollMin; ; pause = min(2*pause, pollMax) {
		done, err := check()
		switch {
		case done && err != nil:
			return fmt.Errorf("waiting for %s: %w", what, err)
		case done:
			return nil
		case err != nil:
			last = err
		}
		if err := wait.Sleep(ctx, pause); err != nil {
			if last != nil {
				return fmt.Errorf("gave up after %v waiting for %s (last: %v): %w", since(start), what, last, err)
			}
			return fmt.Errorf("gave up after %v waiting for %s: %w", since(start), what, err)
		}
	}
}

// TB is the part of testing.TB that Await uses (this package is not a
// test, so it does not import testing; and a test's own environment
// type, such as one shared with a fuzz target, may stand in for it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Await is WaitFor for tests: it waits up to limit for cond and fails t
// if it does not hold by then. It returns how long it waited.
func Await[C Cond](t TB, limit time.Duration, what string, cond C) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	if err := WaitFor(ctx, what, cond); err != nil {
		t.Fatalf("%v", err)
	}
	return time.Since(start)
}

// asCheck turns either form of Cond into the second.
func asCheck[C Cond](cond C) func() (bool, error) {
	switch c := any(cond).(type) {
	case func() bool:
		return func() (bool, error) { return c(), nil }
	case func() (bool, error):
		return c
	}
	panic("unreachable: Cond has two forms")
}

// since is the time from start, rounded for messages.
func since(start time.Time) time.Duration {
	return time.Since(start).Round(time.Millisecond)
}

package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestWaitForHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	calls := 0
	if err := WaitFor(ctx, "three calls", func() bool { calls++; return calls == 3 }); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
	calls = 0
	err := WaitFor(ctx, "a reason to go away", func() (bool, error) {
		calls++
		if calls < 3 {
			return false, fmt.Errorf("call %d", calls)
		}
		return true, nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("WaitFor: %v after %d calls, want nil after 3", err, calls)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := WaitFor(ctx, "the impossible", func() (bool, error) { return false, errors.New("2 of 3 in sync") })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor: %v, want context.DeadlineExceeded", err)
	}
	for _, want := range []string{"waiting for the impossible", "last: 2 of 3 in sync"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("WaitFor gave up after %v, want about 100ms", d)
	}
}

func TestWaitForGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exited := errors.New("exited")
	start := time.Now()
	err := WaitFor(ctx, "a process", func() (bool, error) { return true, exited })
	if !errors.Is(err, exited) || !strings.Contains(err.Error(), "waiting for a process") {
		t.Fatalf("WaitFor: %v, want the cond's error, naming what it waited for", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("WaitFor took %v to give up", d)
	}
}

func TestWaitForNeedsDeadline(t *testing.T) {
	called := false
	err := WaitFor(context.Background(), "forever", func() bool { called = true; return true })
	if !errors.Is(err, ErrNoDeadline) || called {
		t.Fatalf("WaitFor without a deadline: %v (cond called: %v), want ErrNoDeadline before any call", err, called)
	}
}

// fakeTB records what Await reports.
type fakeTB struct{ fatal string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
}

func TestAwait(t *testing.T) {
	var tb fakeTB
	calls := 0
	if d := Await(&tb, time.Second, "two calls", func() bool { calls++; return calls == 2 }); tb.fatal != "" || d <= 0 {
		t.Fatalf("Await: waited %v, failed with %q", d, tb.fatal)
	}
	Await(&tb, 20*time.Millisecond, "nothing", func() bool { return false })
	if !strings.Contains(tb.fatal, "waiting for nothing") {
		t.Fatalf("Await failed with %q, want it to name what it waited for", tb.fatal)
	}
}

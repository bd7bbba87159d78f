package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"shoal/gossip"
	"shoal/wire"
)

// TestViewIsReadAgainOnlyAfterAChange checks that requests share one read
// of the gossip view until it changes, and see the change at once.
func TestViewIsReadAgainOnlyAfterAChange(t *testing.T) {
	var mu sync.Mutex
	reads := 0
	primary := "127.0.0.1:1"
	next := make(chan struct{})
	b := &backend{
		members: func() []gossip.Member {
			mu.Lock()
			defer mu.Unlock()
			reads++
			return []gossip.Member{{Name: "n1", Status: gossip.StatusAlive, Tags: gossip.Tags{
				Group: "meta", Role: gossip.RolePrimary, Term: 1, Addr: primary}}}
		},
		nextChange: func() <-chan struct{} {
			mu.Lock()
			defer mu.Unlock()
			return next
		},
	}
	for range 3 {
		if got := gossip.PrimaryAddr(b.view(), "meta"); got != "127.0.0.1:1" {
			t.Fatalf("primary %q, want 127.0.0.1:1", got)
		}
	}
	if reads != 1 {
		t.Fatalf("the view was read %d times for 3 requests without a change, want 1", reads)
	}

	mu.Lock()
	primary = "127.0.0.1:2"
	close(next)
	next = make(chan struct{})
	mu.Unlock()
	if got := gossip.PrimaryAddr(b.view(), "meta"); got != "127.0.0.1:2" {
		t.Fatalf("after a change the primary is %q, want the new 127.0.0.1:2", got)
	}
	b.view()
	if reads != 2 {
		t.Fatalf("the view was read %d times, want 2: once more after the change, then shared", reads)
	}

	// Some changes of status come without an event (a member starting to
	// leave): a view older than viewMaxAge is read again all the same.
	b.viewMu.Lock()
	b.viewAt = b.viewAt.Add(-viewMaxAge)
	b.viewMu.Unlock()
	b.view()
	if reads != 3 {
		t.Fatalf("a view older than %v was read again %d times, want once", viewMaxAge, reads-2)
	}

	plain := &backend{members: b.members}
	plain.view()
	plain.view()
	if reads != 5 {
		t.Fatalf("without nextChange the view was read %d times in all, want 5: every call reads it", reads)
	}
}

// transportFunc is a wire.Transport made of a function.
type transportFunc func(ctx context.Context, addr string, req wire.Message) (wire.Message, error)

func (f transportFunc) Call(ctx context.Context, addr string, req wire.Message) (wire.Message, error) {
	return f(ctx, addr, req)
}

// Each try of a call is bounded by the try's time and by what is left of
// the call's; tries go on after a retryable failure until the call's time
// is up, and the call then fails with ErrUnavailable.
func TestCallBoundsEachTryAndAll(t *testing.T) {
	members := func() []gossip.Member {
		return []gossip.Member{{Name: "n1", Status: gossip.StatusAlive, Tags: gossip.Tags{
			Group: "g", Role: gossip.RolePrimary, Term: 1, Addr: "127.0.0.1:1"}}}
	}
	var mu sync.Mutex
	var left []time.Duration // time each try had, as its context said
	tries := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(left)
	}
	note := func(ctx context.Context) {
		d, ok := ctx.Deadline()
		if !ok {
			t.Error("a try without a deadline")
		}
		mu.Lock()
		left = append(left, time.Until(d))
		mu.Unlock()
	}

	// A try that hears nothing ends at its own bound, and the call after
	// its first failure that is not about the primary.
	b := &backend{members: members, rpc: 50 * time.Millisecond, timeout: time.Minute,
		tr: transportFunc(func(ctx context.Context, _ string, _ wire.Message) (wire.Message, error) {
			note(ctx)
			<-ctx.Done()
			return nil, ctx.Err()
		})}
	// call returns b's call's error, failing the test if the call has
	// not returned in 10 s (a try or the tries left unbounded).
	call := func() error {
		done := make(chan error, 1)
		go func() {
			_, err := b.call(context.Background(), "g", func() wire.Message { return &wire.Read{} }, false)
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the call has not returned in 10 s")
			return nil
		}
	}
	if err := call(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call of a silent primary: %v, want the try's deadline", err)
	}
	if got := tries(); len(got) != 1 || got[0] > 50*time.Millisecond || got[0] <= 0 {
		t.Fatalf("tries had %v, want one of at most 50ms", got)
	}

	// A call shorter than a try bounds the try; a primary that keeps
	// saying it is not one is tried again until the call's time is up.
	mu.Lock()
	left = nil
	mu.Unlock()
	b.rpc, b.timeout = time.Minute, 300*time.Millisecond
	b.tr = transportFunc(func(ctx context.Context, _ string, _ wire.Message) (wire.Message, error) {
		note(ctx)
		return nil, fmt.Errorf("node 127.0.0.1:1: %w", wire.ErrNotPrimary)
	})
	began := time.Now()
	err := call()
	if took := time.Since(began); !errors.Is(err, ErrUnavailable) || !errors.Is(err, wire.ErrNotPrimary) || took < 300*time.Millisecond {
		t.Fatalf("call of a node that is not primary: %v after %v, want ErrUnavailable after 300ms", err, took)
	}
	got := tries()
	if len(got) < 3 || got[0] > 300*time.Millisecond || got[0] <= 0 {
		t.Fatalf("tries had %v, want several, the first bounded by the call's 300ms", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Fatalf("tries had %v: each should have what is left of the call's time, less than the one before", got)
		}
	}
}

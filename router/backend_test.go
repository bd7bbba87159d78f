package router

import (
	"sync"
	"testing"

	"shoal/gossip"
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

package replication

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A primary keeps its apply transaction open for entries on their way to
// commit (Config.ApplyHold): under concurrent writes one commit applies
// several batches, reads beside them are answered, and a primary with
// nothing on its way commits at once. TestMoreToApply has each case.
func TestPrimaryHoldsApplyOpen(t *testing.T) {
	c := newTestCluster(t, 1, 1, 2, 3)
	c.cfg = func(cfg *Config) { cfg.ApplyHold = time.Hour }
	c.startAll(1, 1, 2, 3)
	p := c.node(1)
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	if err := put(ctx, p, "/first", "x"); err != nil {
		t.Fatal(err)
	}
	commit := p.Status().Commit
	waitFor(t, "an idle primary to commit its apply at once, not after the hold", func() bool { return p.Status().Applied >= commit })

	rounds, batches := p.applyRounds.Load(), p.applyBatches.Load()
	const writers, writes = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				if err := put(ctx, p, fmt.Sprintf("/w%d", w), fmt.Sprintf("v%d", i)); err != nil {
					t.Errorf("writer %d, put %d: %v", w, i, err)
					return
				}
			}
		})
	}
	reads := 0
	wg.Go(func() {
		for i := range writes {
			rctx, rcancel := ctxT(5 * time.Second) // far less than the hold
			_, err := read(rctx, p, "/first")
			rcancel()
			if err != nil {
				t.Errorf("read %d during the writes: %v", i, err)
				return
			}
			reads++
		}
	})
	wg.Wait()
	commit = p.Status().Commit
	waitFor(t, "the primary to commit every write once none is on its way", func() bool { return p.Status().Applied >= commit })
	r, b := p.applyRounds.Load()-rounds, p.applyBatches.Load()-batches
	t.Logf("%d writes and %d reads: %d batches applied in %d transactions", writers*writes, reads, b, r)
	if r >= b {
		t.Errorf("%d batches applied in %d transactions: want several batches in some transaction", b, r)
	}
}

// moreToApply, between the batches of an open apply transaction: more
// committed entries are applied in it; it waits for entries on their way
// while leading; and it has the transaction commit when nothing is on
// its way, when not leading, when a reader waits, or when the hold ends.
func TestMoreToApply(t *testing.T) {
	n := &Node{applyWake: make(chan struct{}, 1), applyNow: make(chan struct{}, 1), appliedCh: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer n.cancel()
	leading := func(last uint64) {
		n.view.Store(&nodeView{status: Status{Role: Leader, Ready: true, LastIndex: last}})
	}
	never := make(chan time.Time)
	leading(12)
	n.commitIdx.Store(10)
	if got := n.moreToApply(9, never); got != 10 {
		t.Errorf("entry 10 committed, 9 applied: got %d, want 10", got)
	}
	leading(10)
	if got := n.moreToApply(10, never); got != 0 {
		t.Errorf("nothing on its way: got %d, want 0 (commit)", got)
	}
	n.view.Store(&nodeView{status: Status{Role: Follower, LastIndex: 12}})
	if got := n.moreToApply(10, never); got != 0 {
		t.Errorf("a follower: got %d, want 0 (commit)", got)
	}

	leading(12)
	got := make(chan uint64, 1)
	go func() { got <- n.moreToApply(10, never) }()
	n.commitIdx.Store(11)
	n.applyWake <- struct{}{}
	if v := within(t, got, "moreToApply to take entry 11"); v != 11 {
		t.Errorf("waiting for entries on their way, entry 11 committed: got %d, want 11", v)
	}

	go func() { got <- n.moreToApply(11, never) }()
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	read := make(chan error, 1)
	go func() { read <- n.waitApplied(ctx, 11) }()
	if v := within(t, got, "moreToApply to give way to a reader"); v != 0 {
		t.Errorf("a reader waiting for entry 11: got %d, want 0 (commit)", v)
	}
	n.setApplied(11)
	if err := within(t, read, "the reader to see entry 11 applied"); err != nil {
		t.Errorf("the reader, once 11 is applied: %v", err)
	}

	ended := make(chan time.Time, 1)
	ended <- time.Now()
	if v := n.moreToApply(11, ended); v != 0 {
		t.Errorf("the hold over: got %d, want 0 (commit)", v)
	}
}

// within receives from ch, failing the test if nothing comes in 10 s.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10 s for %s", what)
		panic("unreachable")
	}
}

package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"shoal/store"
	"shoal/wire"
)

// A primary keeps its apply transaction open for the hold
// (Config.ApplyHold): under concurrent writes one transaction applies
// every batch, the writers' reads of what they wrote are answered from
// it, and a write of the store's own has it commit at once (giveWay).
// TestMoreToApply has each case.
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
	rounds, batches := p.applyRounds.Load(), p.applyBatches.Load()
	const writers, writes = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("/w%d", w)
			for i := range writes {
				want := fmt.Sprintf("v%d", i)
				if err := put(ctx, p, name, want); err != nil {
					t.Errorf("writer %d, put %d: %v", w, i, err)
					return
				}
				rctx, rcancel := ctxT(5 * time.Second) // far less than the hold
				got, err := read(rctx, p, name)
				rcancel()
				if err != nil || got != want {
					t.Errorf("writer %d, read after put %d: %q, %v; want %q", w, i, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	st := p.Status()
	r, b := p.applyRounds.Load()-rounds, p.applyBatches.Load()-batches
	t.Logf("%d writes, each read back: %d batches applied, %d transactions committed", writers*writes, b, r)
	if r != 0 || st.Applied >= st.Commit {
		t.Errorf("during the hold: %d transactions committed, applied %d of %d; want none, the writes held in one", r, st.Applied, st.Commit)
	}
	if b < 2 {
		t.Errorf("%d batches applied during the hold: want several", b)
	}
	done := p.giveWay()
	waitFor(t, "the held transaction to commit for a write of the store's own", func() bool { return p.Status().Applied >= st.Commit })
	done()
	if got, err := read(ctx, p, "/w0"); err != nil || got != fmt.Sprintf("v%d", writes-1) {
		t.Errorf("read once committed: %q, %v", got, err)
	}
}

// emptyStore is a store of nothing, for a read to open a transaction
// of.
func emptyStore(t *testing.T) *store.DB {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// moreToApply, between the batches of an open apply transaction: more
// committed entries are applied in it; while leading it waits for them,
// lending its state to the quick reads of entries it holds; and it has
// the transaction commit when not leading or ready, when a write of the
// store or a read it does not lend to waits (giveWay), or when the hold
// ends.
func TestMoreToApply(t *testing.T) {
	n := &Node{db: emptyStore(t), applyWake: make(chan struct{}, 1), applyNow: make(chan struct{}, 1), appliedCh: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer n.cancel()
	leading := func(ready bool) {
		n.view.Store(&nodeView{status: Status{Role: Leader, Ready: ready, LastIndex: 12}})
	}
	var tx store.Reader // the open transaction's state: no read here looks at it
	never := make(chan time.Time)
	leading(true)
	n.commitIdx.Store(10)
	if got := n.moreToApply(9, tx, never); got != 10 {
		t.Errorf("entry 10 committed, 9 applied: got %d, want 10", got)
	}
	n.view.Store(&nodeView{status: Status{Role: Follower, LastIndex: 12}})
	if got := n.moreToApply(10, tx, never); got != 0 {
		t.Errorf("a follower: got %d, want 0 (commit)", got)
	}
	leading(false)
	if got := n.moreToApply(10, tx, never); got != 0 {
		t.Errorf("a primary not yet ready: got %d, want 0 (commit)", got)
	}

	leading(true)
	got := make(chan uint64, 1)
	go func() { got <- n.moreToApply(10, tx, never) }()
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	// A read of entry 10, applied in the transaction, is served from it;
	// one of entry 11 waits for a transaction that has applied it.
	read := make(chan error, 1)
	ran := false
	go func() { read <- n.readAt(ctx, 10, true, func(store.Reader) { ran = true }) }()
	if err := within(t, read, "a read of entry 10 from the open transaction"); err != nil || !ran {
		t.Errorf("a read of entry 10, applied but not committed: %v (ran: %v)", err, ran)
	}
	ran11 := make(chan struct{})
	go func() { read <- n.readAt(ctx, 11, true, func(store.Reader) { close(ran11) }) }()
	n.commitIdx.Store(11)
	n.applyWake <- struct{}{}
	if v := within(t, got, "moreToApply to take entry 11"); v != 11 {
		t.Errorf("waiting for entries on their way, entry 11 committed: got %d, want 11", v)
	}
	select {
	case <-ran11:
		t.Error("a read of entry 11 was served by a transaction through 10")
	default:
	}

	go func() { got <- n.moreToApply(11, tx, never) }()
	if err := within(t, read, "the read of entry 11 once the transaction has applied it"); err != nil {
		t.Errorf("the read of entry 11: %v", err)
	}
	done := n.giveWay()
	if v := within(t, got, "moreToApply to give way to a write of the store"); v != 0 {
		t.Errorf("a write of the store waiting: got %d, want 0 (commit)", v)
	}
	done()

	// A read not lent the transaction (a long one) has it commit, and
	// reads the store once it has.
	go func() { got <- n.moreToApply(11, tx, never) }()
	go func() { read <- n.readAt(ctx, 11, false, func(store.Reader) {}) }()
	if v := within(t, got, "moreToApply to commit for a read it does not lend to"); v != 0 {
		t.Errorf("a read not lent the transaction waiting: got %d, want 0 (commit)", v)
	}
	n.setApplied(11)
	if err := within(t, read, "the read not lent, once entry 11 is committed"); err != nil {
		t.Errorf("the read not lent: %v", err)
	}
	if w := n.commitWanted.Load(); w != 0 {
		t.Errorf("after the read, %d still want the transaction to commit", w)
	}

	ended := make(chan time.Time, 1)
	ended <- time.Now()
	if v := n.moreToApply(11, tx, ended); v != 0 {
		t.Errorf("the hold over: got %d, want 0 (commit)", v)
	}
}

// A read needing an entry not yet applied waits for the commit that
// applies it; one whose entry is committed to the store reads the store.
func TestReadAtWaitsForApplied(t *testing.T) {
	n := &Node{db: emptyStore(t), appliedCh: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer n.cancel()
	n.setApplied(4)
	// Given 50 ms, the read of entry 5 gives up unread: nothing holds it.
	short, stop := ctxT(50 * time.Millisecond)
	err := n.readAt(short, 5, true, func(store.Reader) {
		t.Error("a read of entry 5 ran with 4 applied and no transaction open")
	})
	stop()
	if !errors.Is(err, wire.ErrNoQuorum) {
		t.Errorf("a read of entry 5 with 4 applied, out of time: %v, want ErrNoQuorum", err)
	}
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	read := make(chan error, 1)
	ran := make(chan struct{})
	go func() { read <- n.readAt(ctx, 5, true, func(store.Reader) { close(ran) }) }()
	n.setApplied(5)
	if err := within(t, read, "the read once entry 5 is applied"); err != nil {
		t.Errorf("read of entry 5, applied: %v", err)
	}
	<-ran
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

package replication

// Applying committed entries to the store runs in a goroutine of its own,
// apart from the driver loop, so that a large batch to apply (or a log
// compaction) does not hold up replication; proposals and reads wait
// here for the entry they need to be applied.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// applyLoop applies committed entries in order, answers the proposals
// waiting on them, and compacts the log.
//
// Only a primary applies as soon as entries commit: its proposers and
// readers wait for it. A follower's applied state serves nothing until
// it leads (it applies everything committed before it serves), so it
// applies at most every followerApplyEvery: under light load that saves
// its disk a commit, with its fsyncs, per entry, which it would share
// with the appends of its own group and of every process on that disk,
// and under heavy load it applies hundreds of entries per commit, each
// page of the namespace's B-trees written once for all of them.
func (n *Node) applyLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var later <-chan time.Time
	for {
		select {
		case <-n.ctx.Done():
			if later != nil {
				// A follower that stops applies its round first: its
				// store is then as current as its log (a restart would
				// apply it anyway).
				if err := n.applyCommitted(); err != nil {
					n.log.Warn("apply committed entries before stopping; the next start applies them", "err", err)
				}
			}
			return
		case <-n.applyWake:
			if n.view.Load().status.Role == Follower {
				if later == nil {
					later = time.After(followerApplyEvery)
				}
				continue
			}
		case <-later:
		case <-tick.C:
		}
		later = nil
		began := time.Now()
		if err := n.applyCommitted(); err != nil && n.db.Corrupt() == nil {
			n.log.Error("apply committed entries", "err", err)
			// Proposers have their answers (the entries are committed),
			// but a node that cannot apply cannot serve reads: a disk
			// that refuses it counts the node out and makes a primary
			// give way, as a refused append or chunk does.
			n.noteDisk(err, "apply to namespace", began)
			if errors.Is(err, meta.ErrDiskFailed) {
				n.post(InStepDown{Reason: StepDownDisk, Why: "the disk refused to apply committed entries"})
			}
		}
	}
}

func (n *Node) applyCommitted() error {
	commit := n.commitIdx.Load()
	st, err := n.db.State()
	if err != nil {
		return err
	}
	if commit <= st.Applied {
		return nil
	}
	// Proposers are answered as soon as their results are computed, while
	// the transaction commits (see store.DB.ApplyThen): their entries are
	// committed on a majority, so the answer stands whatever happens to
	// this transaction. Quick reads that need them read the transaction
	// until it commits (moreToApply, readAt); other reads have it commit.
	var more func(uint64, store.Reader) uint64
	if n.cfg.ApplyHold > 0 {
		hold := time.NewTimer(n.cfg.ApplyHold)
		defer hold.Stop()
		more = func(applied uint64, r store.Reader) uint64 { return n.moreToApply(applied, r, hold.C) }
	}
	last := st.Applied
	start := time.Now()
	_, _, err = n.db.ApplyThen(commit, func(es []meta.Entry, rs []meta.Result) {
		last = es[len(es)-1].Index
		n.applyBatches.Add(1)
		n.answerApplied(es, rs)
	}, more)
	if err != nil {
		return err
	}
	n.applyRounds.Add(1)
	n.cfg.Metrics.applied(time.Since(start))
	n.setApplied(last)
	n.post(InApplied{Index: last})
	if n.commitIdx.Load() > last {
		// moreToApply may have taken the wake-up of entries it left for
		// the next transaction.
		select {
		case n.applyWake <- struct{}{}:
		default:
		}
	}
	if last > st.SnapIndex+2*n.cfg.LogRetain {
		return n.db.Compact(last - n.cfg.LogRetain)
	}
	return nil
}

// moreToApply is asked by an open apply transaction, after a batch, what
// to apply next: the commit index once entries beyond applied have
// committed. While this node is a ready primary and the hold
// (Config.ApplyHold) lasts, it waits for them, lending meanwhile r, the
// transaction's state, to the reads that need what it applied (readAt).
// It returns 0 to commit now: when the hold is over, the node stops or is
// found no longer leading (when next woken, the hold at the latest), or
// something waits for the commit (giveWay): a write of this node's store,
// or a read not lent the transaction.
//
// The transaction stays open after the last write for the rest of the
// hold: the next write, if it comes by then, is applied without a commit
// of its own, and the reads that need it meanwhile read its state, lent
// to them (heldApply) while it waits.
func (n *Node) moreToApply(applied uint64, r store.Reader, hold <-chan time.Time) uint64 {
	n.lent.lend(applied, r)
	defer n.lent.take()
	for {
		select {
		case <-hold:
			return 0
		case <-n.ctx.Done():
			return 0
		default:
		}
		if n.commitWanted.Load() > 0 {
			return 0
		}
		if c := n.commitIdx.Load(); c > applied {
			return c
		}
		if v := n.view.Load(); v.status.Role != Leader || !v.status.Ready {
			return 0
		}
		select {
		case <-n.applyWake:
		case <-n.applyNow:
		case <-hold:
			return 0
		case <-n.ctx.Done():
			return 0
		}
	}
}

// giveWay has an apply transaction held open (moreToApply) commit, for
// what would otherwise wait for the hold to end: a write of this node's
// store (bbolt takes one write transaction at a time), or a read that
// needs what the transaction applied and is not lent it (readAt). The
// caller calls done once it no longer waits.
func (n *Node) giveWay() (done func()) {
	n.commitWanted.Add(1)
	select {
	case n.applyNow <- struct{}{}:
	default:
	}
	return func() { n.commitWanted.Add(-1) }
}

// followerApplyEvery is how long a follower lets committed entries
// gather before it applies them (see applyLoop). Under 16 clients
// creating files, 250 ms wrote 14% fewer bytes per create across the
// group than 50 ms, and 500 ms only 2-3% fewer than 250 ms (BENCHMARKS.md,
// "What a mutation writes"). A follower promoted to primary applies what is
// left before it serves: at most this long's worth of entries, a few
// milliseconds of work.
const followerApplyEvery = 250 * time.Millisecond

// answerApplied answers the proposals waiting on entries, given their
// results. It is called inside the transaction that applies them, which
// then commits with fsyncs: the goroutine yields first, so the proposers
// it woke (queued to run next on this goroutine's processor, which that
// syscall would hold) are answered now rather than after the commit.
func (n *Node) answerApplied(entries []meta.Entry, results []meta.Result) {
	defer runtime.Gosched()
	if len(entries) > 0 {
		n.computed.Store(entries[len(entries)-1].Index) // before any answer
	}
	n.waitMu.Lock()
	defer n.waitMu.Unlock()
	for i, e := range entries {
		if w, ok := n.waiters[e.Index]; ok {
			delete(n.waiters, e.Index)
			if w.ballot == e.Ballot {
				w.done <- result{res: results[i], waited: true}
			} else {
				w.done <- result{err: fmt.Errorf("entry %d was replaced: %w", e.Index, wire.ErrDeposed)}
			}
		}
	}
}

// setApplied records the applied index and wakes its waiters.
func (n *Node) setApplied(i uint64) {
	n.appliedMu.Lock()
	defer n.appliedMu.Unlock()
	if i <= n.applied {
		return
	}
	n.applied = i
	close(n.appliedCh)
	n.appliedCh = make(chan struct{})
}

// heldApply lends readers (readAt) the state of an apply transaction
// while moreToApply holds it open, one at a time: the transaction's
// goroutine waits meanwhile, and takes it back before it applies more or
// commits. A reader reads on its own goroutine, with no hand-over.
type heldApply struct {
	mu      sync.Mutex
	open    bool         // the transaction is lent
	applied uint64       // the last entry it applied
	r       store.Reader // its state
	lent    chan struct{}
}

// lend lends the transaction's state, r, which holds the entries through
// applied, and wakes the readers waiting for it.
func (h *heldApply) lend(applied uint64, r store.Reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open, h.applied, h.r = true, applied, r
	if h.lent != nil {
		close(h.lent)
		h.lent = nil
	}
}

// take ends the loan, once any read under way is over.
func (h *heldApply) take() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open, h.r = false, store.Reader{}
}

// read runs fn over the lent state if it holds the entries through index,
// and says so; else it returns a channel closed at the next loan.
func (h *heldApply) read(index uint64, fn func(store.Reader)) (bool, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open && h.applied >= index {
		fn(h.r.Shared())
		return true, nil
	}
	if h.lent == nil {
		h.lent = make(chan struct{})
	}
	return false, h.lent
}

// readAt calls fn with a Reader of a state that holds every entry through
// index: the store's, in one read transaction for all of fn's reads
// (store.DB.View), once the entries through index are applied and
// committed, or before that, if lend is set, the state of the apply
// transaction that applied them, held open (moreToApply, heldApply). The
// entries it applied are committed in the log, so a read of them stands
// whatever becomes of the transaction, as the answers to their proposers
// do. fn must only read, and while lent the transaction it holds up the
// apply: a read that may take long is not lent it, and has it commit
// instead (giveWay).
func (n *Node) readAt(ctx context.Context, index uint64, lend bool, fn func(store.Reader)) error {
	var gaveWay func()
	defer func() {
		if gaveWay != nil {
			gaveWay()
		}
	}()
	for {
		n.appliedMu.Lock()
		applied, ch := n.applied, n.appliedCh
		n.appliedMu.Unlock()
		if applied >= index {
			return n.db.View(fn)
		}
		var lent <-chan struct{} // nil, never ready, for a read not lent
		if lend {
			var done bool
			if done, lent = n.lent.read(index, fn); done {
				return nil
			}
		} else if gaveWay == nil {
			gaveWay = n.giveWay()
		}
		select {
		case <-lent:
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for entry %d to apply", wire.ErrNoQuorum, index)
		case <-n.ctx.Done():
			return errClosed
		}
	}
}

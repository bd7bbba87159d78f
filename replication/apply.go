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
	"time"

	"shoal/meta"
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
	// this transaction, and reads still wait for setApplied below.
	var more func(uint64) uint64
	if n.cfg.ApplyHold > 0 {
		hold := time.NewTimer(n.cfg.ApplyHold)
		defer hold.Stop()
		more = func(applied uint64) uint64 { return n.moreToApply(applied, hold.C) }
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
// to apply next: the commit index if entries beyond applied have
// committed; else, while this node is a ready primary with entries of its
// log on their way to commit and the hold (Config.ApplyHold) has not
// passed, it waits for them. It returns 0 to commit now: when nothing is
// on its way (an idle primary commits at once, so that a read after a
// write finds the commit under way), a reader waits (waitApplied), the
// hold is over, or the node stops.
func (n *Node) moreToApply(applied uint64, hold <-chan time.Time) uint64 {
	for {
		select {
		case <-n.applyNow:
			return 0
		case <-hold:
			return 0
		case <-n.ctx.Done():
			return 0
		default:
		}
		if c := n.commitIdx.Load(); c > applied {
			return c
		}
		if v := n.view.Load(); v.status.Role != Leader || !v.status.Ready || v.status.LastIndex <= applied {
			return 0
		}
		select {
		case <-n.applyWake:
		case <-n.applyNow:
			return 0
		case <-hold:
			return 0
		case <-n.ctx.Done():
			return 0
		}
	}
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

// waitApplied blocks until the entries through index are applied.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for {
		n.appliedMu.Lock()
		applied, ch := n.applied, n.appliedCh
		n.appliedMu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case n.applyNow <- struct{}{}: // commit rather than hold (moreToApply)
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for entry %d to apply", wire.ErrNoQuorum, index)
		case <-n.ctx.Done():
			return errClosed
		}
	}
}

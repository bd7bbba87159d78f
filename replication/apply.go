package replication

// Applying committed entries to the store runs in a goroutine of its own,
// apart from the driver loop, so that a large batch to apply (or a log
// compaction) does not hold up replication; proposals and reads wait
// here for the entry they need to be applied.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"shoal/meta"
	"shoal/wire"
)

// applyLoop applies committed entries in order, answers the proposals
// waiting on them, and compacts the log.
func (n *Node) applyLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.applyWake:
		case <-tick.C:
		}
		if err := n.applyCommitted(); err != nil && n.db.Corrupt() == nil {
			n.log.Error("apply committed entries", "err", err)
			// Proposers have their answers (the entries are committed),
			// but a node that cannot apply cannot serve reads: a disk
			// that refuses it counts the node out and makes a primary
			// give way, as a refused append or chunk does.
			n.noteDisk(err, "apply to namespace")
			if errors.Is(err, meta.ErrDiskFailed) {
				n.post(InStepDown{Why: "the disk refused to apply committed entries"})
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
	if _, _, err := n.db.ApplyThen(commit, n.answerApplied); err != nil {
		return err
	}
	n.setApplied(commit)
	n.post(InApplied{Index: commit})
	if commit > st.SnapIndex+2*n.cfg.LogRetain {
		return n.db.Compact(commit - n.cfg.LogRetain)
	}
	return nil
}

// answerApplied answers the proposals waiting on entries, given their
// results.
func (n *Node) answerApplied(entries []meta.Entry, results []meta.Result) {
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
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for entry %d to apply", wire.ErrNoQuorum, index)
		case <-n.ctx.Done():
			return errClosed
		}
	}
}

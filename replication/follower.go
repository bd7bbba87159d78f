package replication

import (
	"context"
	"errors"
	"fmt"

	"shoal/meta"
	"shoal/wire"
)

// handleAppend is the replica side of replication (invariant 2): it refuses
// a ballot lower than its promise or than the primary in its gossip view,
// checks that its log matches the primary's before the new entries, makes
// the entries and the chunks they name durable, and only then says OK.
func (n *Node) handleAppend(ctx context.Context, m *wire.Append) (wire.Message, error) {
	if err := n.checkGroup(m.Group); err != nil {
		return nil, err
	}
	if n.cfg.ViewPrimary != nil {
		if vp, ok := n.cfg.ViewPrimary(); ok && m.Ballot.Less(vp) {
			return nil, fmt.Errorf("%w: ballot %s is below the primary %s in this node's view", wire.ErrStaleBallot, m.Ballot, vp)
		}
	}
	n.mu.Lock()
	if m.Ballot.Less(n.promised) {
		resp := &wire.AppendResp{Promised: n.promised}
		n.mu.Unlock()
		return resp, nil
	}
	if err := n.observeBallotLocked(m.Ballot); err != nil {
		n.mu.Unlock()
		return nil, err
	}
	if n.role != Follower { // an equal ballot is our own: never append to ourselves
		n.mu.Unlock()
		return nil, fmt.Errorf("%w: node leads ballot %s itself", wire.ErrStaleBallot, m.Ballot)
	}
	if n.leaderAddr != m.Leader {
		n.leaderAddr = m.Leader
		n.notifyChanged()
	}
	promised, installing := n.promised, n.installing
	if m.Snapshot && !installing && !m.Probe {
		if n.closed {
			n.mu.Unlock()
			return nil, errors.New("replication: node is closed")
		}
		if n.applied >= m.PrevIndex {
			// Everything the primary compacted is applied here already
			// (a snapshot was installed): tell it where to resume.
			applied := n.applied
			n.mu.Unlock()
			return &wire.AppendResp{Promised: promised, LastIndex: applied}, nil
		}
		n.installing, installing = true, true
		n.wg.Add(1)
		go n.installSnapshot(m.Leader)
	}
	n.mu.Unlock()
	if m.Probe {
		return &wire.AppendResp{OK: true, Promised: promised}, nil
	}
	if installing {
		return &wire.AppendResp{Promised: promised, Installing: true}, nil
	}
	n.logMu.Lock()
	defer n.logMu.Unlock()
	// A higher ballot may have been seen while this append waited for the
	// log: its entries must not land after that ballot's.
	n.mu.Lock()
	promised, installing = n.promised, n.installing
	n.mu.Unlock()
	if promised != m.Ballot || installing {
		return &wire.AppendResp{Promised: promised, Installing: installing}, nil
	}
	match, ok, err := n.appendEntries(ctx, m)
	if errors.Is(err, wire.ErrCommittedConflict) {
		n.log.Error("refusing entries from the primary: they would replace committed ones; the primary may have lost its disk",
			"primary", m.Leader, "ballot", m.Ballot, "err", err)
	}
	if err != nil || !ok {
		return &wire.AppendResp{Promised: promised, LastIndex: match}, err
	}
	n.mu.Lock()
	if c := min(m.Commit, match); c > n.commit {
		n.commit = c
		n.wakeApply()
	}
	if up := match >= m.Commit; up != n.caughtUp {
		n.caughtUp = up
		n.notifyChanged()
	}
	if m.SyncedStart == n.start && !n.chunksSynced {
		n.chunksSynced = true
		n.notifyChanged()
	}
	n.mu.Unlock()
	return &wire.AppendResp{OK: true, Promised: promised, LastIndex: match}, nil
}

// appendEntries applies the log-matching rule. It returns the index
// through which this log now equals the primary's, or, when the entry
// before the batch does not match, false and a hint where to retry from.
func (n *Node) appendEntries(ctx context.Context, m *wire.Append) (uint64, bool, error) {
	st, err := n.db.State()
	if err != nil {
		return 0, false, err
	}
	plan, err := planAppend(m, st, n.db.BallotAt)
	if err != nil || !plan.ok {
		return plan.match, false, err
	}
	if err := n.ensureChunks(ctx, plan.hold, m.Leader); err != nil {
		return 0, false, err
	}
	entries, err := newEntries(plan.hold, st.LastIndex, n.db.BallotAt)
	if err != nil {
		return 0, false, err
	}
	if len(entries) == 0 {
		return plan.match, true, nil
	}
	if err := n.db.Append(entries); err != nil {
		return 0, false, err
	}
	tail := entries[len(entries)-1]
	n.mu.Lock()
	n.last, n.lastBallot = tail.Index, tail.Ballot
	if entries[0].Index <= st.LastIndex || hasConfig(entries) {
		n.refreshConfigLocked()
	}
	n.mu.Unlock()
	return plan.match, true, nil
}

func hasConfig(entries []meta.Entry) bool {
	for _, e := range entries {
		if e.Op.Kind == meta.OpConfig {
			return true
		}
	}
	return false
}

// refreshConfigLocked re-reads the configuration in effect; callers use it
// when new entries carry one, or when a write may have truncated one away.
func (n *Node) refreshConfigLocked() {
	c, err := n.db.Config()
	if err != nil {
		n.log.Error("read configuration", "err", err)
		return
	}
	if !sameMembers(c, n.config) {
		n.config = c
		n.notifyChanged()
	}
}

// handlePromise is the member side of recovery: it promises to refuse any
// lower ballot and reports its log's end, so the new primary can adopt the
// most up-to-date log of a majority (invariant 3).
func (n *Node) handlePromise(m *wire.Promise) (wire.Message, error) {
	if err := n.checkGroup(m.Group); err != nil {
		return nil, err
	}
	n.logMu.Lock()
	defer n.logMu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if m.Ballot.Less(n.promised) {
		return &wire.PromiseResp{Promised: n.promised}, nil
	}
	if err := n.observeBallotLocked(m.Ballot); err != nil {
		return nil, err
	}
	return &wire.PromiseResp{OK: true, Promised: n.promised, LastIndex: n.last, LastBallot: n.lastBallot}, nil
}

// handleFetchLog serves log entries to a recovering primary.
func (n *Node) handleFetchLog(m *wire.FetchLog) (wire.Message, error) {
	if err := n.checkGroup(m.Group); err != nil {
		return nil, err
	}
	n.mu.Lock()
	promised, last := n.promised, n.last
	n.mu.Unlock()
	if m.Ballot.Less(promised) {
		return nil, fmt.Errorf("%w: fetch for ballot %s, promised %s", wire.ErrStaleBallot, m.Ballot, promised)
	}
	if m.From > last {
		return &wire.FetchLogResp{LastIndex: last}, nil
	}
	maxBytes := m.MaxBytes
	if maxBytes <= 0 || maxBytes > n.cfg.MaxBatchBytes {
		maxBytes = n.cfg.MaxBatchBytes
	}
	es, err := n.db.Entries(m.From, last, maxBytes)
	if err != nil {
		return nil, err
	}
	return &wire.FetchLogResp{Entries: es, LastIndex: last}, nil
}

// errCompacted reports whether err says the entries were compacted.
func errCompacted(err error) bool { return errors.Is(err, meta.ErrCompacted) }

package replication

// The member side of the Machine: Appends, promises and log fetches from
// a primary, and the durable work they wait for.

import (
	"errors"
	"fmt"

	"shoal/meta"
	"shoal/wire"
)

// onAppend is the replica side of replication (invariant 2): it refuses
// a ballot lower than its promise or than the primary in its gossip view,
// checks that its log matches the primary's before the new entries, makes
// the entries and the chunks they name durable, and only then says OK.
func (m *Machine) onAppend(in InAppend) {
	a := in.M
	if err := a.Ballot.Check(); err != nil {
		m.reply(in.Req, nil, fmt.Errorf("%w: append: %w", wire.ErrBadMessage, err))
		return
	}
	if in.HasView && a.Ballot.Less(in.View) {
		m.reply(in.Req, nil, fmt.Errorf("%w: ballot %s is below the primary %s in this node's view", wire.ErrStaleBallot, a.Ballot, in.View))
		return
	}
	if a.Ballot.Less(m.promised) {
		m.reply(in.Req, m.appendResp(false, 0), nil)
		return
	}
	m.observe(a.Ballot)
	if m.role != Follower { // an equal ballot is our own: never append to ourselves
		m.reply(in.Req, nil, fmt.Errorf("%w: node leads ballot %s itself", wire.ErrStaleBallot, a.Ballot))
		return
	}
	if m.leaderAddr != a.Leader {
		m.leaderAddr = a.Leader
		m.changed()
	}
	if a.Snapshot && !m.installing && !a.Probe {
		if m.applied >= a.PrevIndex {
			// Everything the primary compacted is applied here already
			// (a snapshot was installed): tell it where to resume.
			m.reply(in.Req, m.appendResp(false, m.applied), nil)
			return
		}
		if m.restoring == workNone {
			m.installing = true
			m.restoring = workInstall
			m.rd.Restore = a.Leader
			m.changed()
		}
	}
	switch {
	case a.Probe:
		// A read's confirmation counts no room: it carries no data.
		m.reply(in.Req, &wire.AppendResp{OK: true, Promised: m.promised, Start: m.cfg.Start}, nil)
		return
	case m.installing || m.restoring != workNone:
		r := m.appendResp(false, 0)
		r.Installing = true
		m.reply(in.Req, r, nil)
		return
	}
	st, err := m.cfg.Log.State()
	if err != nil {
		m.reply(in.Req, nil, err)
		return
	}
	plan, err := planAppend(a, st, m.cfg.Log.BallotAt)
	if errors.Is(err, wire.ErrCommittedConflict) {
		m.log.Error("refusing entries from the primary: they would replace committed ones; the primary may have lost its disk",
			"primary", a.Leader, "ballot", a.Ballot, "err", err)
	}
	if err != nil || !plan.ok {
		m.reply(in.Req, m.appendResp(false, plan.match), err)
		return
	}
	fa := &followerAppend{req: in.Req, m: a, plan: plan, st: st}
	if m.ownsChunksOf(plan.hold) {
		m.pending = pendingWork{kind: workFollowerHold, append: fa}
		m.rd.Hold, m.rd.HoldFrom = plan.hold, a.Leader
		return
	}
	m.writeAppend(fa)
}

// appendResp is an answer to an Append; it says whether this member's
// disk has room for new data left (see room.go).
func (m *Machine) appendResp(ok bool, last uint64) *wire.AppendResp {
	return &wire.AppendResp{OK: ok, Promised: m.promised, LastIndex: last, Start: m.cfg.Start, NoRoom: m.cfg.Log.Room() <= 0}
}

// writeAppend writes the entries of an accepted Append that this log
// lacks, or answers at once if it holds them all.
func (m *Machine) writeAppend(fa *followerAppend) {
	es, err := newEntries(fa.plan.hold, fa.st.LastIndex, m.cfg.Log.BallotAt)
	if err != nil {
		m.reply(fa.req, m.appendResp(false, 0), err)
		return
	}
	if len(es) == 0 {
		m.appended(fa)
		return
	}
	fa.configMayChange = es[0].Index <= fa.st.LastIndex || hasConfig(es)
	m.pending = pendingWork{kind: workFollowerStore, append: fa}
	m.rd.Entries = es
}

// appended answers an Append whose entries are durable here.
func (m *Machine) appended(fa *followerAppend) {
	match := fa.plan.match
	if c := min(fa.m.Commit, match); c > m.commit {
		m.commit = c
		m.rd.Commit = c
	}
	if up := match >= fa.m.Commit; up != m.caughtUp {
		m.caughtUp = up
		m.changed()
	}
	if fa.m.SyncedStart == m.cfg.Start && !m.chunksSynced {
		m.chunksSynced = true
		m.changed()
	}
	m.noteRebuilt()
	m.reply(fa.req, m.appendResp(true, match), nil)
}

// noteRebuilt clears the rebuilding mark once this member's log is known
// to hold every committed entry: it is a voter that its primary found, in
// this process start, caught up with the commit index and holding every
// chunk. Every entry committed since then counted its answers, which it
// gives only for entries it holds.
func (m *Machine) noteRebuilt() {
	if !m.rebuilding || !isVoter(m.config, m.cfg.Self.ID) || m.installing || !m.caughtUp || !m.chunksSynced {
		return
	}
	m.rebuilding = false
	m.rd.Rebuilt = true
	m.log.Info("this member's log holds every committed entry again: it counts toward a majority that recovers the log, and may lead", "last_index", m.last)
	m.changed()
}

// ownsChunksOf reports whether entries name chunks this group keeps.
func (m *Machine) ownsChunksOf(es []meta.Entry) bool {
	for _, e := range es {
		if e.Op.Kind != meta.OpPut || e.Op.File == nil {
			continue
		}
		for _, c := range e.Op.File.Chunks {
			if ownsChunk(m.cfg.Group, c) {
				return true
			}
		}
	}
	return false
}

// onPromise is the member side of recovery: it promises to refuse any
// lower ballot and reports its log's end, so the new primary can adopt the
// most up-to-date log of a majority (invariant 3).
func (m *Machine) onPromise(in InPromise) {
	if err := in.M.Ballot.Check(); err != nil {
		m.reply(in.Req, nil, fmt.Errorf("%w: promise: %w", wire.ErrBadMessage, err))
		return
	}
	if in.M.Ballot.Less(m.promised) {
		m.reply(in.Req, &wire.PromiseResp{Promised: m.promised}, nil)
		return
	}
	if m.rebuilding {
		// Its log may lack committed entries: counted in the majority,
		// it could let the new primary adopt a log without them.
		m.reply(in.Req, nil, fmt.Errorf("%w: member %d promises nothing until its primary finds it whole", wire.ErrRebuilding, m.cfg.Self.ID))
		return
	}
	m.observe(in.M.Ballot)
	m.reply(in.Req, &wire.PromiseResp{OK: true, Promised: m.promised, LastIndex: m.last, LastBallot: m.lastBallot}, nil)
}

// onFetchLog serves log entries to a recovering primary.
func (m *Machine) onFetchLog(in InFetchLog) {
	f := in.M
	if err := f.Ballot.Check(); err != nil {
		m.reply(in.Req, nil, fmt.Errorf("%w: fetch log: %w", wire.ErrBadMessage, err))
		return
	}
	if f.Ballot.Less(m.promised) {
		m.reply(in.Req, nil, fmt.Errorf("%w: fetch for ballot %s, promised %s", wire.ErrStaleBallot, f.Ballot, m.promised))
		return
	}
	if f.From > m.last {
		m.reply(in.Req, &wire.FetchLogResp{LastIndex: m.last}, nil)
		return
	}
	maxBytes := f.MaxBytes
	if maxBytes <= 0 || maxBytes > m.cfg.MaxBatchBytes {
		maxBytes = m.cfg.MaxBatchBytes
	}
	es, err := m.cfg.Log.Entries(f.From, m.last, maxBytes)
	if err != nil {
		m.reply(in.Req, nil, err)
		return
	}
	m.reply(in.Req, &wire.FetchLogResp{Entries: es, LastIndex: m.last}, nil)
}

// ---- Durable work reported back ----

func (m *Machine) onHeld(in InHeld) {
	p := m.pending
	m.pending = pendingWork{}
	switch p.kind {
	case workFollowerHold:
		if in.Err != nil {
			m.reply(p.append.req, m.appendResp(false, 0), in.Err)
			return
		}
		m.writeAppend(p.append)
	case workAdoptHold:
		m.adoptHeld(in.Err)
	}
}

func (m *Machine) onStored(in InStored) {
	p := m.pending
	m.pending = pendingWork{}
	switch p.kind {
	case workFollowerStore:
		if in.Err != nil {
			m.reply(p.append.req, m.appendResp(false, 0), in.Err)
			return
		}
		if err := m.reloadTail(p.append.configMayChange); err != nil {
			m.reply(p.append.req, m.appendResp(false, 0), err)
			return
		}
		m.appended(p.append)
	case workLeaderStore:
		m.leaderStored(in.Err, p.tail, p.config)
	case workAdoptStore:
		m.adoptStored(in.Err)
	}
}

// reloadTail re-reads the log's end and, when a write may have changed it,
// the configuration in effect: new entries may carry one, and a write that
// replaced entries may have removed one.
func (m *Machine) reloadTail(configMayChange bool) error {
	st, err := m.cfg.Log.State()
	if err != nil {
		return err
	}
	m.last, m.lastBallot = st.LastIndex, st.LastBallot
	if configMayChange {
		m.refreshConfig()
	}
	return nil
}

// refreshConfig re-reads the configuration in effect from the log.
func (m *Machine) refreshConfig() {
	c, forming, err := m.cfg.Log.Config()
	if err != nil {
		m.log.Error("read configuration", "err", err)
		return
	}
	if !sameMembers(c, m.config) || forming != m.forming {
		m.config, m.forming = c, forming
		m.changed()
	}
}

func (m *Machine) onRestored(in InRestored) {
	kind := m.restoring
	m.restoring = workNone
	if in.Err == nil {
		if err := m.restoredState(); err != nil {
			in.Err = err
		}
		if m.promised.Less(in.Promised) {
			m.promised = in.Promised
			m.stepDown(StepDownSnapshot, fmt.Sprintf("the installed snapshot holds a higher promise %s", in.Promised))
		}
	}
	switch kind {
	case workInstall:
		m.installing = false
		m.changed()
		if in.Err != nil {
			m.log.Warn("install snapshot", "err", in.Err)
		}
	case workAdoptRestore:
		m.adoptRestored(in.Err)
	}
}

// restoredState reloads everything after a snapshot replaced the log.
func (m *Machine) restoredState() error {
	st, err := m.cfg.Log.State()
	if err != nil {
		return err
	}
	m.log.Info("installed snapshot", "applied", st.Applied, "last_index", st.LastIndex)
	m.commit = st.Applied
	m.applied = st.Applied
	return m.reload()
}

func (m *Machine) onApplied(in InApplied) {
	m.applied = max(m.applied, in.Index)
	if l := m.lead; l != nil && !l.ready && m.applied >= l.first {
		l.ready = true
		m.log.Info("primary ready", "ballot", l.ballot, "forming", m.forming)
		m.changed()
		// A forming group takes no requests until its members join,
		// which waits for a repair round to find them synced: have one
		// now rather than at the next interval.
		if m.forming {
			m.rd.Repair = true
		}
		m.advanceCommit()
	}
}

func (m *Machine) onRepaired(in InRepaired) {
	l := m.lead
	if l == nil {
		return
	}
	for id, start := range in.Synced {
		if l.synced[id] == start {
			continue
		}
		l.synced[id] = start
		if l.starts[id] == 0 {
			l.starts[id] = start
		}
		m.log.Info("member holds every chunk of the group", "member", id)
	}
	m.advanceCommit()
}

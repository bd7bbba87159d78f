package replication

// Recovery, the Machine's promotion to primary, and the routing of
// members' answers.

import (
	"fmt"
	"slices"

	"shoal/wire"
)

// onPromote makes this node the primary with the ballot, which the caller
// chose from its gossip view (no election messages). Before it accepts
// writes it gathers promises from a majority of the voters, adopts the
// most up-to-date log among them (which holds every committed entry, since
// any two majorities meet), and commits a first entry of its own ballot
// (invariant 3).
func (m *Machine) onPromote(in InPromote) {
	b := in.Ballot
	if err := b.Check(); err != nil {
		m.reply(in.Req, nil, fmt.Errorf("replication: cannot promote: %w", err))
		return
	}
	if b.Node != m.cfg.Self.ID {
		// Two promoters sharing a ballot could both gather a majority.
		m.reply(in.Req, nil, fmt.Errorf("replication: ballot %s names node %d; node %d must promote with its own ID", b, b.Node, m.cfg.Self.ID))
		return
	}
	if b.Less(m.promised) || b == m.promised && m.role != Follower {
		m.reply(in.Req, nil, fmt.Errorf("%w: ballot %s is not above promised %s", wire.ErrStaleBallot, b, m.promised))
		return
	}
	if m.busy() {
		m.reply(in.Req, nil, fmt.Errorf("%w: a log write is in progress", wire.ErrNotReady))
		return
	}
	if m.rebuilding {
		// Its own log counts in the majority it recovers from: one that
		// may lack committed entries must not.
		m.reply(in.Req, nil, fmt.Errorf("%w: node %d cannot lead until its primary finds it whole", wire.ErrRebuilding, m.cfg.Self.ID))
		return
	}
	m.observe(b)
	m.role = Recovering
	m.changed()
	m.rec = &recovery{req: in.Req, ballot: b}
	m.recoveryRound()
}

// recoveryRound asks the voters of the configuration in this log for
// promises. Recovery runs rounds until the promises come from a majority
// of the configuration found in the adopted log itself: adopting a log can
// bring a newer configuration, whose majority must then be asked again.
func (m *Machine) recoveryRound() {
	rec := m.rec
	if rec.rounds++; rec.rounds > maxConfigRounds {
		m.failRecovery(fmt.Errorf("%w: the configuration kept changing during recovery", wire.ErrNoQuorum))
		return
	}
	rec.config = slices.Clone(m.config)
	if len(rec.config) == 0 {
		// A group that never had a configuration: only its first node
		// bootstraps it, alone, so there is nothing to adopt.
		m.recovered()
		return
	}
	if !isVoter(rec.config, m.cfg.Self.ID) {
		m.failRecovery(fmt.Errorf("%w: node %d is not among the %d voters", wire.ErrNotMember, m.cfg.Self.ID, len(rec.config)))
		return
	}
	m.nextID++
	rec.epoch = m.nextID
	own := promiseReply{id: m.cfg.Self.ID, addr: m.cfg.Self.Addr, resp: &wire.PromiseResp{OK: true, Promised: rec.ballot, LastIndex: m.last, LastBallot: m.lastBallot}}
	rec.tally = newPromiseTally(len(rec.config), own)
	rec.asked = 0
	if rec.tally.done() {
		m.adopt()
		return
	}
	for _, c := range rec.config {
		if c.ID != m.cfg.Self.ID {
			rec.asked++
			m.send(sentPromise, c.ID, m.addrOf(c.ID), rec.epoch, &wire.Promise{Group: m.cfg.Group, Ballot: rec.ballot})
		}
	}
}

func (m *Machine) onPromiseResp(s sentMsg, resp wire.Message, err error) {
	rec := m.rec
	rec.asked--
	a := promiseReply{id: s.to, addr: s.addr}
	if r, cerr := wire.As[*wire.PromiseResp](resp, err); cerr == nil {
		a.resp = r
	}
	higher, terr := rec.tally.add(a)
	if terr != nil {
		m.failRecovery(terr)
		m.observe(*higher)
		return
	}
	if rec.tally.done() {
		m.nextID++
		rec.epoch = m.nextID // later answers are not needed
		m.adopt()
		return
	}
	if rec.asked == 0 {
		m.failRecovery(fmt.Errorf("%w: %d of %d voters promised ballot %s", wire.ErrNoQuorum, len(rec.tally.got), len(rec.config), rec.ballot))
	}
}

// adopt copies the most up-to-date log among the promises into this
// node's log, unless it is this node's own.
func (m *Machine) adopt() {
	rec := m.rec
	rec.best = rec.tally.best()
	if rec.best.id == m.cfg.Self.ID {
		m.roundAdopted()
		return
	}
	m.log.Info("adopting log", "from", rec.best.id, "last_index", rec.best.resp.LastIndex, "last_ballot", rec.best.resp.LastBallot)
	st, err := m.cfg.Log.State()
	if err != nil {
		m.failRecovery(err)
		return
	}
	// Entries up to the applied index are committed, so equal on both
	// sides: fetch from just after it.
	rec.from = st.Applied + 1
	m.fetchNext()
}

func (m *Machine) fetchNext() {
	rec := m.rec
	if rec.from > rec.best.resp.LastIndex {
		m.roundAdopted()
		return
	}
	m.send(sentFetch, rec.best.id, rec.best.addr, rec.epoch, &wire.FetchLog{Group: m.cfg.Group, Ballot: rec.ballot, From: rec.from, MaxBytes: m.cfg.MaxBatchBytes})
}

func (m *Machine) onFetchResp(resp wire.Message, err error) {
	rec := m.rec
	if errCompacted(err) {
		m.restoring = workAdoptRestore
		m.rd.Restore = rec.best.addr
		return
	}
	if err != nil {
		m.failRecovery(fmt.Errorf("fetch log from member %d: %w", rec.best.id, err))
		return
	}
	fr, ok := resp.(*wire.FetchLogResp)
	if !ok || len(fr.Entries) == 0 {
		m.failRecovery(fmt.Errorf("%w: member %d sent no entries to adopt", wire.ErrNoQuorum, rec.best.id))
		return
	}
	st, err := m.cfg.Log.State()
	if err != nil {
		m.failRecovery(err)
		return
	}
	rec.fetched, rec.st = fr.Entries, st
	// The chunks of entries already held too: this node will count itself
	// as holding them once it leads.
	m.pending = pendingWork{kind: workAdoptHold}
	m.rd.Hold, m.rd.HoldFrom = fr.Entries, rec.best.addr
}

func (m *Machine) adoptHeld(err error) {
	rec := m.rec
	if rec == nil {
		return
	}
	if err != nil {
		m.failRecovery(err)
		return
	}
	es, err := newEntries(rec.fetched, rec.st.LastIndex, m.cfg.Log.BallotAt)
	if err != nil {
		m.failRecovery(err)
		return
	}
	rec.from = rec.fetched[len(rec.fetched)-1].Index + 1
	if len(es) == 0 {
		m.fetchNext()
		return
	}
	m.pending = pendingWork{kind: workAdoptStore}
	m.rd.Entries = es
}

func (m *Machine) adoptStored(err error) {
	if m.rec == nil {
		return
	}
	if err == nil {
		err = m.reloadTail(true)
	}
	if err != nil {
		m.failRecovery(err)
		return
	}
	m.fetchNext()
}

func (m *Machine) adoptRestored(err error) {
	if m.rec == nil {
		return
	}
	if err != nil {
		m.failRecovery(err)
		return
	}
	m.rec.from = m.last + 1
	m.fetchNext()
}

// roundAdopted ends a recovery round: this log holds the most up-to-date
// log of a majority of the configuration asked. If that log names another
// configuration, its majority is asked in turn.
func (m *Machine) roundAdopted() {
	if !sameMembers(m.rec.config, m.config) {
		m.recoveryRound()
		return
	}
	m.recovered()
}

// recovered ends a promotion: this node leads.
func (m *Machine) recovered() {
	req := m.rec.req
	m.becomeLeader(m.rec.ballot)
	m.reply(req, &wire.OKMsg{}, nil)
}

// failRecovery ends a promotion that cannot complete.
func (m *Machine) failRecovery(err error) {
	rec := m.rec
	if rec == nil {
		return
	}
	m.rec = nil
	m.reply(rec.req, nil, err)
	if m.role == Recovering {
		m.role = Follower
		m.changed()
	}
}

// ---- Answers ----

func (m *Machine) onResp(in InResp) {
	s, ok := m.sent[in.ID]
	if !ok {
		return
	}
	delete(m.sent, in.ID)
	if err := answerBallot(in.Resp); err != nil {
		m.log.Warn("ignoring an answer naming an impossible ballot", "peer", s.to, "addr", s.addr, "err", err)
		in.Resp, in.Err = nil, fmt.Errorf("%w: %w", wire.ErrBadMessage, err)
	}
	switch s.kind {
	case sentAppend:
		if l := m.lead; l != nil && l.epoch == s.epoch {
			m.onAppendResp(s, in.Resp, in.Err)
		}
	case sentProbe:
		if m.lead != nil {
			m.onProbeResp(s, in.Resp, in.Err)
		}
	case sentPromise:
		if m.rec != nil && m.rec.epoch == s.epoch && m.rec.tally != nil {
			m.onPromiseResp(s, in.Resp, in.Err)
		}
	case sentFetch:
		if m.rec != nil && m.rec.epoch == s.epoch {
			m.onFetchResp(in.Resp, in.Err)
		}
	}
}

// answerBallot checks the promise an answer names: one beyond
// meta.MaxTerm would depose this node for a ballot nobody can follow.
func answerBallot(resp wire.Message) error {
	switch r := resp.(type) {
	case *wire.AppendResp:
		return r.Promised.Check()
	case *wire.PromiseResp:
		return r.Promised.Check()
	}
	return nil
}

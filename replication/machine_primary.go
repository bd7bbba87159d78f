package replication

// The primary side of the Machine: proposals, replication to members,
// the commit index, membership changes and read confirmation.

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"shoal/meta"
	"shoal/wire"
)

// becomeLeader starts leading ballot b after recovery.
func (m *Machine) becomeLeader(b meta.Ballot) {
	m.rec = nil
	m.nextID++
	l := &leaderState{
		ballot:   b,
		first:    m.last + 1,
		epoch:    m.nextID,
		match:    map[uint64]uint64{m.cfg.Self.ID: m.last},
		next:     map[uint64]uint64{},
		inflight: map[uint64]uint64{},
		synced:   map[uint64]uint64{},
		starts:   map[uint64]uint64{},
		diskErr:  map[uint64]string{},
		noRoom:   map[uint64]bool{},
		rounds:   map[uint64]*readRound{},
	}
	m.lead = l
	m.role = Leader
	m.leaderAddr = m.cfg.Self.Addr
	m.log.Info("leading", "ballot", b, "last_index", m.last, "voters", len(m.config))
	m.rd.Leading = &b
	m.changed()
	// Every member is sent the first entry of the ballot with the first
	// Append (most hold the log before it).
	for _, id := range m.members() {
		l.next[id] = m.last + 1
	}
	// The first entry of a ballot commits every entry before it (they are
	// never committed by counting replicas on their own, as in Raft). A
	// group that never had a configuration starts with this node alone,
	// forming until it has GroupSize voters (see formed).
	first := meta.Op{Kind: meta.OpNoop}
	if len(m.config) == 0 {
		first = meta.Op{Kind: meta.OpConfig, Members: []meta.Member{m.cfg.Self}, Forming: m.cfg.GroupSize > 1}
	}
	m.appendOwn([]meta.Op{first}, nil)
}

// appendOwn puts ops in the log at this primary's ballot; reqs, if any,
// wait for their results.
func (m *Machine) appendOwn(ops []meta.Op, reqs []uint64) {
	l := m.lead
	es := make([]meta.Entry, len(ops))
	for i, op := range ops {
		es[i] = meta.Entry{Index: m.last + 1 + uint64(i), Ballot: l.ballot, Op: op}
		if reqs != nil {
			m.rd.Waits = append(m.rd.Waits, Wait{Req: reqs[i], Index: es[i].Index, Ballot: l.ballot})
		}
	}
	m.pending = pendingWork{kind: workLeaderStore, tail: es[len(es)-1], config: hasConfig(es)}
	m.rd.Entries, m.rd.Own = es, true
	l.unstable = es
	m.sendLacking()
}

// tail is the index of the last entry this primary has put in its log,
// durable or still being written.
func (m *Machine) tail() uint64 {
	if l := m.lead; l != nil && len(l.unstable) > 0 {
		return l.unstable[len(l.unstable)-1].Index
	}
	return m.last
}

// busy reports whether a write to the log is outstanding or asked for.
func (m *Machine) busy() bool {
	return m.pending.kind != workNone || m.restoring != workNone || len(m.rd.Entries) > 0
}

func (m *Machine) onPropose(in InPropose) {
	l := m.lead
	if l == nil || !l.ready || !m.formed() || m.busy() {
		err := m.notPrimary()
		for _, r := range in.Reqs {
			m.reply(r, nil, err)
		}
		return
	}
	ops, reqs := m.admit(in)
	if len(ops) > 0 {
		m.appendOwn(ops, reqs)
	}
}

// admit refuses the proposals of a batch that add data the group has no
// room for (see room.go) and returns the others.
func (m *Machine) admit(in InPropose) ([]meta.Op, []uint64) {
	adds := false
	for _, op := range in.Ops {
		adds = adds || dataCost(op) > 0
	}
	if !adds {
		return in.Ops, in.Reqs
	}
	errs := spaceCheck(in.Ops, m.cfg.Log.Room(), m.cfg.Self.ID, m.config, m.lead.noRoom)
	var ops []meta.Op
	var reqs []uint64
	for i, err := range errs {
		if err != nil {
			m.reply(in.Reqs[i], nil, err)
			continue
		}
		ops, reqs = append(ops, in.Ops[i]), append(reqs, in.Reqs[i])
	}
	return ops, reqs
}

func (m *Machine) leaderStored(err error, tail meta.Entry, config bool) {
	l := m.lead
	if l == nil {
		return
	}
	if err != nil {
		m.log.Error("append to local log", "err", err)
		m.stepDown(StepDownDisk, "local log write failed")
		return
	}
	// The write appended after the log's end: its last entry is the end
	// now, with no need to read it back.
	m.last, m.lastBallot = tail.Index, tail.Ballot
	l.unstable = nil
	if config {
		m.refreshConfig()
	}
	l.match[m.cfg.Self.ID] = m.last
	m.advanceCommit()
	m.sendLacking()
}

// members lists the members a primary replicates to: the voters and the
// live peers, itself excluded.
func (m *Machine) members() []uint64 {
	ids := map[uint64]bool{}
	for _, c := range m.config {
		ids[c.ID] = true
	}
	for id := range m.peers {
		ids[id] = true
	}
	delete(ids, m.cfg.Self.ID)
	return slices.Sorted(maps.Keys(ids))
}

// sendAll sends every member without an Append in flight what it lacks,
// or a heartbeat.
func (m *Machine) sendAll() {
	for _, id := range m.members() {
		m.sendTo(id)
	}
}

// sendLacking sends every member without an Append in flight the entries
// it lacks, if it lacks any.
func (m *Machine) sendLacking() {
	l := m.lead
	for _, id := range m.members() {
		if next, ok := l.next[id]; !ok || next <= m.tail() {
			m.sendTo(id)
		}
	}
}

// sendTo sends member id an Append unless one is in flight.
func (m *Machine) sendTo(id uint64) {
	l := m.lead
	if l == nil || l.inflight[id] != 0 {
		return
	}
	next, ok := l.next[id]
	if !ok {
		next = m.tail() + 1
		l.next[id] = next
	}
	msg, err := m.appendFor(next)
	if err != nil {
		m.log.Error("prepare append", "peer", id, "err", err)
		return
	}
	if l.isSynced(id) {
		msg.SyncedStart = l.synced[id]
	}
	l.inflight[id] = m.send(sentAppend, id, m.addrOf(id), l.epoch, msg)
}

// appendFor builds the Append that sends a member the entries from next:
// those of the log, then those still being written here.
func (m *Machine) appendFor(next uint64) (*wire.Append, error) {
	l := m.lead
	a := &wire.Append{Group: m.cfg.Group, Ballot: l.ballot, Leader: m.cfg.Self.Addr, PrevIndex: next - 1, Commit: m.commit}
	if prev := next - 1; prev > m.last && prev <= m.tail() {
		u := l.unstable[prev-(m.last+1):]
		a.PrevBallot, a.Entries = u[0].Ballot, upTo(u[1:], 0, m.cfg.MaxBatchBytes)
		return a, nil
	}
	b, err := m.cfg.Log.BallotAt(next - 1)
	if errCompacted(err) {
		return m.snapshotAppend(a)
	}
	if err != nil {
		return nil, err
	}
	a.PrevBallot = b
	if next <= m.last {
		es, err := m.cfg.Log.Entries(next, m.last, m.cfg.MaxBatchBytes)
		if errCompacted(err) {
			return m.snapshotAppend(a)
		}
		if err != nil {
			return nil, err
		}
		a.Entries = es
	}
	if len(l.unstable) > 0 && next <= m.last+1 && (len(a.Entries) == 0 || a.Entries[len(a.Entries)-1].Index == m.last) {
		size := 0
		for _, e := range a.Entries {
			size += entrySize(e)
		}
		if u := upTo(l.unstable, size, m.cfg.MaxBatchBytes); len(u) > 0 {
			a.Entries = slices.Concat(a.Entries, u)
		}
	}
	return a, nil
}

// upTo returns the first of es that fit in max bytes with size taken
// already, by entrySize; the first entry always fits an empty message.
func upTo(es []meta.Entry, size, max int) []meta.Entry {
	for i, e := range es {
		size += entrySize(e)
		if size > max && (i > 0 || size > entrySize(e)) {
			return es[:i]
		}
	}
	return es
}

// entrySize estimates, from above, the bytes of e's encoding: what it
// carries that can be large, and a generous allowance for the rest.
func entrySize(e meta.Entry) int {
	n := entryOverhead + len(e.Op.Path) + len(e.Op.To) + len(e.Op.Target) + len(e.Op.Members)*entryOverhead
	if f := e.Op.File; f != nil {
		n += len(f.Data) + len(f.Chunks)*entryChunkRef
	}
	return n
}

// snapshotAppend turns a into the message for a member that needs entries
// this log no longer holds: it names the compaction point.
func (m *Machine) snapshotAppend(a *wire.Append) (*wire.Append, error) {
	st, err := m.cfg.Log.State()
	if err != nil {
		return nil, err
	}
	a.Snapshot, a.PrevIndex, a.PrevBallot = true, st.SnapIndex, st.SnapBallot
	return a, nil
}

func (m *Machine) onTick() {
	if m.lead != nil {
		m.sendAll()
		m.probeLate()
	}
}

func (m *Machine) onPeers(in InPeers) {
	old := m.peers
	m.peers = map[uint64]meta.Member{}
	m.peersGen++
	var fresh []uint64
	for _, p := range in.Peers {
		if p.ID == m.cfg.Self.ID {
			continue
		}
		m.peers[p.ID] = p
		if _, ok := old[p.ID]; !ok {
			fresh = append(fresh, p.ID)
		}
	}
	if m.lead == nil || len(fresh) == 0 {
		return
	}
	m.rd.Repair = true
	slices.Sort(fresh)
	for _, id := range fresh {
		m.sendTo(id)
	}
}

// onAppendResp records a member's answer to an Append.
func (m *Machine) onAppendResp(s sentMsg, resp wire.Message, err error) {
	l := m.lead
	id := s.to
	delete(l.inflight, id)
	r, cerr := wire.As[*wire.AppendResp](resp, err)
	if errors.Is(cerr, wire.ErrBadMessage) {
		m.log.Warn("append answered with something else", "peer", id, "addr", s.addr, "err", cerr)
		return
	}
	if errors.Is(cerr, meta.ErrDiskFailed) {
		if _, known := l.diskErr[id]; !known {
			m.log.Warn("a member's disk refuses writes: it is not counted as synced until it takes an append again",
				"peer", id, "addr", s.addr, "err", cerr)
		}
		l.diskErr[id] = cerr.Error()
		return
	}
	if cerr != nil {
		m.log.Debug("append failed", "peer", id, "addr", s.addr, "err", cerr)
		return
	}
	l.starts[id] = r.Start
	if r.NoRoom != l.noRoom[id] {
		m.log.Info("a member's disk room for new data changed", "peer", id, "addr", s.addr, "no_room", r.NoRoom)
		if r.NoRoom {
			l.noRoom[id] = true
		} else {
			delete(l.noRoom, id)
		}
	}
	if l.ballot.Less(r.Promised) {
		m.observe(r.Promised)
		return
	}
	if r.Installing {
		return
	}
	p, more := progress{match: l.match[id], next: l.next[id]}.appendAnswer(s.append, r, m.tail())
	l.next[id] = p.next
	if r.OK {
		// Only entries written prove the disk takes writes again: an
		// empty Append is answered without one.
		if _, known := l.diskErr[id]; known && s.append != nil && len(s.append.Entries) > 0 {
			delete(l.diskErr, id)
			m.log.Info("a member's disk takes writes again", "peer", id, "addr", s.addr)
		}
		l.match[id] = p.match
		m.advanceCommit()
	}
	if more && m.lead == l && m.isMember(id) {
		m.sendTo(id)
	}
}

func (m *Machine) isMember(id uint64) bool {
	_, live := m.peers[id]
	return live || isVoter(m.config, id)
}

// advanceCommit commits what a majority of voters holds, but only from
// this ballot's first entry on (Raft's rule for older entries).
func (m *Machine) advanceCommit() {
	l := m.lead
	if l == nil {
		return
	}
	// Never past what is durable here: the primary applies, and answers
	// reads, from its own log.
	if c := min(commitIndex(m.config, l.match, l.first, m.commit), m.last); c > m.commit {
		m.commit = c
		m.rd.Commit = c
	}
	if l.changing != 0 && m.commit >= l.changing {
		if l.changing == l.formedAt {
			m.log.Info("group formed: taking requests", "voters", len(m.config))
			m.changed()
		}
		l.changing = 0
	}
	m.maybeAddMember()
}

// maybeAddMember adds one caught-up non-voter to the configuration. The
// entry that brings a forming group to GroupSize voters says it formed;
// one whose configuration is that large already (its primary was started
// with a smaller group size) records just that.
func (m *Machine) maybeAddMember() {
	l := m.lead
	if !l.ready || l.changing != 0 || m.busy() {
		return
	}
	members := m.config
	p, ok := memberToAdd(m.config, m.peers, m.cfg.GroupSize, l.match, m.commit, l.isSynced)
	if ok {
		members = append(slices.Clone(m.config), p)
		m.log.Info("adding member to group", "id", p.ID, "name", p.Name, "addr", p.Addr, "voters", len(members))
	} else if !m.forming || len(m.config) < m.cfg.GroupSize {
		return
	}
	op := meta.Op{Kind: meta.OpConfig, Members: members, Forming: m.forming && len(members) < m.cfg.GroupSize}
	l.changing = m.last + 1
	if m.forming && !op.Forming {
		l.formedAt = l.changing
	}
	m.appendOwn([]meta.Op{op}, nil)
}

// onRemove takes a voting member out of the configuration through the
// log. Like every configuration change it goes alone: it fails with
// ErrNotReady while another change is being committed.
func (m *Machine) onRemove(in InRemove) {
	l := m.lead
	switch {
	case l == nil || !l.ready:
		m.reply(in.Req, nil, m.notPrimary())
		return
	case in.ID == m.cfg.Self.ID:
		m.reply(in.Req, nil, errors.New("replication: the primary cannot remove itself"))
		return
	case !isVoter(m.config, in.ID):
		m.reply(in.Req, &wire.OKMsg{}, nil)
		return
	case l.changing != 0 || m.busy():
		m.reply(in.Req, nil, fmt.Errorf("%w: another configuration change is in progress", wire.ErrNotReady))
		return
	}
	var members []meta.Member
	for _, c := range m.config {
		if c.ID != in.ID {
			members = append(members, c)
		}
	}
	m.log.Info("removing member from group", "id", in.ID, "voters", len(members))
	l.changing = m.last + 1
	m.appendOwn([]meta.Op{{Kind: meta.OpConfig, Members: members, Forming: m.forming}}, []uint64{in.Req})
}

// isSynced reports whether a repair round found the member holding every
// chunk in the process start it runs now (a restart may have wiped it),
// and its disk takes the entries it is sent.
func (l *leaderState) isSynced(id uint64) bool {
	s, ok := l.synced[id]
	_, diskErr := l.diskErr[id]
	return ok && s != 0 && s == l.starts[id] && !diskErr
}

// ---- Reads ----

// onRead starts one confirmation round for a batch of reads (the ReadIndex
// method): note the commit index, confirm with a majority that no higher
// ballot exists; the driver then waits until the entries up to that index
// are applied and reads locally.
func (m *Machine) onRead(in InRead) {
	l := m.lead
	if l == nil || !l.ready || !m.formed() {
		err := m.notPrimary()
		for _, r := range in.Reqs {
			m.rd.Reads = append(m.rd.Reads, ReadDone{Req: r, Err: err})
		}
		return
	}
	if len(l.rounds) > 0 {
		// One round at a time: the reads that arrive while one is out
		// share the next, which starts as soon as this one is decided.
		l.readQueue = append(l.readQueue, in.Reqs...)
		return
	}
	m.startRound(in.Reqs)
}

// startRound confirms with a majority, from now on, that this node still
// leads: the reads reqs then see every entry through the commit index.
// It probes only as many members as the majority needs, those that
// decided the last round first: each probe costs the member and this node
// a call, and a round often serves a single read. Another member is asked
// for each answer that does not count (none came), and every one left at
// the next tick (onTick, every heartbeat), so a member that does not
// answer holds the round up by one heartbeat at most, and the round after
// asks first the member that decided this one.
func (m *Machine) startRound(reqs []uint64) {
	l := m.lead
	r := &readRound{reqs: reqs, index: m.commit, tally: confirmTally{ballot: l.ballot, need: confirmNeed(m.config, m.cfg.Self.ID)}}
	if r.tally.need <= 0 {
		m.finishRound(r, nil)
		return
	}
	m.nextID++
	epoch := m.nextID
	l.rounds[epoch] = r
	r.unasked = m.probeOrder()
	m.probe(epoch, r, r.tally.need)
}

// probeOrder is the order in which a round asks the other members: those
// that decided the last round, in the order their answers came, then
// those alive in the gossip view, then the rest, these two in the
// configuration's order.
func (m *Machine) probeOrder() []uint64 {
	order := make([]uint64, 0, len(m.config))
	add := func(id uint64) {
		if id != m.cfg.Self.ID && isVoter(m.config, id) && !slices.Contains(order, id) {
			order = append(order, id)
		}
	}
	for _, id := range m.lead.confirmers {
		add(id)
	}
	for _, c := range m.config {
		if _, alive := m.peers[c.ID]; alive {
			add(c.ID)
		}
	}
	for _, c := range m.config {
		add(c.ID)
	}
	return order
}

// probe sends round epoch's probe to up to n more of its unasked members.
func (m *Machine) probe(epoch uint64, r *readRound, n int) {
	l := m.lead
	for ; n > 0 && len(r.unasked) > 0; n-- {
		id := r.unasked[0]
		r.unasked = r.unasked[1:]
		r.waiting++
		m.send(sentProbe, id, m.addrOf(id), epoch, &wire.Append{Group: m.cfg.Group, Ballot: l.ballot, Leader: m.cfg.Self.Addr, Probe: true})
	}
}

// probeLate asks every member a read round has not asked yet: those it
// asked have not decided it by this tick (a round that began just before
// it asks the rest early, which costs calls, not correctness).
func (m *Machine) probeLate() {
	l := m.lead
	for _, epoch := range slices.Sorted(maps.Keys(l.rounds)) {
		if r := l.rounds[epoch]; len(r.unasked) > 0 {
			m.probe(epoch, r, len(r.unasked))
		}
	}
}

func (m *Machine) onProbeResp(s sentMsg, resp wire.Message, err error) {
	l := m.lead
	r := l.rounds[s.epoch]
	if r == nil {
		return
	}
	r.waiting--
	ar, cerr := wire.As[*wire.AppendResp](resp, err)
	if cerr != nil {
		ar = nil
	}
	done, higher := r.tally.add(ar)
	if ar != nil && ar.OK && higher == nil {
		r.confirmed = append(r.confirmed, s.to)
	}
	if !done && higher == nil {
		// Undecided: ask as many more as the majority still needs
		// beyond the answers awaited (none when enough are out; one
		// for an answer that did not count).
		m.probe(s.epoch, r, r.tally.need-r.tally.got-r.waiting)
	}
	switch {
	case higher != nil:
		delete(l.rounds, s.epoch)
		m.finishRound(r, fmt.Errorf("%w: a member promised %s", wire.ErrDeposed, *higher))
		m.observe(*higher)
	case done:
		delete(l.rounds, s.epoch)
		l.confirmers = r.confirmed
		m.finishRound(r, nil)
	case r.waiting == 0:
		delete(l.rounds, s.epoch)
		m.finishRound(r, fmt.Errorf("%w: leadership confirmed by %d of %d other voters", wire.ErrNoQuorum, r.tally.got, len(m.config)-1))
	default:
		return
	}
	if m.lead == l && len(l.rounds) == 0 && len(l.readQueue) > 0 {
		q := l.readQueue
		l.readQueue = nil
		m.startRound(q)
	}
}

func (m *Machine) finishRound(r *readRound, err error) {
	for _, q := range r.reqs {
		m.rd.Reads = append(m.rd.Reads, ReadDone{Req: q, Index: r.index, Err: err})
	}
}

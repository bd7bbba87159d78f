package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"shoal/meta"
	"shoal/wire"
)

// leader is the volatile state of a primary for one ballot. It dies with
// the ballot: a node that steps down cancels ctx and drops it.
type leader struct {
	ballot meta.Ballot
	ctx    context.Context
	cancel context.CancelFunc
	ready  bool   // the first entry of this ballot is committed
	first  uint64 // index of that entry; nothing before it counts for commit
	match  map[uint64]uint64
	next   map[uint64]uint64
	repl   map[uint64]chan struct{} // running replicators' wake-ups
	// changing is set while a configuration change is proposed and not yet
	// committed: changes go one member at a time, so any two successive
	// majorities overlap.
	changing  bool
	proposals chan *proposal
	round     *readRound
	// synced holds, for members a repair round of this ballot found
	// holding every chunk of the group, the process start it saw; only
	// such members, in that same start, may become voters.
	synced map[uint64]uint64
	// starts is each member's last reported process start.
	starts map[uint64]uint64
	// chunks is what the last repair round learned of each member.
	chunks   map[uint64]memberChunks
	progress wire.RepairProgress
	// repairWake asks for a repair round now (a member appeared).
	repairWake chan struct{}
}

type proposal struct {
	op     meta.Op
	ballot meta.Ballot
	done   chan proposalResult // buffered: the sender never blocks
}

type proposalResult struct {
	result meta.Result
	err    error
}

// maxBatch bounds the proposals written with one fsync.
const maxBatch = 512

// becomeLeaderLocked starts leading with ballot b after recovery.
func (n *Node) becomeLeaderLocked(b meta.Ballot) {
	ctx, cancel := context.WithCancel(n.ctx)
	l := &leader{
		ballot:     b,
		ctx:        ctx,
		cancel:     cancel,
		first:      n.last + 1,
		match:      map[uint64]uint64{n.cfg.ID: n.last},
		next:       map[uint64]uint64{},
		repl:       map[uint64]chan struct{}{},
		proposals:  make(chan *proposal, maxBatch),
		synced:     map[uint64]uint64{},
		starts:     map[uint64]uint64{},
		chunks:     map[uint64]memberChunks{},
		repairWake: make(chan struct{}, 1),
	}
	n.lead = l
	n.role = Leader
	n.leaderAddr = n.cfg.Addr
	n.log.Info("leading", "ballot", b, "last_index", n.last, "voters", len(n.config))
	n.wg.Add(2)
	go n.appendLoop(l)
	go n.chunkLoop(l)
	n.startReplicatorsLocked()
	// The first entry of a ballot commits every entry before it (they are
	// never committed by counting replicas on their own, as in Raft). A
	// group that never had a configuration starts with this node alone.
	first := meta.Op{Kind: meta.OpNoop}
	if len(n.config) == 0 {
		first = meta.Op{Kind: meta.OpConfig, Members: []meta.Member{n.self()}}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_, err := n.submit(l, first, nil)
		n.mu.Lock()
		defer n.mu.Unlock()
		if err != nil || n.lead != l {
			return
		}
		l.ready = true
		n.log.Info("primary ready", "ballot", b)
		n.notifyChanged()
	}()
	n.notifyChanged()
}

func (n *Node) self() meta.Member {
	return meta.Member{ID: n.cfg.ID, Name: n.cfg.Name, Addr: n.cfg.Addr}
}

// startReplicatorsLocked runs one replicator per voter and live peer.
func (n *Node) startReplicatorsLocked() {
	l := n.lead
	ids := map[uint64]bool{}
	for _, m := range n.config {
		ids[m.ID] = true
	}
	for id := range n.peers {
		ids[id] = true
	}
	delete(ids, n.cfg.ID)
	for id := range ids {
		if _, ok := l.repl[id]; ok {
			continue
		}
		wake := make(chan struct{}, 1)
		l.repl[id] = wake
		if _, ok := l.next[id]; !ok {
			l.next[id] = n.last + 1
		}
		n.wg.Add(1)
		go n.replicate(l, id, wake)
	}
}

func (l *leader) wakeAll() {
	for _, w := range l.repl {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Propose commits op through the log and returns its result once applied.
// An error wrapping ErrDeposed or a context error means the outcome is
// unknown; ErrNotPrimary and ErrNotReady mean the op was not proposed.
func (n *Node) Propose(ctx context.Context, op meta.Op) (meta.Result, error) {
	n.mu.Lock()
	l := n.lead
	if l == nil || !l.ready {
		err := n.notPrimaryLocked()
		n.mu.Unlock()
		return meta.Result{}, err
	}
	n.mu.Unlock()
	if op.Time == 0 {
		op.Time = time.Now().UnixNano()
	}
	return n.submit(l, op, ctx.Done())
}

func (n *Node) submit(l *leader, op meta.Op, cancel <-chan struct{}) (meta.Result, error) {
	p := &proposal{op: op, done: make(chan proposalResult, 1)}
	if l.ctx.Err() != nil {
		return meta.Result{}, fmt.Errorf("%w: primary stepped down", wire.ErrNotPrimary)
	}
	select {
	case l.proposals <- p:
	case <-l.ctx.Done():
		return meta.Result{}, fmt.Errorf("%w: primary stepped down", wire.ErrNotPrimary)
	case <-cancel:
		return meta.Result{}, fmt.Errorf("%w: gave up before the op was proposed", wire.ErrNoQuorum)
	}
	select {
	case r := <-p.done:
		return r.result, r.err
	case <-l.ctx.Done():
		// A proposal that reached the queue after the append loop drained
		// it on stepping down is never answered; without this case a
		// caller with no deadline (the first entry of a ballot) would wait
		// forever, and Close with it.
		select {
		case r := <-p.done:
			return r.result, r.err
		default:
			return meta.Result{}, fmt.Errorf("%w: stepped down before the op was answered", wire.ErrDeposed)
		}
	case <-cancel:
		return meta.Result{}, fmt.Errorf("%w: not committed in time (the write may still take effect)", wire.ErrNoQuorum)
	}
}

// appendLoop writes batches of proposals to the local log, one fsync per
// batch (group commit), then wakes the replicators.
func (n *Node) appendLoop(l *leader) {
	defer n.wg.Done()
	for {
		var batch []*proposal
		select {
		case <-l.ctx.Done():
			n.failQueued(l)
			return
		case p := <-l.proposals:
			batch = append(batch, p)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case p := <-l.proposals:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if !n.appendBatch(l, batch) {
			n.failQueued(l)
			return
		}
	}
}

func (n *Node) appendBatch(l *leader, batch []*proposal) bool {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	n.mu.Lock()
	if n.lead != l {
		n.mu.Unlock()
		failAll(batch, fmt.Errorf("%w: primary stepped down", wire.ErrNotPrimary))
		return false
	}
	entries := make([]meta.Entry, len(batch))
	for i, p := range batch {
		p.ballot = l.ballot
		entries[i] = meta.Entry{Index: n.last + 1 + uint64(i), Ballot: l.ballot, Op: p.op}
		n.waiters[entries[i].Index] = p
	}
	n.mu.Unlock()
	err := n.db.Append(entries)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.log.Error("append to local log", "err", err)
		n.stepDownLocked("local log write failed")
		return false
	}
	tail := entries[len(entries)-1]
	n.last, n.lastBallot = tail.Index, tail.Ballot
	if hasConfig(entries) {
		n.refreshConfigLocked()
		n.startReplicatorsLocked()
	}
	l.match[n.cfg.ID] = n.last
	n.advanceCommitLocked(l)
	l.wakeAll()
	return true
}

func failAll(batch []*proposal, err error) {
	for _, p := range batch {
		p.done <- proposalResult{err: err}
	}
}

func (n *Node) failQueued(l *leader) {
	for {
		select {
		case p := <-l.proposals:
			p.done <- proposalResult{err: fmt.Errorf("%w: primary stepped down", wire.ErrNotPrimary)}
		default:
			return
		}
	}
}

// advanceCommitLocked commits what a majority of voters holds, but only
// from this ballot's first entry on (Raft's rule for older entries).
func (n *Node) advanceCommitLocked(l *leader) {
	if c := commitIndex(n.config, l.match, l.first, n.commit); c > n.commit {
		n.commit = c
		n.wakeApply()
	}
	n.maybeAddMemberLocked(l)
}

// maybeAddMemberLocked adds one caught-up non-voter to the configuration.
func (n *Node) maybeAddMemberLocked(l *leader) {
	if !l.ready || l.changing {
		return
	}
	p, ok := memberToAdd(n.config, n.peers, n.cfg.GroupSize, l.match, n.commit, l.isSynced)
	if !ok {
		return
	}
	members := append(append([]meta.Member(nil), n.config...), p)
	l.changing = true
	n.log.Info("adding member to group", "id", p.ID, "name", p.Name, "addr", p.Addr, "voters", len(members))
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_, err := n.submit(l, meta.Op{Kind: meta.OpConfig, Members: members}, nil)
		if err != nil {
			n.log.Warn("add member", "id", p.ID, "err", err)
		}
		n.mu.Lock()
		l.changing = false
		n.mu.Unlock()
	}()
}

// replicate keeps one member's log equal to the primary's: it sends what
// the member lacks, backs off on a mismatch, tells a member behind the
// compacted log to pull a snapshot, and heartbeats when idle.
func (n *Node) replicate(l *leader, id uint64, wake chan struct{}) {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Heartbeat)
	defer tick.Stop()
	for {
		n.mu.Lock()
		addr := n.addrOfLocked(id)
		_, live := n.peers[id]
		if n.lead != l || (!live && !isVoter(n.config, id)) {
			delete(l.repl, id)
			n.mu.Unlock()
			return
		}
		next, last, commit, synced := l.next[id], n.last, n.commit, l.synced[id]
		if !l.isSynced(id) {
			synced = 0
		}
		n.mu.Unlock()
		more := false
		if msg, err := n.appendFor(l, next, last, commit); err != nil {
			n.log.Error("prepare append", "peer", id, "err", err)
		} else {
			msg.SyncedStart = synced
			more = n.sendAppend(l, id, addr, msg)
		}
		if more {
			continue
		}
		select {
		case <-l.ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

func (n *Node) appendFor(l *leader, next, last, commit uint64) (*wire.Append, error) {
	m := &wire.Append{Group: n.cfg.Group, Ballot: l.ballot, Leader: n.cfg.Addr, PrevIndex: next - 1, Commit: commit}
	b, err := n.db.BallotAt(next - 1)
	if errCompacted(err) {
		return n.snapshotAppend(m)
	}
	if err != nil {
		return nil, err
	}
	m.PrevBallot = b
	if next <= last {
		es, err := n.db.Entries(next, last, n.cfg.MaxBatchBytes)
		if errCompacted(err) {
			return n.snapshotAppend(m)
		}
		if err != nil {
			return nil, err
		}
		m.Entries = es
	}
	return m, nil
}

// snapshotAppend turns m into the message for a member that needs entries
// this log no longer holds: it names the compaction point.
func (n *Node) snapshotAppend(m *wire.Append) (*wire.Append, error) {
	st, err := n.db.State()
	if err != nil {
		return nil, err
	}
	m.Snapshot, m.PrevIndex, m.PrevBallot = true, st.SnapIndex, st.SnapBallot
	return m, nil
}

// sendAppend delivers one Append and records the answer. It reports
// whether there is more to send right away.
func (n *Node) sendAppend(l *leader, id uint64, addr string, m *wire.Append) bool {
	ctx, cancel := context.WithTimeout(l.ctx, n.cfg.RPCTimeout)
	defer cancel()
	r, err := wire.Call[*wire.AppendResp](ctx, n.cfg.Transport, addr, m)
	if errors.Is(err, wire.ErrBadMessage) {
		n.log.Warn("append answered with something else", "peer", id, "addr", addr, "err", err)
		return false
	}
	if err != nil {
		n.log.Debug("append failed", "peer", id, "addr", addr, "err", err)
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lead != l {
		return false
	}
	l.starts[id] = r.Start
	if l.ballot.Less(r.Promised) {
		if err := n.observeBallotLocked(r.Promised); err != nil {
			n.log.Error("record higher ballot", "err", err)
		}
		return false
	}
	if r.Installing {
		return false
	}
	p, more := progress{match: l.match[id], next: l.next[id]}.appendAnswer(m, r, n.last)
	l.next[id] = p.next
	if r.OK {
		l.match[id] = p.match
		n.advanceCommitLocked(l)
	}
	return more
}

// RemoveMember takes a voting member out of the group's configuration
// through the log, for example one dead longer than the replacement delay.
// Like every configuration change it goes alone: it fails with ErrNotReady
// while another change is being committed.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	n.mu.Lock()
	l := n.lead
	if l == nil || !l.ready {
		err := n.notPrimaryLocked()
		n.mu.Unlock()
		return err
	}
	if id == n.cfg.ID {
		n.mu.Unlock()
		return fmt.Errorf("replication: the primary cannot remove itself")
	}
	if !isVoter(n.config, id) {
		n.mu.Unlock()
		return nil
	}
	if l.changing {
		n.mu.Unlock()
		return fmt.Errorf("%w: another configuration change is in progress", wire.ErrNotReady)
	}
	var members []meta.Member
	for _, m := range n.config {
		if m.ID != id {
			members = append(members, m)
		}
	}
	l.changing = true
	n.mu.Unlock()
	n.log.Info("removing member from group", "id", id, "voters", len(members))
	_, err := n.submit(l, meta.Op{Kind: meta.OpConfig, Members: members}, ctx.Done())
	n.mu.Lock()
	l.changing = false
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove member %d: %w", id, err)
	}
	return nil
}

// isSynced reports whether a repair round found the member holding every
// chunk in the process start it runs now (a restart may have wiped it).
func (l *leader) isSynced(id uint64) bool {
	s, ok := l.synced[id]
	return ok && s != 0 && s == l.starts[id]
}

package replication

// The replication protocol as a state machine, the way etcd raft shapes
// it: a Machine has no goroutine, lock, clock or network. Step takes one
// input (a peer's request or answer, a batch of proposals, a tick, a new
// gossip view, the outcome of durable work) and returns a Ready: the work
// to carry out, in order. A node's driver (driver.go) is the only caller;
// the protocol scripts under testdata/ are another.
//
// The machine reads its durable log through Log, a read-only view; it
// never writes. What it wants written comes back in Ready, and the driver
// reports the outcome with the next input (Held, Stored, Restored,
// Applied), so the machine's picture of its log changes only once the
// change is durable.

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// Log is the read-only view of a member's durable log that the machine
// decides on (the role etcd raft's Storage plays). *store.DB is one.
type Log interface {
	State() (store.LogState, error)
	BallotAt(index uint64) (meta.Ballot, error)
	Entries(lo, hi uint64, maxBytes int) ([]meta.Entry, error)
	Config() ([]meta.Member, error)
}

// MachineConfig is what a Machine needs to know of its member.
type MachineConfig struct {
	Self          meta.Member
	Group         string
	GroupSize     int
	MaxBatchBytes int
	// Start identifies this process start to the primary (AppendResp.Start).
	Start  uint64
	Log    Log
	Logger *slog.Logger
}

// Input is one thing that happened to a member. The inputs are the types
// below whose names begin with In.
type Input interface{ input() }

// Requests: each is answered by a Reply with its Req, at once or later.
type (
	// InAppend is a primary's Append. View is the primary's ballot in this
	// node's gossip view, if HasView: a lower ballot is refused.
	InAppend struct {
		Req     uint64
		M       *wire.Append
		View    meta.Ballot
		HasView bool
	}
	// InPromise is a recovering primary's Promise.
	InPromise struct {
		Req uint64
		M   *wire.Promise
	}
	// InFetchLog asks for log entries, from a recovering primary.
	InFetchLog struct {
		Req uint64
		M   *wire.FetchLog
	}
	// InPropose is a batch of client operations for the log. Each is
	// answered by a Reply (refused) or by a Wait (in the log, answered
	// when applied).
	InPropose struct {
		Reqs []uint64
		Ops  []meta.Op
	}
	// InRemove takes a voter out of the configuration.
	InRemove struct {
		Req uint64
		ID  uint64
	}
	// InPromote makes this node primary with Ballot, once it has
	// recovered the log from a majority.
	InPromote struct {
		Req    uint64
		Ballot meta.Ballot
	}
	// InRead asks for read confirmations: each is answered by a ReadDone
	// once a majority confirmed, after the request, that this node still
	// leads.
	InRead struct{ Reqs []uint64 }
)

// Events and outcomes.
type (
	// InTick is one heartbeat interval passing.
	InTick struct{}
	// InPeers is the group's live members in the gossip view.
	InPeers struct{ Peers []meta.Member }
	// InStepDown ends leadership (gossip shows a higher primary).
	InStepDown struct{ Why string }
	// InResp is the answer to a Send (Resp) or why none came (Err).
	InResp struct {
		ID   uint64
		Resp wire.Message
		Err  error
	}
	// InHeld reports the chunks of Ready.Hold stored here (or why not).
	InHeld struct{ Err error }
	// InStored reports Ready.Entries durable in the log (or why not).
	InStored struct{ Err error }
	// InRestored reports a snapshot from Ready.Restore installed (or
	// why not); Promised is the promise on disk after it.
	InRestored struct {
		Promised meta.Ballot
		Err      error
	}
	// InApplied reports the entries through Index applied.
	InApplied struct{ Index uint64 }
	// InRepaired reports a repair round: Synced maps each member found
	// holding every chunk of the group to the process start it runs.
	InRepaired struct{ Synced map[uint64]uint64 }
)

func (InAppend) input()   {}
func (InPromise) input()  {}
func (InFetchLog) input() {}
func (InPropose) input()  {}
func (InRemove) input()   {}
func (InPromote) input()  {}
func (InRead) input()     {}
func (InTick) input()     {}
func (InPeers) input()    {}
func (InStepDown) input() {}
func (InResp) input()     {}
func (InHeld) input()     {}
func (InStored) input()   {}
func (InRestored) input() {}
func (InApplied) input()  {}
func (InRepaired) input() {}

// Ready is the work one Step asks for, to be carried out in field order.
// Hold, Entries and Restore each end with an input reporting the outcome
// (InHeld, InStored, InRestored), which the driver steps before anything
// else: the machine never has two of them outstanding.
type Ready struct {
	// Promise is a ballot to record durably before anything below.
	Promise *meta.Ballot
	// Hold names entries whose chunks must be stored here, fetched from
	// HoldFrom if missing, before any entry is written.
	Hold     []meta.Entry
	HoldFrom string
	// Entries are to be appended to the log, replacing any entries at or
	// after the first one's index.
	Entries []meta.Entry
	// Own: Entries are a primary's own new entries, sent to no one yet.
	// The driver may write them in the background and meanwhile step
	// answers, ticks, gossip and reads (none of which writes the log), but
	// no request, until it steps InStored.
	Own bool
	// Restore is the address of a member to pull a snapshot from and
	// install in place of this log.
	Restore string
	// Send lists messages to peers; each answer comes back as InResp.
	Send []Send
	// Replies answer requests.
	Replies []Reply
	// Waits are proposals now in the log: answer Req with the result of
	// applying Index, if the entry there still has Ballot.
	Waits []Wait
	// Reads are confirmed (or failed) read requests.
	Reads []ReadDone
	// Commit, when non-zero, is a new commit index: apply through it.
	Commit uint64
	// Deposed: this node stopped leading; every waiting proposal's
	// outcome is unknown.
	Deposed bool
	// Leading is set when this node starts leading a ballot.
	Leading *meta.Ballot
	// Repair asks the chunk maintainer for a round now (a member
	// appeared).
	Repair bool
	// Changed: role, readiness, primary, configuration or sync changed.
	Changed bool
}

// Send is one message to a peer.
type Send struct {
	ID   uint64
	To   uint64
	Addr string
	Msg  wire.Message
}

// Reply answers request Req.
type Reply struct {
	Req uint64
	Msg wire.Message
	Err error
}

// Wait is a proposal in the log at Index with Ballot.
type Wait struct {
	Req    uint64
	Index  uint64
	Ballot meta.Ballot
}

// ReadDone answers read request Req: once the entries through Index are
// applied, a local read reflects every write acknowledged before it.
type ReadDone struct {
	Req   uint64
	Index uint64
	Err   error
}

// Machine is one member's replication state.
type Machine struct {
	cfg MachineConfig
	log *slog.Logger

	promised   meta.Ballot
	role       Role
	leaderAddr string
	commit     uint64
	applied    uint64
	last       uint64
	lastBallot meta.Ballot
	config     []meta.Member
	peers      map[uint64]meta.Member // live group members, self excluded
	peersGen   uint64                 // counts changes of peers, which is replaced, never changed in place
	installing bool
	// caughtUp: since this start, an append from the primary left this
	// log covering the primary's commit index. chunksSynced: since this
	// start, the primary found this member holding every chunk of the
	// group. A member is in sync only with both: one rebuilt from an empty
	// disk must not lead.
	caughtUp     bool
	chunksSynced bool

	lead *leaderState
	rec  *recovery

	// pending is the durable write outstanding (at most one): the driver
	// reports its outcome before it steps anything else.
	pending pendingWork
	// restoring is a snapshot transfer under way (workInstall or
	// workAdoptRestore): it takes a while, and until it is installed no
	// Append writes to this log, which the install replaces.
	restoring workKind
	// sent tracks this machine's messages awaiting an answer.
	sent   map[uint64]sentMsg
	nextID uint64

	rd Ready // being built by the current Step
}

// pendingWork is what to do when the outstanding Held, Stored or
// Restored arrives.
type pendingWork struct {
	kind   workKind
	append *followerAppend
	// config: the primary's entries carry a configuration.
	config bool
}

type workKind int

const (
	workNone workKind = iota
	workFollowerHold
	workFollowerStore
	workLeaderStore
	workAdoptHold
	workAdoptStore
	// Kinds of restoring.
	workAdoptRestore
	workInstall
)

// followerAppend is an accepted Append waiting for its chunks and entries
// to be durable before it is answered.
type followerAppend struct {
	req  uint64
	m    *wire.Append
	plan appendPlan
	st   store.LogState
	// configMayChange: the entries carry a configuration, or replace
	// entries this log held, which may have carried one.
	configMayChange bool
}

type sentKind int

const (
	sentAppend sentKind = iota
	sentProbe
	sentPromise
	sentFetch
)

type sentMsg struct {
	kind   sentKind
	to     uint64
	addr   string
	append *wire.Append
	// epoch ties the message to the leadership, read round or recovery
	// round that sent it; an answer for another is stale.
	epoch uint64
}

// leaderState is the volatile state of a primary for one ballot.
type leaderState struct {
	ballot meta.Ballot
	ready  bool   // the first entry of this ballot is applied
	first  uint64 // index of that entry; nothing before it counts for commit
	epoch  uint64
	match  map[uint64]uint64
	next   map[uint64]uint64
	// inflight holds the ID of each member's outstanding Append.
	inflight map[uint64]uint64
	// changing is the index of a configuration change not yet committed
	// (0: none): changes go one member at a time, so any two successive
	// majorities overlap.
	changing uint64
	// synced holds, for members a repair round of this ballot found
	// holding every chunk, the process start it saw; starts is each
	// member's last reported process start. Only a synced member, in that
	// same start, may become a voter.
	synced map[uint64]uint64
	starts map[uint64]uint64
	rounds map[uint64]*readRound
	// readQueue holds the reads waiting for the next round.
	readQueue []uint64
}

// readRound is one confirmation that this node still leads: every read
// that joined before its probes went out is linearizable once it succeeds.
type readRound struct {
	reqs    []uint64
	index   uint64
	tally   confirmTally
	waiting int
}

// recovery is a promotion in progress (invariant 3).
type recovery struct {
	req    uint64
	ballot meta.Ballot
	rounds int
	epoch  uint64
	config []meta.Member
	tally  *promiseTally
	asked  int
	best   promiseReply
	// from is the next index to fetch from best; fetched holds what the
	// last fetch returned, while its chunks and entries are stored.
	from    uint64
	fetched []meta.Entry
	st      store.LogState
}

// maxConfigRounds bounds how often recovery starts over because the
// adopted log brought a new configuration.
const maxConfigRounds = 8

// NewMachine loads a member's state from its log and promise.
func NewMachine(cfg MachineConfig, promised meta.Ballot) (*Machine, error) {
	m := &Machine{cfg: cfg, log: cfg.Logger, promised: promised, peers: map[uint64]meta.Member{}, sent: map[uint64]sentMsg{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if err := m.reload(); err != nil {
		return nil, err
	}
	return m, nil
}

// reload refreshes the cached log state from the log.
func (m *Machine) reload() error {
	st, err := m.cfg.Log.State()
	if err != nil {
		return err
	}
	config, err := m.cfg.Log.Config()
	if err != nil {
		return err
	}
	m.last, m.lastBallot = st.LastIndex, st.LastBallot
	m.applied = max(m.applied, st.Applied)
	m.commit = max(m.commit, st.Applied)
	if m.commit > m.last {
		m.commit = st.Applied
	}
	if !sameMembers(config, m.config) {
		m.rd.Changed = true
	}
	m.config = config
	return nil
}

// Step applies one input and returns the work it calls for.
func (m *Machine) Step(in Input) Ready {
	m.rd = Ready{}
	switch in := in.(type) {
	case InAppend:
		m.onAppend(in)
	case InPromise:
		m.onPromise(in)
	case InFetchLog:
		m.onFetchLog(in)
	case InPropose:
		m.onPropose(in)
	case InRemove:
		m.onRemove(in)
	case InPromote:
		m.onPromote(in)
	case InRead:
		m.onRead(in)
	case InTick:
		m.onTick()
	case InPeers:
		m.onPeers(in)
	case InStepDown:
		m.stepDown(in.Why)
	case InResp:
		m.onResp(in)
	case InHeld:
		m.onHeld(in)
	case InStored:
		m.onStored(in)
	case InRestored:
		m.onRestored(in)
	case InApplied:
		m.onApplied(in)
	case InRepaired:
		m.onRepaired(in)
	default:
		panic(fmt.Sprintf("replication: unknown input %T", in))
	}
	rd := m.rd
	m.rd = Ready{}
	return rd
}

// Status returns the member's current state; Applied is what the machine
// was last told.
func (m *Machine) Status() Status {
	s := m.status()
	s.Voters = slices.Clone(s.Voters)
	return s
}

// status is Status sharing the configuration's slice, which the machine
// replaces but never changes in place.
func (m *Machine) status() Status {
	s := Status{
		Role:      m.role,
		Ballot:    m.promised,
		Leader:    m.leaderAddr,
		Commit:    m.commit,
		Applied:   m.applied,
		LastIndex: m.last,
		Voters:    m.config,
		InSync:    isVoter(m.config, m.cfg.Self.ID) && !m.installing && (m.caughtUp && m.chunksSynced || m.role != Follower),
	}
	if m.lead != nil {
		s.Ballot = m.lead.ballot
		s.Ready = m.lead.ready
	}
	return s
}

func (m *Machine) reply(req uint64, msg wire.Message, err error) {
	m.rd.Replies = append(m.rd.Replies, Reply{Req: req, Msg: msg, Err: err})
}

func (m *Machine) send(kind sentKind, to uint64, addr string, epoch uint64, msg wire.Message) uint64 {
	m.nextID++
	id := m.nextID
	s := sentMsg{kind: kind, to: to, addr: addr, epoch: epoch}
	if a, ok := msg.(*wire.Append); ok {
		s.append = a
	}
	m.sent[id] = s
	m.rd.Send = append(m.rd.Send, Send{ID: id, To: to, Addr: addr, Msg: msg})
	return id
}

func (m *Machine) changed() { m.rd.Changed = true }

// addrOf returns a member's address, preferring the gossip view.
func (m *Machine) addrOf(id uint64) string {
	if p, ok := m.peers[id]; ok {
		return p.Addr
	}
	for _, c := range m.config {
		if c.ID == id {
			return c.Addr
		}
	}
	return ""
}

// notPrimary is the error for a request that needs the primary.
func (m *Machine) notPrimary() error {
	return notPrimaryErr(m.cfg.Self, m.role, m.lead != nil && m.lead.ready, m.leaderAddr)
}

// notPrimaryErr is the error a member in role answers a request that needs
// the primary with: retry here shortly while it is becoming the primary,
// else go to the primary it last heard from.
func notPrimaryErr(self meta.Member, role Role, ready bool, leader string) error {
	if role == Recovering || role == Leader && !ready {
		return wire.WithLeader(wire.ErrNotReady, self.Addr)
	}
	return wire.WithLeader(fmt.Errorf("%s: %w", self.Name, wire.ErrNotPrimary), leader)
}

// observe records that a higher ballot exists: the node promises it and,
// if it was leading or recovering with a lower one, steps down.
func (m *Machine) observe(b meta.Ballot) {
	if !m.promised.Less(b) {
		return
	}
	m.promised = b
	m.rd.Promise = &b
	if m.role != Follower {
		m.stepDown(fmt.Sprintf("saw higher ballot %s", b))
	}
}

// stepDown ends leadership or recovery. Waiting proposals fail with
// ErrDeposed because their outcome is unknown (a later primary may commit
// them); reads waiting for confirmation fail.
func (m *Machine) stepDown(why string) {
	if m.role == Follower {
		return
	}
	if l := m.lead; l != nil {
		m.log.Info("stepping down", "ballot", l.ballot, "reason", why)
		err := fmt.Errorf("%w: stepped down before leadership was confirmed", wire.ErrNoQuorum)
		for _, epoch := range slices.Sorted(maps.Keys(l.rounds)) {
			m.finishRound(l.rounds[epoch], err)
		}
		m.finishRound(&readRound{reqs: l.readQueue}, err)
		m.lead = nil
		m.rd.Deposed = true
	}
	if m.leaderAddr == m.cfg.Self.Addr {
		// Whoever leads now, it is not this node: a hint naming itself
		// would send routers back here.
		m.leaderAddr = ""
	}
	if m.rec != nil {
		m.failRecovery(fmt.Errorf("%w: %s during recovery", wire.ErrDeposed, why))
	}
	m.role = Follower
	m.changed()
}

// ---- Member side ----

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
		m.reply(in.Req, &wire.AppendResp{Promised: m.promised, Start: m.cfg.Start}, nil)
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
		m.reply(in.Req, m.appendResp(true, 0), nil)
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

func (m *Machine) appendResp(ok bool, last uint64) *wire.AppendResp {
	return &wire.AppendResp{OK: ok, Promised: m.promised, LastIndex: last, Start: m.cfg.Start}
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
	m.reply(fa.req, m.appendResp(true, match), nil)
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
		m.leaderStored(in.Err, p.config)
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
	if !configMayChange {
		return nil
	}
	c, err := m.cfg.Log.Config()
	if err != nil {
		m.log.Error("read configuration", "err", err)
		return nil
	}
	if !sameMembers(c, m.config) {
		m.config = c
		m.changed()
	}
	return nil
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
			m.stepDown(fmt.Sprintf("the installed snapshot holds a higher promise %s", in.Promised))
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
		m.log.Info("primary ready", "ballot", l.ballot)
		m.changed()
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

// ---- Primary side ----

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
	// group that never had a configuration starts with this node alone.
	first := meta.Op{Kind: meta.OpNoop}
	if len(m.config) == 0 {
		first = meta.Op{Kind: meta.OpConfig, Members: []meta.Member{m.cfg.Self}}
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
	m.pending = pendingWork{kind: workLeaderStore, config: hasConfig(es)}
	m.rd.Entries, m.rd.Own = es, true
}

// busy reports whether a write to the log is outstanding or asked for.
func (m *Machine) busy() bool {
	return m.pending.kind != workNone || m.restoring != workNone || len(m.rd.Entries) > 0
}

func (m *Machine) onPropose(in InPropose) {
	l := m.lead
	if l == nil || !l.ready || m.busy() {
		err := m.notPrimary()
		for _, r := range in.Reqs {
			m.reply(r, nil, err)
		}
		return
	}
	m.appendOwn(in.Ops, in.Reqs)
}

func (m *Machine) leaderStored(err error, config bool) {
	l := m.lead
	if l == nil {
		return
	}
	if err != nil {
		m.log.Error("append to local log", "err", err)
		m.stepDown("local log write failed")
		return
	}
	if err := m.reloadTail(config); err != nil {
		m.log.Error("read log state", "err", err)
		m.stepDown("local log read failed")
		return
	}
	l.match[m.cfg.Self.ID] = m.last
	m.advanceCommit()
	m.sendAll()
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

// sendTo sends member id an Append unless one is in flight.
func (m *Machine) sendTo(id uint64) {
	l := m.lead
	if l == nil || l.inflight[id] != 0 {
		return
	}
	next, ok := l.next[id]
	if !ok {
		next = m.last + 1
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

// appendFor builds the Append that sends a member the entries from next.
func (m *Machine) appendFor(next uint64) (*wire.Append, error) {
	l := m.lead
	a := &wire.Append{Group: m.cfg.Group, Ballot: l.ballot, Leader: m.cfg.Self.Addr, PrevIndex: next - 1, Commit: m.commit}
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
	return a, nil
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
	if cerr != nil {
		m.log.Debug("append failed", "peer", id, "addr", s.addr, "err", cerr)
		return
	}
	l.starts[id] = r.Start
	if l.ballot.Less(r.Promised) {
		m.observe(r.Promised)
		return
	}
	if r.Installing {
		return
	}
	p, more := progress{match: l.match[id], next: l.next[id]}.appendAnswer(s.append, r, m.last)
	l.next[id] = p.next
	if r.OK {
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
	if c := commitIndex(m.config, l.match, l.first, m.commit); c > m.commit {
		m.commit = c
		m.rd.Commit = c
	}
	if l.changing != 0 && m.commit >= l.changing {
		l.changing = 0
	}
	m.maybeAddMember()
}

// maybeAddMember adds one caught-up non-voter to the configuration.
func (m *Machine) maybeAddMember() {
	l := m.lead
	if !l.ready || l.changing != 0 || m.busy() {
		return
	}
	p, ok := memberToAdd(m.config, m.peers, m.cfg.GroupSize, l.match, m.commit, l.isSynced)
	if !ok {
		return
	}
	members := append(slices.Clone(m.config), p)
	m.log.Info("adding member to group", "id", p.ID, "name", p.Name, "addr", p.Addr, "voters", len(members))
	l.changing = m.last + 1
	m.appendOwn([]meta.Op{{Kind: meta.OpConfig, Members: members}}, nil)
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
	m.appendOwn([]meta.Op{{Kind: meta.OpConfig, Members: members}}, []uint64{in.Req})
}

// isSynced reports whether a repair round found the member holding every
// chunk in the process start it runs now (a restart may have wiped it).
func (l *leaderState) isSynced(id uint64) bool {
	s, ok := l.synced[id]
	return ok && s != 0 && s == l.starts[id]
}

// ---- Reads ----

// onRead starts one confirmation round for a batch of reads (the ReadIndex
// method): note the commit index, confirm with a majority that no higher
// ballot exists; the driver then waits until the entries up to that index
// are applied and reads locally.
func (m *Machine) onRead(in InRead) {
	l := m.lead
	if l == nil || !l.ready {
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
	for _, c := range m.config {
		if c.ID == m.cfg.Self.ID {
			continue
		}
		r.waiting++
		m.send(sentProbe, c.ID, m.addrOf(c.ID), epoch, &wire.Append{Group: m.cfg.Group, Ballot: l.ballot, Leader: m.cfg.Self.Addr, Probe: true})
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
	switch {
	case higher != nil:
		delete(l.rounds, s.epoch)
		m.finishRound(r, fmt.Errorf("%w: a member promised %s", wire.ErrDeposed, *higher))
		m.observe(*higher)
	case done:
		delete(l.rounds, s.epoch)
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

// ---- Recovery ----

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

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
	Config() (members []meta.Member, forming bool, err error)
	// Room is how many bytes of new data the log may still take above
	// the reserve its disk keeps for metadata (see room.go); it may be
	// negative.
	Room() int64
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
	// InStepDown ends leadership; Reason is one of the StepDown
	// constants, Why says more for the log.
	InStepDown struct{ Reason, Why string }
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
	// outcome is unknown. SteppedDown says why (a StepDown constant).
	Deposed     bool
	SteppedDown string
	// Leading is set when this node starts leading a ballot.
	Leading *meta.Ballot
	// Rebuilt: this member's log holds every committed entry again;
	// clear the store's rebuilding mark (store.DB.SetRebuilt). Failing
	// to only keeps the mark for the next start, which is safe.
	Rebuilt bool
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
	// forming: the configuration in effect says the group has not yet
	// had GroupSize voters (meta.Op.Forming); its primary takes no
	// client requests until it has.
	forming    bool
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
	// rebuilding: this member's log may lack entries it once acknowledged
	// (its corrupt meta.db was replaced by an empty one; see
	// store.DB.Rebuilding). Until it is whole again it promises nothing
	// to a recovering primary and does not lead, so its short log never
	// stands in for the entries it lost.
	rebuilding bool

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
	// tail is the last of the primary's entries being written; config:
	// they carry a configuration.
	tail   meta.Entry
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
	// formedAt is the index of the configuration entry with which this
	// primary completed the group's formation (0: it did not). Client
	// requests wait until it commits, so that every write acknowledged
	// is on a group whose voters know the full configuration.
	formedAt uint64
	// synced holds, for members a repair round of this ballot found
	// holding every chunk, the process start it saw; starts is each
	// member's last reported process start. Only a synced member, in that
	// same start, may become a voter.
	synced map[uint64]uint64
	starts map[uint64]uint64
	// diskErr holds, for members whose last Append their disk refused,
	// what they answered: such a member is not synced, whatever it holds,
	// until it takes an Append again.
	diskErr map[uint64]string
	// noRoom holds the members whose last answer said their disk has no
	// room for new data above its reserve (see room.go).
	noRoom map[uint64]bool
	rounds map[uint64]*readRound
	// readQueue holds the reads waiting for the next round.
	readQueue []uint64
	// confirmers are the members whose answers decided the last read
	// round, in the order they came: the next round asks them first.
	confirmers []uint64
	// unstable holds this primary's own entries while its log write is
	// under way: they go to the members at once (as Raft allows), so the
	// members' fsyncs run alongside the primary's, but the primary counts
	// itself as holding them, and commits them, only once they are
	// durable here.
	unstable []meta.Entry
}

// readRound is one confirmation that this node still leads: every read
// that joined before its probes went out is linearizable once it succeeds.
// waiting counts the probes out; unasked holds the members not probed yet,
// in the order to ask them; confirmed the members that said yes.
type readRound struct {
	reqs      []uint64
	index     uint64
	tally     confirmTally
	waiting   int
	unasked   []uint64
	confirmed []uint64
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
	config, forming, err := m.cfg.Log.Config()
	if err != nil {
		return err
	}
	m.last, m.lastBallot = st.LastIndex, st.LastBallot
	m.rebuilding = st.Rebuilding
	m.applied = max(m.applied, st.Applied)
	m.commit = max(m.commit, st.Applied)
	if m.commit > m.last {
		m.commit = st.Applied
	}
	if !sameMembers(config, m.config) || forming != m.forming {
		m.rd.Changed = true
	}
	m.config, m.forming = config, forming
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
		m.stepDown(in.Reason, in.Why)
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
		InSync: isVoter(m.config, m.cfg.Self.ID) && !m.installing && !m.rebuilding &&
			(m.caughtUp && m.chunksSynced || m.role != Follower),
		Rebuilding: m.rebuilding,
	}
	if l := m.lead; l != nil {
		s.Ballot = l.ballot
		s.Ready = l.ready && m.formed()
		s.Forming = l.ready && !m.formed()
	}
	return s
}

// formed reports whether the group of this primary has formed: its
// configuration has had GroupSize voters (a new group starts with its
// first member alone and adds the others one at a time), and the entry
// that said so is committed. Until then the primary serves no client
// request: with fewer voters, a write acknowledged by a majority could
// not survive the loss of one member (with two voters, both must live;
// with one, the write has one copy).
func (m *Machine) formed() bool {
	return !m.forming && m.commit >= m.lead.formedAt
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

// notPrimary is the error for a client request the machine cannot serve
// as the primary.
func (m *Machine) notPrimary() error {
	return notPrimaryErr(m.cfg.Self, m.cfg.Group, m.cfg.GroupSize, m.status())
}

// notPrimaryErr is the error a member in state s answers a client request
// that needs the primary with: retry here shortly while it is becoming
// the primary or its group is forming, else go to the primary it last
// heard from.
func notPrimaryErr(self meta.Member, group string, size int, s Status) error {
	switch {
	case s.Forming && len(s.Voters) >= size:
		return wire.WithLeader(fmt.Errorf("%w: group %s is forming: the configuration of all its %d voting members is being committed",
			wire.ErrNotReady, group, len(s.Voters)), self.Addr)
	case s.Forming:
		return wire.WithLeader(fmt.Errorf("%w: group %s is forming: it has %d of its %d voting members and takes requests once it has all (start the missing members, or start its primary with a smaller group size)",
			wire.ErrNotReady, group, len(s.Voters), size), self.Addr)
	case s.Role == Recovering || s.Role == Leader && !s.Ready:
		return wire.WithLeader(wire.ErrNotReady, self.Addr)
	}
	return wire.WithLeader(fmt.Errorf("%s: %w", self.Name, wire.ErrNotPrimary), s.Leader)
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
		m.stepDown(StepDownHigherBallot, fmt.Sprintf("saw higher ballot %s", b))
	}
}

// stepDown ends leadership or recovery. Waiting proposals fail with
// ErrDeposed because their outcome is unknown (a later primary may commit
// them); reads waiting for confirmation fail.
func (m *Machine) stepDown(reason, why string) {
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
		m.rd.Deposed, m.rd.SteppedDown = true, reason
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

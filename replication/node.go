package replication

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// Config configures a Node. Every field without a default is required.
type Config struct {
	// ID is this node's unique ID; Name is its human-readable name.
	ID   uint64
	Name string
	// Addr is the address peers and routers reach this node at.
	Addr string
	// Group is the name of the group this node replicates.
	Group string
	// Store is the node's durable state.
	Store *store.DB
	// Transport carries messages to peers.
	Transport wire.Transport
	// Logger receives structured logs.
	Logger *slog.Logger
	// Heartbeat is how often the primary contacts each member when idle
	// (default 100ms).
	Heartbeat time.Duration
	// RPCTimeout bounds one call to a peer (default 2s).
	RPCTimeout time.Duration
	// MaxBatchBytes bounds the entries sent in one Append (default 4 MiB).
	MaxBatchBytes int
	// LogRetain is how many applied entries are kept in the log for
	// lagging members before it is compacted; a member further behind
	// catches up by snapshot (default 10000).
	LogRetain uint64
	// ViewPrimary returns the ballot of the primary in this node's gossip
	// view, if any. A member rejects replication from a lower ballot.
	ViewPrimary func() (meta.Ballot, bool)
	// GroupSize is how many voting members the primary keeps: a caught-up
	// member beyond it stays a non-voting copy (default 3).
	GroupSize int
	// RepairInterval is how often the primary compares the chunk sets of
	// the members and copies what one lacks (default 1s).
	RepairInterval time.Duration
	// GCInterval is how often the primary collects unreferenced chunks;
	// 0 disables collection (default 1m). GCGrace is how long a chunk
	// must have been idle (not written or touched) on a member before it
	// may be collected there (default 1h): longer than any upload takes
	// between writing a chunk and committing the file that names it.
	GCInterval, GCGrace time.Duration
	// ChunkRefs reports which hashes some file references in this group;
	// it asks the meta group. Nil disables collection.
	ChunkRefs func(ctx context.Context, hs []meta.Hash) ([]bool, error)
	// ScrubRate is how many bytes per second every member re-reads and
	// verifies from its chunks at rest; 0 disables the scrubber
	// (default 8 MiB/s).
	ScrubRate int64
}

// DefaultConfig returns a Config with the tunables set.
func DefaultConfig() Config {
	return Config{
		Heartbeat:      100 * time.Millisecond,
		RPCTimeout:     2 * time.Second,
		MaxBatchBytes:  4 << 20,
		LogRetain:      10000,
		Logger:         slog.Default(),
		GroupSize:      3,
		RepairInterval: time.Second,
		GCInterval:     time.Minute,
		GCGrace:        time.Hour,
		ScrubRate:      8 << 20,
	}
}

// Validate reports the first missing or inconsistent field, wrapped in
// ErrBadConfig.
func (c Config) Validate() error {
	switch {
	case c.ID == 0:
		return fmt.Errorf("%w: ID is 0: every node needs a non-zero ID", ErrBadConfig)
	case c.Addr == "":
		return fmt.Errorf("%w: Addr is empty: give the address peers reach this node at", ErrBadConfig)
	case c.Group == "":
		return fmt.Errorf("%w: Group is empty: name the group this node replicates", ErrBadConfig)
	case c.Store == nil:
		return fmt.Errorf("%w: Store is nil", ErrBadConfig)
	case c.Transport == nil:
		return fmt.Errorf("%w: Transport is nil", ErrBadConfig)
	case c.Logger == nil:
		return fmt.Errorf("%w: Logger is nil", ErrBadConfig)
	case c.Heartbeat <= 0:
		return fmt.Errorf("%w: Heartbeat is %v: it must be positive", ErrBadConfig, c.Heartbeat)
	case c.RPCTimeout <= 0:
		return fmt.Errorf("%w: RPCTimeout is %v: it must be positive", ErrBadConfig, c.RPCTimeout)
	case c.MaxBatchBytes <= 0:
		return fmt.Errorf("%w: MaxBatchBytes is %d: it must be positive", ErrBadConfig, c.MaxBatchBytes)
	case c.LogRetain == 0:
		return fmt.Errorf("%w: LogRetain is 0: it must be positive", ErrBadConfig)
	case c.GroupSize <= 0:
		return fmt.Errorf("%w: GroupSize is %d: it must be positive", ErrBadConfig, c.GroupSize)
	case c.RepairInterval <= 0:
		return fmt.Errorf("%w: RepairInterval is %v: it must be positive", ErrBadConfig, c.RepairInterval)
	case c.GCInterval < 0:
		return fmt.Errorf("%w: GCInterval is %v: it must not be negative (0 disables collection)", ErrBadConfig, c.GCInterval)
	case c.ScrubRate < 0:
		return fmt.Errorf("%w: ScrubRate is %d: it must not be negative (0 disables the scrubber)", ErrBadConfig, c.ScrubRate)
	case c.GCInterval > 0 && c.GCGrace <= 0:
		return fmt.Errorf("%w: GCGrace is %v: collection (GCInterval %v) needs a positive grace", ErrBadConfig, c.GCGrace, c.GCInterval)
	}
	return nil
}

// Role is what a node currently does in its group.
type Role int

// The roles.
const (
	Follower Role = iota
	Recovering
	Leader
)

func (r Role) String() string {
	return [...]string{"replica", "recovering", "primary"}[r]
}

// Status is a snapshot of a node's replication state.
type Status struct {
	Role      Role
	Ballot    meta.Ballot // led ballot when leading, else the promise
	Ready     bool        // leading and accepting requests
	InSync    bool        // a voter not installing a snapshot
	Leader    string      // the primary's address as last seen
	Commit    uint64
	Applied   uint64
	LastIndex uint64
	Voters    []meta.Member
}

// Node replicates one group's log on one member.
type Node struct {
	cfg Config
	db  *store.DB
	log *slog.Logger

	// logMu serialises writers of the log: Append handlers, recovery and
	// snapshot installs. It is taken before mu, never after.
	logMu sync.Mutex

	mu         sync.Mutex
	role       Role
	promised   meta.Ballot
	leaderAddr string
	commit     uint64
	last       uint64 // cached log tail
	lastBallot meta.Ballot
	config     []meta.Member
	peers      map[uint64]meta.Member // live group members from gossip, self excluded
	installing bool
	// closed is set by Close before it waits for the goroutines: none may
	// start after it (a WaitGroup cannot grow once Wait has begun).
	closed bool
	// caughtUp: since this start, an append from the primary left this
	// log covering the primary's commit index. A restarted member is not
	// in sync until then.
	caughtUp bool
	// chunksSynced: since this start, the primary found this member
	// holding every chunk of the group. Until then it may not count as in
	// sync: a member rebuilt from an empty disk must not lead.
	chunksSynced bool
	// start identifies this process start to the primary (see AppendResp).
	start     uint64
	lead      *leader
	waiters   map[uint64]*proposal
	snaps     snapshotServer
	applied   uint64
	appliedCh chan struct{} // closed and replaced whenever applied grows

	applyWake chan struct{}
	changed   chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New creates a node over its store. It starts nothing.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:       cfg,
		db:        cfg.Store,
		log:       cfg.Logger.With("group", cfg.Group),
		peers:     map[uint64]meta.Member{},
		waiters:   map[uint64]*proposal{},
		applyWake: make(chan struct{}, 1),
		changed:   make(chan struct{}, 1),
		appliedCh: make(chan struct{}),
		start:     uint64(time.Now().UnixNano()),
	}
	if err := n.reload(); err != nil {
		return nil, err
	}
	return n, nil
}

// reload refreshes the cached log state from the store.
func (n *Node) reload() error {
	st, err := n.db.State()
	if err != nil {
		return err
	}
	promised, err := n.db.Promised()
	if err != nil {
		return err
	}
	config, err := n.db.Config()
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.last, n.lastBallot = st.LastIndex, st.LastBallot
	n.setAppliedLocked(st.Applied)
	n.commit = max(n.commit, st.Applied)
	if n.commit > n.last {
		n.commit = st.Applied
	}
	n.promised = promised
	n.config = config
	return nil
}

// Start starts the node's background work; it returns at once.
func (n *Node) Start(ctx context.Context) {
	n.ctx, n.cancel = context.WithCancel(ctx)
	n.wg.Add(2)
	go n.applyLoop()
	go n.scrubLoop()
}

// Close stops the node and waits for its goroutines. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		n.mu.Lock()
		n.closed = true
		n.stepDownLocked("closing")
		n.mu.Unlock()
		n.wg.Wait()
		n.snaps.closeAll()
	})
	return nil
}

// Changed is signalled whenever the node's role or readiness changes.
func (n *Node) Changed() <-chan struct{} { return n.changed }

func (n *Node) notifyChanged() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// Status returns the node's current state.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Status{
		Role:      n.role,
		Ballot:    n.promised,
		Leader:    n.leaderAddr,
		Commit:    n.commit,
		LastIndex: n.last,
		Voters:    append([]meta.Member(nil), n.config...),
		InSync:    isVoter(n.config, n.cfg.ID) && !n.installing && (n.caughtUp && n.chunksSynced || n.role != Follower),
	}
	if n.lead != nil {
		s.Ballot = n.lead.ballot
		s.Ready = n.lead.ready
	}
	if st, err := n.db.State(); err == nil {
		s.Applied = st.Applied
	}
	return s
}

// SetPeers tells the node which members of its group gossip reports alive.
// A primary replicates to voters and to these (new members catch up as
// non-voters, then join the configuration).
func (n *Node) SetPeers(peers []meta.Member) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.peers
	n.peers = map[uint64]meta.Member{}
	fresh := false
	for _, p := range peers {
		if p.ID != n.cfg.ID {
			n.peers[p.ID] = p
			if _, ok := old[p.ID]; !ok {
				fresh = true
			}
		}
	}
	if n.lead != nil {
		n.startReplicatorsLocked()
		if fresh {
			n.lead.wakeRepair()
		}
	}
}

// addrOfLocked returns a member's address, preferring the gossip view.
func (n *Node) addrOfLocked(id uint64) string {
	if p, ok := n.peers[id]; ok {
		return p.Addr
	}
	for _, m := range n.config {
		if m.ID == id {
			return m.Addr
		}
	}
	return ""
}

// observeBallotLocked records that a higher ballot exists: the node promises it
// and, if it was leading or recovering with a lower one, steps down.
func (n *Node) observeBallotLocked(b meta.Ballot) error {
	if !n.promised.Less(b) {
		return nil
	}
	if err := n.db.SetPromised(b); err != nil {
		return err
	}
	n.promised = b
	if n.role != Follower {
		n.stepDownLocked(fmt.Sprintf("saw higher ballot %s", b))
	}
	return nil
}

// stepDownLocked ends leadership; waiting proposals fail with ErrDeposed
// because their outcome is unknown (a later primary may commit them).
func (n *Node) stepDownLocked(why string) {
	if n.role == Follower {
		return
	}
	if n.lead != nil {
		n.lead.cancel()
		n.log.Info("stepping down", "ballot", n.lead.ballot, "reason", why)
		n.lead = nil
	}
	for idx, p := range n.waiters {
		p.done <- proposalResult{err: fmt.Errorf("entry %d: %w", idx, wire.ErrDeposed)}
		delete(n.waiters, idx)
	}
	n.role = Follower
	n.notifyChanged()
}

// StepDown makes a leading or recovering node a follower, for example when
// gossip shows a primary with a higher ballot.
func (n *Node) StepDown(why string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stepDownLocked(why)
}

func (n *Node) wakeApply() {
	select {
	case n.applyWake <- struct{}{}:
	default:
	}
}

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
		if err := n.applyCommitted(); err != nil {
			n.log.Error("apply committed entries", "err", err)
		}
	}
}

func (n *Node) applyCommitted() error {
	n.mu.Lock()
	commit := n.commit
	n.mu.Unlock()
	st, err := n.db.State()
	if err != nil {
		return err
	}
	if commit <= st.Applied {
		return nil
	}
	entries, results, err := n.db.Apply(commit)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.setAppliedLocked(commit)
	for i, e := range entries {
		if p, ok := n.waiters[e.Index]; ok {
			delete(n.waiters, e.Index)
			if p.ballot == e.Ballot {
				p.done <- proposalResult{result: results[i]}
			} else {
				p.done <- proposalResult{err: fmt.Errorf("entry %d was replaced: %w", e.Index, wire.ErrDeposed)}
			}
		}
	}
	n.mu.Unlock()
	if commit > st.SnapIndex+2*n.cfg.LogRetain {
		return n.db.Compact(commit - n.cfg.LogRetain)
	}
	return nil
}

// setAppliedLocked records the applied index and wakes its waiters.
func (n *Node) setAppliedLocked(i uint64) {
	n.applied = i
	close(n.appliedCh)
	n.appliedCh = make(chan struct{})
}

// Handle dispatches one request from a peer or a router.
func (n *Node) Handle(ctx context.Context, req wire.Message) (wire.Message, error) {
	switch m := req.(type) {
	case *wire.Append:
		resp, err := n.handleAppend(ctx, m)
		if r, ok := resp.(*wire.AppendResp); ok {
			r.Start = n.start
		}
		return resp, err
	case *wire.Promise:
		return n.handlePromise(m)
	case *wire.FetchLog:
		return n.handleFetchLog(m)
	case *wire.FetchSnap:
		return n.handleFetchSnap(m)
	case *wire.StoreChunk:
		if err := n.db.Chunks.Put(m.Hash, m.Data); err != nil {
			return nil, err
		}
		return &wire.OKMsg{}, nil
	case *wire.GetChunk:
		b, err := n.db.Chunks.Get(m.Hash)
		if err != nil {
			return nil, err
		}
		return &wire.ChunkMsg{Data: b}, nil
	case *wire.WriteChunk:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		if err := n.WriteChunk(ctx, m.Hash, m.Data); err != nil {
			return nil, err
		}
		return &wire.OKMsg{}, nil
	case *wire.Propose:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		if m.Op.Kind == meta.OpConfig || m.Op.Kind == meta.OpNoop {
			// A membership change proposed from outside could remove
			// every voter; the primary makes these itself.
			return nil, fmt.Errorf("%w: op kind %d is made by the primary itself and cannot be proposed", wire.ErrForbidden, m.Op.Kind)
		}
		r, err := n.Propose(ctx, m.Op)
		if err != nil {
			return nil, err
		}
		return &wire.ProposeResp{Result: r}, nil
	case *wire.Read:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		return n.Read(ctx, m)
	case *wire.TouchChunks:
		return n.handleTouch(ctx, m)
	case *wire.DeleteChunks:
		return n.handleDeleteChunks(m)
	case *wire.ChunkDigest:
		return n.handleDigest(m)
	case *wire.ListChunks:
		return n.handleListChunks(m)
	case *wire.GroupStatus:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		return n.GroupInfo()
	}
	return nil, fmt.Errorf("%w: message type %d is not a request", wire.ErrBadMessage, req.Type())
}

func (n *Node) checkGroup(g string) error {
	if g != n.cfg.Group {
		return fmt.Errorf("%w: this node serves group %q, not %q", wire.ErrWrongGroup, n.cfg.Group, g)
	}
	return nil
}

// notPrimaryLocked builds the error for a request that needs the primary.
func (n *Node) notPrimaryLocked() error {
	if n.role == Recovering || (n.lead != nil && !n.lead.ready) {
		return wire.WithLeader(wire.ErrNotReady, n.cfg.Addr)
	}
	return wire.WithLeader(fmt.Errorf("%s: %w", n.cfg.Name, wire.ErrNotPrimary), n.leaderAddr)
}

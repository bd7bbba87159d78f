package replication

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"shoal/clock"
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
	// Metrics, if set, counts and times the node's work for Prometheus.
	Metrics *Metrics
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
	// ApplyHold is how long a primary keeps a transaction applying
	// committed entries open for more that commit meanwhile (default
	// 20ms; 0: commit each batch at once). Proposers are answered as
	// their entries are applied, before the commit, and reads that need
	// what it applied are served from it: under load one commit, with its
	// fsyncs, serves the batches of many log appends.
	ApplyHold time.Duration
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
	// verifies from its chunks at rest, and from its metadata store; 0
	// disables both (default 8 MiB/s).
	ScrubRate int64
	// MetaScrubEvery is how often, at most, a member starts a pass over
	// its metadata store at ScrubRate (default 10 minutes; 0: never).
	// Every read checks the records it touches anyway; a pass costs CPU
	// per record, far more than reading chunks does per byte, so a small
	// namespace is not re-verified back to back.
	MetaScrubEvery time.Duration
	// ChunkWrites bounds the chunk writes (WriteChunk) a primary carries
	// out at once, each a local write with fsync and a copy to every
	// member; one more waits up to RPCTimeout for one of them to end,
	// then is refused with wire.ErrBusy, which the router retries. Past a
	// few the disks are no faster, and each more only adds to every
	// write's latency and to the CPU the node's other work (gossip
	// probes, heartbeats) waits for (default 8).
	ChunkWrites int
}

// DefaultConfig returns a Config with the tunables set.
func DefaultConfig() Config {
	return Config{
		Heartbeat:      100 * time.Millisecond,
		RPCTimeout:     2 * time.Second,
		MaxBatchBytes:  4 << 20,
		LogRetain:      10000,
		ApplyHold:      20 * time.Millisecond,
		Logger:         slog.Default(),
		GroupSize:      3,
		RepairInterval: time.Second,
		GCInterval:     time.Minute,
		GCGrace:        time.Hour,
		ScrubRate:      8 << 20,
		MetaScrubEvery: 10 * time.Minute,
		ChunkWrites:    8,
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
	case c.ApplyHold < 0:
		return fmt.Errorf("%w: ApplyHold is %v: it must not be negative", ErrBadConfig, c.ApplyHold)
	case c.GroupSize <= 0:
		return fmt.Errorf("%w: GroupSize is %d: it must be positive", ErrBadConfig, c.GroupSize)
	case c.RepairInterval <= 0:
		return fmt.Errorf("%w: RepairInterval is %v: it must be positive", ErrBadConfig, c.RepairInterval)
	case c.GCInterval < 0:
		return fmt.Errorf("%w: GCInterval is %v: it must not be negative (0 disables collection)", ErrBadConfig, c.GCInterval)
	case c.ScrubRate < 0:
		return fmt.Errorf("%w: ScrubRate is %d: it must not be negative (0 disables the scrubber)", ErrBadConfig, c.ScrubRate)
	case c.MetaScrubEvery < 0:
		return fmt.Errorf("%w: MetaScrubEvery is %v: it must not be negative (0 disables the metadata scrub)", ErrBadConfig, c.MetaScrubEvery)
	case c.ChunkWrites <= 0:
		return fmt.Errorf("%w: ChunkWrites is %d: it must be positive", ErrBadConfig, c.ChunkWrites)
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
	Role   Role
	Ballot meta.Ballot // led ballot when leading, else the promise
	// Ready: leading, the first entry of its ballot applied, and the
	// group formed (see Machine.formed): the node takes client requests.
	Ready bool
	// Forming: leading with the first entry of its ballot applied, but
	// the group has not formed yet. Client requests are refused with
	// ErrNotReady while the primary adds its members; its own work
	// (membership changes, repair, the duties of role) goes on.
	Forming bool
	InSync  bool // a voter not installing a snapshot, whose disk takes writes
	// Rebuilding: the member's log may lack entries it once acknowledged,
	// until its primary finds it whole (see store.DB.Rebuilding); it
	// neither promises to a recovering primary nor leads meanwhile.
	Rebuilding bool
	Leader     string // the primary's address as last seen
	Commit     uint64
	Applied    uint64
	LastIndex  uint64
	Voters     []meta.Member
	// DiskError is the last write the node's disk refused, while it
	// refuses them ("" when it takes writes).
	DiskError string
}

// Handle dispatches one request from a peer or a router.
func (n *Node) Handle(ctx context.Context, req wire.Message) (wire.Message, error) {
	switch m := req.(type) {
	case *wire.Append:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		in := InAppend{M: m}
		if n.cfg.ViewPrimary != nil {
			in.View, in.HasView = n.cfg.ViewPrimary()
		}
		if r := n.answerProbe(in); r != nil {
			n.noteHeard(r)
			return r, nil
		}
		r, err := n.ask(ctx, func(id uint64) Input { in.Req = id; return in })
		n.noteHeard(r)
		return r, err
	case *wire.Promise:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		return n.ask(ctx, func(id uint64) Input { return InPromise{Req: id, M: m} })
	case *wire.FetchLog:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		return n.ask(ctx, func(id uint64) Input { return InFetchLog{Req: id, M: m} })
	case *wire.FetchSnap:
		return n.handleFetchSnap(m)
	case *wire.StoreChunk:
		if m.Replace {
			// Get checks the copy held and removes it if it is bad, so
			// the Put below rewrites it; a good copy is only touched.
			if _, err := n.db.Chunks.Get(m.Hash); err != nil && !errors.Is(err, meta.ErrCorrupt) && !errors.Is(err, meta.ErrNotFound) {
				return nil, err
			}
		}
		if err := n.putChunk(m.Hash, m.Data, false); err != nil {
			return nil, err
		}
		return &wire.OKMsg{}, nil
	case *wire.GetChunk:
		if !m.CallerChecks {
			b, err := n.db.Chunks.Get(m.Hash)
			if err != nil {
				return nil, err
			}
			return &wire.ChunkMsg{Data: b}, nil
		}
		b, crc, err := n.db.Chunks.GetWithCRC(m.Hash)
		if err != nil {
			return nil, err
		}
		return &wire.ChunkMsg{Data: b, CRC: crc, HasCRC: true, Release: func() { n.db.Chunks.Recycle(b) }}, nil
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
		if err := proposable(m.Op); err != nil {
			return nil, err
		}
		r, err := n.Propose(ctx, m.Op)
		if err != nil {
			return nil, err
		}
		return &wire.ProposeResp{Result: r}, nil
	case *wire.ProposeBatch:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		return n.ProposeBatch(ctx, m)
	case *wire.Read:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		return n.Read(ctx, m)
	case *wire.ReadBatch:
		if err := n.checkGroup(m.Group); err != nil {
			return nil, err
		}
		return n.ReadBatch(ctx, m)
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

// answerProbe answers a read confirmation from the published state when
// that needs no new promise: the common case, as a primary confirms its
// reads often. The published promise is durable, and published before any
// answer that depends on it went out.
func (n *Node) answerProbe(in InAppend) *wire.AppendResp {
	a := in.M
	v := n.view.Load()
	if !a.Probe || v.failed != nil || in.HasView && a.Ballot.Less(in.View) {
		return nil
	}
	switch {
	case a.Ballot.Less(v.promised):
		return &wire.AppendResp{Promised: v.promised, Start: n.start}
	case a.Ballot == v.promised && v.status.Role == Follower && v.status.Leader == a.Leader:
		return &wire.AppendResp{OK: true, Promised: v.promised, Start: n.start}
	}
	return nil
}

// noteHeard records an append this node accepted from its primary.
func (n *Node) noteHeard(r wire.Message) {
	if a, ok := r.(*wire.AppendResp); ok && a.OK {
		n.heard.Store(max(1, int64(time.Since(n.born))))
	}
}

// SincePrimary returns how long ago this node last accepted an append or a
// heartbeat from a primary, and false if it never did. A follower that
// heard from its primary a moment ago knows it is alive, whatever a
// gossip view that lost sight of it says.
func (n *Node) SincePrimary() (time.Duration, bool) {
	h := n.heard.Load()
	if h == 0 {
		return 0, false
	}
	return time.Since(n.born) - time.Duration(h), true
}

// ask steps a peer's request and returns the machine's answer.
func (n *Node) ask(ctx context.Context, mk func(id uint64) Input) (wire.Message, error) {
	res, err := n.call(ctx, mk)
	return res.msg, err
}

func (n *Node) checkGroup(g string) error {
	if g != n.cfg.Group {
		return fmt.Errorf("%w: this node serves group %q, not %q", wire.ErrWrongGroup, n.cfg.Group, g)
	}
	return nil
}

// notPrimary is the error for a request that needs the primary, from the
// last published state.
func (n *Node) notPrimary() error { return n.notPrimaryIn(n.view.Load()) }

// notPrimaryIn is the error for a request that needs the primary, from
// the published state v.
func (n *Node) notPrimaryIn(v *nodeView) error {
	if v.failed != nil {
		return v.failed
	}
	return notPrimaryErr(n.self(), n.cfg.Group, n.cfg.GroupSize, v.status)
}

// Propose commits op through the log and returns its result once applied.
// An error wrapping ErrDeposed or a context error means the outcome is
// unknown; ErrNotPrimary and ErrNotReady mean the op was not proposed.
func (n *Node) Propose(ctx context.Context, op meta.Op) (meta.Result, error) {
	if v := n.view.Load(); !v.status.Ready {
		return meta.Result{}, n.notPrimaryIn(v)
	}
	e := n.opEvent(op)
	if err := n.enqueue(ctx, e); err != nil {
		return meta.Result{}, err
	}
	return n.awaitOp(ctx, e)
}

// ProposeBatch proposes the ops of m as Propose would each, handed to
// the driver together so that they go to the log in one batch, and
// answers each: a result, or in Errs the error Propose would have
// returned. It fails whole when the batch is refused (malformed, this
// node does not lead) or could not be proposed.
func (n *Node) ProposeBatch(ctx context.Context, m *wire.ProposeBatch) (*wire.ProposeBatchResp, error) {
	if len(m.Ops) == 0 || len(m.Ops) > wire.MaxProposeBatch {
		return nil, fmt.Errorf("%w: a batch of %d ops: send 1 to %d", wire.ErrBadMessage, len(m.Ops), wire.MaxProposeBatch)
	}
	for i := range m.Ops {
		if err := proposable(m.Ops[i]); err != nil {
			return nil, err
		}
	}
	if v := n.view.Load(); !v.status.Ready {
		return nil, n.notPrimaryIn(v)
	}
	es := make([]event, len(m.Ops))
	for i := range m.Ops {
		es[i] = n.opEvent(m.Ops[i])
	}
	if err := n.enqueue(ctx, event{batch: es}); err != nil {
		return nil, err
	}
	resp := &wire.ProposeBatchResp{Results: make([]meta.Result, len(m.Ops))}
	var first error
	mine := 0 // ops that failed for this node's sake: it no longer leads
	for i, e := range es {
		var err error
		if resp.Results[i], err = n.awaitOp(ctx, e); err != nil {
			if resp.Errs == nil {
				resp.Errs = make([]*wire.ErrorMsg, len(m.Ops))
			}
			resp.Errs[i] = wire.BatchError(err)
			first = cmp.Or(first, err)
			if errors.Is(err, wire.ErrNotPrimary) || errors.Is(err, wire.ErrDeposed) || errors.Is(err, wire.ErrNoQuorum) {
				mine++
			}
		}
	}
	if mine == len(es) {
		// The batch failed whole with this node: the router sends it on
		// as one, to the primary its answer names.
		return nil, first
	}
	return resp, nil
}

// proposable refuses an op that only the primary itself makes.
func proposable(op meta.Op) error {
	if op.Kind == meta.OpConfig || op.Kind == meta.OpNoop {
		// A membership change proposed from outside could remove every
		// voter; the primary makes these itself.
		return fmt.Errorf("%w: op kind %d is made by the primary itself and cannot be proposed", wire.ErrForbidden, op.Kind)
	}
	return nil
}

// opEvent is the event proposing op, stamped with the time and the
// term's clock; its done channel answers it.
func (n *Node) opEvent(op meta.Op) event {
	if op.Time == 0 {
		op.Time = clock.Now().UnixNano()
	}
	if t := n.term.Load(); t != nil {
		op.Clock = t.clock()
	} else {
		op.Clock = 0 // not leading: the machine refuses the op anyway
	}
	return event{id: n.seq.Add(1), op: &op, done: make(chan result, 1)}
}

// enqueue hands e to the driver.
func (n *Node) enqueue(ctx context.Context, e event) error {
	select {
	case n.events <- e:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: gave up before the op was proposed", wire.ErrNoQuorum)
	case <-n.ctx.Done():
		return fmt.Errorf("%w: node closed", wire.ErrNotPrimary)
	}
}

// awaitOp waits for the answer to the op e proposed.
func (n *Node) awaitOp(ctx context.Context, e event) (meta.Result, error) {
	select {
	case res := <-e.done:
		return res.res, res.err
	case <-ctx.Done():
		return meta.Result{}, fmt.Errorf("%w: not committed in time (the write may still take effect)", wire.ErrNoQuorum)
	case <-n.ctx.Done():
		return meta.Result{}, fmt.Errorf("%w: node closed before the op was answered", wire.ErrDeposed)
	}
}

// Promote makes this node the primary with ballot b, which the caller chose
// from its gossip view (no election messages). Before it accepts writes it
// gathers promises from a majority of the voters, adopts the most
// up-to-date log among them, and commits a first entry of its own ballot
// (invariant 3). It returns once leading, or with the reason it cannot.
func (n *Node) Promote(ctx context.Context, b meta.Ballot) error {
	_, err := n.call(ctx, func(id uint64) Input { return InPromote{Req: id, Ballot: b} })
	return err
}

// RemoveMember takes a voting member out of the group's configuration
// through the log, for example one dead longer than the replacement delay.
// Like every configuration change it goes alone: it fails with ErrNotReady
// while another change is being committed.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	if _, err := n.call(ctx, func(req uint64) Input { return InRemove{Req: req, ID: id} }); err != nil {
		return fmt.Errorf("remove member %d: %w", id, err)
	}
	return nil
}

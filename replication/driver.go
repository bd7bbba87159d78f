package replication

// The driver: one goroutine per node owns the Machine. It steps every
// input into it and carries out each Ready against the store and the
// transport: the promise and log writes in order, then the messages,
// answers and the index to apply through. Everything slow that does not
// touch the log (calls to peers, snapshot transfers, applying entries)
// runs in goroutines of its own and comes back as an input.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// Node replicates one group's log on one member.
type Node struct {
	cfg Config
	db  *store.DB
	log *slog.Logger
	// start identifies this process start to the primary (see AppendResp).
	start uint64
	// born is when the node was made and heard when it last accepted an
	// append from a primary, in monotonic nanoseconds since born (0:
	// never); see SincePrimary.
	born  time.Time
	heard atomic.Int64

	// m is owned by the run goroutine.
	m *Machine
	// pending holds the answer channel of each request stepped and not
	// yet answered; run goroutine only.
	pending map[uint64]chan result
	// writing is set while writeOwn runs; held keeps the events that
	// wait for it, and props the proposals of the next batch.
	writing bool
	held    []event
	props   InPropose
	// failed is set when a promise could not be made durable: the node
	// answers nothing more until it restarts.
	failed error
	// disk is what the node's writes found of its disk.
	disk diskHealth

	seq    atomic.Uint64
	events chan event

	view atomic.Pointer[nodeView]
	term atomic.Pointer[term]

	// waitMu guards waiters: proposals in the log, answered when applied
	// (by the apply goroutine) or when the primary is deposed.
	waitMu  sync.Mutex
	waiters map[uint64]waiter

	// commitIdx is the index to apply through; applyWake wakes the apply
	// goroutine; applyNow wakes an apply transaction held open to commit
	// while commitWanted counts what waits for that (see giveWay); lent
	// lends the transaction's state to reads that need what it has
	// applied but not yet committed (see readAt).
	commitIdx    atomic.Uint64
	applyWake    chan struct{}
	applyNow     chan struct{}
	commitWanted atomic.Int32
	lent         heldApply
	// appliedMu guards applied and appliedCh, which is closed and replaced
	// whenever applied grows.
	appliedMu sync.Mutex
	applied   uint64
	appliedCh chan struct{}
	// computed is the last entry whose result the apply goroutine has
	// computed, and so may have answered, before the transaction holding
	// it commits (see answerApplied and readBarrier).
	computed atomic.Uint64
	// applyRounds counts the transactions that applied entries, and
	// applyBatches the batches they applied (see moreToApply).
	applyRounds, applyBatches atomic.Uint64
	// transfers counts snapshot transfers running.
	transfers atomic.Int32
	// chunkSlots holds a token per chunk write in progress (ChunkWrites).
	chunkSlots chan struct{}
	// sending tracks the chunk writes on their way to each member (see
	// WriteChunk), which a repair round leaves to arrive.
	sendingMu sync.Mutex
	sending   map[chunkSend]sends

	snaps     snapshotServer
	changed   chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// nodeView is what the run goroutine last published for other goroutines.
type nodeView struct {
	status   Status // Voters is shared: copy before handing it out
	promised meta.Ballot
	peers    map[uint64]meta.Member // read only
	peersGen uint64
	failed   error
}

// term is a primary's ballot as the chunk maintainer sees it: its work
// stops with ctx when the node stops leading.
type term struct {
	ballot     meta.Ballot
	ctx        context.Context
	cancel     context.CancelFunc
	repairWake chan struct{}
	// clockBase is the group's clock when this term began and clockStart
	// the monotonic time then: the term stamps ops with clockBase plus
	// the time since (see meta.Op.Clock).
	clockBase  int64
	clockStart time.Time

	mu       sync.Mutex
	chunks   map[uint64]memberChunks // what the last repair round learned
	progress wire.RepairProgress
}

// clock reads the group's clock as this term counts it.
func (t *term) clock() int64 { return t.clockBase + int64(time.Since(t.clockStart)) }

// wakeRepair asks for a round soon, e.g. when a member appears.
func (t *term) wakeRepair() {
	select {
	case t.repairWake <- struct{}{}:
	default:
	}
}

// event is one thing for the run goroutine: an input to step (a request
// when done is set), a proposal or a batch of them, a read confirmation,
// a query or a finished snapshot transfer.
type event struct {
	in     Input
	id     uint64
	done   chan result
	op     *meta.Op
	batch  []event // ops proposed together, handled as one after the other
	read   bool
	query  func(*Machine)
	xfer   *transfer
	stored *error // the outcome of writeOwn
}

type result struct {
	msg    wire.Message
	res    meta.Result
	index  uint64
	waited bool // the request became a proposal in the log
	err    error
}

type waiter struct {
	ballot meta.Ballot
	done   chan result
}

type transfer struct {
	snap *store.IncomingSnapshot
	from string
	err  error
}

// maxBatch bounds the proposals written with one fsync, and the reads
// confirmed by one round.
const maxBatch = 512

// New creates a node over its store. It starts nothing.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:       cfg,
		db:        cfg.Store,
		log:       cfg.Logger.With("group", cfg.Group),
		start:     rand.Uint64() | 1,
		born:      time.Now(),
		pending:   map[uint64]chan result{},
		events:    make(chan event, 4*maxBatch),
		waiters:   map[uint64]waiter{},
		applyWake: make(chan struct{}, 1),
		applyNow:  make(chan struct{}, 1),
		appliedCh: make(chan struct{}),
		changed:   make(chan struct{}, 1),

		chunkSlots: make(chan struct{}, cfg.ChunkWrites),
	}
	n.disk = diskHealth{log: n.log, every: diskLogEvery}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	promised, err := n.db.Promised()
	if err != nil {
		return nil, err
	}
	n.m, err = NewMachine(MachineConfig{
		Self:          n.self(),
		Group:         cfg.Group,
		GroupSize:     cfg.GroupSize,
		MaxBatchBytes: cfg.MaxBatchBytes,
		Start:         n.start,
		Log:           n.db,
		Logger:        n.log,
	}, promised)
	if err != nil {
		return nil, err
	}
	n.applied = n.m.applied
	n.commitIdx.Store(n.m.commit)
	n.publish()
	return n, nil
}

func (n *Node) self() meta.Member {
	return meta.Member{ID: n.cfg.ID, Name: n.cfg.Name, Addr: n.cfg.Addr}
}

// Start starts the node's background work; it returns at once. The node
// stops when ctx ends or Close is called.
func (n *Node) Start(ctx context.Context) {
	context.AfterFunc(ctx, n.cancel)
	n.wg.Add(4)
	go n.run()
	go n.applyLoop()
	go n.scrubLoop()
	go n.verifyLoop()
}

// Close stops the node and waits for its goroutines. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.failWaiters(fmt.Errorf("%w: node closed", wire.ErrDeposed))
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

// Status returns the node's current state. A node whose disk refuses
// writes, or that stopped on a promise it could not record, is not in
// sync, whatever its log: it can acknowledge nothing, so it must not lead.
// The second reports why it stopped as its disk error, until a restart.
func (n *Node) Status() Status {
	v := n.view.Load()
	s := v.status
	s.Voters = append([]meta.Member(nil), s.Voters...)
	if err := n.disk.failure(); err != nil {
		s.DiskError = err.Error()
	}
	if v.failed != nil && s.DiskError == "" {
		s.DiskError = v.failed.Error()
	}
	if s.DiskError != "" {
		s.InSync = false
	}
	return s
}

// noteDisk records the outcome of a write to the node's disk (see
// diskHealth.report); a change wakes whoever publishes the node's state,
// so gossip stops showing a node that cannot write as in sync.
func (n *Node) noteDisk(err error, what string, began time.Time) {
	if n.disk.report(err, what, began, time.Now()) {
		n.notifyChanged()
	}
}

// putChunk stores a chunk here and notes what the disk said: a refusal,
// or a write that went through (storing a chunk already held only
// touches it, which proves nothing of the disk). checked: the caller has
// just checked data against h.
func (n *Node) putChunk(h meta.Hash, data []byte, checked bool) error {
	if !checked && meta.HashOf(data) != h {
		return fmt.Errorf("store chunk %s: content does not match its hash: %w", h, meta.ErrCorrupt)
	}
	began := time.Now()
	wrote, err := n.db.Chunks.Store(h, data)
	if err != nil || wrote {
		n.noteDisk(err, "store chunk", began)
	}
	return err
}

// SetPeers tells the node which members of its group gossip reports alive.
// A primary replicates to voters and to these (new members catch up as
// non-voters, then join the configuration).
func (n *Node) SetPeers(peers []meta.Member) {
	n.post(InPeers{Peers: append([]meta.Member(nil), peers...)})
}

// StepDown makes a leading or recovering node a follower, for example when
// gossip shows a primary with a higher ballot.
func (n *Node) StepDown(why string) { n.post(InStepDown{Reason: StepDownView, Why: why}) }

// post hands an input to the run goroutine, unless the node is closed.
func (n *Node) post(in Input) { n.send(event{in: in}) }

func (n *Node) send(e event) {
	select {
	case n.events <- e:
	case <-n.ctx.Done():
	}
}

var errClosed = errors.New("replication: node is closed")

// call steps a request and waits for its answer.
func (n *Node) call(ctx context.Context, mk func(id uint64) Input) (result, error) {
	e := event{id: n.seq.Add(1), done: make(chan result, 1)}
	e.in = mk(e.id)
	return n.await(ctx, e)
}

// await hands a request to the run goroutine and waits for its answer.
func (n *Node) await(ctx context.Context, e event) (result, error) {
	select {
	case n.events <- e:
	case <-ctx.Done():
		return result{}, fmt.Errorf("%w: gave up before the request was taken: %w", wire.ErrNoQuorum, ctx.Err())
	case <-n.ctx.Done():
		return result{}, errClosed
	}
	select {
	case res := <-e.done:
		return res, res.err
	case <-ctx.Done():
		return result{}, fmt.Errorf("%w: no answer in time: %w", wire.ErrNoQuorum, ctx.Err())
	case <-n.ctx.Done():
		return result{}, errClosed
	}
}

// inspect runs f on the machine in the run goroutine; false if the node
// is closed.
func (n *Node) inspect(f func(*Machine)) bool {
	done := make(chan struct{})
	select {
	case n.events <- event{query: func(m *Machine) { f(m); close(done) }}:
	case <-n.ctx.Done():
		return false
	}
	select {
	case <-done:
		return true
	case <-n.ctx.Done():
		return false
	}
}

// run is the node's one driver loop.
func (n *Node) run() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Heartbeat)
	defer tick.Stop()
	corrupted := n.db.Corrupted()
	for {
		select {
		case <-n.ctx.Done():
			n.shutdown()
			return
		case e := <-n.events:
			n.drain(e)
		case <-tick.C:
			n.step(InTick{})
		case <-corrupted:
			corrupted = nil
			n.fail(n.corruptErr(), Ready{})
		}
	}
}

// maxDrain bounds the events taken in one go, so a tick is never starved.
const maxDrain = 4 * maxBatch

// drain handles e and the events already waiting behind it. Proposals
// among them go to the log as one batch, with one fsync (group commit),
// and reads share one confirmation round.
func (n *Node) drain(e event) {
	var reads InRead
	for i := 0; ; i++ {
		n.handle(e, &reads)
		if i == maxDrain {
			break
		}
		var more bool
		select {
		case e, more = <-n.events:
		default:
		}
		if !more {
			break
		}
	}
	if len(n.props.Reqs) > 0 && !n.writing {
		props := n.props
		n.props = InPropose{}
		n.step(props)
	}
	if len(reads.Reqs) > 0 {
		n.step(reads)
	}
}

// handle takes one event. While the primary's own entries are being
// written, only what cannot write the log is stepped; the rest waits.
func (n *Node) handle(e event, reads *InRead) {
	switch {
	case e.stored != nil:
		n.writing = false
		n.carry(n.m.Step(InStored{Err: *e.stored}))
		held := n.held
		n.held = nil
		for _, h := range held {
			n.handle(h, reads)
		}
	case e.read:
		n.pending[e.id] = e.done
		reads.Reqs = append(reads.Reqs, e.id)
		if len(reads.Reqs) == maxBatch {
			n.step(*reads)
			*reads = InRead{}
		}
	case e.query != nil:
		e.query(n.m)
	case n.writing && !writesNothing(e.in):
		n.held = append(n.held, e)
	case e.op != nil:
		n.pending[e.id] = e.done
		n.props.Reqs = append(n.props.Reqs, e.id)
		n.props.Ops = append(n.props.Ops, *e.op)
		if len(n.props.Reqs) == maxBatch {
			props := n.props
			n.props = InPropose{}
			n.step(props)
		}
	case e.batch != nil:
		for _, op := range e.batch {
			n.handle(op, reads)
		}
	case e.xfer != nil:
		n.install(*e.xfer)
	default:
		if e.done != nil {
			n.pending[e.id] = e.done
		}
		n.step(e.in)
	}
}

// writesNothing reports whether stepping in can never ask for a log
// write while one is outstanding.
func writesNothing(in Input) bool {
	switch in.(type) {
	case InResp, InTick, InApplied, InRepaired, InPeers:
		return true
	}
	return false
}

func (n *Node) step(in Input) {
	if n.failed != nil {
		n.refuse(in)
		return
	}
	n.carry(n.m.Step(in))
}

// refuse answers a request on a node that cannot go on.
func (n *Node) refuse(in Input) {
	var reqs []uint64
	switch in := in.(type) {
	case InAppend:
		reqs = []uint64{in.Req}
	case InPromise:
		reqs = []uint64{in.Req}
	case InFetchLog:
		reqs = []uint64{in.Req}
	case InPromote:
		reqs = []uint64{in.Req}
	case InRemove:
		reqs = []uint64{in.Req}
	case InPropose:
		reqs = in.Reqs
	case InRead:
		reqs = in.Reqs
	}
	for _, r := range reqs {
		n.answer(r, result{err: n.failed})
	}
}

// carry does the work of rd, stepping the outcome of each durable write
// back into the machine, until a Ready asks for none.
func (n *Node) carry(rd Ready) {
	for {
		if rd.Promise != nil {
			began := time.Now()
			done := n.giveWay()
			err := n.db.SetPromised(*rd.Promise)
			done()
			if err != nil {
				// Only a refusal says something of the disk: a promise
				// already held writes nothing, so its success proves
				// nothing (a member whose disk refuses would count it as
				// taking writes again).
				n.noteDisk(err, "record promise", began)
				n.fail(fmt.Errorf("record promise of ballot %s: %w", *rd.Promise, err), rd)
				return
			}
		}
		if rd.Deposed {
			why := ""
			if err := n.disk.failure(); err != nil {
				// Said, not wrapped: the outcome is unknown all the same.
				why = fmt.Sprintf(" (its disk refused a write: %v)", err)
			}
			n.failWaiters(fmt.Errorf("%w: the primary stepped down before the entry was applied%s", wire.ErrDeposed, why))
			n.cfg.Metrics.steppedDown(rd.SteppedDown)
			if t := n.term.Swap(nil); t != nil {
				t.cancel()
			}
		}
		if rd.Leading != nil {
			n.lead(*rd.Leading)
			n.cfg.Metrics.promoted()
		}
		if rd.Rebuilt {
			done := n.giveWay()
			err := n.db.SetRebuilt()
			done()
			if err != nil {
				n.log.Warn("could not record that this member is whole again; it will count as rebuilding after a restart until its primary finds it whole", "err", err)
			}
		}
		n.waitFor(rd.Waits)
		var next Input
		switch {
		case rd.Hold != nil:
			next = InHeld{Err: n.ensureChunks(n.ctx, rd.Hold, rd.HoldFrom)}
		case rd.Entries != nil && rd.Own:
			n.writeOwn(rd.Entries)
		case rd.Entries != nil:
			began := time.Now()
			err := n.appendLog(rd.Entries)
			if err != nil || len(rd.Entries) > 0 { // an empty append writes nothing
				n.noteDisk(err, "append to log", began)
			}
			next = InStored{Err: err}
		}
		n.dispatch(rd)
		if next == nil {
			return
		}
		rd = n.m.Step(next)
	}
}

// writeOwn writes a primary's own entries in the background: answers
// from members keep being stepped (and may commit earlier entries) during
// the fsync, and the proposals that arrive meanwhile form the next batch.
func (n *Node) writeOwn(es []meta.Entry) {
	n.writing = true
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		began := time.Now()
		err := n.appendLog(es)
		n.noteDisk(err, "append to log", began)
		n.send(event{stored: &err})
	}()
}

// appendLog writes es to the log durably, timing the write.
func (n *Node) appendLog(es []meta.Entry) error {
	start := time.Now()
	err := n.db.Append(es)
	if err == nil {
		n.cfg.Metrics.loggedBatch(len(es), time.Since(start))
	}
	return err
}

// dispatch does the part of rd that needs no durable write first. The
// state is published before any answer goes out, so a caller sees the
// state its answer came from.
func (n *Node) dispatch(rd Ready) {
	n.publish()
	if rd.Commit > 0 {
		if rd.Commit > n.commitIdx.Load() {
			n.commitIdx.Store(rd.Commit)
		}
		select {
		case n.applyWake <- struct{}{}:
		default:
		}
	}
	if rd.Restore != "" {
		n.startTransfer(rd.Restore)
	}
	for _, s := range rd.Send {
		n.wg.Add(1)
		go n.deliver(s)
	}
	for _, r := range rd.Replies {
		n.answer(r.Req, result{msg: r.Msg, err: r.Err})
	}
	read := 0
	for _, r := range rd.Reads {
		n.answer(r.Req, result{index: r.Index, err: r.Err})
		if r.Err == nil {
			read++
		}
	}
	n.cfg.Metrics.answeredReads(read)
	if rd.Repair {
		if t := n.term.Load(); t != nil {
			t.wakeRepair()
		}
	}
	if rd.Changed {
		n.notifyChanged()
	}
}

// fail stops a node whose disk refused a promise, or whose store found
// meta.db corrupt: the answers of rd and everything after would rest on a
// promise that may not survive a crash, or on state the disk changed.
func (n *Node) fail(err error, rd Ready) {
	if n.failed != nil {
		return
	}
	if cause := n.db.Corrupt(); cause != nil {
		err = n.corruptErr()
		n.log.Error("this member's metadata store is corrupt: it stops serving its group (no votes, no leading, no reads) until the store is replaced", "err", cause)
	} else {
		n.log.Error("the disk refused a promise: this node answers nothing more until it restarts", "err", err)
	}
	n.failed = fmt.Errorf("replication: %w", err)
	for _, r := range rd.Replies {
		n.answer(r.Req, result{err: n.failed})
	}
	for _, r := range rd.Reads {
		n.answer(r.Req, result{err: n.failed})
	}
	for _, w := range rd.Waits {
		n.answer(w.Req, result{err: n.failed})
	}
	if rd := n.m.Step(InStepDown{Reason: StepDownDisk, Why: "promise not recorded"}); rd.Deposed {
		n.cfg.Metrics.steppedDown(rd.SteppedDown)
	}
	for id := range n.pending {
		n.answer(id, result{err: n.failed})
	}
	n.failWaiters(fmt.Errorf("%w: %w", wire.ErrDeposed, n.failed))
	if t := n.term.Swap(nil); t != nil {
		t.cancel()
	}
	n.publish()
	n.notifyChanged()
}

// corruptErr is what a node whose store found meta.db corrupt answers
// every request with: it is not the primary, whatever it was, so a router
// asks another member.
func (n *Node) corruptErr() error {
	return fmt.Errorf("%w: %s stopped serving its group: %v", wire.ErrNotPrimary, n.cfg.Name, n.db.Corrupt())
}

// storeErr is err as the node answers it: once the store has found
// meta.db corrupt, any failure is that.
func (n *Node) storeErr(err error) error {
	if err != nil && n.db.Corrupt() != nil {
		return n.corruptErr()
	}
	return err
}

func (n *Node) answer(req uint64, res result) {
	if ch, ok := n.pending[req]; ok {
		delete(n.pending, req)
		ch <- res
	}
}

// waitFor moves proposals now in the log to the waiters the apply
// goroutine answers.
func (n *Node) waitFor(ws []Wait) {
	if len(ws) == 0 {
		return
	}
	n.waitMu.Lock()
	defer n.waitMu.Unlock()
	for _, w := range ws {
		if ch, ok := n.pending[w.Req]; ok {
			delete(n.pending, w.Req)
			n.waiters[w.Index] = waiter{ballot: w.Ballot, done: ch}
		}
	}
}

// failWaiters answers every proposal waiting in the log with err: its
// outcome is unknown (a later primary may commit it).
func (n *Node) failWaiters(err error) {
	n.waitMu.Lock()
	defer n.waitMu.Unlock()
	for idx, w := range n.waiters {
		w.done <- result{err: fmt.Errorf("entry %d: %w", idx, err)}
		delete(n.waiters, idx)
	}
}

// lead starts the chunk maintainer for a new ballot.
func (n *Node) lead(b meta.Ballot) {
	ctx, cancel := context.WithCancel(n.ctx)
	t := &term{ballot: b, ctx: ctx, cancel: cancel, repairWake: make(chan struct{}, 1), chunks: map[uint64]memberChunks{}}
	// Entries this node has not applied yet may carry a later clock: the
	// term's clock then starts behind, and the group's clock (the highest
	// applied) waits for it to catch up. It lags real time, never leads.
	clock, err := n.db.Clock()
	if err != nil {
		n.log.Warn("could not read the group's clock; this term counts from where it finds it when it next applies", "err", err)
	}
	t.clockBase, t.clockStart = clock, time.Now()
	if old := n.term.Swap(t); old != nil {
		old.cancel()
	}
	n.wg.Add(1)
	go n.chunkLoop(t)
}

// deliver sends one message and steps its answer.
func (n *Node) deliver(s Send) {
	defer n.wg.Done()
	timeout := n.cfg.RPCTimeout
	ctx, cancel := context.WithTimeout(n.ctx, timeout)
	resp, err := n.cfg.Transport.Call(ctx, s.Addr, s.Msg)
	cancel()
	n.post(InResp{ID: s.ID, Resp: resp, Err: err})
}

// publish makes the machine's state visible to other goroutines, if it
// changed.
func (n *Node) publish() {
	st := n.m.status()
	if v := n.view.Load(); v != nil && v.failed == n.failed && v.promised == n.m.promised && v.peersGen == n.m.peersGen && sameStatus(v.status, st) {
		return
	}
	n.view.Store(&nodeView{status: st, promised: n.m.promised, peers: n.m.peers, peersGen: n.m.peersGen, failed: n.failed})
}

// sameStatus compares two states, the configuration by identity (the
// machine replaces it whenever it changes).
func sameStatus(a, b Status) bool {
	return a.Role == b.Role && a.Ballot == b.Ballot && a.Ready == b.Ready && a.Forming == b.Forming && a.InSync == b.InSync && a.Rebuilding == b.Rebuilding &&
		a.Leader == b.Leader && a.Commit == b.Commit && a.Applied == b.Applied && a.LastIndex == b.LastIndex &&
		len(a.Voters) == len(b.Voters) && (len(a.Voters) == 0 || &a.Voters[0] == &b.Voters[0])
}

// shutdown answers everything still waiting on the run goroutine.
func (n *Node) shutdown() {
	if rd := n.m.Step(InStepDown{Reason: StepDownClosing, Why: "closing"}); rd.Deposed {
		n.cfg.Metrics.steppedDown(rd.SteppedDown)
	}
	for id := range n.pending {
		n.answer(id, result{err: errClosed})
	}
	if t := n.term.Swap(nil); t != nil {
		t.cancel()
	}
	n.publish()
	n.notifyChanged()
}

package replication

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/wire"
)

// Scenario tests of invariants 1-3 on a testCluster. Each logs its seed;
// the network's faults and the writers' choices derive from it.

// A primary cut off from both replicas acknowledges nothing; the majority
// side promotes a new primary and takes writes; after the heal the old
// primary sees the higher ballot, steps down and converges.
func TestPartitionedPrimary(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.startAll(3, 1, 2, 3)
	acks := newAckLog()
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	for i := range 5 {
		if err := acks.put(ctx, c.node(3), fmt.Sprintf("/before%d", i), fmt.Sprintf("b%d", i)); err != nil {
			t.Fatalf("write before the cut: %v", err)
		}
	}

	c.net.Partition(c.addrs(3), c.addrs(1, 2))
	old := c.node(3)
	var afterCut []string
	for i := range 3 {
		path := fmt.Sprintf("/cut%d", i)
		afterCut = append(afterCut, path)
		wctx, wcancel := ctxT(400 * time.Millisecond)
		err := acks.put(wctx, old, path, "lost")
		wcancel()
		if err == nil {
			t.Fatalf("isolated primary acknowledged %s", path)
		}
		t.Logf("write %s through the isolated primary: %v", path, err)
	}
	// An op that needs no chunk reaches the old primary's log, and still
	// must not be acknowledged.
	wctx, wcancel := ctxT(400 * time.Millisecond)
	_, err := old.Propose(wctx, meta.Op{Kind: meta.OpMkdir, Path: "/cutdir"})
	wcancel()
	if err == nil {
		t.Fatal("isolated primary acknowledged mkdir /cutdir")
	}
	afterCut = append(afterCut, "/cutdir")
	// Nor may it serve a linearizable read.
	rctx, rcancel := ctxT(400 * time.Millisecond)
	if _, err := read(rctx, old, "/before0"); err == nil {
		t.Fatal("isolated primary served a linearizable read")
	}
	rcancel()

	if err := c.promote(2, 2); err != nil {
		t.Fatalf("promote the majority side: %v", err)
	}
	for i := range 5 {
		if err := acks.put(ctx, c.node(2), fmt.Sprintf("/after%d", i), fmt.Sprintf("a%d", i)); err != nil {
			t.Fatalf("write to the new primary: %v", err)
		}
	}
	if s := old.Status(); s.Role != Leader {
		t.Logf("old primary already %s before the heal", s.Role)
	}

	c.net.Heal()
	want := meta.Ballot{Term: 2, Node: 2}
	if err := harness.WaitFor(ctx, "old primary to step down to a follower of 2/2", func() bool {
		s := old.Status()
		return s.Role == Follower && s.Ballot == want && !s.Ready
	}); err != nil {
		t.Fatalf("%v; status %+v", err, old.Status())
	}
	c.assertConverged(ctx)
	acks.checkPrimary(ctx, t, c.node(2))
	c.checkEveryMember(t, acks)
	for _, path := range afterCut {
		for _, id := range c.liveIDs() {
			if _, err := localRead(c.node(id), path); !errors.Is(err, meta.ErrNotFound) {
				t.Errorf("node %d: %s, written only on the isolated primary, = %v; want not found", id, path, err)
			}
		}
	}
}

// A proposal appended only on a primary cut off from its replicas ends in
// an error once a new primary takes over, and the entry does not survive.
func TestDeposedMidWrite(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.startAll(3, 1, 2, 3)
	acks := newAckLog()
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	if err := acks.put(ctx, c.node(3), "/kept", "k"); err != nil {
		t.Fatal(err)
	}
	// The content reaches every member first, so only the metadata
	// entry is cut off.
	data := []byte("orphan")
	h := meta.HashOf(data)
	if err := c.node(3).WriteChunk(ctx, h, data); err != nil {
		t.Fatal(err)
	}

	old := c.node(3)
	before := old.Status().LastIndex
	c.net.Partition(c.addrs(3), c.addrs(1, 2))
	type outcome struct {
		r   meta.Result
		err error
	}
	res := make(chan outcome, 1)
	go func() {
		pctx, pcancel := ctxT(15 * time.Second)
		defer pcancel()
		f := &meta.Inode{Size: int64(len(data)), Hash: h.String(), Chunks: []meta.ChunkRef{{Hash: h, Size: int64(len(data))}}}
		r, err := old.Propose(pctx, meta.Op{Kind: meta.OpPut, Path: "/orphan", File: f})
		res <- outcome{r, err}
	}()
	if err := harness.WaitFor(ctx, "the proposal in the old primary's local log", func() bool {
		return old.Status().LastIndex > before
	}); err != nil {
		t.Fatal(err)
	}

	if err := c.promote(2, 2); err != nil {
		t.Fatalf("promote the majority side: %v", err)
	}
	if err := acks.put(ctx, c.node(2), "/new", "n"); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-res:
		t.Fatalf("proposal on the cut-off primary returned before the heal: %+v, %v", o.r, o.err)
	default:
	}

	c.net.Heal()
	select {
	case o := <-res:
		if o.err == nil {
			t.Fatalf("deposed primary acknowledged a write that was never on a majority (result %+v)", o.r)
		}
		if !isUnknownOutcome(o.err) {
			t.Fatalf("deposed proposal: %v, want ErrDeposed, ErrNotPrimary or a timeout", o.err)
		}
		t.Logf("deposed proposal: %v", o.err)
	case <-time.After(10 * time.Second):
		t.Fatal("the deposed proposal did not return within 10s of the heal")
	}
	c.assertConverged(ctx)
	acks.checkPrimary(ctx, t, c.node(2))
	c.checkEveryMember(t, acks)
	for _, id := range c.liveIDs() {
		if _, err := localRead(c.node(id), "/orphan"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("node %d: /orphan, never on a majority, = %v; want not found", id, err)
		}
	}
}

// Invariant 2: a primary left alone with 2 of 3 nodes stopped commits
// nothing.
func TestMinorityCannotCommit(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.startAll(3, 1, 2, 3)
	acks := newAckLog()
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	if err := acks.put(ctx, c.node(3), "/kept", "k"); err != nil {
		t.Fatal(err)
	}
	p := c.node(3)
	c.stop(1)
	c.stop(2)
	commit := p.Status().Commit

	wctx, wcancel := ctxT(500 * time.Millisecond)
	if err := acks.put(wctx, p, "/alone", "a"); err == nil {
		t.Fatal("a primary without a majority acknowledged a write")
	} else if !isUnknownOutcome(err) {
		t.Errorf("write without a majority: %v, want ErrNoQuorum or a timeout", err)
	}
	wcancel()
	wctx, wcancel = ctxT(500 * time.Millisecond)
	if _, err := p.Propose(wctx, meta.Op{Kind: meta.OpMkdir, Path: "/alonedir"}); err == nil {
		t.Fatal("a primary without a majority acknowledged mkdir")
	} else if !isUnknownOutcome(err) {
		t.Errorf("mkdir without a majority: %v, want ErrNoQuorum or a timeout", err)
	}
	wcancel()
	if s := p.Status(); s.Commit != commit {
		t.Fatalf("commit moved from %d to %d without a majority", commit, s.Commit)
	}

	// With the others back the group works again; the entry the lonely
	// primary logged may commit now, which is allowed: it was never
	// acknowledged.
	c.start(1)
	c.start(2)
	if err := acks.put(ctx, p, "/back", "b"); err != nil {
		t.Fatalf("write after the majority returned: %v", err)
	}
	c.assertConverged(ctx)
	acks.checkPrimary(ctx, t, p)
	c.checkEveryMember(t, acks)
}

// A replica that missed more entries than the primary's log retains
// catches up by installing a snapshot, then follows the log again.
func TestLaggingReplicaCatchesUpBySnapshot(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) { cfg.LogRetain = 5 }
	c.startAll(3, 1, 2, 3)
	acks := newAckLog()
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	if err := acks.put(ctx, c.node(3), "/first", "f"); err != nil {
		t.Fatal(err)
	}
	c.stop(1)
	for i := range 50 {
		if err := acks.put(ctx, c.node(3), fmt.Sprintf("/f%02d", i), fmt.Sprintf("content %d", i)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	p := c.node(3)
	if err := harness.WaitFor(ctx, "the primary to compact its log", func() bool {
		st, err := p.db.State()
		return err == nil && st.SnapIndex > 0
	}); err != nil {
		t.Fatal(err)
	}

	n1 := c.start(1)
	c.assertConverged(ctx)
	st, err := n1.db.State()
	if err != nil {
		t.Fatal(err)
	}
	if st.SnapIndex == 0 {
		t.Fatalf("lagging replica caught up without a snapshot: %+v", st)
	}
	t.Logf("lagging replica installed a snapshot: %+v", st)
	assertChunksHeld(t, 1, n1)

	// After the snapshot the replica follows the log: new writes reach it
	// as entries, not as one snapshot after another.
	for i := range 5 {
		if err := acks.put(ctx, p, fmt.Sprintf("/g%d", i), fmt.Sprintf("later %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := harness.WaitFor(ctx, "the primary to see the replica match its log", func() bool {
		caught := false
		p.inspect(func(m *Machine) { caught = m.lead != nil && m.lead.match[1] == m.last })
		return caught
	}); err != nil {
		t.Fatal(err)
	}
	c.assertConverged(ctx)
	acks.checkPrimary(ctx, t, p)
	c.checkEveryMember(t, acks)
	for _, id := range c.liveIDs() {
		assertChunksHeld(t, id, c.node(id))
	}
}

// Invariant 2 at the replica: an Append from a ballot below the replica's
// promise, or below the primary in its gossip view, changes nothing.
func TestStaleBallotRejected(t *testing.T) {
	b := func(term, node uint64) meta.Ballot { return meta.Ballot{Term: term, Node: node} }
	ctx, cancel := ctxT(5 * time.Second)
	defer cancel()
	net := wire.NewMemNetwork(testSeed(t))
	entries := func(bal meta.Ballot, from uint64, n int) []meta.Entry {
		var es []meta.Entry
		for i := range n {
			es = append(es, meta.Entry{Index: from + uint64(i), Ballot: bal, Op: meta.Op{Kind: meta.OpMkdir, Path: fmt.Sprintf("/d%d-%d", bal.Term, i)}})
		}
		return es
	}

	t.Run("promise", func(t *testing.T) {
		n := openNode(t, 2, "n2", net.Transport("n2"), nil)
		resp, err := n.Handle(ctx, &wire.Append{Group: "g", Ballot: b(2, 1), Leader: "n1", Entries: entries(b(2, 1), 1, 2)})
		if r, ok := resp.(*wire.AppendResp); err != nil || !ok || !r.OK || r.LastIndex != 2 {
			t.Fatalf("append at 2/1: %+v, %v", resp, err)
		}
		// A lower ballot: a lower term, and the same term from a lower node.
		for _, stale := range []meta.Ballot{b(1, 3), b(2, 0)} {
			resp, err = n.Handle(ctx, &wire.Append{Group: "g", Ballot: stale, Leader: "n3", PrevIndex: 2, PrevBallot: b(2, 1), Entries: entries(stale, 3, 1), Commit: 3})
			r, ok := resp.(*wire.AppendResp)
			if err != nil || !ok || r.OK || r.Promised != b(2, 1) {
				t.Fatalf("append at %s after promising 2/1: %+v, %v; want a refusal naming 2/1", stale, resp, err)
			}
			resp, err = n.Handle(ctx, &wire.Append{Group: "g", Ballot: stale, Leader: "n3", Probe: true})
			if r, ok := resp.(*wire.AppendResp); err != nil || !ok || r.OK {
				t.Fatalf("probe at %s after promising 2/1: %+v, %v; want a refusal", stale, resp, err)
			}
			resp, err = n.Handle(ctx, &wire.Promise{Group: "g", Ballot: stale})
			if r, ok := resp.(*wire.PromiseResp); err != nil || !ok || r.OK || r.Promised != b(2, 1) {
				t.Fatalf("promise for %s after promising 2/1: %+v, %v; want a refusal", stale, resp, err)
			}
		}
		if s := n.Status(); s.LastIndex != 2 || s.Commit != 0 || s.Ballot != b(2, 1) || s.Leader != "n1" {
			t.Fatalf("stale appends changed the replica: %+v", s)
		}
		// A higher promise makes the old primary's ballot stale too.
		resp, err = n.Handle(ctx, &wire.Promise{Group: "g", Ballot: b(3, 3)})
		if r, ok := resp.(*wire.PromiseResp); err != nil || !ok || !r.OK || r.LastIndex != 2 {
			t.Fatalf("promise for 3/3: %+v, %v", resp, err)
		}
		resp, err = n.Handle(ctx, &wire.Append{Group: "g", Ballot: b(2, 1), Leader: "n1", PrevIndex: 2, PrevBallot: b(2, 1), Entries: entries(b(2, 1), 3, 1)})
		if r, ok := resp.(*wire.AppendResp); err != nil || !ok || r.OK || r.Promised != b(3, 3) {
			t.Fatalf("append at 2/1 after promising 3/3: %+v, %v; want a refusal naming 3/3", resp, err)
		}
		// The promise survives a restart.
		if p, err := n.db.Promised(); err != nil || p != b(3, 3) {
			t.Fatalf("durable promise %s, %v; want 3/3", p, err)
		}
	})

	t.Run("promote with another node's ballot", func(t *testing.T) {
		n := openNode(t, 5, "n5", net.Transport("n5"), nil)
		if err := n.Promote(ctx, b(1, 6)); err == nil {
			t.Fatal("node 5 promoted itself with ballot 1/6 of node 6")
		}
		if s := n.Status(); s.Role != Follower || !s.Ballot.IsZero() {
			t.Fatalf("refused promotion changed the node: %+v", s)
		}
	})

	t.Run("gossip view", func(t *testing.T) {
		view := b(3, 2)
		n := openNode(t, 4, "n4", net.Transport("n4"), func(cfg *Config) {
			cfg.ViewPrimary = func() (meta.Ballot, bool) { return view, true }
		})
		for _, stale := range []meta.Ballot{b(2, 9), b(3, 1)} {
			_, err := n.Handle(ctx, &wire.Append{Group: "g", Ballot: stale, Leader: "n9", Entries: entries(stale, 1, 1)})
			if !errors.Is(err, wire.ErrStaleBallot) {
				t.Fatalf("append at %s with primary 3/2 in view: %v; want ErrStaleBallot", stale, err)
			}
		}
		if s := n.Status(); s.LastIndex != 0 || !s.Ballot.IsZero() || s.Leader != "" {
			t.Fatalf("refused appends changed the replica: %+v", s)
		}
		resp, err := n.Handle(ctx, &wire.Append{Group: "g", Ballot: view, Leader: "n2", Entries: entries(view, 1, 1)})
		if r, ok := resp.(*wire.AppendResp); err != nil || !ok || !r.OK {
			t.Fatalf("append from the primary in view: %+v, %v", resp, err)
		}
	})
}

// Drops and delays (which reorder messages) with concurrent writers and
// leader changes driven by the test: every acknowledged write survives
// with its content, the members converge, and no ballot is ever ready on
// two nodes.
func TestDropsAndReordering(t *testing.T) {
	seed := testSeed(t)
	c := newTestCluster(t, seed, 1, 2, 3)
	c.startAll(3, 1, 2, 3)
	watch := c.watchPrimaries()
	acks := newAckLog()
	ctx, cancel := ctxT(40 * time.Second)
	defer cancel()

	var pmu sync.Mutex
	primary := uint64(3)
	current := func() *Node {
		pmu.Lock()
		defer pmu.Unlock()
		return c.node(primary)
	}

	c.net.SetFaults(0.1, 20*time.Millisecond)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopWriters := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopWriters() // also when the test fails early
	const writers = 4
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := wire.ErrNotPrimary
				if n := current(); n != nil {
					wctx, wcancel := ctxT(time.Duration(300+rng.IntN(700)) * time.Millisecond)
					err = acks.put(wctx, n, fmt.Sprintf("/w%d-%d", w, i), fmt.Sprintf("writer %d write %d seed %d", w, i, seed))
					wcancel()
				}
				if err != nil {
					// Back off rather than spin while there is no primary.
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
	}

	waitAcks := func(more int) {
		t.Helper()
		want := acks.count() + more
		if err := harness.WaitFor(ctx, fmt.Sprintf("%d acknowledged writes", want), func() bool { return acks.count() >= want }); err != nil {
			t.Fatal(err)
		}
	}
	waitAcks(10)
	for change := range 3 {
		pmu.Lock()
		old := primary
		pmu.Unlock()
		c.stop(old)
		next := c.liveIDs()[len(c.liveIDs())-1]
		b, err := c.promoteRetry(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("change %d: node %d stopped, node %d leads %s", change, old, next, b)
		pmu.Lock()
		primary = next
		pmu.Unlock()
		c.start(old)
		waitAcks(10)
	}
	stopWriters()

	c.net.SetFaults(0, 0)
	c.net.Heal()
	watch.finish(t)
	p := current()
	if err := harness.WaitFor(ctx, "the last primary to be ready", func() bool { return p.Status().Ready }); err != nil {
		t.Fatal(err)
	}
	acks.mu.Lock()
	t.Logf("%d writes acknowledged, %d not", len(acks.acked), len(acks.refused))
	acks.mu.Unlock()
	acks.checkPrimary(ctx, t, p)
	c.assertConverged(ctx)
	c.checkEveryMember(t, acks)
	for _, id := range c.liveIDs() {
		assertChunksHeld(t, id, c.node(id))
	}
}

// A snapshot carries the sender's whole log, including entries after its
// applied index whose chunks the namespace does not name yet. A member
// that installed one must still hold an entry's chunks before it
// acknowledges the entry, or a write acknowledged by that member and the
// primary is lost with the primary.
func TestSnapshotTailChunks(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) { cfg.LogRetain = 5 }
	c.startAll(3, 1, 2, 3)
	acks := newAckLog()
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	c.stop(1)
	for i := range 30 {
		if err := acks.put(ctx, c.node(3), fmt.Sprintf("/f%02d", i), fmt.Sprintf("content %d", i)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	p := c.node(3)
	if err := harness.WaitFor(ctx, "the primary to compact its log", func() bool {
		st, err := p.db.State()
		return err == nil && st.SnapIndex > 0
	}); err != nil {
		t.Fatal(err)
	}

	// Cut node 2 off: the chunk then lands on the primary alone (the
	// write fails for want of a majority), and the entry naming it stays
	// uncommitted at the tail of the primary's log.
	c.net.Partition(c.addrs(2), c.addrs(1, 3))
	data := []byte("only on the primary")
	h := meta.HashOf(data)
	wctx, wcancel := ctxT(300 * time.Millisecond)
	if err := p.WriteChunk(wctx, h, data); err == nil {
		t.Fatal("chunk write acknowledged by one member of three")
	}
	wcancel()
	if err := harness.WaitFor(ctx, "the chunk on the primary's disk", func() bool { return p.db.Chunks.Has(h) }); err != nil {
		t.Fatal(err)
	}
	before := p.Status().LastIndex
	type outcome struct {
		r   meta.Result
		err error
	}
	res := make(chan outcome, 1)
	go func() {
		f := &meta.Inode{Size: int64(len(data)), Hash: h.String(), Chunks: []meta.ChunkRef{{Hash: h, Size: int64(len(data))}}}
		r, err := p.Propose(ctx, meta.Op{Kind: meta.OpPut, Path: "/tail", File: f})
		res <- outcome{r, err}
	}()
	if err := harness.WaitFor(ctx, "the entry at the tail of the primary's log", func() bool {
		return p.Status().LastIndex > before
	}); err != nil {
		t.Fatal(err)
	}

	// Node 1 returns behind the compacted log: it installs a snapshot
	// that holds the entry, then the primary resumes the log after it.
	n1 := c.start(1)
	if o := <-res; o.err != nil {
		t.Fatalf("write of /tail once node 1 returned: %v", o.err)
	}
	acks.mu.Lock()
	acks.acked["/tail"] = string(data)
	acks.mu.Unlock()
	// Acknowledged by the primary and node 1 only: node 1 must hold the
	// content, since the primary may now be lost.
	if !n1.db.Chunks.Has(h) {
		t.Fatalf("node 1 acknowledged the entry for /tail without its chunk")
	}
	if st, err := n1.db.State(); err != nil || st.SnapIndex == 0 {
		t.Fatalf("node 1 did not install a snapshot: %+v, %v", st, err)
	}

	// Lose the primary; the other two elect a new one, which serves
	// every acknowledged write.
	c.stop(3)
	c.net.Heal()
	if _, err := c.promoteRetry(ctx, 2); err != nil {
		t.Fatal(err)
	}
	acks.checkPrimary(ctx, t, c.node(2))
	c.assertConverged(ctx)
	c.checkEveryMember(t, acks)
	for _, id := range c.liveIDs() {
		assertChunksHeld(t, id, c.node(id))
	}
}

// Takeovers while the old primary is alive and busy (gossip chose another
// leader, for instance after a false suspicion): writes in flight at the
// old primary end in success or an error, and every success survives.
func TestTakeoverUnderLoad(t *testing.T) {
	seed := testSeed(t)
	c := newTestCluster(t, seed, 1, 2, 3)
	c.startAll(3, 1, 2, 3)
	watch := c.watchPrimaries()
	acks := newAckLog()
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	c.net.SetFaults(0, 5*time.Millisecond)

	var pmu sync.Mutex
	primary := uint64(3)
	current := func() *Node {
		pmu.Lock()
		defer pmu.Unlock()
		return c.node(primary)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopWriters := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopWriters() // also when the test fails early
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				wctx, wcancel := ctxT(time.Second)
				err := acks.put(wctx, current(), fmt.Sprintf("/t%d-%d", w, i), fmt.Sprintf("%d/%d/%d", w, i, seed))
				wcancel()
				if err != nil {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
	}
	waitAcks := func(more int) {
		t.Helper()
		want := acks.count() + more
		if err := harness.WaitFor(ctx, fmt.Sprintf("%d acknowledged writes", want), func() bool { return acks.count() >= want }); err != nil {
			t.Fatal(err)
		}
	}
	waitAcks(20)
	for _, next := range []uint64{2, 1, 3} {
		// The old primary keeps taking writes until it learns of the
		// new ballot; the writers move over once the new one is ready.
		b, err := c.promoteRetry(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node %d leads %s", next, b)
		pmu.Lock()
		primary = next
		pmu.Unlock()
		waitAcks(20)
	}
	stopWriters()
	c.net.SetFaults(0, 0)
	watch.finish(t)
	acks.mu.Lock()
	t.Logf("%d writes acknowledged, %d not", len(acks.acked), len(acks.refused))
	acks.mu.Unlock()
	acks.checkPrimary(ctx, t, current())
	c.assertConverged(ctx)
	c.checkEveryMember(t, acks)
}

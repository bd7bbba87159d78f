package replication

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/wire"
)

var seedFlag = flag.Uint64("seed", 0, "seed for the randomised tests (0: a new one each run)")

// testSeed returns a seed for one test and logs it; to replay a failure,
// run the test again with -seed set to the logged value.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed %d)", seed, seed)
	return seed
}

// ackLog records every write a client saw acknowledged, and the paths
// whose writes were refused, so a scenario can check invariant 1 at the
// end: every acknowledged write is readable with its content.
type ackLog struct {
	mu      sync.Mutex
	acked   map[string]string
	refused map[string]error
}

func newAckLog() *ackLog {
	return &ackLog{acked: map[string]string{}, refused: map[string]error{}}
}

// put writes through n and records the outcome.
func (a *ackLog) put(ctx context.Context, n *Node, path, content string) error {
	err := put(ctx, n, path, content)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		a.acked[path] = content
	} else {
		a.refused[path] = err
	}
	return err
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

func (a *ackLog) snapshot() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.acked)
}

// checkPrimary reads every acknowledged write through the primary p. A
// chunk write is acknowledged once a majority holds it, which a new
// primary may not be part of: its repair rounds then copy the chunk from
// a member that holds it, so a read waits up to 10 s for that.
func (a *ackLog) checkPrimary(ctx context.Context, t *testing.T, p *Node) {
	t.Helper()
	acked := a.snapshot()
	for _, path := range slices.Sorted(maps.Keys(acked)) {
		var got string
		var err error
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		werr := harness.WaitFor(wctx, "the primary to hold "+path+"'s chunk", func() bool {
			got, err = read(wctx, p, path)
			return !errors.Is(err, meta.ErrNotFound)
		})
		cancel()
		if werr != nil || err != nil || got != acked[path] {
			t.Errorf("acknowledged write %s = %q, %v at the primary; want %q", path, got, err, acked[path])
		}
	}
}

// checkEveryMember reads every acknowledged write from each live member's
// own store: a converged member holds the metadata and the chunks.
func (c *testCluster) checkEveryMember(t *testing.T, a *ackLog) {
	t.Helper()
	acked := a.snapshot()
	for _, id := range c.liveIDs() {
		n := c.node(id)
		for _, path := range slices.Sorted(maps.Keys(acked)) {
			got, err := localRead(n, path)
			if err != nil || got != acked[path] {
				t.Errorf("node %d: acknowledged write %s = %q, %v; want %q", id, path, got, err, acked[path])
			}
		}
	}
}

// localRead reads path from n's own namespace and chunk store.
func localRead(n *Node, path string) (string, error) {
	in, err := n.db.Reader().LookupAt(0, path, nil, 0)
	if err != nil {
		return "", err
	}
	var out []byte
	for _, c := range in.Chunks {
		b, err := n.db.Chunks.Get(c.Hash)
		if err != nil {
			return "", err
		}
		out = append(out, b...)
	}
	return string(out), nil
}

// assertChunksHeld checks that n stores every chunk its namespace names.
func assertChunksHeld(t *testing.T, id uint64, n *Node) {
	t.Helper()
	err := n.db.ForEachChunk(func(c meta.ChunkRef) error {
		if _, err := n.db.Chunks.Get(c.Hash); err != nil {
			t.Errorf("node %d: chunk %s: %v", id, c.Hash, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("node %d: scan chunks: %v", id, err)
	}
}

func (c *testCluster) liveIDs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.nodes))
}

func (c *testCluster) addrs(ids ...uint64) []string {
	var out []string
	for _, id := range ids {
		out = append(out, addrOf(id))
	}
	return out
}

// startAll starts the nodes, promotes first with term 1 and waits until
// every node is a voter.
func (c *testCluster) startAll(first uint64, ids ...uint64) {
	c.t.Helper()
	for _, id := range ids {
		c.start(id)
	}
	if err := c.promote(first, 1); err != nil {
		c.t.Fatal(err)
	}
	c.waitAllVoters(first, len(ids))
}

// primaryWatch polls every live node's Status and records a violation of
// invariant 2 whenever a ballot is seen Ready on two different nodes, or
// Ready on a node that does not own it.
type primaryWatch struct {
	mu         sync.Mutex
	owner      map[meta.Ballot]uint64
	violations []string
	stop       chan struct{}
	done       chan struct{}
}

func (c *testCluster) watchPrimaries() *primaryWatch {
	w := &primaryWatch{owner: map[meta.Ballot]uint64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			c.mu.Lock()
			nodes := maps.Clone(c.nodes)
			c.mu.Unlock()
			for id, n := range nodes {
				s := n.Status()
				if s.Ready {
					w.saw(id, s.Ballot)
				}
			}
		}
	}()
	return w
}

func (w *primaryWatch) saw(id uint64, b meta.Ballot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b.Node != id {
		w.violations = append(w.violations, fmt.Sprintf("node %d ready with ballot %s of node %d", id, b, b.Node))
	}
	if o, ok := w.owner[b]; ok && o != id {
		w.violations = append(w.violations, fmt.Sprintf("ballot %s ready on nodes %d and %d", b, o, id))
	}
	w.owner[b] = id
}

// finish stops the watch and fails the test on any violation.
func (w *primaryWatch) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.violations {
		t.Error(v)
	}
	t.Logf("ballots seen ready: %d", len(w.owner))
}

// maxTerm is the highest term any live node promised.
func (c *testCluster) maxTerm() uint64 {
	var t uint64
	for _, id := range c.liveIDs() {
		if n := c.node(id); n != nil {
			t = max(t, n.Status().Ballot.Term)
		}
	}
	return t
}

// promoteRetry promotes id with a term above every promise seen, retrying
// with a higher term until it is ready or ctx ends (under message loss a
// round of promises can fail).
func (c *testCluster) promoteRetry(ctx context.Context, id uint64) (meta.Ballot, error) {
	for {
		b := meta.Ballot{Term: c.maxTerm() + 1, Node: id}
		err := c.promote(id, b.Term)
		if err == nil {
			return b, nil
		}
		c.t.Logf("promote %d with %s: %v", id, b, err)
		if ctx.Err() != nil {
			return b, fmt.Errorf("promote node %d: %w (last error: %v)", id, ctx.Err(), err)
		}
	}
}

// isUnknownOutcome reports whether err is one of the errors a write may
// end with when it was not acknowledged.
func isUnknownOutcome(err error) bool {
	return errors.Is(err, wire.ErrDeposed) || errors.Is(err, wire.ErrNotPrimary) || errors.Is(err, wire.ErrNoQuorum) ||
		errors.Is(err, wire.ErrNotReady) || errors.Is(err, context.DeadlineExceeded)
}

package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// Tests of the chunk layer on a testCluster: repair rounds, the synced
// gate on new voters, garbage collection, touch, member removal and the
// scrubber.

// chunkData is the content of test chunk i of tag, padded to size bytes.
func chunkData(tag string, i, size int) []byte {
	b := []byte(fmt.Sprintf("%s %d ", tag, i))
	if len(b) < size {
		b = append(b, bytes.Repeat([]byte{byte(i)}, size-len(b))...)
	}
	return b
}

// writeChunks writes count chunks through the primary p.
func writeChunks(ctx context.Context, t *testing.T, p *Node, tag string, count, size int) []meta.Hash {
	t.Helper()
	var hs []meta.Hash
	for i := range count {
		data := chunkData(tag, i, size)
		h := meta.HashOf(data)
		if err := p.WriteChunk(ctx, h, data); err != nil {
			t.Fatalf("write chunk %s %d: %v", tag, i, err)
		}
		hs = append(hs, h)
	}
	return hs
}

func holdsAll(n *Node, hs []meta.Hash) bool {
	for _, h := range hs {
		if !n.db.Chunks.Has(h) {
			return false
		}
	}
	return true
}

// holders lists the live nodes that hold chunk h.
func (c *testCluster) holders(h meta.Hash) []uint64 {
	var out []uint64
	for _, id := range c.liveIDs() {
		if c.node(id).db.Chunks.Has(h) {
			out = append(out, id)
		}
	}
	return out
}

// waitHeld waits until every node of ids holds every chunk of hs.
func (c *testCluster) waitHeld(ctx context.Context, hs []meta.Hash, ids ...uint64) {
	c.t.Helper()
	err := harness.WaitFor(ctx, fmt.Sprintf("nodes %v to hold %d chunks", ids, len(hs)), func() bool {
		for _, id := range ids {
			if !holdsAll(c.node(id), hs) {
				return false
			}
		}
		return true
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// startQuiet forms a group when RepairInterval is too long to matter:
// first bootstraps it alone, and each later node's arrival as a fresh
// peer wakes the one repair round that marks it synced so it can join.
// After that no round runs unless a new peer appears.
func (c *testCluster) startQuiet(first uint64, ids ...uint64) {
	c.t.Helper()
	c.start(first)
	if err := c.promote(first, 1); err != nil {
		c.t.Fatal(err)
	}
	for _, id := range ids {
		if id != first {
			c.start(id)
		}
	}
	c.waitAllVoters(first, len(ids))
}

// chunkPath is where node id keeps chunk h (see store/chunks.go), or
// would under its hash alone if it holds none.
func (c *testCluster) chunkPath(id uint64, h meta.Hash) string {
	dir := filepath.Join(c.dirs[id], "chunks")
	if p, err := store.ChunkFile(dir, h); err == nil {
		return p
	}
	x := h.String()
	return filepath.Join(dir, x[:2], x)
}

// memberInfo returns the primary p's view of member id.
func memberInfo(t *testing.T, p *Node, id uint64) (wire.MemberInfo, *wire.GroupInfo) {
	t.Helper()
	info, err := p.GroupInfo()
	if err != nil {
		t.Fatalf("group info: %v", err)
	}
	for _, m := range info.Members {
		if m.ID == id {
			return m, info
		}
	}
	return wire.MemberInfo{}, info
}

// roundAfter waits for a repair round of the primary p that ended after
// the Unix-nanosecond time after, and returns when it ended. Two calls in
// a row guarantee a whole round that started after after.
func roundAfter(ctx context.Context, t *testing.T, p *Node, after int64) int64 {
	t.Helper()
	var last int64
	err := harness.WaitFor(ctx, "a repair round to end", func() bool {
		info, err := p.GroupInfo()
		if err == nil {
			last = info.Repair.LastRound
		}
		return last > after
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

func voterList(s Status) []uint64 {
	return slices.Sorted(slices.Values(voterIDs(s.Voters)))
}

// A member that was down while chunks were written, and one that lost
// chunk files, get every chunk back from the primary's repair rounds; the
// primary fetches a chunk only a member holds and passes it on.
func TestRepairRestoresMissingChunks(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) { cfg.RepairInterval = 50 * time.Millisecond }
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)

	c.net.Register(addrOf(3), nil) // down: a majority of 1 and 2 takes the writes
	hs := writeChunks(ctx, t, p, "while 3 was down", 20, 100)
	if got := c.holders(hs[0]); slices.Contains(got, 3) {
		t.Fatalf("chunk held by %v: node 3 received it while unreachable", got)
	}
	for _, h := range hs[:5] {
		if err := c.node(2).db.Chunks.Remove(h); err != nil {
			t.Fatal(err)
		}
	}
	only := []byte("held by node 2 alone")
	oh := meta.HashOf(only)
	if err := c.node(2).db.Chunks.Put(oh, only); err != nil {
		t.Fatal(err)
	}
	c.net.Register(addrOf(3), c.node(3))

	want := append(slices.Clone(hs), oh)
	c.waitHeld(ctx, want, 1, 2, 3)
	ref := p.db.Chunks.ListAll()
	for _, id := range []uint64{2, 3} {
		s := c.node(id).db.Chunks
		if got := s.ListAll(); !slices.Equal(got, ref) {
			t.Errorf("node %d holds %d chunks, the primary %d: %v vs %v", id, len(got), len(ref), got, ref)
		}
		if s.Digest() != p.db.Chunks.Digest() {
			t.Errorf("node %d's chunk digest differs from the primary's", id)
		}
	}
	// Repair made 27 copies, but a copy whose answer came after the RPC
	// timeout is made and not counted: on a slow machine only some are.
	if err := harness.WaitFor(ctx, "a round to find nothing under-replicated", func() bool {
		info, err := p.GroupInfo()
		return err == nil && info.Repair.UnderReplicated == 0 && info.Repair.Copied > 0
	}); err != nil {
		info, _ := p.GroupInfo()
		t.Fatalf("%v; repair progress %+v", err, info.Repair)
	}
}

// waitRefused waits until node n has applied the primary p's commit and
// two more repair rounds ran, and checks that n, which refuses chunks,
// holds none and is not in sync.
func waitRefused(ctx context.Context, t *testing.T, p, n *Node) {
	t.Helper()
	if err := harness.WaitFor(ctx, "the new node to apply the primary's commit", func() bool {
		return n.Status().Applied >= p.Status().Commit
	}); err != nil {
		t.Fatal(err)
	}
	roundAfter(ctx, t, p, roundAfter(ctx, t, p, time.Now().UnixNano()))
	if s := n.Status(); s.InSync || n.db.Chunks.Count() != 0 {
		t.Fatalf("node refusing chunks holds %d and reports %+v", n.db.Chunks.Count(), s)
	}
}

// liftAndWaitInSync lets n store chunks, waits until it is an in-sync
// voter of p's group, and fails if it was found in sync, or made a voter,
// before it held hs.
func liftAndWaitInSync(ctx context.Context, t *testing.T, p, n *Node, id uint64, hs []meta.Hash) {
	t.Helper()
	wasVoter := slices.Contains(voterList(p.Status()), id)
	n.db.Chunks.SetLimits(store.Limits{Capacity: 0})
	var early []string
	if err := harness.WaitFor(ctx, "the node to become an in-sync voter", func() bool {
		in := n.Status().InSync
		voter := slices.Contains(voterList(p.Status()), id)
		if (in || voter && !wasVoter) && !holdsAll(n, hs) {
			early = append(early, fmt.Sprintf("in sync %v, voter %v with %d of %d chunks", in, voter, n.db.Chunks.Count(), len(hs)))
		}
		return in && voter
	}); err != nil {
		t.Fatal(err)
	}
	for _, e := range early {
		t.Errorf("counted before it held every chunk: %s", e)
	}
	if got, want := n.db.Chunks.ListAll(), p.db.Chunks.ListAll(); !slices.Equal(got, want) {
		t.Errorf("node holds %v, the primary %v", got, want)
	}
}

// A member that does not hold every chunk (its store refuses them until
// the test lifts the limit) neither joins the voters nor reports itself in
// sync: first as a new peer with an empty store, taking the place of a
// voter removed from the formed group, then as a voter restarted with its
// chunk files gone, whose log is current.
func TestMemberInSyncOnlyWithEveryChunk(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3, 4)
	c.cfg = func(cfg *Config) {
		cfg.RepairInterval = 50 * time.Millisecond
		if cfg.ID == 4 {
			cfg.Store.Chunks.SetLimits(store.Limits{Capacity: 1}) // refuses every chunk until lifted
		}
	}
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)
	hs := writeChunks(ctx, t, p, "before the join", 10, 100)
	c.stop(3)
	if err := p.RemoveMember(ctx, 3); err != nil {
		t.Fatal(err)
	}

	n4 := c.start(4)
	waitRefused(ctx, t, p, n4)
	if m, _ := memberInfo(t, p, 4); m.Voter || m.Synced {
		t.Fatalf("node 4 holds no chunk yet the primary lists it as %+v", m)
	}
	if v := voterList(p.Status()); !slices.Equal(v, []uint64{1, 2}) {
		t.Fatalf("voters %v while node 4 lacks every chunk; want [1 2]", v)
	}
	liftAndWaitInSync(ctx, t, p, n4, 4, hs)

	c.stop(4)
	if err := os.RemoveAll(filepath.Join(c.dirs[4], "chunks")); err != nil {
		t.Fatal(err)
	}
	n4 = c.start(4)
	waitRefused(ctx, t, p, n4)
	liftAndWaitInSync(ctx, t, p, n4, 4, hs)
}

// With GroupSize voters already, a caught-up and synced peer stays a
// non-voting copy.
func TestFullGroupKeepsExtraPeerAsCopy(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3, 4)
	c.cfg = func(cfg *Config) { cfg.RepairInterval = 50 * time.Millisecond }
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)
	hs := writeChunks(ctx, t, p, "before the fourth", 5, 100)

	n4 := c.start(4)
	if err := harness.WaitFor(ctx, "node 4 to hold every chunk and match the log", func() bool {
		m, info := memberInfo(t, p, 4)
		return m.Synced && m.Match >= info.Commit
	}); err != nil {
		t.Fatal(err)
	}
	// Any add would have been proposed by now, and committed before this.
	roundAfter(ctx, t, p, roundAfter(ctx, t, p, time.Now().UnixNano()))
	if r, err := p.Propose(ctx, meta.Op{Kind: meta.OpMkdir, Path: "/after-fourth"}); err != nil || r.Err() != nil {
		t.Fatalf("mkdir: %v, %v", err, r.Err())
	}
	m, _ := memberInfo(t, p, 4)
	if m.Voter {
		t.Errorf("node 4 became a voter of a group of size 3: %+v", m)
	}
	if v := voterList(p.Status()); !slices.Equal(v, []uint64{1, 2, 3}) {
		t.Errorf("voters %v, want [1 2 3]", v)
	}
	if n4.Status().InSync {
		t.Error("non-voting node 4 reports itself in sync")
	}
	if !holdsAll(n4, hs) || m.Chunks != p.db.Chunks.Count() {
		t.Errorf("non-voting copy holds %d chunks (primary's view: %d), want %d", n4.db.Chunks.Count(), m.Chunks, p.db.Chunks.Count())
	}
}

// refSet is a ChunkRefs backed by a set of referenced hashes; it can be
// made to fail, and counts how often it was asked about each hash.
type refSet struct {
	mu    sync.Mutex
	refs  map[meta.Hash]bool
	asked map[meta.Hash]int
	err   error
}

func (r *refSet) lookup(_ context.Context, hs []meta.Hash) ([]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]bool, len(hs))
	for i, h := range hs {
		r.asked[h]++
		out[i] = r.refs[h]
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// locked runs f with r locked.
func (r *refSet) locked(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

// Garbage collection removes an unreferenced chunk idle past the grace
// from every member, and keeps a referenced one, a recently touched one,
// and everything while the reference query fails.
func TestGCCollectsUnreferencedIdleChunks(t *testing.T) {
	refs := &refSet{refs: map[meta.Hash]bool{}, asked: map[meta.Hash]int{}, err: errors.New("meta group unreachable")}
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) {
		cfg.RepairInterval, cfg.GCInterval, cfg.GCGrace = 50*time.Millisecond, 50*time.Millisecond, time.Minute
		cfg.ChunkRefs = refs.lookup
	}
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)
	hs := writeChunks(ctx, t, p, "gc", 3, 100)
	kept, garbage, touched := hs[0], hs[1], hs[2]
	c.waitHeld(ctx, hs, 1, 2, 3)
	refs.locked(func() { refs.refs[kept] = true })
	old := time.Now().Add(-time.Hour)
	for _, id := range []uint64{1, 2, 3} {
		for _, h := range hs {
			if !c.node(id).db.Chunks.Touch(h, old) {
				t.Fatalf("node %d lacks chunk %s", id, h)
			}
		}
	}
	if missing, err := p.TouchChunks(ctx, []meta.Hash{touched}); err != nil || len(missing) != 0 {
		t.Fatalf("touch: missing %v, %v", missing, err)
	}

	var asked, since int
	refs.locked(func() { since = refs.asked[garbage] })
	if err := harness.WaitFor(ctx, "two failed reference queries naming the idle chunk", func() bool {
		refs.locked(func() { asked = refs.asked[garbage] })
		return asked >= since+2 || !p.db.Chunks.Has(garbage)
	}); err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if got := c.holders(h); len(got) != 3 {
			t.Fatalf("while the reference query failed, a chunk went from all but %v", got)
		}
	}
	if info, err := p.GroupInfo(); err != nil || info.Repair.Collected != 0 {
		t.Fatalf("collected while the reference query failed: %+v, %v", info, err)
	}

	refs.locked(func() { refs.err = nil })
	if err := harness.WaitFor(ctx, "the unreferenced idle chunk to leave every member", func() bool {
		return len(c.holders(garbage)) == 0
	}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []meta.Hash{kept, touched} {
		if got := c.holders(h); len(got) != 3 {
			t.Errorf("a referenced or recently touched chunk is held by %v only; want [1 2 3]", got)
		}
	}
	if info, err := p.GroupInfo(); err != nil || info.Repair.Collected != 1 {
		t.Errorf("collected counter: %+v, %v; want 1", info, err)
	}
}

// A delete request treating chunks idle for under a second as garbage is
// refused, whatever the peer that sent it believes.
func TestDeleteChunksRefusesShortIdle(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1)
	n := c.start(1)
	ctx, cancel := ctxT(5 * time.Second)
	defer cancel()
	data := []byte("idle for an hour")
	h := meta.HashOf(data)
	if err := n.db.Chunks.Put(h, data); err != nil {
		t.Fatal(err)
	}
	n.db.Chunks.Touch(h, time.Now().Add(-time.Hour))
	tr := c.net.Transport("sender")
	for _, idle := range []time.Duration{0, -time.Hour, 999 * time.Millisecond} {
		_, err := tr.Call(ctx, addrOf(1), &wire.DeleteChunks{Group: "g", Hashes: []meta.Hash{h}, Idle: idle})
		if !errors.Is(err, wire.ErrBadMessage) {
			t.Errorf("delete with idle %s: %v, want %v", idle, err, wire.ErrBadMessage)
		}
		if !n.db.Chunks.Has(h) {
			t.Fatalf("delete with idle %s removed the chunk", idle)
		}
	}
	if _, err := tr.Call(ctx, addrOf(1), &wire.DeleteChunks{Group: "g", Hashes: []meta.Hash{h}, Idle: time.Second}); err != nil {
		t.Fatalf("delete with idle 1s: %v", err)
	}
	if n.db.Chunks.Has(h) {
		t.Error("delete with idle 1s kept a chunk idle for an hour")
	}
}

// TouchChunks on the primary refreshes chunks on a majority, fetches one
// the primary lacks, reports one nobody holds; a follower refuses it.
func TestTouchChunks(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	// Repair runs only when a peer appears: it cannot do touch's work.
	c.cfg = func(cfg *Config) { cfg.RepairInterval = time.Hour }
	c.startQuiet(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)
	hs := writeChunks(ctx, t, p, "touch", 2, 100)
	c.waitHeld(ctx, hs, 1, 2, 3)
	old := time.Now().Add(-time.Hour)
	for _, id := range []uint64{1, 2, 3} {
		for _, h := range hs {
			c.node(id).db.Chunks.Touch(h, old)
		}
	}
	idle := func(id uint64) []meta.Hash { return c.node(id).db.Chunks.Idle(time.Minute, time.Now()) }

	c.net.Register(addrOf(3), nil)
	if missing, err := p.TouchChunks(ctx, hs); err != nil || len(missing) != 0 {
		t.Fatalf("touch with node 3 down: missing %v, %v", missing, err)
	}
	for _, id := range []uint64{1, 2} {
		if got := idle(id); len(got) != 0 {
			t.Errorf("node %d: chunks %v still idle after the touch", id, got)
		}
	}
	if got := idle(3); !slices.Equal(got, p.db.Chunks.ListAll()) {
		t.Errorf("node 3 was down during the touch, yet its idle chunks are %v", got)
	}
	c.net.Register(addrOf(2), nil)
	if _, err := p.TouchChunks(ctx, hs); !errors.Is(err, wire.ErrNoQuorum) {
		t.Errorf("touch with two of three down: %v, want %v", err, wire.ErrNoQuorum)
	}
	c.net.Register(addrOf(2), c.node(2))
	c.net.Register(addrOf(3), c.node(3))

	only := []byte("touch: held by node 2 alone")
	oh := meta.HashOf(only)
	if err := c.node(2).db.Chunks.Put(oh, only); err != nil {
		t.Fatal(err)
	}
	if missing, err := p.TouchChunks(ctx, []meta.Hash{oh}); err != nil || len(missing) != 0 {
		t.Fatalf("touch of a chunk node 2 holds: missing %v, %v", missing, err)
	}
	if got := c.holders(oh); len(got) != 3 {
		t.Errorf("after the touch %v hold the chunk; want [1 2 3]", got)
	}

	lost := meta.HashOf([]byte("touch: held by nobody"))
	missing, err := p.TouchChunks(ctx, []meta.Hash{hs[0], lost})
	if err != nil || !slices.Equal(missing, []meta.Hash{lost}) {
		t.Errorf("touch of a chunk nobody holds: missing %v, %v; want [%s]", missing, err, lost)
	}

	tr := c.net.Transport("router")
	if _, err := tr.Call(ctx, addrOf(2), &wire.TouchChunks{Group: "g", Hashes: hs}); !errors.Is(err, wire.ErrNotPrimary) {
		t.Errorf("touch sent to a follower: %v, want %v", err, wire.ErrNotPrimary)
	}
	resp, err := tr.Call(ctx, addrOf(2), &wire.TouchChunks{Group: "g", Hashes: []meta.Hash{hs[0], lost}, Local: true})
	if r, ok := resp.(*wire.TouchResp); err != nil || !ok || !slices.Equal(r.Missing, []meta.Hash{lost}) {
		t.Errorf("local touch on a follower: %+v, %v; want missing [%s]", resp, err, lost)
	}
}

// RemoveMember takes a dead voter out through the log; it refuses to
// remove the primary, and only the primary may do it.
func TestRemoveMember(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) { cfg.RepairInterval = 50 * time.Millisecond }
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)
	if err := c.node(2).RemoveMember(ctx, 3); !errors.Is(err, wire.ErrNotPrimary) {
		t.Errorf("remove through a follower: %v, want %v", err, wire.ErrNotPrimary)
	}
	if err := p.RemoveMember(ctx, 1); err == nil {
		t.Error("the primary removed itself")
	}
	if v := voterList(p.Status()); !slices.Equal(v, []uint64{1, 2, 3}) {
		t.Fatalf("voters %v after refused removals, want [1 2 3]", v)
	}

	// A live member would be added back once caught up: remove a dead one.
	// The change that added a voter may still be committing: RemoveMember
	// then asks to retry.
	c.stop(3)
	var err error
	if werr := harness.WaitFor(ctx, "the primary to take a removal (no other change committing)", func() bool {
		err = p.RemoveMember(ctx, 3)
		return !errors.Is(err, wire.ErrNotReady)
	}); werr != nil || err != nil {
		t.Fatalf("remove node 3: %v; %v", err, werr)
	}
	if err := harness.WaitFor(ctx, "nodes 1 and 2 to see voters [1 2]", func() bool {
		for _, id := range []uint64{1, 2} {
			if !slices.Equal(voterList(c.node(id).Status()), []uint64{1, 2}) {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveMember(ctx, 3); err != nil {
		t.Errorf("removing a member that is no voter: %v, want nil", err)
	}
	if err := put(ctx, p, "/after-remove", "x"); err != nil {
		t.Errorf("write to the group of two: %v", err)
	}
}

// The scrubber finds a chunk corrupted on disk and fetches a good copy
// from a peer, on a follower and on the primary.
func TestScrubReplacesCorruptChunk(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) {
		cfg.RepairInterval = time.Hour // repair cannot be the one that fixes it
		cfg.ScrubRate = 64 << 20       // a 64 KiB chunk takes 1ms
	}
	c.startQuiet(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	hs := writeChunks(ctx, t, c.node(1), "scrub", 2, 64<<10)
	c.waitHeld(ctx, hs, 1, 2, 3)

	victims := map[uint64]meta.Hash{2: hs[0], 1: hs[1]}
	for id, h := range victims {
		b, err := os.ReadFile(c.chunkPath(id, h))
		if err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if err := os.WriteFile(c.chunkPath(id, h), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for id, h := range victims {
		path := c.chunkPath(id, h)
		if err := harness.WaitFor(ctx, fmt.Sprintf("node %d's scrubber to replace corrupt chunk %s", id, h), func() bool {
			b, err := os.ReadFile(path)
			return err == nil && meta.HashOf(b) == h && c.node(id).db.Chunks.Has(h)
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// heldChunkWrites is a member whose chunk writes wait until released,
// counting them: a slow replica behind a majority that answered.
type heldChunkWrites struct {
	*Node
	release chan struct{}
	mu      sync.Mutex
	stores  map[meta.Hash]int
}

func (h *heldChunkWrites) Handle(ctx context.Context, req wire.Message) (wire.Message, error) {
	if sc, ok := req.(*wire.StoreChunk); ok {
		h.mu.Lock()
		h.stores[sc.Hash]++
		h.mu.Unlock()
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Node.Handle(ctx, req)
}

func (h *heldChunkWrites) count(c meta.Hash) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stores[c]
}

// A repair round does not copy a chunk to a member that a write is still
// sending it to: the chunk goes once, and nothing is under-replicated
// once it has arrived.
func TestRepairLeavesChunksOnTheirWay(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) {
		cfg.RepairInterval = time.Hour // rounds run when the test says
		cfg.RPCTimeout = 5 * time.Second
	}
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)
	slow := &heldChunkWrites{Node: c.node(3), release: make(chan struct{}), stores: map[meta.Hash]int{}}
	c.net.Register(addrOf(3), slow)

	data := []byte("a chunk a slow member is still receiving")
	h := meta.HashOf(data)
	if err := p.WriteChunk(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitFor(ctx, "the write to reach the slow member", func() bool { return slow.count(h) == 1 }); err != nil {
		t.Fatal(err)
	}
	p.repairRound(p.term.Load())
	if n := slow.count(h); n != 1 {
		t.Fatalf("the slow member was sent the chunk %d times, want once: repair copied it while the write was on its way", n)
	}
	close(slow.release)
	c.waitHeld(ctx, []meta.Hash{h}, 1, 2, 3)
	p.repairRound(p.term.Load())
	if n := slow.count(h); n != 1 {
		t.Fatalf("the slow member was sent the chunk %d times, want once", n)
	}
	info, err := p.GroupInfo()
	if err != nil || info.Repair.UnderReplicated != 0 {
		t.Fatalf("repair progress %+v, %v: want nothing under-replicated once the chunk arrived", info.Repair, err)
	}
}

// The primary's report counts every member's chunks, its own included, at
// one moment (its last repair round), so a status read right after a
// write never shows the primary holding chunks its members seem to lack.
func TestGroupInfoCountsOneMoment(t *testing.T) {
	c := newTestCluster(t, testSeed(t), 1, 2, 3)
	c.cfg = func(cfg *Config) { cfg.RepairInterval = time.Hour } // rounds run when the test says
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	p := c.node(1)

	counts := func() map[uint64]int {
		info, err := p.GroupInfo()
		if err != nil {
			t.Fatalf("group info: %v", err)
		}
		out := map[uint64]int{}
		for _, m := range info.Members {
			out[m.ID] = m.Chunks
		}
		if max := max(out[1], out[2], out[3]); info.Chunks != max {
			t.Errorf("group chunks %d, members %v", info.Chunks, out)
		}
		return out
	}
	first := writeChunks(ctx, t, p, "before the round", 4, 100)
	c.waitHeld(ctx, first, 1, 2, 3)
	p.repairRound(p.term.Load())
	if got := counts(); got[1] != 4 || got[2] != 4 || got[3] != 4 {
		t.Fatalf("after a round: members' chunks %v, want 4 each", got)
	}
	more := writeChunks(ctx, t, p, "after the round", 3, 100)
	c.waitHeld(ctx, more, 1, 2, 3)
	if got := counts(); got[1] != 4 || got[2] != 4 || got[3] != 4 {
		t.Errorf("before the next round: members' chunks %v, want 4 each (the last round's count, the primary's included)", got)
	}
	p.repairRound(p.term.Load())
	if got := counts(); got[1] != 7 || got[2] != 7 || got[3] != 7 {
		t.Errorf("after the next round: members' chunks %v, want 7 each", got)
	}
}

package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// testCluster runs replication nodes over a MemNetwork, each with a real
// on-disk store in a temporary directory, on a disk a test can make
// refuse writes.
type testCluster struct {
	t     testing.TB
	net   *wire.MemNetwork
	dirs  map[uint64]string
	disks map[uint64]*store.FailFS
	nodes map[uint64]*Node
	mu    sync.Mutex
	cfg   func(*Config)
}

func addrOf(id uint64) string { return fmt.Sprintf("n%d", id) }

func newTestCluster(t testing.TB, seed uint64, ids ...uint64) *testCluster {
	c := &testCluster{t: t, net: wire.NewMemNetwork(seed), dirs: map[uint64]string{}, disks: map[uint64]*store.FailFS{},
		nodes: map[uint64]*Node{}}
	for _, id := range ids {
		c.dirs[id] = t.TempDir()
		c.disks[id] = store.NewFailFS(store.OSFS{})
	}
	t.Cleanup(func() {
		for _, id := range ids {
			c.stop(id)
		}
	})
	return c
}

func (c *testCluster) start(id uint64) *Node {
	c.t.Helper()
	db, err := store.OpenOn(c.disks[id], c.dirs[id])
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.Name, cfg.Addr, cfg.Group = id, addrOf(id), addrOf(id), "g"
	cfg.Store, cfg.Transport = db, c.net.Transport(addrOf(id))
	cfg.Heartbeat, cfg.RPCTimeout = 20*time.Millisecond, 300*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	n.Start(context.Background())
	c.net.Register(addrOf(id), n)
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	c.setPeers()
	return n
}

// stop is a crash: the node vanishes from the network and its process
// state is dropped; its disk stays.
func (c *testCluster) stop(id uint64) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		return
	}
	c.net.Register(addrOf(id), nil)
	n.Close()
	n.db.Close()
	c.setPeers()
}

func (c *testCluster) node(id uint64) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// setPeers plays gossip: every live node learns every other live node.
func (c *testCluster) setPeers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ms []meta.Member
	for id := range c.nodes {
		ms = append(ms, meta.Member{ID: id, Name: addrOf(id), Addr: addrOf(id)})
	}
	for _, n := range c.nodes {
		n.SetPeers(ms)
	}
}

// promote makes id the primary with the next ballot and waits until it is
// ready to take writes, or, in a new group, leads it while it forms.
func (c *testCluster) promote(id uint64, term uint64) error {
	n := c.node(id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Promote(ctx, meta.Ballot{Term: term, Node: id}); err != nil {
		return err
	}
	return harness.WaitFor(ctx, "primary ready or forming", func() bool {
		st := n.Status()
		return st.Ready || st.Forming
	})
}

// waitAllVoters waits until the primary id has n voters and takes
// writes (a new group does once it has them all).
func (c *testCluster) waitAllVoters(id uint64, n int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, fmt.Sprintf("%d voters and the primary ready", n), func() bool {
		st := c.node(id).Status()
		return len(st.Voters) == n && st.Ready
	}); err != nil {
		c.t.Fatal(err)
	}
}

// put writes a small file through node id, content and chunk included.
func put(ctx context.Context, n *Node, path, content string) error {
	data := []byte(content)
	h := meta.HashOf(data)
	if err := n.WriteChunk(ctx, h, data); err != nil {
		return err
	}
	f := &meta.Inode{Size: int64(len(data)), Hash: h.String(), Chunks: []meta.ChunkRef{{Hash: h, Size: int64(len(data))}}}
	r, err := n.Propose(ctx, meta.Op{Kind: meta.OpPut, Path: path, File: f})
	if err != nil {
		return err
	}
	return r.Err()
}

// read returns the content of path as the primary n sees it, linearizably.
func read(ctx context.Context, n *Node, path string) (string, error) {
	r, err := n.Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: path})
	if err != nil {
		return "", err
	}
	if r.Code != meta.CodeOK {
		return "", r.Code.Err()
	}
	var out []byte
	for _, c := range r.Inode.Chunks {
		b, err := n.db.Chunks.Get(c.Hash)
		if err != nil {
			return "", err
		}
		out = append(out, b...)
	}
	return string(out), nil
}

func ctxT(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func TestReplicateAndFailover(t *testing.T) {
	c := newTestCluster(t, 1, 1, 2, 3)
	for _, id := range []uint64{1, 2, 3} {
		c.start(id)
	}
	if err := c.promote(1, 1); err != nil {
		t.Fatal(err)
	}
	c.waitAllVoters(1, 3)
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	for i := range 20 {
		if err := put(ctx, c.node(1), fmt.Sprintf("/f%d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	c.stop(1)
	if err := c.promote(3, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		got, err := read(ctx, c.node(3), fmt.Sprintf("/f%d", i))
		if err != nil || got != fmt.Sprintf("v%d", i) {
			t.Fatalf("after failover /f%d = %q, %v", i, got, err)
		}
	}
	if err := put(ctx, c.node(3), "/after", "x"); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	// The old primary returns, sees the higher ballot and catches up.
	c.start(1)
	if err := harness.WaitFor(ctx, "old primary to catch up", func() bool {
		return c.node(1).Status().Applied >= c.node(3).Status().Commit
	}); err != nil {
		t.Fatal(err)
	}
	if s := c.node(1).Status(); s.Role != Follower || s.Ballot != (meta.Ballot{Term: 2, Node: 3}) {
		t.Fatalf("old primary status %+v, want a follower of ballot 2/3", s)
	}
	c.assertConverged(ctx)
}

// assertConverged waits until every live node applied the same log and
// holds an identical namespace.
func (c *testCluster) assertConverged(ctx context.Context) {
	c.t.Helper()
	err := harness.WaitFor(ctx, "all members to apply the same index", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		var want uint64
		first := true
		for _, n := range c.nodes {
			s := n.Status()
			if first {
				// Not "if want == 0": a member that has learned no commit
				// yet must not make the next one the reference.
				want, first = s.Commit, false
			}
			if s.Applied != want || s.Commit != want {
				return false
			}
		}
		return true
	})
	if err != nil {
		c.t.Fatal(err)
	}
	var ref string
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range c.nodes {
		d := digest(c.t, n.db)
		if ref == "" {
			ref = d
		} else if d != ref {
			c.t.Fatalf("node %d namespace digest differs:\n%s\nvs\n%s", id, d, ref)
		}
	}
}

func digest(t testing.TB, db *store.DB) string {
	t.Helper()
	out, err := store.Digest(db)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var _ = errors.Is

// The group's clock (meta.Op.Clock), which idempotency records expire by,
// counts on across a failover from where the last primary left it, never
// runs ahead of real time, and is the same on every member.
func TestGroupClockAcrossFailover(t *testing.T) {
	began := time.Now()
	c := newTestCluster(t, 1, 1, 2, 3)
	for _, id := range []uint64{1, 2, 3} {
		c.start(id)
	}
	if err := c.promote(1, 1); err != nil {
		t.Fatal(err)
	}
	c.waitAllVoters(1, 3)
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	clock := func(id uint64) int64 {
		t.Helper()
		v, err := c.node(id).db.Clock()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := put(ctx, c.node(1), "/a", "1"); err != nil {
		t.Fatal(err)
	}
	first := clock(1)
	if first <= 0 {
		t.Fatalf("group clock %d after a write, want it counting", first)
	}
	c.stop(1)
	if err := c.promote(3, 2); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, c.node(3), "/b", "2"); err != nil {
		t.Fatal(err)
	}
	second := clock(3)
	if second <= first {
		t.Fatalf("group clock went from %d to %d across a failover, want it to count on", first, second)
	}
	if elapsed := int64(time.Since(began)); second > elapsed {
		t.Fatalf("group clock %v is ahead of the %v that passed", time.Duration(second), time.Duration(elapsed))
	}
	if err := harness.WaitFor(ctx, "member 2 to apply the second write", func() bool {
		return c.node(2).Status().Applied >= c.node(3).Status().Commit
	}); err != nil {
		t.Fatal(err)
	}
	if got := clock(2); got != second {
		t.Fatalf("member 2's group clock %d, primary's %d: every member must agree", got, second)
	}
}

// A follower gathers committed entries and applies them together: one
// client's writes one after the other cost its disk one commit each for
// the log, not a second one each to apply. It still applies everything,
// and a follower that is promoted serves what was committed.
func TestFollowerAppliesInRounds(t *testing.T) {
	c := newTestCluster(t, 1, 1, 2, 3)
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	const writes = 40
	before := c.node(2).applyRounds.Load()
	for i := range writes {
		if err := put(ctx, c.node(1), fmt.Sprintf("/f%d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	commit := c.node(1).Status().Commit
	waitFor(t, "the follower applying every committed entry", func() bool { return c.node(2).Status().Applied >= commit })
	if follower := c.node(2).applyRounds.Load() - before; follower*2 > writes {
		t.Errorf("%d writes one after the other: the follower applied them in %d transactions, want at most %d", writes, follower, writes/2)
	}
	c.stop(1)
	if err := c.promote(2, 2); err != nil {
		t.Fatal(err)
	}
	for i := range writes {
		if got, err := read(ctx, c.node(2), fmt.Sprintf("/f%d", i)); err != nil || got != fmt.Sprintf("v%d", i) {
			t.Fatalf("after the follower was promoted, /f%d = %q, %v", i, got, err)
		}
	}
}

// A read sees every write answered before it began, though the primary
// answers a write before the transaction applying it commits and a read
// waits only for the writes answered, not for every entry committed.
func TestReadSeesAnsweredWrites(t *testing.T) {
	c := newTestCluster(t, 1, 1, 2, 3)
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	const clients, writes = 6, 40
	var wg sync.WaitGroup
	for cl := range clients {
		wg.Go(func() {
			p := fmt.Sprintf("/c%d", cl)
			for i := range writes {
				want := fmt.Sprintf("v%d", i)
				if err := put(ctx, c.node(1), p, want); err != nil {
					t.Errorf("put %s: %v", p, err)
					return
				}
				if got, err := read(ctx, c.node(1), p); err != nil || got != want {
					t.Errorf("read %s right after writing %q: %q, %v", p, want, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A batch of reads is answered read by read as each would be alone: a
// file's inode, a missing name's code, a malformed path's error, and
// each sees the writes answered before the batch was sent. A batch the
// primary may not serve (empty, too long, a read that is not quick) is
// refused whole, and a member that does not lead refuses it as it
// refuses one read.
func TestReadBatchAnswersEachRead(t *testing.T) {
	c := newTestCluster(t, 1, 1, 2, 3)
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	for i := range 3 {
		if err := put(ctx, c.node(1), fmt.Sprintf("/f%d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	reads := []wire.Read{
		{Kind: wire.ReadLookup, Path: "/f2"},
		{Kind: wire.ReadLookup, Path: "/missing"},
		{Kind: wire.ReadLookup, Path: "no/leading/slash"},
		{Kind: wire.ReadCheckPut, Path: "/f0/below"},
		{Kind: wire.ReadLookup, Path: "/f0"},
		{Kind: wire.ReadUserNamed, Name: "nobody"},
		{Kind: wire.ReadLock, Path: "/f1"},
	}
	resp, err := c.node(1).ReadBatch(ctx, &wire.ReadBatch{Group: "g", Reads: reads})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Resps) != len(reads) {
		t.Fatalf("%d answers to %d reads", len(resp.Resps), len(reads))
	}
	for i, r := range reads {
		r.Group = "g"
		alone, aloneErr := c.node(1).Read(ctx, &r)
		got, gotErr := resp.Resps[i], resp.Err(i)
		switch {
		case (aloneErr == nil) != (gotErr == nil):
			t.Errorf("%s %q: in the batch error %v, alone %v", kindName(r.Kind), r.Path, gotErr, aloneErr)
		case aloneErr != nil:
			if !errors.Is(gotErr, meta.ErrInvalid) || !errors.Is(aloneErr, meta.ErrInvalid) {
				t.Errorf("%s %q: in the batch %v, alone %v: want both invalid", kindName(r.Kind), r.Path, gotErr, aloneErr)
			}
		case got.Code != alone.Code || got.Inode.Ino != alone.Inode.Ino || got.Inode.Hash != alone.Inode.Hash ||
			(got.User == nil) != (alone.User == nil) || (got.Lock == nil) != (alone.Lock == nil) ||
			got.Lock != nil && got.Lock.Ino != alone.Lock.Ino:
			t.Errorf("%s %q: in the batch code %v inode %d %s, alone code %v inode %d %s", kindName(r.Kind), r.Path,
				got.Code, got.Inode.Ino, got.Inode.Hash, alone.Code, alone.Inode.Ino, alone.Inode.Hash)
		}
	}
	if resp.Resps[0].Code != meta.CodeOK || resp.Resps[0].Inode.Size != 2 || resp.Resps[1].Code != meta.CodeNotFound ||
		resp.Resps[3].Code != meta.CodeNotDir || resp.Err(2) == nil || resp.Resps[5].User != nil ||
		resp.Resps[6].Lock == nil || resp.Resps[6].Lock.Ino == 0 || len(resp.Resps[6].Lock.Holders) != 0 {
		t.Errorf("answers %+v, errors %v: want /f2 found, /missing not found, the malformed path refused, a put below a file not a directory, no user nobody, /f1 unlocked",
			resp.Resps, resp.Errs)
	}

	// Written and then read in a batch: each read sees the writes
	// answered before it.
	if err := put(ctx, c.node(1), "/f1", "again"); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, c.node(1), "/f2", "and again"); err != nil {
		t.Fatal(err)
	}
	resp, err = c.node(1).ReadBatch(ctx, &wire.ReadBatch{Group: "g", Reads: []wire.Read{{Kind: wire.ReadLookup, Path: "/f1"}, {Kind: wire.ReadLookup, Path: "/f2"}}})
	if err != nil || resp.Err(0) != nil || resp.Err(1) != nil || resp.Resps[0].Inode.Size != int64(len("again")) || resp.Resps[1].Inode.Size != int64(len("and again")) {
		t.Fatalf("/f1 and /f2 read in a batch right after they were written: %+v, %v", resp, err)
	}

	for _, bad := range []struct {
		why   string
		reads []wire.Read
	}{
		{"no read", nil},
		{"too many reads", make([]wire.Read, wire.MaxReadBatch+1)},
		{"a directory page", []wire.Read{{Kind: wire.ReadLookup, Path: "/f0"}, {Kind: wire.ReadReadDir, Path: "/"}}},
	} {
		for i := range bad.reads {
			if bad.reads[i].Kind == 0 {
				bad.reads[i] = wire.Read{Kind: wire.ReadLookup, Path: "/f0"}
			}
		}
		if _, err := c.node(1).ReadBatch(ctx, &wire.ReadBatch{Group: "g", Reads: bad.reads}); !errors.Is(err, wire.ErrBadMessage) {
			t.Errorf("a batch with %s: %v, want it refused as a bad message", bad.why, err)
		}
	}
	if _, err := c.node(2).ReadBatch(ctx, &wire.ReadBatch{Group: "g", Reads: reads[:1]}); !errors.Is(err, wire.ErrNotPrimary) {
		t.Errorf("a batch sent to a replica: %v, want not the primary", err)
	}
}

// A batch of ops is committed as its ops would be one by one, in order,
// each answered with its own result; an op sent again (same request ID)
// is applied once.
func TestProposeBatchCommitsEachOp(t *testing.T) {
	c := newTestCluster(t, 1, 1, 2, 3)
	c.startAll(1, 1, 2, 3)
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	ops := []meta.Op{
		{Kind: meta.OpMkdir, Path: "/d1", ReqID: "req-1"},
		{Kind: meta.OpMkdir, Path: "/d2", ReqID: "req-2"},
		{Kind: meta.OpMkdir, Path: "/d1", ReqID: "req-3"}, // after the first: exists
		{Kind: meta.OpDelete, Path: "/nothere", ReqID: "req-4"},
		{Kind: meta.OpRename, Path: "/d2", To: "/d3", ReqID: "req-5"},
	}
	resp, err := c.node(1).ProposeBatch(ctx, &wire.ProposeBatch{Group: "g", Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != len(ops) || resp.Errs != nil {
		t.Fatalf("%d results and errors %v for %d ops", len(resp.Results), resp.Errs, len(ops))
	}
	want := []meta.Code{meta.CodeOK, meta.CodeOK, meta.CodeExists, meta.CodeNotFound, meta.CodeOK}
	for i, r := range resp.Results {
		if r.Code != want[i] {
			t.Errorf("op %d (%d %s): code %v, want %v", i, ops[i].Kind, ops[i].Path, r.Code, want[i])
		}
	}
	for path, kind := range map[string]string{"/d1": "directory", "/d2": "", "/d3": "directory"} {
		r, err := c.node(1).Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: path})
		switch {
		case err != nil:
			t.Fatal(err)
		case kind == "" && r.Code != meta.CodeNotFound:
			t.Errorf("%s after the batch: %v, want it renamed away", path, r.Code)
		case kind != "" && (r.Code != meta.CodeOK || r.Inode.Type != meta.TypeDir):
			t.Errorf("%s after the batch: %v %+v, want a directory", path, r.Code, r.Inode)
		}
	}

	// Sent again, as a router does after a failover: the same answers,
	// nothing applied twice (the rename would now fail).
	again, err := c.node(1).ProposeBatch(ctx, &wire.ProposeBatch{Group: "g", Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again.Results {
		if r.Code != want[i] || again.Err(i) != nil {
			t.Errorf("op %d sent again: code %v, error %v; want %v as the first time", i, r.Code, again.Err(i), want[i])
		}
	}

	for _, bad := range []struct {
		why  string
		ops  []meta.Op
		want error
	}{
		{"no op", nil, wire.ErrBadMessage},
		{"too many ops", make([]meta.Op, wire.MaxProposeBatch+1), wire.ErrBadMessage},
		{"a membership change", []meta.Op{{Kind: meta.OpMkdir, Path: "/x"}, {Kind: meta.OpConfig}}, wire.ErrForbidden},
	} {
		for i := range bad.ops {
			if bad.ops[i].Kind == 0 && bad.ops[i].Path == "" {
				bad.ops[i] = meta.Op{Kind: meta.OpMkdir, Path: fmt.Sprintf("/x%d", i)}
			}
		}
		if _, err := c.node(1).ProposeBatch(ctx, &wire.ProposeBatch{Group: "g", Ops: bad.ops}); !errors.Is(err, bad.want) {
			t.Errorf("a batch with %s: %v, want %v", bad.why, err, bad.want)
		}
	}
	for _, p := range []string{"/x", "/x0"} {
		if r, err := c.node(1).Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: p}); err != nil || r.Code != meta.CodeNotFound {
			t.Errorf("%s, in a batch refused whole: %v %v, want nothing applied", p, r, err)
		}
	}
	if _, err := c.node(1).Handle(ctx, &wire.ProposeBatch{Group: "other", Ops: []meta.Op{{Kind: meta.OpMkdir, Path: "/y"}}}); !errors.Is(err, wire.ErrWrongGroup) {
		t.Errorf("a batch for another group: %v, want wrong group", err)
	}
	// A replica, or a primary whose every op fails because it no longer
	// leads, fails the batch whole: the router sends it on as one.
	if _, err := c.node(2).ProposeBatch(ctx, &wire.ProposeBatch{Group: "g", Ops: ops[:1]}); !errors.Is(err, wire.ErrNotPrimary) {
		t.Errorf("a batch sent to a replica: %v, want not the primary", err)
	}
	c.stop(2)
	c.stop(3)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	lost := []meta.Op{{Kind: meta.OpMkdir, Path: "/z1", ReqID: "req-z1"}, {Kind: meta.OpMkdir, Path: "/z2", ReqID: "req-z2"}}
	if resp, err := c.node(1).ProposeBatch(short, &wire.ProposeBatch{Group: "g", Ops: lost}); !errors.Is(err, wire.ErrNoQuorum) || resp != nil {
		t.Errorf("a batch none of whose ops could commit (no majority): %+v, %v; want it failed whole, outcome unknown", resp, err)
	}
}

func kindName(k wire.ReadKind) string {
	switch k {
	case wire.ReadCheckPut:
		return "put check"
	case wire.ReadUserNamed:
		return "user by name"
	case wire.ReadLock:
		return "lock state"
	}
	return "lookup"
}

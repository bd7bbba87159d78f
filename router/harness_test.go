package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/gossip"
	"shoal/harness"
	"shoal/meta"
	"shoal/replication"
	"shoal/store"
	"shoal/wire"
)

// testCluster is the storage side of a router under test: storage nodes
// answering over a wire.MemNetwork (so messages and errors cross a real
// encoding, and remote errors come back as on TCP), and a gossip view the
// test edits. The meta group's members are real replication nodes over
// stores in temporary directories, so every namespace operation a router
// makes is answered by the real namespace; the members of other groups are
// hand-written chunk holders a test can make misbehave.
type testCluster struct {
	t    testEnv
	net  *wire.MemNetwork
	logs *testLog

	mu           sync.Mutex
	members      []gossip.Member
	nodes        map[string]*testNode // by address
	membersCalls int
}

// testNode is one storage node: a member of the meta group (repl set) or
// a chunk holder of another group.
type testNode struct {
	c     *testCluster
	name  string
	addr  string
	group string
	id    uint64
	repl  *replication.Node // the real node; nil for a chunk holder
	db    *store.DB         // repl's store
	disk  *store.FailFS     // what db runs on: a test can make it refuse writes

	mu     sync.Mutex
	chunks map[meta.Hash][]byte // a chunk holder's chunks
	got    []wire.Message       // every request a router sent it, in order
	// onPropose, when set, runs as a Propose arrives, before the node
	// applies it: a test changes the namespace there to race the op.
	onPropose func(meta.Op)

	// Faults and canned answers, set by the test. They apply to every
	// request, whoever sends it: a router or, in the meta group, a peer.
	full    atomic.Bool                    // WriteChunk answers ErrNoSpace
	corrupt atomic.Bool                    // GetChunk answers ErrCorrupt (and drops the copy)
	garble  atomic.Bool                    // GetChunk answers bytes that do not match, without a checksum (as members did before they kept one)
	rot     atomic.Bool                    // GetChunk answers bytes that do not match the checksum sent with them
	misname atomic.Bool                    // GetChunk answers the right bytes with a checksum that does not match them
	hang    atomic.Bool                    // every request waits for the caller to give up
	missing atomic.Bool                    // TouchChunks reports every hash missing
	info    atomic.Pointer[wire.GroupInfo] // the answer to GroupStatus
	busy    atomic.Int32                   // so many WriteChunks more answer ErrBusy
	// stall, when set, holds every WriteChunk until the test lets it go.
	stall atomic.Pointer[writeStall]
	// getDelay, when set, makes every GetChunk take that long; gets and
	// mostGets count the GetChunks being answered and the most at once.
	getDelay       atomic.Int64
	gets, mostGets atomic.Int32
}

// writeStall holds the chunk writes a node receives: each waits for a
// token from release. It counts those waiting, and their most at once,
// and signals arrived as each comes.
type writeStall struct {
	release chan struct{}
	arrived chan struct{} // buffered 1
	waiting atomic.Int32
	most    atomic.Int32
}

func (w *writeStall) hold(ctx context.Context) error {
	n := w.waiting.Add(1)
	defer w.waiting.Add(-1)
	for m := w.most.Load(); n > m && !w.most.CompareAndSwap(m, n); m = w.most.Load() {
	}
	select {
	case w.arrived <- struct{}{}:
	default:
	}
	select {
	case <-w.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// testEnv is what a test cluster needs of whoever owns it: a test, or the
// inputs of one fuzzing process in turn (fuzz_test.go).
type testEnv interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Log(args ...any)
	TempDir() string
	Cleanup(func())
}

var _ testEnv = (*testing.T)(nil)

// metaGroupName is the group the test cluster runs as real replication
// nodes: the router's default meta group.
const metaGroupName = meta.DefaultMetaGroup

func newTestCluster(t testEnv) *testCluster {
	c := &testCluster{t: t, net: wire.NewMemNetwork(1), nodes: map[string]*testNode{}, logs: &testLog{t: t}}
	// Registered first, so it runs last: after the nodes are closed,
	// nothing they log may reach a finished test.
	t.Cleanup(c.logs.stop)
	return c
}

// addNode adds a live chunk holder of group to the network and to the
// gossip view. free is the room it publishes (0: it publishes no capacity).
func (c *testCluster) addNode(name, group string, role gossip.Role, id uint64, free uint64) *testNode {
	n := &testNode{c: c, name: name, addr: name + ":7000", group: group, id: id, chunks: map[meta.Hash][]byte{}}
	c.join(n, role, free)
	return n
}

// join lists n in the gossip view and serves its address.
func (c *testCluster) join(n *testNode, role gossip.Role, free uint64) {
	m := gossip.Member{Name: n.name, Status: gossip.StatusAlive, Tags: gossip.Tags{
		ID: n.id, Role: role, Group: n.group, Term: 1, Addr: n.addr, InSync: true}}
	if free > 0 {
		m.Used, m.Cap = 1000, 1000+free
	}
	c.mu.Lock()
	c.members = append(c.members, m)
	c.nodes[n.addr] = n
	c.mu.Unlock()
	c.net.Register(n.addr, wire.HandlerFunc(n.handle))
}

// addDead lists a node as alive in gossip while nothing answers at its
// address: it died a moment ago and gossip has not noticed.
func (c *testCluster) addDead(name, group string, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = append(c.members, gossip.Member{Name: name, Status: gossip.StatusAlive, Tags: gossip.Tags{
		ID: id, Role: gossip.RoleReplica, Group: group, Term: 1, Addr: name + ":7000"}})
}

// group adds a group: a primary and replicas, each publishing free bytes.
// The meta group is made of real replication nodes, led by the first with
// every member a voter before group returns; any other group of chunk
// holders.
func (c *testCluster) group(name string, size int, free uint64) []*testNode {
	var out []*testNode
	for i := range size {
		role := gossip.RoleReplica
		if i == 0 {
			role = gossip.RolePrimary
		}
		c.mu.Lock()
		id := uint64(len(c.nodes) + 100)
		c.mu.Unlock()
		nodeName := fmt.Sprintf("%s-n%d", name, i+1)
		if name != metaGroupName {
			out = append(out, c.addNode(nodeName, name, role, id, free))
			continue
		}
		n := c.startReplica(nodeName, name, id, size, c.t.TempDir())
		c.join(n, role, free)
		out = append(out, n)
	}
	if name == metaGroupName {
		c.form(out)
	}
	return out
}

// startReplica starts a real replication node of a group of size voters
// over the store in dir (a new one in an empty dir); it is closed when
// the test ends.
func (c *testCluster) startReplica(name, group string, id uint64, size int, dir string) *testNode {
	disk := store.NewFailFS(store.OSFS{})
	db, err := store.OpenOn(disk, dir)
	if err != nil {
		c.t.Fatalf("open the store of %s: %v", name, err)
	}
	n := &testNode{c: c, name: name, addr: name + ":7000", group: group, id: id, db: db, disk: disk}
	cfg := replication.DefaultConfig()
	cfg.ID, cfg.Name, cfg.Addr, cfg.Group = id, name, n.addr, group
	cfg.Store, cfg.Transport = db, c.net.Transport(n.addr)
	cfg.GroupSize = size
	cfg.Heartbeat, cfg.RPCTimeout = 20*time.Millisecond, 500*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
	if n.repl, err = replication.New(cfg); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	n.repl.Start(context.Background())
	c.t.Cleanup(func() {
		n.repl.Close()
		db.Close()
	})
	return n
}

// form makes the first node the primary of a group of real nodes (term 1,
// as the gossip view says) and waits until every node is a voter: from
// then on a write is on a majority of them when it is acknowledged.
func (c *testCluster) form(nodes []*testNode) {
	c.t.Helper()
	first := nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.repl.Promote(ctx, meta.Ballot{Term: 1, Node: first.id}); err != nil {
		c.t.Fatalf("promote %s: %v", first.name, err)
	}
	harness.Await(c.t, 5*time.Second, first.name+" leading", func() bool {
		st := first.repl.Status()
		return st.Ready || st.Forming
	})
	// Told of the others only once it leads, the primary sees them as
	// new members and syncs them at once rather than at its next repair
	// round. The group takes requests once all are voters.
	var peers []meta.Member
	for _, n := range nodes {
		peers = append(peers, meta.Member{ID: n.id, Name: n.name, Addr: n.addr})
	}
	for _, n := range nodes {
		n.repl.SetPeers(peers)
	}
	harness.Await(c.t, 5*time.Second, fmt.Sprintf("group %s formed with %d voters", first.group, len(nodes)), func() bool {
		st := first.repl.Status()
		return st.Ready && len(st.Voters) == len(nodes)
	})
}

func (c *testCluster) view() []gossip.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.membersCalls++
	return append([]gossip.Member(nil), c.members...)
}

func (c *testCluster) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.membersCalls
}

// groupNodes lists the reachable nodes of group.
func (c *testCluster) groupNodes(group string) []*testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*testNode
	for _, n := range c.nodes {
		if n.group == group {
			out = append(out, n)
		}
	}
	return out
}

// handle applies the node's faults, then serves req: a real node passes
// it on, a chunk holder answers it itself.
func (n *testNode) handle(ctx context.Context, req wire.Message) (wire.Message, error) {
	if n.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	switch m := req.(type) {
	case *wire.WriteChunk:
		if n.full.Load() {
			return nil, fmt.Errorf("group %s: chunk of %d bytes: %w", n.group, len(m.Data), meta.ErrNoSpace)
		}
		if n.busy.Add(-1) >= 0 {
			return nil, fmt.Errorf("write chunk %s: %w", m.Hash, wire.ErrBusy)
		}
		if w := n.stall.Load(); w != nil {
			if err := w.hold(ctx); err != nil {
				return nil, err
			}
		}
	case *wire.GetChunk:
		if d := time.Duration(n.getDelay.Load()); d > 0 {
			now := n.gets.Add(1)
			defer n.gets.Add(-1)
			for most := n.mostGets.Load(); now > most && !n.mostGets.CompareAndSwap(most, now); most = n.mostGets.Load() {
			}
			time.Sleep(d)
		}
		if n.corrupt.Load() || n.garble.Load() || n.rot.Load() || n.misname.Load() {
			return n.badChunk(m.Hash)
		}
	case *wire.TouchChunks:
		if n.missing.Load() {
			return &wire.TouchResp{Missing: m.Hashes}, nil
		}
	case *wire.GroupStatus:
		if info := n.info.Load(); info != nil {
			return info, nil
		}
	case *wire.Propose:
		n.mu.Lock()
		hook := n.onPropose
		n.mu.Unlock()
		if hook != nil {
			hook(m.Op)
		}
	}
	if n.repl != nil {
		return n.repl.Handle(ctx, req)
	}
	return n.holderHandle(req)
}

// holderHandle is a chunk holder's answer to req. It keeps no namespace.
func (n *testNode) holderHandle(req wire.Message) (wire.Message, error) {
	switch m := req.(type) {
	case *wire.WriteChunk:
		// The primary stores on every member, as a majority write would.
		for _, peer := range n.c.groupNodes(m.Group) {
			peer.put(m.Hash, m.Data)
		}
		return &wire.OKMsg{}, nil
	case *wire.StoreChunk:
		n.put(m.Hash, m.Data)
		return &wire.OKMsg{}, nil
	case *wire.GetChunk:
		if data, ok := n.chunk(m.Hash); ok {
			return &wire.ChunkMsg{Data: data, CRC: meta.ChunkCRC(data), HasCRC: m.CallerChecks}, nil
		}
		return nil, fmt.Errorf("chunk %s: %w", m.Hash, meta.ErrNotFound)
	case *wire.TouchChunks:
		resp := &wire.TouchResp{}
		for _, h := range m.Hashes {
			if !n.has(h) {
				resp.Missing = append(resp.Missing, h)
			}
		}
		return resp, nil
	case *wire.GroupStatus:
		return nil, fmt.Errorf("group status: %w", wire.ErrNotReady)
	case *wire.Propose, *wire.Read:
		return nil, fmt.Errorf("%w: %s holds chunks of group %s; the namespace is in group %s",
			wire.ErrWrongGroup, n.name, n.group, metaGroupName)
	}
	return nil, fmt.Errorf("%w: a chunk holder does not serve type %d", wire.ErrBadMessage, req.Type())
}

// badChunk answers a GetChunk of a corrupt, garbling, rotting or
// misnaming node.
func (n *testNode) badChunk(h meta.Hash) (wire.Message, error) {
	data, ok := n.chunk(h)
	switch {
	case !ok:
		return nil, fmt.Errorf("chunk %s: %w", h, meta.ErrNotFound)
	case n.corrupt.Load():
		n.drop(h)
		return nil, fmt.Errorf("chunk %s removed: %w", h, meta.ErrCorrupt)
	case n.misname.Load():
		return &wire.ChunkMsg{Data: data, CRC: meta.ChunkCRC(data) ^ 1, HasCRC: true}, nil
	}
	good := meta.ChunkCRC(data)
	data[0] ^= 0xff
	if n.rot.Load() {
		return &wire.ChunkMsg{Data: data, CRC: good, HasCRC: true}, nil
	}
	return &wire.ChunkMsg{Data: data}, nil
}

// put stores a chunk on the node, bypassing the protocol.
func (n *testNode) put(h meta.Hash, data []byte) {
	if n.db != nil {
		if err := n.db.Chunks.Put(h, data); err != nil {
			n.c.t.Errorf("%s: store chunk %s: %v", n.name, h, err)
		}
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.chunks[h] = append([]byte(nil), data...)
}

// chunk returns a copy of a chunk the node holds.
func (n *testNode) chunk(h meta.Hash) ([]byte, bool) {
	if n.db != nil {
		data, err := n.db.Chunks.Get(h)
		return data, err == nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	data, ok := n.chunks[h]
	return append([]byte(nil), data...), ok
}

func (n *testNode) has(h meta.Hash) bool {
	if n.db != nil {
		return n.db.Chunks.Has(h)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.chunks[h]
	return ok
}

// drop loses a chunk, as a failed disk would.
func (n *testNode) drop(h meta.Hash) {
	if n.db != nil {
		if err := n.db.Chunks.Remove(h); err != nil {
			n.c.t.Errorf("%s: remove chunk %s: %v", n.name, h, err)
		}
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.chunks, h)
}

// held lists the chunks the node holds.
func (n *testNode) held() []meta.Hash {
	if n.db != nil {
		return n.db.Chunks.ListAll()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Collect(maps.Keys(n.chunks))
}

// commit applies op to the namespace through the real node, which must
// be the meta group's primary, and fails the test unless it succeeds.
func (n *testNode) commit(t testEnv, op meta.Op) meta.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := n.repl.Propose(ctx, op)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: op %d on %s: %v", n.name, op.Kind, op.Path, err)
	}
	return res
}

// file looks p up in the namespace through the real node, which must be
// the meta group's primary.
func (n *testNode) file(p string) (meta.Inode, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := n.repl.Read(ctx, &wire.Read{Group: n.group, Kind: wire.ReadLookup, Path: p})
	switch {
	case err != nil:
		n.c.t.Errorf("%s: look up %s: %v", n.name, p, err)
		return meta.Inode{}, false
	case r.Code == meta.CodeNotFound:
		return meta.Inode{}, false
	case r.Code != meta.CodeOK:
		n.c.t.Errorf("%s: look up %s: %v", n.name, p, r.Code.Err())
		return meta.Inode{}, false
	}
	return r.Inode, true
}

// setOnPropose sets the hook that runs as each Propose arrives.
func (n *testNode) setOnPropose(hook func(meta.Op)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onPropose = hook
}

// received returns the requests of type T routers sent the node.
func received[T wire.Message](n *testNode) []T {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []T
	for _, m := range n.got {
		if v, ok := m.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// routerTransport is a router's side of the network. It records each
// request at the node it is sent to, so tests see what routers asked of
// a node, apart from what the meta group's members ask of each other.
type routerTransport struct {
	c  *testCluster
	tr wire.Transport
}

var _ wire.Transport = (*routerTransport)(nil)

func (r *routerTransport) Call(ctx context.Context, addr string, req wire.Message) (wire.Message, error) {
	r.c.mu.Lock()
	n := r.c.nodes[addr]
	r.c.mu.Unlock()
	if n != nil {
		n.mu.Lock()
		n.got = append(n.got, req)
		n.mu.Unlock()
	}
	return r.tr.Call(ctx, addr, req)
}

// router starts a router on the test cluster with small chunks and short
// timeouts, closed when the test ends; tune changes the config first.
func (c *testCluster) router(tune func(*Config)) *Server {
	s := c.newRouter(tune)
	c.t.Cleanup(func() { s.Close() })
	return s
}

// newRouter is router for a caller that closes the router itself.
func (c *testCluster) newRouter(tune func(*Config)) *Server {
	cfg := DefaultConfig()
	cfg.Members = c.view
	cfg.Transport = &routerTransport{c: c, tr: c.net.Transport("router")}
	cfg.ChunkSize = 16
	cfg.InlineMax = 0 // tests of the chunk path; inline_test.go turns it on
	cfg.RequestTimeout = 2 * time.Second
	cfg.RPCTimeout = 200 * time.Millisecond
	cfg.SpaceWait = 300 * time.Millisecond
	cfg.Seed = 7
	// No hot-chunk cache: these tests count the chunk reads members
	// answer; chunkcache_test.go turns it on.
	cfg.CacheSize = 0
	// Requests act as the cluster's root: authentication has tests of
	// its own (auth_test.go) and end to end.
	cfg.Insecure = true
	cfg.Logger = slog.New(slog.NewTextHandler(c.logs, nil))
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		c.t.Fatalf("start a router: %v", err)
	}
	return s
}

// testLog sends logs to the test's log until stop; after that (the test
// is over) it drops them.
type testLog struct {
	t       testEnv
	mu      sync.Mutex
	stopped bool
}

func (l *testLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// do serves one request and returns the recorded answer.
func do(s *Server, method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// content returns n bytes whose 16-byte chunks all differ.
func content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/16)
	}
	return b
}

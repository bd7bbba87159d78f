package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/gossip"
	"shoal/meta"
	"shoal/wire"
)

// fakeCluster is the storage side of a router under test: storage nodes
// answering over a wire.MemNetwork (so messages and errors cross a
// real encoding, and remote errors come back as on TCP), and a gossip view
// the test edits.
type fakeCluster struct {
	t   *testing.T
	net *wire.MemNetwork

	mu           sync.Mutex
	members      []gossip.Member
	nodes        map[string]*fakeNode // by address
	membersCalls int
}

// fakeNode is one storage node. Every node keeps chunks; the meta group's
// primary also keeps the namespace (files).
type fakeNode struct {
	c     *fakeCluster
	name  string
	addr  string
	group string

	mu     sync.Mutex
	chunks map[meta.Hash][]byte
	files  map[string]meta.Inode
	got    []wire.Message // every request, in order

	// Faults and canned answers, set by the test before use.
	full    bool            // WriteChunk answers ErrNoSpace
	corrupt bool            // GetChunk answers ErrCorrupt (and drops the copy)
	garble  bool            // GetChunk answers bytes that do not match
	hang    bool            // every request waits for the caller to give up
	missing bool            // TouchChunks reports every hash missing
	info    *wire.GroupInfo // the answer to GroupStatus
	// beforeUpdate, when set, runs (with mu held) as an OpUpdate arrives:
	// a test changes the file there to make the update conflict.
	beforeUpdate func(files map[string]meta.Inode)
}

// fakeTransport is the router's side of the network: it records nothing
// itself, the nodes do.
type fakeTransport struct{ tr wire.Transport }

var _ wire.Transport = (*fakeTransport)(nil)

func (f *fakeTransport) Call(ctx context.Context, addr string, req wire.Message) (wire.Message, error) {
	return f.tr.Call(ctx, addr, req)
}

func newFakeCluster(t *testing.T) *fakeCluster {
	return &fakeCluster{t: t, net: wire.NewMemNetwork(1), nodes: map[string]*fakeNode{}}
}

// addNode adds a live node of group to the network and to the gossip view.
// free is the room it publishes (0: it publishes no capacity).
func (c *fakeCluster) addNode(name, group string, role gossip.Role, id uint64, free uint64) *fakeNode {
	n := &fakeNode{c: c, name: name, addr: name + ":7000", group: group,
		chunks: map[meta.Hash][]byte{}, files: map[string]meta.Inode{}}
	m := gossip.Member{Name: name, Status: gossip.StatusAlive, Tags: gossip.Tags{
		ID: id, Role: role, Group: group, Term: 1, Addr: n.addr, InSync: true}}
	if free > 0 {
		m.Used, m.Cap = 1000, 1000+free
	}
	c.mu.Lock()
	c.members = append(c.members, m)
	c.nodes[n.addr] = n
	c.mu.Unlock()
	c.net.Register(n.addr, wire.HandlerFunc(n.handle))
	return n
}

// addDead lists a node as alive in gossip while nothing answers at its
// address: it died a moment ago and gossip has not noticed.
func (c *fakeCluster) addDead(name, group string, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = append(c.members, gossip.Member{Name: name, Status: gossip.StatusAlive, Tags: gossip.Tags{
		ID: id, Role: gossip.RoleReplica, Group: group, Term: 1, Addr: name + ":7000"}})
}

// group adds a group: a primary and replicas, each publishing free bytes.
func (c *fakeCluster) group(name string, size int, free uint64) []*fakeNode {
	var out []*fakeNode
	for i := range size {
		role := gossip.RoleReplica
		if i == 0 {
			role = gossip.RolePrimary
		}
		id := uint64(len(c.nodes) + 100)
		out = append(out, c.addNode(fmt.Sprintf("%s-n%d", name, i+1), name, role, id, free))
	}
	return out
}

func (c *fakeCluster) view() []gossip.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.membersCalls++
	return append([]gossip.Member(nil), c.members...)
}

func (c *fakeCluster) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.membersCalls
}

// groupNodes lists the reachable nodes of group.
func (c *fakeCluster) groupNodes(group string) []*fakeNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*fakeNode
	for _, n := range c.nodes {
		if n.group == group {
			out = append(out, n)
		}
	}
	return out
}

func (n *fakeNode) handle(ctx context.Context, req wire.Message) (wire.Message, error) {
	n.mu.Lock()
	n.got = append(n.got, req)
	hang := n.hang
	n.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	switch m := req.(type) {
	case *wire.WriteChunk:
		if n.isFull() {
			return nil, fmt.Errorf("group %s: chunk of %d bytes: %w", n.group, len(m.Data), meta.ErrNoSpace)
		}
		// The primary stores on every member, as a majority write would.
		for _, peer := range n.c.groupNodes(m.Group) {
			peer.put(m.Hash, m.Data)
		}
		return &wire.OKMsg{}, nil
	case *wire.StoreChunk:
		n.put(m.Hash, m.Data)
		return &wire.OKMsg{}, nil
	case *wire.GetChunk:
		return n.getChunk(m.Hash)
	case *wire.TouchChunks:
		return n.touch(m.Hashes), nil
	case *wire.Propose:
		return n.propose(m.Op)
	case *wire.Read:
		return n.read(m), nil
	case *wire.GroupStatus:
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.info == nil {
			return nil, fmt.Errorf("group status: %w", wire.ErrNotReady)
		}
		return n.info, nil
	}
	return nil, fmt.Errorf("%w: the fake does not serve type %d", wire.ErrBadMessage, req.Type())
}

func (n *fakeNode) isFull() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.full
}

func (n *fakeNode) put(h meta.Hash, data []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.chunks[h] = append([]byte(nil), data...)
}

func (n *fakeNode) getChunk(h meta.Hash) (wire.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	data, ok := n.chunks[h]
	switch {
	case !ok:
		return nil, fmt.Errorf("chunk %s: %w", h, meta.ErrNotFound)
	case n.corrupt:
		delete(n.chunks, h)
		return nil, fmt.Errorf("chunk %s removed: %w", h, meta.ErrCorrupt)
	case n.garble:
		bad := append([]byte(nil), data...)
		bad[0] ^= 0xff
		return &wire.ChunkMsg{Data: bad}, nil
	}
	return &wire.ChunkMsg{Data: data}, nil
}

func (n *fakeNode) touch(hs []meta.Hash) *wire.TouchResp {
	n.mu.Lock()
	defer n.mu.Unlock()
	resp := &wire.TouchResp{}
	for _, h := range hs {
		if _, ok := n.chunks[h]; !ok || n.missing {
			resp.Missing = append(resp.Missing, h)
		}
	}
	return resp
}

// propose applies op to a flat map of paths: unlike the real namespace it
// keeps no tree (parents need not exist, and deleting a directory leaves
// what is below it), which is enough for the router's side of each op.
func (n *fakeNode) propose(op meta.Op) (wire.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in, existed := n.files[op.Path]
	existed = existed || op.Path == "/"
	isDir := op.Path == "/" || in.Type == meta.TypeDir
	var res meta.Result
	switch op.Kind {
	case meta.OpPut:
		if isDir {
			return &wire.ProposeResp{Result: meta.Result{Code: meta.CodeIsDir}}, nil
		}
		n.files[op.Path] = *op.File
		res.Created = !existed
	case meta.OpMkdir:
		switch {
		case existed && !(isDir && op.Parents):
			res.Code = meta.CodeExists
		case !existed:
			n.files[op.Path] = meta.Inode{Type: meta.TypeDir}
			res.Created = true
		}
	case meta.OpDelete:
		switch {
		case op.Path == "/":
			res.Code = meta.CodeInvalid
		case !existed:
			res.Code = meta.CodeNotFound
		default:
			delete(n.files, op.Path)
		}
	case meta.OpRename, meta.OpCopy:
		switch {
		case op.Path == "/" || op.To == "/":
			res.Code = meta.CodeInvalid
		case !existed:
			res.Code = meta.CodeNotFound
		default:
			n.files[op.To] = in
			if op.Kind == meta.OpRename && op.To != op.Path {
				delete(n.files, op.Path)
			}
		}
	case meta.OpCreate:
		if !existed {
			n.files[op.Path] = meta.Inode{Type: meta.TypeFile, Mode: op.Mode, Gen: 1}
			res.Created = true
		}
		in := n.files[op.Path]
		res.Inode = &in
	case meta.OpSymlink:
		if existed {
			res.Code = meta.CodeExists
			break
		}
		in := meta.Inode{Type: meta.TypeSymlink, Target: op.Target, Size: int64(len(op.Target)), Nlink: 1}
		n.files[op.Path] = in
		res.Created, res.Inode = true, &in
	case meta.OpLink:
		_, taken := n.files[op.To]
		switch {
		case !existed:
			res.Code = meta.CodeNotFound
		case isDir:
			res.Code = meta.CodePerm
		case taken:
			res.Code = meta.CodeExists
		default:
			in.Nlink++
			n.files[op.Path], n.files[op.To] = in, in
			res.Inode = &in
		}
	case meta.OpRelease:
	case meta.OpUpdate:
		if n.beforeUpdate != nil {
			n.beforeUpdate(n.files)
			in = n.files[op.Path]
		}
		switch {
		case !existed:
			res.Code = meta.CodeNotFound
		case op.File != nil && op.Gen != in.Gen:
			res.Code = meta.CodeConflict
		default:
			if f := op.File; f != nil {
				in.Size, in.Chunks, in.Data, in.DataKey, in.Hash = f.Size, f.Chunks, f.Data, f.DataKey, f.Hash
				in.Gen++
			}
			if op.Attr != nil && op.Attr.Valid&meta.SetMode != 0 {
				in.Mode = op.Attr.Mode
			}
			n.files[op.Path] = in
			res.Inode = &in
		}
	default:
		return nil, fmt.Errorf("%w: the fake does not apply op kind %d", wire.ErrBadMessage, op.Kind)
	}
	return &wire.ProposeResp{Result: res}, nil
}

func (n *fakeNode) read(r *wire.Read) *wire.ReadResp {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r.Path == "/" {
		return &wire.ReadResp{Inode: meta.Inode{Type: meta.TypeDir}}
	}
	in, ok := n.files[r.Path]
	if !ok {
		return &wire.ReadResp{Code: meta.CodeNotFound}
	}
	return &wire.ReadResp{Inode: in}
}

func (n *fakeNode) file(p string) (meta.Inode, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in, ok := n.files[p]
	return in, ok
}

// received returns the requests of type T the node got.
func received[T wire.Message](n *fakeNode) []T {
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

func (n *fakeNode) has(h meta.Hash) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.chunks[h]
	return ok
}

// router starts a router on the fake cluster with small chunks and short
// timeouts; tune changes the config first.
func (c *fakeCluster) router(tune func(*Config)) *Server {
	cfg := DefaultConfig()
	cfg.Members = c.view
	cfg.Transport = &fakeTransport{tr: c.net.Transport("router")}
	cfg.ChunkSize = 16
	cfg.InlineMax = 0 // tests of the chunk path; inline_test.go turns it on
	cfg.RequestTimeout = 2 * time.Second
	cfg.RPCTimeout = 200 * time.Millisecond
	cfg.SpaceWait = 300 * time.Millisecond
	cfg.Seed = 7
	// The fake namespace knows no users; authentication has tests of its
	// own (auth_test.go) and end to end.
	cfg.Insecure = true
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{c.t}, nil))
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Close() })
	return s
}

// testWriter sends the router's logs to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
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

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		case <-tick.C:
		}
	}
}

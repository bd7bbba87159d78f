package replication

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer serves h on a fresh 127.0.0.1 port until the test ends.
func startServer(t *testing.T, h wire.Handler, logger *slog.Logger) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &wire.Server{Handler: h, Logger: logger, IdleTimeout: 5 * time.Second, HandleTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Addr().String()
}

// openNode starts a replication node over a fresh on-disk store.
func openNode(t *testing.T, id uint64, addr string, tr wire.Transport, edit func(*Config)) *Node {
	t.Helper()
	return openNodeOn(t, id, addr, tr, edit, false)
}

// openRebuildingNode is openNode on a store that Quarantine replaced,
// as after its meta.db was found corrupt.
func openRebuildingNode(t *testing.T, id uint64, addr string, tr wire.Transport, edit func(*Config)) *Node {
	t.Helper()
	return openNodeOn(t, id, addr, tr, edit, true)
}

func openNodeOn(t *testing.T, id uint64, addr string, tr wire.Transport, edit func(*Config), rebuilding bool) *Node {
	t.Helper()
	dir := t.TempDir()
	if rebuilding {
		if _, err := store.Quarantine(dir, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.Name, cfg.Addr, cfg.Group = id, addr, addr, "g"
	cfg.Store, cfg.Transport, cfg.Logger = db, tr, quietLogger()
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Start(context.Background())
	t.Cleanup(func() {
		n.Close()
		db.Close()
	})
	return n
}

func TestTCPAppendRoundTrip(t *testing.T) {
	tr := wire.NewTCPTransport()
	defer tr.Close()
	n := openNode(t, 2, "replica", tr, nil)
	addr := startServer(t, n, quietLogger())
	b := meta.Ballot{Term: 1, Node: 1}
	app := &wire.Append{Group: "g", Ballot: b, Leader: "127.0.0.1:1", Commit: 1, Entries: []meta.Entry{
		{Index: 1, Ballot: b, Op: meta.Op{Kind: meta.OpConfig, Members: []meta.Member{{ID: 1, Addr: "127.0.0.1:1"}, {ID: 2, Addr: addr}}}},
		{Index: 2, Ballot: b, Op: meta.Op{Kind: meta.OpMkdir, Path: "/d", Time: 5}},
	}}
	ctx, cancel := ctxT(2 * time.Second)
	defer cancel()
	resp, err := tr.Call(ctx, addr, app)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := resp.(*wire.AppendResp)
	if !ok || !r.OK || r.LastIndex != 2 || r.Promised != b {
		t.Fatalf("append answer %T %+v, want OK through 2 at %s", resp, resp, b)
	}
	if s := n.Status(); s.LastIndex != 2 || len(s.Voters) != 2 || s.Ballot != b {
		t.Fatalf("replica status after append: %+v", s)
	}
	// The connection is pooled and reused; a second call commits entry 2.
	app.Entries, app.PrevIndex, app.PrevBallot, app.Commit = nil, 2, b, 2
	if _, err := tr.Call(ctx, addr, app); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitFor(ctx, "replica to apply entry 2", func() bool { return n.Status().Applied == 2 }); err != nil {
		t.Fatal(err)
	}
	// A lower ballot over the wire is refused with the promise.
	resp, err = tr.Call(ctx, addr, &wire.Append{Group: "g", Ballot: meta.Ballot{Term: 0, Node: 9}, PrevIndex: 2, PrevBallot: b})
	if r, ok := resp.(*wire.AppendResp); err != nil || !ok || r.OK || r.Promised != b {
		t.Fatalf("stale append answer %+v, %v; want a refusal naming %s", resp, err, b)
	}
	// A response sent as a request is refused as malformed.
	if _, err := tr.Call(ctx, addr, &wire.AppendResp{OK: true}); !errors.Is(err, wire.ErrBadMessage) {
		t.Fatalf("response sent as a request: %v, want ErrBadMessage", err)
	}
	// The wrong group is an error that survives the wire.
	if _, err := tr.Call(ctx, addr, &wire.Append{Group: "other", Ballot: b}); !errors.Is(err, wire.ErrWrongGroup) {
		t.Fatalf("append for another group: %v, want ErrWrongGroup", err)
	}
}

// TestProposeRefusesMembershipChange: no peer can propose a change of a
// group's voters or a no-op; only the primary makes those.
func TestProposeRefusesMembershipChange(t *testing.T) {
	tr := wire.NewTCPTransport()
	defer tr.Close()
	n := openNode(t, 2, "replica", tr, nil)
	for _, k := range []meta.OpKind{meta.OpConfig, meta.OpNoop} {
		_, err := n.Handle(context.Background(), &wire.Propose{Group: "g", Op: meta.Op{Kind: k, Members: []meta.Member{{ID: 9}}}})
		if !errors.Is(err, wire.ErrForbidden) {
			t.Errorf("op kind %d: %v, want forbidden", k, err)
		}
	}
}

// TestChunkReadCheckedOnceAndRepaired: a router, which checks what it
// reads, is served a chunk unchecked, bad bytes included; a StoreChunk
// that plain repair would only touch leaves the bad copy, and one marked
// Replace rewrites it.
func TestChunkReadCheckedOnceAndRepaired(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.Name, cfg.Addr, cfg.Group = 2, "replica", "replica", "g"
	cfg.Store, cfg.Transport, cfg.Logger = db, wire.NewTCPTransport(), quietLogger()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Start(context.Background())
	t.Cleanup(func() {
		n.Close()
		db.Close()
	})
	ctx := context.Background()
	data := []byte("the content of one chunk")
	h := meta.HashOf(data)
	if _, err := n.Handle(ctx, &wire.StoreChunk{Hash: h, Data: data}); err != nil {
		t.Fatal(err)
	}
	path, err := store.ChunkFile(filepath.Join(dir, "chunks"), h)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("THE content of one chunk")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	var crc uint32
	var hasCRC bool
	get := func(callerChecks bool) ([]byte, error) {
		resp, err := n.Handle(ctx, &wire.GetChunk{Hash: h, CallerChecks: callerChecks})
		if err != nil {
			return nil, err
		}
		c := resp.(*wire.ChunkMsg)
		crc, hasCRC = c.CRC, c.HasCRC
		return c.Data, nil
	}
	if got, err := get(true); err != nil || !bytes.Equal(got, bad) {
		t.Fatalf("a read the caller checks: %q, %v; want the bytes on disk, unchecked", got, err)
	}
	if !hasCRC || crc != meta.ChunkCRC(data) {
		t.Fatalf("a read the caller checks came with checksum %08x (sent: %v); want the good content's, %08x", crc, hasCRC, meta.ChunkCRC(data))
	}
	if _, err := n.Handle(ctx, &wire.StoreChunk{Hash: h, Data: data}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
		t.Fatalf("a plain StoreChunk of a chunk held changed it to %q; want it only touched", got)
	}
	if _, err := n.Handle(ctx, &wire.StoreChunk{Hash: h, Data: data, Replace: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(false); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a StoreChunk with Replace: %q, %v; want the good copy, checked", got, err)
	}
	// Replace of a good copy leaves it.
	if _, err := n.Handle(ctx, &wire.StoreChunk{Hash: h, Data: data, Replace: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(false); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a second Replace: %q, %v", got, err)
	}
}

package replication

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/wire"
)

// A member whose corrupt meta.db was replaced by an empty one neither
// promises to a recovering primary nor leads until its primary has found
// it caught up and holding every chunk: counted in a majority, its short
// log could stand in for committed entries it lost. Then it does both,
// and the mark is gone from its disk.
func TestRebuildingMemberNeitherPromisesNorLeads(t *testing.T) {
	ctx, cancel := ctxT(5 * time.Second)
	defer cancel()
	net := wire.NewMemNetwork(1)
	n := openRebuildingNode(t, 2, "n2", net.Transport("n2"), nil)
	b := func(term, node uint64) meta.Ballot { return meta.Ballot{Term: term, Node: node} }
	if s := n.Status(); !s.Rebuilding || s.InSync {
		t.Fatalf("a new member: %+v, want rebuilding", s)
	}
	voters := []meta.Member{{ID: 1, Addr: "n1"}, {ID: 2, Addr: "n2"}}
	es := []meta.Entry{
		{Index: 1, Ballot: b(1, 1), Op: meta.Op{Kind: meta.OpConfig, Members: voters}},
		{Index: 2, Ballot: b(1, 1), Op: meta.Op{Kind: meta.OpMkdir, Path: "/a"}},
	}
	resp, err := n.Handle(ctx, &wire.Append{Group: "g", Ballot: b(1, 1), Leader: "n1", Entries: es})
	if r, ok := resp.(*wire.AppendResp); err != nil || !ok || !r.OK {
		t.Fatalf("append: %+v, %v", resp, err)
	}
	// A voter now, but not known to be whole.
	if _, err := n.Handle(ctx, &wire.Promise{Group: "g", Ballot: b(2, 3)}); !errors.Is(err, wire.ErrRebuilding) {
		t.Fatalf("promise while rebuilding: %v, want ErrRebuilding", err)
	}
	if err := n.Promote(ctx, b(2, 2)); !errors.Is(err, wire.ErrRebuilding) {
		t.Fatalf("promotion while rebuilding: %v, want ErrRebuilding", err)
	}
	if s := n.Status(); !s.Rebuilding || s.InSync || s.Role != Follower {
		t.Fatalf("after the refusals: %+v", s)
	}
	// Caught up with the commit index, and every chunk found here.
	resp, err = n.Handle(ctx, &wire.Append{Group: "g", Ballot: b(1, 1), Leader: "n1", PrevIndex: 2, PrevBallot: b(1, 1), Commit: 2, SyncedStart: n.start})
	if r, ok := resp.(*wire.AppendResp); err != nil || !ok || !r.OK {
		t.Fatalf("heartbeat: %+v, %v", resp, err)
	}
	if s := n.Status(); s.Rebuilding || !s.InSync {
		t.Fatalf("caught up and synced: %+v, want whole and in sync", s)
	}
	if r, err := n.db.Rebuilding(); err != nil || r {
		t.Fatalf("the store still marked rebuilding: %v, %v", r, err)
	}
	resp, err = n.Handle(ctx, &wire.Promise{Group: "g", Ballot: b(2, 3)})
	if r, ok := resp.(*wire.PromiseResp); err != nil || !ok || !r.OK || r.LastIndex != 2 {
		t.Fatalf("promise once whole: %+v, %v", resp, err)
	}
}

// A member whose store finds meta.db corrupt stops serving at once: it
// steps down and answers every request, reads and promises included,
// with ErrNotPrimary, so routers go to another member.
func TestCorruptStoreStopsMember(t *testing.T) {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	net := wire.NewMemNetwork(1)
	n := openNode(t, 1, "n1", net.Transport("n1"), func(c *Config) { c.GroupSize = 1 })
	if err := n.Promote(ctx, meta.Ballot{Term: 1, Node: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node to lead", func() bool { return n.Status().Ready })
	r, err := n.Propose(ctx, meta.Op{Kind: meta.OpMkdir, Path: "/zzqq"})
	if err != nil || r.Code != meta.CodeOK {
		t.Fatalf("mkdir: %+v, %v", r, err)
	}
	// A proposer is answered, and a read served, before the apply
	// commits (after the hold, Config.ApplyHold): once it has, meta.db
	// holds the name in the namespace.
	if _, err := n.Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: "/zzqq"}); err != nil {
		t.Fatalf("lookup of the new name: %v", err)
	}
	waitFor(t, "the mkdir to be committed to meta.db", func() bool { st := n.Status(); return st.Applied >= st.Commit })
	// The disk changes the name wherever meta.db holds it: q becomes r.
	p := filepath.Join(n.db.Dir(), "meta.db")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b, []byte("zzqq")) == 0 {
		t.Fatal("the name is not in meta.db")
	}
	b = bytes.ReplaceAll(b, []byte("zzqq"), []byte("zzqr"))
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil { // in place: bbolt's map sees it
		t.Fatal(err)
	}
	f.Close()

	_, err = n.Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: "/zzqq"})
	if !errors.Is(err, wire.ErrNotPrimary) {
		t.Fatalf("lookup of the renamed name: %v, want ErrNotPrimary (the store is corrupt)", err)
	}
	select {
	case <-n.db.Corrupted():
	default:
		t.Fatal("the store did not find the corruption")
	}
	waitFor(t, "the node to stop leading", func() bool { return n.Status().Role == Follower })
	if _, err := n.Handle(ctx, &wire.Promise{Group: "g", Ballot: meta.Ballot{Term: 5, Node: 3}}); !errors.Is(err, wire.ErrNotPrimary) {
		t.Errorf("promise on a corrupt member: %v, want ErrNotPrimary", err)
	}
	if _, err := n.Propose(ctx, meta.Op{Kind: meta.OpMkdir, Path: "/b"}); !errors.Is(err, wire.ErrNotPrimary) {
		t.Errorf("proposal on a corrupt member: %v, want ErrNotPrimary", err)
	}
	if _, err := n.Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: "/"}); !errors.Is(err, wire.ErrNotPrimary) {
		t.Errorf("read on a corrupt member: %v, want ErrNotPrimary", err)
	}
}

// waitFor polls cond until it holds, for at most five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, what, cond); err != nil {
		t.Fatal(err)
	}
}

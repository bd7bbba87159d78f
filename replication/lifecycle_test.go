package replication

import (
	"context"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// Close right after Promote: the first entry of the ballot may reach the
// proposal queue after the append loop drained it on stepping down, and
// its submitter has no deadline; Close must not wait for it forever.
func TestCloseRightAfterPromote(t *testing.T) {
	net := wire.NewMemNetwork(1)
	for i := range 100 {
		db, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.ID, cfg.Name, cfg.Addr, cfg.Group = 1, "n1", "n1", "g"
		cfg.Store, cfg.Transport, cfg.Logger = db, net.Transport("n1"), quietLogger()
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n.Start(context.Background())
		ctx, cancel := ctxT(5 * time.Second)
		err = n.Promote(ctx, meta.Ballot{Term: 1, Node: 1})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		go func() {
			n.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(3 * time.Second):
			t.Fatalf("iteration %d: Close right after Promote did not return in 3s", i)
		}
		db.Close()
	}
}

// An Append telling a member to pull a snapshot can arrive while the
// member closes; the install it starts must not outlive Close.
func TestCloseDuringSnapshotRequest(t *testing.T) {
	net := wire.NewMemNetwork(1)
	b := meta.Ballot{Term: 1, Node: 1}
	for range 200 {
		n := openNode(t, 2, "n2", net.Transport("n2"), nil)
		ctx, cancel := ctxT(5 * time.Second)
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.Handle(ctx, &wire.Append{Group: "g", Ballot: b, Leader: "n1", PrevIndex: 10, Snapshot: true})
		}()
		n.Close()
		<-done
		if n.transfers.Load() != 0 {
			// A transfer outlives Close; let it give up before the store
			// closes under it.
			err := harness.WaitFor(ctx, "the transfer to give up", func() bool { return n.transfers.Load() == 0 })
			t.Fatalf("a snapshot transfer outlived Close (%v)", err)
		}
		cancel()
	}
}

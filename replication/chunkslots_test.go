package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"shoal/wire"
)

// A primary carries out ChunkWrites chunk writes at once. One more waits
// for one of them to end, and is refused as busy if none ends within
// RPCTimeout: nothing is stored, and the caller tries again.
func TestChunkWritesWaitThenBusy(t *testing.T) {
	n := &Node{cfg: Config{RPCTimeout: 50 * time.Millisecond, ChunkWrites: 2}, chunkSlots: make(chan struct{}, 2)}
	ctx := context.Background()
	for i := range 2 {
		if err := n.takeChunkSlot(ctx); err != nil {
			t.Fatalf("write %d of 2: %v", i+1, err)
		}
	}
	if err := n.takeChunkSlot(ctx); !errors.Is(err, wire.ErrBusy) {
		t.Fatalf("a third write while two run: %v, want ErrBusy", err)
	}
	// A write that ends lets a waiting one in.
	n.cfg.RPCTimeout = time.Minute
	got := make(chan error, 1)
	go func() { got <- n.takeChunkSlot(ctx) }()
	<-n.chunkSlots
	if err := <-got; err != nil {
		t.Fatalf("a write waiting while another ends: %v", err)
	}
	// A caller that gives up stops waiting.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := n.takeChunkSlot(cctx); !errors.Is(err, wire.ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("a write whose caller gave up: %v, want ErrBusy and the context's error", err)
	}
}

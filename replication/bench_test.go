package replication

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"shoal/meta"
	"shoal/wire"
)

// The protocol's cost on its own, over the in-memory network on real
// disks: linearizable metadata reads (each confirmed with a majority),
// metadata writes, and whole writes (a chunk, then the entry naming it),
// from 16 callers at once or from one. Compare two trees with benchstat.

func benchCluster(b *testing.B) *Node {
	c := newTestCluster(b, 1, 1, 2, 3)
	c.cfg = func(cfg *Config) { cfg.ScrubRate = 0 }
	c.startAll(1, 1, 2, 3)
	p := c.node(1)
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	if err := put(ctx, p, "/f", "content"); err != nil {
		b.Fatal(err)
	}
	return p
}

// benchParallel runs op from 16 callers (8 per core); i numbers the calls.
func benchParallel(b *testing.B, op func(ctx context.Context, p *Node, i int64) error) {
	p := benchCluster(b)
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := ctxT(time.Minute)
		defer cancel()
		for pb.Next() {
			if err := op(ctx, p, seq.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchOne runs op from one caller.
func benchOne(b *testing.B, op func(ctx context.Context, p *Node, i int64) error) {
	p := benchCluster(b)
	ctx, cancel := ctxT(time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := range b.N {
		if err := op(ctx, p, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func lookup(ctx context.Context, p *Node, _ int64) error {
	r, err := p.Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: "/f"})
	if err != nil {
		return err
	}
	return r.Code.Err()
}

func mkdir(ctx context.Context, p *Node, i int64) error {
	r, err := p.Propose(ctx, meta.Op{Kind: meta.OpMkdir, Path: fmt.Sprintf("/d%d", i)})
	if err != nil {
		return err
	}
	return r.Err()
}

func putFile(ctx context.Context, p *Node, i int64) error {
	return put(ctx, p, fmt.Sprintf("/f%d", i), fmt.Sprintf("content %d", i))
}

func BenchmarkReadParallel(b *testing.B)    { benchParallel(b, lookup) }
func BenchmarkProposeParallel(b *testing.B) { benchParallel(b, mkdir) }
func BenchmarkWriteParallel(b *testing.B)   { benchParallel(b, putFile) }
func BenchmarkReadOne(b *testing.B)         { benchOne(b, lookup) }
func BenchmarkProposeOne(b *testing.B)      { benchOne(b, mkdir) }

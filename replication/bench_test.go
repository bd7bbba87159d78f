package replication

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"shoal/meta"
	"shoal/wire"
)

// The protocol's cost on its own, over the in-memory network on real
// disks: linearizable metadata reads (each confirmed with a majority) and writes
// (each a chunk and an entry durable on a majority), from many callers at
// once. Compare two trees with benchstat.

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

func BenchmarkReadParallel(b *testing.B) {
	p := benchCluster(b)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := ctxT(time.Minute)
		defer cancel()
		for pb.Next() {
			r, err := p.Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: "/f"})
			if err != nil || r.Code != meta.CodeOK {
				b.Error(err, r)
				return
			}
		}
	})
}

func BenchmarkWriteParallel(b *testing.B) {
	p := benchCluster(b)
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := ctxT(time.Minute)
		defer cancel()
		for pb.Next() {
			i := seq.Add(1)
			if err := put(ctx, p, fmt.Sprintf("/f%d", i), fmt.Sprintf("content %d", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkProposeParallel(b *testing.B) {
	p := benchCluster(b)
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := ctxT(time.Minute)
		defer cancel()
		for pb.Next() {
			r, err := p.Propose(ctx, meta.Op{Kind: meta.OpMkdir, Path: fmt.Sprintf("/d%d", seq.Add(1))})
			if err == nil {
				err = r.Err()
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkProposeOne(b *testing.B) {
	p := benchCluster(b)
	ctx, cancel := ctxT(time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := range b.N {
		if _, err := p.Propose(ctx, meta.Op{Kind: meta.OpMkdir, Path: fmt.Sprintf("/d%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadOne(b *testing.B) {
	p := benchCluster(b)
	ctx, cancel := ctxT(time.Minute)
	defer cancel()
	b.ResetTimer()
	for range b.N {
		if _, err := p.Read(ctx, &wire.Read{Group: "g", Kind: wire.ReadLookup, Path: "/f"}); err != nil {
			b.Fatal(err)
		}
	}
}

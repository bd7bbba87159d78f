package store

import (
	"fmt"
	"testing"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// BenchmarkLookup measures what a read of a small file costs the meta
// group's primary in meta.db: resolving a path five names deep (as the
// small-file workload's /ROOT/small/rN/dNNN/fNNNNNN) among 10,000 files in
// directories of 1,000, in a read transaction of its own, as each read is.
func BenchmarkLookup(b *testing.B) {
	d := crOpen(b, b.TempDir())
	const files = 10_000
	path := func(i int) string { return fmt.Sprintf("/bench/small/r1/d%03d/f%06d", i/1000, i) }
	err := d.update(func(tx *bbolt.Tx) error {
		for i := range files {
			op := putOp(path(i), 1)
			op.Parents = true
			if r, err := applyOp(tx, &op, 0); err != nil || r.Code != meta.CodeOK {
				return fmt.Errorf("put %s: %v %v", path(i), r.Code, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := d.Reader().LookupAt(0, path(i%files), nil, meta.MayRead); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

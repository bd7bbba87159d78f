package replication

import (
	"testing"

	"shoal/meta"
)

// TestUpTo: the entries a primary sends before they are durable here stay
// within MaxBatchBytes like those read from its log, the first of a
// message always going.
func TestUpTo(t *testing.T) {
	entry := func(i uint64, data int) meta.Entry {
		return meta.Entry{Index: i, Op: meta.Op{Kind: meta.OpPut, Path: "/f", File: &meta.Inode{Data: make([]byte, data)}}}
	}
	es := []meta.Entry{entry(1, 3000), entry(2, 3000), entry(3, 3000)}
	one := entrySize(es[0])
	if one < 3000+entryOverhead {
		t.Fatalf("entrySize %d: it must count the inline content and the overhead", one)
	}
	for _, c := range []struct {
		name      string
		size, max int
		want      int
	}{
		{"all fit", 0, 3 * one, 3},
		{"two fit", 0, 2*one + 1, 2},
		{"the first alone goes even when too big", 0, 10, 1},
		{"after log entries, none fits", one, one + 10, 0},
		{"after log entries, one fits", one, 2 * one, 1},
	} {
		if got := upTo(es, c.size, c.max); len(got) != c.want {
			t.Errorf("%s: upTo(size %d, max %d) gave %d entries, want %d", c.name, c.size, c.max, len(got), c.want)
		}
	}
}

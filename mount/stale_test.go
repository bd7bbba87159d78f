package mount

import (
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// TestOpenAnsweredBeforeABatchLanded: node.Open asks the cluster for the
// file's attributes, then takes them; one of this mount's batches to the
// file can land in between. The older answer does not make the file read
// as it was before the batch.
func TestOpenAnsweredBeforeABatchLanded(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino, h := tm.create("f")
	q := tm.m.asking()
	before := tm.c.stat(ino) // the open's answer
	tm.write(h, 0, "hello")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	h2 := &handle{f: tm.m.open(before, q)}
	for i, h := range []*handle{h, h2} {
		if got := tm.read(h, 0, 10); got != "hello" {
			t.Fatalf("handle %d reads %q after an open with attributes from before the write", i+1, got)
		}
	}
}

// TestStatAnsweredBeforeABatchLanded: node.Getattr asks the cluster for
// a file's attributes, then adds the end of the writes not stored yet; a
// batch on its way can land in between, so it no longer counts as unsent
// while the answer does not count it yet. The kernel is still told a size
// that counts it: a smaller one would cut reads short, and an O_APPEND
// write (placed at the kernel's size) would overwrite its end.
func TestStatAnsweredBeforeABatchLanded(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino, h := tm.create("f")
	g := holdWrites(tm.c, func(int64) bool { return true })
	tm.write(h, 0, strings.Repeat("a", 32))
	g.wait(t)
	before := tm.c.stat(ino) // Getattr's answer
	g.release(nil)
	settled(h.f)
	var out fuse.Attr
	tm.m.fill(&out, before)
	if out.Size != 32 {
		t.Fatalf("the kernel is told size %d, want the 32 bytes written", out.Size)
	}
}

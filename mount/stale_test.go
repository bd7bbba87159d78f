package mount

import "testing"

// TestOpenAnsweredBeforeABatchLanded: node.Open asks the cluster for the
// file's attributes, then takes them; one of this mount's batches to the
// file can land in between. The older answer does not make the file read
// as it was before the batch.
func TestOpenAnsweredBeforeABatchLanded(t *testing.T) {
	tm := newTestMount(t, 64, nil)
	ino, h := tm.create("f")
	before := tm.c.stat(ino) // the open's answer
	tm.write(h, 0, "hello")
	if errno := tm.fsync(h); errno != 0 {
		t.Fatalf("fsync: %v", errno)
	}
	h2 := &handle{f: tm.m.open(before)}
	for i, h := range []*handle{h, h2} {
		if got := tm.read(h, 0, 10); got != "hello" {
			t.Fatalf("handle %d reads %q after an open with attributes from before the write", i+1, got)
		}
	}
}

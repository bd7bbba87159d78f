package store

import (
	"fmt"
	"testing"
)

// crashEachStep runs write on a fresh MemFS made by setup, simulating a
// power loss before each of its steps in turn and then after it returned;
// check gets what a restart finds (both images of crashPoint) and whether
// write had returned.
func crashEachStep(t *testing.T, setup func() *MemFS, write func(FS) error, check func(t *testing.T, image *MemFS, done bool)) {
	for at := 1; ; at++ {
		m := setup()
		c := &crashPoint{mem: m, at: at}
		err := write(&faultFS{mem: m, hook: c.hook})
		if c.image == nil {
			if err != nil {
				t.Fatalf("write without a crash: %v", err)
			}
			t.Run("after the write", func(t *testing.T) { check(t, m.CrashClone(), true) })
			return
		}
		t.Run(fmt.Sprintf("before step %d %s", at, c.ops[at-1]), func(t *testing.T) {
			check(t, c.image, false)
			check(t, c.named, false)
		})
	}
}

// A crash while a claim is saved over another leaves the old claim or the
// new one, never a torn or missing file; once saved, the new one stays.
func TestSaveClaimCrash(t *testing.T) {
	const dir = "/data"
	old, next := Claim{Group: "g1"}, Claim{Group: "g2", Boot: true}
	setup := func() *MemFS {
		m := NewMemFS()
		m.MkdirAll(dir, 0o755)
		memWrite(t, m, dir+"/"+claimFile, "group=g1\n", true)
		m.SyncDir("/")
		m.SyncDir(dir)
		return m
	}
	crashEachStep(t, setup, func(fsys FS) error { return saveClaim(fsys, dir, next) },
		func(t *testing.T, image *MemFS, done bool) {
			c, ok, err := loadClaim(image, dir)
			switch {
			case err != nil || !ok:
				t.Errorf("claim after the crash: %+v, %v, %v; want %+v or %+v", c, ok, err, old, next)
			case done && c != next:
				t.Errorf("claim after a crash once saved: %+v, want %+v", c, next)
			case c != old && c != next:
				t.Errorf("claim after the crash: %+v, want %+v or %+v", c, old, next)
			}
		})
}

// A crash while a new node keeps its ID in a data directory that does not
// exist yet leaves no ID or that ID; once kept, it stays.
func TestSaveNodeIDCrash(t *testing.T) {
	const dir, id = "/srv/shoal/data", 42
	crashEachStep(t, NewMemFS, func(fsys FS) error { return saveNodeID(fsys, dir, id) },
		func(t *testing.T, image *MemFS, done bool) {
			got, ok, err := loadNodeID(image, dir, 0)
			switch {
			case err != nil:
				t.Errorf("node ID after the crash: %v", err)
			case done && (!ok || got != id):
				t.Errorf("node ID after a crash once kept: %d, %v; want %d", got, ok, id)
			case ok && got != id:
				t.Errorf("node ID after the crash: %d, want %d or none", got, id)
			}
		})
}

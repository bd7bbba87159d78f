package store

import (
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

func orphansDueAt(t *testing.T, db *bbolt.DB, at time.Duration) []uint64 {
	t.Helper()
	var due []uint64
	if err := db.View(func(tx *bbolt.Tx) error {
		var err error
		due, err = orphansDue(tx, int64(at), 100)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return due
}

// An orphan lives while its lease does: kept by its mount, dropped by a
// collection once the lease ran out, chunks and all; a new primary's
// first entry gives live leases time to be renewed.
func TestOrphanLeases(t *testing.T) {
	db := nsOpenDB(t)
	s := time.Second
	orphan := func(p string) meta.Inode {
		nsWant(t, nsApply(t, db, putOp(p, 3)), meta.CodeOK)
		in := nsLookupAt(t, db, 0, p)
		nsWant(t, lockAt(t, db, 10*s, meta.Op{Kind: meta.OpDelete, Path: p, Orphan: true}), meta.CodeOK)
		return in
	}
	a, b := orphan("/a"), orphan("/b")
	if due := orphansDueAt(t, db, 69*s); len(due) != 0 {
		t.Fatalf("orphans due within their first lease (a minute from 10s): %v", due)
	}
	// The mount keeps a for 5s from 20s; b it forgets.
	nsWant(t, lockAt(t, db, 20*s, meta.Op{Kind: meta.OpKeepOrphan, Dir: a.Ino, Path: "/", TTL: int64(5 * s)}), meta.CodeOK)
	if due := orphansDueAt(t, db, 25*s); len(due) != 1 || due[0] != a.Ino {
		t.Fatalf("due at 25s: %v, want a (%d) alone", due, a.Ino)
	}
	nsWant(t, lockAt(t, db, 26*s, meta.Op{Kind: meta.OpCollectOrphans}), meta.CodeOK)
	if err := nsLookupErr(db, a.Ino, "/"); err == nil {
		t.Fatal("a is still there after its lease ran out and a collection")
	}
	nsWant(t, lockAt(t, db, 27*s, meta.Op{Kind: meta.OpKeepOrphan, Dir: a.Ino, Path: "/", TTL: int64(5 * s)}), meta.CodeNotFound)
	if got := nsLookupAt(t, db, b.Ino, "/"); got.Nlink != 0 {
		t.Fatalf("b: %+v", got)
	}

	// A failover at 65s, b's lease (to 70s) still running: it lasts a
	// minute from then.
	nsWant(t, lockAt(t, db, 65*s, meta.Op{Kind: meta.OpNoop}), meta.CodeOK)
	if due := orphansDueAt(t, db, 124*s); len(due) != 0 {
		t.Fatalf("due at 124s after a failover at 65s: %v", due)
	}
	nsWant(t, lockAt(t, db, 126*s, meta.Op{Kind: meta.OpCollectOrphans}), meta.CodeOK)
	if err := nsLookupErr(db, b.Ino, "/"); err == nil {
		t.Fatal("b is still there after its lease ran out")
	}
	nsCheckRefs(t, db) // their chunks are no longer referenced

	// Bad input and other callers.
	c := orphan("/c")
	for _, ttl := range []time.Duration{0, time.Millisecond, 25 * time.Hour} {
		nsWant(t, lockAt(t, db, 11*s, meta.Op{Kind: meta.OpKeepOrphan, Dir: c.Ino, Path: "/", TTL: int64(ttl)}), meta.CodeInvalid)
	}
	nsWant(t, nsApply(t, db, putOp("/named", 1)), meta.CodeOK)
	named := nsLookupAt(t, db, 0, "/named")
	nsWant(t, lockAt(t, db, 11*s, meta.Op{Kind: meta.OpKeepOrphan, Dir: named.Ino, Path: "/", TTL: int64(s)}), meta.CodeNotFound)
	nsWant(t, lockAt(t, db, 11*s, meta.Op{Kind: meta.OpCollectOrphans, Cred: &meta.Cred{Uid: 1000, Gid: 1000}}), meta.CodePerm)
	nsWant(t, lockAt(t, db, 11*s, meta.Op{Kind: meta.OpKeepOrphan, Dir: c.Ino, Path: "/", TTL: int64(s), Cred: &meta.Cred{Uid: 1000, Gid: 1000}}), meta.CodeAccess)
	// Released by its mount: the lease goes with it.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRelease, Dir: c.Ino, Path: "/"}), meta.CodeOK)
	if due := orphansDueAt(t, db, 1000*s); len(due) != 0 {
		t.Fatalf("leases left after every orphan went: %v", due)
	}
}

// A store with every bucket an op makes on the way (locks, lock queues
// and tokens, orphan leases) verifies and opens again: each is one the
// store knows.
func TestStoreWithLocksAndOrphansReopens(t *testing.T) {
	dir := t.TempDir()
	d := crOpen(t, dir)
	s := int64(time.Second)
	applyAt(t, d, putOp("/f", 3), s)
	applyAt(t, d, putOp("/g", 3), s)
	if r := applyAt(t, d, acquireOp("/f", false, 10*time.Second, "0123456789abcdef0123"), s); r.Code != meta.CodeOK {
		t.Fatalf("acquire: %+v", r)
	}
	if r := applyAt(t, d, waitOp("/f", 7, "fedcba9876543210fedc"), s); r.Lock == nil {
		t.Fatalf("queue: %+v", r)
	}
	if r := applyAt(t, d, meta.Op{Kind: meta.OpDelete, Path: "/g", Orphan: true}, s); r.Code != meta.CodeOK {
		t.Fatalf("orphan: %+v", r)
	}
	if _, err := d.Verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatalf("open again: %v", err)
	}
	d.Close()
}

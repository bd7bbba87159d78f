package store

import (
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// applyAt applies op as entry of a group whose clock reads clock, as
// Apply does, and returns its result.
func applyAt(t *testing.T, d *DB, op meta.Op, clock int64) meta.Result {
	t.Helper()
	op.Clock = clock
	var r meta.Result
	if err := d.update(func(tx *bbolt.Tx) error {
		var err error
		r, err = applyOnce(tx, &op, clock)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func reqPut(v, id string, at int64) meta.Op {
	return meta.Op{Kind: meta.OpPut, Path: "/k", Time: at, ReqID: id, ReqSum: []byte("put " + v),
		File: &meta.Inode{Type: meta.TypeFile, Size: int64(len(v)), Data: []byte(v)}}
}

// A request applied twice (a router's retry after an unknown outcome)
// takes effect once: the second entry answers with the first's result
// and leaves the namespace alone, even if another write came in between.
func TestRequestAppliedOnce(t *testing.T) {
	d := crOpen(t, t.TempDir())
	t0 := time.Now().UnixNano()
	c0 := int64(time.Hour) // the group has led for an hour
	if r := applyAt(t, d, reqPut("a", "req-1", t0), c0); !r.Created {
		t.Fatalf("first apply: %+v, want created", r)
	}
	applyAt(t, d, reqPut("b", "req-2", t0+1), c0+1)
	// The retry of req-1 arrives after req-2: it must not bring "a" back.
	if r := applyAt(t, d, reqPut("a", "req-1", t0+2), c0+2); !r.Created {
		t.Fatalf("retry answered %+v, want the first apply's result", r)
	}
	if got := string(lookupT(t, d, "/k").Data); got != "b" {
		t.Fatalf("after a retried request the file holds %q, want %q", got, "b")
	}
	// Without an ID, ops apply every time.
	applyAt(t, d, meta.Op{Kind: meta.OpDelete, Path: "/k", Time: t0 + 3}, c0+3)
	applyAt(t, d, reqPut("c", "", t0+4), c0+4)
	applyAt(t, d, reqPut("c", "", t0+5), c0+5)
	// Records expire after requestTTL of the group's clock: a much later
	// op prunes req-1 and req-2, after which the same ID would apply again.
	applyAt(t, d, reqPut("d", "req-3", t0+6), c0+int64(requestTTL)+10)
	if r := applyAt(t, d, reqPut("e", "req-1", t0+7), c0+int64(requestTTL)+11); r.Created {
		t.Fatalf("expired request ID still deduplicated: %+v", r)
	}
	if got := string(lookupT(t, d, "/k").Data); got != "e" {
		t.Fatalf("file holds %q, want %q", got, "e")
	}
}

// Expiry does not depend on any machine's wall clock: an op stamped by a
// router whose clock is an hour ahead (Op.Time) prunes nothing, and the
// retry of an earlier request that follows it is still answered once.
func TestRequestExpiryIgnoresWallClocks(t *testing.T) {
	d := crOpen(t, t.TempDir())
	t0 := time.Now().UnixNano()
	c0 := int64(time.Hour)
	rename := func(id string, at int64) meta.Op {
		return meta.Op{Kind: meta.OpRename, Path: "/a", To: "/b", Time: at, ReqID: id, ReqSum: []byte("rename")}
	}
	applyAt(t, d, reqPut("x", "req-put", t0), c0)
	if r := applyAt(t, d, rename("req-mv", t0+1), c0+1); r.Err() != nil {
		// /a does not exist: the rename fails, and its failure is what
		// a retry must be answered with.
		if r.Code != meta.CodeNotFound {
			t.Fatalf("rename: %+v", r)
		}
	}
	applyAt(t, d, reqPut("y", "req-ahead", t0+int64(time.Hour)), c0+2)
	applyAt(t, d, meta.Op{Kind: meta.OpPut, Path: "/a", ReqID: "req-a", ReqSum: []byte("a"), Time: t0 + 3,
		File: &meta.Inode{Type: meta.TypeFile}}, c0+3)
	// The retried rename, a second later by the group's clock, must not
	// move the /a made since.
	if r := applyAt(t, d, rename("req-mv", t0+int64(time.Hour)+4), c0+4); r.Code != meta.CodeNotFound {
		t.Fatalf("retried rename answered %+v, want the first try's not_found", r)
	}
	if in := lookupT(t, d, "/a"); in.Type != meta.TypeFile {
		t.Fatalf("/a is %+v after the retried rename, want it still there", in)
	}
}

// A recorded request ID reused by a different request (another digest)
// is refused with CodeKeyReused and changes nothing; the first request's
// own retry is still answered with its result.
func TestRequestKeyReused(t *testing.T) {
	d := crOpen(t, t.TempDir())
	c0 := int64(time.Minute)
	if r := applyAt(t, d, reqPut("a", "req-1", 1), c0); !r.Created {
		t.Fatalf("first apply: %+v", r)
	}
	if r := applyAt(t, d, reqPut("b", "req-1", 2), c0+1); r.Code != meta.CodeKeyReused {
		t.Fatalf("reuse with another body answered %+v, want %s", r, meta.CodeKeyReused)
	}
	if got := string(lookupT(t, d, "/k").Data); got != "a" {
		t.Fatalf("after a refused reuse the file holds %q, want %q", got, "a")
	}
	if r := applyAt(t, d, reqPut("a", "req-1", 3), c0+2); !r.Created {
		t.Fatalf("the first request's retry answered %+v, want its result", r)
	}
	// A record without a digest (written before digests were kept)
	// answers any op with its ID as a retry.
	old := reqPut("c", "req-2", 4)
	old.ReqSum = nil
	applyAt(t, d, old, c0+3)
	if r := applyAt(t, d, reqPut("d", "req-2", 5), c0+4); r.Code != meta.CodeOK {
		t.Fatalf("op matching an undigested record answered %+v, want the recorded result", r)
	}
}

package store

import (
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// A request applied twice (a router's retry after an unknown outcome)
// takes effect once: the second entry answers with the first's result
// and leaves the namespace alone, even if another write came in between.
func TestRequestAppliedOnce(t *testing.T) {
	d := crOpen(t, t.TempDir())
	put := func(v string, id string, at int64) meta.Op {
		return meta.Op{Kind: meta.OpPut, Path: "/k", Time: at, ReqID: id, File: &meta.Inode{Type: meta.TypeFile, Size: int64(len(v)), Data: []byte(v)}}
	}
	apply := func(op meta.Op) meta.Result {
		t.Helper()
		var r meta.Result
		if err := d.update(func(tx *bbolt.Tx) error {
			var err error
			r, err = applyOnce(tx, &op)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	t0 := time.Now().UnixNano()
	if r := apply(put("a", "req-1", t0)); !r.Created {
		t.Fatalf("first apply: %+v, want created", r)
	}
	apply(put("b", "req-2", t0+1))
	// The retry of req-1 arrives after req-2: it must not bring "a" back.
	if r := apply(put("a", "req-1", t0+2)); !r.Created {
		t.Fatalf("retry answered %+v, want the first apply's result", r)
	}
	if got := string(lookupT(t, d, "/k").Data); got != "b" {
		t.Fatalf("after a retried request the file holds %q, want %q", got, "b")
	}
	// Without an ID, ops apply every time.
	apply(meta.Op{Kind: meta.OpDelete, Path: "/k", Time: t0 + 3})
	apply(put("c", "", t0+4))
	apply(put("c", "", t0+5))
	// Records expire after requestTTL: a much later op prunes req-1 and
	// req-2, after which the same ID would apply again.
	apply(put("d", "req-3", t0+int64(requestTTL)+10))
	if r := apply(put("e", "req-1", t0+int64(requestTTL)+11)); r.Created {
		t.Fatalf("expired request ID still deduplicated: %+v", r)
	}
	if got := string(lookupT(t, d, "/k").Data); got != "e" {
		t.Fatalf("file holds %q, want %q", got, "e")
	}
}

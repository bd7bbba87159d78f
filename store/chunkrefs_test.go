package store

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// nsRecountRefs counts chunk references the slow way, from every file inode.
func nsRecountRefs(tx *bbolt.Tx) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := forEachChunk(tx, func(c meta.ChunkRef) error {
		out[fmt.Sprintf("%s/%s", c.Hash, c.Group)]++
		return nil
	})
	return out, err
}

// nsStoredRefs reads bucket chunkrefs in the form nsRecountRefs returns.
func nsStoredRefs(tx *bbolt.Tx) (map[string]uint64, error) {
	b := bucketIn(tx, bucketChunkRefs)
	if !b.exists() {
		return nil, fmt.Errorf("bucket %s missing", bucketChunkRefs)
	}
	out := map[string]uint64{}
	err := b.forEach(func(k, v []byte) error {
		if len(k) < 32 || len(v) != 8 || u64(v) == 0 {
			return fmt.Errorf("bad chunkrefs record %x=%x", k, v)
		}
		out[fmt.Sprintf("%x/%s", k[:32], k[32:])] = u64(v)
		return nil
	})
	return out, err
}

// nsCheckChunkRefs verifies that bucket chunkrefs equals a recount from the
// inodes. nsStep calls it after every op of the model and fuzz tests.
func nsCheckChunkRefs(tx *bbolt.Tx) error {
	want, err := nsRecountRefs(tx)
	if err != nil {
		return err
	}
	got, err := nsStoredRefs(tx)
	if err != nil {
		return err
	}
	if !maps.Equal(got, want) {
		return fmt.Errorf("chunkrefs %v, recount from the inodes %v", got, want)
	}
	return nil
}

// TestChunkRefsRandom runs random ops whose files list chunks with repeats
// and several groups, checking the counts against a recount after each.
func TestChunkRefsRandom(t *testing.T) {
	var pool []meta.ChunkRef
	for i := range 3 {
		for _, g := range []string{"", "g1", "g2"} {
			pool = append(pool, meta.ChunkRef{Hash: meta.HashOf([]byte{byte(i)}), Size: 1, Group: g})
		}
	}
	maxKeys := 0
	for seed := range uint64(6) {
		db := nsOpenDB(t)
		r := rand.New(rand.NewPCG(seed, 1))
		for i := range 400 {
			op := nsGenOp(r, int64(i+1))
			if op.File != nil {
				op.File.Chunks = nil
				for range r.IntN(4) {
					op.File.Chunks = append(op.File.Chunks, pool[r.IntN(len(pool))])
				}
			}
			err := db.Update(func(tx *bbolt.Tx) error {
				if _, err := applyOp(tx, &op, 0); err != nil {
					return err
				}
				if err := nsCheckTree(tx); err != nil {
					return err
				}
				if err := nsCheckChunkRefs(tx); err != nil {
					return err
				}
				if err := nsCheckIndexes(tx); err != nil {
					return err
				}
				maxKeys = max(maxKeys, nsKeyCount(tx, bucketChunkRefs))
				return nil
			})
			if err != nil {
				t.Fatalf("seed %d step %d %+v: %v", seed, i, op, err)
			}
		}
	}
	if maxKeys < 5 {
		t.Errorf("at most %d chunkrefs keys at once: the generator no longer exercises the counts", maxKeys)
	}
}

func crOpen(t testing.TB, dir string) *DB {
	t.Helper()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func crApply(t *testing.T, d *DB, op meta.Op, code meta.Code) {
	t.Helper()
	err := d.update(func(tx *bbolt.Tx) error {
		r, err := applyOp(tx, &op, 0)
		if err == nil && r.Code != code {
			err = fmt.Errorf("result %q, want %q", r.Code, code)
		}
		return err
	})
	if err != nil {
		t.Fatalf("apply %+v: %v", op, err)
	}
}

// crRefs reads the counts through ForEachChunkRef as "hash/group" -> count.
func crRefs(t *testing.T, d *DB) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	err := d.ForEachChunkRef(func(group string, h meta.Hash, n uint64) error {
		out[fmt.Sprintf("%s/%s", h, group)] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func crFile(refs ...meta.ChunkRef) *meta.Inode {
	return &meta.Inode{Size: int64(len(refs)), Chunks: refs}
}

func TestChunkRefsOps(t *testing.T) {
	d := crOpen(t, t.TempDir())
	h := func(s string) meta.Hash { return meta.HashOf([]byte(s)) }
	A, B, C, D := h("A"), h("B"), h("C"), h("D")
	ref := func(x meta.Hash, g string) meta.ChunkRef { return meta.ChunkRef{Hash: x, Size: 1, Group: g} }
	f1 := crFile(ref(A, "g1"), ref(A, "g1"), ref(B, "g2"))
	f2 := crFile(ref(B, "g2"), ref(C, ""))
	f3 := crFile(ref(D, "g1"))
	f4 := crFile(ref(C, ""))
	k := func(x meta.Hash, g string) string { return fmt.Sprintf("%s/%s", x, g) }
	steps := []struct {
		op   meta.Op
		code meta.Code
		want map[string]uint64
	}{
		{meta.Op{Kind: meta.OpPut, Path: "/f", File: f1}, meta.CodeOK, map[string]uint64{k(A, "g1"): 2, k(B, "g2"): 1}},
		{meta.Op{Kind: meta.OpPut, Path: "/f", File: f2}, meta.CodeOK, map[string]uint64{k(B, "g2"): 1, k(C, ""): 1}},
		{copyOp("/f", "/f2"), meta.CodeOK, map[string]uint64{k(B, "g2"): 2, k(C, ""): 2}},
		{meta.Op{Kind: meta.OpPut, Path: "/d/x", File: f3}, meta.CodeOK, map[string]uint64{k(B, "g2"): 2, k(C, ""): 2, k(D, "g1"): 1}},
		{meta.Op{Kind: meta.OpPut, Path: "/d/y", File: f4}, meta.CodeOK, map[string]uint64{k(B, "g2"): 2, k(C, ""): 3, k(D, "g1"): 1}},
		{copyOp("/d", "/e"), meta.CodeOK, map[string]uint64{k(B, "g2"): 2, k(C, ""): 4, k(D, "g1"): 2}},
		// A copy over a file keeps the target's inode but replaces its chunks.
		{copyOp("/f", "/d/x"), meta.CodeOK, map[string]uint64{k(B, "g2"): 3, k(C, ""): 5, k(D, "g1"): 1}},
		// Renaming over a file frees the file it replaces.
		{renameOp("/e/y", "/f2"), meta.CodeOK, map[string]uint64{k(B, "g2"): 2, k(C, ""): 4, k(D, "g1"): 1}},
		{deleteROp("/d"), meta.CodeOK, map[string]uint64{k(B, "g2"): 1, k(C, ""): 2, k(D, "g1"): 1}},
		{deleteOp("/f"), meta.CodeOK, map[string]uint64{k(C, ""): 1, k(D, "g1"): 1}},
		{meta.Op{Kind: meta.OpPut, Path: "/e", File: f1}, meta.CodeIsDir, map[string]uint64{k(C, ""): 1, k(D, "g1"): 1}},
		{deleteOp("/e"), meta.CodeNotEmpty, map[string]uint64{k(C, ""): 1, k(D, "g1"): 1}},
		// Rewriting a file with the chunks it has changes nothing.
		{meta.Op{Kind: meta.OpPut, Path: "/f2", File: f4}, meta.CodeOK, map[string]uint64{k(C, ""): 1, k(D, "g1"): 1}},
	}
	for i, s := range steps {
		s.op.Time = int64(i + 1)
		crApply(t, d, s.op, s.code)
		if got := crRefs(t, d); !maps.Equal(got, s.want) {
			t.Fatalf("after step %d %+v:\ncounts %v\nwant   %v", i, s.op, got, s.want)
		}
		if err := d.view(nsCheckChunkRefs); err != nil {
			t.Fatalf("after step %d: %v", i, err)
		}
	}

	// Left: /f2 lists C (no group), /e/x lists D in g1.
	hs := []meta.Hash{A, B, C, D}
	for _, c := range []struct {
		groups []string
		want   []bool
	}{
		{nil, []bool{false, false, true, true}},
		{[]string{""}, []bool{false, false, true, false}},
		{[]string{"g1"}, []bool{false, false, false, true}},
		{[]string{"g2"}, []bool{false, false, false, false}},
		{[]string{"g2", "", "g1"}, []bool{false, false, true, true}},
	} {
		got, err := d.Reader().ChunkReferenced(hs, c.groups...)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ChunkReferenced(groups %q) = %v, %v; want %v", c.groups, got, err, c.want)
		}
	}
	if got, err := d.Reader().ChunkReferenced(nil, "g1"); err != nil || len(got) != 0 {
		t.Errorf("ChunkReferenced of no hashes: %v, %v", got, err)
	}
}

// crSeed fills d with files sharing chunks across two groups.
func crSeed(t *testing.T, d *DB) {
	t.Helper()
	for i := range 6 {
		f := crFile(
			meta.ChunkRef{Hash: meta.HashOf([]byte{byte(i % 3)}), Size: 1},
			meta.ChunkRef{Hash: meta.HashOf([]byte{byte(i % 2)}), Size: 1, Group: "g1"},
		)
		crApply(t, d, meta.Op{Kind: meta.OpPut, Path: fmt.Sprintf("/d%d/f", i%2), File: f, Time: 1}, meta.CodeOK)
		crApply(t, d, meta.Op{Kind: meta.OpPut, Path: fmt.Sprintf("/f%d", i), File: f, Time: 1}, meta.CodeOK)
	}
	crApply(t, d, copyOp("/d0", "/c"), meta.CodeOK)
}

func TestChunkRefsRebuiltAtOpen(t *testing.T) {
	dir := t.TempDir()
	d := crOpen(t, dir)
	crSeed(t, d)
	want := crRefs(t, d)
	// What a store written before the bucket existed looks like.
	if err := d.update(func(tx *bbolt.Tx) error { return deleteBucket(tx, bucketChunkRefs) }); err != nil {
		t.Fatal(err)
	}
	err := d.update(func(tx *bbolt.Tx) error {
		_, err := applyOp(tx, &meta.Op{Kind: meta.OpMkdir, Path: "/x"}, 0)
		return err
	})
	if err == nil {
		t.Error("ApplyOp without the chunkrefs bucket succeeded")
	}
	if _, err := d.Reader().ChunkReferenced([]meta.Hash{{}}); err == nil {
		t.Error("ChunkReferenced without the chunkrefs bucket succeeded")
	}
	d.Close()

	d = crOpen(t, dir)
	if got := crRefs(t, d); len(got) == 0 || !maps.Equal(got, want) {
		t.Errorf("rebuilt counts %v, want %v", got, want)
	}
	if err := d.view(nsCheckChunkRefs); err != nil {
		t.Error(err)
	}
}

func TestChunkRefsRestore(t *testing.T) {
	d := crOpen(t, t.TempDir())
	crSeed(t, d)
	want := crRefs(t, d)
	snap := filepath.Join(d.snapshotDir(), "s1")
	if _, _, err := d.writeSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(d.snapshotDir(), "old")
	if _, _, err := d.writeSnapshot(old); err != nil {
		t.Fatal(err)
	}
	// A snapshot from a node that predates the bucket.
	b, err := bbolt.Open(old, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(func(tx *bbolt.Tx) error { return deleteBucket(tx, bucketChunkRefs) }); err != nil {
		t.Fatal(err)
	}
	b.Close()

	for _, p := range []string{snap, old} {
		crApply(t, d, deleteROp("/d0"), meta.CodeOK)
		crApply(t, d, meta.Op{Kind: meta.OpPut, Path: "/new", File: crFile(meta.ChunkRef{Hash: meta.HashOf([]byte("new")), Size: 1}), Time: 2}, meta.CodeOK)
		if maps.Equal(crRefs(t, d), want) {
			t.Fatal("the ops after the snapshot changed no count")
		}
		if _, err := d.restore(p); err != nil {
			t.Fatal(err)
		}
		if got := crRefs(t, d); !maps.Equal(got, want) {
			t.Errorf("after restoring %s: counts %v, want %v", filepath.Base(p), got, want)
		}
		if err := d.view(nsCheckChunkRefs); err != nil {
			t.Errorf("after restoring %s: %v", filepath.Base(p), err)
		}
	}
}

func TestChunkRefsCorruptCount(t *testing.T) {
	db := nsOpenDB(t)
	nsApply(t, db, putOp("/f", 1))
	// A count lower than the inodes say: freeing the file would go below 0.
	db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketChunkRefs) })
	db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucketChunkRefs); return err })
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := applyOp(tx, &meta.Op{Kind: meta.OpDelete, Path: "/f"}, 0)
		return err
	})
	if !errors.Is(err, meta.ErrCorrupt) {
		t.Errorf("delete with a missing count: %v, want ErrCorrupt", err)
	}
}

func TestChunkGroups(t *testing.T) {
	d := crOpen(t, t.TempDir())
	a, b, c := meta.HashOf([]byte("a")), meta.HashOf([]byte("b")), meta.HashOf([]byte("c"))
	crApply(t, d, meta.Op{Kind: meta.OpPut, Path: "/x", Time: 1, File: &meta.Inode{Type: meta.TypeFile, Size: 2,
		Chunks: []meta.ChunkRef{{Hash: a, Size: 1, Group: "g2"}, {Hash: b, Size: 1, Group: "g1"}}}}, meta.CodeOK)
	got, err := d.ChunkGroups([]meta.Hash{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"g2", "g1", ""}; !slices.Equal(got, want) {
		t.Fatalf("ChunkGroups = %q, want %q", got, want)
	}
}

package store

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.etcd.io/bbolt"

	"shoal/meta"
)

var nsSeed = flag.Uint64("namespace.seed", 0, "run TestNamespaceModel with only this seed")

func nsOpenDB(t testing.TB) *bbolt.DB {
	t.Helper()
	// NoSync: durability is the caller's business, and fsync would dominate
	// the randomized tests.
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "ns.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(initStore); err != nil {
		t.Fatal(err)
	}
	return db
}

func nsApply(t testing.TB, db *bbolt.DB, op meta.Op) meta.Result {
	t.Helper()
	var r meta.Result
	err := db.Update(func(tx *bbolt.Tx) error {
		var err error
		r, err = applyOp(tx, &op, 0)
		return err
	})
	if err != nil {
		t.Fatalf("apply %+v: %v", op, err)
	}
	return r
}

// nsDigest hashes every bucket's name, keys and values, so two equal digests
// mean byte-identical namespaces.
func nsDigest(tx *bbolt.Tx) string {
	h := sha256.New()
	write := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		write(name)
		return b.ForEach(func(k, v []byte) error { write(k); write(v); return nil })
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

func nsKeyCount(tx *bbolt.Tx, bucket []byte) int {
	n := 0
	tx.Bucket(bucket).ForEach(func(_, _ []byte) error { n++; return nil })
	return n
}

func nsMust(t *testing.T, tx *bbolt.Tx, p string) meta.Inode {
	t.Helper()
	in, err := lookupPath(tx, p)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func nsGone(t *testing.T, tx *bbolt.Tx, p string) {
	t.Helper()
	if _, err := lookupPath(tx, p); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("lookup %s: got %v, want ErrNotFound", p, err)
	}
}

func nsFile(size int64) *meta.Inode {
	h := meta.HashOf([]byte(fmt.Sprint(size)))
	return &meta.Inode{Size: size, Hash: h.String(), Chunks: []meta.ChunkRef{{Hash: h, Size: size}}}
}

func putOp(p string, size int64) meta.Op {
	return meta.Op{Kind: meta.OpPut, Path: p, File: nsFile(size)}
}
func mkdirOp(p string) meta.Op     { return meta.Op{Kind: meta.OpMkdir, Path: p} }
func mkdirPOp(p string) meta.Op    { return meta.Op{Kind: meta.OpMkdir, Path: p, Parents: true} }
func deleteOp(p string) meta.Op    { return meta.Op{Kind: meta.OpDelete, Path: p} }
func deleteROp(p string) meta.Op   { return meta.Op{Kind: meta.OpDelete, Path: p, Recursive: true} }
func renameOp(p, q string) meta.Op { return meta.Op{Kind: meta.OpRename, Path: p, To: q} }
func copyOp(p, q string) meta.Op   { return meta.Op{Kind: meta.OpCopy, Path: p, To: q} }

// nsHas checks the mode, link count and mtime of the inode at p.
func nsHas(p string, mode, nlink uint32, mtime int64) func(*testing.T, *bbolt.Tx) {
	return func(t *testing.T, tx *bbolt.Tx) {
		t.Helper()
		if in := nsMust(t, tx, p); in.Mode != mode || in.Nlink != nlink || in.MTime != mtime {
			t.Errorf("%s: %+v, want mode %o nlink %d mtime %d", p, in, mode, nlink, mtime)
		}
	}
}

type nsCase struct {
	name    string
	setup   []meta.Op
	op      meta.Op
	code    meta.Code
	created bool
	check   func(t *testing.T, tx *bbolt.Tx)
}

// TestNamespaceRules applies each case's setup to a fresh namespace, then
// its op at time 100. A failed op must leave every bucket byte-identical.
func TestNamespaceRules(t *testing.T) {
	tree := []meta.Op{mkdirOp("/d"), putOp("/d/f", 10), mkdirOp("/d/e"), putOp("/d/e/g", 20), putOp("/f", 30), mkdirOp("/empty")}
	for _, c := range slices.Concat(nsPutCases, nsDeleteMkdirCases, nsRenameCases, nsCopyCases, nsConditionCases) {
		t.Run(c.name, func(t *testing.T) {
			db := nsOpenDB(t)
			for i, op := range append(slices.Clone(tree), c.setup...) {
				op.Time = int64(i + 1)
				if r := nsApply(t, db, op); r.Code != meta.CodeOK {
					t.Fatalf("setup %+v: %s", op, r.Code)
				}
			}
			var before string
			db.View(func(tx *bbolt.Tx) error { before = nsDigest(tx); return nil })
			op := c.op
			op.Time = 100
			r := nsApply(t, db, op)
			if r.Code != c.code || r.Created != c.created {
				t.Fatalf("got %+v, want code %q created %v", r, c.code, c.created)
			}
			db.View(func(tx *bbolt.Tx) error {
				if after := nsDigest(tx); c.code != meta.CodeOK && after != before {
					t.Errorf("failed op changed the namespace")
				}
				if err := nsCheckTree(tx); err != nil {
					t.Error(err)
				}
				if c.check != nil {
					c.check(t, tx)
				}
				return nil
			})
		})
	}
}

var nsPutCases = []nsCase{
	{name: "put/new", op: meta.Op{Kind: meta.OpPut, Path: "/d/n", File: nsFile(5)}, created: true, check: func(t *testing.T, tx *bbolt.Tx) {
		f := nsMust(t, tx, "/d/n")
		if f.Type != meta.TypeFile || f.Size != 5 || f.Mode != 0o644 || f.MTime != 100 || f.Nlink != 1 || len(f.Chunks) != 1 {
			t.Errorf("new file %+v", f)
		}
		if d := nsMust(t, tx, "/d"); d.MTime != 100 {
			t.Errorf("parent mtime %d, want 100", d.MTime)
		}
	}},
	{name: "put/mode", op: meta.Op{Kind: meta.OpPut, Path: "/n", File: nsFile(5), Mode: 0o600}, created: true, check: nsHas("/n", 0o600, 1, 100)},
	{name: "put/parents", op: putOp("/x/y/z", 5), created: true, check: func(t *testing.T, tx *bbolt.Tx) {
		for _, p := range []string{"/x", "/x/y"} {
			if d := nsMust(t, tx, p); d.Type != meta.TypeDir || d.Mode != 0o755 || d.MTime != 100 {
				t.Errorf("%s: %+v", p, d)
			}
		}
		if r := nsMust(t, tx, "/"); r.MTime != 100 || r.Nlink != 5 {
			t.Errorf("root %+v, want mtime 100 nlink 5", r)
		}
	}},
	{name: "put/replace", setup: []meta.Op{{Kind: meta.OpPut, Path: "/r", File: nsFile(1), Mode: 0o600}}, op: putOp("/r", 7), check: func(t *testing.T, tx *bbolt.Tx) {
		f := nsMust(t, tx, "/r")
		if f.Ino != 8 || f.Size != 7 || f.Hash != nsFile(7).Hash || f.MTime != 100 || f.Mode != 0o600 {
			t.Errorf("replaced %+v", f)
		}
		if r := nsMust(t, tx, "/"); r.MTime == 100 {
			t.Errorf("replacing a file bumped the parent's mtime")
		}
	}},
	{name: "put/replace mode", op: meta.Op{Kind: meta.OpPut, Path: "/f", File: nsFile(1), Mode: 0o640}, check: nsHas("/f", 0o640, 1, 100)},
	{name: "put/parent is file", op: putOp("/f/x", 1), code: meta.CodeNotDir},
	{name: "put/deep parent is file", op: putOp("/d/f/x/y", 1), code: meta.CodeNotDir},
	{name: "put/is dir", op: putOp("/d", 1), code: meta.CodeIsDir},
	{name: "put/root", op: putOp("/", 1), code: meta.CodeIsDir},
	{name: "put/nil file", op: meta.Op{Kind: meta.OpPut, Path: "/n"}, code: meta.CodeInvalid},
	{name: "put/relative", op: putOp("d/n", 1), code: meta.CodeInvalid},
	{name: "put/empty", op: putOp("", 1), code: meta.CodeInvalid},
	{name: "put/trailing slash", op: putOp("/d/", 1), code: meta.CodeInvalid},
	{name: "put/double slash", op: putOp("/d//n", 1), code: meta.CodeInvalid},
	{name: "put/dot", op: putOp("/d/./n", 1), code: meta.CodeInvalid},
	{name: "put/dotdot", op: putOp("/d/..", 1), code: meta.CodeInvalid},
	{name: "put/long name", op: putOp("/"+strings.Repeat("x", 256), 1), code: meta.CodeInvalid},
	{name: "noop", op: meta.Op{Kind: meta.OpNoop, Path: "/d"}},
	{name: "config", op: meta.Op{Kind: meta.OpConfig, Members: []meta.Member{{ID: 1}}}},
	{name: "unknown kind", op: meta.Op{Kind: 99, Path: "/d"}, code: meta.CodeInvalid},
}

var nsDeleteMkdirCases = []nsCase{
	{name: "delete/file", op: deleteOp("/d/f"), check: nsHas("/d", 0o755, 3, 100)},
	{name: "delete/empty dir", op: deleteOp("/empty"), check: nsHas("/", 0o755, 3, 100)},
	{name: "delete/recursive", op: deleteROp("/d"), check: func(t *testing.T, tx *bbolt.Tx) {
		nsGone(t, tx, "/d")
		// Left: root, /f, /empty.
		if n := nsKeyCount(tx, bucketInodes); n != 3 {
			t.Errorf("%d inodes left, want 3", n)
		}
		if n := nsKeyCount(tx, bucketDentries); n != 2 {
			t.Errorf("%d dentries left, want 2", n)
		}
	}},
	{name: "delete/missing", op: deleteOp("/nope"), code: meta.CodeNotFound},
	{name: "delete/under file", op: deleteOp("/f/x"), code: meta.CodeNotDir},
	{name: "delete/root", op: deleteROp("/"), code: meta.CodeInvalid},
	{name: "delete/not empty", op: deleteOp("/d"), code: meta.CodeNotEmpty},
	{name: "mkdir/new", op: mkdirOp("/d/n"), created: true, check: func(t *testing.T, tx *bbolt.Tx) {
		if n := nsMust(t, tx, "/d/n"); n.Mode != 0o755 || n.Nlink != 2 || n.MTime != 100 {
			t.Errorf("new dir %+v", n)
		}
		if d := nsMust(t, tx, "/d"); d.Nlink != 4 || d.MTime != 100 {
			t.Errorf("parent %+v", d)
		}
	}},
	{name: "mkdir/mode", op: meta.Op{Kind: meta.OpMkdir, Path: "/n", Mode: 0o700}, created: true, check: nsHas("/n", 0o700, 2, 100)},
	{name: "mkdir/exists", op: mkdirOp("/d"), code: meta.CodeExists},
	{name: "mkdir/exists parents", op: mkdirPOp("/d")},
	{name: "mkdir/root", op: mkdirOp("/"), code: meta.CodeExists},
	{name: "mkdir/root parents", op: mkdirPOp("/")},
	{name: "mkdir/file", op: mkdirOp("/f"), code: meta.CodeExists},
	{name: "mkdir/file parents", op: mkdirPOp("/f"), code: meta.CodeExists},
	{name: "mkdir/parent missing", op: mkdirOp("/x/y"), code: meta.CodeNotFound},
	{name: "mkdir/parents", op: meta.Op{Kind: meta.OpMkdir, Path: "/d/x/y/z", Parents: true, Mode: 0o700}, created: true, check: func(t *testing.T, tx *bbolt.Tx) {
		if x := nsMust(t, tx, "/d/x"); x.Mode != 0o755 || x.Nlink != 3 {
			t.Errorf("/d/x %+v", x)
		}
		if z := nsMust(t, tx, "/d/x/y/z"); z.Mode != 0o700 || z.Nlink != 2 {
			t.Errorf("/d/x/y/z %+v", z)
		}
	}},
	{name: "mkdir/parent is file", op: mkdirOp("/f/x"), code: meta.CodeNotDir},
	{name: "mkdir/parent is file parents", op: mkdirPOp("/f/x/y"), code: meta.CodeNotDir},
	{name: "mkdir/invalid", op: mkdirOp("/a/../b"), code: meta.CodeInvalid},
}

var nsRenameCases = []nsCase{
	{name: "rename/file", op: renameOp("/d/f", "/n"), check: func(t *testing.T, tx *bbolt.Tx) {
		nsGone(t, tx, "/d/f")
		if f := nsMust(t, tx, "/n"); f.Ino != 3 || f.MTime != 2 {
			t.Errorf("moved %+v, want ino 3 and its old mtime", f)
		}
		if d, r := nsMust(t, tx, "/d"), nsMust(t, tx, "/"); d.MTime != 100 || r.MTime != 100 {
			t.Errorf("parent mtimes %d %d", d.MTime, r.MTime)
		}
	}},
	{name: "rename/dir moves subtree", op: renameOp("/d", "/empty/m"), check: func(t *testing.T, tx *bbolt.Tx) {
		nsGone(t, tx, "/d")
		if g := nsMust(t, tx, "/empty/m/e/g"); g.Ino != 5 || g.MTime != 4 {
			t.Errorf("descendant %+v, want its old ino 5 and mtime", g)
		}
		r, e := nsMust(t, tx, "/"), nsMust(t, tx, "/empty")
		if r.Nlink != 3 || e.Nlink != 3 || e.MTime != 100 {
			t.Errorf("root %+v, /empty %+v", r, e)
		}
		if n := nsKeyCount(tx, bucketDentries); n != 6 {
			t.Errorf("%d dentries, want 6", n)
		}
	}},
	{name: "rename/within dir", op: renameOp("/d/f", "/d/h"), check: nsHas("/d", 0o755, 3, 100)},
	{name: "rename/dir within dir", op: renameOp("/d/e", "/d/x"), check: nsHas("/d", 0o755, 3, 100)},
	{name: "rename/file over file", op: renameOp("/f", "/d/f"), check: func(t *testing.T, tx *bbolt.Tx) {
		if f := nsMust(t, tx, "/d/f"); f.Ino != 6 {
			t.Errorf("dest ino %d, want 6", f.Ino)
		}
		if n := nsKeyCount(tx, bucketInodes); n != 6 {
			t.Errorf("%d inodes, want 6: the replaced one must go", n)
		}
	}},
	{name: "rename/dir over empty dir", op: renameOp("/d/e", "/empty"), check: func(t *testing.T, tx *bbolt.Tx) {
		nsMust(t, tx, "/empty/g")
		if r, d := nsMust(t, tx, "/"), nsMust(t, tx, "/d"); r.Nlink != 4 || d.Nlink != 2 {
			t.Errorf("root nlink %d /d nlink %d", r.Nlink, d.Nlink)
		}
	}},
	{name: "rename/same path", op: renameOp("/d", "/d")},
	{name: "rename/missing", op: renameOp("/nope", "/x"), code: meta.CodeNotFound},
	{name: "rename/missing same path", op: renameOp("/nope", "/nope"), code: meta.CodeNotFound},
	{name: "rename/source under file", op: renameOp("/f/x", "/x"), code: meta.CodeNotDir},
	{name: "rename/root source", op: renameOp("/", "/x"), code: meta.CodeInvalid},
	{name: "rename/root dest", op: renameOp("/f", "/"), code: meta.CodeInvalid},
	{name: "rename/dest parent missing", op: renameOp("/f", "/x/y"), code: meta.CodeNotFound},
	{name: "rename/dest parent file", op: renameOp("/d/f", "/f/y"), code: meta.CodeNotDir},
	{name: "rename/into itself", op: renameOp("/d", "/d/x"), code: meta.CodeInvalid},
	{name: "rename/into subtree", op: renameOp("/d", "/d/e/x"), code: meta.CodeInvalid},
	{name: "rename/onto own child", op: renameOp("/d", "/d/e"), code: meta.CodeInvalid},
	{name: "rename/dir over non-empty", op: renameOp("/empty", "/d"), code: meta.CodeNotEmpty},
	{name: "rename/onto ancestor", op: renameOp("/d/e", "/d"), code: meta.CodeNotEmpty},
	{name: "rename/file over dir", op: renameOp("/f", "/empty"), code: meta.CodeIsDir},
	{name: "rename/dir over file", op: renameOp("/empty", "/f"), code: meta.CodeNotDir},
	{name: "rename/invalid", op: renameOp("/f", "/x/"), code: meta.CodeInvalid},
}

var nsCopyCases = []nsCase{
	{name: "copy/file", op: copyOp("/d/f", "/c"), created: true, check: func(t *testing.T, tx *bbolt.Tx) {
		src, c := nsMust(t, tx, "/d/f"), nsMust(t, tx, "/c")
		if c.Ino == src.Ino || c.Hash != src.Hash || c.Size != src.Size || c.MTime != 100 || c.Nlink != 1 ||
			!slices.Equal(c.Chunks, src.Chunks) {
			t.Errorf("copy %+v of %+v", c, src)
		}
	}},
	{name: "copy/file over file", op: copyOp("/d/f", "/f"), check: func(t *testing.T, tx *bbolt.Tx) {
		if f := nsMust(t, tx, "/f"); f.Ino != 6 || f.Size != 10 || f.Hash != nsFile(10).Hash || f.MTime != 100 {
			t.Errorf("replaced %+v", f)
		}
	}},
	{name: "copy/dir", op: copyOp("/d", "/empty/c"), created: true, check: func(t *testing.T, tx *bbolt.Tx) {
		g, c := nsMust(t, tx, "/d/e/g"), nsMust(t, tx, "/empty/c/e/g")
		if c.Ino == g.Ino || c.Hash != g.Hash || c.MTime != 100 {
			t.Errorf("copy %+v of %+v", c, g)
		}
		if n := nsKeyCount(tx, bucketInodes); n != 11 {
			t.Errorf("%d inodes, want 11", n)
		}
		if c, e := nsMust(t, tx, "/empty/c"), nsMust(t, tx, "/empty"); c.Nlink != 3 || e.Nlink != 3 {
			t.Errorf("nlink /empty/c %d /empty %d", c.Nlink, e.Nlink)
		}
		var refs int
		forEachChunk(tx, func(meta.ChunkRef) error { refs++; return nil })
		if refs != 5 {
			t.Errorf("%d chunk refs, want 5", refs)
		}
	}},
	{name: "copy/missing", op: copyOp("/nope", "/x"), code: meta.CodeNotFound},
	{name: "copy/dest parent missing", op: copyOp("/f", "/x/y"), code: meta.CodeNotFound},
	{name: "copy/dest parent file", op: copyOp("/d/f", "/f/y"), code: meta.CodeNotDir},
	{name: "copy/into subtree", op: copyOp("/d", "/d/e/x"), code: meta.CodeInvalid},
	{name: "copy/onto itself", op: copyOp("/f", "/f"), code: meta.CodeInvalid},
	{name: "copy/root", op: copyOp("/", "/x"), code: meta.CodeInvalid},
	{name: "copy/to root", op: copyOp("/f", "/"), code: meta.CodeInvalid},
	{name: "copy/file over dir", op: copyOp("/f", "/d"), code: meta.CodeIsDir},
	{name: "copy/dir over dir", op: copyOp("/empty", "/d"), code: meta.CodeExists},
	{name: "copy/dir over file", op: copyOp("/empty", "/f"), code: meta.CodeExists},
}

func TestNamespaceLookupReadDir(t *testing.T) {
	db := nsOpenDB(t)
	for _, op := range []meta.Op{putOp("/d/b", 2), putOp("/d/a", 1), mkdirOp("/d/c"), putOp("/f", 3)} {
		nsApply(t, db, op)
	}
	db.View(func(tx *bbolt.Tx) error {
		if r := nsMust(t, tx, "/"); r.Ino != RootIno || r.Type != meta.TypeDir || r.Mode != 0o755 {
			t.Errorf("root %+v", r)
		}
		ents, err := readDirPath(tx, "/d")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name)
		}
		if !slices.Equal(names, []string{"a", "b", "c"}) || ents[1].Size != 2 || ents[2].Type != meta.TypeDir {
			t.Errorf("listing %+v", ents)
		}
		for _, c := range []struct {
			path string
			want error
		}{{"/nope", meta.ErrNotFound}, {"/f/x", meta.ErrNotDir}, {"/d/", meta.ErrInvalid}} {
			_, err := lookupPath(tx, c.path)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("lookup %s: %v, want %v naming the path", c.path, err, c.want)
			}
		}
		if _, err := readDirPath(tx, "/f"); !errors.Is(err, meta.ErrNotDir) {
			t.Errorf("read dir of a file: %v", err)
		}
		return nil
	})
	if err := db.Update(initNamespace); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bbolt.Tx) error { nsMust(t, tx, "/d/a"); return nil })
}

// TestNamespaceStorageErrors checks that a corrupt record or missing
// buckets come back as errors, for the caller to roll back, not as codes.
func TestNamespaceStorageErrors(t *testing.T) {
	db := nsOpenDB(t)
	nsApply(t, db, putOp("/d/f", 1))
	db.Update(func(tx *bbolt.Tx) error { return bucketIn(tx, bucketInodes).put(inoKey(3), []byte{0xc1}) })
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := applyOp(tx, &meta.Op{Kind: meta.OpDelete, Path: "/d", Recursive: true}, 0)
		return err
	})
	if !errors.Is(err, meta.ErrCorrupt) {
		t.Errorf("delete over a corrupt inode: %v, want ErrCorrupt", err)
	}
	db.View(func(tx *bbolt.Tx) error {
		if err := forEachChunk(tx, func(meta.ChunkRef) error { return nil }); !errors.Is(err, meta.ErrCorrupt) {
			t.Errorf("ForEachChunk over a corrupt inode: %v, want ErrCorrupt", err)
		}
		return nil
	})

	bare, err := bbolt.Open(filepath.Join(t.TempDir(), "bare.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	bare.Update(func(tx *bbolt.Tx) error {
		if _, err := applyOp(tx, &meta.Op{Kind: meta.OpMkdir, Path: "/d"}, 0); err == nil {
			t.Error("ApplyOp without InitNamespace succeeded")
		}
		if _, err := lookupPath(tx, "/"); err == nil {
			t.Error("Lookup without InitNamespace succeeded")
		}
		return nil
	})
}

// nsCheckTree verifies the invariants every op must keep: each dentry links
// a directory to an existing inode, every inode but the root is reachable
// from the root exactly once, link counts are right, and next_ino lies
// beyond every inode.
func nsCheckTree(tx *bbolt.Tx) error {
	inodes := map[uint64]meta.Inode{}
	err := bucketIn(tx, bucketInodes).forEach(func(k, v []byte) error {
		var in meta.Inode
		if err := msgpack.Unmarshal(v, &in); err != nil || in.Ino != binary.BigEndian.Uint64(k) {
			return fmt.Errorf("inode %x: bad record %+v (%v)", k, in, err)
		}
		inodes[in.Ino] = in
		return nil
	})
	if err != nil {
		return err
	}
	refs, subdirs := map[uint64]int{}, map[uint64]uint32{}
	kids := map[uint64][]uint64{}
	err = bucketIn(tx, bucketDentries).forEach(func(k, v []byte) error {
		parent, child := binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(v)
		p, okp := inodes[parent]
		c, okc := inodes[child]
		if !okp || !okc || p.Type != meta.TypeDir {
			return fmt.Errorf("dentry %d/%q -> %d: bad parent or dangling", parent, k[8:], child)
		}
		if c.Type == meta.TypeDir && c.Parent != parent {
			return fmt.Errorf("directory %d is in %d but records parent %d", child, parent, c.Parent)
		}
		refs[child]++
		kids[parent] = append(kids[parent], child)
		if c.Type == meta.TypeDir {
			subdirs[parent]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	nv, err := bucketIn(tx, bucketNSMeta).get(keyNextIno)
	if err != nil {
		return err
	}
	next := binary.BigEndian.Uint64(nv)
	orphans := 0
	for ino, in := range inodes {
		want := 1
		switch {
		case ino == RootIno:
			want = 0
		case in.Type != meta.TypeDir: // hard links; 0 for an orphan
			want = int(in.Nlink)
		}
		if refs[ino] != want || ino >= next {
			return fmt.Errorf("inode %d: %d links (want %d), next_ino %d", ino, refs[ino], want, next)
		}
		if in.Type == meta.TypeDir && in.Nlink != 2+subdirs[ino] || in.Type == meta.TypeSymlink && in.Nlink == 0 {
			return fmt.Errorf("inode %d (%s): nlink %d, %d subdirs", ino, in.Type, in.Nlink, subdirs[ino])
		}
		if in.Nlink == 0 {
			orphans++
		}
	}
	// Right link counts do not rule out a detached cycle of directories.
	seen := map[uint64]bool{RootIno: true}
	for todo := []uint64{RootIno}; len(todo) > 0; {
		dir := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, c := range kids[dir] {
			if !seen[c] {
				seen[c] = true
				todo = append(todo, c)
			}
		}
	}
	if len(seen)+orphans != len(inodes) {
		return fmt.Errorf("%d of %d inodes reachable from the root, %d orphans", len(seen), len(inodes), orphans)
	}
	return nil
}

// nsChooser picks from n choices; *rand.Rand is one, fuzz input another.
type nsChooser interface{ IntN(n int) int }

// nsBytes feeds fuzz input to nsGenOp, choosing 0 once it runs out.
type nsBytes struct{ b []byte }

func (s *nsBytes) IntN(n int) int {
	if len(s.b) == 0 {
		return 0
	}
	v := int(s.b[0]) % n
	s.b = s.b[1:]
	return v
}

// nsGenOp draws an op over paths of at most three names from {a, b, c}, so
// that ops collide often, with the odd malformed path and unknown kind.
func nsGenOp(r nsChooser, now int64) meta.Op {
	genPath := func() string {
		if r.IntN(20) == 0 {
			return []string{"", "a", "/a/", "/a//b", "/.", "/a/.."}[r.IntN(6)]
		}
		if r.IntN(16) == 0 {
			return "/"
		}
		p := ""
		for range 1 + r.IntN(3) {
			p += "/" + []string{"a", "b", "c"}[r.IntN(3)]
		}
		return p
	}
	op := meta.Op{Time: now, Path: genPath()}
	switch r.IntN(12) {
	case 0, 1, 2:
		op.Kind, op.File = meta.OpPut, nsFile(int64(r.IntN(3)))
		op.Mode = []uint32{0, 0, 0o600}[r.IntN(3)]
	case 3, 4:
		op.Kind, op.Recursive = meta.OpDelete, r.IntN(2) == 0
	case 5, 6:
		op.Kind, op.Parents = meta.OpMkdir, r.IntN(2) == 0
		op.Mode = []uint32{0, 0, 0o700}[r.IntN(3)]
	case 7, 8:
		op.Kind, op.To = meta.OpRename, genPath()
	case 9, 10:
		op.Kind, op.To = meta.OpCopy, genPath()
	default:
		op.Kind = []meta.OpKind{meta.OpNoop, meta.OpConfig, 42}[r.IntN(3)]
	}
	return op
}

// nsStep applies op to both the store (in tx) and the model and compares
// the results, the unchanged bytes of a failed op, and the whole tree.
func nsStep(tx *bbolt.Tx, m nsModel, op meta.Op) (meta.Result, error) {
	before := nsDigest(tx)
	got, err := applyOp(tx, &op, 0)
	if err != nil {
		return got, fmt.Errorf("%+v: error %v", op, err)
	}
	// The model has no inode numbers, so Result.Inode is checked by the
	// tests of the ops that return it.
	if want := m.apply(op); got.Code != want.Code || got.Created != want.Created {
		return got, fmt.Errorf("%+v: got %+v, model says %+v", op, got, want)
	}
	if got.Code != meta.CodeOK && nsDigest(tx) != before {
		return got, fmt.Errorf("%+v: failed with %s but changed the namespace", op, got.Code)
	}
	if err := nsCheckTree(tx); err != nil {
		return got, fmt.Errorf("after %+v: %v", op, err)
	}
	if err := nsCheckChunkRefs(tx); err != nil {
		return got, fmt.Errorf("after %+v: %v", op, err)
	}
	if err := nsCheckIndexes(tx); err != nil {
		return got, fmt.Errorf("after %+v: %v", op, err)
	}
	tree, err := nsDump(tx)
	if err != nil {
		return got, err
	}
	if !maps.Equal(tree, m) {
		return got, fmt.Errorf("after %+v:\nstored %v\nmodel  %v", op, tree, m)
	}
	return got, nil
}

func nsNewModel() nsModel {
	return nsModel{"/": {Dir: true, Mode: 0o755}}
}

func TestNamespaceModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, uint64(time.Now().UnixNano())}
	if *nsSeed != 0 {
		seeds = []uint64{*nsSeed}
	}
	outcomes := map[string]int{}
	for _, seed := range seeds {
		t.Logf("seed %d (rerun with -namespace.seed=%d)", seed, seed)
		db, m := nsOpenDB(t), nsNewModel()
		r := rand.New(rand.NewPCG(seed, 0))
		for i := range 500 {
			op := nsGenOp(r, int64(i+1))
			var res meta.Result
			err := db.Update(func(tx *bbolt.Tx) (err error) { res, err = nsStep(tx, m, op); return err })
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, i, err)
			}
			outcomes[fmt.Sprintf("%d:%s", op.Kind, cmp.Or(res.Code, "ok"))]++
		}
	}
	// The histogram shows whether the generator still reaches every rule.
	t.Logf("op kind:outcome counts %v", outcomes)
}

func FuzzNamespace(f *testing.F) {
	f.Add([]byte{0, 1, 2, 5, 1, 1, 7, 2, 1, 1})
	f.Add([]byte{5, 0, 3, 0, 0, 0, 1, 9, 3, 1, 1, 2, 7, 1, 0})
	f.Add(bytes.Repeat([]byte{3, 7, 1, 2, 9, 0, 3}, 8))
	db := nsOpenDB(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := db.Begin(true)
		if err != nil {
			t.Fatal(err)
		}
		// Every input starts from the bare root: nothing is committed.
		defer tx.Rollback()
		src, m := &nsBytes{b: data}, nsNewModel()
		for i := 0; i < 16 && len(src.b) > 0; i++ {
			if _, err := nsStep(tx, m, nsGenOp(src, int64(i+1))); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// with returns op with f applied: a case's condition on a plain op.
func with(op meta.Op, f func(*meta.Op)) meta.Op { f(&op); return op }

func ifMatch(h string) func(*meta.Op) { return func(op *meta.Op) { op.IfMatch = h } }
func ifAbsent(op *meta.Op)            { op.IfAbsent = true }

// nsConditionCases check If-Match and If-None-Match: * as ops carry them:
// the tree's /f holds nsFile(30), /d/f nsFile(10).
var nsConditionCases = []nsCase{
	{name: "cond/put if match", op: with(putOp("/f", 40), ifMatch(nsFile(30).Hash)), check: nsHas("/f", 0o644, 1, 100)},
	{name: "cond/put if match stale", op: with(putOp("/f", 40), ifMatch(nsFile(10).Hash)), code: meta.CodePrecond},
	{name: "cond/put if match any", op: with(putOp("/f", 40), ifMatch("*"))},
	{name: "cond/put if match any, absent", op: with(putOp("/g", 40), ifMatch("*")), code: meta.CodePrecond},
	{name: "cond/put if match, absent", op: with(putOp("/g", 40), ifMatch(nsFile(40).Hash)), code: meta.CodePrecond},
	{name: "cond/put if match a dir", op: with(putOp("/d", 40), ifMatch(nsFile(30).Hash)), code: meta.CodePrecond},
	{name: "cond/put if absent", op: with(putOp("/g", 40), ifAbsent), created: true},
	{name: "cond/put if absent, parents made", op: with(putOp("/n/e/w", 40), ifAbsent), created: true},
	{name: "cond/put if absent, taken", op: with(putOp("/f", 40), ifAbsent), code: meta.CodePrecond},
	{name: "cond/put if absent, dir there", op: with(putOp("/d", 40), ifAbsent), code: meta.CodePrecond},
	{name: "cond/delete if match", op: with(deleteOp("/d/f"), ifMatch(nsFile(10).Hash)), check: func(t *testing.T, tx *bbolt.Tx) { nsGone(t, tx, "/d/f") }},
	{name: "cond/delete if match stale", op: with(deleteOp("/d/f"), ifMatch(nsFile(30).Hash)), code: meta.CodePrecond},
	{name: "cond/rename if match", op: with(renameOp("/f", "/g"), ifMatch(nsFile(30).Hash))},
	{name: "cond/rename if match stale", op: with(renameOp("/f", "/g"), ifMatch(nsFile(10).Hash)), code: meta.CodePrecond},
	{name: "cond/rename if absent", op: with(renameOp("/f", "/g"), ifAbsent)},
	{name: "cond/rename if absent, taken", op: with(renameOp("/f", "/d/f"), ifAbsent), code: meta.CodePrecond},
	{name: "cond/copy if absent, taken", op: with(copyOp("/f", "/d/f"), ifAbsent), code: meta.CodePrecond},
	{name: "put/explicit mtime", op: with(putOp("/f", 40), func(op *meta.Op) { op.Attr = &meta.SetAttr{Valid: meta.SetMTime, MTime: 7} }),
		check: nsHas("/f", 0o644, 1, 7)},
	{name: "put/explicit mtime, not owner", setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/f", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o666}}},
		op: with(putOp("/f", 40), func(op *meta.Op) {
			op.Attr, op.Cred = &meta.SetAttr{Valid: meta.SetMTime, MTime: 7}, &meta.Cred{Uid: 1000, Gid: 1000}
		}), code: meta.CodePerm},
	{name: "cond/both hold", op: with(with(renameOp("/f", "/g"), ifAbsent), ifMatch(nsFile(30).Hash))},
	{name: "cond/unsearchable", setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/d", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o600}}},
		op: with(putOp("/d/f", 40), func(op *meta.Op) { op.IfAbsent, op.Cred = true, &meta.Cred{Uid: 1000, Gid: 1000} }), code: meta.CodeAccess},
}

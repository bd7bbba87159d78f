package store

import (
	"errors"
	"testing"

	"go.etcd.io/bbolt"
)

// nsLookupAt returns the inode at p from dir, failing the test if absent.
func nsLookupAt(t *testing.T, db *bbolt.DB, dir uint64, p string) Inode {
	t.Helper()
	var in Inode
	err := db.View(func(tx *bbolt.Tx) error {
		var err error
		in, err = LookupAt(tx, dir, p, nil, 0)
		return err
	})
	if err != nil {
		t.Fatalf("lookup %s from %d: %v", p, dir, err)
	}
	return in
}

func nsLookupErr(db *bbolt.DB, dir uint64, p string) error {
	return db.View(func(tx *bbolt.Tx) error {
		_, err := LookupAt(tx, dir, p, nil, 0)
		return err
	})
}

func nsWant(t *testing.T, r Result, code Code) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("got code %q, want %q", r.Code, code)
	}
}

func nsCheckRefs(t *testing.T, db *bbolt.DB) {
	t.Helper()
	if err := db.View(func(tx *bbolt.Tx) error {
		if err := nsCheckTree(tx); err != nil {
			return err
		}
		if err := nsCheckIndexes(tx); err != nil {
			return err
		}
		return nsCheckChunkRefs(tx)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateAndSymlink(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, mkdirOp("/d")), CodeOK)
	d := nsLookupAt(t, db, 0, "/d")

	r := nsApply(t, db, Op{Kind: OpCreate, Dir: d.Ino, Path: "/f", Mode: 0o4640, Uid: 7, Gid: 8, Time: 5, Excl: true})
	nsWant(t, r, CodeOK)
	if !r.Created || r.Inode == nil || r.Inode.Mode != 0o4640 || r.Inode.Uid != 7 || r.Inode.Gid != 8 || r.Inode.Nlink != 1 || r.Inode.Size != 0 {
		t.Fatalf("create result %+v %+v", r, r.Inode)
	}
	f := nsLookupAt(t, db, 0, "/d/f")
	if f.Ino != r.Inode.Ino || f.CTime != 5 || f.ATime != 5 || f.MTime != 5 || f.Hash != emptyHash {
		t.Fatalf("stored %+v", f)
	}
	if got := nsLookupAt(t, db, f.Ino, "/"); got.Ino != f.Ino {
		t.Fatalf("lookup of the inode itself: %+v", got)
	}

	// O_CREAT without O_EXCL opens what is there; with it, fails.
	r = nsApply(t, db, Op{Kind: OpCreate, Dir: d.Ino, Path: "/f", Mode: 0o600})
	if r.Code != CodeOK || r.Created || r.Inode.Ino != f.Ino || r.Inode.Mode != 0o4640 {
		t.Fatalf("create of an existing file: %+v", r)
	}
	nsWant(t, nsApply(t, db, Op{Kind: OpCreate, Dir: d.Ino, Path: "/f", Excl: true}), CodeExists)
	nsWant(t, nsApply(t, db, Op{Kind: OpCreate, Path: "/d", Mode: 0o600}), CodeIsDir)
	// Unlike put, create makes no parents.
	nsWant(t, nsApply(t, db, Op{Kind: OpCreate, Path: "/missing/f"}), CodeNotFound)
	nsWant(t, nsApply(t, db, Op{Kind: OpCreate, Path: "/d/f/g"}), CodeNotDir)
	nsWant(t, nsApply(t, db, Op{Kind: OpCreate, Path: "/"}), CodeInvalid)

	r = nsApply(t, db, Op{Kind: OpSymlink, Dir: d.Ino, Path: "/l", Target: "../x/y", Uid: 3, Time: 6})
	if r.Code != CodeOK || r.Inode.Type != TypeSymlink || r.Inode.Target != "../x/y" || r.Inode.Size != 6 || r.Inode.Uid != 3 {
		t.Fatalf("symlink: %+v %+v", r, r.Inode)
	}
	nsWant(t, nsApply(t, db, Op{Kind: OpSymlink, Path: "/d/l", Target: "z"}), CodeExists)
	nsWant(t, nsApply(t, db, Op{Kind: OpSymlink, Path: "/d/m", Target: ""}), CodeInvalid)
	nsWant(t, nsApply(t, db, Op{Kind: OpSymlink, Path: "/d/m", Target: "a\x00b"}), CodeInvalid)
	// The namespace never follows a symlink: a path through one is ENOTDIR.
	nsWant(t, nsApply(t, db, Op{Kind: OpCreate, Path: "/d/l/f"}), CodeNotDir)
	nsWant(t, nsApply(t, db, Op{Kind: OpCreate, Path: "/d/l", Mode: 0o600}), CodeExists)

	// A put over a symlink replaces it with a file of a new inode.
	l := nsLookupAt(t, db, 0, "/d/l")
	nsWant(t, nsApply(t, db, putOp("/d/l", 3)), CodeOK)
	if p := nsLookupAt(t, db, 0, "/d/l"); p.Type != TypeFile || p.Ino == l.Ino || p.Size != 3 {
		t.Fatalf("put over a symlink: %+v", p)
	}
	var entries []DirEntry
	db.View(func(tx *bbolt.Tx) error { entries, _ = ReadDirAt(tx, d.Ino, "/", nil); return nil })
	if len(entries) != 2 || entries[0].Name != "f" || entries[0].Ino != f.Ino || entries[0].Uid != 7 {
		t.Fatalf("listing by inode: %+v", entries)
	}
	nsCheckRefs(t, db)
}

func TestHardLinks(t *testing.T) {
	db := nsOpenDB(t)
	ref := ChunkRef{Hash: HashOf([]byte("x")), Size: 1, Group: "g1"}
	nsWant(t, nsApply(t, db, Op{Kind: OpPut, Path: "/a/f", File: &Inode{Size: 1, Chunks: []ChunkRef{ref}}}), CodeOK)
	nsWant(t, nsApply(t, db, mkdirOp("/b")), CodeOK)
	f := nsLookupAt(t, db, 0, "/a/f")
	b := nsLookupAt(t, db, 0, "/b")

	r := nsApply(t, db, Op{Kind: OpLink, Dir: f.Ino, Path: "/", ToDir: b.Ino, To: "/g", Time: 9})
	if r.Code != CodeOK || r.Inode.Nlink != 2 || r.Inode.Ino != f.Ino || r.Inode.CTime != 9 {
		t.Fatalf("link: %+v %+v", r, r.Inode)
	}
	if g := nsLookupAt(t, db, 0, "/b/g"); g.Ino != f.Ino || g.Nlink != 2 {
		t.Fatalf("the new name: %+v", g)
	}
	nsWant(t, nsApply(t, db, Op{Kind: OpLink, Path: "/a/f", To: "/b/g"}), CodeExists)
	nsWant(t, nsApply(t, db, Op{Kind: OpLink, Path: "/b", To: "/c"}), CodePerm)
	nsWant(t, nsApply(t, db, Op{Kind: OpLink, Path: "/a/f", To: "/nope/g"}), CodeNotFound)
	nsCheckRefs(t, db)

	// link(2) links a symlink itself, which then lives until its last name goes.
	nsWant(t, nsApply(t, db, Op{Kind: OpSymlink, Path: "/s", Target: "a/f"}), CodeOK)
	nsWant(t, nsApply(t, db, Op{Kind: OpLink, Path: "/s", To: "/b/s2"}), CodeOK)
	nsWant(t, nsApply(t, db, Op{Kind: OpDelete, Path: "/s", NotDir: true}), CodeOK)
	if s2 := nsLookupAt(t, db, 0, "/b/s2"); s2.Type != TypeSymlink || s2.Nlink != 1 || s2.Target != "a/f" {
		t.Fatalf("the symlink's other name: %+v", s2)
	}
	nsCheckRefs(t, db)

	// Content changed through one name is the content of the other.
	nsWant(t, nsApply(t, db, putOp("/b/g", 5)), CodeOK)
	if a := nsLookupAt(t, db, 0, "/a/f"); a.Size != 5 {
		t.Fatalf("after a put through the other link: %+v", a)
	}
	// Renaming one link onto the other does nothing (rename(2)).
	nsWant(t, nsApply(t, db, renameOp("/a/f", "/b/g")), CodeOK)
	nsLookupAt(t, db, 0, "/a/f")

	nsWant(t, nsApply(t, db, Op{Kind: OpDelete, Path: "/a/f", NotDir: true}), CodeOK)
	if g := nsLookupAt(t, db, 0, "/b/g"); g.Nlink != 1 {
		t.Fatalf("after unlinking one name: %+v", g)
	}
	nsWant(t, nsApply(t, db, Op{Kind: OpDelete, Path: "/b/g"}), CodeOK)
	if err := nsLookupErr(db, f.Ino, "/"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the inode after its last unlink: %v", err)
	}
	nsCheckRefs(t, db)
}

func TestUnlinkRmdirOrphans(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, putOp("/d/f", 4)), CodeOK)
	nsWant(t, nsApply(t, db, Op{Kind: OpDelete, Path: "/d", NotDir: true}), CodeIsDir)
	nsWant(t, nsApply(t, db, Op{Kind: OpDelete, Path: "/d/f", OnlyDir: true}), CodeNotDir)
	nsWant(t, nsApply(t, db, Op{Kind: OpDelete, Path: "/d", OnlyDir: true, Recursive: true}), CodeNotEmpty)

	f := nsLookupAt(t, db, 0, "/d/f")
	nsWant(t, nsApply(t, db, Op{Kind: OpDelete, Path: "/d/f", NotDir: true, Orphan: true, Time: 3}), CodeOK)
	o := nsLookupAt(t, db, f.Ino, "/")
	if o.Nlink != 0 || o.Size != 4 || o.CTime != 3 {
		t.Fatalf("orphan: %+v", o)
	}
	// An orphan can still be written, but not linked back.
	r := nsApply(t, db, Op{Kind: OpUpdate, Dir: f.Ino, Path: "/", Gen: o.Gen, File: &Inode{Size: 2, Data: []byte("hi")}})
	nsWant(t, r, CodeOK)
	nsWant(t, nsApply(t, db, Op{Kind: OpLink, Dir: f.Ino, Path: "/", To: "/back"}), CodeNotFound)
	nsWant(t, nsApply(t, db, Op{Kind: OpDelete, Path: "/d", OnlyDir: true}), CodeOK)
	nsCheckRefs(t, db)
	nsWant(t, nsApply(t, db, Op{Kind: OpRelease, Dir: f.Ino, Path: "/"}), CodeOK)
	if err := nsLookupErr(db, f.Ino, "/"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("orphan after release: %v", err)
	}
	// A repeated release, and one of a file that has names, change nothing.
	nsWant(t, nsApply(t, db, Op{Kind: OpRelease, Dir: f.Ino, Path: "/"}), CodeOK)
	nsWant(t, nsApply(t, db, putOp("/g", 1)), CodeOK)
	g := nsLookupAt(t, db, 0, "/g")
	nsWant(t, nsApply(t, db, Op{Kind: OpRelease, Dir: g.Ino, Path: "/"}), CodeOK)
	nsLookupAt(t, db, 0, "/g")

	// rename over an open file orphans the replaced one.
	nsWant(t, nsApply(t, db, putOp("/h", 1)), CodeOK)
	nsWant(t, nsApply(t, db, Op{Kind: OpRename, Path: "/h", To: "/g", Orphan: true}), CodeOK)
	if o := nsLookupAt(t, db, g.Ino, "/"); o.Nlink != 0 {
		t.Fatalf("replaced file: %+v", o)
	}
	nsCheckRefs(t, db)
}

func TestUpdate(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, putOp("/f", 4)), CodeOK)
	f := nsLookupAt(t, db, 0, "/f")
	ref := ChunkRef{Hash: HashOf([]byte("abc")), Size: 3, Group: "g2"}
	file := &Inode{Size: 3, Chunks: []ChunkRef{ref}, Hash: ChunkListHash([]ChunkRef{ref}, nil)}
	r := nsApply(t, db, Op{Kind: OpUpdate, Dir: f.Ino, Path: "/", Gen: f.Gen, File: file, Time: 20})
	if r.Code != CodeOK || r.Inode.Gen != f.Gen+1 || r.Inode.Size != 3 || r.Inode.MTime != 20 || r.Inode.Chunks != nil {
		t.Fatalf("update: %+v %+v", r, r.Inode)
	}
	// A change computed from an older version is refused and changes nothing.
	nsWant(t, nsApply(t, db, Op{Kind: OpUpdate, Path: "/f", Gen: f.Gen, File: &Inode{Size: 9}}), CodeConflict)
	if now := nsLookupAt(t, db, 0, "/f"); now.Size != 3 || len(now.Chunks) != 1 {
		t.Fatalf("after a conflict: %+v", now)
	}
	nsCheckRefs(t, db)

	a := &SetAttr{Valid: SetMode | SetUid | SetGid | SetATime | SetMTime, Mode: 0o100600, Uid: 1, Gid: 2, ATime: 11, MTime: 12}
	r = nsApply(t, db, Op{Kind: OpUpdate, Path: "/f", Attr: a, Time: 30})
	if in := r.Inode; r.Code != CodeOK || in.Mode != 0o600 || in.Uid != 1 || in.Gid != 2 || in.ATime != 11 || in.MTime != 12 || in.CTime != 30 || in.Gen != f.Gen+1 {
		t.Fatalf("set attributes: %+v %+v", r, in)
	}
	// Only the named attributes change.
	r = nsApply(t, db, Op{Kind: OpUpdate, Path: "/f", Attr: &SetAttr{Valid: SetGid, Gid: 5}, Time: 31})
	if in := r.Inode; in.Mode != 0o600 || in.Uid != 1 || in.Gid != 5 {
		t.Fatalf("set gid only: %+v", in)
	}
	nsWant(t, nsApply(t, db, Op{Kind: OpUpdate, Path: "/", Attr: &SetAttr{Valid: SetMode, Mode: 0o700}}), CodeOK)
	nsWant(t, nsApply(t, db, Op{Kind: OpUpdate, Path: "/", File: &Inode{}}), CodeIsDir)
	nsWant(t, nsApply(t, db, Op{Kind: OpUpdate, Path: "/f"}), CodeInvalid)
	nsWant(t, nsApply(t, db, Op{Kind: OpUpdate, Path: "/nope", Attr: a}), CodeNotFound)
	nsWant(t, nsApply(t, db, Op{Kind: OpUpdate, Dir: 999, Path: "/", Attr: a}), CodeNotFound)
}

func TestRenameByInode(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, mkdirPOp("/a/b/c")), CodeOK)
	nsWant(t, nsApply(t, db, putOp("/x", 1)), CodeOK)
	a, c := nsLookupAt(t, db, 0, "/a"), nsLookupAt(t, db, 0, "/a/b/c")
	if c.Parent != nsLookupAt(t, db, 0, "/a/b").Ino || a.Parent != RootIno {
		t.Fatalf("parents: a %+v c %+v", a, c)
	}
	// A directory moved below itself, named from inodes so no path says so.
	nsWant(t, nsApply(t, db, Op{Kind: OpRename, Dir: RootIno, Path: "/a", ToDir: c.Ino, To: "/a2"}), CodeInvalid)
	nsWant(t, nsApply(t, db, Op{Kind: OpRename, Dir: RootIno, Path: "/a", ToDir: a.Ino, To: "/a2"}), CodeInvalid)
	nsWant(t, nsApply(t, db, Op{Kind: OpCopy, Dir: RootIno, Path: "/a", ToDir: c.Ino, To: "/a2"}), CodeInvalid)
	nsWant(t, nsApply(t, db, Op{Kind: OpRename, Path: "/x", To: "/a/b", NoReplace: true}), CodeExists)

	nsWant(t, nsApply(t, db, Op{Kind: OpRename, Dir: c.Ino, Path: "/", To: "/c"}), CodeInvalid)
	nsWant(t, nsApply(t, db, Op{Kind: OpRename, Dir: a.Ino, Path: "/b/c", ToDir: RootIno, To: "/c", Time: 4}), CodeOK)
	moved := nsLookupAt(t, db, 0, "/c")
	if moved.Ino != c.Ino || moved.Parent != RootIno || moved.CTime != 4 {
		t.Fatalf("moved directory: %+v", moved)
	}
	// Now a may move below c, which is no longer inside it.
	nsWant(t, nsApply(t, db, Op{Kind: OpRename, Path: "/a", ToDir: c.Ino, To: "/a"}), CodeOK)
	if got := nsLookupAt(t, db, 0, "/c/a/b"); got.Parent != a.Ino {
		t.Fatalf("after the second move: %+v", got)
	}
	nsCheckRefs(t, db)
}

// A namespace written before directories recorded their parents gets them
// when it is opened.
func TestDirParentsFilledAtOpen(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, mkdirPOp("/a/b")), CodeOK)
	b := nsLookupAt(t, db, 0, "/a/b")
	err := db.Update(func(tx *bbolt.Tx) error {
		n, err := openNamespace(tx)
		if err != nil {
			return err
		}
		for _, p := range []string{"/a", "/a/b"} {
			in, err := Lookup(tx, p)
			if err != nil {
				return err
			}
			in.Parent = 0
			if err := n.save(in); err != nil {
				return err
			}
		}
		return n.meta.Delete(keyDirParents)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(InitNamespace); err != nil {
		t.Fatal(err)
	}
	if got := nsLookupAt(t, db, b.Ino, "/"); got.Parent != nsLookupAt(t, db, 0, "/a").Ino {
		t.Fatalf("parent of /a/b after open: %d", got.Parent)
	}
}

package store

import (
	"errors"
	"testing"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// nsLookupAt returns the inode at p from dir, failing the test if absent.
func nsLookupAt(t *testing.T, db *bbolt.DB, dir uint64, p string) meta.Inode {
	t.Helper()
	var in meta.Inode
	err := db.View(func(tx *bbolt.Tx) error {
		var err error
		in, err = lookupAt(tx, dir, p, nil, 0)
		return err
	})
	if err != nil {
		t.Fatalf("lookup %s from %d: %v", p, dir, err)
	}
	return in
}

func nsLookupErr(db *bbolt.DB, dir uint64, p string) error {
	return db.View(func(tx *bbolt.Tx) error {
		_, err := lookupAt(tx, dir, p, nil, 0)
		return err
	})
}

func nsWant(t *testing.T, r meta.Result, code meta.Code) {
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
	nsWant(t, nsApply(t, db, mkdirOp("/d")), meta.CodeOK)
	d := nsLookupAt(t, db, 0, "/d")

	r := nsApply(t, db, meta.Op{Kind: meta.OpCreate, Dir: d.Ino, Path: "/f", Mode: 0o4640, Uid: 7, Gid: 8, Time: 5, Excl: true})
	nsWant(t, r, meta.CodeOK)
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
	r = nsApply(t, db, meta.Op{Kind: meta.OpCreate, Dir: d.Ino, Path: "/f", Mode: 0o600})
	if r.Code != meta.CodeOK || r.Created || r.Inode.Ino != f.Ino || r.Inode.Mode != 0o4640 {
		t.Fatalf("create of an existing file: %+v", r)
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Dir: d.Ino, Path: "/f", Excl: true}), meta.CodeExists)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/d", Mode: 0o600}), meta.CodeIsDir)
	// Unlike put, create makes no parents.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/missing/f"}), meta.CodeNotFound)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/d/f/g"}), meta.CodeNotDir)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/"}), meta.CodeInvalid)

	r = nsApply(t, db, meta.Op{Kind: meta.OpSymlink, Dir: d.Ino, Path: "/l", Target: "../x/y", Uid: 3, Time: 6})
	if r.Code != meta.CodeOK || r.Inode.Type != meta.TypeSymlink || r.Inode.Target != "../x/y" || r.Inode.Size != 6 || r.Inode.Uid != 3 {
		t.Fatalf("symlink: %+v %+v", r, r.Inode)
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpSymlink, Path: "/d/l", Target: "z"}), meta.CodeExists)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpSymlink, Path: "/d/m", Target: ""}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpSymlink, Path: "/d/m", Target: "a\x00b"}), meta.CodeInvalid)
	// The namespace never follows a symlink: a path through one is ENOTDIR.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/d/l/f"}), meta.CodeNotDir)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/d/l", Mode: 0o600}), meta.CodeExists)

	// A put over a symlink replaces it with a file of a new inode.
	l := nsLookupAt(t, db, 0, "/d/l")
	nsWant(t, nsApply(t, db, putOp("/d/l", 3)), meta.CodeOK)
	if p := nsLookupAt(t, db, 0, "/d/l"); p.Type != meta.TypeFile || p.Ino == l.Ino || p.Size != 3 {
		t.Fatalf("put over a symlink: %+v", p)
	}
	var entries []meta.DirEntry
	db.View(func(tx *bbolt.Tx) error { entries, _ = readDirAt(tx, d.Ino, "/", nil); return nil })
	if len(entries) != 2 || entries[0].Name != "f" || entries[0].Ino != f.Ino || entries[0].Uid != 7 {
		t.Fatalf("listing by inode: %+v", entries)
	}
	nsCheckRefs(t, db)
}

func TestHardLinks(t *testing.T) {
	db := nsOpenDB(t)
	ref := meta.ChunkRef{Hash: meta.HashOf([]byte("x")), Size: 1, Group: "g1"}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpPut, Path: "/a/f", File: &meta.Inode{Size: 1, Chunks: []meta.ChunkRef{ref}}}), meta.CodeOK)
	nsWant(t, nsApply(t, db, mkdirOp("/b")), meta.CodeOK)
	f := nsLookupAt(t, db, 0, "/a/f")
	b := nsLookupAt(t, db, 0, "/b")

	r := nsApply(t, db, meta.Op{Kind: meta.OpLink, Dir: f.Ino, Path: "/", ToDir: b.Ino, To: "/g", Time: 9})
	if r.Code != meta.CodeOK || r.Inode.Nlink != 2 || r.Inode.Ino != f.Ino || r.Inode.CTime != 9 {
		t.Fatalf("link: %+v %+v", r, r.Inode)
	}
	if g := nsLookupAt(t, db, 0, "/b/g"); g.Ino != f.Ino || g.Nlink != 2 {
		t.Fatalf("the new name: %+v", g)
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpLink, Path: "/a/f", To: "/b/g"}), meta.CodeExists)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpLink, Path: "/b", To: "/c"}), meta.CodePerm)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpLink, Path: "/a/f", To: "/nope/g"}), meta.CodeNotFound)
	nsCheckRefs(t, db)

	// link(2) links a symlink itself, which then lives until its last name goes.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpSymlink, Path: "/s", Target: "a/f"}), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpLink, Path: "/s", To: "/b/s2"}), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/s", NotDir: true}), meta.CodeOK)
	if s2 := nsLookupAt(t, db, 0, "/b/s2"); s2.Type != meta.TypeSymlink || s2.Nlink != 1 || s2.Target != "a/f" {
		t.Fatalf("the symlink's other name: %+v", s2)
	}
	nsCheckRefs(t, db)

	// Content changed through one name is the content of the other.
	nsWant(t, nsApply(t, db, putOp("/b/g", 5)), meta.CodeOK)
	if a := nsLookupAt(t, db, 0, "/a/f"); a.Size != 5 {
		t.Fatalf("after a put through the other link: %+v", a)
	}
	// Renaming one link onto the other does nothing (rename(2)).
	nsWant(t, nsApply(t, db, renameOp("/a/f", "/b/g")), meta.CodeOK)
	nsLookupAt(t, db, 0, "/a/f")

	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/a/f", NotDir: true}), meta.CodeOK)
	if g := nsLookupAt(t, db, 0, "/b/g"); g.Nlink != 1 {
		t.Fatalf("after unlinking one name: %+v", g)
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/b/g"}), meta.CodeOK)
	if err := nsLookupErr(db, f.Ino, "/"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("the inode after its last unlink: %v", err)
	}
	nsCheckRefs(t, db)
}

func TestUnlinkRmdirOrphans(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, putOp("/d/f", 4)), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/d", NotDir: true}), meta.CodeIsDir)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/d/f", OnlyDir: true}), meta.CodeNotDir)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/d", OnlyDir: true, Recursive: true}), meta.CodeNotEmpty)

	f := nsLookupAt(t, db, 0, "/d/f")
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/d/f", NotDir: true, Orphan: true, Time: 3}), meta.CodeOK)
	o := nsLookupAt(t, db, f.Ino, "/")
	if o.Nlink != 0 || o.Size != 4 || o.CTime != 3 {
		t.Fatalf("orphan: %+v", o)
	}
	// An orphan can still be written, but not linked back.
	r := nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Dir: f.Ino, Path: "/", Gen: o.Gen, File: &meta.Inode{Size: 2, Data: []byte("hi")}})
	nsWant(t, r, meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpLink, Dir: f.Ino, Path: "/", To: "/back"}), meta.CodeNotFound)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/d", OnlyDir: true}), meta.CodeOK)
	nsCheckRefs(t, db)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRelease, Dir: f.Ino, Path: "/"}), meta.CodeOK)
	if err := nsLookupErr(db, f.Ino, "/"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("orphan after release: %v", err)
	}
	// A repeated release, and one of a file that has names, change nothing.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRelease, Dir: f.Ino, Path: "/"}), meta.CodeOK)
	nsWant(t, nsApply(t, db, putOp("/g", 1)), meta.CodeOK)
	g := nsLookupAt(t, db, 0, "/g")
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRelease, Dir: g.Ino, Path: "/"}), meta.CodeOK)
	nsLookupAt(t, db, 0, "/g")

	// rename over an open file orphans the replaced one.
	nsWant(t, nsApply(t, db, putOp("/h", 1)), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRename, Path: "/h", To: "/g", Orphan: true}), meta.CodeOK)
	if o := nsLookupAt(t, db, g.Ino, "/"); o.Nlink != 0 {
		t.Fatalf("replaced file: %+v", o)
	}
	nsCheckRefs(t, db)
}

func TestUpdate(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, putOp("/f", 4)), meta.CodeOK)
	f := nsLookupAt(t, db, 0, "/f")
	ref := meta.ChunkRef{Hash: meta.HashOf([]byte("abc")), Size: 3, Group: "g2"}
	file := &meta.Inode{Size: 3, Chunks: []meta.ChunkRef{ref}, Hash: meta.ChunkListHash([]meta.ChunkRef{ref}, nil)}
	r := nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Dir: f.Ino, Path: "/", Gen: f.Gen, File: file, Time: 20})
	if r.Code != meta.CodeOK || r.Inode.Gen != f.Gen+1 || r.Inode.Size != 3 || r.Inode.MTime != 20 || r.Inode.Chunks != nil {
		t.Fatalf("update: %+v %+v", r, r.Inode)
	}
	// A change computed from an older version is refused and changes nothing.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/f", Gen: f.Gen, File: &meta.Inode{Size: 9}}), meta.CodeConflict)
	if now := nsLookupAt(t, db, 0, "/f"); now.Size != 3 || len(now.Chunks) != 1 {
		t.Fatalf("after a conflict: %+v", now)
	}
	nsCheckRefs(t, db)

	a := &meta.SetAttr{Valid: meta.SetMode | meta.SetUid | meta.SetGid | meta.SetATime | meta.SetMTime, Mode: 0o100600, Uid: 1, Gid: 2, ATime: 11, MTime: 12}
	r = nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/f", Attr: a, Time: 30})
	if in := r.Inode; r.Code != meta.CodeOK || in.Mode != 0o600 || in.Uid != 1 || in.Gid != 2 || in.ATime != 11 || in.MTime != 12 || in.CTime != 30 || in.Gen != f.Gen+1 {
		t.Fatalf("set attributes: %+v %+v", r, in)
	}
	// Only the named attributes change.
	r = nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/f", Attr: &meta.SetAttr{Valid: meta.SetGid, Gid: 5}, Time: 31})
	if in := r.Inode; in.Mode != 0o600 || in.Uid != 1 || in.Gid != 5 {
		t.Fatalf("set gid only: %+v", in)
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o700}}), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/", File: &meta.Inode{}}), meta.CodeIsDir)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/f"}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/nope", Attr: a}), meta.CodeNotFound)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Dir: 999, Path: "/", Attr: a}), meta.CodeNotFound)
}

func TestRenameByInode(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, mkdirPOp("/a/b/c")), meta.CodeOK)
	nsWant(t, nsApply(t, db, putOp("/x", 1)), meta.CodeOK)
	a, c := nsLookupAt(t, db, 0, "/a"), nsLookupAt(t, db, 0, "/a/b/c")
	if c.Parent != nsLookupAt(t, db, 0, "/a/b").Ino || a.Parent != RootIno {
		t.Fatalf("parents: a %+v c %+v", a, c)
	}
	// A directory moved below itself, named from inodes so no path says so.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRename, Dir: RootIno, Path: "/a", ToDir: c.Ino, To: "/a2"}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRename, Dir: RootIno, Path: "/a", ToDir: a.Ino, To: "/a2"}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCopy, Dir: RootIno, Path: "/a", ToDir: c.Ino, To: "/a2"}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRename, Path: "/x", To: "/a/b", NoReplace: true}), meta.CodeExists)

	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRename, Dir: c.Ino, Path: "/", To: "/c"}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRename, Dir: a.Ino, Path: "/b/c", ToDir: RootIno, To: "/c", Time: 4}), meta.CodeOK)
	moved := nsLookupAt(t, db, 0, "/c")
	if moved.Ino != c.Ino || moved.Parent != RootIno || moved.CTime != 4 {
		t.Fatalf("moved directory: %+v", moved)
	}
	// Now a may move below c, which is no longer inside it.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpRename, Path: "/a", ToDir: c.Ino, To: "/a"}), meta.CodeOK)
	if got := nsLookupAt(t, db, 0, "/c/a/b"); got.Parent != a.Ino {
		t.Fatalf("after the second move: %+v", got)
	}
	nsCheckRefs(t, db)
}

// A namespace written before directories recorded their parents gets them
// when it is opened.
func TestDirParentsFilledAtOpen(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, mkdirPOp("/a/b")), meta.CodeOK)
	b := nsLookupAt(t, db, 0, "/a/b")
	err := db.Update(func(tx *bbolt.Tx) error {
		n, err := openNamespace(tx)
		if err != nil {
			return err
		}
		for _, p := range []string{"/a", "/a/b"} {
			in, err := lookupPath(tx, p)
			if err != nil {
				return err
			}
			in.Parent = 0
			if err := n.save(in); err != nil {
				return err
			}
		}
		return n.meta.del(keyDirParents)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(initNamespace); err != nil {
		t.Fatal(err)
	}
	if got := nsLookupAt(t, db, b.Ino, "/"); got.Parent != nsLookupAt(t, db, 0, "/a").Ino {
		t.Fatalf("parent of /a/b after open: %d", got.Parent)
	}
}

// TestPublicFlag: a directory's owner makes it public-read and private
// again; nobody else may, and a file cannot be.
func TestPublicFlag(t *testing.T) {
	db := nsOpenDB(t)
	alice, bob := &meta.Cred{Uid: 1000, Gid: 1000}, &meta.Cred{Uid: 1001, Gid: 1001}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMkdir, Path: "/b", Mode: 0o700, Uid: 1000, Gid: 1000}), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMkdir, Path: "/b/d", Mode: 0o777, Cred: alice}), meta.CodeOK)
	nsWant(t, nsApply(t, db, putOp("/b/f", 4)), meta.CodeOK)
	public := func(on bool) *meta.SetAttr { return &meta.SetAttr{Valid: meta.SetPublic, Public: on} }
	isPublic := func(p string) bool {
		in := nsLookupAt(t, db, 0, p)
		return in.Object != nil && in.Object.Public
	}

	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/b", Attr: public(true), Cred: bob}), meta.CodePerm)
	if isPublic("/b") {
		t.Fatal("another user made the bucket public")
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/b", Attr: public(true), Cred: alice}), meta.CodeOK)
	if !isPublic("/b") || isPublic("/b/d") {
		t.Fatalf("after the owner made /b public: /b %v, /b/d %v", isPublic("/b"), isPublic("/b/d"))
	}
	if in := nsLookupAt(t, db, 0, "/b"); in.Mode != 0o700 {
		t.Fatalf("the public flag changed the mode to %o", in.Mode)
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/b/f", Attr: public(true)}), meta.CodeNotDir)
	if isPublic("/b/f") {
		t.Fatal("a file was made public")
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/b", Attr: public(false), Cred: bob}), meta.CodePerm)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/b", Attr: public(false), Cred: alice}), meta.CodeOK)
	if isPublic("/b") {
		t.Fatal("still public after the owner made it private")
	}
	nsCheckRefs(t, db)
}

func TestMknod(t *testing.T) {
	db := nsOpenDB(t)
	pub := meta.Op{Kind: meta.OpMkdir, Path: "/pub", Mode: 0o777}
	nsWant(t, nsApply(t, db, pub), meta.CodeOK)

	r := nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/fifo", Node: meta.TypeFIFO, Mode: 0o640, Uid: 7, Gid: 8, Time: 5})
	if r.Code != meta.CodeOK || !r.Created || r.Inode.Type != meta.TypeFIFO || r.Inode.Mode != 0o640 || r.Inode.Uid != 7 || r.Inode.Rdev != 0 || r.Inode.Nlink != 1 {
		t.Fatalf("mkfifo: %+v %+v", r, r.Inode)
	}
	r = nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/null", Node: meta.TypeCharDev, Rdev: 0x103, Mode: 0o666})
	if r.Code != meta.CodeOK || r.Inode.Type != meta.TypeCharDev || r.Inode.Rdev != 0x103 {
		t.Fatalf("mknod c 1 3: %+v %+v", r, r.Inode)
	}
	if got := nsLookupAt(t, db, 0, "/pub/null"); got.Type != meta.TypeCharDev || got.Rdev != 0x103 || got.Mode != 0o666 {
		t.Fatalf("stored device node: %+v", got)
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/fifo", Node: meta.TypeSocket}), meta.CodeExists)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/x", Node: meta.TypeFile}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/x", Node: meta.TypeFIFO, Rdev: 1}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/x", Node: 99}), meta.CodeInvalid)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/missing/x", Node: meta.TypeFIFO}), meta.CodeNotFound)

	// Anyone may make a FIFO or a socket where they may write; only root
	// makes device nodes, or copies them.
	sock := nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/sock", Node: meta.TypeSocket, Mode: 0o755, Cred: alice})
	if sock.Code != meta.CodeOK || sock.Inode.Uid != alice.Uid || sock.Inode.Type != meta.TypeSocket {
		t.Fatalf("alice's socket: %+v %+v", sock, sock.Inode)
	}
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/dev", Node: meta.TypeBlockDev, Rdev: 0x800, Cred: alice}), meta.CodePerm)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/pub/dev", Node: meta.TypeBlockDev, Rdev: 0x800, Cred: admin}), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCopy, Path: "/pub/null", To: "/pub/null2", Cred: alice}), meta.CodePerm)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCopy, Path: "/pub", To: "/pub2", Cred: alice}), meta.CodePerm)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMknod, Path: "/x", Node: meta.TypeFIFO, Cred: alice}), meta.CodeAccess)

	// They are renamed, linked, copied and removed like files.
	nsWant(t, nsApply(t, db, copyOp("/pub/null", "/pub/null2")), meta.CodeOK)
	if got := nsLookupAt(t, db, 0, "/pub/null2"); got.Type != meta.TypeCharDev || got.Rdev != 0x103 {
		t.Fatalf("root's copy of a device node: %+v", got)
	}
	nsWant(t, nsApply(t, db, renameOp("/pub/fifo", "/pub/fifo2")), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpLink, Path: "/pub/fifo2", To: "/pub/fifo3"}), meta.CodeOK)
	if got := nsLookupAt(t, db, 0, "/pub/fifo3"); got.Type != meta.TypeFIFO || got.Nlink != 2 {
		t.Fatalf("linked FIFO: %+v", got)
	}
	nsWant(t, nsApply(t, db, putOp("/pub/sock", 3)), meta.CodeOK)
	if got := nsLookupAt(t, db, 0, "/pub/sock"); got.Type != meta.TypeFile || got.Ino == sock.Inode.Ino {
		t.Fatalf("a put over a socket: %+v", got)
	}
	for _, p := range []string{"/pub/fifo2", "/pub/fifo3", "/pub/null", "/pub/null2", "/pub/dev"} {
		nsWant(t, nsApply(t, db, deleteOp(p)), meta.CodeOK)
	}
	nsCheckRefs(t, db)
}

// A mode given is the mode, 0000 included; without one, the defaults.
func TestModeZeroGiven(t *testing.T) {
	db := nsOpenDB(t)
	mode := func(p string) uint32 { t.Helper(); return nsLookupAt(t, db, 0, p).Mode }
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMkdir, Path: "/d0", ModeGiven: true}), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMkdir, Path: "/d"}), meta.CodeOK)
	put0 := putOp("/f0", 1)
	put0.ModeGiven = true
	nsWant(t, nsApply(t, db, put0), meta.CodeOK)
	nsWant(t, nsApply(t, db, putOp("/f", 1)), meta.CodeOK)
	if got := [4]uint32{mode("/d0"), mode("/d"), mode("/f0"), mode("/f")}; got != [4]uint32{0, 0o755, 0, 0o644} {
		t.Fatalf("modes %04o, want 0000 0755 0000 0644", got)
	}
	// Over an existing file: mode 0000 given is set, none keeps it.
	nsWant(t, nsApply(t, db, putOp("/f0", 2)), meta.CodeOK)
	put := putOp("/f", 2)
	put.ModeGiven = true
	nsWant(t, nsApply(t, db, put), meta.CodeOK)
	if got := [2]uint32{mode("/f0"), mode("/f")}; got != [2]uint32{0, 0} {
		t.Fatalf("modes after puts over the files %04o, want 0000 (kept) and 0000 (given)", got)
	}
}

// TestResultNamesChangedDirs: a change to a directory's entries answers
// with the directory as it is after it (its times and links), both
// directories for a move between two, none when nothing changed, and a
// retry answered from the first try's record with none.
func TestResultNamesChangedDirs(t *testing.T) {
	db := nsOpenDB(t)
	nsWant(t, nsApply(t, db, mkdirOp("/a")), meta.CodeOK)
	nsWant(t, nsApply(t, db, mkdirOp("/b")), meta.CodeOK)
	a, b := nsLookupAt(t, db, 0, "/a"), nsLookupAt(t, db, 0, "/b")
	dirs := func(r meta.Result) map[uint64]meta.Inode {
		t.Helper()
		nsWant(t, r, meta.CodeOK)
		m := map[uint64]meta.Inode{}
		for _, d := range r.Dirs {
			m[d.Ino] = d
		}
		return m
	}
	check := func(what string, got map[uint64]meta.Inode, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: the result names %d directories, want %d (%v)", what, len(got), len(want), want)
		}
		for _, p := range want {
			stored := nsLookupAt(t, db, 0, p)
			if d, ok := got[stored.Ino]; !ok || d.MTime != stored.MTime || d.CTime != stored.CTime || d.Nlink != stored.Nlink || d.Mode != stored.Mode {
				t.Fatalf("%s: the result has %s as %+v, the namespace %+v", what, p, d, stored)
			}
		}
	}
	got := dirs(nsApply(t, db, meta.Op{Kind: meta.OpCreate, Dir: a.Ino, Path: "/f", Mode: 0o644, Time: 10, Excl: true, WantDirs: true}))
	check("create", got, "/a")
	if got[a.Ino].MTime != 10 {
		t.Fatalf("create: the directory's mtime is %d, want the op's 10", got[a.Ino].MTime)
	}
	got = dirs(nsApply(t, db, meta.Op{Kind: meta.OpMkdir, Dir: a.Ino, Path: "/sub", Time: 11, WantDirs: true}))
	check("mkdir", got, "/a")
	if got[a.Ino].Nlink != 3 {
		t.Fatalf("mkdir: the directory has %d links, want 3", got[a.Ino].Nlink)
	}
	check("rename between directories", dirs(nsApply(t, db, meta.Op{Kind: meta.OpRename, Dir: a.Ino, Path: "/f", ToDir: b.Ino, To: "/g", Time: 12, WantDirs: true})), "/a", "/b")
	check("unlink", dirs(nsApply(t, db, meta.Op{Kind: meta.OpDelete, Dir: b.Ino, Path: "/g", NotDir: true, Time: 13, WantDirs: true})), "/b")
	check("rmdir", dirs(nsApply(t, db, meta.Op{Kind: meta.OpDelete, Dir: a.Ino, Path: "/sub", OnlyDir: true, Time: 14, WantDirs: true})), "/a")

	// Not asked for: a create as the API makes it.
	if r := nsApply(t, db, meta.Op{Kind: meta.OpCreate, Dir: a.Ino, Path: "/h", Time: 15}); !r.Created || len(r.Dirs) != 0 {
		t.Fatalf("a create that did not ask for its directories: %+v, want none", r)
	}
	// Nothing changed: an open of a file already there, a failure.
	if r := nsApply(t, db, meta.Op{Kind: meta.OpCreate, Dir: a.Ino, Path: "/h", Time: 16, WantDirs: true}); r.Created || len(r.Dirs) != 0 {
		t.Fatalf("a create of a file already there: %+v, want no directory", r)
	}
	if r := nsApply(t, db, meta.Op{Kind: meta.OpMkdir, Dir: a.Ino, Path: "/h", Time: 17, WantDirs: true}); r.Code != meta.CodeExists || len(r.Dirs) != 0 {
		t.Fatalf("a failed mkdir: %+v, want CodeExists and no directory", r)
	}

	// A retry: the first try's record keeps no directories.
	d := crOpen(t, t.TempDir())
	op := meta.Op{Kind: meta.OpMkdir, Path: "/x", Time: 1, ReqID: "req-1", ReqSum: []byte("mkdir /x"), WantDirs: true}
	if r := applyAt(t, d, op, 1); len(r.Dirs) != 1 || r.Dirs[0].Ino != RootIno {
		t.Fatalf("first try: %+v, want the root directory", r.Dirs)
	}
	if r := applyAt(t, d, op, 2); !r.Created || len(r.Dirs) != 0 {
		t.Fatalf("retry: %+v, want the first try's result without directories", r)
	}
}

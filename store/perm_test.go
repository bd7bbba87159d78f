package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// The callers of the permission tests: alice owns most of the tree, carol
// is in alice's group, bob is in none of it, admin is root.
var (
	alice   = &meta.Cred{Uid: 1000, Gid: 1000}
	bob     = &meta.Cred{Uid: 1001, Gid: 1001}
	carol   = &meta.Cred{Uid: 1002, Gid: 1002, Groups: []uint32{7, 1000}}
	admin   = &meta.Cred{Uid: 900, Gid: 900, Root: true}
	hostBob = &meta.Cred{Uid: 1001, Gid: 1001, Host: true}
)

func TestClassBitsAndPermits(t *testing.T) {
	f := func(mode, uid, gid uint32) meta.Inode {
		return meta.Inode{Type: meta.TypeFile, Mode: mode, Uid: uid, Gid: gid}
	}
	d := func(mode, uid, gid uint32) meta.Inode {
		return meta.Inode{Type: meta.TypeDir, Mode: mode, Uid: uid, Gid: gid}
	}
	for _, c := range []struct {
		name  string
		cred  *meta.Cred
		in    meta.Inode
		class uint32
		want  uint32
		ok    bool
	}{
		{"owner bits", alice, f(0o640, 1000, 5), 6, meta.MayRead | meta.MayWrite, true},
		{"owner lacks x", alice, f(0o640, 1000, 5), 6, meta.MayExec, false},
		// Linux checks the owner's bits only, even when others have more.
		{"owner denied where others may", alice, f(0o077, 1000, 5), 0, meta.MayRead, false},
		{"primary group", bob, f(0o750, 1000, 1001), 5, meta.MayRead | meta.MayExec, true},
		{"supplementary group", carol, f(0o750, 1000, 1000), 5, meta.MayWrite, false},
		{"group denied where others may", carol, f(0o607, 1000, 7), 0, meta.MayRead, false},
		{"others", bob, f(0o604, 1000, 1000), 4, meta.MayRead, true},
		{"others no write", bob, f(0o664, 1000, 1000), 4, meta.MayWrite, false},
		{"nothing wanted", bob, f(0, 1000, 1000), 0, 0, true},
		{"dir search", bob, d(0o711, 1000, 1000), 1, meta.MayExec, true},
		{"dir no read", bob, d(0o711, 1000, 1000), 1, meta.MayRead, false},
		// Root reads and writes anything, and executes a file only when
		// some execute bit is set (CAP_DAC_OVERRIDE).
		{"root rw", admin, f(0, 1000, 1000), 0, meta.MayRead | meta.MayWrite, true},
		{"root exec no bit", admin, f(0o666, 1000, 1000), 0, meta.MayExec, false},
		{"root exec other bit", admin, f(0o001, 1000, 1000), 0, meta.MayExec, true},
		{"root searches any dir", admin, d(0, 1000, 1000), 0, meta.MayRead | meta.MayWrite | meta.MayExec, true},
		{"cluster", nil, f(0, 1000, 1000), 0, meta.MayRead | meta.MayWrite | meta.MayExec, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.cred != nil && !c.cred.Root {
				if got := classBits(c.cred, c.in); got != c.class {
					t.Errorf("class bits %o, want %o", got, c.class)
				}
			}
			if got := permits(c.cred, c.in, c.want); got != c.ok {
				t.Errorf("permits %o: %v, want %v", c.want, got, c.ok)
			}
		})
	}
	// The owner override of trusted mount hosts covers file content only.
	ro := f(0o444, 1001, 1001)
	if !mayContent(hostBob, ro, meta.MayWrite) || mayContent(bob, ro, meta.MayWrite) || mayContent(hostBob, ro, meta.MayExec) ||
		mayContent(hostBob, f(0o444, 1000, 1000), meta.MayWrite) || mayContent(hostBob, d(0o555, 1001, 1001), meta.MayWrite) {
		t.Error("owner override of a mount host: wrong")
	}
}

func TestPermHelpers(t *testing.T) {
	tmp := meta.Inode{Type: meta.TypeDir, Mode: 0o1777}
	mine, theirs := meta.Inode{Type: meta.TypeFile, Uid: 1001}, meta.Inode{Type: meta.TypeFile, Uid: 1000}
	for _, c := range []struct {
		name      string
		got, want meta.Code
	}{
		{"sticky own file", deleteCode(bob, tmp, mine), meta.CodeOK},
		{"sticky other's file", deleteCode(bob, tmp, theirs), meta.CodePerm},
		{"sticky dir owner", deleteCode(bob, meta.Inode{Type: meta.TypeDir, Mode: 0o1777, Uid: 1001}, theirs), meta.CodeOK},
		{"sticky root", deleteCode(admin, tmp, theirs), meta.CodeOK},
		{"no write on dir", deleteCode(bob, meta.Inode{Type: meta.TypeDir, Mode: 0o1755}, mine), meta.CodeAccess},
		{"not sticky", deleteCode(bob, meta.Inode{Type: meta.TypeDir, Mode: 0o777}, theirs), meta.CodeOK},
		{"create needs search", createCode(bob, meta.Inode{Type: meta.TypeDir, Mode: 0o776}), meta.CodeAccess},
		{"create", createCode(bob, meta.Inode{Type: meta.TypeDir, Mode: 0o773}), meta.CodeOK},
		{"link own", linkCode(bob, meta.Inode{Type: meta.TypeFile, Uid: 1001}), meta.CodeOK},
		{"link rw", linkCode(bob, meta.Inode{Type: meta.TypeFile, Mode: 0o666}), meta.CodeOK},
		{"link r only", linkCode(bob, meta.Inode{Type: meta.TypeFile, Mode: 0o644}), meta.CodePerm},
		{"link setuid rw", linkCode(bob, meta.Inode{Type: meta.TypeFile, Mode: 0o4666}), meta.CodePerm},
		{"link setgid exec rw", linkCode(bob, meta.Inode{Type: meta.TypeFile, Mode: 0o2676}), meta.CodePerm},
		{"link setgid no exec rw", linkCode(bob, meta.Inode{Type: meta.TypeFile, Mode: 0o2666}), meta.CodeOK},
		{"link other's symlink", linkCode(bob, meta.Inode{Type: meta.TypeSymlink, Mode: 0o777}), meta.CodePerm},
		{"link root", linkCode(admin, meta.Inode{Type: meta.TypeFile, Mode: 0o4000}), meta.CodeOK},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		cred       *meta.Cred
		mode, want uint32
	}{
		{alice, 0o4755, 0o755}, {alice, 0o2755, 0o755}, {alice, 0o6711, 0o711}, {alice, 0o1777, 0o1777},
		// Setgid without group execute stays for the group's members and
		// root, and goes for anyone else (setattr_should_drop_sgid).
		{alice, 0o2745, 0o2745}, {carol, 0o2745, 0o2745}, {admin, 0o2745, 0o2745},
		{bob, 0o2745, 0o745}, {bob, 0o6766, 0o766}, {admin, 0o6755, 0o755},
	} {
		if got := killPrivs(c.cred, meta.Inode{Type: meta.TypeFile, Mode: c.mode, Uid: 1000, Gid: 1000}); got != c.want {
			t.Errorf("killPrivs(%+v, %o) = %o, want %o", c.cred, c.mode, got, c.want)
		}
	}
}

// permTree is the namespace the permission cases start from, made by the
// cluster (no Cred) with explicit owners.
func permTree() []meta.Op {
	dir := func(p string, mode, uid, gid uint32) meta.Op {
		return meta.Op{Kind: meta.OpMkdir, Path: p, Mode: mode, Uid: uid, Gid: gid}
	}
	file := func(p string, mode, uid, gid uint32) meta.Op {
		return meta.Op{Kind: meta.OpCreate, Path: p, Mode: mode, Uid: uid, Gid: gid}
	}
	return []meta.Op{
		dir("/home", 0o755, 0, 0), dir("/home/alice", 0o700, 1000, 1000),
		file("/home/alice/f", 0o644, 1000, 1000), dir("/home/alice/sub", 0o755, 1000, 1000),
		dir("/pub", 0o755, 1000, 1000), file("/pub/f", 0o644, 1000, 1000), file("/pub/g", 0o664, 1000, 1000),
		file("/pub/ro", 0o444, 1001, 1001), file("/pub/suid", 0o6755, 1000, 1000),
		dir("/pub/sub", 0o755, 1000, 1000), file("/pub/sub/h", 0o644, 1000, 1000),
		dir("/tmp", 0o1777, 0, 0), file("/tmp/a", 0o644, 1000, 1000), file("/tmp/b", 0o666, 1001, 1001),
		{Kind: meta.OpSymlink, Path: "/tmp/l", Target: "a", Uid: 1000, Gid: 1000},
		dir("/shared", 0o775, 1000, 1000), file("/shared/c", 0o644, 1002, 1002),
		dir("/shared/d", 0o755, 1000, 1000), dir("/shared/e", 0o755, 1002, 1002),
		dir("/sgid", 0o2777, 1000, 1000), dir("/nox", 0o744, 1000, 1000), file("/nox/f", 0o644, 1000, 1000),
		dir("/secret", 0o755, 1000, 1000), file("/secret/s", 0o600, 1000, 1000),
	}
}

type permCase struct {
	name  string
	setup []meta.Op // applied by the cluster after permTree
	// dir and toDir, when set, name op.Dir and op.ToDir by a path,
	// resolved before setup runs (so they may name a future orphan).
	dir, toDir string
	op         meta.Op
	code       meta.Code
	check      func(t *testing.T, tx *bbolt.Tx)
}

// runPermCases applies each case's op at time 100 to a fresh permTree. A
// failed op must leave every bucket byte-identical, and every op the
// invariants of the tree, chunk counts and indexes.
func runPermCases(t *testing.T, cases []permCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := nsOpenDB(t)
			for i, op := range permTree() {
				op.Time = int64(i + 1)
				nsWant(t, nsApply(t, db, op), meta.CodeOK)
			}
			op := c.op
			if c.dir != "" {
				op.Dir = nsLookupAt(t, db, 0, c.dir).Ino
			}
			if c.toDir != "" {
				op.ToDir = nsLookupAt(t, db, 0, c.toDir).Ino
			}
			for i, s := range c.setup {
				s.Time = int64(50 + i)
				if r := nsApply(t, db, s); r.Code != meta.CodeOK {
					t.Fatalf("setup %+v: %s", s, r.Code)
				}
			}
			var before string
			db.View(func(tx *bbolt.Tx) error { before = nsDigest(tx); return nil })
			op.Time = 100
			if r := nsApply(t, db, op); r.Code != c.code {
				t.Fatalf("got %q, want %q", r.Code, c.code)
			}
			db.View(func(tx *bbolt.Tx) error {
				if c.code != meta.CodeOK && nsDigest(tx) != before {
					t.Errorf("failed op changed the namespace")
				}
				for _, check := range []func(*bbolt.Tx) error{nsCheckTree, nsCheckChunkRefs, nsCheckIndexes} {
					if err := check(tx); err != nil {
						t.Error(err)
					}
				}
				if c.check != nil {
					c.check(t, tx)
				}
				return nil
			})
		})
	}
}

// as returns op acting for c.
func as(c *meta.Cred, op meta.Op) meta.Op { op.Cred = c; return op }

// owned checks the owner and mode of the inode at p.
func owned(p string, uid, gid, mode uint32) func(*testing.T, *bbolt.Tx) {
	return func(t *testing.T, tx *bbolt.Tx) {
		t.Helper()
		if in := nsMust(t, tx, p); in.Uid != uid || in.Gid != gid || in.Mode != mode {
			t.Errorf("%s: %d:%d mode %o, want %d:%d mode %o", p, in.Uid, in.Gid, in.Mode, uid, gid, mode)
		}
	}
}

func both(fs ...func(*testing.T, *bbolt.Tx)) func(*testing.T, *bbolt.Tx) {
	return func(t *testing.T, tx *bbolt.Tx) {
		t.Helper()
		for _, f := range fs {
			f(t, tx)
		}
	}
}

func createAs(c *meta.Cred, p string, mode uint32) meta.Op {
	return meta.Op{Kind: meta.OpCreate, Path: p, Mode: mode, Cred: c, Uid: 5, Gid: 6}
}

var permCreateCases = []permCase{
	{name: "create/no write on parent", op: createAs(bob, "/pub/n", 0o644), code: meta.CodeAccess},
	{name: "create/group write", op: createAs(carol, "/shared/n", 0o640), check: owned("/shared/n", 1002, 1002, 0o640)},
	{name: "create/others no write", op: createAs(bob, "/shared/n", 0o644), code: meta.CodeAccess},
	{name: "create/no search on the way", op: createAs(bob, "/home/alice/n", 0o644), code: meta.CodeAccess},
	// A name under a directory the caller may not search is refused
	// before it is looked up: no telling whether it exists.
	{name: "create/no search missing parent", op: createAs(bob, "/home/alice/x/n", 0o644), code: meta.CodeAccess},
	{name: "create/no search on the parent", op: createAs(bob, "/nox/n", 0o644), code: meta.CodeAccess},
	{name: "create/existing opens", op: createAs(bob, "/pub/f", 0o600), check: owned("/pub/f", 1000, 1000, 0o644)},
	{name: "create/excl exists first", op: meta.Op{Kind: meta.OpCreate, Path: "/pub/f", Excl: true, Cred: bob}, code: meta.CodeExists},
	{name: "create/setgid dir group", op: createAs(carol, "/sgid/n", 0o2750), check: owned("/sgid/n", 1002, 1000, 0o2750)},
	// mode_strip_sgid: bob is not in the group the file gets.
	{name: "create/setgid stripped", op: createAs(bob, "/sgid/n", 0o2750), check: owned("/sgid/n", 1001, 1000, 0o750)},
	{name: "create/setgid no group exec kept", op: createAs(bob, "/sgid/n", 0o2740), check: owned("/sgid/n", 1001, 1000, 0o2740)},
	{name: "create/root owns by its cred", op: createAs(admin, "/home/alice/n", 0o600), check: owned("/home/alice/n", 900, 900, 0o600)},
	{name: "create/root with owner", op: meta.Op{Kind: meta.OpCreate, Path: "/sgid/n", Mode: 0o600, Uid: 5, Gid: 6, Owner: true, Cred: admin},
		check: owned("/sgid/n", 5, 6, 0o600)},
	{name: "create/root in setgid dir", op: createAs(admin, "/sgid/n", 0o600), check: owned("/sgid/n", 900, 1000, 0o600)},
	{name: "create/cluster", op: meta.Op{Kind: meta.OpCreate, Path: "/sgid/n", Mode: 0o600, Uid: 5, Gid: 6}, check: owned("/sgid/n", 5, 6, 0o600)},
	{name: "create/host is a user", op: createAs(hostBob, "/pub/n", 0o644), code: meta.CodeAccess},
	{name: "mkdir/exists first", op: as(bob, mkdirOp("/pub/sub")), code: meta.CodeExists},
	{name: "mkdir/no write", op: as(bob, mkdirOp("/pub/n")), code: meta.CodeAccess},
	{name: "mkdir/missing parent first", op: as(bob, mkdirOp("/pub/x/y")), code: meta.CodeNotFound},
	{name: "mkdir/parents no write", op: as(bob, mkdirPOp("/pub/sub/x/y")), code: meta.CodeAccess},
	{name: "mkdir/parents existing", op: as(bob, mkdirPOp("/pub/sub"))},
	{name: "mkdir/parents owned", op: meta.Op{Kind: meta.OpMkdir, Path: "/shared/x/y", Parents: true, Mode: 0o700, Cred: carol},
		check: both(owned("/shared/x", 1002, 1002, 0o755), owned("/shared/x/y", 1002, 1002, 0o700))},
	{name: "mkdir/setgid inherited", op: meta.Op{Kind: meta.OpMkdir, Path: "/sgid/x/y", Parents: true, Mode: 0o700, Cred: bob},
		check: both(owned("/sgid/x", 1001, 1000, 0o2755), owned("/sgid/x/y", 1001, 1000, 0o2700))},
	{name: "mkdir/no setuid or setgid from mode", op: meta.Op{Kind: meta.OpMkdir, Path: "/shared/x", Mode: 0o7755, Cred: carol},
		check: owned("/shared/x", 1002, 1002, 0o1755)},
	{name: "mkdir/setgid from the parent only", op: meta.Op{Kind: meta.OpMkdir, Path: "/sgid/x", Mode: 0o4700, Cred: bob},
		check: owned("/sgid/x", 1001, 1000, 0o2700)},
	{name: "mkdir/root with owner keeps mode", op: meta.Op{Kind: meta.OpMkdir, Path: "/shared/x", Mode: 0o2750, Uid: 3, Gid: 4, Owner: true, Cred: admin},
		check: owned("/shared/x", 3, 4, 0o2750)},
	{name: "symlink/no write", op: meta.Op{Kind: meta.OpSymlink, Path: "/pub/l", Target: "f", Cred: bob}, code: meta.CodeAccess},
	{name: "symlink/exists first", op: meta.Op{Kind: meta.OpSymlink, Path: "/pub/f", Target: "f", Cred: bob}, code: meta.CodeExists},
	{name: "symlink/owned", op: meta.Op{Kind: meta.OpSymlink, Path: "/sgid/l", Target: "f", Cred: bob}, check: owned("/sgid/l", 1001, 1000, 0o777)},
}

func putAs(c *meta.Cred, p string, size int64) meta.Op { op := putOp(p, size); op.Cred = c; return op }

var permPutCases = []permCase{
	{name: "put/no write on file", op: putAs(bob, "/pub/f", 1), code: meta.CodeAccess},
	{name: "put/group write", op: putAs(carol, "/pub/g", 1), check: owned("/pub/g", 1000, 1000, 0o664)},
	{name: "put/new no write on parent", op: putAs(bob, "/pub/n", 1), code: meta.CodeAccess},
	{name: "put/parents made", op: putAs(carol, "/shared/a/b/c", 1),
		check: both(owned("/shared/a", 1002, 1002, 0o755), owned("/shared/a/b/c", 1002, 1002, 0o644))},
	{name: "put/parents setgid", op: putAs(bob, "/sgid/a/c", 1),
		check: both(owned("/sgid/a", 1001, 1000, 0o2755), owned("/sgid/a/c", 1001, 1000, 0o644))},
	{name: "put/parents no write", op: putAs(bob, "/pub/a/c", 1), code: meta.CodeAccess},
	{name: "put/under a file", op: putAs(bob, "/pub/f/c", 1), code: meta.CodeNotDir},
	{name: "put/dir", op: putAs(bob, "/pub/sub", 1), code: meta.CodeIsDir},
	// file_remove_privs: a write by anyone but root drops setuid and
	// setgid-executable.
	{name: "put/owner clears setuid", op: putAs(alice, "/pub/suid", 1), check: owned("/pub/suid", 1000, 1000, 0o755)},
	{name: "put/root keeps setuid", op: putAs(admin, "/pub/suid", 1), check: owned("/pub/suid", 1000, 1000, 0o6755)},
	// Setgid without group execute: kept by a write from the file's
	// group, dropped by one from outside it (Linux 6.2 and later).
	{name: "put/group member keeps setgid", setup: []meta.Op{chmodG(0o2666)}, op: putAs(carol, "/pub/g", 1),
		check: owned("/pub/g", 1000, 1000, 0o2666)},
	{name: "put/outside the group clears setgid", setup: []meta.Op{chmodG(0o2666)}, op: putAs(bob, "/pub/g", 1),
		check: owned("/pub/g", 1000, 1000, 0o666)},
	{name: "update/outside the group clears setgid", setup: []meta.Op{chmodG(0o6766)},
		op: meta.Op{Kind: meta.OpUpdate, Path: "/pub/g", File: nsFile(3), Gen: 1, Cred: bob}, check: owned("/pub/g", 1000, 1000, 0o766)},
	{name: "put/host owner override", op: putAs(hostBob, "/pub/ro", 1)},
	{name: "put/owner without host", op: putAs(bob, "/pub/ro", 1), code: meta.CodeAccess},
	{name: "put/mode by non-owner", op: meta.Op{Kind: meta.OpPut, Path: "/pub/g", File: nsFile(1), Mode: 0o666, Cred: carol}, code: meta.CodePerm},
	{name: "put/mode by owner", op: meta.Op{Kind: meta.OpPut, Path: "/pub/g", File: nsFile(1), Mode: 0o2600, Cred: alice},
		check: owned("/pub/g", 1000, 1000, 0o2600)},
	{name: "put/over other's symlink in sticky dir", op: putAs(bob, "/tmp/l", 1), code: meta.CodePerm},
	{name: "put/over own symlink in sticky dir", op: putAs(alice, "/tmp/l", 1), check: owned("/tmp/l", 1000, 1000, 0o644)},
}

var permDeleteCases = []permCase{
	{name: "delete/no write", op: as(bob, deleteOp("/pub/f")), code: meta.CodeAccess},
	{name: "delete/missing first", op: as(bob, deleteOp("/pub/nope")), code: meta.CodeNotFound},
	{name: "delete/no search", op: as(bob, deleteOp("/nox/f")), code: meta.CodeAccess},
	{name: "delete/no search missing", op: as(bob, deleteOp("/nox/nope")), code: meta.CodeAccess},
	{name: "delete/permission before type", op: meta.Op{Kind: meta.OpDelete, Path: "/pub/sub", NotDir: true, Cred: bob}, code: meta.CodeAccess},
	{name: "delete/permission before not empty", op: as(carol, deleteOp("/pub/sub")), code: meta.CodeAccess},
	{name: "delete/group write", op: as(carol, deleteOp("/shared/d"))},
	{name: "delete/sticky other's", op: as(bob, deleteOp("/tmp/a")), code: meta.CodePerm},
	{name: "delete/sticky own", op: as(bob, deleteOp("/tmp/b"))},
	{name: "delete/sticky dir owner", setup: []meta.Op{{Kind: meta.OpMkdir, Path: "/tmp/t", Mode: 0o1777, Uid: 1001},
		{Kind: meta.OpCreate, Path: "/tmp/t/x", Uid: 1000}}, op: as(bob, deleteOp("/tmp/t/x"))},
	{name: "delete/sticky root", op: as(admin, deleteOp("/tmp/a"))},
	{name: "delete/recursive", op: as(alice, deleteROp("/pub/sub"))},
	{name: "delete/recursive no write below", setup: []meta.Op{{Kind: meta.OpPut, Path: "/shared/e/x/f", File: nsFile(1), Uid: 1000}},
		op: as(carol, deleteROp("/shared/e")), code: meta.CodeAccess},
	{name: "delete/recursive no read below", setup: []meta.Op{{Kind: meta.OpMkdir, Path: "/shared/e/x", Mode: 0o333, Uid: 1002},
		{Kind: meta.OpCreate, Path: "/shared/e/x/f", Uid: 1002}}, op: as(carol, deleteROp("/shared/e")), code: meta.CodeAccess},
	{name: "delete/recursive empty unreadable dir", setup: []meta.Op{{Kind: meta.OpMkdir, Path: "/shared/e/x", Mode: 0, Uid: 1000}},
		op: as(carol, deleteROp("/shared/e"))},
	{name: "delete/recursive sticky below", setup: []meta.Op{{Kind: meta.OpMkdir, Path: "/tmp/t", Mode: 0o777, Uid: 1001},
		{Kind: meta.OpMkdir, Path: "/tmp/t/s", Mode: 0o1777, Uid: 1002}, {Kind: meta.OpPut, Path: "/tmp/t/s/x/f", File: nsFile(1), Uid: 1001},
		{Kind: meta.OpCreate, Path: "/tmp/t/s/y", Uid: 1000}}, op: as(bob, deleteROp("/tmp/t")), code: meta.CodePerm},
	{name: "delete/recursive sticky own", setup: []meta.Op{{Kind: meta.OpMkdir, Path: "/tmp/t", Mode: 0o777, Uid: 1001},
		{Kind: meta.OpMkdir, Path: "/tmp/t/s", Mode: 0o1777, Uid: 1002}, {Kind: meta.OpCreate, Path: "/tmp/t/s/y", Uid: 1001}},
		op: as(bob, deleteROp("/tmp/t"))},
	{name: "delete/recursive root", op: as(admin, deleteROp("/home"))},
}

var permMoveCases = []permCase{
	{name: "rename/no write on source dir", op: as(carol, renameOp("/pub/f", "/shared/f")), code: meta.CodeAccess},
	{name: "rename/no write on dest dir", op: as(carol, renameOp("/shared/c", "/pub/c")), code: meta.CodeAccess},
	{name: "rename/within group dir", op: as(carol, renameOp("/shared/c", "/shared/c2"))},
	{name: "rename/missing first", op: as(bob, renameOp("/pub/nope", "/pub/x")), code: meta.CodeNotFound},
	{name: "rename/noreplace exists first", op: meta.Op{Kind: meta.OpRename, Path: "/shared/c", To: "/pub/f", NoReplace: true, Cred: carol},
		code: meta.CodeExists},
	// A directory moved to another parent needs write on itself: its
	// ".." changes. Moved within its parent, it does not.
	{name: "rename/dir across parents", op: as(carol, renameOp("/shared/d", "/sgid/d")), code: meta.CodeAccess},
	{name: "rename/own dir across parents", op: as(carol, renameOp("/shared/e", "/sgid/e"))},
	{name: "rename/dir within parent", op: as(carol, renameOp("/shared/d", "/shared/d2"))},
	{name: "rename/sticky source", op: as(bob, renameOp("/tmp/a", "/tmp/a2")), code: meta.CodePerm},
	{name: "rename/sticky target", op: as(bob, renameOp("/tmp/b", "/tmp/a")), code: meta.CodePerm},
	{name: "rename/sticky own over own", setup: []meta.Op{{Kind: meta.OpCreate, Path: "/tmp/c", Uid: 1001}},
		op: as(bob, renameOp("/tmp/b", "/tmp/c"))},
	{name: "rename/permission before type", op: as(bob, renameOp("/tmp/b", "/pub/sub")), code: meta.CodeAccess},
	{name: "rename/permission before not empty", op: as(carol, renameOp("/shared/e", "/pub/sub")), code: meta.CodeAccess},
	{name: "rename/not empty", setup: []meta.Op{{Kind: meta.OpPut, Path: "/shared/e/x", File: nsFile(1)}},
		op: as(carol, renameOp("/shared/d", "/shared/e")), code: meta.CodeNotEmpty},
	{name: "rename/root", op: as(admin, renameOp("/home/alice/f", "/pub/f"))},
	{name: "rename/same name", op: as(bob, renameOp("/pub/f", "/pub/f"))},
	// may_linkat: only the owner links a file it cannot read and write.
	{name: "link/read only", op: meta.Op{Kind: meta.OpLink, Path: "/pub/f", To: "/shared/l", Cred: carol}, code: meta.CodePerm},
	{name: "link/read write", op: meta.Op{Kind: meta.OpLink, Path: "/pub/g", To: "/shared/l", Cred: carol}},
	{name: "link/setuid", setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/pub/g", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o4666}}},
		op: meta.Op{Kind: meta.OpLink, Path: "/pub/g", To: "/shared/l", Cred: carol}, code: meta.CodePerm},
	{name: "link/own into unwritable", op: meta.Op{Kind: meta.OpLink, Path: "/tmp/b", To: "/pub/b", Cred: bob}, code: meta.CodeAccess},
	{name: "link/protection before write", op: meta.Op{Kind: meta.OpLink, Path: "/pub/f", To: "/pub/l", Cred: bob}, code: meta.CodePerm},
	{name: "link/exists first", op: meta.Op{Kind: meta.OpLink, Path: "/pub/f", To: "/pub/g", Cred: bob}, code: meta.CodeExists},
	{name: "link/dir", op: meta.Op{Kind: meta.OpLink, Path: "/shared/e", To: "/shared/e2", Cred: carol}, code: meta.CodePerm},
	{name: "copy/no search on source", op: as(bob, copyOp("/home/alice/f", "/tmp/c")), code: meta.CodeAccess},
	{name: "copy/unreadable", op: as(bob, copyOp("/secret/s", "/tmp/c")), code: meta.CodeAccess},
	{name: "copy/owned by caller", op: as(bob, copyOp("/pub/suid", "/tmp/c")), check: owned("/tmp/c", 1001, 1001, 0o6755)},
	{name: "copy/cluster keeps owner", op: copyOp("/pub/g", "/tmp/c"), check: owned("/tmp/c", 1000, 1000, 0o664)},
	{name: "copy/dir owned by caller", op: as(bob, copyOp("/pub/sub", "/sgid/c")),
		check: both(owned("/sgid/c", 1001, 1000, 0o2755), owned("/sgid/c/h", 1001, 1000, 0o644))},
	{name: "copy/dir with unreadable file", op: as(bob, copyOp("/secret", "/tmp/c")), code: meta.CodeAccess},
	{name: "copy/dir no search", op: as(bob, copyOp("/nox", "/tmp/c")), code: meta.CodeAccess},
	{name: "copy/over writable", op: as(bob, copyOp("/pub/f", "/tmp/b")), check: owned("/tmp/b", 1001, 1001, 0o666)},
	{name: "copy/over unwritable", op: as(bob, copyOp("/pub/f", "/tmp/a")), code: meta.CodeAccess},
	{name: "copy/clears setuid", setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/tmp/b", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o4666}}},
		op: as(bob, copyOp("/pub/f", "/tmp/b")), check: owned("/tmp/b", 1001, 1001, 0o666)},
	{name: "copy/over other's symlink in sticky dir", op: as(bob, copyOp("/pub/f", "/tmp/l")), code: meta.CodePerm},
	{name: "copy/no write on dest", op: as(bob, copyOp("/pub/f", "/pub/f2")), code: meta.CodeAccess},
}

func attrOp(c *meta.Cred, p string, a meta.SetAttr) meta.Op {
	return meta.Op{Kind: meta.OpUpdate, Path: p, Attr: &a, Cred: c}
}

var permUpdateCases = []permCase{
	{name: "chmod/not owner", op: attrOp(carol, "/pub/g", meta.SetAttr{Valid: meta.SetMode, Mode: 0o666}), code: meta.CodePerm},
	{name: "chmod/owner", op: attrOp(alice, "/pub/g", meta.SetAttr{Valid: meta.SetMode, Mode: 0o2600}), check: owned("/pub/g", 1000, 1000, 0o2600)},
	// A writer who is not the owner may clear setuid and setgid, as a
	// mount host's kernel asks before the write (file_remove_privs), and
	// nothing more.
	{name: "chmod/writer kills privs", setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/pub/g", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o6664}}},
		op: attrOp(carol, "/pub/g", meta.SetAttr{Valid: meta.SetMode, Mode: 0o664}), check: owned("/pub/g", 1000, 1000, 0o664)},
	{name: "chmod/writer kills privs and more", setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/pub/g", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o6664}}},
		op: attrOp(carol, "/pub/g", meta.SetAttr{Valid: meta.SetMode, Mode: 0o660}), code: meta.CodePerm},
	{name: "chmod/non-writer kills privs", setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/pub/g", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o6664}}},
		op: attrOp(bob, "/pub/g", meta.SetAttr{Valid: meta.SetMode, Mode: 0o664}), code: meta.CodePerm},
	{name: "chmod/root", op: attrOp(admin, "/pub/g", meta.SetAttr{Valid: meta.SetMode, Mode: 0o2600}), check: owned("/pub/g", 1000, 1000, 0o2600)},
	// chmod(2) drops setgid silently for an owner outside the group.
	{name: "chmod/setgid outside group", op: attrOp(bob, "/pub/ro", meta.SetAttr{Valid: meta.SetMode, Mode: 0o2755}),
		setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/pub/ro", Attr: &meta.SetAttr{Valid: meta.SetGid, Gid: 77}}}, check: owned("/pub/ro", 1001, 77, 0o755)},
	{name: "chmod/setgid outside group dir", setup: []meta.Op{{Kind: meta.OpMkdir, Path: "/tmp/t", Uid: 1001, Gid: 77}},
		op: attrOp(bob, "/tmp/t", meta.SetAttr{Valid: meta.SetMode, Mode: 0o2755}), check: owned("/tmp/t", 1001, 77, 0o755)},
	{name: "chown/give away", op: attrOp(alice, "/pub/g", meta.SetAttr{Valid: meta.SetUid, Uid: 1001}), code: meta.CodePerm},
	{name: "chown/to self", op: attrOp(alice, "/pub/g", meta.SetAttr{Valid: meta.SetUid, Uid: 1000})},
	{name: "chown/not owner to owner", op: attrOp(carol, "/pub/g", meta.SetAttr{Valid: meta.SetUid, Uid: 1000}), code: meta.CodePerm},
	{name: "chown/root clears setuid", op: attrOp(admin, "/pub/suid", meta.SetAttr{Valid: meta.SetUid | meta.SetGid, Uid: 1001, Gid: 1001}),
		check: owned("/pub/suid", 1001, 1001, 0o755)},
	{name: "chown/root with mode", op: attrOp(admin, "/pub/suid", meta.SetAttr{Valid: meta.SetUid | meta.SetMode, Uid: 1001, Mode: 0o4750}),
		check: owned("/pub/suid", 1001, 1000, 0o4750)},
	{name: "chown/dir keeps setgid", op: attrOp(admin, "/sgid", meta.SetAttr{Valid: meta.SetUid, Uid: 1001}), check: owned("/sgid", 1001, 1000, 0o2777)},
	{name: "chown/cluster keeps setuid", op: attrOp(nil, "/pub/suid", meta.SetAttr{Valid: meta.SetUid, Uid: 1001}), check: owned("/pub/suid", 1001, 1000, 0o6755)},
	{name: "chgrp/to own group", op: attrOp(carol, "/shared/c", meta.SetAttr{Valid: meta.SetGid, Gid: 7}), check: owned("/shared/c", 1002, 7, 0o644)},
	{name: "chgrp/to other group", op: attrOp(carol, "/shared/c", meta.SetAttr{Valid: meta.SetGid, Gid: 1001}), code: meta.CodePerm},
	{name: "chgrp/not owner", op: attrOp(carol, "/pub/g", meta.SetAttr{Valid: meta.SetGid, Gid: 1000}), code: meta.CodePerm},
	{name: "chown/to self in the group keeps setgid", setup: []meta.Op{chmodG(0o2745)},
		op: attrOp(alice, "/pub/g", meta.SetAttr{Valid: meta.SetUid, Uid: 1000}), check: owned("/pub/g", 1000, 1000, 0o2745)},
	{name: "chown/to self outside the group clears setgid",
		setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/pub/g", Attr: &meta.SetAttr{Valid: meta.SetGid | meta.SetMode, Gid: 77, Mode: 0o2745}}},
		op:    attrOp(alice, "/pub/g", meta.SetAttr{Valid: meta.SetUid, Uid: 1000}), check: owned("/pub/g", 1000, 77, 0o745)},
	{name: "chown/root outside the group keeps setgid",
		setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/pub/g", Attr: &meta.SetAttr{Valid: meta.SetGid | meta.SetMode, Gid: 77, Mode: 0o2745}}},
		op:    attrOp(admin, "/pub/g", meta.SetAttr{Valid: meta.SetUid, Uid: 1001}), check: owned("/pub/g", 1001, 77, 0o2745)},
	{name: "chgrp/owner clears setgid exec", op: attrOp(alice, "/pub/suid", meta.SetAttr{Valid: meta.SetGid, Gid: 1000}),
		check: owned("/pub/suid", 1000, 1000, 0o755)},
	{name: "utimes/explicit not owner", op: attrOp(carol, "/pub/g", meta.SetAttr{Valid: meta.SetMTime, MTime: 5}), code: meta.CodePerm},
	{name: "utimes/explicit owner", op: attrOp(alice, "/pub/g", meta.SetAttr{Valid: meta.SetATime | meta.SetMTime, MTime: 5})},
	{name: "utimes/now with write", op: attrOp(carol, "/pub/g", meta.SetAttr{Valid: meta.SetATimeNow | meta.SetMTimeNow})},
	{name: "utimes/now without write", op: attrOp(bob, "/pub/g", meta.SetAttr{Valid: meta.SetMTimeNow}), code: meta.CodeAccess},
	{name: "update/content no write", op: meta.Op{Kind: meta.OpUpdate, Path: "/pub/g", File: nsFile(3), Gen: 1, Cred: bob}, code: meta.CodeAccess},
	{name: "update/permission before conflict", op: meta.Op{Kind: meta.OpUpdate, Path: "/pub/g", File: nsFile(3), Gen: 9, Cred: bob},
		code: meta.CodeAccess},
	{name: "update/content group write", op: meta.Op{Kind: meta.OpUpdate, Path: "/pub/g", File: nsFile(3), Gen: 1, Cred: carol}},
	{name: "update/content clears setuid", op: meta.Op{Kind: meta.OpUpdate, Path: "/pub/suid", File: nsFile(3), Gen: 1, Cred: alice},
		check: owned("/pub/suid", 1000, 1000, 0o755)},
	{name: "update/host owner override", op: meta.Op{Kind: meta.OpUpdate, Path: "/pub/ro", File: nsFile(3), Gen: 1, Cred: hostBob}},
	{name: "update/no search", op: attrOp(admin, "/nox/f", meta.SetAttr{Valid: meta.SetMode, Mode: 0o600}), check: owned("/nox/f", 1000, 1000, 0o600)},
	{name: "update/no search user", op: attrOp(alice, "/home/alice/f", meta.SetAttr{Valid: meta.SetMode})},
	{name: "update/no search other", op: attrOp(bob, "/nox/f", meta.SetAttr{Valid: meta.SetMTimeNow}), code: meta.CodeAccess},
}

// chmodG sets the mode of /pub/g (alice's, group 1000), as the cluster.
func chmodG(mode uint32) meta.Op {
	return meta.Op{Kind: meta.OpUpdate, Path: "/pub/g", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: mode}}
}

// chmodF lets anyone write /home/alice/f, which bob cannot reach.
var chmodF = meta.Op{Kind: meta.OpUpdate, Path: "/home/alice/f", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o666}}

// Inodes named by number must be reachable by the caller.
var permAnchorCases = []permCase{
	{name: "anchor/dir unreachable", dir: "/home/alice/sub", op: createAs(bob, "/n", 0o644), code: meta.CodeAccess},
	{name: "anchor/dir reachable", dir: "/home/alice/sub", op: createAs(alice, "/n", 0o644)},
	{name: "anchor/dir host checks modes", dir: "/home/alice/sub", op: attrOp(hostBob, "/", meta.SetAttr{Valid: meta.SetMTimeNow}), code: meta.CodeAccess},
	{name: "anchor/dir root", dir: "/home/alice/sub", op: createAs(admin, "/n", 0o644)},
	// /home/alice/sub is 0755: bob may write into it once inside.
	{name: "anchor/dir host writes", dir: "/home/alice/sub", setup: []meta.Op{{Kind: meta.OpUpdate, Path: "/home/alice/sub",
		Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o777}}}, op: createAs(hostBob, "/n", 0o644)},
	{name: "anchor/file unreachable", dir: "/home/alice/f", setup: []meta.Op{chmodF},
		op: attrOp(bob, "/", meta.SetAttr{Valid: meta.SetMTimeNow}), code: meta.CodeAccess},
	{name: "anchor/file other name", dir: "/home/alice/f", setup: []meta.Op{chmodF, {Kind: meta.OpLink, Path: "/home/alice/f", To: "/pub/f2"}},
		op: attrOp(bob, "/", meta.SetAttr{Valid: meta.SetMTimeNow})},
	{name: "anchor/file other name unsearchable", dir: "/home/alice/f",
		setup: []meta.Op{chmodF, {Kind: meta.OpLink, Path: "/home/alice/f", To: "/nox/f2"}},
		op:    attrOp(bob, "/", meta.SetAttr{Valid: meta.SetMTimeNow}), code: meta.CodeAccess},
	{name: "anchor/file other name unreachable dir", dir: "/home/alice/f",
		setup: []meta.Op{chmodF, {Kind: meta.OpLink, Path: "/home/alice/f", To: "/home/alice/sub/f2"}},
		op:    attrOp(bob, "/", meta.SetAttr{Valid: meta.SetMTimeNow}), code: meta.CodeAccess},
	{name: "anchor/orphan owner", dir: "/pub/f", setup: []meta.Op{{Kind: meta.OpDelete, Path: "/pub/f", Orphan: true}},
		op: meta.Op{Kind: meta.OpUpdate, Path: "/", File: nsFile(2), Gen: 1, Cred: alice}},
	{name: "anchor/orphan other", dir: "/pub/g", setup: []meta.Op{{Kind: meta.OpDelete, Path: "/pub/g", Orphan: true}},
		op: meta.Op{Kind: meta.OpUpdate, Path: "/", File: nsFile(2), Gen: 1, Cred: carol}, code: meta.CodeAccess},
	{name: "anchor/orphan host", dir: "/pub/g", setup: []meta.Op{{Kind: meta.OpDelete, Path: "/pub/g", Orphan: true}},
		op: meta.Op{Kind: meta.OpUpdate, Path: "/", File: nsFile(2), Gen: 1, Cred: &meta.Cred{Uid: 1002, Gid: 1002, Groups: []uint32{1000}, Host: true}}},
	{name: "anchor/to dir unreachable", toDir: "/home/alice/sub", op: meta.Op{Kind: meta.OpRename, Path: "/tmp/b", To: "/b", Cred: bob},
		code: meta.CodeAccess},
	{name: "anchor/to dir of link", dir: "/tmp/b", toDir: "/home/alice/sub", op: meta.Op{Kind: meta.OpLink, Path: "/", To: "/b", Cred: bob},
		code: meta.CodeAccess},
	{name: "anchor/gone", dir: "/tmp/b", setup: []meta.Op{deleteOp("/tmp/b")}, op: attrOp(bob, "/", meta.SetAttr{Valid: meta.SetMTimeNow}),
		code: meta.CodeNotFound},
	{name: "release/owner", dir: "/pub/f", setup: []meta.Op{{Kind: meta.OpDelete, Path: "/pub/f", Orphan: true}},
		op: meta.Op{Kind: meta.OpRelease, Path: "/", Cred: alice}, check: func(t *testing.T, tx *bbolt.Tx) {
			if n := nsKeyCount(tx, bucketInodes); n != 24 {
				t.Errorf("%d inodes, want the orphan gone", n)
			}
		}},
	{name: "release/other", dir: "/pub/f", setup: []meta.Op{{Kind: meta.OpDelete, Path: "/pub/f", Orphan: true}},
		op: meta.Op{Kind: meta.OpRelease, Path: "/", Cred: bob}, code: meta.CodeAccess},
	{name: "release/host", dir: "/pub/f", setup: []meta.Op{{Kind: meta.OpDelete, Path: "/pub/f", Orphan: true}},
		op: meta.Op{Kind: meta.OpRelease, Path: "/", Cred: hostBob}},
	{name: "release/not an orphan", dir: "/pub/f", op: meta.Op{Kind: meta.OpRelease, Path: "/", Cred: bob}},
}

func TestPermRules(t *testing.T) {
	runPermCases(t, slices.Concat(permCreateCases, permPutCases, permDeleteCases, permMoveCases, permUpdateCases, permAnchorCases))
}

// permDB is a committed permTree for the read tests.
func permDB(t *testing.T) *bbolt.DB {
	db := nsOpenDB(t)
	for i, op := range permTree() {
		op.Time = int64(i + 1)
		nsWant(t, nsApply(t, db, op), meta.CodeOK)
	}
	return db
}

func TestPermLookup(t *testing.T) {
	db := permDB(t)
	ino := func(p string) uint64 { return nsLookupAt(t, db, 0, p).Ino }
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/pub/x", Mode: 0o644, Uid: 1000}), meta.CodeOK)
	orphan := ino("/pub/x")
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpDelete, Path: "/pub/x", Orphan: true}), meta.CodeOK)
	cases := []struct {
		cred *meta.Cred
		dir  uint64
		path string
		want uint32
		code meta.Code
	}{
		{bob, 0, "/pub/f", 0, meta.CodeOK},
		{bob, 0, "/pub/f", meta.MayRead, meta.CodeOK},
		{bob, 0, "/pub/f", meta.MayWrite, meta.CodeAccess},
		{bob, 0, "/secret/s", meta.MayRead, meta.CodeAccess},
		{bob, 0, "/secret/s", 0, meta.CodeOK},
		{alice, 0, "/secret/s", meta.MayRead | meta.MayWrite, meta.CodeOK},
		{bob, 0, "/home/alice/f", 0, meta.CodeAccess},
		{bob, 0, "/home/alice/nope", 0, meta.CodeAccess},
		{bob, 0, "/home/nope", 0, meta.CodeNotFound},
		{bob, 0, "/pub/f/x", 0, meta.CodeNotDir},
		{bob, 0, "/nox", meta.MayRead, meta.CodeOK},
		{bob, 0, "/nox/f", 0, meta.CodeAccess},
		{admin, 0, "/nox/f", meta.MayRead | meta.MayWrite, meta.CodeOK},
		{admin, 0, "/pub/f", meta.MayExec, meta.CodeAccess}, // no execute bit at all
		{admin, 0, "/pub/suid", meta.MayExec, meta.CodeOK},
		{hostBob, 0, "/pub/ro", meta.MayRead | meta.MayWrite, meta.CodeOK},
		{bob, 0, "/pub/ro", meta.MayWrite, meta.CodeAccess},
		{bob, ino("/home/alice/sub"), "/", 0, meta.CodeAccess},
		{alice, ino("/home/alice/sub"), "/", 0, meta.CodeOK},
		{hostBob, ino("/home/alice/sub"), "/", 0, meta.CodeOK},
		{bob, ino("/pub/sub"), "/h", meta.MayRead, meta.CodeOK},
		{bob, ino("/home/alice/f"), "/", 0, meta.CodeAccess},
		{alice, orphan, "/", meta.MayRead, meta.CodeOK},
		{bob, orphan, "/", 0, meta.CodeAccess},
		{hostBob, orphan, "/", 0, meta.CodeOK},
		{nil, orphan, "/", 0, meta.CodeOK},
		{bob, RootIno, "/pub", 0, meta.CodeOK},
		{alice, 0, "/home/alice/sub", 0, meta.CodeOK},
		{bob, 0, "/home/alice/sub", 0, meta.CodeAccess},
		{alice, 0, "/home/alice/sub/h", 0, meta.CodeNotFound},
		{bob, 0, "/home/alice/sub/h", 0, meta.CodeAccess},
	}
	for _, c := range cases {
		err := db.View(func(tx *bbolt.Tx) error {
			_, err := lookupAt(tx, c.dir, c.path, c.cred, c.want)
			return err
		})
		if meta.CodeOf(err) != c.code {
			t.Errorf("lookup %s from %d by %+v wanting %o: %v, want %q", c.path, c.dir, c.cred, c.want, err, c.code)
		}
	}
	// The same lookups by one Reader sharing its namespace (a batch of
	// reads): a directory one caller's walk found must not let another
	// past a directory it may not search. Both orders, twice over.
	err := db.View(func(tx *bbolt.Tx) error {
		r := Reader{tx: tx, shared: &sharedRead{}}
		for pass := range 4 {
			for i := range cases {
				c := cases[i]
				if pass%2 == 1 {
					c = cases[len(cases)-1-i]
				}
				n, err := r.namespace(tx, c.cred)
				if err != nil {
					return err
				}
				if _, err := n.lookupAt(c.dir, c.path, c.want); meta.CodeOf(err) != c.code {
					t.Errorf("pass %d, shared: lookup %s from %d by %+v wanting %o: %v, want %q", pass, c.path, c.dir, c.cred, c.want, err, c.code)
				}
			}
		}
		if len(r.shared.ns.found) == 0 {
			t.Error("the shared namespace kept no directory: its walks were not shared")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPermReadDir(t *testing.T) {
	db := permDB(t)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpMkdir, Path: "/pub/r", Mode: 0o744, Uid: 1000}), meta.CodeOK)
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpPut, Path: "/pub/r/f", File: nsFile(9), Uid: 1000, Time: 3}), meta.CodeOK)
	list := func(c *meta.Cred, p string) ([]meta.DirEntry, error) {
		var ents []meta.DirEntry
		err := db.View(func(tx *bbolt.Tx) (err error) { ents, err = readDirAt(tx, 0, p, c); return err })
		return ents, err
	}
	if _, err := list(bob, "/home/alice"); meta.CodeOf(err) != meta.CodeAccess {
		t.Errorf("listing a 0700 directory: %v", err)
	}
	if _, err := list(bob, "/pub/f"); meta.CodeOf(err) != meta.CodeNotDir {
		t.Errorf("listing a file: %v", err)
	}
	full, err := list(alice, "/pub/r")
	if err != nil || len(full) != 1 || full[0].Size != 9 || full[0].Uid != 1000 || full[0].MTime != 3 {
		t.Fatalf("owner's listing: %+v %v", full, err)
	}
	// Without search permission: names, inode numbers and types only.
	names, err := list(bob, "/pub/r")
	want := meta.DirEntry{Name: "f", Inode: meta.Inode{Ino: full[0].Ino, Type: meta.TypeFile}}
	if err != nil || len(names) != 1 || names[0].Name != want.Name || names[0].Inode.Ino != want.Ino ||
		names[0].Type != want.Type || names[0].Size != 0 || names[0].Mode != 0 || names[0].Nlink != 0 || names[0].Hash != "" {
		t.Fatalf("listing without search: %+v %v", names, err)
	}
}

func TestCheckPut(t *testing.T) {
	db := permDB(t)
	cases := []struct {
		cred *meta.Cred
		path string
		code meta.Code
	}{
		{bob, "/pub/f", meta.CodeAccess},
		{bob, "/pub/new", meta.CodeAccess},
		{bob, "/pub/a/b", meta.CodeAccess},
		{carol, "/pub/g", meta.CodeOK},
		{carol, "/shared/a/b", meta.CodeOK},
		{bob, "/home/alice/x/y", meta.CodeAccess},
		{bob, "/tmp/l", meta.CodePerm},
		{hostBob, "/pub/ro", meta.CodeOK},
		{bob, "/pub/sub", meta.CodeIsDir},
		{nil, "/home/alice/f", meta.CodeOK},
		{bob, "relative", meta.CodeInvalid},
	}
	for _, c := range cases {
		err := db.View(func(tx *bbolt.Tx) error { return checkPut(tx, 0, c.path, c.cred) })
		if meta.CodeOf(err) != c.code {
			t.Errorf("check put %s by %+v: %v, want %q", c.path, c.cred, err, c.code)
		}
	}
	// And by one Reader sharing its namespace, in both orders.
	err := db.View(func(tx *bbolt.Tx) error {
		r := Reader{tx: tx, shared: &sharedRead{}}
		for pass := range 2 {
			for i := range cases {
				c := cases[i]
				if pass == 1 {
					c = cases[len(cases)-1-i]
				}
				n, err := r.namespace(tx, c.cred)
				if err != nil {
					return err
				}
				if err := n.checkPut(0, c.path); meta.CodeOf(err) != c.code {
					t.Errorf("pass %d, shared: check put %s by %+v: %v, want %q", pass, c.path, c.cred, err, c.code)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store's reads answer alike through a Reader of their own
// transactions, one View, and the apply transaction shared (Shared),
// whoever asks in whatever order: a directory one caller's walk found is
// no way past a directory another may not search.
func TestViewAndSharedReadAsReader(t *testing.T) {
	d := crOpen(t, t.TempDir())
	for i, op := range permTree() {
		op.Time = int64(i + 1)
		crApply(t, d, op, meta.CodeOK)
	}
	type read struct {
		cred *meta.Cred
		path string
	}
	var reads []read
	for _, c := range []*meta.Cred{alice, bob, nil, alice, bob} {
		for _, p := range []string{"/home/alice/sub", "/home/alice/sub/h", "/home/alice/f", "/pub/f", "/pub/sub", "/nox/f", "/secret/s"} {
			reads = append(reads, read{c, p})
		}
	}
	answer := func(r Reader, q read) string {
		in, err := r.LookupAt(0, q.path, q.cred, 0)
		put := r.CheckPut(0, q.path+"-new", q.cred)
		return fmt.Sprintf("ino %d code %q; put %q", in.Ino, meta.CodeOf(err), meta.CodeOf(put))
	}
	want := make([]string, len(reads))
	for i, q := range reads {
		want[i] = answer(d.Reader(), q)
	}
	check := func(how string, r Reader) {
		for i, q := range reads {
			if got := answer(r, q); got != want[i] {
				t.Errorf("%s: %s by %+v: %s, want %s (its own transaction)", how, q.path, q.cred, got, want[i])
			}
		}
	}
	if err := d.View(func(r Reader) { check("View", r) }); err != nil {
		t.Fatal(err)
	}
	err := d.update(func(tx *bbolt.Tx) error {
		check("apply transaction, Shared", Reader{d: d, tx: tx}.Shared())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(strings.Join(want, "\n"), "permission_denied") == 0 {
		t.Error("no read was refused: the reads no longer test a directory some may not search")
	}
}

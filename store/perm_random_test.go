package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// permCreds are the callers the random ops act for: the cluster, three
// users, root and a trusted mount host.
var permCreds = []*meta.Cred{nil, alice, bob, carol, admin, hostBob}

// permGenOp draws any namespace op over paths of at most three names from
// {a, b, c}, for a random caller, with random modes (setuid, setgid and
// sticky included), owners, and inodes named by number up to maxIno.
func permGenOp(r nsChooser, now int64, maxIno uint64) meta.Op {
	pick := func(xs ...uint32) uint32 { return xs[r.IntN(len(xs))] }
	genPath := func() string {
		if r.IntN(12) == 0 {
			return "/"
		}
		p := ""
		for range 1 + r.IntN(3) {
			p += "/" + []string{"a", "b", "c"}[r.IntN(3)]
		}
		return p
	}
	op := meta.Op{Time: now, Path: genPath(), Cred: permCreds[r.IntN(len(permCreds))]}
	if r.IntN(6) == 0 {
		op.Dir = 1 + uint64(r.IntN(int(maxIno)))
		if r.IntN(2) == 0 {
			op.Path = "/"
		}
	}
	op.Uid, op.Gid, op.Owner = pick(0, 1000, 1001, 1002), pick(0, 7, 1000, 1001), r.IntN(2) == 0
	mode := pick(0, 0o644, 0o600, 0o755, 0o777, 0o1777, 0o2775, 0o2777, 0o6755, 0o700, 0o444, 0o711)
	switch r.IntN(14) {
	case 0, 1:
		op.Kind, op.File, op.Mode = meta.OpPut, nsFile(int64(r.IntN(3))), pick(0, 0, mode)
	case 2:
		op.Kind, op.Recursive, op.Orphan = meta.OpDelete, r.IntN(2) == 0, r.IntN(2) == 0
		op.NotDir, op.OnlyDir = r.IntN(4) == 0, r.IntN(4) == 0
	case 3, 4:
		op.Kind, op.Parents, op.Mode = meta.OpMkdir, r.IntN(2) == 0, mode
	case 5, 6:
		op.Kind, op.To, op.NoReplace = []meta.OpKind{meta.OpRename, meta.OpCopy}[r.IntN(2)], genPath(), r.IntN(4) == 0
		if r.IntN(4) == 0 {
			op.ToDir = 1 + uint64(r.IntN(int(maxIno)))
		}
	case 7:
		op.Kind, op.Excl, op.Mode = meta.OpCreate, r.IntN(2) == 0, mode
	case 8:
		op.Kind, op.Target = meta.OpSymlink, "t"
	case 9:
		// Mostly names no other op makes, so a link often finds its
		// new name free.
		op.Kind, op.To = meta.OpLink, []string{genPath(), "/l", "/a/l", "/b/l"}[r.IntN(4)]
	case 10, 11:
		op.Kind, op.Attr = meta.OpUpdate, &meta.SetAttr{Valid: uint8(1 + r.IntN(127)), Mode: mode,
			Uid: pick(0, 1000, 1001, 1002), Gid: pick(0, 7, 1000, 1001, 1003), ATime: 5, MTime: 6}
	case 12:
		op.Kind, op.File, op.Gen = meta.OpUpdate, nsFile(int64(r.IntN(3))), uint64(r.IntN(3))
	default:
		op.Kind = meta.OpRelease
	}
	return op
}

// permApplyAs applies op for cred in a transaction it rolls back, and
// returns the code it got.
func permApplyAs(db *bbolt.DB, op meta.Op, cred *meta.Cred) (meta.Code, error) {
	tx, err := db.Begin(true)
	if err != nil {
		return meta.CodeOK, err
	}
	defer tx.Rollback()
	op.Cred = cred
	r, err := applyOp(tx, &op, 0)
	return r.Code, err
}

// permStep applies op in tx and checks what every op must keep: a failed
// op changes nothing, and the tree, the chunk counts and both indexes
// stay consistent. nilCode, when known, is the code the same op got for
// the cluster: a caller's op may fail where the cluster's succeeds, but
// only for lack of permission, and root's never does.
func permStep(tx *bbolt.Tx, op meta.Op, nilCode *meta.Code) (meta.Code, error) {
	before := nsDigest(tx)
	r, err := applyOp(tx, &op, 0)
	if err != nil {
		return r.Code, fmt.Errorf("%+v: error %v", op, err)
	}
	switch {
	case nilCode != nil && op.Cred != nil && op.Cred.Root && r.Code != *nilCode:
		return r.Code, fmt.Errorf("%+v by root: %q, the cluster gets %q", op, r.Code, *nilCode)
	case nilCode != nil && r.Code != *nilCode && r.Code != meta.CodeAccess && r.Code != meta.CodePerm:
		return r.Code, fmt.Errorf("%+v by %+v: %q, the cluster gets %q", op, op.Cred, r.Code, *nilCode)
	case r.Code != meta.CodeOK && nsDigest(tx) != before:
		return r.Code, fmt.Errorf("%+v: failed with %s but changed the namespace", op, r.Code)
	}
	for _, check := range []func(*bbolt.Tx) error{nsCheckTree, nsCheckChunkRefs, nsCheckIndexes} {
		if err := check(tx); err != nil {
			return r.Code, fmt.Errorf("after %+v: %v", op, err)
		}
	}
	return r.Code, nil
}

func permMaxIno(tx *bbolt.Tx) uint64 {
	v, _ := bucketIn(tx, bucketNSMeta).get(keyNextIno)
	return binary.BigEndian.Uint64(v)
}

// TestPermRandom runs random ops for random callers below a root anyone
// may write (sticky, like /tmp), comparing each with the cluster's
// outcome of the same op.
func TestPermRandom(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, uint64(time.Now().UnixNano())}
	if *nsSeed != 0 {
		seeds = []uint64{*nsSeed}
	}
	outcomes := map[string]int{}
	for _, seed := range seeds {
		t.Logf("seed %d (rerun with -namespace.seed=%d)", seed, seed)
		db := nsOpenDB(t)
		nsApply(t, db, meta.Op{Kind: meta.OpUpdate, Path: "/", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o1777}})
		r := rand.New(rand.NewPCG(seed, 2))
		for i := range 600 {
			var op meta.Op
			db.View(func(tx *bbolt.Tx) error { op = permGenOp(r, int64(i+1), permMaxIno(tx)); return nil })
			nilCode, err := permApplyAs(db, op, nil)
			if err != nil {
				t.Fatalf("seed %d step %d %+v: %v", seed, i, op, err)
			}
			var code meta.Code
			err = db.Update(func(tx *bbolt.Tx) (err error) { code, err = permStep(tx, op, &nilCode); return err })
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, i, err)
			}
			outcomes[fmt.Sprintf("%d:%s", op.Kind, cmp.Or(code, "ok"))]++
		}
	}
	for _, want := range []string{"1:ok", "1:permission_denied", "2:not_permitted", "4:ok", "4:not_permitted", "5:ok", "10:not_permitted", "9:ok", "9:not_permitted"} {
		if outcomes[want] == 0 {
			t.Errorf("no op had outcome %s: the generator no longer reaches it", want)
		}
	}
	t.Logf("op kind:outcome counts %v", outcomes)
}

func FuzzPermissions(f *testing.F) {
	f.Add([]byte{0, 1, 2, 5, 1, 1, 7, 2, 1, 1, 4, 4, 9, 3})
	f.Add(bytes.Repeat([]byte{3, 7, 1, 2, 9, 0, 3, 11, 5}, 8))
	db := nsOpenDB(f)
	nsApply(f, db, meta.Op{Kind: meta.OpUpdate, Path: "/", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o1777}})
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := db.Begin(true)
		if err != nil {
			t.Fatal(err)
		}
		// Every input starts from the bare root: nothing is committed.
		defer tx.Rollback()
		src := &nsBytes{b: data}
		for i := 0; i < 16 && len(src.b) > 0; i++ {
			// bbolt has one write transaction at a time, so the fuzzer
			// cannot try the op for the cluster first: TestPermRandom
			// makes that comparison.
			if _, err := permStep(tx, permGenOp(src, int64(i+1), permMaxIno(tx)), nil); err != nil {
				t.Fatal(err)
			}
		}
	})
}

package store

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// nsBucketKeys returns the keys of a bucket as strings, each with an
// empty value (an index keeps nothing else).
func nsBucketKeys(tx *bbolt.Tx, name []byte) (map[string]bool, error) {
	b := bucketIn(tx, name)
	if !b.exists() {
		return nil, fmt.Errorf("bucket %s missing", name)
	}
	out := map[string]bool{}
	err := b.forEach(func(k, v []byte) error {
		if len(v) != 0 {
			return fmt.Errorf("bucket %s: key %x holds %x, want nothing", name, k, v)
		}
		out[string(k)] = true
		return nil
	})
	return out, err
}

// nsCheckIndexes verifies that links and owners hold exactly what a scan
// of dentries and inodes says they must. nsStep calls it after every op.
func nsCheckIndexes(tx *bbolt.Tx) error {
	wantLinks, wantOwners := map[string]bool{}, map[string]bool{}
	bucketIn(tx, bucketDentries).forEach(func(k, v []byte) error {
		wantLinks[string(linkKey(binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(k), string(k[8:])))] = true
		return nil
	})
	err := bucketIn(tx, bucketInodes).forEach(func(k, v []byte) error {
		in, err := decodeInode(binary.BigEndian.Uint64(k), v)
		wantOwners[string(ownerKey(in.Uid, in.Ino))] = true
		return err
	})
	if err != nil {
		return err
	}
	if err := nsCheckUsage(tx); err != nil {
		return err
	}
	for _, c := range []struct {
		bucket []byte
		want   map[string]bool
	}{{bucketLinks, wantLinks}, {bucketOwners, wantOwners}} {
		got, err := nsBucketKeys(tx, c.bucket)
		if err != nil {
			return err
		}
		if !maps.Equal(got, c.want) {
			return fmt.Errorf("bucket %s holds %x,\nthe scan says %x", c.bucket, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(c.want)))
		}
	}
	return nil
}

// A namespace written before the indexes existed gets them built when it
// is opened, equal to what the ops kept.
func TestIndexesRebuiltAtOpen(t *testing.T) {
	db := nsOpenDB(t)
	ops := []meta.Op{
		putOp("/a/b/f", 1), mkdirOp("/a/c"), {Kind: meta.OpSymlink, Path: "/a/s", Target: "b", Uid: 3},
		{Kind: meta.OpLink, Path: "/a/b/f", To: "/a/c/g"}, {Kind: meta.OpCreate, Path: "/h", Uid: 5, Gid: 6},
		{Kind: meta.OpUpdate, Path: "/a/b", Attr: &meta.SetAttr{Valid: meta.SetUid, Uid: 9}},
		{Kind: meta.OpDelete, Path: "/h", Orphan: true},
	}
	for i, op := range ops {
		op.Time = int64(i + 1)
		nsWant(t, nsApply(t, db, op), meta.CodeOK)
	}
	var links, owners map[string]bool
	usage := map[string]string{}
	db.View(func(tx *bbolt.Tx) error {
		links, _ = nsBucketKeys(tx, bucketLinks)
		owners, _ = nsBucketKeys(tx, bucketOwners)
		return bucketIn(tx, bucketUsage).forEach(func(k, v []byte) error {
			usage[string(k)] = string(v)
			return nil
		})
	})
	if len(usage) != 4 { // the root, /a, /a/b, /a/c
		t.Fatalf("%d usage records, want 4", len(usage))
	}
	if len(links) != 6 || len(owners) != 7 {
		t.Fatalf("%d links and %d owner keys, want 6 and 7", len(links), len(owners))
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketLinks); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketUsage); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketOwners)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := applyOp(tx, &meta.Op{Kind: meta.OpMkdir, Path: "/x"}, 0)
		return err
	})
	if err == nil {
		t.Fatal("ApplyOp without the index buckets succeeded")
	}
	f := nsLookupAt(t, db, 0, "/a/b/f")
	db.View(func(tx *bbolt.Tx) error {
		if _, err := lookupAt(tx, f.Ino, "/", &meta.Cred{Uid: 1}, 0); err == nil {
			t.Error("a permission check without the link index succeeded")
		}
		if _, _, err := ownedBy(tx, 0, 0, 1); err == nil {
			t.Error("Owned without the owner index succeeded")
		}
		return nil
	})
	if err := db.Update(initNamespace); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bbolt.Tx) error {
		gotLinks, _ := nsBucketKeys(tx, bucketLinks)
		gotOwners, _ := nsBucketKeys(tx, bucketOwners)
		if !maps.Equal(gotLinks, links) || !maps.Equal(gotOwners, owners) {
			t.Errorf("rebuilt links %q owners %q,\nwant %q %q", slices.Sorted(maps.Keys(gotLinks)), slices.Sorted(maps.Keys(gotOwners)), slices.Sorted(maps.Keys(links)), slices.Sorted(maps.Keys(owners)))
		}
		gotUsage := map[string]string{}
		bucketIn(tx, bucketUsage).forEach(func(k, v []byte) error {
			gotUsage[string(k)] = string(v)
			return nil
		})
		if !maps.Equal(gotUsage, usage) {
			t.Errorf("rebuilt usage %x, want %x", gotUsage, usage)
		}
		if err := nsCheckIndexes(tx); err != nil {
			t.Error(err)
		}
		return nil
	})
}

// nsOwnedBrute lists what Owned must return for uid, by walking the tree
// from the root, and adding the orphans, which no walk reaches. Of the
// paths of a file with several names, Owned gives the one whose last name
// sorts first by (directory inode, name), as the link index does.
func nsOwnedBrute(tx *bbolt.Tx, uid uint32) (map[uint64]string, error) {
	type name struct {
		dir  uint64
		base string
		path string
	}
	first := map[uint64]name{}
	var walk func(p string, in meta.Inode) error
	walk = func(p string, in meta.Inode) error {
		if in.Type != meta.TypeDir {
			return nil
		}
		ents, err := readDirPath(tx, p)
		for _, e := range ents {
			cp := path.Join(p, e.Name)
			if f, seen := first[e.Ino]; !seen || in.Ino < f.dir || in.Ino == f.dir && e.Name < f.base {
				first[e.Ino] = name{in.Ino, e.Name, cp}
			}
			if err := walk(cp, e.Inode); err != nil {
				return err
			}
		}
		return err
	}
	root, err := lookupPath(tx, "/")
	if err != nil {
		return nil, err
	}
	if err := walk("/", root); err != nil {
		return nil, err
	}
	out := map[uint64]string{}
	err = bucketIn(tx, bucketInodes).forEach(func(k, v []byte) error {
		in, err := decodeInode(binary.BigEndian.Uint64(k), v)
		switch {
		case err != nil || in.Uid != uid:
		case in.Ino == RootIno:
			out[in.Ino] = "/"
		default:
			out[in.Ino] = first[in.Ino].path // "" for an orphan
		}
		return err
	})
	return out, err
}

// ownedFill makes a tree of inodes of three owners, with hard links and
// orphans, and changes of owner.
func ownedFill(t *testing.T, db *bbolt.DB) {
	r := rand.New(rand.NewPCG(7, 7))
	names := []string{"a", "b", "c", "d"}
	for i := range 400 {
		p := ""
		for range 1 + r.IntN(3) {
			p += "/" + names[r.IntN(len(names))]
		}
		op := meta.Op{Time: int64(i + 1), Uid: uint32(r.IntN(3)), Path: p}
		switch r.IntN(6) {
		case 0:
			op.Kind = meta.OpMkdir
		case 1:
			op.Kind, op.To = meta.OpLink, "/"+names[r.IntN(len(names))]+fmt.Sprint(i)
		case 2:
			op.Kind, op.NotDir, op.Orphan = meta.OpDelete, true, true
		case 3:
			op.Kind, op.Attr = meta.OpUpdate, &meta.SetAttr{Valid: meta.SetUid, Uid: uint32(r.IntN(3))}
		default:
			op.Kind, op.Mode = meta.OpCreate, 0o644
		}
		nsApply(t, db, op)
	}
	nsCheckRefs(t, db)
}

func TestOwnedPaging(t *testing.T) {
	db := nsOpenDB(t)
	ownedFill(t, db)
	orphans, multi := 0, 0
	for uid := range uint32(4) {
		db.View(func(tx *bbolt.Tx) error {
			want, err := nsOwnedBrute(tx, uid)
			if err != nil {
				t.Fatal(err)
			}
			for ino, p := range want {
				in, _ := lookupAt(tx, ino, "/", nil, 0)
				if p == "" {
					orphans++
				}
				if in.Type == meta.TypeFile && in.Nlink > 1 {
					multi++
				}
			}
			for _, limit := range []int{1, 7, 1000} {
				got := map[uint64]string{}
				after, pages := uint64(0), 0
				for {
					list, next, err := ownedBy(tx, uid, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					for i, o := range list {
						if o.Inode.Ino <= after || i > 0 && o.Inode.Ino <= list[i-1].Inode.Ino || o.Inode.Uid != uid || o.Inode.Chunks != nil {
							t.Fatalf("uid %d after %d: out of order or not attrs: %+v", uid, after, list)
						}
						got[o.Inode.Ino] = o.Path
					}
					if next == 0 {
						break
					}
					if len(list) != limit || next != list[len(list)-1].Inode.Ino {
						t.Fatalf("uid %d limit %d: %d listed, next %d", uid, limit, len(list), next)
					}
					after = next
				}
				if !maps.Equal(got, want) {
					t.Fatalf("uid %d limit %d: Owned gives %v,\nthe tree walk %v", uid, limit, got, want)
				}
				if limit == 1 && pages < len(want) {
					t.Fatalf("uid %d: %d pages of 1 for %d inodes", uid, pages, len(want))
				}
			}
			return nil
		})
	}
	if orphans == 0 || multi == 0 {
		t.Errorf("%d orphans, %d files with several names: the ops no longer exercise Owned's paths", orphans, multi)
	}
	db.View(func(tx *bbolt.Tx) error {
		if _, _, err := ownedBy(tx, 0, 0, 0); meta.CodeOf(err) != meta.CodeInvalid {
			t.Errorf("limit 0: %v", err)
		}
		if list, next, err := ownedBy(tx, 0, ^uint64(0), 5); err != nil || len(list) != 0 || next != 0 {
			t.Errorf("after the last inode number: %v %d %v", list, next, err)
		}
		return nil
	})
}

// nsCheckUsage verifies that every directory's usage record holds what a
// walk of the tree below it adds up to, and that only directories have
// one.
func nsCheckUsage(tx *bbolt.Tx) error {
	kids := map[uint64][]uint64{}
	bucketIn(tx, bucketDentries).forEach(func(k, v []byte) error {
		dir := binary.BigEndian.Uint64(k)
		kids[dir] = append(kids[dir], binary.BigEndian.Uint64(v))
		return nil
	})
	inodes := map[uint64]meta.Inode{}
	err := bucketIn(tx, bucketInodes).forEach(func(k, v []byte) error {
		in, err := decodeInode(binary.BigEndian.Uint64(k), v)
		inodes[in.Ino] = in
		return err
	})
	if err != nil {
		return err
	}
	want := map[uint64]meta.Usage{}
	var sum func(dir uint64) meta.Usage
	sum = func(dir uint64) meta.Usage {
		var total meta.Usage
		for _, k := range kids[dir] {
			in := inodes[k]
			if in.Type != meta.TypeDir {
				total.Add(meta.Usage{Bytes: in.Size, Files: 1})
				continue
			}
			u := sum(k)
			u.Dirs++
			total.Add(u)
		}
		want[dir] = total
		return total
	}
	sum(RootIno)
	got := map[uint64]meta.Usage{}
	err = bucketIn(tx, bucketUsage).forEach(func(k, v []byte) error {
		u, err := decodeUsage(binary.BigEndian.Uint64(k), v)
		got[binary.BigEndian.Uint64(k)] = u
		return err
	})
	if err != nil {
		return err
	}
	for ino, in := range inodes {
		if in.Type == meta.TypeDir {
			if _, ok := got[ino]; !ok && want[ino] != (meta.Usage{}) {
				return fmt.Errorf("directory %d has no usage record; the walk says %+v", ino, want[ino])
			}
		}
	}
	for ino, u := range got {
		if in, ok := inodes[ino]; !ok || in.Type != meta.TypeDir {
			return fmt.Errorf("usage record of %d, which is not a directory (%+v)", ino, u)
		}
		if u != want[ino] {
			return fmt.Errorf("directory %d: usage %+v, the walk says %+v", ino, u, want[ino])
		}
	}
	return nil
}

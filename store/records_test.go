package store

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// rcSeed opens a store in a new directory holding a few files with
// chunks and a promise, and returns its directory, closed.
func rcSeed(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	d := crOpen(t, dir)
	crSeed(t, d)
	crApply(t, d, putOp("/d/f1", 11), meta.CodeOK)
	crApply(t, d, putOp("/d/f2", 12), meta.CodeOK)
	if err := d.SetPromised(meta.Ballot{Term: 4, Node: 2}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetRebuilt(); err != nil { // a member in sync
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// rcIno returns the inode number /d/name has in the store at dir.
func rcIno(t *testing.T, dir, name string) uint64 {
	t.Helper()
	d := crOpen(t, dir)
	defer d.Close()
	in, err := d.Reader().LookupAt(0, "/d/"+name, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return in.Ino
}

// flipLive flips byte i of a record's key (inKey) or stored value, in the
// file at path itself: what a disk that changes a byte does.
func flipLive(t *testing.T, path string, bucket, key []byte, inKey bool, i int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range recordOffsets(t, path, bucket, key, inKey, i) {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x01
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

// recordOffsets finds the file offset of byte i of a record by where
// bbolt's memory map shows it. A read copies a small bucket kept inside
// its entry in the root bucket (inline) when it is unaligned: then every
// place in the file that holds the record's bytes is returned, the stale
// copies in free pages with the live one.
func recordOffsets(t *testing.T, path string, bucket, key []byte, inKey bool, i int) []int64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var offs []int64
	err = db.View(func(tx *bbolt.Tx) error {
		k, v := tx.Bucket(bucket).Cursor().Seek(key)
		if !bytes.Equal(k, key) {
			t.Fatalf("no key %q in bucket %s", key, bucket)
		}
		p := &v[i]
		if inKey {
			p = &k[i]
		}
		if off := int64(uintptr(unsafe.Pointer(p)) - db.Info().Data); off >= 0 && off < int64(tx.Size()) {
			offs = append(offs, off)
			return nil
		}
		file, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rec := append(bytes.Clone(k), v...)
		if !inKey {
			i += len(k)
		}
		for j := 0; ; {
			n := bytes.Index(file[j:], rec)
			if n < 0 {
				break
			}
			offs = append(offs, int64(j+n+i))
			j += n + 1
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) == 0 {
		t.Fatalf("record %q of bucket %s not found in %s", key, bucket, path)
	}
	return offs
}

// openCorrupt opens the store at dir and wants it refused as corrupt,
// naming bucket.
func openCorrupt(t *testing.T, dir, bucket string) {
	t.Helper()
	d, err := Open(dir)
	if err == nil {
		d.Close()
		t.Fatalf("opened a store with a damaged record of bucket %s", bucket)
	}
	var ce *CorruptError
	if !errors.Is(err, meta.ErrCorrupt) || !errors.As(err, &ce) || ce.Bucket != bucket {
		t.Fatalf("open: %v, want a CorruptError in bucket %s", err, bucket)
	}
	t.Logf("open: %v", err)
}

// A byte changed on disk in a record's value, or in a dentry's key (a
// file renamed), is found when the store opens.
func TestFlippedByteFoundAtOpen(t *testing.T) {
	t.Run("inode value", func(t *testing.T) {
		dir := rcSeed(t)
		ino := rcIno(t, dir, "f2")
		flipLive(t, filepath.Join(dir, metaFile), bucketInodes, inoKey(ino), false, 20)
		openCorrupt(t, dir, "inodes")
	})
	t.Run("dentry key", func(t *testing.T) {
		dir := rcSeed(t)
		dino := crDirIno(t, dir)
		k := dentryKey(dino, "f1")
		flipLive(t, filepath.Join(dir, metaFile), bucketDentries, k, true, len(k)-1) // f1 -> f0
		openCorrupt(t, dir, "dentries")
	})
	t.Run("log entry", func(t *testing.T) {
		dir := rcSeed(t)
		dir2 := dir
		d := crOpen(t, dir2)
		if err := d.Append([]meta.Entry{{Index: 1, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: putOp("/x", 3)}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Apply(1); err != nil { // into meta.db's log bucket
			t.Fatal(err)
		}
		d.Close()
		flipLive(t, filepath.Join(dir, metaFile), bucketLog, key(1), false, 3)
		openCorrupt(t, dir, "log")
	})
	t.Run("promise", func(t *testing.T) {
		dir := rcSeed(t)
		flipLive(t, filepath.Join(dir, metaFile), bucketState, keyPromised, false, 2)
		openCorrupt(t, dir, "state")
	})
}

// crDirIno is the inode number of /d in the store at dir.
func crDirIno(t *testing.T, dir string) uint64 {
	t.Helper()
	d := crOpen(t, dir)
	defer d.Close()
	in, err := d.Reader().LookupAt(0, "/d", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return in.Ino
}

// rawUpdate changes meta.db of an open store behind the checksums' back,
// as a disk would.
func rawUpdate(t *testing.T, d *DB, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	if err := d.bolt.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// A damaged record met while serving fails the read with ErrCorrupt and
// stops the whole store, until Quarantine swaps meta.db for an empty one
// that remembers the promise and is rebuilding.
func TestCorruptWhileServing(t *testing.T) {
	dir := rcSeed(t)
	dino := crDirIno(t, dir)
	d := crOpen(t, dir)
	// f1 renamed to f0 by a changed key, the checksum left as it was.
	rawUpdate(t, d, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDentries)
		v := bytes.Clone(b.Get(dentryKey(dino, "f1")))
		if err := b.Delete(dentryKey(dino, "f1")); err != nil {
			return err
		}
		return b.Put(dentryKey(dino, "f0"), v)
	})
	select {
	case <-d.Corrupted():
		t.Fatal("corrupt before anything read the record")
	default:
	}
	if _, err := d.Reader().LookupAt(0, "/d/f2", nil, 0); err != nil {
		t.Fatalf("a sound record: %v", err)
	}
	// The name is not where a lookup looks for it any more, but the
	// record the disk changed is next to that place.
	_, err := d.Reader().LookupAt(0, "/d/f1", nil, 0)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Bucket != "dentries" || !strings.Contains(err.Error(), "f0") {
		t.Fatalf("lookup of the renamed file: %v, want a CorruptError naming the renamed entry, not ErrNotFound", err)
	}
	select {
	case <-d.Corrupted():
	default:
		t.Fatal("Corrupted not closed")
	}
	if _, err := d.State(); !errors.Is(err, meta.ErrCorrupt) {
		t.Errorf("State of a corrupt store: %v, want ErrCorrupt", err)
	}
	if _, err := d.Reader().LookupAt(0, "/d/f2", nil, 0); !errors.Is(err, meta.ErrCorrupt) {
		t.Errorf("a sound record of a corrupt store: %v, want ErrCorrupt", err)
	}

	q, err := d.Quarantine(time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if q.Moved != filepath.Join(dir, "meta.db.corrupt-1700000000000000000") || !q.PromiseKept {
		t.Errorf("quarantine: %+v", q)
	}
	if _, err := os.Stat(q.Moved); err != nil {
		t.Error(err)
	}
	if d.Corrupt() != nil {
		t.Error("still corrupt after the quarantine")
	}
	if _, err := d.Reader().LookupAt(0, "/d/f2", nil, 0); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("after the quarantine: %v, want an empty namespace", err)
	}
	st, err := d.State()
	if err != nil || st.LastIndex != 0 || !st.Rebuilding {
		t.Errorf("after the quarantine: %+v, %v; want an empty log, rebuilding", st, err)
	}
	if p, err := d.Promised(); err != nil || p != (meta.Ballot{Term: 4, Node: 2}) {
		t.Errorf("promise after the quarantine %v, %v", p, err)
	}
	if _, err := d.Verify(); err != nil {
		t.Error(err)
	}
}

// A record that vanishes breaks no checksum but its bucket's sum: the
// store is refused at open, and by Verify while it runs.
func TestLostRecordFound(t *testing.T) {
	dir := rcSeed(t)
	dino := crDirIno(t, dir)
	d := crOpen(t, dir)
	if _, err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, d, func(tx *bbolt.Tx) error { return tx.Bucket(bucketDentries).Delete(dentryKey(dino, "f1")) })
	if _, err := d.VerifyBucket("inodes"); err != nil {
		t.Errorf("a sound bucket: %v", err)
	}
	if _, err := d.VerifyBucket("dentries"); !errors.Is(err, meta.ErrCorrupt) || !strings.Contains(err.Error(), "records were lost") {
		t.Errorf("bucket with a lost record: %v, want ErrCorrupt", err)
	}
	d.Close()
	openCorrupt(t, dir, "dentries")

	// A whole bucket gone.
	dir = rcSeed(t)
	b, err := bbolt.Open(filepath.Join(dir, metaFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketInodes) }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	openCorrupt(t, dir, "inodes")
}

// Quarantine at start: a store that cannot open is moved aside and
// replaced by an empty one, rebuilding, with the old promise.
func TestQuarantineAtOpen(t *testing.T) {
	dir := rcSeed(t)
	ino := rcIno(t, dir, "f2")
	flipLive(t, filepath.Join(dir, metaFile), bucketInodes, inoKey(ino), false, 20)
	openCorrupt(t, dir, "inodes")
	q, err := Quarantine(dir, time.Unix(5, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !q.PromiseKept || q.Promise != (meta.Ballot{Term: 4, Node: 2}) {
		t.Errorf("quarantine %+v: want the promise kept", q)
	}
	d := crOpen(t, dir)
	if r, err := d.Rebuilding(); err != nil || !r {
		t.Errorf("rebuilding %v, %v after the quarantine", r, err)
	}
	if p, _ := d.Promised(); p != q.Promise {
		t.Errorf("promise %v, want %v", p, q.Promise)
	}
	if _, err := os.Stat(q.Moved); err != nil {
		t.Error(err)
	}

	// An unreadable promise is not carried over.
	dir = rcSeed(t)
	flipLive(t, filepath.Join(dir, metaFile), bucketState, keyPromised, false, 2)
	if q, err := Quarantine(dir, time.Unix(5, 0)); err != nil || q.PromiseKept {
		t.Errorf("quarantine with a damaged promise: %+v, %v", q, err)
	}
}

// A new store is not rebuilding, one Quarantine made is until told
// otherwise; installing a snapshot keeps the receiver's mark, whatever
// the sender's.
func TestRebuildingMark(t *testing.T) {
	src := crOpen(t, t.TempDir())
	crSeed(t, src)
	if r, err := src.Rebuilding(); err != nil || r {
		t.Fatalf("a new store: rebuilding %v, %v", r, err)
	}
	dir := t.TempDir()
	if _, err := Quarantine(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	dst := crOpen(t, dir)
	if r, err := dst.Rebuilding(); err != nil || !r {
		t.Fatalf("a store Quarantine made: rebuilding %v, %v", r, err)
	}
	for _, rebuilt := range []bool{false, true} {
		if rebuilt {
			if err := dst.SetRebuilt(); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(src.snapshotDir(), "s")
		if _, _, err := src.writeSnapshot(p); err != nil {
			t.Fatal(err)
		}
		st, err := dst.restore(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rebuilding == rebuilt {
			t.Errorf("after the install, rebuilding %v; the receiver's mark was %v", st.Rebuilding, !rebuilt)
		}
	}
}

// rcUnseal turns the store at dir into one written before checksums:
// every value without its checksum, no bucket sums, no format record.
func rcUnseal(t *testing.T, dir string) {
	t.Helper()
	b, err := bbolt.Open(filepath.Join(dir, metaFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *bbolt.Tx) error {
		for _, name := range bucketNames(tx) {
			bk := tx.Bucket(name)
			type kv struct{ k, v []byte }
			var all []kv
			bk.ForEach(func(k, v []byte) error {
				all = append(all, kv{bytes.Clone(k), bytes.Clone(v[:len(v)-sumLen])})
				return nil
			})
			for _, r := range all {
				if err := bk.Put(r.k, r.v); err != nil {
					return err
				}
			}
		}
		if err := tx.DeleteBucket(bucketSums); err != nil {
			return err
		}
		return tx.Bucket(bucketState).Delete(keyFormat)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store written before records had checksums opens: every record is
// sealed once and the format recorded. One that lost only its format
// record, or only its sums, is corrupt, not old.
func TestMigrateFromUnchecksummed(t *testing.T) {
	dir := rcSeed(t)
	d := crOpen(t, dir)
	want := crRefs(t, d)
	wantDigest, err := Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	rcUnseal(t, dir)
	d = crOpen(t, dir)
	if got, err := Digest(d); err != nil || got != wantDigest {
		t.Errorf("digest after the migration %s, %v; want %s", got, err, wantDigest)
	}
	if got := crRefs(t, d); len(got) != len(want) {
		t.Errorf("chunk references %v, want %v", got, want)
	}
	if _, err := d.Verify(); err != nil {
		t.Error(err)
	}
	if p, _ := d.Promised(); p != (meta.Ballot{Term: 4, Node: 2}) {
		t.Errorf("promise %v after the migration", p)
	}
	if r, _ := d.Rebuilding(); r {
		t.Error("a migrated store is rebuilding")
	}
	d.Close()

	for _, lose := range []string{"format", "sums", "both"} {
		dir := rcSeed(t)
		b, err := bbolt.Open(filepath.Join(dir, metaFile), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Update(func(tx *bbolt.Tx) error {
			if lose != "sums" {
				tx.Bucket(bucketState).Delete(keyFormat)
			}
			if lose != "format" {
				tx.DeleteBucket(bucketSums)
			}
			return nil
		})
		b.Close()
		if d, err := Open(dir); !errors.Is(err, meta.ErrCorrupt) {
			if d != nil {
				d.Close()
			}
			t.Errorf("a sealed store that lost its %s: %v, want ErrCorrupt", lose, err)
		}
	}
}

// A bit changed anywhere in meta.db is either harmless (free space, a
// stale page) or found: the store never opens with a namespace or log
// other than the one written, nor crashes.
func TestRandomFlipsNeverServeOtherData(t *testing.T) {
	dir := rcSeed(t)
	d := crOpen(t, dir)
	if err := d.Append([]meta.Entry{{Index: 1, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: putOp("/x", 3)}}); err != nil {
		t.Fatal(err)
	}
	want := rcEverything(t, d)
	d.Close()
	orig, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	r := rand.New(rand.NewPCG(1, 2))
	flips := 400
	if testing.Short() {
		flips = 50
	}
	found := 0
	for i := range flips {
		off := r.IntN(len(orig))
		if i%4 == 0 {
			off = r.IntN(2 * page) // bbolt's meta pages
		}
		b := bytes.Clone(orig)
		b[off] ^= 1 << r.IntN(8)
		if err := os.WriteFile(filepath.Join(dir, metaFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := Open(dir)
		if errors.Is(err, meta.ErrCorrupt) {
			found++
			continue
		}
		if err != nil {
			t.Fatalf("byte %d (page %d) changed: open failed, but not as corrupt: %v", off, off/page, err)
		}
		if got := rcEverything(t, d); got != want {
			t.Errorf("byte %d (page %d) changed: the store opened with other records:\n%s\nwant\n%s", off, off/page, got, want)
		}
		d.Close()
	}
	t.Logf("%d of %d flips found at open, the rest harmless", found, flips)
}

// rcEverything lists every record of every bucket but sums, as payloads.
func rcEverything(t *testing.T, d *DB) string {
	t.Helper()
	var sb strings.Builder
	err := d.view(func(tx *bbolt.Tx) error {
		for _, name := range bucketNames(tx) {
			if bytes.Equal(name, bucketSums) {
				continue
			}
			err := bucketIn(tx, name).forEach(func(k, v []byte) error {
				sb.WriteString(string(name) + " " + string(k) + " " + string(v) + "\n")
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// Only records.go touches bbolt's buckets, cursors and their records:
// every other file goes through its checksummed bucket type, so a read
// that skips verification, or a write without a checksum, cannot creep
// in by accident.
func TestBucketAccessOnlyInRecords(t *testing.T) {
	raw := map[string]bool{"Bucket": true, "CreateBucket": true, "CreateBucketIfNotExists": true,
		"DeleteBucket": true, "Cursor": true, "ForEach": true, "raw": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "records.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && raw[sel.Sel.Name] {
				t.Errorf("%s: .%s: reach bbolt's buckets through records.go's bucket type", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}

// A listing meets every record of a directory, and verifies each.
func TestListingVerifies(t *testing.T) {
	dir := rcSeed(t)
	dino := crDirIno(t, dir)
	d := crOpen(t, dir)
	rawUpdate(t, d, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDentries)
		v := bytes.Clone(b.Get(dentryKey(dino, "f2")))
		v[0] ^= 0x80
		return b.Put(dentryKey(dino, "f2"), v)
	})
	_, err := d.ReadDirAt(0, "/d", nil)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Bucket != "dentries" {
		t.Fatalf("listing /d: %v, want a CorruptError", err)
	}
}

// seek answers as get does, in a bucket of several pages, for keys
// present, missing and past the last, right after puts and deletes in
// the same transaction too, in a bucket that answers misses (dentries)
// and in one that does not.
func TestSeekAnswersAsGet(t *testing.T) {
	b, err := bbolt.Open(filepath.Join(t.TempDir(), "seek.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := rand.New(rand.NewPCG(1, 2))
	key := func(i int) []byte { return inoKey(uint64(i)) }
	for _, name := range [][]byte{bucketDentries, bucketInodes} {
		err := b.Update(func(tx *bbolt.Tx) error {
			for _, n := range [][]byte{name, bucketSums} {
				if _, err := createBucket(tx, n); err != nil {
					return err
				}
			}
			bk := bucketIn(tx, name)
			for i := 0; i < 3000; i += 2 { // even keys: many pages
				if err := bk.put(key(i), bytes.Repeat([]byte{byte(i)}, 1+i%40)); err != nil {
					return err
				}
			}
			for round := range 2000 {
				k := key(r.IntN(3010) - 5)
				if round%3 == 0 {
					k = key(r.IntN(3010))
					if r.IntN(2) == 0 {
						err = bk.put(k, []byte{byte(round)})
					} else {
						err = bk.del(k)
					}
					if err != nil {
						return err
					}
				}
				got, errSeek := bk.seek(k)
				want, errGet := bk.get(k)
				if !bytes.Equal(got, want) || (got == nil) != (want == nil) || (errSeek == nil) != (errGet == nil) {
					t.Fatalf("bucket %s, key %x: seek gave %x (%v), get %x (%v)", name, k, got, errSeek, want, errGet)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// The applies of one transaction share their buckets and gather their
// record counts for it (applying): after batches of puts, renames, copies
// and deletes, with request records made and expiring among them, every
// bucket holds as many records as its sum says, and each op's result,
// the tree and the counts are those of a store that applied each op
// with buckets of its own, tallying each record at once.
func TestApplyKeepsRecordCounts(t *testing.T) {
	gathered, one := crOpen(t, t.TempDir()), crOpen(t, t.TempDir())
	var index uint64
	clock := int64(requestTTL)
	apply := func(ops []meta.Op) {
		t.Helper()
		es := make([]meta.Entry, len(ops))
		for i := range ops {
			index++
			clock += int64(time.Second)
			ops[i].Clock, ops[i].ReqID = clock, fmt.Sprintf("%016x-%d", clock, index)
			es[i] = meta.Entry{Index: index, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: ops[i]}
		}
		if err := gathered.Append(es); err != nil {
			t.Fatal(err)
		}
		_, rs, err := gathered.Apply(index)
		if err != nil {
			t.Fatal(err)
		}
		err = one.update(func(tx *bbolt.Tx) error { // the same ops, each on its own
			for i := range ops {
				want, err := applyOnce(tx, &ops[i], ops[i].Clock)
				if err != nil {
					return err
				}
				if rs[i].Code != meta.CodeOK || !reflect.DeepEqual(rs[i], want) {
					t.Errorf("%v %s: %+v, applied alone %+v", ops[i].Kind, ops[i].Path, rs[i], want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for round := range 6 {
		var ops []meta.Op
		for i := range 12 {
			op := putOp(fmt.Sprintf("/r%d/f%d", round, i), int64(i+1))
			op.Parents, op.WantDirs = true, i%2 == 0
			ops = append(ops, op)
		}
		if round > 0 {
			prev := round - 1
			ops = append(ops, renameOp(fmt.Sprintf("/r%d/f0", prev), fmt.Sprintf("/r%d/g0", round)),
				copyOp(fmt.Sprintf("/r%d/f1", prev), fmt.Sprintf("/r%d/g1", round)),
				deleteOp(fmt.Sprintf("/r%d/f2", prev)))
		}
		if round == 3 {
			clock += int64(requestTTL) // the records so far expire as the next ops apply
		}
		apply(ops)
	}
	if _, err := gathered.Verify(); err != nil {
		t.Fatal(err)
	}
	sums := func(d *DB) map[string]uint64 {
		out := map[string]uint64{}
		err := d.bolt.View(func(tx *bbolt.Tx) error {
			s := bucketIn(tx, bucketSums)
			for _, name := range bucketNames(tx) {
				n, err := s.count(name)
				if err != nil {
					return err
				}
				out[string(name)] = n
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	trees := make([]map[string]nsNode, 2)
	for i, d := range []*DB{gathered, one} {
		err := d.bolt.View(func(tx *bbolt.Tx) (err error) {
			trees[i], err = nsDump(tx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(trees[0], trees[1]) || len(trees[0]) < 60 {
		t.Errorf("the tree applied in batches differs from the one applied op by op:\n%v\n%v", trees[0], trees[1])
	}
	got, want := sums(gathered), sums(one)
	for _, name := range []string{"inodes", "dentries", "links", "owners", "requests", "reqtimes", "usage"} {
		if got[name] != want[name] || got[name] == 0 {
			t.Errorf("bucket %s: %d records counted, %d by a tally of each (0: the bucket was not written)", name, got[name], want[name])
		}
	}
	if want["requests"] >= uint64(index) {
		t.Errorf("%d request records of %d: none expired, so pruning was not exercised", want["requests"], index)
	}
}

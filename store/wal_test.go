package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// walEntries makes entries lo..hi of ballot b, each a put of its own file.
func walEntries(lo, hi uint64, b meta.Ballot) []meta.Entry {
	var es []meta.Entry
	for i := lo; i <= hi; i++ {
		es = append(es, meta.Entry{Index: i, Ballot: b, Op: putOp(fmt.Sprintf("/f%d-t%d", i, b.Term), int64(i))})
	}
	return es
}

// wantLog checks that d's log runs from its snapshot point through the
// entries of want (the whole log after it), and that applied is as given.
func wantLog(t *testing.T, d *DB, applied uint64, want []meta.Entry) {
	t.Helper()
	s, err := d.State()
	if err != nil {
		t.Fatal(err)
	}
	last := want[len(want)-1]
	if s.Applied != applied || s.LastIndex != last.Index || s.LastBallot != last.Ballot {
		t.Fatalf("state %+v, want applied %d, last %d of ballot %s", s, applied, last.Index, last.Ballot)
	}
	got, err := d.Entries(want[0].Index, last.Index+5, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %d..%d: got %d entries, want %d, or they differ", want[0].Index, last.Index, len(got), len(want))
	}
	for _, e := range want {
		b, err := d.BallotAt(e.Index)
		if err != nil || b != e.Ballot {
			t.Fatalf("ballot at %d: %s, %v; want %s", e.Index, b, err, e.Ballot)
		}
	}
}

// editMetaDB changes the meta.db of the closed store at dir with fn, in
// one transaction, as another version of the store would have left it.
func editMetaDB(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	b, err := bolt.Open(filepath.Join(dir, metaFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func walFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, walDirName, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// The entries after the applied index are kept in the log's files: what
// was appended, replaced and applied reads back the same after a restart,
// and an apply moves entries into meta.db.
func TestLogAfterRestart(t *testing.T) {
	dir := t.TempDir()
	d := crOpen(t, dir)
	b1, b2 := meta.Ballot{Term: 1, Node: 1}, meta.Ballot{Term: 2, Node: 2}
	if err := d.Append(walEntries(1, 10, b1)); err != nil {
		t.Fatal(err)
	}
	if err := d.Append(walEntries(11, 14, b1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Apply(4); err != nil {
		t.Fatal(err)
	}
	// A new primary replaces the unapplied suffix from 8 on.
	if err := d.Append(walEntries(8, 12, b2)); err != nil {
		t.Fatal(err)
	}
	want := append(walEntries(1, 7, b1), walEntries(8, 12, b2)...)
	wantLog(t, d, 4, want)
	if err := d.Append(walEntries(3, 3, b2)); err == nil {
		t.Fatal("an append replaced an applied entry")
	}
	if err := d.Append(walEntries(14, 15, b2)); err == nil {
		t.Fatal("an append left a gap")
	}
	if _, _, err := d.Apply(13); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("apply past the log's end: %v, want ErrNotFound", err)
	}
	wantLog(t, d, 4, want) // the refusals changed nothing
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = crOpen(t, dir)
	wantLog(t, d, 4, want)
	if _, _, err := d.Apply(9); err != nil {
		t.Fatal(err)
	}
	wantLog(t, d, 9, want)
	// Applied entries are in meta.db: a compaction finds them there.
	if err := d.Compact(6); err != nil {
		t.Fatal(err)
	}
	wantLog(t, d, 9, want[6:])
	if _, err := d.Entries(6, 9, 1<<30); !errors.Is(err, meta.ErrCompacted) {
		t.Fatalf("entries from a compacted index: %v, want ErrCompacted", err)
	}
	// Entries stops at the byte budget, across meta.db and the files.
	got, err := d.Entries(7, 12, 1)
	if err != nil || len(got) != 1 || got[0].Index != 7 {
		t.Fatalf("entries 7..12 within 1 byte: %d entries, %v; want entry 7 alone", len(got), err)
	}
	got, err = d.Entries(10, 12, 1)
	if err != nil || len(got) != 1 || got[0].Index != 10 {
		t.Fatalf("entries 10..12 within 1 byte: %d entries, %v; want entry 10 alone", len(got), err)
	}
}

// A record cut short by a crash (never acknowledged) is dropped when the
// store opens, whether the file ends inside it or shows zeros past it;
// appends go on from the entry before it.
func TestLogTornRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(data []byte, cut int) []byte
	}{
		{"cut short", func(data []byte, cut int) []byte { return data[:cut+len(data[cut:])/2] }},
		{"header only", func(data []byte, cut int) []byte { return data[:cut+5] }},
		{"zeros past the header", func(data []byte, cut int) []byte {
			out := append([]byte(nil), data...)
			clear(out[cut+walHeader:])
			return out
		}},
		{"zeros instead", func(data []byte, cut int) []byte {
			out := append([]byte(nil), data...)
			clear(out[cut:])
			return out
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := crOpen(t, dir)
			b := meta.Ballot{Term: 1, Node: 1}
			if err := d.Append(walEntries(1, 5, b)); err != nil {
				t.Fatal(err)
			}
			files := walFiles(t, dir)
			if len(files) != 1 {
				t.Fatalf("log files %v, want one", files)
			}
			fi, err := os.Stat(files[0])
			if err != nil {
				t.Fatal(err)
			}
			cut := int(fi.Size())
			if err := d.Append(walEntries(6, 9, b)); err != nil {
				t.Fatal(err)
			}
			d.Close()
			data, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(files[0], tc.tear(data, cut), 0o600); err != nil {
				t.Fatal(err)
			}

			d = crOpen(t, dir)
			wantLog(t, d, 0, walEntries(1, 5, b))
			if err := d.Append(walEntries(6, 7, b)); err != nil {
				t.Fatal(err)
			}
			d.Close()
			d = crOpen(t, dir)
			wantLog(t, d, 0, walEntries(1, 7, b))
			if files := walFiles(t, dir); len(files) != 1 {
				t.Fatalf("log files %v after an append that started a new file, want one", files)
			}
		})
	}
}

// A record damaged with records after it is not a torn write: the store
// refuses to open as for a damaged meta.db, and Quarantine leaves it
// empty and rebuilding, without the damaged log.
func TestLogDamageFoundAtOpen(t *testing.T) {
	dir := t.TempDir()
	d := crOpen(t, dir)
	b := meta.Ballot{Term: 1, Node: 1}
	for i := uint64(1); i <= 9; i += 3 {
		if err := d.Append(walEntries(i, i+2, b)); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	files := walFiles(t, dir)
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0x10 // inside the first or second of three records
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir)
	var ce *CorruptError
	if !errors.Is(err, meta.ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("open with a damaged log record: %v, want a CorruptError", err)
	}
	t.Logf("open: %v", err)
	if _, err := Quarantine(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	d = crOpen(t, dir)
	s, err := d.State()
	if err != nil || s.LastIndex != 0 || !s.Rebuilding {
		t.Fatalf("state after quarantine %+v, %v: want an empty log, rebuilding", s, err)
	}
	if files := walFiles(t, dir); len(files) != 0 {
		t.Fatalf("log files %v of the quarantined meta.db are still there", files)
	}
	if moved, _ := filepath.Glob(filepath.Join(dir, walDirName+".corrupt-*", "*.log")); len(moved) != 1 {
		t.Fatalf("log files moved aside: %v, want the damaged one", moved)
	}
}

// A store written before the log had files of its own kept its unapplied
// entries in meta.db: opening it moves them to the files.
func TestLogMovesOutOfMetaDB(t *testing.T) {
	dir := t.TempDir()
	d := crOpen(t, dir)
	b := meta.Ballot{Term: 3, Node: 1}
	if err := d.Append(walEntries(1, 6, b)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Apply(2); err != nil {
		t.Fatal(err)
	}
	d.Close()
	// Make it as such a store was: entries 3..6 in the log bucket, no
	// log files, no log ID, record format 1.
	if err := os.RemoveAll(filepath.Join(dir, walDirName)); err != nil {
		t.Fatal(err)
	}
	editMetaDB(t, dir, func(tx *bolt.Tx) error {
		lg := bucketIn(tx, bucketLog)
		for _, e := range walEntries(3, 6, b) {
			if err := putMsgpack(lg, key(e.Index), &e); err != nil {
				return err
			}
		}
		if err := bucketIn(tx, bucketState).put(keyFormat, key(1)); err != nil {
			return err
		}
		return bucketIn(tx, bucketState).del(keyWAL)
	})

	d = crOpen(t, dir)
	wantLog(t, d, 2, walEntries(1, 6, b))
	if files := walFiles(t, dir); len(files) != 1 {
		t.Fatalf("log files %v, want the one the entries moved to", files)
	}
	err := d.view(func(tx *bolt.Tx) error {
		k, _, err := bucketIn(tx, bucketLog).cursor().last()
		if err == nil && u64(k) != 2 {
			err = fmt.Errorf("meta.db's log ends at %d, want the applied entry 2", u64(k))
		}
		if f, ferr := bucketIn(tx, bucketState).get(keyFormat); err == nil && (ferr != nil || u64(f) != formatVersion) {
			err = fmt.Errorf("record format %d (%v) after opening, want %d", u64(f), ferr, formatVersion)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = crOpen(t, dir)
	wantLog(t, d, 2, walEntries(1, 6, b))
}

// Past walRotateBytes an append starts a new file with the unapplied
// entries and removes the old one.
func TestLogStartsNewFiles(t *testing.T) {
	defer func(n int64) { walRotateBytes = n }(walRotateBytes)
	walRotateBytes = 4 << 10
	dir := t.TempDir()
	d := crOpen(t, dir)
	b := meta.Ballot{Term: 1, Node: 1}
	var seen []string
	for i := uint64(1); i <= 200; i += 4 {
		if err := d.Append(walEntries(i, i+3, b)); err != nil {
			t.Fatal(err)
		}
		if i > 20 {
			if _, _, err := d.Apply(i - 10); err != nil {
				t.Fatal(err)
			}
		}
		files := walFiles(t, dir)
		if len(files) != 1 {
			t.Fatalf("log files %v, want one", files)
		}
		if len(seen) == 0 || seen[len(seen)-1] != files[0] {
			seen = append(seen, files[0])
		}
	}
	if len(seen) < 5 {
		t.Fatalf("the log went through %d files, want one every 4 KiB or so", len(seen))
	}
	if u := d.Usage().Meta; u < 4<<10 {
		t.Fatalf("usage counts %d bytes of metadata, want the log file's too", u)
	}
	d.Close()
	d = crOpen(t, dir)
	wantLog(t, d, 187, walEntries(1, 200, b))
}

// A log write the disk refuses fails as a disk failure and leaves the log
// as it was; once the disk takes writes again, appends go on in a new file.
func TestLogWriteRefused(t *testing.T) {
	dir := t.TempDir()
	fsys := NewFailFS(OSFS{})
	d, err := OpenOn(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := meta.Ballot{Term: 1, Node: 1}
	if err := d.Append(walEntries(1, 3, b)); err != nil {
		t.Fatal(err)
	}
	fsys.Fail(syscall.EIO)
	if err := d.Append(walEntries(4, 5, b)); !errors.Is(err, meta.ErrDiskFailed) {
		t.Fatalf("append on a failing disk: %v, want ErrDiskFailed", err)
	}
	fsys.Fail(nil)
	wantLog(t, d, 0, walEntries(1, 3, b))
	if err := d.Append(walEntries(4, 6, b)); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = crOpen(t, dir)
	wantLog(t, d, 0, walEntries(1, 6, b))
}

// Appends, applies and reads at once (as a primary pipelines them), with
// new files started meanwhile: a reader always sees a contiguous log
// whose entries are the ones written.
func TestLogConcurrentUse(t *testing.T) {
	defer func(n int64) { walRotateBytes = n }(walRotateBytes)
	walRotateBytes = 16 << 10 // new files while readers read
	d := crOpen(t, t.TempDir())
	b := meta.Ballot{Term: 1, Node: 1}
	const batches, per = 200, 5
	var wg sync.WaitGroup
	appended := make(chan uint64, batches)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(appended)
		for i := uint64(1); i <= batches*per; i += per {
			if err := d.Append(walEntries(i, i+per-1, b)); err != nil {
				t.Error(err)
				return
			}
			appended <- i + per - 1
		}
	}()
	go func() {
		defer wg.Done()
		for last := range appended {
			if _, _, err := d.Apply(last - per/2); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	stop := make(chan struct{})
	readers := sync.WaitGroup{}
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := d.State()
				if err != nil {
					t.Error(err)
					return
				}
				if s.LastIndex == 0 {
					continue
				}
				es, err := d.Entries(1, s.LastIndex, 1<<30)
				if err != nil {
					t.Error(err)
					return
				}
				if uint64(len(es)) != s.LastIndex || !reflect.DeepEqual(es, walEntries(1, s.LastIndex, b)) {
					t.Errorf("log read at %+v: %d entries, or not the ones written", s, len(es))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	wantLog(t, d, batches*per-per/2, walEntries(1, batches*per, b))
}

// A log file of any content either opens, giving a contiguous log whose
// entries are the ones its records hold, or is refused as corrupt; it
// never panics, and a record cut short at the end is always dropped.
func FuzzLogFile(f *testing.F) {
	b := meta.Ballot{Term: 2, Node: 1}
	rec := func(first uint64, es []meta.Entry) []byte {
		we, err := encodeEntries(es)
		if err != nil {
			f.Fatal(err)
		}
		return encodeRecord(first, we)
	}
	one, two := rec(1, walEntries(1, 3, b)), rec(3, walEntries(3, 4, b))
	f.Add(append(one, two...))
	f.Add(append(one, two[:len(two)-1]...))
	f.Add(append(append([]byte(nil), one...), make([]byte, 30)...))
	f.Add(rec(2, walEntries(2, 2, b)))       // a gap after an empty log
	f.Add(rec(1, nil))                       // a file's first record, nothing unapplied
	f.Add(append(rec(1, nil), one[:9]...))   // a header cut short
	f.Add([]byte{0, 0, 0, 4, 1, 2, 3, 4, 0}) // a record too short to be one
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		const id = 7
		if err := os.MkdirAll(filepath.Join(dir, walDirName), 0o755); err != nil {
			t.Fatal(err)
		}
		w := &wal{dir: filepath.Join(dir, walDirName), id: id}
		if err := os.WriteFile(w.name(1), data, 0o600); err != nil {
			t.Fatal(err)
		}
		var bytes atomic.Int64
		w, err := openWAL(OSFS{}, dir, id, 0, nil, &bytes)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("open a log file of %d bytes: %v, want a CorruptError", len(data), err)
			}
			return
		}
		for i, e := range w.tail {
			if e.Index != uint64(i)+1 {
				t.Fatalf("entry %d of the log has index %d", i+1, e.Index)
			}
		}
		if bytes.Load() != int64(len(data)) {
			t.Fatalf("usage %d bytes for a file of %d", bytes.Load(), len(data))
		}
	})
}

// After a crash at any point, the log's files give back every entry an
// append returned for, as it stood: a simulated disk (MemFS) keeps only
// what was synced, file content and directory entries alike, through
// appends, replacements, applies and new files.
func TestLogCrashKeepsWhatWasAcknowledged(t *testing.T) {
	defer func(n int64) { walRotateBytes = n }(walRotateBytes)
	walRotateBytes = 2 << 10
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { logCrash(t, seed) })
	}
}

func logCrash(t *testing.T, seed uint64) {
	fsys := NewMemFS()
	const dir, id = "/data", 9
	var usage atomic.Int64
	w, err := openWAL(fsys, dir, id, 0, nil, &usage)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	var log []meta.Entry // every entry, from index 1
	var applied uint64
	ballot := meta.Ballot{Term: 1, Node: 1}
	for step := range 400 {
		last := uint64(len(log))
		switch r := rng.IntN(10); {
		case r < 6 || last == applied:
			es := walEntries(last+1, last+1+uint64(rng.IntN(4)), ballot)
			if err := w.append(es); err != nil {
				t.Fatal(err)
			}
			log = append(log, es...)
		case r < 8:
			// A new primary replaces the unapplied suffix.
			ballot.Term++
			from := applied + 1 + uint64(rng.IntN(int(last-applied)))
			es := walEntries(from, from+uint64(rng.IntN(3)), ballot)
			if err := w.append(es); err != nil {
				t.Fatal(err)
			}
			log = append(log[:from-1], es...)
		default:
			upto := applied + 1 + uint64(rng.IntN(int(last-applied)))
			if _, err := w.take(applied, upto); err != nil {
				t.Fatal(err)
			}
			w.setApplied(upto, true) // meta.db would have them now
			applied = upto
		}
		var after atomic.Int64
		got, err := openWAL(fsys.CrashClone(), dir, id, applied, nil, &after)
		if err != nil {
			t.Fatalf("step %d: open after a crash: %v", step, err)
		}
		var es []meta.Entry
		for _, e := range got.tail {
			es = append(es, e.Entry)
		}
		if want := log[applied:]; !reflect.DeepEqual(es, want) && len(es)+len(want) > 0 {
			t.Fatalf("step %d: after a crash the log holds %d entries after %d, want %d, or they differ", step, len(es), applied, len(want))
		}
	}
	if usage.Load() <= 0 || usage.Load() > 2*walRotateBytes {
		t.Fatalf("the log's files take %d bytes, want some, and no more than two files' worth", usage.Load())
	}
}

// A meta.db of a format this version does not know (a later version's)
// is refused, saying so, and left as it was.
func TestLaterFormatRefused(t *testing.T) {
	dir := t.TempDir()
	d := crOpen(t, dir)
	d.Close()
	editMetaDB(t, dir, func(tx *bolt.Tx) error { return bucketIn(tx, bucketState).put(keyFormat, key(formatVersion+1)) })
	p := filepath.Join(dir, metaFile)
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "run the version that wrote it") {
		t.Fatalf("open a meta.db of format %d: %v, want a refusal naming the format", formatVersion+1, err)
	}
	if after, err := os.ReadFile(p); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the refused meta.db changed (%v)", err)
	}
}

// A meta.db of format 2 (chunk files named by their hash alone) opens,
// keeps its namespace, and is marked format 3: a version from before
// checksums were kept in chunk file names then refuses it, where it would
// miss every chunk renamed since.
func TestFormat2Upgraded(t *testing.T) {
	dir := t.TempDir()
	d := crOpen(t, dir)
	b := meta.Ballot{Term: 3, Node: 1}
	if err := d.Append(walEntries(1, 4, b)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Apply(4); err != nil {
		t.Fatal(err)
	}
	digest, err := Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	editMetaDB(t, dir, func(tx *bolt.Tx) error { return bucketIn(tx, bucketState).put(keyFormat, key(2)) })

	d = crOpen(t, dir)
	defer d.Close()
	if got, err := Digest(d); err != nil || got != digest {
		t.Errorf("namespace after the upgrade: %s (%v), want %s as before", got, err, digest)
	}
	err = d.view(func(tx *bolt.Tx) error {
		f, err := bucketIn(tx, bucketState).get(keyFormat)
		if err == nil && u64(f) != 3 {
			err = fmt.Errorf("record format %d after opening, want 3", u64(f))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A meta.db of an earlier format that lost its bucket of sums is corrupt,
// as one of the current format is: it is quarantined and rebuilt, not
// refused as a later version's.
func TestEarlierFormatWithoutSumsIsCorrupt(t *testing.T) {
	for _, format := range []uint64{1, 2} {
		dir := t.TempDir()
		crOpen(t, dir).Close()
		editMetaDB(t, dir, func(tx *bolt.Tx) error {
			if err := bucketIn(tx, bucketState).put(keyFormat, key(format)); err != nil {
				return err
			}
			return tx.DeleteBucket(bucketSums)
		})
		if _, err := Open(dir); !errors.Is(err, meta.ErrCorrupt) {
			t.Errorf("open a format-%d meta.db without bucket sums: %v, want ErrCorrupt", format, err)
		}
	}
}

// A snapshot installed over a store's state brings the sender's log
// through its applied index and no log files: neither the sender's
// unapplied entries nor the receiver's are in the log after it, and the
// receiver's old files are gone once it opens again.
func TestLogOfAnInstalledSnapshot(t *testing.T) {
	srcDir, dstDir := t.TempDir(), t.TempDir()
	src, dst := crOpen(t, srcDir), crOpen(t, dstDir)
	bs, bd := meta.Ballot{Term: 3, Node: 1}, meta.Ballot{Term: 2, Node: 2}
	if err := src.Append(walEntries(1, 5, bs)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Apply(3); err != nil {
		t.Fatal(err)
	}
	if err := dst.Append(walEntries(1, 8, bd)); err != nil {
		t.Fatal(err)
	}
	old := walFiles(t, dstDir)

	name, sum, err := src.CutSnapshot(time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	in, err := dst.ReceiveSnapshot(time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Discard()
	data, _, err := src.ReadSnapshot(name, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := in.Verify(sum[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Install(); err != nil {
		t.Fatal(err)
	}
	wantLog(t, dst, 3, walEntries(1, 3, bs))
	if got := walFiles(t, dstDir); len(got) != 0 {
		t.Fatalf("log files after the install: %v, want none (the old ones were %v)", got, old)
	}
	if src.wal.id == dst.wal.id {
		t.Fatalf("the installed meta.db kept the sender's log ID %x", src.wal.id)
	}
	if err := dst.Append(walEntries(4, 6, bs)); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	dst = crOpen(t, dstDir)
	wantLog(t, dst, 3, walEntries(1, 6, bs))
}

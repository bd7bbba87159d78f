package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/meta"
)

// path is where chunk h's file is: under the name the index knows, or,
// for a chunk the index lacks, under its hash alone.
func (s *ChunkStore) path(h meta.Hash) string {
	p, _, _ := s.file(h)
	return p
}

func csOpen(t *testing.T, dir string) *ChunkStore {
	t.Helper()
	s, err := OpenChunkStore(OSFS{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func csChunk(i int) (meta.Hash, []byte) {
	b := []byte(fmt.Sprintf("chunk %03d", i))
	return meta.HashOf(b), b
}

func csPut(t *testing.T, s *ChunkStore, i int) meta.Hash {
	t.Helper()
	h, b := csChunk(i)
	if err := s.Put(h, b); err != nil {
		t.Fatalf("put chunk %d: %v", i, err)
	}
	return h
}

// csFiles lists every file under dir, relative to it.
func csFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChunkStorePutGet(t *testing.T) {
	s := csOpen(t, t.TempDir())
	h, b := csChunk(1)
	if err := s.Put(h, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(h); err != nil || string(got) != string(b) {
		t.Fatalf("get: %q, %v", got, err)
	}
	if n, ok := s.Size(h); !s.Has(h) || !ok || n != int64(len(b)) {
		t.Errorf("has %v, size %d %v; want present, %d", s.Has(h), n, ok, len(b))
	}
	if s.Count() != 1 || s.Used() != int64(len(b)) {
		t.Errorf("count %d used %d, want 1 and %d", s.Count(), s.Used(), len(b))
	}
	if err := s.Put(meta.HashOf([]byte("other")), b); !errors.Is(err, meta.ErrCorrupt) {
		t.Errorf("put under the wrong hash: %v, want ErrCorrupt", err)
	}
	missing, _ := csChunk(2)
	if _, err := s.Get(missing); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("get missing: %v, want ErrNotFound", err)
	}
	if _, ok := s.Size(missing); ok || s.Has(missing) {
		t.Error("missing chunk reported present")
	}
	if err := s.Remove(h); err != nil || s.Has(h) || s.Count() != 0 || s.Used() != 0 {
		t.Errorf("after remove: %v, has %v, count %d, used %d", err, s.Has(h), s.Count(), s.Used())
	}
	if err := s.Remove(h); err != nil {
		t.Errorf("removing an absent chunk: %v", err)
	}
}

func TestChunkStoreCapacity(t *testing.T) {
	dir := t.TempDir()
	s := csOpen(t, dir)
	h1, b1 := csChunk(1) // "chunk 001": 9 bytes
	s.SetLimits(Limits{Capacity: 10})
	if s.Limits().Capacity != 10 {
		t.Fatalf("capacity %d, want 10", s.Limits().Capacity)
	}
	if err := s.Put(h1, b1); err != nil {
		t.Fatal(err)
	}
	h2, b2 := csChunk(2)
	err := s.Put(h2, b2)
	if !errors.Is(err, meta.ErrNoSpace) || !strings.Contains(err.Error(), "9 of 10 bytes used") {
		t.Fatalf("put past capacity: %v, want ErrNoSpace saying 9 of 10 bytes used", err)
	}
	if s.Has(h2) || s.Used() != 9 || s.Count() != 1 {
		t.Errorf("refused chunk counted: has %v, used %d, count %d", s.Has(h2), s.Used(), s.Count())
	}
	if files := csFiles(t, dir); len(files) != 1 {
		t.Errorf("files on disk after a refused put: %v, want only chunk 1", files)
	}
	if err := s.Put(h1, b1); err != nil {
		t.Errorf("re-put of a present chunk when full: %v", err)
	}
	s.SetLimits(Limits{Capacity: 0})
	if err := s.Put(h2, b2); err != nil {
		t.Errorf("put with unlimited capacity: %v", err)
	}
}

// TestChunkStoreCapacityConcurrent checks that concurrent new chunks never
// take the store past its capacity together.
func TestChunkStoreCapacityConcurrent(t *testing.T) {
	s := csOpen(t, t.TempDir())
	s.SetLimits(Limits{Capacity: 5 * 9}) // five 9-byte chunks
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			h, b := csChunk(i)
			errs[i] = s.Put(h, b)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, meta.ErrNoSpace):
			t.Errorf("put: %v", err)
		}
	}
	if ok != 5 || s.Used() != 45 || s.Count() != 5 {
		t.Errorf("%d puts succeeded, used %d, count %d; want 5, 45, 5", ok, s.Used(), s.Count())
	}
}

func TestChunkStorePutTouches(t *testing.T) {
	s := csOpen(t, t.TempDir())
	h, b := csChunk(1)
	if err := s.Put(h, b); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if !s.Touch(h, old) {
		t.Fatal("touch of a present chunk reported absent")
	}
	if got := s.Idle(time.Hour, time.Now()); !slices.Equal(got, []meta.Hash{h}) {
		t.Fatalf("idle after backdating: %v, want %v", got, h)
	}
	before := time.Now()
	if err := s.Put(h, b); err != nil {
		t.Fatal(err)
	}
	if got := s.Idle(time.Hour, time.Now()); len(got) != 0 {
		t.Errorf("idle after re-put: %v, want none", got)
	}
	fi, err := os.Stat(s.path(h))
	if err != nil || fi.ModTime().Before(before.Add(-time.Second)) {
		t.Errorf("file mtime after re-put: %v (%v), want about %v", fi.ModTime(), err, before)
	}
	missing, _ := csChunk(2)
	if s.Touch(missing, time.Now()) {
		t.Error("touch of an absent chunk reported present")
	}
}

func TestChunkStoreRemoveIfIdle(t *testing.T) {
	s := csOpen(t, t.TempDir())
	now := time.Now()
	a, b := csPut(t, s, 1), csPut(t, s, 2)
	s.Touch(a, now.Add(-2*time.Hour))
	s.Touch(b, now.Add(-time.Minute))
	if got := s.Idle(time.Hour, now); !slices.Equal(got, []meta.Hash{a}) {
		t.Errorf("idle: %v, want only %v", got, a)
	}
	if ok, err := s.RemoveIfIdle(b, time.Hour, now); ok || err != nil || !s.Has(b) {
		t.Errorf("remove recently touched: %v %v, has %v; want kept", ok, err, s.Has(b))
	}
	if ok, err := s.RemoveIfIdle(a, time.Hour, now); !ok || err != nil || s.Has(a) {
		t.Errorf("remove idle: %v %v, has %v; want removed", ok, err, s.Has(a))
	}
	if _, err := os.Stat(s.path(a)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("idle chunk's file still there: %v", err)
	}
	if ok, err := s.RemoveIfIdle(a, time.Hour, now); ok || err != nil {
		t.Errorf("remove absent: %v %v, want false, nil", ok, err)
	}
	// Idle means at or before now-idle.
	s.Touch(b, now.Add(-time.Hour))
	if ok, err := s.RemoveIfIdle(b, time.Hour, now); !ok || err != nil {
		t.Errorf("remove chunk idle exactly the grace period: %v %v, want removed", ok, err)
	}
	if s.Count() != 0 || s.Used() != 0 {
		t.Errorf("count %d used %d after removing everything", s.Count(), s.Used())
	}
}

func TestChunkStoreCorruptChunk(t *testing.T) {
	s := csOpen(t, t.TempDir())
	h, b := csChunk(1)
	if err := s.Put(h, b); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(s.path(h), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'X'}, 2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Unchecked, the bad bytes come back as they are and stay, with the
	// checksum of the good ones: the caller checks them and sends a good
	// copy.
	if got, crc, err := s.GetWithCRC(h); err != nil || string(got) == string(b) || len(got) != len(b) || crc != meta.ChunkCRC(b) {
		t.Fatalf("get with checksum: %d bytes, checksum %08x, %v; want the corrupted bytes and %08x", len(got), crc, err, meta.ChunkCRC(b))
	}
	if !s.Has(h) {
		t.Fatal("an unchecked read removed the chunk")
	}
	if _, err := s.Get(h); !errors.Is(err, meta.ErrCorrupt) {
		t.Fatalf("get corrupted: %v, want ErrCorrupt", err)
	}
	if s.Has(h) || s.Count() != 0 || s.Used() != 0 {
		t.Errorf("corrupt chunk still counted: has %v, count %d, used %d", s.Has(h), s.Count(), s.Used())
	}
	if _, err := os.Stat(s.path(h)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("corrupt file still on disk: %v", err)
	}
	if _, err := s.Get(h); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("get after removal: %v, want ErrNotFound", err)
	}
	if _, _, err := s.GetWithCRC(h); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("get with checksum after removal: %v, want ErrNotFound", err)
	}
	if err := s.Put(h, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(h); err != nil || string(got) != string(b) {
		t.Errorf("get after repair: %q, %v", got, err)
	}
}

func TestChunkStoreDigestAndList(t *testing.T) {
	s1, s2 := csOpen(t, t.TempDir()), csOpen(t, t.TempDir())
	var want []meta.Hash
	for i := range 40 {
		want = append(want, csPut(t, s1, i))
		csPut(t, s2, 39-i)
	}
	sortHashes(want)
	if s1.Digest() != s2.Digest() {
		t.Fatal("equal sets, different digests")
	}
	if got := s1.ListAll(); !slices.Equal(got, want) {
		t.Errorf("ListAll: %v, want %v", got, want)
	}
	var all []meta.Hash
	for bucket := range 256 {
		got := s1.List(bucket)
		d := s1.Digest()[bucket]
		var x meta.Hash
		for _, h := range got {
			if int(h[0]) != bucket {
				t.Errorf("List(%d) holds %v", bucket, h)
			}
			for i := range h {
				x[i] ^= h[i]
			}
		}
		if d.Count != uint32(len(got)) || d.Xor != x {
			t.Errorf("bucket %d: digest %+v, listed %d with xor %v", bucket, d, len(got), x)
		}
		all = append(all, got...)
	}
	if !slices.Equal(all, want) {
		t.Errorf("buckets in order: %v, want %v", all, want)
	}
	extra := csPut(t, s2, 99)
	if s1.Digest() == s2.Digest() {
		t.Error("different sets, equal digests")
	}
	if err := s2.Remove(extra); err != nil || s1.Digest() != s2.Digest() {
		t.Errorf("digests differ after removing the extra chunk (%v)", err)
	}
	var seen []meta.Hash
	err := s1.ForEach(func(h meta.Hash) error {
		seen = append(seen, h)
		return s1.Remove(h) // ForEach must not hold the lock while fn runs
	})
	if err != nil || !slices.Equal(seen, want) || s1.Count() != 0 {
		t.Errorf("ForEach removing: %v, saw %d, count after %d", err, len(seen), s1.Count())
	}
}

func TestChunkStoreReload(t *testing.T) {
	dir := t.TempDir()
	s := csOpen(t, dir)
	now := time.Now()
	var old []meta.Hash
	for i := range 10 {
		h := csPut(t, s, i)
		if i%3 == 0 {
			// Old on disk, as after the machine's clock jumped ahead
			// while the node was down: the reload must not take it for
			// idle (a write in flight may be about to commit it).
			when := now.Add(-time.Duration(i+2) * time.Hour)
			if err := os.Chtimes(s.path(h), when, when); err != nil {
				t.Fatal(err)
			}
			old = append(old, h)
		}
	}
	sortHashes(old)
	fanout := filepath.Dir(s.path(old[0]))
	for _, p := range []string{filepath.Join(fanout, ".tmp-123"), filepath.Join(dir, ".tmp-456")} {
		if err := os.WriteFile(p, []byte("half a chunk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stranger := filepath.Join(dir, "README")
	if err := os.WriteFile(stranger, []byte("not a chunk"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := csOpen(t, dir)
	if r.Used() != s.Used() || r.Count() != s.Count() || !slices.Equal(r.ListAll(), s.ListAll()) {
		t.Errorf("reloaded used %d count %d, want %d and %d", r.Used(), r.Count(), s.Used(), s.Count())
	}
	if got := r.Idle(time.Hour, time.Now()); len(got) != 0 {
		t.Errorf("reloaded store: %d chunks idle for an hour right after open (file mtimes taken for use times?)", len(got))
	}
	// One grace period after open, every chunk not used since is idle.
	if got := r.Idle(time.Hour, time.Now().Add(time.Hour+time.Second)); !slices.Equal(got, r.ListAll()) {
		t.Errorf("an hour after open: %d chunks idle, want all %d", len(got), r.Count())
	}
	for _, f := range csFiles(t, dir) {
		if strings.Contains(f, ".tmp-") {
			t.Errorf("temporary file %s survived open", f)
		}
	}
	if _, err := os.Stat(stranger); err != nil {
		t.Errorf("open removed a file that is not its own: %v", err)
	}
	if r.Digest() != s.Digest() {
		t.Error("reloaded digest differs")
	}
}

// csWrite writes data as the file name in chunk h's fan-out directory
// under dir, behind the store's back, and returns its path.
func csWrite(t *testing.T, dir string, h meta.Hash, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, h.String()[:2], name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// csRotted is b with its first byte flipped, as bit rot would.
func csRotted(b []byte) []byte {
	r := []byte(string(b))
	r[0] ^= 0xff
	return r
}

// csLegacy writes chunk i as a chunk written before checksums were kept
// in file names: under its hash alone.
func csLegacy(t *testing.T, dir string, i int) (meta.Hash, []byte, string) {
	t.Helper()
	h, b := csChunk(i)
	return h, b, csWrite(t, dir, h, h.String(), b)
}

func TestChunkStoreChecksumInName(t *testing.T) {
	dir := t.TempDir()
	s := csOpen(t, dir)
	h, b := csChunk(1)
	if err := s.Put(h, b); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(h.String()[:2], fmt.Sprintf("%s-%08x", h, meta.ChunkCRC(b)))
	if got := csFiles(t, dir); !slices.Equal(got, []string{want}) {
		t.Fatalf("files after a put: %v, want %v", got, want)
	}
	for _, s := range []*ChunkStore{s, csOpen(t, dir)} {
		got, crc, err := s.GetWithCRC(h)
		if err != nil || string(got) != string(b) || crc != meta.ChunkCRC(b) {
			t.Errorf("get with checksum: %q %08x %v, want %q %08x", got, crc, err, b, meta.ChunkCRC(b))
		}
		if s.Used() != int64(len(b)) {
			t.Errorf("used %d, want %d", s.Used(), len(b))
		}
	}
}

// A chunk stored before checksums were kept is read, checked against its
// hash, and renamed to carry its checksum; a bad one is dropped as before.
func TestChunkStoreLegacyChunk(t *testing.T) {
	dir := t.TempDir()
	h, b, p := csLegacy(t, dir, 1)
	bad, _, badPath := csLegacy(t, dir, 2)
	if err := os.WriteFile(badPath, []byte("chunk 00X"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := csOpen(t, dir)
	if !s.Has(h) || !s.Has(bad) || s.Count() != 2 {
		t.Fatalf("open: has %v %v, count %d; want both legacy chunks", s.Has(h), s.Has(bad), s.Count())
	}
	got, crc, err := s.GetWithCRC(h)
	if err != nil || string(got) != string(b) || crc != meta.ChunkCRC(b) {
		t.Fatalf("get with checksum of a legacy chunk: %q %08x %v", got, crc, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("legacy name still there after a read: %v", err)
	}
	if _, err := os.Stat(p + fmt.Sprintf("-%08x", crc)); err != nil {
		t.Errorf("legacy chunk not renamed to carry its checksum: %v", err)
	}
	if _, _, err := s.GetWithCRC(bad); !errors.Is(err, meta.ErrCorrupt) {
		t.Errorf("get with checksum of a bad legacy chunk: %v, want ErrCorrupt", err)
	}
	if s.Has(bad) {
		t.Error("a bad legacy chunk stayed in the index")
	}
	if _, err := os.Stat(badPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a bad legacy chunk's file stayed: %v", err)
	}
	s = csOpen(t, dir)
	if got, err := s.Get(h); err != nil || string(got) != string(b) || s.Count() != 1 {
		t.Errorf("after reopening: %q %v, count %d", got, err, s.Count())
	}
}

// A file whose content matches its hash but not the checksum in its name
// is renamed to the right one by a read: its content is good, and may be
// the last copy. A router reading it first gets the wrong checksum, finds
// the bytes do not match it, and has the member check its copy.
func TestChunkStoreWrongChecksum(t *testing.T) {
	dir := t.TempDir()
	s := csOpen(t, dir)
	h, b := csChunk(1)
	if err := s.Put(h, b); err != nil {
		t.Fatal(err)
	}
	right := s.path(h)
	wrong := filepath.Join(filepath.Dir(right), fmt.Sprintf("%s-%08x", h, meta.ChunkCRC([]byte("other"))))
	if err := os.Rename(right, wrong); err != nil {
		t.Fatal(err)
	}
	s = csOpen(t, dir)
	if _, crc, err := s.GetWithCRC(h); err != nil || crc != meta.ChunkCRC([]byte("other")) {
		t.Fatalf("get with checksum under a wrong name: %08x, %v; want the name's checksum, unchecked", crc, err)
	}
	if got, err := s.Get(h); err != nil || string(got) != string(b) {
		t.Fatalf("get of a chunk under a wrong checksum: %q, %v; want its content", got, err)
	}
	if got := csFiles(t, dir); len(got) != 1 || filepath.Join(dir, got[0]) != right {
		t.Errorf("files after the read: %v, want only %s", got, right)
	}
	if _, crc, err := s.GetWithCRC(h); err != nil || crc != meta.ChunkCRC(b) {
		t.Errorf("get with checksum after the rename: %08x, %v; want %08x", crc, err, meta.ChunkCRC(b))
	}
}

// The same chunk under two names: open keeps the one that holds it, with
// a checksum if both do, and removes the other, which nothing would ever
// collect.
func TestChunkStoreBothNames(t *testing.T) {
	t.Run("legacy and checksummed", func(t *testing.T) {
		dir := t.TempDir()
		s := csOpen(t, dir)
		h := csPut(t, s, 1)
		named := s.path(h)
		_, b, legacy := csLegacy(t, dir, 1)
		s = csOpen(t, dir)
		if s.Count() != 1 || s.Used() != int64(len(b)) || s.path(h) != named {
			t.Errorf("open: count %d, used %d, path %s; want 1, %d, %s", s.Count(), s.Used(), s.path(h), len(b), named)
		}
		if _, err := os.Stat(legacy); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("duplicate legacy file kept: %v", err)
		}
	})
	// A good file beside a corrupt one whose name sorts before it (0...)
	// or after it (f...), so open meets either first.
	for _, tc := range []struct {
		name       string
		badCRC     uint32
		goodLegacy bool
	}{
		{"checksummed, the corrupt one first", 0, false},
		{"checksummed, the corrupt one last", 0xffffffff, false},
		{"a good legacy file and a corrupt checksummed one", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			h, b := csChunk(1)
			good := fmt.Sprintf("%s-%08x", h, meta.ChunkCRC(b))
			if tc.goodLegacy {
				good = h.String()
			}
			csWrite(t, dir, h, good, b)
			csWrite(t, dir, h, fmt.Sprintf("%s-%08x", h, tc.badCRC), csRotted(b))
			s := csOpen(t, dir)
			if got := csFiles(t, dir); len(got) != 1 || filepath.Base(got[0]) != good {
				t.Errorf("files after open: %v, want only %s", got, good)
			}
			if got, err := s.Get(h); err != nil || string(got) != string(b) || s.Count() != 1 || s.Used() != int64(len(b)) {
				t.Errorf("get: %q, %v, count %d, used %d; want the chunk, counted once", got, err, s.Count(), s.Used())
			}
		})
	}
}

// A corrupt file under the chunk's hash alone (read first at open) and a
// good one under a wrong checksum: the good one stays, and a read gives
// it its right name.
func TestChunkStoreBothNamesGoodUnderWrongChecksum(t *testing.T) {
	dir := t.TempDir()
	h, b := csChunk(1)
	csWrite(t, dir, h, h.String(), csRotted(b))
	csWrite(t, dir, h, fmt.Sprintf("%s-%08x", h, meta.ChunkCRC(b)^1), b)
	s := csOpen(t, dir)
	if got, err := s.Get(h); err != nil || string(got) != string(b) {
		t.Fatalf("get: %q, %v; want the good copy", got, err)
	}
	want := filepath.Join(h.String()[:2], fmt.Sprintf("%s-%08x", h, meta.ChunkCRC(b)))
	if got := csFiles(t, dir); !slices.Equal(got, []string{want}) {
		t.Errorf("files: %v, want only %s", got, want)
	}
}

// hookFS runs a hook before each Open, once, as another reader would
// have acted just then.
type hookFS struct {
	FS
	hook func(name string)
}

func (f *hookFS) Open(name string) (File, error) {
	if h := f.hook; h != nil {
		f.hook = nil
		h(name)
	}
	return f.FS.Open(name)
}

// A read that looked up a legacy chunk's name just before another read
// renamed it to carry its checksum finds it under the new name.
func TestChunkStoreLegacyRenameRace(t *testing.T) {
	dir := t.TempDir()
	h, b, legacy := csLegacy(t, dir, 1)
	fsys := &hookFS{FS: OSFS{}}
	s, err := OpenChunkStore(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	fsys.hook = func(name string) {
		if name != legacy {
			t.Errorf("first open of %s, want the legacy name %s", name, legacy)
		}
		if _, err := s.Get(h); err != nil {
			t.Errorf("the other reader: %v", err)
		}
	}
	got, crc, err := s.GetWithCRC(h)
	if err != nil || string(got) != string(b) || crc != meta.ChunkCRC(b) {
		t.Fatalf("read across the rename: %q %08x %v", got, crc, err)
	}
	if fsys.hook != nil {
		t.Fatal("the other reader never ran")
	}
	if !s.Has(h) || s.path(h) == legacy {
		t.Errorf("after the rename: has %v, path %s", s.Has(h), s.path(h))
	}
}

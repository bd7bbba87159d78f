package store

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// snapFiles lists the snapshot directory of d.
func snapFiles(t *testing.T, d *DB) []string {
	t.Helper()
	entries, err := os.ReadDir(d.snapshotDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// A snapshot cut on one node, read in pieces and received by another,
// installs the sender's state there; every file in transit is then gone.
func TestSnapshotTransfer(t *testing.T) {
	src, dst := crOpen(t, t.TempDir()), crOpen(t, t.TempDir())
	crSeed(t, src)
	if err := dst.SetPromised(meta.Ballot{Term: 7, Node: 1}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 5)
	name, sum, err := src.CutSnapshot(now)
	if err != nil {
		t.Fatal(err)
	}
	if name != "serve-1700000000000000005.db" {
		t.Errorf("snapshot name %q", name)
	}

	in, err := dst.ReceiveSnapshot(now)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Discard()
	const piece = 4096
	var off int64
	for {
		data, size, err := src.ReadSnapshot(name, off, piece)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > piece || off+int64(len(data)) > size {
			t.Fatalf("read at %d of %d: %d bytes", off, size, len(data))
		}
		if _, err := in.Write(data); err != nil {
			t.Fatal(err)
		}
		if off += int64(len(data)); off >= size {
			break
		}
	}
	if data, _, err := src.ReadSnapshot(name, off, piece); err != nil || len(data) != 0 {
		t.Errorf("read at the end: %d bytes, %v", len(data), err)
	}
	if got := snapFiles(t, dst); !slices.Equal(got, []string{"recv-1700000000000000005.db"}) {
		t.Errorf("receiver's snapshot files %q", got)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	other := sum
	other[0] ^= 1
	if err := in.Verify(other[:]); !errors.Is(err, meta.ErrCorrupt) {
		t.Errorf("verify against another SHA-256: %v, want ErrCorrupt", err)
	}
	if err := in.Verify(sum[:]); err != nil {
		t.Fatal(err)
	}
	chunks := map[meta.Hash]bool{}
	if err := in.Chunks(func(c meta.ChunkRef) error { chunks[c.Hash] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := map[meta.Hash]bool{}; src.view(func(tx *bolt.Tx) error {
		return forEachChunk(tx, func(c meta.ChunkRef) error { want[c.Hash] = true; return nil })
	}) != nil || len(want) == 0 || !maps.Equal(chunks, want) {
		t.Errorf("snapshot references %d chunks, the sender %d", len(chunks), len(want))
	}

	st, err := in.Install()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.State()
	if st != want {
		t.Errorf("installed state %+v, want the sender's %+v", st, want)
	}
	if !maps.Equal(crRefs(t, dst), crRefs(t, src)) {
		t.Error("installed namespace differs from the sender's")
	}
	if p, err := dst.Promised(); err != nil || p.Term != 7 {
		t.Errorf("promise after install %+v, %v; want term 7 kept", p, err)
	}
	in.Discard()
	if got := snapFiles(t, dst); len(got) != 0 {
		t.Errorf("receiver keeps %q after the install", got)
	}
	if err := src.RemoveSnapshot(name); err != nil {
		t.Fatal(err)
	}
	if got := snapFiles(t, src); len(got) != 0 {
		t.Errorf("sender keeps %q after removing the snapshot", got)
	}
	if _, _, err := src.ReadSnapshot(name, 0, piece); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read of a removed snapshot: %v, want ErrNotExist", err)
	}
}

// A snapshot that is not a whole database is refused, the state stays,
// and Discard removes the file.
func TestSnapshotInstallRefusesGarbage(t *testing.T) {
	d := crOpen(t, t.TempDir())
	crSeed(t, d)
	before := crRefs(t, d)
	in, err := d.ReceiveSnapshot(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("not a database"))
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Install(); err == nil {
		t.Fatal("installed garbage")
	}
	if !maps.Equal(crRefs(t, d), before) {
		t.Error("a refused snapshot changed the state")
	}
	in.Discard()
	if got := snapFiles(t, d); len(got) != 0 {
		t.Errorf("snapshot files left: %q", got)
	}
}

// Snapshot names come from peers: none reaches outside the snapshot
// directory.
func TestSnapshotNames(t *testing.T) {
	d := crOpen(t, t.TempDir())
	if err := os.WriteFile(filepath.Join(d.Dir(), "outside"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "..", "../outside", "../meta.db", "/etc/passwd", "a/b"} {
		if _, _, err := d.ReadSnapshot(name, 0, 10); !errors.Is(err, meta.ErrInvalid) {
			t.Errorf("read of snapshot %q: %v, want ErrInvalid", name, err)
		}
		if err := d.RemoveSnapshot(name); !errors.Is(err, meta.ErrInvalid) {
			t.Errorf("remove of snapshot %q: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.Dir(), "outside")); err != nil {
		t.Error(err)
	}
}

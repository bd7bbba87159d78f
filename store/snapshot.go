package store

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// A snapshot is a consistent copy of meta.db: the namespace, the applied
// index and the log tail after it. Shipping the whole file keeps one format
// for both sides and lets bbolt's own copy give a point-in-time image while
// writes go on.
//
// Snapshot files live in DIR/snapshots while they are in transit:
//
//	serve-NANOS.db   cut by CutSnapshot for peers to read piece by piece;
//	                 the server removes it with RemoveSnapshot
//	recv-NANOS.db    being received (ReceiveSnapshot); Install renames it
//	                 over meta.db, Discard removes it
//
// NANOS is the Unix time in nanoseconds when the file was made.

func (d *DB) snapshotDir() string { return filepath.Join(d.dir, "snapshots") }

// snapshotPath is the path of the snapshot file name, which must be a
// plain file name: names come from peers.
func (d *DB) snapshotPath(name string) (string, error) {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return "", fmt.Errorf("snapshot name %q is not a file name: %w", name, meta.ErrInvalid)
	}
	return filepath.Join(d.snapshotDir(), name), nil
}

// CutSnapshot writes a consistent copy of the state to a new snapshot file,
// named for now, and returns its name for ReadSnapshot.
func (d *DB) CutSnapshot(now time.Time) (string, error) {
	name := fmt.Sprintf("serve-%d.db", now.UnixNano())
	if _, err := d.writeSnapshot(filepath.Join(d.snapshotDir(), name)); err != nil {
		return "", err
	}
	return name, nil
}

// ReadSnapshot returns up to n bytes of the snapshot file name from offset
// off (fewer at its end), and the file's size.
func (d *DB) ReadSnapshot(name string, off int64, n int) ([]byte, int64, error) {
	p, err := d.snapshotPath(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := d.fs.Open(p)
	if err != nil {
		return nil, 0, fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	buf := make([]byte, min(int64(n), max(0, fi.Size()-off)))
	k, err := f.ReadAt(buf, off)
	if err != nil && err != io.EOF {
		return nil, 0, fmt.Errorf("read snapshot: %w", err)
	}
	return buf[:k], fi.Size(), nil
}

// RemoveSnapshot deletes the snapshot file name.
func (d *DB) RemoveSnapshot(name string) error {
	p, err := d.snapshotPath(name)
	if err != nil {
		return err
	}
	return d.fs.Remove(p)
}

// writeSnapshot writes a consistent copy of the state to path and returns
// the log state it captured.
func (d *DB) writeSnapshot(path string) (LogState, error) {
	var s LogState
	if err := d.fs.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return s, fmt.Errorf("create snapshot directory: %w", err)
	}
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		if s, err = logState(tx); err != nil {
			return err
		}
		// What bbolt's Tx.CopyFile does, on d.fs.
		f, err := d.fs.Create(path, 0o600)
		if err != nil {
			return err
		}
		_, err = tx.WriteTo(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		d.fs.Remove(path)
		return s, fmt.Errorf("write snapshot %s: %w", path, err)
	}
	return s, nil
}

// IncomingSnapshot is a snapshot file being received from a peer. Write
// the snapshot to it and Close it; then Chunks lists what it references
// and Install makes it this node's state. Discard it in every case.
type IncomingSnapshot struct {
	d      *DB
	f      File
	path   string
	closed bool
}

// ReceiveSnapshot creates a file, named for now, to receive a peer's
// snapshot into.
func (d *DB) ReceiveSnapshot(now time.Time) (*IncomingSnapshot, error) {
	dir := d.snapshotDir()
	if err := d.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, fmt.Sprintf("recv-%d.db", now.UnixNano()))
	f, err := d.fs.Create(p, 0o666)
	if err != nil {
		return nil, fmt.Errorf("create snapshot file: %w", err)
	}
	return &IncomingSnapshot{d: d, f: f, path: p}, nil
}

// Write appends to the snapshot.
func (s *IncomingSnapshot) Write(p []byte) (int, error) { return s.f.Write(p) }

// Close syncs the snapshot to disk and closes it: it is whole from then on.
func (s *IncomingSnapshot) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.f.Sync(); err != nil {
		s.f.Close()
		return fmt.Errorf("sync snapshot: %w", err)
	}
	return s.f.Close()
}

// Chunks calls fn for every chunk referenced by the namespace in the
// snapshot, so that the content can be fetched before Install. Call it
// after Close.
func (s *IncomingSnapshot) Chunks(fn func(meta.ChunkRef) error) error {
	return snapshotChunks(s.path, fn)
}

// Install replaces this node's state with the snapshot, keeping this
// node's promise if it is higher than the snapshot's. Call it after Close.
func (s *IncomingSnapshot) Install() (LogState, error) { return s.d.restore(s.path) }

// Discard closes the snapshot file and removes it, unless Install has made
// it the state.
func (s *IncomingSnapshot) Discard() {
	if !s.closed {
		s.closed = true
		s.f.Close()
	}
	s.d.fs.Remove(s.path)
}

// restore replaces the state with the snapshot file at path (which it
// consumes), keeping this node's promise if it is higher than the
// snapshot's: a promise must never go backwards.
func (d *DB) restore(path string) (LogState, error) {
	var s LogState
	promised, err := d.Promised()
	if err != nil {
		return s, err
	}
	if err := checkSnapshot(path); err != nil {
		return s, err
	}
	d.mu.Lock()
	if d.bolt != nil {
		d.bolt.Close()
		d.bolt = nil
	}
	dst := filepath.Join(d.dir, metaFile)
	err = d.fs.Rename(path, dst)
	if err == nil {
		err = d.fs.SyncDir(d.dir)
	}
	if oerr := d.openBolt(); oerr != nil && err == nil {
		err = oerr
	}
	d.mu.Unlock()
	if err != nil {
		return s, fmt.Errorf("restore snapshot: %w", err)
	}
	if err := d.SetPromised(promised); err != nil {
		return s, err
	}
	return d.State()
}

// checkSnapshot opens a received snapshot read-only to make sure it is a
// whole, valid database before it replaces the live one.
func checkSnapshot(path string) error {
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("received snapshot %s is not a valid database: %w", path, err)
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketLog) == nil || tx.Bucket(bucketState) == nil {
			return fmt.Errorf("received snapshot %s lacks the log or state bucket", path)
		}
		_, err := logState(tx)
		return err
	})
}

// snapshotChunks calls fn for every chunk referenced by the namespace in
// the snapshot file at path.
func snapshotChunks(path string, fn func(meta.ChunkRef) error) error {
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open received snapshot %s: %w", path, err)
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error { return forEachChunk(tx, fn) })
}

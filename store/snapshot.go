package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
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
// The sender verifies every record of the image it copies (a corrupt one
// marks its own store corrupt and sends nothing) and hashes the copy with
// SHA-256 as it writes it; the receiver checks the file it received
// against that hash, then every record again, before anything reads it.
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
// named for now, and returns its name for ReadSnapshot and the SHA-256 of
// its content, for the receiver to check (IncomingSnapshot.Verify).
func (d *DB) CutSnapshot(now time.Time) (string, [sha256.Size]byte, error) {
	name := fmt.Sprintf("serve-%d.db", now.UnixNano())
	_, sum, err := d.writeSnapshot(filepath.Join(d.snapshotDir(), name))
	if err != nil {
		return "", sum, err
	}
	return name, sum, nil
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

// writeSnapshot writes a consistent copy of the state to path, after
// verifying every record of it, and returns the log state it captured and
// the SHA-256 of the copy.
func (d *DB) writeSnapshot(path string) (LogState, [sha256.Size]byte, error) {
	var s LogState
	var sum [sha256.Size]byte
	if err := d.fs.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return s, sum, fmt.Errorf("create snapshot directory: %w", err)
	}
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		if s, err = logState(tx); err != nil {
			return err
		}
		if _, err := verifyAll(tx); err != nil {
			return err
		}
		// What bbolt's Tx.CopyFile does, on d.fs.
		f, err := d.fs.Create(path, 0o600)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = tx.WriteTo(io.MultiWriter(f, h))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		h.Sum(sum[:0])
		return err
	})
	if err != nil {
		d.fs.Remove(path)
		return s, sum, fmt.Errorf("write snapshot %s: %w", path, err)
	}
	return s, sum, nil
}

// IncomingSnapshot is a snapshot file being received from a peer. Write
// the snapshot to it and Close it; then Chunks lists what it references
// and Install makes it this node's state. Discard it in every case.
type IncomingSnapshot struct {
	d      *DB
	f      File
	path   string
	hash   hash.Hash // of what was written
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
	return &IncomingSnapshot{d: d, f: f, path: p, hash: sha256.New()}, nil
}

// Write appends to the snapshot.
func (s *IncomingSnapshot) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.hash.Write(p[:n])
	return n, err
}

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

// Verify checks the snapshot against sum, the SHA-256 its sender computed
// (nil from a sender too old to send one), then every record in it, and
// brings a snapshot from a node that predates checksums to the current
// format. Call it after Close, and before Chunks and Install.
func (s *IncomingSnapshot) Verify(sum []byte) error {
	if !s.closed {
		return errors.New("verify snapshot: close it first")
	}
	if got := s.hash.Sum(nil); sum != nil && !bytes.Equal(got, sum) {
		return fmt.Errorf("received snapshot has SHA-256 %x, its sender wrote %x: %w", got, sum, meta.ErrCorrupt)
	}
	b, err := openBoltFile(s.path, false)
	if err != nil {
		return fmt.Errorf("received snapshot: %w", err)
	}
	defer b.Close()
	if err := guard(func() error { return b.Update(initStore) }); err != nil {
		return fmt.Errorf("received snapshot: %w", err)
	}
	return nil
}

// Chunks calls fn for every chunk referenced by the namespace in the
// snapshot, so that the content can be fetched before Install. Call it
// after Verify.
func (s *IncomingSnapshot) Chunks(fn func(meta.ChunkRef) error) error {
	return snapshotChunks(s.path, fn)
}

// Install replaces this node's state with the snapshot, keeping this
// node's promise if it is higher than the snapshot's, and its rebuilding
// mark (see DB.Rebuilding). Call it after Verify.
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
// snapshot's (a promise must never go backwards) and its rebuilding mark:
// the sender's says nothing about this node, and a rebuilding node is
// whole only once its primary finds it so.
func (d *DB) restore(path string) (LogState, error) {
	var s LogState
	promised, err := d.Promised()
	if err != nil {
		return s, err
	}
	wasRebuilding, err := d.Rebuilding()
	if err != nil {
		return s, err
	}
	if err := checkSnapshot(path); err != nil {
		return s, err
	}
	if err := freshLog(path); err != nil {
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
	err = d.update(func(tx *bolt.Tx) error {
		if err := raisePromise(tx, promised); err != nil {
			return err
		}
		if wasRebuilding {
			return bucketIn(tx, bucketState).put(keyRebuilding, nil)
		}
		return bucketIn(tx, bucketState).del(keyRebuilding)
	})
	if err != nil {
		return s, err
	}
	return d.State()
}

// freshLog gives the received snapshot at path a log ID of its own (see
// wal.go) before it replaces meta.db: the sender's log files and this
// node's are never read with it.
func freshLog(path string) error {
	b, err := openBoltFile(path, false)
	if err != nil {
		return fmt.Errorf("received snapshot %s: %w", path, err)
	}
	err = guard(func() error {
		return b.Update(func(tx *bolt.Tx) error {
			st := bucketIn(tx, bucketState)
			if st.unsealed(keyWAL) == nil {
				return nil // an older version's: Open gives it an ID
			}
			return st.put(keyWAL, newWALID())
		})
	})
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("received snapshot %s: give it a log of its own: %w", path, diskFault(err))
	}
	return nil
}

// checkSnapshot opens a received snapshot read-only to make sure it is a
// whole, valid database before it replaces the live one.
func checkSnapshot(path string) error {
	b, err := openBoltFile(path, true)
	if err != nil {
		return fmt.Errorf("received snapshot %s is not a valid database: %w", path, err)
	}
	defer b.Close()
	return guard(func() error {
		return b.View(func(tx *bolt.Tx) error {
			if !hasBucket(tx, bucketLog) || !hasBucket(tx, bucketState) {
				return fmt.Errorf("received snapshot %s lacks the log or state bucket", path)
			}
			_, err := logState(tx)
			return err
		})
	})
}

// snapshotChunks calls fn for every chunk referenced by the namespace in
// the snapshot file at path.
func snapshotChunks(path string, fn func(meta.ChunkRef) error) error {
	b, err := openBoltFile(path, true)
	if err != nil {
		return fmt.Errorf("open received snapshot %s: %w", path, err)
	}
	defer b.Close()
	return guard(func() error {
		return b.View(func(tx *bolt.Tx) error { return forEachChunk(tx, fn) })
	})
}

package store

import (
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// A snapshot is a consistent copy of meta.db: the namespace, the applied
// index and the log tail after it. Shipping the whole file keeps one format
// for both sides and lets bbolt's own copy give a point-in-time image while
// writes go on.

// SnapshotDir is where snapshot files are kept while they are served or
// received.
func (d *DB) SnapshotDir() string { return filepath.Join(d.dir, "snapshots") }

// WriteSnapshot writes a consistent copy of the state to path and returns
// the log state it captured.
func (d *DB) WriteSnapshot(path string) (LogState, error) {
	var s LogState
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return s, fmt.Errorf("create snapshot directory: %w", err)
	}
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		if s, err = logState(tx); err != nil {
			return err
		}
		return tx.CopyFile(path, 0o600)
	})
	if err != nil {
		os.Remove(path)
		return s, fmt.Errorf("write snapshot %s: %w", path, err)
	}
	return s, nil
}

// Restore replaces the state with the snapshot file at path (which it
// consumes), keeping this node's promise if it is higher than the
// snapshot's: a promise must never go backwards.
func (d *DB) Restore(path string) (LogState, error) {
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
	err = os.Rename(path, dst)
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

// SnapshotChunks calls fn for every chunk referenced by the namespace in
// the snapshot file at path, so a receiver can fetch the content before it
// installs the snapshot.
func SnapshotChunks(path string, fn func(meta.ChunkRef) error) error {
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open received snapshot %s: %w", path, err)
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error { return ForEachChunk(tx, fn) })
}

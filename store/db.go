// Package store keeps a node's durable local state: the replicated log, the
// promised ballot, the file-system namespace the log is applied to (in one
// bbolt file, with the log's unapplied entries in files of their own),
// the chunk files holding file content, snapshot files in
// transit, and the node's ID and claim files.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"shoal/meta"
)

// On-disk layout of DIR:
//
//	meta.db      bbolt: buckets log, state, sums and the namespace buckets
//	meta.db.corrupt-NANOS
//	             a meta.db found corrupt, moved aside (see Quarantine)
//	wal/         the log's entries after the applied index (see wal.go)
//	wal.corrupt-NANOS
//	             the wal/ of a meta.db found corrupt
//	chunks/      content-addressed chunk files (see ChunkStore)
//	snapshots/   snapshot files being served to or received from peers
//	             (see snapshot.go)
//	node-id      the node's ID (see nodeid.go)
//	claim        the group that claimed a standby (see claim.go)
//
// Every record of meta.db carries a checksum (see records.go); the
// layouts below and in the other files are of the payloads.
//
// Bucket log maps an 8-byte big-endian index to a msgpack Entry. It holds
// the contiguous entries after the snapshot point (snap_index) through the
// applied index; wal/ holds the rest.
// Bucket state holds:
//
//	promised     msgpack Ballot: the highest ballot this node promised
//	applied      8-byte index of the last entry applied to the namespace
//	snap_index   8-byte index of the last entry discarded by compaction
//	snap_ballot  msgpack Ballot of that entry
//	config       msgpack []Member: the voting members as of snap_index
//	format       8-byte record format (see records.go)
//	rebuilding   empty; present while the log may lack entries this node
//	             once acknowledged, after Quarantine (see Rebuilding)
//	forming      present (0x01) while the configuration as of snap_index
//	             says the group is still forming (meta.Op.Forming)
//	wal          8-byte ID naming this file's log files (see wal.go)
//
// Every other mutation is one bbolt transaction, committed with fsync. A
// batch of appends is one write and one fdatasync of a log file,
// whatever its size.
const (
	metaFile = "meta.db"
)

var (
	bucketLog   = []byte("log")
	bucketState = []byte("state")

	keyPromised   = []byte("promised")
	keyApplied    = []byte("applied")
	keySnapIndex  = []byte("snap_index")
	keySnapBallot = []byte("snap_ballot")
	keyConfig     = []byte("config")
	keyForming    = []byte("forming")
)

// DB is a node's durable state. It is safe for concurrent use; installing
// a snapshot or quarantining meta.db excludes every other call while it
// swaps the file.
type DB struct {
	// fs holds the files of dir other than meta.db. It is the OS file
	// system: bbolt opens snapshot files and meta.db by path.
	fs     FS
	dir    string
	Chunks *ChunkStore

	mu   sync.RWMutex // write-held only by restore, Quarantine and Close
	bolt *bolt.DB
	wal  *wal // the log's entries after the applied index (see wal.go)
	// walBytes is the size of the log's files (see wal.go).
	walBytes atomic.Int64

	// corrupt holds the first CorruptError a call met since meta.db was
	// opened; from then on every call fails with it, so nothing is served
	// from a file the disk changed. corruptCh is closed when it is set.
	corrupt   atomic.Pointer[error]
	corruptMu sync.Mutex
	corruptCh chan struct{}
	// metaInUse and metaFree are meta.db's bytes in use and in free
	// pages after the last write (see measureMeta).
	metaInUse, metaFree atomic.Int64
}

// Open opens or creates the state under dir, on the operating system's
// file system (OSFS). It verifies every record of meta.db first (see
// Verify) and fails with an error wrapping meta.ErrCorrupt if one is
// damaged: see Quarantine for what to do then.
func Open(dir string) (*DB, error) { return OpenOn(OSFS{}, dir) }

// OpenOn is Open on fsys, which must reach the operating system's files
// (OSFS, or a FailFS over it): bbolt opens meta.db and snapshot files by
// path.
func OpenOn(fsys FS, dir string) (*DB, error) {
	if err := mkdirAllDurable(fsys, dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	chunks, err := OpenChunkStore(fsys, filepath.Join(dir, "chunks"))
	if err != nil {
		return nil, err
	}
	d := &DB{fs: fsys, dir: dir, Chunks: chunks, corruptCh: make(chan struct{})}
	if err := d.openBolt(); err != nil {
		return nil, err
	}
	chunks.metaUsage = func() (int64, int64) { return d.metaInUse.Load() + d.walBytes.Load(), d.metaFree.Load() }
	return d, nil
}

// openBolt opens meta.db, initialising what it lacks. A store that has
// everything is opened without a write: a node whose disk is full must
// still come up and serve what it holds.
func (d *DB) openBolt() error {
	p := filepath.Join(d.dir, metaFile)
	b, err := openBoltFile(p, false)
	if err != nil {
		return err
	}
	// A store that has everything is only verified, in a read
	// transaction; one that lacks something is made whole (or migrated)
	// in a write.
	ready := false
	err = guard(func() error {
		return b.View(func(tx *bolt.Tx) error {
			if ready = storeReady(tx); !ready {
				return nil
			}
			_, err := verifyAll(tx)
			return err
		})
	})
	if err == nil && !ready {
		err = guard(func() error { return b.Update(initStore) })
	}
	if err != nil {
		b.Close()
		if errors.Is(err, meta.ErrCorrupt) {
			return fmt.Errorf("%s: %w", p, err)
		}
		return fmt.Errorf("initialise %s: %w", p, diskFault(err))
	}
	if d.wal != nil {
		d.wal.close()
	}
	if d.wal, err = openLog(d.fs, d.dir, b, &d.walBytes); err != nil {
		b.Close()
		if errors.Is(err, meta.ErrCorrupt) {
			return err
		}
		return fmt.Errorf("open the log of %s: %w", d.dir, diskFault(err))
	}
	d.bolt = b
	d.measureMeta()
	return nil
}

// openBoltFile opens the bbolt file at p. A file bbolt finds invalid is
// reported as a CorruptError.
func openBoltFile(p string, readOnly bool) (*bolt.DB, error) {
	free, err := checkFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var b *bolt.DB
	err = guard(func() error {
		var err error
		b, err = bolt.Open(p, 0o600, &bolt.Options{Timeout: 2 * time.Second, ReadOnly: readOnly})
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, fmt.Errorf("%s: %w", p, &CorruptError{Why: "bbolt cannot open it: " + err.Error()})
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open %s (is another shoal process using this data directory?): %w", p, err)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	if err := checkPages(p, b, free); err != nil {
		b.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return b, nil
}

// initStore makes tx a store of the current format (see initFormat) with
// every bucket it needs.
func initStore(tx *bolt.Tx) error {
	if err := initFormat(tx); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketLog, bucketState} {
		if _, err := createBucket(tx, name); err != nil {
			return err
		}
	}
	st := bucketIn(tx, bucketState)
	if id, err := st.get(keyWAL); err != nil || id == nil {
		if err := st.put(keyWAL, newWALID()); err != nil {
			return err
		}
	}
	return initNamespace(tx)
}

// Wipe drops the node's copy of its group: the log, the promise, the
// namespace and every chunk, leaving the state of a node that never
// served a group (a standby's). The caller must have stopped
// replication first.
func (d *DB) Wipe() error {
	d.mu.Lock()
	if d.bolt != nil {
		d.bolt.Close()
		d.bolt = nil
	}
	err := d.fs.Remove(filepath.Join(d.dir, metaFile))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = d.fs.SyncDir(d.dir)
	}
	if rerr := os.RemoveAll(d.snapshotDir()); rerr != nil && err == nil {
		err = rerr
	}
	if oerr := d.openBolt(); oerr != nil && err == nil {
		err = oerr
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("wipe the group's state in %s: %w", d.dir, err)
	}
	return d.Chunks.RemoveAll()
}

// Dir returns the data directory.
func (d *DB) Dir() string { return d.dir }

// Close closes the database. It is safe to call more than once.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bolt == nil {
		return nil
	}
	d.wal.close()
	err := d.bolt.Close()
	d.bolt = nil
	return err
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func key(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return b[:]
}

func (d *DB) view(fn func(tx *bolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := d.usable(); err != nil {
		return err
	}
	return d.noteCorrupt(guard(func() error { return d.bolt.View(fn) }))
}

// viewLog runs fn in a read transaction, with the log's entries after
// the applied index as they were just before it began: the transaction's
// applied index may be past the first of them (an apply committed
// between), never short of it.
func (d *DB) viewLog(fn func(tx *bolt.Tx, tail []walEntry) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := d.usable(); err != nil {
		return err
	}
	tail := d.wal.snapshot()
	return d.noteCorrupt(guard(func() error {
		return d.bolt.View(func(tx *bolt.Tx) error { return fn(tx, tail) })
	}))
}

// update runs fn in a write transaction. A disk that refuses the write
// fails it with meta.ErrDiskFailed.
func (d *DB) update(fn func(tx *bolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := d.usable(); err != nil {
		return err
	}
	p := filepath.Join(d.dir, metaFile)
	if err := refusedWrite(d.fs, p); err != nil {
		return diskFault(err)
	}
	err := d.noteCorrupt(guard(func() error { return d.bolt.Update(fn) }))
	if err == nil {
		d.measureMeta()
	}
	marked := diskFault(err)
	if marked == err && err != nil {
		if refused := refusesWrites(d.dir); refused != nil {
			marked = diskFault(fmt.Errorf("%w (%w)", err, refused))
		}
	}
	var pe *fs.PathError
	if marked != err && !errors.As(err, &pe) {
		return fmt.Errorf("write %s: %w", p, marked) // an fsync's errno names no file
	}
	return marked
}

func getBallot(st bucket, k []byte) (meta.Ballot, error) {
	var b meta.Ballot
	v, err := st.get(k)
	if err != nil || v == nil {
		return b, err
	}
	if err := msgpack.Unmarshal(v, &b); err != nil {
		return b, fmt.Errorf("decode %s: %w", k, err)
	}
	return b, nil
}

func putMsgpack(bk bucket, k []byte, v any) error {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return err
	}
	return bk.put(k, b)
}

// getU64 reads an 8-byte record of bucket st (0 when missing).
func getU64(st bucket, k []byte) (uint64, error) {
	v, err := st.get(k)
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("bucket %s, key %s holds %d bytes where 8 belong: %w", st.name, k, len(v), meta.ErrCorrupt)
	}
	return u64(v), nil
}

// putFlag records a flag as the presence of key k.
func putFlag(bk bucket, k []byte, on bool) error {
	if on {
		return bk.put(k, []byte{1})
	}
	return bk.del(k)
}

// Promised returns the highest ballot this node has promised.
func (d *DB) Promised() (meta.Ballot, error) {
	var b meta.Ballot
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		b, err = getBallot(bucketIn(tx, bucketState), keyPromised)
		return err
	})
	return b, err
}

// SetPromised durably records a promise. It never lowers the promise.
func (d *DB) SetPromised(b meta.Ballot) error {
	return d.update(func(tx *bolt.Tx) error { return raisePromise(tx, b) })
}

func raisePromise(tx *bolt.Tx, b meta.Ballot) error {
	st := bucketIn(tx, bucketState)
	cur, err := getBallot(st, keyPromised)
	if err != nil {
		return err
	}
	if !cur.Less(b) {
		return nil
	}
	return putMsgpack(st, keyPromised, b)
}

// Rebuilding reports whether this node's log may lack entries it once
// acknowledged: Quarantine replaced its corrupt meta.db with an empty one,
// and it has not been found whole since (see SetRebuilt). Such a member
// must not count in a majority that recovers the log, nor lead.
func (d *DB) Rebuilding() (bool, error) {
	var r bool
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		r, err = rebuilding(tx)
		return err
	})
	return r, err
}

func rebuilding(tx *bolt.Tx) (bool, error) {
	v, err := bucketIn(tx, bucketState).get(keyRebuilding)
	return v != nil, err
}

// SetRebuilt durably records that this node's log holds every committed
// entry again: its primary found it caught up and holding every chunk,
// or it recovered the log from a majority itself.
func (d *DB) SetRebuilt() error {
	return d.update(func(tx *bolt.Tx) error { return bucketIn(tx, bucketState).del(keyRebuilding) })
}

// storeReady reports whether tx holds a store of the current format with
// everything Open makes, so that opening it needs no write.
func storeReady(tx *bolt.Tx) bool {
	if !hasBucket(tx, bucketSums) || !hasBucket(tx, bucketLog) || !hasBucket(tx, bucketState) || !namespaceReady(tx) {
		return false
	}
	if id, err := bucketIn(tx, bucketState).get(keyWAL); err != nil || len(id) != 8 {
		return false
	}
	m, err := bucketIn(tx, bucketState).get(keyFormat)
	return err == nil && len(m) == 8 && u64(m) == formatVersion
}

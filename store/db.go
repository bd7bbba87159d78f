// Package store keeps a node's durable local state: the replicated log, the
// promised ballot, the file-system namespace the log is applied to (all in
// one bbolt file), the chunk files holding file content, snapshot files in
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

	"shoal/meta"
)

// On-disk layout of DIR:
//
//	meta.db      bbolt: buckets log, state and the namespace buckets
//	chunks/      content-addressed chunk files (see ChunkStore)
//	snapshots/   snapshot files being served to or received from peers
//	             (see snapshot.go)
//	node-id      the node's ID (see nodeid.go)
//	claim        the group that claimed a standby (see claim.go)
//
// Bucket log maps an 8-byte big-endian index to a msgpack Entry. The log
// holds the contiguous entries after the snapshot point (snap_index).
// Bucket state holds:
//
//	promised     msgpack Ballot: the highest ballot this node promised
//	applied      8-byte index of the last entry applied to the namespace
//	snap_index   8-byte index of the last entry discarded by compaction
//	snap_ballot  msgpack Ballot of that entry
//	config       msgpack []Member: the voting members as of snap_index
//	forming      present (0x01) while the configuration as of snap_index
//	             says the group is still forming (meta.Op.Forming)
//
// Every mutation is one bbolt transaction, committed with fsync: a batch of
// appends costs one commit, whatever its size.
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
// a snapshot excludes every other call while it swaps the file.
type DB struct {
	// fs holds the files of dir other than meta.db. It is the OS file
	// system: bbolt opens snapshot files and meta.db by path.
	fs     FS
	dir    string
	Chunks *ChunkStore

	mu   sync.RWMutex // write-held only by restore and Close
	bolt *bolt.DB

	// metaInUse and metaFree are meta.db's bytes in use and in free
	// pages after the last write (see measureMeta).
	metaInUse, metaFree atomic.Int64
}

// Open opens or creates the state under dir, on the operating system's
// file system (OSFS).
func Open(dir string) (*DB, error) { return OpenOn(OSFS{}, dir) }

// OpenOn opens or creates the state under dir on fsys, which must reach
// the operating system's files (OSFS, or a FailFS over it): bbolt opens
// meta.db and snapshot files by path.
func OpenOn(fsys FS, dir string) (*DB, error) {
	if err := mkdirAllDurable(fsys, dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	chunks, err := OpenChunkStore(fsys, filepath.Join(dir, "chunks"))
	if err != nil {
		return nil, err
	}
	d := &DB{fs: fsys, dir: dir, Chunks: chunks}
	if err := d.openBolt(); err != nil {
		return nil, err
	}
	chunks.metaUsage = func() (int64, int64) { return d.metaInUse.Load(), d.metaFree.Load() }
	return d, nil
}

// openBolt opens meta.db, initialising what it lacks. A store that has
// everything is opened without a write: a node whose disk is full must
// still come up and serve what it holds.
func (d *DB) openBolt() error {
	p := filepath.Join(d.dir, metaFile)
	b, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s (is another shoal process using this data directory?): %w", p, err)
	}
	ready := false
	err = b.View(func(tx *bolt.Tx) error {
		ready = tx.Bucket(bucketLog) != nil && tx.Bucket(bucketState) != nil && namespaceReady(tx)
		return nil
	})
	if err == nil && !ready {
		err = b.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketLog, bucketState} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return initNamespace(tx)
		})
	}
	if err != nil {
		b.Close()
		return fmt.Errorf("initialise %s: %w", p, diskFault(err))
	}
	d.bolt = b
	d.measureMeta()
	return nil
}

// measureMeta records how much of meta.db is in use and how much is free
// pages, which bbolt reuses before it grows the file: what the space
// accounting counts (see space.go). The caller holds mu or owns d.
func (d *DB) measureMeta() {
	var size int64
	if err := d.bolt.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		return
	}
	st := d.bolt.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(d.bolt.Info().PageSize)
	d.metaInUse.Store(max(size-free, 0))
	d.metaFree.Store(min(free, size))
}

// SetLimits sets the node's capacity and the reserve its disk keeps for
// metadata (see space.go).
func (d *DB) SetLimits(l Limits) { d.Chunks.SetLimits(l) }

// Usage measures what the node's data takes (chunks and meta.db) and what
// its disk has left.
func (d *DB) Usage() Usage { return d.Chunks.Usage() }

// Room is how many bytes of new data metadata may take before the node
// reaches its capacity or its disk the reserve (Limits.MetaRoom): the
// log refuses proposals that add more (see replication).
func (d *DB) Room() int64 {
	return d.Chunks.Limits().MetaRoom(d.Usage())
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
	if d.bolt == nil {
		return errors.New("store is closed")
	}
	return d.bolt.View(fn)
}

// update runs fn in a write transaction. A disk that refuses the write
// fails it with meta.ErrDiskFailed.
func (d *DB) update(fn func(tx *bolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.bolt == nil {
		return errors.New("store is closed")
	}
	p := filepath.Join(d.dir, metaFile)
	if err := refusedWrite(d.fs, p); err != nil {
		return diskFault(err)
	}
	err := d.bolt.Update(fn)
	if err == nil {
		d.measureMeta()
	}
	marked := diskFault(err)
	var pe *fs.PathError
	if marked != err && !errors.As(err, &pe) {
		return fmt.Errorf("write %s: %w", p, marked) // an fsync's errno names no file
	}
	return marked
}

func getBallot(st *bolt.Bucket, k []byte) (meta.Ballot, error) {
	var b meta.Ballot
	v := st.Get(k)
	if v == nil {
		return b, nil
	}
	if err := msgpack.Unmarshal(v, &b); err != nil {
		return b, fmt.Errorf("decode %s: %w", k, err)
	}
	return b, nil
}

func putMsgpack(bk *bolt.Bucket, k []byte, v any) error {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return err
	}
	return bk.Put(k, b)
}

// putFlag records a flag as the presence of key k.
func putFlag(bk *bolt.Bucket, k []byte, on bool) error {
	if on {
		return bk.Put(k, []byte{1})
	}
	return bk.Delete(k)
}

// Promised returns the highest ballot this node has promised.
func (d *DB) Promised() (meta.Ballot, error) {
	var b meta.Ballot
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		b, err = getBallot(tx.Bucket(bucketState), keyPromised)
		return err
	})
	return b, err
}

// SetPromised durably records a promise. It never lowers the promise.
func (d *DB) SetPromised(b meta.Ballot) error {
	return d.update(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		cur, err := getBallot(st, keyPromised)
		if err != nil {
			return err
		}
		if !cur.Less(b) {
			return nil
		}
		return putMsgpack(st, keyPromised, b)
	})
}

// LogState describes the log's bounds.
type LogState struct {
	SnapIndex  uint64 // entries up to here were compacted
	SnapBallot meta.Ballot
	LastIndex  uint64 // SnapIndex when the log is empty
	LastBallot meta.Ballot
	Applied    uint64
}

// State returns the log's bounds and the applied index.
func (d *DB) State() (LogState, error) {
	var s LogState
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		s, err = logState(tx)
		return err
	})
	return s, err
}

func logState(tx *bolt.Tx) (LogState, error) {
	var s LogState
	st := tx.Bucket(bucketState)
	s.SnapIndex = u64(st.Get(keySnapIndex))
	s.Applied = u64(st.Get(keyApplied))
	var err error
	if s.SnapBallot, err = getBallot(st, keySnapBallot); err != nil {
		return s, err
	}
	s.LastIndex, s.LastBallot = s.SnapIndex, s.SnapBallot
	k, v := tx.Bucket(bucketLog).Cursor().Last()
	if k != nil {
		var e meta.Entry
		if err := msgpack.Unmarshal(v, &e); err != nil {
			return s, fmt.Errorf("decode log entry %d: %w", u64(k), err)
		}
		s.LastIndex, s.LastBallot = e.Index, e.Ballot
	}
	return s, nil
}

// BallotAt returns the ballot of entry i, which may be the snapshot point.
func (d *DB) BallotAt(i uint64) (meta.Ballot, error) {
	var b meta.Ballot
	err := d.view(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		snap := u64(st.Get(keySnapIndex))
		switch {
		case i == snap:
			var err error
			b, err = getBallot(st, keySnapBallot)
			return err
		case i < snap:
			return fmt.Errorf("ballot of entry %d: %w", i, meta.ErrCompacted)
		}
		v := tx.Bucket(bucketLog).Get(key(i))
		if v == nil {
			return fmt.Errorf("log entry %d: %w", i, meta.ErrNotFound)
		}
		var e meta.Entry
		if err := msgpack.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decode log entry %d: %w", i, err)
		}
		b = e.Ballot
		return nil
	})
	return b, err
}

// Entries returns entries lo..hi inclusive, stopping early once maxBytes of
// encoded entries are gathered (at least one entry is returned).
func (d *DB) Entries(lo, hi uint64, maxBytes int) ([]meta.Entry, error) {
	var out []meta.Entry
	err := d.view(func(tx *bolt.Tx) error {
		if snap := u64(tx.Bucket(bucketState).Get(keySnapIndex)); lo <= snap {
			return fmt.Errorf("entries from %d (snapshot at %d): %w", lo, snap, meta.ErrCompacted)
		}
		c := tx.Bucket(bucketLog).Cursor()
		size := 0
		for k, v := c.Seek(key(lo)); k != nil && u64(k) <= hi; k, v = c.Next() {
			if len(out) > 0 && size+len(v) > maxBytes {
				break
			}
			var e meta.Entry
			if err := msgpack.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode log entry %d: %w", u64(k), err)
			}
			out = append(out, e)
			size += len(v)
		}
		return nil
	})
	return out, err
}

// Append writes entries, which must be contiguous, replacing any entries at
// or after the first one's index. It refuses to replace applied entries:
// they are committed, and replacing one would break invariant 1.
func (d *DB) Append(entries []meta.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	return d.update(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		first := entries[0].Index
		if applied := u64(st.Get(keyApplied)); first <= applied {
			return fmt.Errorf("append at %d would replace applied entry (applied %d): refusing", first, applied)
		}
		s, err := logState(tx)
		if err != nil {
			return err
		}
		if first > s.LastIndex+1 {
			return fmt.Errorf("append at %d leaves a gap after %d", first, s.LastIndex)
		}
		lg := tx.Bucket(bucketLog)
		for i := first; i <= s.LastIndex; i++ {
			if err := lg.Delete(key(i)); err != nil {
				return err
			}
		}
		for n, e := range entries {
			if e.Index != first+uint64(n) {
				return fmt.Errorf("append: entry %d out of sequence", e.Index)
			}
			if err := putMsgpack(lg, key(e.Index), &e); err != nil {
				return fmt.Errorf("encode log entry %d: %w", e.Index, err)
			}
		}
		return nil
	})
}

// Apply applies the log entries from Applied()+1 through upto to the
// namespace in one transaction and returns their results in order. Entries
// must be present in the log.
func (d *DB) Apply(upto uint64) ([]meta.Entry, []meta.Result, error) {
	var entries []meta.Entry
	var results []meta.Result
	err := d.update(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		applied := u64(st.Get(keyApplied))
		lg := tx.Bucket(bucketLog)
		clock := groupClock(tx)
		was := clock
		for i := applied + 1; i <= upto; i++ {
			v := lg.Get(key(i))
			if v == nil {
				return fmt.Errorf("apply entry %d: %w", i, meta.ErrNotFound)
			}
			var e meta.Entry
			if err := msgpack.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode log entry %d: %w", i, err)
			}
			clock = max(clock, e.Op.Clock)
			r, err := applyOnce(tx, &e.Op, clock)
			if err != nil {
				return fmt.Errorf("apply entry %d: %w", i, err)
			}
			entries = append(entries, e)
			results = append(results, r)
			applied = i
		}
		if clock != was {
			if err := st.Put(keyClock, key(uint64(clock))); err != nil {
				return err
			}
		}
		return st.Put(keyApplied, key(applied))
	})
	if err != nil {
		return nil, nil, err
	}
	return entries, results, nil
}

// Config returns the configuration in effect: the voting members of the
// last OpConfig entry in the log, else those recorded at the snapshot
// point, and whether it says the group is still forming (see
// meta.Op.Forming). Like Raft, a configuration takes effect as soon as it
// is in the log.
func (d *DB) Config() (members []meta.Member, forming bool, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var e meta.Entry
			if err := msgpack.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode log entry %d: %w", u64(k), err)
			}
			if e.Op.Kind == meta.OpConfig {
				members, forming = e.Op.Members, e.Op.Forming
				return nil
			}
		}
		st := tx.Bucket(bucketState)
		forming = st.Get(keyForming) != nil
		v := st.Get(keyConfig)
		if v == nil {
			return nil
		}
		return msgpack.Unmarshal(v, &members)
	})
	return members, forming, err
}

// Compact discards log entries up to and including upto, which must be
// applied, recording the configuration in effect at that point.
func (d *DB) Compact(upto uint64) error {
	return d.update(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		if applied := u64(st.Get(keyApplied)); upto > applied {
			return fmt.Errorf("compact to %d beyond applied %d", upto, applied)
		}
		snap := u64(st.Get(keySnapIndex))
		if upto <= snap {
			return nil
		}
		lg := tx.Bucket(bucketLog)
		var last meta.Entry
		for i := snap + 1; i <= upto; i++ {
			v := lg.Get(key(i))
			if v == nil {
				return fmt.Errorf("compact: entry %d: %w", i, meta.ErrNotFound)
			}
			// A fresh Entry each time: decoding leaves the fields an
			// entry omits (Forming when false) as the previous one had
			// them.
			last = meta.Entry{}
			if err := msgpack.Unmarshal(v, &last); err != nil {
				return fmt.Errorf("decode log entry %d: %w", i, err)
			}
			if last.Op.Kind == meta.OpConfig {
				if err := putMsgpack(st, keyConfig, last.Op.Members); err != nil {
					return err
				}
				if err := putFlag(st, keyForming, last.Op.Forming); err != nil {
					return err
				}
			}
			if err := lg.Delete(key(i)); err != nil {
				return err
			}
		}
		if err := st.Put(keySnapIndex, key(upto)); err != nil {
			return err
		}
		return putMsgpack(st, keySnapBallot, last.Ballot)
	})
}

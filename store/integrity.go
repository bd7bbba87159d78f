package store

// Checking meta.db while the node runs, and what to do once it is found
// corrupt. Open verifies the whole file before the node serves from it;
// Verify and VerifyBucket let a node keep checking it at rest, a bucket at
// a time, so that no read transaction lasts long. A corrupt meta.db is
// not repaired in place: which of its records are still right cannot be
// known, and the group holds a whole copy. Quarantine moves it aside and
// leaves an empty one, marked rebuilding, which the group fills the way
// it fills a wiped disk.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// Verify checks every record of meta.db against its checksum and every
// bucket against its sum, in one read transaction, and returns the bytes
// it read. A mismatch is a *CorruptError (wrapping meta.ErrCorrupt) and
// marks the store corrupt (see Corrupted).
func (d *DB) Verify() (int64, error) {
	var n int64
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		n, err = verifyAll(tx)
		return err
	})
	return n, err
}

// Buckets lists the buckets of meta.db, with those bucket sums still
// counts records of, in name order.
func (d *DB) Buckets() ([]string, error) {
	var names []string
	err := d.view(func(tx *bolt.Tx) error {
		for _, name := range bucketNames(tx) {
			names = append(names, string(name))
		}
		return bucketIn(tx, bucketSums).forEach(func(name, _ []byte) error {
			names = append(names, string(name))
			return nil
		})
	})
	slices.Sort(names)
	return slices.Compact(names), err
}

// VerifyBucket is Verify for one bucket: its records and its sum (a
// bucket that is gone must have had none).
func (d *DB) VerifyBucket(name string) (int64, error) {
	var n int64
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		if hasBucket(tx, []byte(name)) {
			n, err = verifyBucket(tx, []byte(name))
			return err
		}
		n, err := bucketIn(tx, bucketSums).count([]byte(name))
		if err == nil && n > 0 {
			err = &CorruptError{Bucket: name, Why: fmt.Sprintf("the bucket is gone, with the %d records written to it", n)}
		}
		return err
	})
	return n, err
}

// Quarantined says what Quarantine did.
type Quarantined struct {
	// Moved is where the corrupt meta.db is now.
	Moved string
	// Promise is the promise carried over to the new meta.db; PromiseKept
	// is false when the old file's record of it could not be trusted.
	Promise     meta.Ballot
	PromiseKept bool
}

// Quarantine moves the meta.db of the data directory dir aside, to
// meta.db.corrupt-NANOS (NANOS: now in Unix nanoseconds), and its log
// files with it, to wal.corrupt-NANOS, for an operator to inspect or
// delete, and puts an empty one in its place, marked
// rebuilding (see DB.Rebuilding): the node then rejoins its group as a
// member with a wiped disk does, and is filled from its peers. The
// promise of the old file is carried over when its record still
// verifies, since a promise must never go backwards. No process may have
// dir's store open.
func Quarantine(dir string, now time.Time) (Quarantined, error) {
	p := filepath.Join(dir, metaFile)
	q := Quarantined{Moved: fmt.Sprintf("%s.corrupt-%d", p, now.UnixNano())}
	q.Promise, q.PromiseKept = salvagePromise(p)
	if err := os.Rename(p, q.Moved); err != nil && !errors.Is(err, os.ErrNotExist) {
		return q, fmt.Errorf("move corrupt %s aside: %w", p, err)
	}
	wal := filepath.Join(dir, walDirName)
	if err := os.Rename(wal, fmt.Sprintf("%s.corrupt-%d", wal, now.UnixNano())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return q, fmt.Errorf("move the log files of corrupt %s aside: %w", p, err)
	}
	if err := (OSFS{}).SyncDir(dir); err != nil {
		return q, err
	}
	b, err := openBoltFile(p, false)
	if err != nil {
		return q, err
	}
	err = guard(func() error {
		return b.Update(func(tx *bolt.Tx) error {
			if err := initStore(tx); err != nil {
				return err
			}
			if err := bucketIn(tx, bucketState).put(keyRebuilding, nil); err != nil || !q.PromiseKept {
				return err
			}
			return raisePromise(tx, q.Promise)
		})
	})
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return q, fmt.Errorf("make an empty %s: %w", p, err)
	}
	return q, nil
}

// Quarantine is the package's Quarantine for an open store: it waits for
// every call under way, swaps meta.db for an empty one and clears the
// corrupt state, so the store serves again, empty and rebuilding.
func (d *DB) Quarantine(now time.Time) (Quarantined, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bolt != nil {
		d.bolt.Close()
		d.bolt = nil
	}
	q, err := Quarantine(d.dir, now)
	if err != nil {
		return q, err
	}
	if err := d.openBolt(); err != nil {
		return q, err
	}
	d.corruptMu.Lock()
	defer d.corruptMu.Unlock()
	d.corrupt.Store(nil)
	d.corruptCh = make(chan struct{})
	return q, nil
}

// salvagePromise reads the promise of the meta.db at p, if its record
// can be trusted: it verifies, or the file predates checksums.
func salvagePromise(p string) (meta.Ballot, bool) {
	b, err := openBoltFile(p, true)
	if err != nil {
		return meta.Ballot{}, false
	}
	defer b.Close()
	var promised meta.Ballot
	err = guard(func() error {
		return b.View(func(tx *bolt.Tx) error {
			st := bucketIn(tx, bucketState)
			if !st.exists() {
				return errors.New("no state bucket")
			}
			if st.unsealed(keyFormat) == nil && !hasBucket(tx, bucketSums) {
				v := st.unsealed(keyPromised) // written before checksums
				if v == nil {
					return nil
				}
				return msgpack.Unmarshal(v, &promised)
			}
			v, err := st.get(keyPromised)
			if err != nil || v == nil {
				return err
			}
			return msgpack.Unmarshal(v, &promised)
		})
	})
	return promised, err == nil
}

// usable fails once the store is closed or found corrupt. Call it with
// d.mu held.
func (d *DB) usable() error {
	if d.bolt == nil {
		return errors.New("store is closed")
	}
	if err := d.corrupt.Load(); err != nil {
		return *err
	}
	return nil
}

// noteCorrupt records err if it proves meta.db corrupt, and returns it.
func (d *DB) noteCorrupt(err error) error {
	if err == nil || !isCorrupt(err) {
		return err
	}
	err = fmt.Errorf("%s: %w", filepath.Join(d.dir, metaFile), err)
	d.corruptMu.Lock()
	defer d.corruptMu.Unlock()
	if d.corrupt.Load() == nil {
		d.corrupt.Store(&err)
		close(d.corruptCh)
	}
	return err
}

// Corrupt returns why meta.db was found corrupt, or nil.
func (d *DB) Corrupt() error {
	if err := d.corrupt.Load(); err != nil {
		return *err
	}
	return nil
}

// Corrupted returns a channel closed once a call finds meta.db corrupt
// (Corrupt then says why). Every call fails from then on, until
// Quarantine replaces the file, which makes a new channel.
func (d *DB) Corrupted() <-chan struct{} {
	d.corruptMu.Lock()
	defer d.corruptMu.Unlock()
	return d.corruptCh
}

// guard runs fn, turning a panic or a memory fault inside bbolt (which
// trusts its pages and has no other way to report one it cannot make
// sense of) into a CorruptError. Any other panic is a bug and goes on.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if _, fault := r.(interface{ Addr() uintptr }); !fault && !panickedInBolt() {
			panic(r)
		}
		err = &CorruptError{Why: fmt.Sprintf("bbolt cannot read its pages: %v", r)}
	}()
	return fn()
}

// panickedInBolt reports whether the panic being recovered was raised by
// bbolt's code, from a deferred function.
func panickedInBolt() bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(0, pcs)])
	past := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			past = true
		case past && !strings.HasPrefix(f.Function, "runtime."):
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

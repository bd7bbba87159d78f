package store

// The replicated log: its state, the entries a primary sends and a member
// appends, and applying them to the namespace. meta.db's bucket log holds
// the entries through the applied index, the files of wal.go the rest.

import (
	"bytes"
	"fmt"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// openLog opens the log files of the meta.db b (see wal.go). Entries
// after the applied index that b's log bucket still holds (written there
// before these files existed) move to the files first.
func openLog(fsys FS, dir string, b *bolt.DB, usage *atomic.Int64) (*wal, error) {
	var id, applied uint64
	var older []walEntry
	err := guard(func() error {
		return b.View(func(tx *bolt.Tx) error {
			st := bucketIn(tx, bucketState)
			var err error
			if id, err = getU64(st, keyWAL); err != nil {
				return err
			}
			if applied, err = getU64(st, keyApplied); err != nil {
				return err
			}
			c := bucketIn(tx, bucketLog).cursor()
			for k, v, err := c.seek(key(applied + 1)); k != nil || err != nil; k, v, err = c.next() {
				if err != nil {
					return err
				}
				e := walEntry{enc: bytes.Clone(v)} // v lives as long as tx
				if err := msgpack.Unmarshal(e.enc, &e.Entry); err != nil {
					return fmt.Errorf("decode log entry %d: %w", u64(k), err)
				}
				older = append(older, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	w, err := openWAL(fsys, dir, id, applied, older, usage)
	if err != nil || len(older) == 0 {
		return w, err
	}
	w.wmu.Lock()
	err = w.rotate()
	w.wmu.Unlock()
	if err == nil {
		err = guard(func() error {
			return b.Update(func(tx *bolt.Tx) error {
				lg := bucketIn(tx, bucketLog)
				for _, e := range older {
					if err := lg.del(key(e.Index)); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	if err != nil {
		w.close()
		return nil, fmt.Errorf("move unapplied log entries out of meta.db: %w", err)
	}
	return w, nil
}

// getEntry decodes the log entry at index i (ok false: none there).
func getEntry(lg bucket, i uint64) (meta.Entry, bool, error) {
	var e meta.Entry
	v, err := lg.get(key(i))
	if err != nil || v == nil {
		return e, false, err
	}
	if err := msgpack.Unmarshal(v, &e); err != nil {
		return e, false, fmt.Errorf("decode log entry %d: %w", i, err)
	}
	return e, true, nil
}

// LogState describes the log's bounds.
type LogState struct {
	SnapIndex  uint64 // entries up to here were compacted
	SnapBallot meta.Ballot
	LastIndex  uint64 // SnapIndex when the log is empty
	LastBallot meta.Ballot
	Applied    uint64
	// Rebuilding: see DB.Rebuilding.
	Rebuilding bool
}

// State returns the log's bounds and the applied index.
func (d *DB) State() (LogState, error) {
	var s LogState
	err := d.viewLog(func(tx *bolt.Tx, tail []walEntry) error {
		var err error
		s, err = logStateBefore(tx, tail)
		if n := len(tail); n > 0 && tail[n-1].Index > s.LastIndex {
			s.LastIndex, s.LastBallot = tail[n-1].Index, tail[n-1].Ballot
		}
		return err
	})
	return s, err
}

// logState returns the state of the log in meta.db, which ends at the
// applied index: State adds the entries after it.
func logState(tx *bolt.Tx) (LogState, error) { return logStateBefore(tx, nil) }

// logStateBefore is logState for a log whose entries go on with tail: the
// last entry in meta.db is read (checked against its checksum, decoded)
// only when tail does not end past it (a replica asks for the state twice
// per Append, while its tail holds what it has not applied yet); other
// reads of the log check it.
func logStateBefore(tx *bolt.Tx, tail []walEntry) (LogState, error) {
	var s LogState
	st := bucketIn(tx, bucketState)
	var err error
	if s.SnapIndex, err = getU64(st, keySnapIndex); err != nil {
		return s, err
	}
	if s.Applied, err = getU64(st, keyApplied); err != nil {
		return s, err
	}
	if s.SnapBallot, err = getBallot(st, keySnapBallot); err != nil {
		return s, err
	}
	if s.Rebuilding, err = rebuilding(tx); err != nil {
		return s, err
	}
	s.LastIndex, s.LastBallot = s.SnapIndex, s.SnapBallot
	log := bucketIn(tx, bucketLog)
	if n := len(tail); n > 0 && log.exists() && tail[n-1].Index > max(s.SnapIndex, u64(log.lastKey())) {
		return s, nil // tail's last is the log's: the caller takes it
	}
	k, v, err := log.cursor().last()
	if err != nil {
		return s, err
	}
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
	err := d.viewLog(func(tx *bolt.Tx, tail []walEntry) error {
		if e, ok := inTail(tail, i); ok {
			b = e.Ballot
			return nil
		}
		st := bucketIn(tx, bucketState)
		snap, err := getU64(st, keySnapIndex)
		switch {
		case err != nil:
			return err
		case i == snap:
			b, err = getBallot(st, keySnapBallot)
			return err
		case i < snap:
			return fmt.Errorf("ballot of entry %d: %w", i, meta.ErrCompacted)
		}
		e, ok, err := getEntry(bucketIn(tx, bucketLog), i)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("log entry %d: %w", i, meta.ErrNotFound)
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
	err := d.viewLog(func(tx *bolt.Tx, tail []walEntry) error {
		size := 0
		full := func(n int) bool { return len(out) > 0 && size+n > maxBytes }
		if len(tail) == 0 || lo < tail[0].Index {
			snap, err := getU64(bucketIn(tx, bucketState), keySnapIndex)
			if err != nil {
				return err
			}
			if lo <= snap {
				return fmt.Errorf("entries from %d (snapshot at %d): %w", lo, snap, meta.ErrCompacted)
			}
			c := bucketIn(tx, bucketLog).cursor()
			for k, v, err := c.seek(key(lo)); ; k, v, err = c.next() {
				if err != nil {
					return err
				}
				if k == nil || u64(k) > hi {
					break
				}
				if full(len(v)) {
					return nil
				}
				var e meta.Entry
				if err := msgpack.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("decode log entry %d: %w", u64(k), err)
				}
				out = append(out, e)
				size += len(v)
				lo = e.Index + 1
			}
		}
		for ; lo <= hi; lo++ {
			e, ok := inTail(tail, lo)
			if !ok || full(len(e.enc)) {
				break
			}
			out = append(out, e.Entry)
			size += len(e.enc)
		}
		return nil
	})
	return out, err
}

// Append writes entries, which must be contiguous, replacing any entries at
// or after the first one's index, and returns once they are durable. It
// refuses to replace applied entries (or entries an apply has taken):
// they are committed, and replacing one would break invariant 1.
func (d *DB) Append(entries []meta.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := d.usable(); err != nil {
		return err
	}
	return d.wal.append(entries)
}

// inTail returns entry i of tail, if it holds it.
func inTail(tail []walEntry, i uint64) (walEntry, bool) {
	if len(tail) == 0 || i < tail[0].Index || i-tail[0].Index >= uint64(len(tail)) {
		return walEntry{}, false
	}
	return tail[i-tail[0].Index], true
}

// Apply applies the log entries from Applied()+1 through upto to the
// namespace in one transaction and returns their results in order. Entries
// must be present in the log.
func (d *DB) Apply(upto uint64) ([]meta.Entry, []meta.Result, error) {
	return d.ApplyThen(upto, nil, nil)
}

// ApplyThen is Apply, calling computed with the entries and their results
// once every one is applied in the transaction, before it commits. Entries
// committed in the log have their results decided by the log alone: a
// proposer may have its answer while the transaction is made durable, and
// if that fails (a crash, a disk error), the entries are applied again
// from the log with the same results. The store's readers see them only
// after the commit; before it, only the Reader handed to next does.
//
// If next is not nil, it is called after each computed batch with the
// last index applied and a Reader of the transaction's state (valid only
// during the call), and returns the index to apply through next in the
// same transaction, or 0 to commit: a busy primary applies several
// batches per commit, and the commit's fsyncs, instead of one each, and
// serves the reads that need what it applied from the Reader meanwhile.
func (d *DB) ApplyThen(upto uint64, computed func([]meta.Entry, []meta.Result), next func(applied uint64, r Reader) uint64) ([]meta.Entry, []meta.Result, error) {
	var entries []meta.Entry
	var results []meta.Result
	var took uint64 // the last index taken from the log files
	err := d.update(func(tx *bolt.Tx) error {
		st := bucketIn(tx, bucketState)
		applied, err := getU64(st, keyApplied)
		if err != nil || upto <= applied {
			return err
		}
		// The log bucket, the namespace's and the request records' take
		// a record or more per entry: their counts are written once, at
		// the end.
		a := newApplying()
		lg := a.gather(bucketIn(tx, bucketLog))
		clock, err := groupClock(tx)
		if err != nil {
			return err
		}
		was, from := clock, applied
		for upto > applied {
			es, err := d.wal.take(from, upto)
			if err != nil {
				return err
			}
			took = upto
			round := len(entries)
			for _, we := range es[applied-from:] {
				e, i := we.Entry, we.Index
				if err := lg.put(key(i), we.enc); err != nil {
					return err
				}
				clock = max(clock, e.Op.Clock)
				r, err := applyEntry(tx, &e.Op, clock, a)
				if err != nil {
					return fmt.Errorf("apply entry %d: %w", i, err)
				}
				entries = append(entries, e)
				results = append(results, r)
				applied = i
			}
			if computed != nil {
				computed(entries[round:], results[round:])
			}
			if next == nil {
				break
			}
			upto = next(applied, Reader{d: d, tx: tx})
		}
		if err := a.counts.flush(tx); err != nil {
			return err
		}
		if clock != was {
			if err := st.put(keyClock, key(uint64(clock))); err != nil {
				return err
			}
		}
		return st.put(keyApplied, key(applied))
	})
	if took != 0 {
		d.wal.setApplied(took, err == nil)
	}
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
	err = d.viewLog(func(tx *bolt.Tx, tail []walEntry) error {
		for i := len(tail) - 1; i >= 0; i-- {
			if op := &tail[i].Op; op.Kind == meta.OpConfig {
				members, forming = op.Members, op.Forming
				return nil
			}
		}
		c := bucketIn(tx, bucketLog).cursor()
		for k, v, err := c.last(); ; k, v, err = c.prev() {
			if err != nil {
				return err
			}
			if k == nil {
				break
			}
			var e meta.Entry
			if err := msgpack.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode log entry %d: %w", u64(k), err)
			}
			if e.Op.Kind == meta.OpConfig {
				members, forming = e.Op.Members, e.Op.Forming
				return nil
			}
		}
		st := bucketIn(tx, bucketState)
		f, err := st.get(keyForming)
		if err != nil {
			return err
		}
		forming = f != nil
		v, err := st.get(keyConfig)
		if err != nil || v == nil {
			return err
		}
		return msgpack.Unmarshal(v, &members)
	})
	return members, forming, err
}

// Compact discards log entries up to and including upto, which must be
// applied, recording the configuration in effect at that point.
func (d *DB) Compact(upto uint64) error {
	return d.update(func(tx *bolt.Tx) error {
		st := bucketIn(tx, bucketState)
		applied, err := getU64(st, keyApplied)
		if err != nil {
			return err
		}
		if upto > applied {
			return fmt.Errorf("compact to %d beyond applied %d", upto, applied)
		}
		snap, err := getU64(st, keySnapIndex)
		if err != nil {
			return err
		}
		if upto <= snap {
			return nil
		}
		lg := bucketIn(tx, bucketLog)
		var last meta.Entry
		for i := snap + 1; i <= upto; i++ {
			e, ok, err := getEntry(lg, i)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("compact: entry %d: %w", i, meta.ErrNotFound)
			}
			last = e
			if last.Op.Kind == meta.OpConfig {
				if err := putMsgpack(st, keyConfig, last.Op.Members); err != nil {
					return err
				}
				if err := putFlag(st, keyForming, last.Op.Forming); err != nil {
					return err
				}
			}
			if err := lg.del(key(i)); err != nil {
				return err
			}
		}
		if err := st.put(keySnapIndex, key(upto)); err != nil {
			return err
		}
		return putMsgpack(st, keySnapBallot, last.Ballot)
	})
}

package replication

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"shoal/meta"
	"shoal/store"
)

// simLog is a member's durable state for the protocol scripts: the log
// with the semantics of store.DB, the promise, and a namespace reduced to
// the set of directories the applied entries made. Every write is durable
// at once, as a committed bbolt transaction is.
type simLog struct {
	promised    meta.Ballot
	snapIndex   uint64
	snapBallot  meta.Ballot
	snapConfig  []meta.Member // the configuration in effect at snapIndex
	snapForming bool          // whether it says the group is forming
	applied     uint64
	entries     []meta.Entry // snapIndex+1 onwards
	dirs        map[string]bool
	room        int64 // what Room reports
}

var _ Log = (*simLog)(nil)

func newSimLog() *simLog { return &simLog{dirs: map[string]bool{}, room: math.MaxInt64} }

// Room reports the room the script gave the member's disk (unbounded
// unless it said otherwise).
func (l *simLog) Room() int64 { return l.room }

func (l *simLog) last() (uint64, meta.Ballot) {
	if n := len(l.entries); n > 0 {
		return l.entries[n-1].Index, l.entries[n-1].Ballot
	}
	return l.snapIndex, l.snapBallot
}

func (l *simLog) at(i uint64) meta.Entry { return l.entries[i-l.snapIndex-1] }

// State returns the log's bounds and the applied index.
func (l *simLog) State() (store.LogState, error) {
	last, lastBallot := l.last()
	return store.LogState{SnapIndex: l.snapIndex, SnapBallot: l.snapBallot, LastIndex: last, LastBallot: lastBallot, Applied: l.applied}, nil
}

// BallotAt returns the ballot of entry i, which may be the snapshot point.
func (l *simLog) BallotAt(i uint64) (meta.Ballot, error) {
	last, _ := l.last()
	switch {
	case i == l.snapIndex:
		return l.snapBallot, nil
	case i < l.snapIndex:
		return meta.Ballot{}, fmt.Errorf("ballot of entry %d: %w", i, meta.ErrCompacted)
	case i > last:
		return meta.Ballot{}, fmt.Errorf("log entry %d: %w", i, meta.ErrNotFound)
	}
	return l.at(i).Ballot, nil
}

// Entries returns entries lo..hi, stopping once maxBytes of encoded
// entries are gathered (at least one entry is returned).
func (l *simLog) Entries(lo, hi uint64, maxBytes int) ([]meta.Entry, error) {
	if lo <= l.snapIndex {
		return nil, fmt.Errorf("entries from %d (snapshot at %d): %w", lo, l.snapIndex, meta.ErrCompacted)
	}
	last, _ := l.last()
	var out []meta.Entry
	size := 0
	for i := lo; i <= hi && i <= last; i++ {
		b, err := msgpack.Marshal(l.at(i))
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && size+len(b) > maxBytes {
			break
		}
		var e meta.Entry
		if err := msgpack.Unmarshal(b, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
		size += len(b)
	}
	return out, nil
}

// Config returns the members of the last configuration entry in the log,
// else those in effect at the snapshot point, and whether it says the
// group is forming.
func (l *simLog) Config() ([]meta.Member, bool, error) {
	for i := len(l.entries) - 1; i >= 0; i-- {
		if op := l.entries[i].Op; op.Kind == meta.OpConfig {
			return slices.Clone(op.Members), op.Forming, nil
		}
	}
	return slices.Clone(l.snapConfig), l.snapForming, nil
}

// SetPromised records a promise; it never lowers the promise.
func (l *simLog) SetPromised(b meta.Ballot) {
	if l.promised.Less(b) {
		l.promised = b
	}
}

// Append writes contiguous entries, replacing any at or after the first
// one's index. It refuses to replace applied entries or to leave a gap.
func (l *simLog) Append(es []meta.Entry) error {
	if len(es) == 0 {
		return nil
	}
	first := es[0].Index
	if first <= l.applied {
		return fmt.Errorf("append at %d would replace applied entry (applied %d): refusing", first, l.applied)
	}
	if last, _ := l.last(); first > last+1 {
		return fmt.Errorf("append at %d leaves a gap after %d", first, last)
	}
	for n, e := range es {
		if e.Index != first+uint64(n) {
			return fmt.Errorf("append: entry %d out of sequence", e.Index)
		}
	}
	l.entries = append(l.entries[:first-l.snapIndex-1], cloneEntries(es)...)
	return nil
}

// Apply applies the entries after the applied index through upto and
// returns them with their results.
func (l *simLog) Apply(upto uint64) ([]meta.Entry, []meta.Result, error) {
	last, _ := l.last()
	if upto > last {
		return nil, nil, fmt.Errorf("apply entry %d: %w", last+1, meta.ErrNotFound)
	}
	var es []meta.Entry
	var rs []meta.Result
	for i := l.applied + 1; i <= upto; i++ {
		e := l.at(i)
		var r meta.Result
		switch e.Op.Kind {
		case meta.OpMkdir:
			if l.dirs[e.Op.Path] {
				r.Code = meta.CodeExists
			} else {
				l.dirs[e.Op.Path], r.Created = true, true
			}
		case meta.OpDelete:
			if !l.dirs[e.Op.Path] {
				r.Code = meta.CodeNotFound
			}
			delete(l.dirs, e.Op.Path)
		}
		es = append(es, e)
		rs = append(rs, r)
	}
	l.applied = max(l.applied, upto)
	return es, rs, nil
}

// Compact discards the entries through upto, which must be applied,
// recording the configuration in effect there.
func (l *simLog) Compact(upto uint64) error {
	if upto > l.applied {
		return fmt.Errorf("compact to %d beyond applied %d", upto, l.applied)
	}
	if upto <= l.snapIndex {
		return nil
	}
	for i := l.snapIndex + 1; i <= upto; i++ {
		if op := l.at(i).Op; op.Kind == meta.OpConfig {
			l.snapConfig, l.snapForming = slices.Clone(op.Members), op.Forming
		}
	}
	l.snapBallot = l.at(upto).Ballot
	l.entries = slices.Clone(l.entries[upto-l.snapIndex:])
	l.snapIndex = upto
	return nil
}

// install replaces this state with a copy of src, as installing a
// snapshot cut from src does, keeping the higher promise (and its own
// disk's room).
func (l *simLog) install(src *simLog) {
	promised, room := l.promised, l.room
	*l = simLog{
		room:        room,
		promised:    src.promised,
		snapIndex:   src.snapIndex,
		snapBallot:  src.snapBallot,
		snapConfig:  slices.Clone(src.snapConfig),
		snapForming: src.snapForming,
		applied:     src.applied,
		entries:     cloneEntries(src.entries),
		dirs:        maps.Clone(src.dirs),
	}
	l.SetPromised(promised)
}

// cloneEntries copies entries through their encoding, so that no two
// members share an Op.
func cloneEntries(es []meta.Entry) []meta.Entry {
	b, err := msgpack.Marshal(es)
	if err != nil {
		panic(err)
	}
	var out []meta.Entry
	if err := msgpack.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

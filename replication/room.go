package replication

// Room for new data. A member's disk keeps a reserve for metadata (see
// store/space.go); its Log reports how much new data it may still take
// above it, and every member says in its answers to Appends whether it
// has none left. The primary refuses, with meta.ErrNoSpace, a proposal
// that adds data (names, inline content) when it has no room itself or
// when the members with room are no longer a majority of the voters: an
// entry needs a majority to commit, so that majority must be able to
// write it without eating into the reserve. Every other proposal goes
// through, reserve or not: deletes and renames free space or keep it
// level, and the primary's own entries (a new ballot's first, membership
// changes) keep the group alive. Members always write what the primary
// sends; their reserve is what absorbs a primary's stale view of them.

import (
	"fmt"

	"shoal/meta"
)

// entryOverhead is a generous estimate of what an entry that adds data
// costs a member beyond its content: the entry's encoding in the log, the
// inode and the name it makes in the namespace, and their indexes.
const entryOverhead = 1 << 10

// dataCost is the bytes op adds to a member's metadata, roughly, or 0 for
// an op that adds none: one that removes or renames names, changes
// attributes only, or is the primary's own. Inline content counts twice:
// the log entry carries it and the namespace keeps it.
func dataCost(op meta.Op) int64 {
	switch op.Kind {
	case meta.OpPut, meta.OpCopy, meta.OpMkdir, meta.OpCreate, meta.OpSymlink, meta.OpMknod, meta.OpLink, meta.OpUserAdd:
	case meta.OpUpdate:
		if op.File == nil || len(op.File.Data) == 0 && len(op.File.Chunks) == 0 {
			return 0 // attributes, or content truncated to nothing
		}
	default:
		return 0
	}
	n := int64(entryOverhead + len(op.Path) + len(op.To) + len(op.Target))
	if op.File != nil {
		n += 2 * int64(len(op.File.Data)+len(op.File.Chunks)*entryChunkRef)
	}
	return n
}

// entryChunkRef is what one chunk of a file's list costs in an entry and
// in the namespace: its hash, size, group and key.
const entryChunkRef = 64

// spaceCheck decides which proposals of a batch the log takes, in order:
// room is what the primary's own log may take (Log.Room), voters the
// group's voting members and noRoom the members that last said they had
// none. It returns, for each op, nil or the error to refuse it with.
func spaceCheck(ops []meta.Op, room int64, self uint64, voters []meta.Member, noRoom map[uint64]bool) []error {
	errs := make([]error, len(ops))
	full := 0
	for _, v := range voters {
		if v.ID != self && noRoom[v.ID] {
			full++
		}
	}
	for i, op := range ops {
		cost := dataCost(op)
		switch {
		case cost == 0:
		case cost > room:
			errs[i] = fmt.Errorf("%w: the primary's disk has %d bytes left above the reserve kept for metadata, and the op needs about %d: delete files, or free or add disk space",
				meta.ErrNoSpace, max(room, 0), cost)
		case len(voters) > 0 && len(voters)-full < Majority(len(voters)):
			errs[i] = fmt.Errorf("%w: %d of the group's %d voters have no room left above the reserve kept for metadata, so no majority could store the op: delete files, or free or add disk space",
				meta.ErrNoSpace, full, len(voters))
		default:
			room -= cost
		}
	}
	return errs
}

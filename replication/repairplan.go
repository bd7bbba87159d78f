package replication

import (
	"slices"

	"shoal/meta"
)

// repairPlan is what a repair round learned from the members' digests and
// listings, before it copies anything: the buckets where some member
// differs from the primary, every chunk of those buckets with the members
// holding it, and the primary's own chunks there.
type repairPlan struct {
	differ  map[uint8]bool
	holders map[meta.Hash]map[uint64]bool
	mine    map[meta.Hash]bool
}

// planRepair builds the plan of a round from the members that answered;
// list returns the primary's own chunks of one bucket.
func planRepair(self uint64, members map[uint64]*holdings, list func(bucket int) []meta.Hash) repairPlan {
	p := repairPlan{differ: map[uint8]bool{}, holders: map[meta.Hash]map[uint64]bool{}, mine: map[meta.Hash]bool{}}
	for _, m := range members {
		for _, b := range m.diff {
			p.differ[b] = true
		}
	}
	for b := range p.differ {
		for _, h := range list(int(b)) {
			p.mine[h] = true
			p.holders[h] = map[uint64]bool{self: true}
		}
	}
	for _, m := range members {
		for h := range m.held {
			if p.holders[h] == nil {
				p.holders[h] = map[uint64]bool{}
			}
			p.holders[h][m.id] = true
		}
	}
	return p
}

// lacks reports whether member m lacks chunk h. A member whose bucket
// equals the primary's holds what the primary holds.
func (p repairPlan) lacks(m *holdings, h meta.Hash) bool {
	if m.held != nil && slices.Contains(m.diff, h[0]) {
		return !m.held[h]
	}
	return !p.mine[h]
}

// holdsAll reports whether m holds every chunk of the group once the round
// is over: it lacks none of the chunks that could not be copied (failed).
func (p repairPlan) holdsAll(m *holdings, failed func(meta.Hash) bool) bool {
	for h := range p.holders {
		if failed(h) && p.lacks(m, h) {
			return false
		}
	}
	return true
}

// underReplicated counts the chunks not on every member after the round.
// While a voter is down (no answer from it), that is every chunk the
// group has: the ones of the differing buckets and the primary's count
// of all the others. Otherwise it is the chunks that could not be copied.
func (p repairPlan) underReplicated(self uint64, voters []uint64, members map[uint64]*holdings, local [256]meta.BucketDigest, failed func(meta.Hash) bool) int {
	for _, id := range voters {
		if id != self && members[id] == nil {
			under := len(p.holders)
			for b := range 256 {
				if !p.differ[uint8(b)] {
					under += int(local[b].Count)
				}
			}
			return under
		}
	}
	under := 0
	for h := range p.holders {
		if failed(h) {
			under++
		}
	}
	return under
}

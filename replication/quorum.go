package replication

import (
	"slices"

	"shoal/meta"
)

// Majority is the number of members that make a majority of n.
func Majority(n int) int { return n/2 + 1 }

// QuorumIndex returns the highest log index that a majority of voters
// hold, given each voter's match index (absent voters hold nothing).
func QuorumIndex(voters []uint64, match map[uint64]uint64) uint64 {
	if len(voters) == 0 {
		return 0
	}
	held := make([]uint64, len(voters))
	for i, id := range voters {
		held[i] = match[id]
	}
	slices.Sort(held)
	// The majority-th highest value is held by at least a majority.
	return held[len(held)-Majority(len(held))]
}

// voterIDs lists the IDs of a configuration.
func voterIDs(config []meta.Member) []uint64 {
	ids := make([]uint64, len(config))
	for i, m := range config {
		ids[i] = m.ID
	}
	return ids
}

func isVoter(config []meta.Member, id uint64) bool {
	for _, m := range config {
		if m.ID == id {
			return true
		}
	}
	return false
}

func sameMembers(a, b []meta.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for _, m := range a {
		if !isVoter(b, m.ID) {
			return false
		}
	}
	return true
}

// logNewer reports whether a log ending at (ballot a, index ai) is more up
// to date than one ending at (b, bi): the later last ballot wins, then the
// longer log. Among a majority, the most up-to-date log holds every
// committed entry.
func logNewer(a meta.Ballot, ai uint64, b meta.Ballot, bi uint64) bool {
	if a != b {
		return b.Less(a)
	}
	return ai > bi
}

package router

import (
	"math"
	"math/rand/v2"
	"sort"

	"shoal/gossip"
)

// Unlimited is the free space of a group none of whose live members
// publishes a capacity (nodes that predate capacity tags, tests): such a
// group always has room.
const Unlimited = math.MaxInt64

// GroupSpace is one group as placement sees it.
type GroupSpace struct {
	Name string
	// Primary is the address of the group's primary, "" when it has none.
	Primary string
	// Used is the bytes of data (chunks and metadata) of the group's
	// fullest live member: every member holds a full copy, so this is
	// what the group keeps.
	Used int64
	// Free is the room left on the group's fullest live member (the
	// minimum Free over the live members publishing a capacity), or
	// Unlimited when no live member publishes one. A chunk goes to every
	// member, so the fullest one bounds what the group can take.
	Free int64
}

// GroupSpaces computes every group's space from a gossip view, sorted by
// name. Only live members (primary or replica, alive or suspect) count.
// A group with no live member is left out.
func GroupSpaces(ms []gossip.Member) []GroupSpace {
	byName := map[string]*GroupSpace{}
	for _, m := range ms {
		if m.Group == "" || !m.Live() || !m.Serves(m.Group) {
			continue
		}
		g := byName[m.Group]
		if g == nil {
			g = &GroupSpace{Name: m.Group, Free: Unlimited}
			byName[m.Group] = g
		}
		g.Used = max(g.Used, clampInt64(m.Used))
		if m.Cap > 0 {
			g.Free = min(g.Free, clampInt64(m.Free()))
		}
	}
	out := make([]GroupSpace, 0, len(byName))
	for name, g := range byName {
		g.Primary = gossip.PrimaryAddr(ms, name)
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// Place picks the group for a chunk of need bytes among the groups that
// have a primary, at least need bytes free and are not in exclude. The
// choice is random, weighted by free space, so groups fill up evenly
// without every router sending to the emptiest group at once. It reports
// false when no group qualifies. rnd is the only source of randomness.
func Place(groups []GroupSpace, need int64, exclude map[string]bool, rnd *rand.Rand) (string, bool) {
	var eligible []GroupSpace
	var total float64
	for _, g := range groups {
		if g.Primary == "" || g.Free < need || exclude[g.Name] {
			continue
		}
		eligible = append(eligible, g)
		// Floats: a sum of Unlimited values would overflow int64. The
		// rounding of weights near 2^63 does not matter for placement.
		total += float64(g.Free)
	}
	if len(eligible) == 0 {
		return "", false
	}
	if total == 0 { // every eligible group has exactly need == 0 free
		return eligible[rnd.IntN(len(eligible))].Name, true
	}
	r := rnd.Float64() * total
	for _, g := range eligible {
		r -= float64(g.Free)
		if r < 0 {
			return g.Name, true
		}
	}
	// Rounding left r at the very top: that belongs to the last group
	// with any weight.
	for i := len(eligible) - 1; ; i-- {
		if eligible[i].Free > 0 {
			return eligible[i].Name, true
		}
	}
}

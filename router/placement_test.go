package router

import (
	"math"
	"math/rand/v2"
	"testing"

	"shoal/gossip"
)

func member(name, group string, role gossip.Role, id uint64, st gossip.Status, used, cap uint64) gossip.Member {
	return gossip.Member{Name: name, Status: st, Tags: gossip.Tags{
		ID: id, Role: role, Group: group, Term: 1, Addr: name + ":7000", InSync: true, Used: used, Cap: cap}}
}

func TestGroupSpaces(t *testing.T) {
	alive, suspect, failed := gossip.StatusAlive, gossip.StatusSuspect, gossip.StatusFailed
	ms := []gossip.Member{
		// g1: the fullest live member bounds the group; a failed one does not count.
		member("a1", "g1", gossip.RolePrimary, 1, alive, 100, 1000),
		member("a2", "g1", gossip.RoleReplica, 2, suspect, 300, 800),
		member("a3", "g1", gossip.RoleReplica, 3, failed, 990, 1000),
		// g2: publishes no capacity: unlimited.
		member("b1", "g2", gossip.RolePrimary, 4, alive, 0, 0),
		// g3: a member without capacity is skipped, the other bounds it;
		// no primary.
		member("c1", "g3", gossip.RoleReplica, 5, alive, 50, 0),
		member("c2", "g3", gossip.RoleReplica, 6, alive, 70, 100),
		// g4: over capacity counts as no room.
		member("d1", "g4", gossip.RolePrimary, 7, alive, 200, 100),
		// Standbys, routers and dead groups are not placement targets.
		member("s1", "", gossip.RoleStandby, 8, alive, 0, 1<<40),
		member("e1", "g5", gossip.RolePrimary, 9, failed, 0, 1<<40),
	}
	got := GroupSpaces(ms)
	want := []GroupSpace{
		{Name: "g1", Primary: "a1:7000", Used: 300, Free: 500},
		{Name: "g2", Primary: "b1:7000", Used: 0, Free: Unlimited},
		{Name: "g3", Primary: "", Used: 70, Free: 30},
		{Name: "g4", Primary: "d1:7000", Used: 200, Free: 0},
	}
	if len(got) != len(want) {
		t.Fatalf("GroupSpaces = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("group %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// placeReference is the obvious, slow statement of the placement rule: the
// probability of each group, exactly.
func placeReference(groups []GroupSpace, need int64, exclude map[string]bool) map[string]float64 {
	total := 0.0
	for _, g := range groups {
		if g.Primary != "" && g.Free >= need && !exclude[g.Name] {
			total += float64(g.Free)
		}
	}
	out := map[string]float64{}
	for _, g := range groups {
		if g.Primary != "" && g.Free >= need && !exclude[g.Name] {
			out[g.Name] = float64(g.Free) / total
		}
	}
	return out
}

func TestPlaceFollowsFreeSpace(t *testing.T) {
	groups := []GroupSpace{
		{Name: "a", Primary: "a:1", Free: 1000},
		{Name: "b", Primary: "b:1", Free: 3000},
		{Name: "c", Primary: "c:1", Free: 6000},
		{Name: "full", Primary: "f:1", Free: 99},       // less than need
		{Name: "headless", Primary: "", Free: 1 << 40}, // no primary to write to
		{Name: "excluded", Primary: "x:1", Free: 1 << 40},
	}
	exclude := map[string]bool{"excluded": true}
	want := placeReference(groups, 100, exclude)
	rnd := rand.New(rand.NewPCG(1, 2))
	const draws = 100000
	counts := map[string]int{}
	for range draws {
		g, ok := Place(groups, 100, exclude, rnd)
		if !ok {
			t.Fatal("Place found no group")
		}
		counts[g]++
	}
	for name, n := range counts {
		p, ok := want[name]
		if !ok {
			t.Fatalf("Place chose %q, which must never be chosen", name)
		}
		// Five standard deviations of a binomial: fails by chance about
		// once in 3.5 million runs (and never with this seed).
		sd := math.Sqrt(draws * p * (1 - p))
		if d := math.Abs(float64(n) - draws*p); d > 5*sd {
			t.Errorf("group %s chosen %d times, want %.0f ± %.0f", name, n, draws*p, 5*sd)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("chosen groups %v, want all of %v", counts, want)
	}
}

func TestPlaceUnlimitedGroups(t *testing.T) {
	// Groups that publish no capacity share evenly; the sum of their
	// weights must not overflow into negative numbers.
	groups := []GroupSpace{{Name: "a", Primary: "a:1", Free: Unlimited}, {Name: "b", Primary: "b:1", Free: Unlimited}}
	rnd := rand.New(rand.NewPCG(3, 4))
	counts := map[string]int{}
	for range 10000 {
		g, ok := Place(groups, 1<<22, nil, rnd)
		if !ok {
			t.Fatal("Place found no group")
		}
		counts[g]++
	}
	if counts["a"] < 4500 || counts["b"] < 4500 {
		t.Errorf("counts %v, want about 5000 each", counts)
	}
}

func TestPlaceNothingAvailable(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	tests := map[string][]GroupSpace{
		"no groups":   nil,
		"all full":    {{Name: "a", Primary: "a:1", Free: 10}, {Name: "b", Primary: "b:1", Free: 0}},
		"no primary":  {{Name: "a", Free: 1 << 30}},
		"all exclude": {{Name: "x", Primary: "x:1", Free: 1 << 30}},
	}
	for name, groups := range tests {
		if g, ok := Place(groups, 100, map[string]bool{"x": true}, rnd); ok {
			t.Errorf("%s: Place = %q, want none", name, g)
		}
	}
	// Exactly the room needed is enough.
	if g, ok := Place([]GroupSpace{{Name: "a", Primary: "a:1", Free: 100}}, 100, nil, rnd); !ok || g != "a" {
		t.Errorf("Place with free == need = %q, %v", g, ok)
	}
}

package gossip

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// mem builds a live group member of group "g"; options adjust it.
func mem(name string, id uint64, role Role, term uint64, opts ...func(*Member)) Member {
	m := Member{Name: name, Tags: Tags{ID: id, Role: role, Group: "g", Term: term}, Status: StatusAlive}
	for _, o := range opts {
		o(&m)
	}
	return m
}

func inSync(m *Member) { m.InSync = true }
func boot(m *Member)   { m.Boot = true }

func status(s Status) func(*Member) { return func(m *Member) { m.Status = s } }
func group(g string) func(*Member)  { return func(m *Member) { m.Group = g } }

// name returns the member's name or "-" for nil, for compact expectations.
func name(m *Member) string {
	if m == nil {
		return "-"
	}
	return m.Name
}

func TestElect(t *testing.T) {
	cases := []struct {
		name      string
		members   []Member
		primary   string
		candidate string
		maxTerm   uint64
	}{
		{"empty view", nil, "-", "-", 0},
		{"single primary",
			[]Member{mem("a", 1, RolePrimary, 1), mem("b", 2, RoleReplica, 1, inSync)},
			"a", "-", 1},
		{"two primary claims, higher term wins",
			[]Member{mem("a", 9, RolePrimary, 2), mem("b", 1, RolePrimary, 3)},
			"b", "-", 3},
		{"two primary claims, same term, higher ID wins",
			[]Member{mem("a", 3, RolePrimary, 4), mem("b", 5, RolePrimary, 4), mem("c", 4, RoleReplica, 4)},
			"b", "-", 4},
		{"stale primary claim below a replica's term is ignored",
			[]Member{mem("a", 9, RolePrimary, 2), mem("b", 2, RoleReplica, 3, inSync), mem("c", 1, RoleReplica, 3, inSync)},
			"-", "b", 3},
		{"stale claim ignored, stale primary itself is in sync and highest",
			[]Member{mem("a", 9, RolePrimary, 2, inSync), mem("b", 2, RoleReplica, 3, inSync)},
			"-", "a", 3},
		{"failed and left members are ignored",
			[]Member{
				mem("a", 9, RolePrimary, 5, status(StatusFailed)),
				mem("b", 8, RoleReplica, 6, inSync, status(StatusLeft)),
				mem("c", 7, RoleReplica, 5, inSync, status(StatusUnknown)),
				mem("d", 2, RoleReplica, 5, inSync),
			},
			"-", "d", 5},
		{"suspect members count as live",
			[]Member{mem("a", 1, RolePrimary, 2, status(StatusSuspect)), mem("b", 2, RoleReplica, 2, inSync)},
			"a", "-", 2},
		{"other groups are ignored",
			[]Member{mem("a", 9, RolePrimary, 7, group("h")), mem("b", 1, RolePrimary, 1)},
			"b", "-", 1},
		{"routers and standbys are ignored even with a group",
			[]Member{
				mem("r", 9, RoleRouter, 8, inSync, boot),
				mem("s", 8, RoleStandby, 8, inSync, boot),
				mem("b", 1, RoleReplica, 2, inSync),
			},
			"-", "b", 2},
		{"bootstrap: the Boot member may promote",
			[]Member{mem("a", 1, RoleReplica, 0, boot), mem("b", 5, RoleReplica, 0, inSync)},
			"-", "a", 0},
		{"bootstrap: several Boot members, highest ID",
			[]Member{mem("a", 1, RoleReplica, 0, boot), mem("b", 5, RoleReplica, 0, boot)},
			"-", "b", 0},
		{"bootstrap without a Boot member: replicas wait",
			[]Member{mem("a", 1, RoleReplica, 0, inSync), mem("b", 5, RoleReplica, 0, inSync)},
			"-", "-", 0},
		{"a primary at term 0 is followed",
			[]Member{mem("a", 1, RolePrimary, 0, boot), mem("b", 5, RoleReplica, 0)},
			"a", "-", 0},
		{"after term 0, Boot alone does not qualify",
			[]Member{mem("a", 9, RoleReplica, 1, boot), mem("b", 1, RoleReplica, 1, inSync)},
			"-", "b", 1},
		{"no in-sync replica: nobody promotes",
			[]Member{mem("a", 9, RoleReplica, 4), mem("b", 1, RoleReplica, 4)},
			"-", "-", 4},
		{"highest in-sync ID wins over a higher out-of-sync ID",
			[]Member{mem("a", 9, RoleReplica, 4), mem("b", 3, RoleReplica, 4, inSync), mem("c", 2, RoleReplica, 4, inSync)},
			"-", "b", 4},
		{"candidate is by ID, not by term",
			[]Member{mem("a", 9, RoleReplica, 3, inSync), mem("b", 1, RoleReplica, 4, inSync)},
			"-", "a", 4},
		{"tie on ID between two primaries: higher name",
			[]Member{mem("x", 5, RolePrimary, 2), mem("y", 5, RolePrimary, 2)},
			"y", "-", 2},
		{"tie on ID between two candidates: higher name",
			[]Member{mem("y", 5, RoleReplica, 2, inSync), mem("x", 5, RoleReplica, 2, inSync)},
			"-", "y", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Elect(c.members, "g")
			if name(d.Primary) != c.primary || name(d.Candidate) != c.candidate || d.MaxTerm != c.maxTerm {
				t.Errorf("Elect = primary %s, candidate %s, max term %d; want %s, %s, %d",
					name(d.Primary), name(d.Candidate), d.MaxTerm, c.primary, c.candidate, c.maxTerm)
			}
		})
	}
}

func TestElectReturnsCopies(t *testing.T) {
	members := []Member{mem("a", 1, RolePrimary, 1)}
	d := Elect(members, "g")
	d.Primary.Term = 99
	if members[0].Term != 1 {
		t.Fatal("Elect returned a pointer into its input")
	}
}

// electReference restates the rules one quantifier at a time, with no
// shared helpers, as the brute-force check for Elect.
func electReference(members []Member, g string) Decision {
	live := func(m Member) bool {
		return m.Group == g && (m.Role == RolePrimary || m.Role == RoleReplica) &&
			(m.Status == StatusAlive || m.Status == StatusSuspect)
	}
	above := func(a, b Member) bool { // (ID, Name) strictly greater
		return a.ID > b.ID || (a.ID == b.ID && a.Name > b.Name)
	}
	var d Decision
	for _, m := range members {
		if live(m) && m.Term > d.MaxTerm {
			d.MaxTerm = m.Term
		}
	}
	// best returns the eligible member that no other eligible member beats.
	best := func(eligible func(Member) bool) *Member {
		for i, m := range members {
			if !eligible(m) {
				continue
			}
			beaten := false
			for j, o := range members {
				if i != j && eligible(o) && above(o, m) {
					beaten = true
				}
			}
			if !beaten {
				c := m
				return &c
			}
		}
		return nil
	}
	d.Primary = best(func(m Member) bool { return live(m) && m.Role == RolePrimary && m.Term >= d.MaxTerm })
	if d.Primary == nil {
		if d.MaxTerm == 0 {
			d.Candidate = best(func(m Member) bool { return live(m) && m.Boot })
		} else {
			d.Candidate = best(func(m Member) bool { return live(m) && m.InSync })
		}
	}
	return d
}

// randomView draws a small view whose fields collide often (few IDs, terms,
// groups), so ties and stale claims are common. Names stay unique, as in
// any gossip view.
func randomView(r *rand.Rand) []Member {
	roles := []Role{RolePrimary, RoleReplica, RoleReplica, RoleStandby, RoleRouter}
	statuses := []Status{StatusAlive, StatusAlive, StatusSuspect, StatusFailed, StatusLeft, StatusUnknown}
	groups := []string{"g", "g", "g", "h", ""}
	names := r.Perm(8)
	view := make([]Member, r.IntN(8))
	for i := range view {
		view[i] = Member{
			Name: fmt.Sprintf("n%d", names[i]),
			Tags: Tags{
				ID:     uint64(r.IntN(5)),
				Role:   roles[r.IntN(len(roles))],
				Group:  groups[r.IntN(len(groups))],
				Term:   uint64(r.IntN(4)),
				InSync: r.IntN(2) == 0,
				Boot:   r.IntN(4) == 0,
				Voter:  r.IntN(2) == 0,
			},
			Status: statuses[r.IntN(len(statuses))],
		}
	}
	return view
}

func sameDecision(a, b Decision) bool {
	same := func(x, y *Member) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return a.MaxTerm == b.MaxTerm && same(a.Primary, b.Primary) && same(a.Candidate, b.Candidate)
}

func describe(d Decision) string {
	f := func(m *Member) string {
		if m == nil {
			return "nil"
		}
		return fmt.Sprintf("%+v", *m)
	}
	return fmt.Sprintf("{primary %s, candidate %s, max term %d}", f(d.Primary), f(d.Candidate), d.MaxTerm)
}

func TestElectMatchesReference(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for range 20000 {
		view := randomView(r)
		if got, want := Elect(view, "g"), electReference(view, "g"); !sameDecision(got, want) {
			t.Fatalf("view %+v:\nElect     %s\nreference %s", view, describe(got), describe(want))
		}
	}
}

func TestElectIgnoresOrder(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for range 5000 {
		view := randomView(r)
		want := Elect(view, "g")
		for range 5 {
			r.Shuffle(len(view), func(i, j int) { view[i], view[j] = view[j], view[i] })
			if got := Elect(view, "g"); !sameDecision(got, want) {
				t.Fatalf("order changed the result for %+v:\n%s\nvs %s", view, describe(got), describe(want))
			}
		}
	}
}

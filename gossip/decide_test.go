package gossip

import (
	"math/rand/v2"
	"testing"
	"time"
)

const (
	grace   = 2 * time.Second
	backoff = 300 * time.Millisecond
)

// t0 is when the deciding node started; at gives a time after it.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func voter(m *Member) { m.Voter = true }

// started is the gate of a node started at t0.
var started = NewGate(grace, backoff, t0)

// follower is node id of group "g": a voting follower that promised
// ballot (term, by).
func follower(id, term, by uint64) Self {
	return Self{ID: id, Group: "g", Voter: true, Configured: true, Term: term, BallotNode: by}
}

// leading is node id leading (or recovering) group "g" under (term, id).
func leading(id, term uint64) Self {
	s := follower(id, term, id)
	s.Leading = true
	return s
}

func with(s Self, f func(*Self)) Self {
	f(&s)
	return s
}

// restarted is a view of group "g" after every member restarted: voters
// at term 3, none known in sync, and no primary.
func restarted() []Member {
	return []Member{
		mem("a", 1, RoleReplica, 3, voter),
		mem("b", 2, RoleReplica, 3, voter),
		mem("c", 3, RoleReplica, 3, voter),
	}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name string
		view []Member
		self Self
		gate Gate
		now  time.Time
		// primary and candidate are the names Decide reports ("-" for
		// none); promote is the term it promotes with, 0 for no promotion.
		primary, candidate string
		stepDown           bool
		promote            uint64
	}{
		{name: "the elected candidate promotes after the grace",
			view: []Member{mem("a", 1, RoleReplica, 3, inSync), mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(2, 3, 9), gate: started, now: at(3 * time.Second),
			primary: "-", candidate: "b", promote: 4},
		{name: "the promotion term is above the node's own promise",
			view: []Member{mem("a", 1, RoleReplica, 3, inSync), mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(2, 7, 5), gate: started, now: at(3 * time.Second),
			primary: "-", candidate: "b", promote: 8},
		{name: "the grace holds a fresh start back",
			view: []Member{mem("a", 1, RoleReplica, 3, inSync), mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(2, 3, 9), gate: started, now: at(time.Second),
			primary: "-", candidate: "b"},
		{name: "the grace lasts up to its end",
			view: []Member{mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(2, 3, 9), gate: started, now: at(grace),
			primary: "-", candidate: "b"},
		{name: "a group that never had a primary needs no grace",
			view: []Member{mem("a", 1, RoleReplica, 0, boot), mem("b", 2, RoleReplica, 0)},
			self: Self{ID: 1, Group: "g", Boot: true}, gate: started, now: at(0),
			primary: "-", candidate: "a", promote: 1},
		{name: "bootstrap waits for the backoff too",
			view: []Member{mem("a", 1, RoleReplica, 0, boot)},
			self: Self{ID: 1, Group: "g", Boot: true}, gate: Gate{NextTry: at(time.Second)}, now: at(0),
			primary: "-", candidate: "a"},
		{name: "a booting node whose configuration leaves it out does not lead",
			view: []Member{mem("a", 1, RoleReplica, 0, boot)},
			self: Self{ID: 1, Group: "g", Boot: true, Configured: true}, gate: started, now: at(0),
			primary: "-", candidate: "a"},
		{name: "a non-voter never leads, even as Elect's candidate",
			// Its tags still say in sync: they lag its configuration.
			view: []Member{mem("a", 1, RoleReplica, 3, inSync), mem("b", 2, RoleReplica, 3, inSync)},
			self: with(follower(2, 3, 9), func(s *Self) { s.Voter = false }), gate: started, now: at(time.Minute),
			primary: "-", candidate: "b"},
		{name: "a member with a wiped disk does not lead",
			view: []Member{mem("b", 2, RoleReplica, 0, inSync)},
			self: Self{ID: 2, Group: "g"}, gate: started, now: at(time.Minute),
			primary: "-", candidate: "-"},
		{name: "a member whose disk refuses writes does not lead",
			// Its tags still say in sync: they lag its disk.
			view: []Member{mem("a", 1, RoleReplica, 3, inSync), mem("b", 2, RoleReplica, 3, inSync)},
			self: with(follower(2, 3, 9), func(s *Self) { s.DiskFailed = true }), gate: started, now: at(time.Minute),
			primary: "-", candidate: "b"},
		{name: "another member is the candidate",
			view: []Member{mem("a", 1, RoleReplica, 3, inSync), mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(1, 3, 9), gate: started, now: at(time.Minute),
			primary: "-", candidate: "b"},
		{name: "a follower follows the primary",
			view: []Member{mem("a", 1, RolePrimary, 3), mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(2, 3, 1), gate: started, now: at(time.Minute),
			primary: "a", candidate: "-"},
		{name: "a promotion under way is not started again",
			view: []Member{mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(2, 3, 9), gate: Gate{Promoting: true}, now: at(time.Minute),
			primary: "-", candidate: "b"},
		{name: "a node recovering the log does not promote again",
			view: []Member{mem("b", 2, RoleReplica, 3, inSync)},
			self: leading(2, 4), gate: Gate{}, now: at(time.Minute),
			primary: "-", candidate: "b"},
		{name: "the backoff after a failed promotion holds",
			view: []Member{mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(2, 3, 9), gate: Gate{NextTry: at(3 * time.Second)}, now: at(3 * time.Second),
			primary: "-", candidate: "b"},
		{name: "after the backoff the node tries again",
			view: []Member{mem("b", 2, RoleReplica, 3, inSync)},
			self: follower(2, 3, 9), gate: Gate{NextTry: at(3 * time.Second)}, now: at(3*time.Second + 1),
			primary: "-", candidate: "b", promote: 4},
		{name: "step down for a primary with a higher term",
			view: []Member{mem("a", 1, RolePrimary, 4), mem("b", 2, RoleReplica, 3)},
			self: leading(2, 3), now: at(time.Minute),
			primary: "a", candidate: "-", stepDown: true},
		{name: "step down for a primary with the same term and a higher ID",
			view: []Member{mem("a", 1, RolePrimary, 3), mem("b", 2, RolePrimary, 3)},
			self: leading(1, 3), now: at(time.Minute),
			primary: "b", candidate: "-", stepDown: true},
		{name: "no step down below a lower ballot",
			// The node promoted at term 5; its tags still show term 4.
			view: []Member{mem("a", 1, RolePrimary, 5), mem("b", 2, RoleReplica, 4)},
			self: leading(2, 5), now: at(time.Minute),
			primary: "a", candidate: "-"},
		{name: "no step down for oneself",
			view: []Member{mem("b", 2, RolePrimary, 3)},
			self: leading(2, 3), now: at(time.Minute),
			primary: "b", candidate: "-"},
		{name: "a follower has nothing to step down from",
			view: []Member{mem("a", 1, RolePrimary, 4)},
			self: follower(2, 3, 1), now: at(time.Minute),
			primary: "a", candidate: "-"},
		{name: "leaderless: no fallback before its wait",
			view: restarted(), self: follower(3, 3, 9),
			gate: Gate{Grace: grace, Leaderless: at(3 * time.Second)}, now: at(5*time.Second - 1),
			primary: "-", candidate: "-"},
		{name: "leaderless: the highest-ID voter promotes after the wait",
			view: restarted(), self: follower(3, 3, 9),
			gate: Gate{Grace: grace, Leaderless: at(3 * time.Second)}, now: at(5 * time.Second),
			primary: "-", candidate: "c", promote: 4},
		{name: "leaderless: the fallback candidate is another voter",
			view: restarted(), self: follower(2, 3, 9),
			gate: Gate{Grace: grace, Leaderless: at(3 * time.Second)}, now: at(time.Minute),
			primary: "-", candidate: "c"},
		{name: "leaderless: non-voters, dead voters and other groups are passed over",
			view: append(restarted(),
				mem("wiped", 9, RoleReplica, 0),
				mem("dead", 8, RoleReplica, 3, voter, status(StatusFailed)),
				mem("other", 7, RoleReplica, 3, voter, group("h")),
				mem("spare", 6, RoleStandby, 3, voter)),
			self: follower(3, 3, 9), gate: Gate{Grace: grace, Leaderless: at(3 * time.Second)}, now: at(time.Minute),
			primary: "-", candidate: "c", promote: 4},
		{name: "leaderless: a wiped member with the highest ID does not lead",
			view: append(restarted(), mem("wiped", 9, RoleReplica, 0)),
			self: Self{ID: 9, Group: "g"}, gate: Gate{Grace: grace, Leaderless: at(3 * time.Second)}, now: at(time.Minute),
			primary: "-", candidate: "c"},
		{name: "leaderless: a voter whose tags lag does not count",
			// c's configuration lists it, but its tags do not say so yet:
			// another node could not pick it either.
			view: []Member{mem("b", 2, RoleReplica, 3, voter), mem("c", 3, RoleReplica, 3)},
			self: follower(3, 3, 9), gate: Gate{Grace: grace, Leaderless: at(3 * time.Second)}, now: at(time.Minute),
			primary: "-", candidate: "b"},
		{name: "no fallback in a group that never had a primary",
			view: []Member{mem("a", 1, RoleReplica, 0, voter), mem("b", 2, RoleReplica, 0, voter)},
			self: follower(2, 0, 0), gate: Gate{Grace: grace, Leaderless: at(0)}, now: at(time.Minute),
			primary: "-", candidate: "-"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := Decide(c.view, c.self, c.gate, c.now)
			promote := uint64(0)
			if a.Promote {
				promote = a.Term
			}
			if name(a.Primary) != c.primary || name(a.Candidate) != c.candidate || a.StepDown != c.stepDown || promote != c.promote {
				t.Errorf("Decide = primary %s, candidate %s, step down %v, promote at term %d; want %s, %s, %v, %d",
					name(a.Primary), name(a.Candidate), a.StepDown, promote, c.primary, c.candidate, c.stepDown, c.promote)
			}
			if a.Gate.Promoting != (c.gate.Promoting || a.Promote) {
				t.Errorf("Gate.Promoting = %v after promote %v from %v", a.Gate.Promoting, a.Promote, c.gate.Promoting)
			}
		})
	}
}

// TestDecideGraceEndsWithPrimary: once the view has shown a primary, a
// restarted node no longer waits for the rest of its grace to replace it.
func TestDecideGraceEndsWithPrimary(t *testing.T) {
	self := follower(2, 3, 1)
	a := Decide([]Member{mem("a", 1, RolePrimary, 3), mem("b", 2, RoleReplica, 3, inSync)}, self, started, at(100*time.Millisecond))
	if !a.Gate.GraceUntil.IsZero() {
		t.Fatalf("GraceUntil = %v after the view showed a primary, want zero", a.Gate.GraceUntil)
	}
	// The primary dies half a second after the start.
	a = Decide([]Member{mem("a", 1, RolePrimary, 3, status(StatusFailed)), mem("b", 2, RoleReplica, 3, inSync)}, self, a.Gate, at(500*time.Millisecond))
	if !a.Promote || a.Term != 4 {
		t.Fatalf("Decide = promote %v at term %d, want a promotion at term 4 within the grace", a.Promote, a.Term)
	}
}

// TestDecideLeaderlessWait follows the fallback's clock: it starts when
// the view first shows a leaderless group, and stops when a primary or a
// candidate appears.
func TestDecideLeaderlessWait(t *testing.T) {
	self := follower(3, 3, 9)
	g := started
	a := Decide(restarted(), self, g, at(3*time.Second))
	if a.Gate.Leaderless != at(3*time.Second) || a.Candidate != nil {
		t.Fatalf("first leaderless view: Leaderless %v, candidate %s; want %v and none", a.Gate.Leaderless, name(a.Candidate), at(3*time.Second))
	}
	a = Decide(restarted(), self, a.Gate, at(4*time.Second))
	if a.Gate.Leaderless != at(3*time.Second) || a.Candidate != nil || a.Promote {
		t.Fatalf("still waiting: Leaderless %v, candidate %s, promote %v", a.Gate.Leaderless, name(a.Candidate), a.Promote)
	}
	// b catches up before the wait is over: the candidate is Elect's, and
	// the wait starts again the next time the group is leaderless.
	caughtUp := restarted()
	caughtUp[1].InSync = true
	a = Decide(caughtUp, self, a.Gate, at(4500*time.Millisecond))
	if !a.Gate.Leaderless.IsZero() || name(a.Candidate) != "b" || a.Promote {
		t.Fatalf("with an in-sync member: Leaderless %v, candidate %s, promote %v; want zero, b, no", a.Gate.Leaderless, name(a.Candidate), a.Promote)
	}
	a = Decide(restarted(), self, a.Gate, at(5*time.Second))
	if a.Gate.Leaderless != at(5*time.Second) || a.Candidate != nil {
		t.Fatalf("leaderless again: Leaderless %v, candidate %s; want %v and none", a.Gate.Leaderless, name(a.Candidate), at(5*time.Second))
	}
	a = Decide(restarted(), self, a.Gate, at(7*time.Second))
	if name(a.Candidate) != "c" || !a.Promote || a.Term != 4 {
		t.Fatalf("after the wait: candidate %s, promote %v at term %d; want c promoting at 4", name(a.Candidate), a.Promote, a.Term)
	}
}

// TestDecideBackoffAfterFailedPromotion: a failed promotion waits Backoff
// before the next; a successful one leaves no backoff behind.
func TestDecideBackoffAfterFailedPromotion(t *testing.T) {
	view := []Member{mem("b", 2, RoleReplica, 3, inSync)}
	self := follower(2, 3, 9)
	a := Decide(view, self, started, at(3*time.Second))
	if !a.Promote || !a.Gate.Promoting {
		t.Fatalf("Decide = promote %v, promoting %v; want a promotion under way", a.Promote, a.Gate.Promoting)
	}
	if b := Decide(view, self, a.Gate, at(3*time.Second+time.Millisecond)); b.Promote {
		t.Fatal("a second promotion started while the first was under way")
	}
	failed := a.Gate.PromotionEnded(false, at(4*time.Second))
	if failed.Promoting || failed.NextTry != at(4*time.Second+backoff) {
		t.Fatalf("after a failure: promoting %v, next try %v; want false, %v", failed.Promoting, failed.NextTry, at(4*time.Second+backoff))
	}
	if b := Decide(view, self, failed, at(4*time.Second+backoff)); b.Promote {
		t.Fatal("promoted again before the backoff was over")
	}
	if b := Decide(view, self, failed, at(4*time.Second+backoff+time.Millisecond)); !b.Promote {
		t.Fatal("no new promotion after the backoff")
	}
	if ok := a.Gate.PromotionEnded(true, at(4*time.Second)); ok.Promoting || !ok.NextTry.IsZero() {
		t.Fatalf("after a success: promoting %v, next try %v; want false and none", ok.Promoting, ok.NextTry)
	}
}

// TestDecideHoldsWhileHearingPrimary: a Candidate whose replication still
// hears from a primary the view lost holds its promotion (a false
// failover under load), for at most Grace; hearing nothing, it promotes
// at once.
func TestDecideHoldsWhileHearingPrimary(t *testing.T) {
	view := []Member{mem("b", 2, RoleReplica, 3, inSync)}
	self := follower(2, 3, 9)
	heard := with(self, func(s *Self) { s.HeardPrimary = true })
	a := Decide(view, heard, started, at(3*time.Second))
	if a.Promote || !a.Holding {
		t.Fatalf("hearing a primary: promote %v, holding %v; want it held", a.Promote, a.Holding)
	}
	if b := Decide(view, heard, a.Gate, at(3*time.Second+grace-time.Millisecond)); b.Promote {
		t.Fatal("promoted before the hold's limit while still hearing a primary")
	}
	if b := Decide(view, heard, a.Gate, at(3*time.Second+grace)); !b.Promote || b.Holding {
		t.Fatalf("after Grace of hearing a primary gossip cannot see: promote %v; want a promotion", b.Promote)
	}
	// The primary falls silent: no hold left, promote now.
	if b := Decide(view, self, a.Gate, at(3*time.Second+100*time.Millisecond)); !b.Promote || !b.Gate.Held.IsZero() {
		t.Fatalf("primary silent: promote %v, held since %v; want a promotion", b.Promote, b.Gate.Held)
	}
	// The view shows the primary again: the hold is forgotten, so the
	// next loss of sight starts a fresh one.
	back := append(view, mem("a", 1, RolePrimary, 3, voter))
	b := Decide(back, heard, a.Gate, at(4*time.Second))
	if b.Promote || b.Holding || !b.Gate.Held.IsZero() {
		t.Fatalf("primary back in view: promote %v, holding %v, held %v", b.Promote, b.Holding, b.Gate.Held)
	}
	if c := Decide(view, heard, b.Gate, at(5*time.Second)); c.Promote || !c.Holding {
		t.Fatal("a new loss of sight did not start a new hold")
	}
	// A group that never had a primary has nobody to hear: no hold.
	boot := []Member{mem("b", 2, RoleReplica, 0, func(m *Member) { m.Boot = true })}
	bs := with(Self{ID: 2, Group: "g", Boot: true}, func(s *Self) { s.HeardPrimary = true })
	if c := Decide(boot, bs, started, at(time.Millisecond)); !c.Promote {
		t.Fatal("bootstrap held back by HeardPrimary")
	}
}

// TestDecideRules checks, over random views, selves and gates, what must
// hold whatever the case: only a node that may lead, and whose disk takes
// writes, is told to promote, never with a primary in view nor twice at
// once; a step-down is only for a leader facing a higher ballot; and the
// order of the view does not matter.
func TestDecideRules(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	times := []time.Time{time.Time{}, at(0), at(grace), at(grace + 1), at(time.Minute)}
	pick := func() time.Time { return times[r.IntN(len(times))] }
	for range 20000 {
		view := randomView(r)
		self := Self{
			ID: uint64(r.IntN(5)), Group: "g", Boot: r.IntN(3) == 0,
			Voter: r.IntN(2) == 0, Configured: r.IntN(3) > 0, Leading: r.IntN(3) == 0,
			Term: uint64(r.IntN(4)), BallotNode: uint64(r.IntN(5)), DiskFailed: r.IntN(4) == 0,
		}
		g := Gate{Grace: grace, Backoff: backoff, GraceUntil: pick(), Leaderless: pick(), NextTry: pick(), Promoting: r.IntN(4) == 0}
		now := pick()
		a := Decide(view, self, g, now)
		mayLead := (self.Voter || !self.Configured && self.Boot) && !self.DiskFailed
		if a.Promote && (!mayLead || a.Primary != nil || a.Candidate == nil || a.Candidate.ID != self.ID || self.Leading || g.Promoting ||
			a.Term <= a.MaxTerm || a.Term <= self.Term || a.StepDown) {
			t.Fatalf("view %+v\nself %+v\ngate %+v\nnow %v: promoted at term %d with %s", view, self, g, now, a.Term, describe(a.Decision))
		}
		if a.StepDown && (!self.Leading || a.Primary == nil || a.Primary.ID == self.ID ||
			!ballotBelow(self.Term, self.BallotNode, a.Primary.Term, a.Primary.ID)) {
			t.Fatalf("view %+v\nself %+v: stepped down with %s", view, self, describe(a.Decision))
		}
		r.Shuffle(len(view), func(i, j int) { view[i], view[j] = view[j], view[i] })
		if b := Decide(view, self, g, now); !sameDecision(a.Decision, b.Decision) || a.Promote != b.Promote || a.StepDown != b.StepDown || a.Gate != b.Gate {
			t.Fatalf("order changed the result for %+v:\n%+v\nvs %+v", view, a, b)
		}
	}
}

// TestDecideGonePrimary: a follower that proved its primary gone (rule 7)
// promotes if it is the candidate without that primary, before the view
// counts the primary failed; the other follower leaves it to the
// candidate, then follows its claim of the higher term.
func TestDecideGonePrimary(t *testing.T) {
	view := []Member{mem("a", 1, RolePrimary, 3, inSync), mem("b", 2, RoleReplica, 3, inSync), mem("c", 3, RoleReplica, 3, inSync)}
	now := at(10 * time.Second)
	g := Gate{Grace: grace, Backoff: backoff}

	if a := Decide(view, follower(3, 3, 1), g, now); a.Promote || name(a.Primary) != "a" {
		t.Fatalf("without proof: primary %s, promote %v; want a, no promotion", name(a.Primary), a.Promote)
	}
	gone := with(follower(3, 3, 1), func(s *Self) { s.Gone = 1 })
	a := Decide(view, gone, g, now)
	if !a.Promote || a.Term != 4 || name(a.Candidate) != "c" {
		t.Fatalf("candidate c with a gone: candidate %s, promote %v at term %d; want c promoting at term 4", name(a.Candidate), a.Promote, a.Term)
	}
	if view[0].Status != StatusAlive {
		t.Fatalf("Decide changed the caller's view: a is %v", view[0].Status)
	}
	if a := Decide(view, with(follower(2, 3, 1), func(s *Self) { s.Gone = 1 }), g, now); a.Promote || name(a.Candidate) != "c" {
		t.Fatalf("b with a gone: candidate %s, promote %v; want c as candidate and no promotion by b", name(a.Candidate), a.Promote)
	}
	// c's claim reaches b, whose view still counts a live.
	claimed := []Member{mem("a", 1, RolePrimary, 3, inSync), mem("b", 2, RoleReplica, 3, inSync), mem("c", 3, RolePrimary, 4, inSync)}
	if a := Decide(claimed, follower(2, 3, 1), g, now); name(a.Primary) != "c" || a.Promote {
		t.Fatalf("after c's claim: primary %s, promote %v; want c, no promotion", name(a.Primary), a.Promote)
	}
	// A node cannot prove itself gone.
	if a := Decide(view, with(leading(1, 3), func(s *Self) { s.Gone = 1 }), g, now); name(a.Primary) != "a" || a.StepDown {
		t.Fatalf("a with Gone naming itself: primary %s, step down %v; want a, no step down", name(a.Primary), a.StepDown)
	}
}

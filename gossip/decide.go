package gossip

import "time"

// Self is the node that runs Decide, as its replication reports it now:
// its own entry in the view carries the tags it last published, one step
// behind.
type Self struct {
	// ID is the node's ID.
	ID uint64
	// Group is the group the node serves.
	Group string
	// Boot marks the node that bootstraps the group (started as its
	// primary).
	Boot bool
	// Voter: the node is a voting member in its own copy of the group's
	// configuration. Configured: that copy lists any voter at all (a
	// group that never had a primary has none yet).
	Voter, Configured bool
	// Leading is set while the node leads the group, or recovers its log
	// to lead it.
	Leading bool
	// Term and BallotNode are the node's ballot: the one it leads or
	// recovers under, else the highest it has promised.
	Term, BallotNode uint64
	// HeardPrimary: the node's replication accepted an append or a
	// heartbeat from a primary a moment ago (within a few heartbeats),
	// so that primary is alive whatever the view says of it.
	HeardPrimary bool
	// DiskFailed is set while the node's disk refuses writes: it could
	// record no promise and append no entry.
	DiskFailed bool
	// Gone is the ID of a member this node has proof is not running,
	// though the view may still count it live (rule 7); 0 for none.
	Gone uint64
}

// Gate is what a node remembers between two runs of Decide, to hold its
// promotion back when promoting could depose a primary for nothing or
// start a second recovery. Decide returns the next Gate; the caller keeps
// it and passes it back. The zero Gate holds nothing back.
type Gate struct {
	// Grace is the node's startup grace: how long a (re)started node
	// waits before it may promote in a group that already had a primary
	// (until its view is complete it may not see the primary that
	// exists), and how long a group must stay leaderless before the
	// fallback lets a voter promote.
	Grace time.Duration
	// Backoff is the pause after a failed promotion.
	Backoff time.Duration
	// GraceUntil is when the startup grace ends; zero once the view has
	// shown a primary.
	GraceUntil time.Time
	// Leaderless is when the view began to show neither a primary nor a
	// candidate in a group that had a primary; zero while it shows one.
	Leaderless time.Time
	// NextTry is when the node may try again after a failed promotion.
	NextTry time.Time
	// Promoting is set from the Decide that asked for a promotion until
	// PromotionEnded.
	Promoting bool
	// Held is when the node, the Candidate, began to hold its promotion
	// back because it still hears from a primary; zero when it does not.
	Held time.Time
}

// NewGate returns the Gate of a node that starts now: its startup grace
// runs from now.
func NewGate(grace, backoff time.Duration, now time.Time) Gate {
	return Gate{Grace: grace, Backoff: backoff, GraceUntil: now.Add(grace)}
}

// PromotionEnded records the end of the promotion Decide asked for: after
// a failure the node waits Backoff before it tries again.
func (g Gate) PromotionEnded(ok bool, now time.Time) Gate {
	g.Promoting = false
	if !ok {
		g.NextTry = now.Add(g.Backoff)
	}
	return g
}

// Action is what Decide tells a node to do.
type Action struct {
	// Decision is the group's election as Elect makes it, with the
	// leaderless fallback's Candidate once its wait is over.
	Decision
	// StepDown: the node leads or recovers under a ballot below the
	// Primary's, and must step down to follow it.
	StepDown bool
	// Promote: the node must promote itself now, with ballot (Term, ID).
	Promote bool
	// Term is the term to promote with: above every term in the view and
	// above the node's own.
	Term uint64
	// Holding: the node is the Candidate and would promote, but holds
	// back because it still hears from a primary the view lost (rule 5).
	Holding bool
	// Gate is the Gate to pass to the next Decide.
	Gate Gate
}

// Decide computes what one node does about leading its group, from its
// gossip view, its own state, its Gate and the time. It does no I/O and
// reads no clock. Nodes whose views agree agree on the Primary and the
// Candidate, and only the Candidate is ever told to promote. For a voter,
// safety does not rest on these rules: its promotion recovers the log
// from a majority of its configuration, and ballots fence a deposed
// primary. The rules choose who tries, keep a group from deposing its
// primary for nothing, and let a node without a configuration, which
// recovers from nobody, lead only to bootstrap its group.
//
// The rules, on top of Elect's:
//  1. Fallback. A view with neither a Primary nor a Candidate in a group
//     that had a primary (MaxTerm above 0) means every member restarted
//     and none is known caught up. Once that has lasted Grace, the
//     Candidate is the live member with Voter set and the highest
//     (ID, Name). Which voter does not matter for safety: recovery adopts
//     the most up-to-date log of a majority of its configuration. A
//     member that is not a voter (one that never finished joining, or
//     came back with a wiped disk) has no configuration to recover from.
//  2. Step down. A node that leads or recovers under a ballot below the
//     ballot (Term, ID) of another node that is the Primary steps down.
//  3. Promote. With no Primary, the Candidate promotes when all hold:
//     it may lead (it is a voter, or it holds no configuration and
//     bootstraps the group: recovery gathers a majority of the node's own
//     configuration, so a node that never joined one would lead alone
//     with an empty log, then overwrite the members holding the group's
//     data); it neither leads nor is promoting already; its backoff after
//     a failed promotion is over; and its startup grace is over, unless
//     the group never had a primary (MaxTerm 0), when nobody can be
//     deposed. Its term is one above MaxTerm and its own.
//  4. The startup grace ends as soon as the view shows a primary: the
//     view is then complete enough to show the one that exists.
//  5. Confirmation. A Candidate that would promote but heard from a
//     primary a moment ago (HeardPrimary) holds back: the view lost sight
//     of a primary that is alive, as happens when a busy machine answers
//     gossip probes late, and promoting would depose it for nothing (a
//     stall for every client). Gossip suspects; the replication stream
//     confirms. It holds for at most Grace, so a primary that gossip
//     cannot reach at all while its appends still arrive is replaced
//     anyway; a primary that died stopped sending before gossip noticed,
//     so a real failover is not held.
//  6. A node whose disk refuses writes never promotes. It publishes
//     itself out of sync, so the others soon pass it over; until they
//     see that, its own view, one step behind, may still name it.
//  7. Proof. The member Self.Gone counts as failed in this node's view.
//     The caller sets it for its primary when the primary's stream fell
//     silent and its address then refused a connection: nothing listens
//     there, which gossip would only conclude some probe rounds later.
//     Every follower of a killed primary finds that out, so the Candidate
//     promotes at once, and its claim of a higher term makes it the
//     Primary in every view (Elect's rule 3), the old claim's included.
//     Views then disagree for a moment, which costs no safety: the
//     promotion still recovers from a majority under a higher ballot.
func Decide(view []Member, self Self, g Gate, now time.Time) Action {
	if self.Gone != 0 && self.Gone != self.ID {
		view = markFailed(view, self.Gone)
	}
	a := Action{Decision: Elect(view, self.Group), Gate: g}
	d := &a.Decision
	if d.Primary != nil {
		a.Gate.GraceUntil = time.Time{}
	}
	if d.Primary != nil || d.Candidate != nil || d.MaxTerm == 0 {
		a.Gate.Leaderless = time.Time{}
	} else {
		if a.Gate.Leaderless.IsZero() {
			a.Gate.Leaderless = now
		}
		if now.Sub(a.Gate.Leaderless) >= g.Grace {
			d.Candidate = highestVoter(view, self.Group)
		}
	}
	if p := d.Primary; p != nil && p.ID != self.ID && self.Leading && ballotBelow(self.Term, self.BallotNode, p.Term, p.ID) {
		a.StepDown = true
	}
	mayLead := (self.Voter || !self.Configured && self.Boot) && !self.DiskFailed
	ready := d.Primary == nil && d.Candidate != nil && d.Candidate.ID == self.ID && mayLead &&
		!self.Leading && !g.Promoting && now.After(g.NextTry) && (d.MaxTerm == 0 || now.After(a.Gate.GraceUntil))
	if !ready || !self.HeardPrimary || d.MaxTerm == 0 {
		a.Gate.Held = time.Time{}
	} else {
		if a.Gate.Held.IsZero() {
			a.Gate.Held = now
		}
		if now.Sub(a.Gate.Held) < g.Grace {
			a.Holding = true
			return a
		}
	}
	if ready {
		a.Promote, a.Term = true, max(d.MaxTerm, self.Term)+1
		a.Gate.Promoting = true
	}
	return a
}

// markFailed returns a copy of view in which the member with ID id has
// failed.
func markFailed(view []Member, id uint64) []Member {
	out := make([]Member, len(view))
	copy(out, view)
	for i := range out {
		if out[i].ID == id {
			out[i].Status = StatusFailed
		}
	}
	return out
}

// highestVoter is the fallback candidate: the live voter of group with the
// highest (ID, Name), nil if none.
func highestVoter(view []Member, group string) *Member {
	var best *Member
	for i := range view {
		if m := &view[i]; m.Live() && m.Serves(group) && m.Voter && ranksAbove(m, best) {
			best = m
		}
	}
	if best == nil {
		return nil
	}
	return clone(best)
}

// ballotBelow orders ballots (term, node) as replication does.
func ballotBelow(term, node, oterm, onode uint64) bool {
	if term != oterm {
		return term < oterm
	}
	return node < onode
}

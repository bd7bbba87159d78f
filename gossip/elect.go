package gossip

// Status is a member's liveness as this node's gossip sees it.
type Status uint8

// The member statuses. The zero value, StatusUnknown, counts as not live so
// that a Member built by hand without a status never wins an election.
const (
	StatusUnknown Status = iota
	// StatusAlive: the member answers probes.
	StatusAlive
	// StatusSuspect: a probe failed and the cluster is waiting for the
	// member to refute the suspicion. It still counts as live: one lost
	// packet must not move a group's primary.
	StatusSuspect
	// StatusFailed: the member stopped answering; it stays listed as failed
	// until serf reaps it (Config.ReconnectTimeout).
	StatusFailed
	// StatusLeft: the member left gracefully (or is leaving).
	StatusLeft
)

func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusSuspect:
		return "suspect"
	case StatusFailed:
		return "failed"
	case StatusLeft:
		return "left"
	}
	return "unknown"
}

// Member is one node of the gossip view.
type Member struct {
	// Name is the node's gossip name, unique in the cluster.
	Name string
	Tags
	// Status is the node's liveness in the view that produced the Member.
	Status Status
}

// Live reports whether gossip counts m as live: alive, or suspected but
// not yet declared failed (one lost packet must not move a primary).
func (m Member) Live() bool {
	return m.Status == StatusAlive || m.Status == StatusSuspect
}

// Serves reports whether m's tags make it a member of group: Group is
// group and Role primary or replica. It says nothing of liveness.
func (m Member) Serves(group string) bool {
	return m.Group == group && m.Role.inGroup()
}

// LiveMembers lists the live members of group that have an address: the
// members a node can reach to replicate to or read a chunk from.
func LiveMembers(ms []Member, group string) []Member {
	var out []Member
	for _, m := range ms {
		if m.Live() && m.Serves(group) && m.Addr != "" {
			out = append(out, m)
		}
	}
	return out
}

// PrimaryAddr is the address of the primary Elect finds for group in ms,
// "" when there is none.
func PrimaryAddr(ms []Member, group string) string {
	if p := Elect(ms, group).Primary; p != nil {
		return p.Addr
	}
	return ""
}

// Decision is the outcome of Elect for one group.
type Decision struct {
	// Primary is the member everyone in the group should follow, nil if
	// none.
	Primary *Member
	// Candidate is set only when Primary is nil: the member that should
	// promote itself now (with term MaxTerm+1). Nil if nobody may.
	Candidate *Member
	// MaxTerm is the highest Term among the group's live members.
	MaxTerm uint64
}

// Elect computes, from one gossip view, who leads group. Every node runs it
// on its own view and, once the views agree, reaches the same answer: no
// election messages are exchanged. It does no I/O and reads no clock; the
// order of members does not matter. Names are assumed unique, as in any
// gossip view. The returned pointers are copies, not pointers into members.
//
// The rules:
//  1. Only live members count: Group == group, Role primary or replica,
//     Status alive or suspect.
//  2. MaxTerm is the highest Term among live members.
//  3. Primary is the live member with Role primary and the highest
//     (Term, ID, Name), provided its Term equals MaxTerm; that is, the
//     highest (ID, Name) among primary claims at MaxTerm. A primary claim
//     older than a term some live member has already seen is stale and
//     ignored: that node will be fenced by the higher term and step down.
//  4. With no Primary: if MaxTerm is 0 the group never had a primary, and
//     the Candidate is the live member with Boot set (the highest
//     (ID, Name) if several); without one nobody may promote, and the
//     replicas wait for the designated primary. If MaxTerm is above 0, the
//     Candidate is the live member with InSync set and the highest
//     (ID, Name); without one, nobody may promote, since a member missing
//     entries could lose acknowledged writes.
//  5. Two members with the same ID break a rule of the cluster and cannot be
//     ordered safely; comparing (ID, Name) keeps the answer deterministic
//     anyway.
//
// Decide adds the rules that need a node's own state and the time: the
// leaderless fallback, stepping down, and when the Candidate promotes.
func Elect(members []Member, group string) Decision {
	var d Decision
	for i := range members {
		if m := &members[i]; m.Live() && m.Serves(group) && m.Term > d.MaxTerm {
			d.MaxTerm = m.Term
		}
	}
	var primary, boot, inSync *Member
	for i := range members {
		m := &members[i]
		if !m.Live() || !m.Serves(group) {
			continue
		}
		if m.Role == RolePrimary && m.Term == d.MaxTerm && ranksAbove(m, primary) {
			primary = m
		}
		if m.Boot && ranksAbove(m, boot) {
			boot = m
		}
		if m.InSync && ranksAbove(m, inSync) {
			inSync = m
		}
	}
	switch {
	case primary != nil:
		d.Primary = clone(primary)
	case d.MaxTerm == 0 && boot != nil:
		d.Candidate = clone(boot)
	case d.MaxTerm > 0 && inSync != nil:
		d.Candidate = clone(inSync)
	}
	return d
}

// ranksAbove orders members by (ID, Name); any member ranks above nil.
// Primary claims need no Term comparison: only claims at MaxTerm compete.
func ranksAbove(a, b *Member) bool {
	if b == nil {
		return true
	}
	if a.ID != b.ID {
		return a.ID > b.ID
	}
	return a.Name > b.Name
}

func clone(m *Member) *Member {
	c := *m
	return &c
}

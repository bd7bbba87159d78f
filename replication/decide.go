package replication

// The protocol's decisions, as functions of the state they read: no lock,
// goroutine, clock, network or disk write. A Node gathers their inputs
// under its lock, calls them and carries out what they return. Log reads
// go through ballotAt, a read-only view of the member's log (the role
// etcd raft's Storage interface plays).

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// ballotAt returns the ballot of the log entry at an index (the snapshot
// point included); an index compacted away is meta.ErrCompacted.
type ballotAt func(index uint64) (meta.Ballot, error)

// appendPlan is what a member does with the entries of an Append whose
// ballot it accepted (invariant 2): when ok, hold the chunks of hold, write
// the entries of hold that differ from its log (see newEntries), and answer
// that its log equals the primary's through match. When not ok, its log
// does not match before the batch and match is where the primary should
// retry from.
type appendPlan struct {
	ok    bool
	match uint64
	hold  []meta.Entry
}

// planAppend applies the log-matching rule to m against a log in state st.
func planAppend(m *wire.Append, st store.LogState, at ballotAt) (appendPlan, error) {
	if m.PrevIndex > st.LastIndex {
		return appendPlan{match: st.LastIndex}, nil
	}
	// Applied entries are committed, hence equal to the primary's in any
	// correct run: they are skipped, never written again. Those this log
	// still holds are compared all the same (compaction may have
	// discarded the others): a primary whose entry differs from a
	// committed one has lost committed entries (it came back with a wiped
	// disk, say), and following it would silently drop them.
	if m.PrevIndex > 0 && m.PrevIndex <= st.Applied {
		if err := sameCommitted(m.PrevIndex, m.PrevBallot, at); err != nil {
			return appendPlan{}, err
		}
	}
	entries := m.Entries
	prev := m.PrevIndex
	for len(entries) > 0 && entries[0].Index <= st.Applied {
		if err := sameCommitted(entries[0].Index, entries[0].Ballot, at); err != nil {
			return appendPlan{}, err
		}
		prev = entries[0].Index
		entries = entries[1:]
	}
	if prev > st.Applied {
		b := m.PrevBallot
		if prev != m.PrevIndex {
			b = m.Entries[prev-m.PrevIndex-1].Ballot
		}
		have, err := at(prev)
		if err != nil {
			return appendPlan{}, err
		}
		if have != b {
			return appendPlan{match: prev - 1}, nil
		}
	}
	// Every entry this answer will acknowledge needs its chunks here,
	// those already in the log included: a snapshot brings the sender's
	// log tail without the chunks its entries name.
	return appendPlan{ok: true, match: m.PrevIndex + uint64(len(m.Entries)), hold: entries}, nil
}

// sameCommitted checks that the committed entry at index i of this log,
// if it still holds it, has ballot b at the primary too.
func sameCommitted(i uint64, b meta.Ballot, at ballotAt) error {
	have, err := at(i)
	if errors.Is(err, meta.ErrCompacted) {
		return nil
	}
	if err != nil {
		return err
	}
	if have != b {
		return fmt.Errorf("%w: entry %d, applied here with ballot %s, has ballot %s at the primary", wire.ErrCommittedConflict, i, have, b)
	}
	return nil
}

// newEntries drops the leading entries of es this log already holds (same
// index, same ballot). The first that differs, and everything after it in
// the log, is to be replaced by the rest of es.
func newEntries(es []meta.Entry, last uint64, at ballotAt) ([]meta.Entry, error) {
	for len(es) > 0 && es[0].Index <= last {
		have, err := at(es[0].Index)
		if err != nil {
			return nil, err
		}
		if have != es[0].Ballot {
			break
		}
		es = es[1:]
	}
	return es, nil
}

// progress is what a primary knows of one member's log.
type progress struct {
	match uint64 // the member's log equals the primary's through match
	next  uint64 // the next entry to send it
}

// appendAnswer updates p with a member's answer r to the Append m of a
// primary whose log ends at last. It reports whether there is more to send
// right away. The caller has already handled an answer naming a higher
// ballot (the primary is deposed) and one from a member installing a
// snapshot (nothing to do until it is done).
func (p progress) appendAnswer(m *wire.Append, r *wire.AppendResp, last uint64) (progress, bool) {
	switch {
	case m.Snapshot && !r.OK:
		// The member has applied past the compaction point (it installed
		// a snapshot): resume the log after its applied index. Matching
		// is still checked at the member before anything counts.
		p.next = min(r.LastIndex, last) + 1
		return p, true
	case r.OK:
		p.match = max(p.match, r.LastIndex)
		p.next = r.LastIndex + 1
	default:
		p.next = max(1, min(m.PrevIndex, r.LastIndex+1))
	}
	return p, p.next <= last || !r.OK
}

// commitIndex is the commit index once the voters hold what match says: the
// highest index a majority holds, but only from the ballot's first entry
// on (Raft's rule: an older entry commits with the first of a new ballot,
// never by counting its replicas), and never lower than commit.
func commitIndex(voters []meta.Member, match map[uint64]uint64, first, commit uint64) uint64 {
	if q := QuorumIndex(voterIDs(voters), match); q >= first && q > commit {
		return q
	}
	return commit
}

// memberToAdd picks a live non-voter to join a configuration that has
// room: one whose log holds everything committed and that a repair round
// found holding every chunk of the group (synced). Changes go one member
// at a time, so any two successive majorities overlap: none is picked
// while one is under way, or before the primary is ready.
func memberToAdd(config []meta.Member, peers map[uint64]meta.Member, size int, match map[uint64]uint64, commit uint64, synced func(id uint64) bool) (meta.Member, bool) {
	if len(config) >= size {
		return meta.Member{}, false
	}
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		if isVoter(config, id) || match[id] < commit || !synced(id) {
			continue
		}
		return peers[id], true
	}
	return meta.Member{}, false
}

// promiseTally counts the answers to a recovering primary's Promise
// (invariant 3): it is done once a majority of the voters, the primary
// included, promised, and fails as soon as one answers with a higher
// ballot.
type promiseTally struct {
	need int
	got  []promiseReply
}

// newPromiseTally starts a count for a configuration of voters; own is the
// primary's own promise.
func newPromiseTally(voters int, own promiseReply) *promiseTally {
	return &promiseTally{need: Majority(voters), got: []promiseReply{own}}
}

// done reports whether a majority has promised.
func (t *promiseTally) done() bool { return len(t.got) >= t.need }

// add counts one member's answer (a nil resp: it did not answer). A
// refusal returns the ballot it promised instead, which the primary must
// observe, and an error: it is deposed.
func (t *promiseTally) add(a promiseReply) (*meta.Ballot, error) {
	if a.resp == nil {
		return nil, nil
	}
	if !a.resp.OK {
		return &a.resp.Promised, fmt.Errorf("%w: member %d promised higher ballot %s", wire.ErrDeposed, a.id, a.resp.Promised)
	}
	t.got = append(t.got, a)
	return nil, nil
}

// best returns the most up-to-date log among the promises: the one the
// primary adopts, which holds every committed entry since any two
// majorities meet.
func (t *promiseTally) best() promiseReply {
	best := t.got[0]
	for _, r := range t.got[1:] {
		if logNewer(r.resp.LastBallot, r.resp.LastIndex, best.resp.LastBallot, best.resp.LastIndex) {
			best = r
		}
	}
	return best
}

// confirmTally counts the answers to a primary's read confirmation: done
// once need other voters accepted its ballot, failed as soon as one
// promised a higher one.
type confirmTally struct {
	ballot meta.Ballot
	need   int
	got    int
}

// confirmNeed is how many other voters must accept a primary's ballot for
// its reads to be linearizable: with itself, a majority of config.
func confirmNeed(config []meta.Member, self uint64) int {
	need := Majority(len(config)) - 1
	if !isVoter(config, self) {
		need++
	}
	return need
}

// add counts one answer (nil: none came). It reports whether the tally is
// decided, and a higher ballot seen, which deposes the primary.
func (t *confirmTally) add(r *wire.AppendResp) (done bool, higher *meta.Ballot) {
	if r == nil {
		return false, nil
	}
	if t.ballot.Less(r.Promised) {
		return true, &r.Promised
	}
	if r.OK {
		t.got++
	}
	return t.got >= t.need, nil
}

// promiseReply is one member's answer during recovery (resp is nil when
// none came).
type promiseReply struct {
	id   uint64
	addr string
	resp *wire.PromiseResp
}

// errCompacted reports whether err says the entries were compacted.
func errCompacted(err error) bool { return errors.Is(err, meta.ErrCompacted) }

func hasConfig(entries []meta.Entry) bool {
	for _, e := range entries {
		if e.Op.Kind == meta.OpConfig {
			return true
		}
	}
	return false
}

package replication

import (
	"errors"
	"fmt"
	"testing"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// memLog is a member's log as the decisions see it: the ballot of each
// index, with everything up to snap compacted except snap itself.
type memLog struct {
	snap    uint64
	ballots map[uint64]meta.Ballot
}

func (l memLog) at(i uint64) (meta.Ballot, error) {
	if i < l.snap {
		return meta.Ballot{}, fmt.Errorf("ballot of entry %d: %w", i, meta.ErrCompacted)
	}
	b, ok := l.ballots[i]
	if !ok && i != 0 {
		return meta.Ballot{}, fmt.Errorf("log entry %d: %w", i, meta.ErrNotFound)
	}
	return b, nil
}

// logOf makes a log whose entry i has term terms[i-1] (all from node 1).
func logOf(snap uint64, terms ...uint64) memLog {
	l := memLog{snap: snap, ballots: map[uint64]meta.Ballot{}}
	for i, t := range terms {
		l.ballots[uint64(i+1)] = meta.Ballot{Term: t, Node: 1}
	}
	return l
}

func entries(from uint64, terms ...uint64) []meta.Entry {
	es := make([]meta.Entry, len(terms))
	for i, t := range terms {
		es[i] = meta.Entry{Index: from + uint64(i), Ballot: meta.Ballot{Term: t, Node: 1}}
	}
	return es
}

func indexes(es []meta.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Index)
	}
	return out
}

func TestPlanAppend(t *testing.T) {
	b := func(term uint64) meta.Ballot { return meta.Ballot{Term: term, Node: 1} }
	for _, tc := range []struct {
		name      string
		log       memLog
		applied   uint64
		m         wire.Append
		wantOK    bool
		wantMatch uint64
		wantHold  []uint64
	}{
		{"heartbeat on an equal log", logOf(0, 1, 1), 2,
			wire.Append{PrevIndex: 2, PrevBallot: b(1)}, true, 2, nil},
		{"new entries after a matching one", logOf(0, 1, 1), 1,
			wire.Append{PrevIndex: 2, PrevBallot: b(1), Entries: entries(3, 2, 2)}, true, 4, []uint64{3, 4}},
		{"the primary is ahead: retry from this log's end", logOf(0, 1), 1,
			wire.Append{PrevIndex: 5, PrevBallot: b(2), Entries: entries(6, 2)}, false, 1, nil},
		{"the entry before the batch differs: retry one lower", logOf(0, 1, 1, 1), 1,
			wire.Append{PrevIndex: 3, PrevBallot: b(2), Entries: entries(4, 2)}, false, 2, nil},
		{"entries held with other ballots are sent again", logOf(0, 1, 1, 1), 1,
			wire.Append{PrevIndex: 1, PrevBallot: b(1), Entries: entries(2, 2, 2)}, true, 3, []uint64{2, 3}},
		{"applied entries are skipped; the last applied one is compared", logOf(3, 1, 1, 1, 1), 3,
			wire.Append{PrevIndex: 1, PrevBallot: b(9), Entries: entries(2, 1, 1, 2)}, true, 4, []uint64{4}},
		{"a batch wholly applied matches without a compare", logOf(4, 1, 1, 1, 1, 1), 5,
			wire.Append{PrevIndex: 1, PrevBallot: b(7), Entries: entries(2, 1, 1)}, true, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.LogState{SnapIndex: tc.log.snap, LastIndex: uint64(len(tc.log.ballots)), Applied: tc.applied}
			p, err := planAppend(&tc.m, st, tc.log.at)
			if err != nil {
				t.Fatal(err)
			}
			if p.ok != tc.wantOK || p.match != tc.wantMatch || fmt.Sprint(indexes(p.hold)) != fmt.Sprint(tc.wantHold) {
				t.Errorf("plan = ok %v match %d hold %v; want ok %v match %d hold %v",
					p.ok, p.match, indexes(p.hold), tc.wantOK, tc.wantMatch, tc.wantHold)
			}
		})
	}
	// A primary whose log differs from an entry applied here lost
	// committed entries: the member refuses it rather than follow it,
	// wherever the difference is, as long as it still holds the entry.
	for _, tc := range []struct {
		name    string
		log     memLog
		applied uint64
		m       wire.Append
	}{
		{"the last applied entry", logOf(3, 1, 1, 1, 1), 3,
			wire.Append{PrevIndex: 1, PrevBallot: b(1), Entries: entries(2, 1, 5, 2)}},
		{"an applied entry below the last", logOf(0, 1, 1, 1, 1), 3,
			wire.Append{PrevIndex: 1, PrevBallot: b(1), Entries: entries(2, 7, 1, 2)}},
		{"the entry before the batch", logOf(0, 1, 1, 1, 1), 3,
			wire.Append{PrevIndex: 2, PrevBallot: b(7), Entries: entries(3, 1, 1)}},
		{"a primary that starts over", logOf(0, 1, 1, 1), 3,
			wire.Append{PrevIndex: 0, Entries: entries(1, 2, 2, 2, 2)}},
	} {
		st := store.LogState{SnapIndex: tc.log.snap, LastIndex: uint64(len(tc.log.ballots)), Applied: tc.applied}
		if p, err := planAppend(&tc.m, st, tc.log.at); !errors.Is(err, wire.ErrCommittedConflict) {
			t.Errorf("%s differs: plan ok %v match %d, err %v; want ErrCommittedConflict", tc.name, p.ok, p.match, err)
		}
	}
	// A log that cannot be read is an error, not a verdict.
	broken := func(uint64) (meta.Ballot, error) { return meta.Ballot{}, errors.New("disk gone") }
	m := &wire.Append{PrevIndex: 1, PrevBallot: b(1)}
	if _, err := planAppend(m, store.LogState{LastIndex: 1}, broken); err == nil {
		t.Error("planAppend over an unreadable log: no error")
	}
}

func TestNewEntries(t *testing.T) {
	log := logOf(0, 1, 1, 2)
	for _, tc := range []struct {
		name string
		es   []meta.Entry
		want []uint64
	}{
		{"all held", entries(1, 1, 1, 2), nil},
		{"held prefix then new", entries(2, 1, 2, 2, 3), []uint64{4, 5}},
		{"first differing replaces the rest", entries(2, 3, 2), []uint64{2, 3}},
		{"a differing entry after a held one", entries(1, 1, 4), []uint64{2}},
		{"beyond the log", entries(4, 2), []uint64{4}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newEntries(tc.es, 3, log.at)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(indexes(got)) != fmt.Sprint(tc.want) {
				t.Errorf("newEntries = %v, want %v", indexes(got), tc.want)
			}
		})
	}
}

func TestAppendAnswer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        progress
		m        wire.Append
		r        wire.AppendResp
		last     uint64
		want     progress
		wantMore bool
	}{
		{"caught up", progress{match: 3, next: 4}, wire.Append{PrevIndex: 3}, wire.AppendResp{OK: true, LastIndex: 6}, 6,
			progress{match: 6, next: 7}, false},
		{"more to send", progress{match: 3, next: 4}, wire.Append{PrevIndex: 3}, wire.AppendResp{OK: true, LastIndex: 5}, 9,
			progress{match: 5, next: 6}, true},
		{"a late answer never lowers match", progress{match: 8, next: 9}, wire.Append{PrevIndex: 3}, wire.AppendResp{OK: true, LastIndex: 5}, 9,
			progress{match: 8, next: 6}, true},
		{"mismatch: back to the member's hint", progress{next: 8}, wire.Append{PrevIndex: 7}, wire.AppendResp{LastIndex: 4}, 9,
			progress{next: 5}, true},
		{"mismatch: never past the entry refused", progress{next: 8}, wire.Append{PrevIndex: 7}, wire.AppendResp{LastIndex: 20}, 9,
			progress{next: 7}, true},
		{"mismatch at the start: next stays at 1", progress{next: 1}, wire.Append{PrevIndex: 0}, wire.AppendResp{}, 9,
			progress{next: 1}, true},
		{"after a snapshot: resume past the member's applied index", progress{next: 2}, wire.Append{Snapshot: true, PrevIndex: 50}, wire.AppendResp{LastIndex: 60}, 70,
			progress{next: 61}, true},
		{"after a snapshot: never past this log", progress{next: 2}, wire.Append{Snapshot: true, PrevIndex: 50}, wire.AppendResp{LastIndex: 90}, 70,
			progress{next: 71}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, more := tc.p.appendAnswer(&tc.m, &tc.r, tc.last)
			if got != tc.want || more != tc.wantMore {
				t.Errorf("appendAnswer = %+v more %v, want %+v more %v", got, more, tc.want, tc.wantMore)
			}
		})
	}
}

func TestCommitIndex(t *testing.T) {
	voters := []meta.Member{{ID: 1}, {ID: 2}, {ID: 3}}
	for _, tc := range []struct {
		name          string
		match         map[uint64]uint64
		first, commit uint64
		want          uint64
	}{
		{"a majority holds 7", map[uint64]uint64{1: 9, 2: 7, 3: 2}, 5, 4, 7},
		{"older entries wait for the ballot's first", map[uint64]uint64{1: 9, 2: 4, 3: 4}, 5, 2, 2},
		{"the ballot's first commits everything before it", map[uint64]uint64{1: 5, 2: 5, 3: 0}, 5, 2, 5},
		{"never backwards", map[uint64]uint64{1: 9, 2: 3, 3: 3}, 1, 6, 6},
		{"non-voters do not count", map[uint64]uint64{1: 9, 4: 9, 5: 9}, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := commitIndex(voters, tc.match, tc.first, tc.commit); got != tc.want {
				t.Errorf("commitIndex = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMemberToAdd(t *testing.T) {
	m := func(id uint64) meta.Member { return meta.Member{ID: id, Addr: fmt.Sprint("n", id)} }
	config := []meta.Member{m(1), m(2)}
	all := func(uint64) bool { return true }
	for _, tc := range []struct {
		name   string
		config []meta.Member
		peers  []meta.Member
		match  map[uint64]uint64
		synced func(uint64) bool
		want   uint64 // 0: none
	}{
		{"a caught-up synced peer joins", config, []meta.Member{m(2), m(3)}, map[uint64]uint64{3: 10}, all, 3},
		{"voters are not added again", config, []meta.Member{m(2)}, map[uint64]uint64{2: 10}, all, 0},
		{"a peer behind the commit waits", config, []meta.Member{m(3)}, map[uint64]uint64{3: 9}, all, 0},
		{"a peer not found holding every chunk waits", config, []meta.Member{m(3)}, map[uint64]uint64{3: 10},
			func(id uint64) bool { return id != 3 }, 0},
		{"a full group takes nobody", []meta.Member{m(1), m(2), m(4)}, []meta.Member{m(3)}, map[uint64]uint64{3: 10}, all, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peers := map[uint64]meta.Member{}
			for _, p := range tc.peers {
				peers[p.ID] = p
			}
			got, ok := memberToAdd(tc.config, peers, 3, tc.match, 10, tc.synced)
			if tc.want == 0 && ok || tc.want != 0 && (!ok || got != m(tc.want)) {
				t.Errorf("memberToAdd = %+v %v, want member %d", got, ok, tc.want)
			}
		})
	}
}

func TestPromiseTally(t *testing.T) {
	reply := func(id, term, last uint64) promiseReply {
		return promiseReply{id: id, resp: &wire.PromiseResp{OK: true, LastIndex: last, LastBallot: meta.Ballot{Term: term, Node: 1}}}
	}
	tl := newPromiseTally(3, reply(1, 2, 5))
	if tl.done() {
		t.Fatal("done with one promise of three voters")
	}
	if _, err := tl.add(promiseReply{id: 2}); err != nil || tl.done() {
		t.Fatalf("no answer counted: err %v done %v", err, tl.done())
	}
	if _, err := tl.add(reply(3, 3, 4)); err != nil || !tl.done() {
		t.Fatalf("two of three promised: err %v done %v", err, tl.done())
	}
	// The later last ballot wins over the longer log.
	if best := tl.best(); best.id != 3 {
		t.Errorf("best log from member %d, want 3 (ballot 3 beats a longer log at ballot 2)", best.id)
	}
	tl = newPromiseTally(5, reply(1, 2, 5))
	tl.add(reply(2, 2, 7))
	tl.add(reply(3, 2, 6))
	if !tl.done() || tl.best().id != 2 {
		t.Errorf("five voters, three promises: done %v best %d; want done, best 2 (longest at the same ballot)", tl.done(), tl.best().id)
	}
	// A refusal deposes the recovering primary and names the ballot.
	tl = newPromiseTally(3, reply(1, 2, 5))
	higher := meta.Ballot{Term: 9, Node: 4}
	got, err := tl.add(promiseReply{id: 2, resp: &wire.PromiseResp{Promised: higher}})
	if !errors.Is(err, wire.ErrDeposed) || got == nil || *got != higher {
		t.Errorf("refusal: ballot %v err %v, want %s and ErrDeposed", got, err, higher)
	}
}

func TestConfirmTally(t *testing.T) {
	ms := func(ids ...uint64) []meta.Member {
		var out []meta.Member
		for _, id := range ids {
			out = append(out, meta.Member{ID: id})
		}
		return out
	}
	for _, tc := range []struct {
		config []meta.Member
		want   int
	}{
		{ms(1), 0}, {ms(1, 2), 1}, {ms(1, 2, 3), 1}, {ms(1, 2, 3, 4), 2}, {ms(1, 2, 3, 4, 5), 2},
		{ms(2, 3, 4), 2}, // a primary outside its configuration counts for nothing
	} {
		if got := confirmNeed(tc.config, 1); got != tc.want {
			t.Errorf("confirmNeed(%v, 1) = %d, want %d", tc.config, got, tc.want)
		}
	}
	b := meta.Ballot{Term: 3, Node: 1}
	tl := confirmTally{ballot: b, need: 2}
	if done, h := tl.add(nil); done || h != nil {
		t.Fatal("no answer decided the round")
	}
	if done, _ := tl.add(&wire.AppendResp{OK: true, Promised: b}); done {
		t.Fatal("one of two needed decided the round")
	}
	if done, _ := tl.add(&wire.AppendResp{Promised: b}); done {
		t.Fatal("a refusal at the same ballot counted")
	}
	if done, _ := tl.add(&wire.AppendResp{OK: true, Promised: b}); !done {
		t.Fatal("two of two needed did not decide the round")
	}
	higher := meta.Ballot{Term: 3, Node: 2}
	tl = confirmTally{ballot: b, need: 1}
	if done, h := tl.add(&wire.AppendResp{OK: true, Promised: higher}); !done || h == nil || *h != higher {
		t.Errorf("a higher ballot: done %v ballot %v, want decided and %s", done, h, higher)
	}
}

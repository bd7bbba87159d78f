package router

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"shoal/api"
	"shoal/gossip"
)

// voter is a member (placement_test.go) of the given term that votes.
func voter(name string, id uint64, role gossip.Role, group string, term uint64) gossip.Member {
	m := member(name, group, role, id, gossip.StatusAlive, 0, 0)
	m.Term, m.Voter = term, true
	return m
}

// TestEventsFollowAFailover walks a group through a suspicion, a failure,
// a takeover, a replacement, a scale-out, a reap and a start, and checks the events
// a reader of the console would need, in order, with who, why and the term.
func TestEventsFollowAFailover(t *testing.T) {
	var logs bytes.Buffer
	e := newEvents(slog.New(slog.NewTextHandler(&logs, nil)))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n1 := voter("n1", 1, gossip.RolePrimary, "g1", 1)
	n2 := voter("n2", 2, gossip.RoleReplica, "g1", 1)
	n3 := voter("n3", 3, gossip.RoleReplica, "g1", 1)
	s1 := voter("s1", 4, gossip.RoleStandby, "", 0)
	s2 := voter("s2", 5, gossip.RoleStandby, "", 0)
	step := func(ms ...gossip.Member) {
		now = now.Add(time.Second)
		e.observe(now, ms)
	}
	step(n1, n2, n3, s1, s2)
	if got, last := e.since(0); got == nil || len(got) != 0 || last != 0 {
		t.Fatalf("the first view made events %v (last %d); want none, as [] not null (it is where watching starts)", got, last)
	}
	n1.Status = gossip.StatusSuspect
	step(n1, n2, n3, s1, s2)
	n1.Status = gossip.StatusFailed
	n2.Role, n2.Term, n3.Term = gossip.RolePrimary, 2, 2
	step(n1, n2, n3, s1, s2)
	s1.Role, s1.Group, s1.Term = gossip.RoleReplica, "g1", 2
	step(n1, n2, n3, s1, s2)
	s2.Role, s2.Group, s2.Term = gossip.RolePrimary, "g2", 1
	step(n1, n2, n3, s1, s2)
	if d, ok := e.departure("n1"); !ok || d.Group != "g1" || !strings.Contains(d.Why, "declared failed") || d.Since.IsZero() {
		t.Errorf("departure(n1) = %+v, %v; want when and why it failed", d, ok)
	}
	if _, ok := e.departure("s1"); ok {
		t.Error("s1 has a departure, but it joined a group and never left one")
	}
	step(n2, n3, s1, s2)
	if d, ok := e.departure("n1"); ok {
		t.Errorf("n1 dropped out of the view but still has a departure, %+v: the router would keep every node it ever saw fail", d)
	}
	n4 := voter("n4", 6, gossip.RoleReplica, "g1", 2)
	step(n2, n3, s1, s2, n4) // a node that starts already in a group only joins

	want := []struct{ kind, node, group, says string }{
		{api.EventSuspect, "n1", "g1", "n1 (primary of group g1, term 1) is suspected"},
		{api.EventFailed, "n1", "g1", "n1 (primary of group g1, term 1) is declared failed"},
		{api.EventPrimary, "n2", "g1", "n2 took over group g1 from n1 at term 2 (n1 is failed)"},
		{api.EventMember, "s1", "g1", "s1 serves group g1 as replica"},
		{api.EventGroup, "s2", "g2", "group g2 formed: s2 serves it as primary (scale-out)"},
		{api.EventPrimary, "s2", "g2", "s2 is the primary of group g2 at term 1"},
		{api.EventReaped, "n1", "g1", "n1 (primary of group g1, failed) dropped out of the gossip view"},
		{api.EventJoined, "n4", "g1", "n4 joined the cluster as replica of group g1"},
	}
	got, last := e.since(0)
	if len(got) != len(want) || last != uint64(len(want)) {
		t.Fatalf("got %d events, the last numbered %d; want %d:\n%s", len(got), last, len(want), eventLines(got))
	}
	for i, w := range want {
		g := got[i]
		if g.Seq != uint64(i+1) || g.Kind != w.kind || g.Node != w.node || g.Group != w.group || !strings.Contains(g.Message, w.says) {
			t.Errorf("event %d is %d %s %s/%s %q; want %s %s/%s saying %q", i, g.Seq, g.Kind, g.Group, g.Node, g.Message, w.kind, w.group, w.node, w.says)
		}
	}
	for _, after := range []uint64{last, last + 5, ^uint64(0)} { // a reader ahead of a restarted router
		if evs, l := e.since(after); len(evs) != 0 || l != last {
			t.Errorf("since(%d) = %d events, last %d; want none, last %d", after, len(evs), l, last)
		}
	}
	if later, _ := e.since(got[4].Seq); len(later) != 3 || later[0].Seq != got[5].Seq {
		t.Errorf("since(%d) = %s; want the last three events", got[4].Seq, eventLines(later))
	}
	if !strings.Contains(logs.String(), "level=INFO msg=\"n2 took over group g1 from n1 at term 2 (n1 is failed)\" kind=primary member=n2 group=g1 term=2") {
		t.Errorf("the takeover is not logged at INFO with who, group and term:\n%s", logs.String())
	}
}

// TestEventsKeepTheLatest checks the ring keeps the newest maxEvents.
func TestEventsKeepTheLatest(t *testing.T) {
	e := newEvents(slog.New(slog.DiscardHandler))
	n := voter("n1", 1, gossip.RoleReplica, "g1", 1)
	now := time.Now()
	e.observe(now, []gossip.Member{n})
	for i := range maxEvents + 10 {
		n.Status = []gossip.Status{gossip.StatusSuspect, gossip.StatusAlive}[i%2]
		e.observe(now, []gossip.Member{n})
	}
	got, _ := e.since(0)
	if len(got) != maxEvents || got[len(got)-1].Seq != maxEvents+10 || got[0].Seq != 11 {
		t.Fatalf("kept %d events, %d to %d; want the last %d, 11 to %d", len(got), got[0].Seq, got[len(got)-1].Seq, maxEvents, maxEvents+10)
	}
}

func eventLines(evs []api.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.Kind + " " + ev.Message + "\n")
	}
	return b.String()
}

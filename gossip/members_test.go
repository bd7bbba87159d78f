package gossip

import (
	"slices"
	"testing"
)

func TestLive(t *testing.T) {
	for s, want := range map[Status]bool{
		StatusAlive: true, StatusSuspect: true,
		StatusFailed: false, StatusLeft: false, StatusUnknown: false,
	} {
		if got := (Member{Status: s}).Live(); got != want {
			t.Errorf("Live with status %s = %v, want %v", s, got, want)
		}
	}
}

func TestServes(t *testing.T) {
	tests := []struct {
		role  Role
		group string
		want  bool
	}{
		{RolePrimary, "g", true},
		{RoleReplica, "g", true},
		{RoleReplica, "h", false},
		{RoleStandby, "g", false}, // a standby serves no group, whatever it says
		{RoleRouter, "g", false},
		{"", "g", false},
	}
	for _, tt := range tests {
		m := mem("a", 1, tt.role, 0, group(tt.group), status(StatusFailed))
		if got := m.Serves("g"); got != tt.want {
			t.Errorf("%s of %q: Serves(g) = %v, want %v", tt.role, tt.group, got, tt.want)
		}
	}
}

func TestLiveMembers(t *testing.T) {
	noAddr := func(m *Member) { m.Addr = "" }
	view := []Member{
		mem("p", 1, RolePrimary, 1),
		mem("r", 2, RoleReplica, 1, status(StatusSuspect)),
		mem("dead", 3, RoleReplica, 1, status(StatusFailed)),
		mem("gone", 4, RoleReplica, 1, status(StatusLeft)),
		mem("other", 5, RoleReplica, 1, group("h")),
		mem("spare", 6, RoleStandby, 0),
		mem("mute", 7, RoleReplica, 1, noAddr),
	}
	for i := range view {
		if view[i].Name != "mute" {
			view[i].Addr = view[i].Name + ":7000"
		}
	}
	var got []string
	for _, m := range LiveMembers(view, "g") {
		got = append(got, m.Name)
	}
	if want := []string{"p", "r"}; !slices.Equal(got, want) {
		t.Errorf("LiveMembers = %v, want %v", got, want)
	}
	if ms := LiveMembers(view, "nope"); len(ms) != 0 {
		t.Errorf("LiveMembers of an unknown group = %v, want none", ms)
	}
}

func TestPrimaryAddr(t *testing.T) {
	addr := func(a string) func(*Member) { return func(m *Member) { m.Addr = a } }
	view := []Member{
		mem("a", 1, RolePrimary, 2, addr("a:7000")),
		mem("b", 2, RoleReplica, 2, inSync, addr("b:7000")),
		mem("c", 3, RolePrimary, 1, addr("c:7000"), group("h")),
	}
	for g, want := range map[string]string{"g": "a:7000", "h": "c:7000", "nope": ""} {
		if got := PrimaryAddr(view, g); got != want {
			t.Errorf("PrimaryAddr(%q) = %q, want %q", g, got, want)
		}
	}
	view[0].Status = StatusFailed // the group is leaderless until b promotes
	if got := PrimaryAddr(view, "g"); got != "" {
		t.Errorf("PrimaryAddr with the primary failed = %q, want none", got)
	}
}

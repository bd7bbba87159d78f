package client

import (
	"strings"
	"testing"

	"shoal/api"
)

func TestClusterHealth(t *testing.T) {
	zero := int64(0)
	member := func(name string, edit func(*api.GroupMember)) api.GroupMember {
		m := api.GroupMember{Name: name, Voter: true, Live: true, Synced: true}
		if edit != nil {
			edit(&m)
		}
		return m
	}
	whole := func(name string, meta bool) api.Group {
		return api.Group{Name: name, Meta: meta, Primary: name + "-n0",
			MemberDetails: []api.GroupMember{member(name+"-n0", nil), member(name+"-n1", nil), member(name+"-n2", nil)}}
	}
	for _, c := range []struct {
		name string
		edit func(g1, g2 *api.Group)
		code int
		why  string
	}{
		{"every group whole", nil, exitOK, ""},
		{"a replica dead", func(g1, g2 *api.Group) { g2.MemberDetails[1].Live = false }, exitDegraded, "g2-n1 of g2 does not answer"},
		{"a replica behind", func(g1, g2 *api.Group) { g1.MemberDetails[2].Synced = false }, exitDegraded, "g1-n2 of g1 is not synced"},
		{"a disk refusing writes", func(g1, g2 *api.Group) {
			g1.MemberDetails[1].DiskError = "read-only file system"
			g1.MemberDetails[1].Synced = false
		},
			exitDegraded, "its disk refuses writes (read-only file system)"},
		{"a new member not voting yet", func(g1, g2 *api.Group) { g2.MemberDetails[2].Voter = false }, exitDegraded, "not a voting member yet"},
		{"chunks under-replicated", func(g1, g2 *api.Group) { g2.UnderReplicated = 7 }, exitDegraded, "7 chunks not on every member"},
		{"a data group without a primary", func(g1, g2 *api.Group) { g2.Primary, g2.MemberDetails = "", nil }, exitDegraded, "group g2 has no primary"},
		{"a data group's primary silent", func(g1, g2 *api.Group) { g2.Error, g2.MemberDetails = "timeout", nil }, exitDegraded, "did not report: timeout"},
		{"the meta group without a primary", func(g1, g2 *api.Group) { g1.Primary, g1.MemberDetails = "", nil }, exitUnavailable, "meta group g1 has no primary"},
		{"the meta group's primary silent", func(g1, g2 *api.Group) { g1.Error, g1.MemberDetails = "timeout", nil }, exitUnavailable, "meta group's primary g1-n0 did not report"},
		{"every group full", func(g1, g2 *api.Group) { g1.Free, g2.Free = &zero, &zero }, exitUnavailable, "no group can take writes"},
		{"the data group full, the meta group not", func(g1, g2 *api.Group) { g2.Free = &zero }, exitOK, ""},
	} {
		g1, g2 := whole("g1", true), whole("g2", false)
		if c.edit != nil {
			c.edit(&g1, &g2)
		}
		code, why := clusterHealth(api.Cluster{Groups: []api.Group{g1, g2}})
		if code != c.code || !strings.Contains(strings.Join(why, "; "), c.why) || (c.code == exitOK) != (len(why) == 0) {
			t.Errorf("%s: exit %d %q, want %d saying %q", c.name, code, why, c.code, c.why)
		}
	}
}

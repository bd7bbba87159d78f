package role

import (
	"strings"
	"testing"

	"shoal/gossip"
)

func TestPromotionWhy(t *testing.T) {
	prev := &gossip.Member{Name: "g1-n0", Tags: gossip.Tags{ID: 7, Role: gossip.RolePrimary, Group: "g1", Term: 3, InSync: true}, Status: gossip.StatusAlive}
	with := func(edit func(m *gossip.Member)) []gossip.Member {
		m := *prev
		edit(&m)
		return []gossip.Member{{Name: "g1-n1", Tags: gossip.Tags{ID: 8, Role: gossip.RoleReplica, Group: "g1"}}, m}
	}
	for _, c := range []struct {
		name    string
		prev    *gossip.Member
		members []gossip.Member
		gone    uint64
		want    string
	}{
		{"no primary before", nil, nil, 0, "no primary in the gossip view"},
		{"proven gone", prev, with(func(*gossip.Member) {}), 7, "g1-n0 (term 3) is gone: its peer port refuses connections"},
		{"declared dead", prev, with(func(m *gossip.Member) { m.Status = gossip.StatusFailed }), 0, "declared dead by gossip"},
		{"left", prev, with(func(m *gossip.Member) { m.Status = gossip.StatusLeft }), 0, "left the cluster"},
		{"stepped down", prev, with(func(m *gossip.Member) { m.Role = gossip.RoleReplica }), 0, "no longer claims the primary role (it publishes replica)"},
		{"out of sync", prev, with(func(m *gossip.Member) { m.InSync = false }), 0, "out of sync"},
		{"absent", prev, []gossip.Member{{Name: "g1-n1"}}, 0, "no longer in the gossip view"},
	} {
		if got := promotionWhy(c.prev, c.members, c.gone); !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want it to say %q", c.name, got, c.want)
		}
	}
}

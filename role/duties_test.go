package role

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"shoal/gossip"
	"shoal/meta"
)

// member is a gossip member with an address, alive unless st says not.
func member(id uint64, role gossip.Role, group string, st gossip.Status, used, capacity uint64) gossip.Member {
	return gossip.Member{
		Name:   fmt.Sprintf("n%d", id),
		Tags:   gossip.Tags{ID: id, Role: role, Group: group, Addr: fmt.Sprintf("n%d:7000", id), Used: used, Cap: capacity},
		Status: st,
	}
}

func replica(id uint64, group string, st gossip.Status) gossip.Member {
	return member(id, gossip.RoleReplica, group, st, 0, 0)
}

func standby(id uint64, free uint64) gossip.Member {
	return member(id, gossip.RoleStandby, "", gossip.StatusAlive, 0, free)
}

// full is a live group member using used of 100 bytes.
func full(id uint64, group string, used uint64) gossip.Member {
	return member(id, gossip.RoleReplica, group, gossip.StatusAlive, used, 100)
}

func voters(ids ...uint64) []meta.Member {
	var out []meta.Member
	for _, id := range ids {
		out = append(out, meta.Member{ID: id, Name: fmt.Sprintf("n%d", id), Addr: fmt.Sprintf("n%d:7000", id)})
	}
	return out
}

func ids(ms []gossip.Member) []uint64 {
	out := []uint64{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestDeadVoters(t *testing.T) {
	const self = 1
	tests := []struct {
		name    string
		voters  []meta.Member
		members []gossip.Member
		want    []uint64
	}{
		{"all alive", voters(1, 2, 3), []gossip.Member{replica(2, "g", gossip.StatusAlive), replica(3, "g", gossip.StatusAlive)}, nil},
		{"suspect counts as live", voters(1, 2, 3), []gossip.Member{replica(2, "g", gossip.StatusSuspect), replica(3, "g", gossip.StatusAlive)}, nil},
		{"failed, left and unknown are dead", voters(1, 2, 3, 4),
			[]gossip.Member{replica(2, "g", gossip.StatusFailed), replica(3, "g", gossip.StatusLeft), replica(4, "g", gossip.StatusUnknown)}, []uint64{2, 3, 4}},
		{"absent from gossip is dead", voters(1, 2, 3), []gossip.Member{replica(2, "g", gossip.StatusAlive)}, []uint64{3}},
		{"self is never dead", voters(1, 2), nil, []uint64{2}},
		{"live non-voters are not listed", voters(1, 2), []gossip.Member{replica(2, "g", gossip.StatusAlive), replica(5, "g", gossip.StatusFailed)}, nil},
		{"no voters", nil, []gossip.Member{replica(2, "g", gossip.StatusFailed)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slices.Sorted(maps.Keys(deadVoters(tt.voters, tt.members, self)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("deadVoters = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHasJoiner(t *testing.T) {
	v := voters(1, 2)
	tests := []struct {
		name    string
		members []gossip.Member
		want    bool
	}{
		{"none", nil, false},
		{"only voters", []gossip.Member{replica(1, "g", gossip.StatusAlive), replica(2, "g", gossip.StatusAlive)}, false},
		{"live replica not yet a voter", []gossip.Member{replica(3, "g", gossip.StatusAlive)}, true},
		{"suspect replica not yet a voter", []gossip.Member{replica(3, "g", gossip.StatusSuspect)}, true},
		{"a primary that is no voter", []gossip.Member{member(3, gossip.RolePrimary, "g", gossip.StatusAlive, 0, 0)}, true},
		{"failed replica", []gossip.Member{replica(3, "g", gossip.StatusFailed)}, false},
		{"replica of another group", []gossip.Member{replica(3, "h", gossip.StatusAlive)}, false},
		{"standby", []gossip.Member{standby(3, 100)}, false},
		{"router", []gossip.Member{member(3, gossip.RoleRouter, "g", gossip.StatusAlive, 0, 0)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasJoiner(v, tt.members, "g"); got != tt.want {
				t.Errorf("hasJoiner = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPickStandbys(t *testing.T) {
	noAddr := standby(9, 1000)
	noAddr.Addr = ""
	failed := standby(8, 1000)
	failed.Status = gossip.StatusFailed
	suspect := standby(7, 10)
	suspect.Status = gossip.StatusSuspect
	tests := []struct {
		name    string
		members []gossip.Member
		k       int
		want    []uint64
	}{
		{"most free first", []gossip.Member{standby(1, 10), standby(2, 30), standby(3, 20)}, 3, []uint64{2, 3, 1}},
		{"at most k", []gossip.Member{standby(1, 10), standby(2, 30), standby(3, 20)}, 2, []uint64{2, 3}},
		// Ties go to the higher ID, as Elect ranks IDs: any fixed order
		// makes every primary pick alike.
		{"ties by ID", []gossip.Member{standby(4, 50), standby(6, 50), standby(5, 50)}, 3, []uint64{6, 5, 4}},
		{"full or unknown capacity last", []gossip.Member{member(1, gossip.RoleStandby, "", gossip.StatusAlive, 200, 100), standby(2, 0), standby(3, 1)}, 3, []uint64{3, 2, 1}},
		{"only live standbys with an address",
			[]gossip.Member{noAddr, failed, suspect, replica(4, "g", gossip.StatusAlive), full(5, "g", 0), standby(6, 5)}, 5, []uint64{7, 6}},
		{"fewer than k", []gossip.Member{standby(1, 10)}, 3, []uint64{1}},
		{"none", []gossip.Member{replica(1, "g", gossip.StatusAlive)}, 1, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(pickStandbys(tt.members, tt.k)); !slices.Equal(got, tt.want) {
				t.Errorf("pickStandbys = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlanScaleOut(t *testing.T) {
	const highWater, size = 0.9, 3
	pool := []gossip.Member{standby(10, 50), standby(11, 70), standby(12, 60), standby(13, 40)}
	with := func(ms ...gossip.Member) []gossip.Member { return append(ms, pool...) }
	primary := func(id uint64, group string, used uint64) gossip.Member {
		return member(id, gossip.RolePrimary, group, gossip.StatusAlive, used, 100)
	}
	tests := []struct {
		name    string
		members []gossip.Member
		want    []uint64 // nil: no new group
	}{
		{"every group above high water", with(primary(1, "g1", 95), full(2, "g1", 91), primary(3, "g2", 99)), []uint64{11, 12, 10}},
		{"exactly at high water counts as full", with(primary(1, "g1", 90)), []uint64{11, 12, 10}},
		{"a group is as full as its fullest live member", with(primary(1, "g1", 10), full(2, "g1", 95)), []uint64{11, 12, 10}},
		{"one group below high water", with(primary(1, "g1", 95), primary(3, "g2", 50)), nil},
		{"dead members do not count", with(primary(1, "g1", 10),
			member(2, gossip.RoleReplica, "g1", gossip.StatusFailed, 99, 100)), nil},
		{"a group without capacity published is empty", with(primary(1, "g1", 95),
			member(3, gossip.RolePrimary, "g2", gossip.StatusAlive, 0, 0)), nil},
		{"not enough standbys", []gossip.Member{primary(1, "g1", 95), standby(10, 50), standby(11, 70)}, nil},
		{"no group at all", pool, nil},
		{"standbys and routers are no group", with(member(5, gossip.RoleRouter, "g9", gossip.StatusAlive, 0, 0), primary(1, "g1", 95)), []uint64{11, 12, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := planScaleOut(tt.members, highWater, size)
			if ok != (tt.want != nil) {
				t.Fatalf("planScaleOut ok = %v with %v, want %v", ok, ids(got), tt.want != nil)
			}
			if ok && !slices.Equal(ids(got), tt.want) {
				t.Errorf("planScaleOut = %v, want %v", ids(got), tt.want)
			}
		})
	}
}

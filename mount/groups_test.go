package mount

import (
	"os"
	"slices"
	"testing"
	"time"
)

// TestGroupsOfAProcess reads this process's supplementary groups from
// /proc as the mount reads a caller's, and reuses them for groupsTTL.
func TestGroupsOfAProcess(t *testing.T) {
	want, err := os.Getgroups()
	if err != nil {
		t.Skipf("no groups to compare with: %v", err)
	}
	var g groupsCache
	now := time.Unix(1000, 0)
	got := g.of(uint32(os.Getpid()), now)
	if len(got) != len(want) {
		t.Fatalf("groups %v, want %v", got, want)
	}
	for _, w := range want {
		if !slices.Contains(got, uint32(w)) {
			t.Fatalf("groups %v lack %d", got, w)
		}
	}
	g.byPid[uint32(os.Getpid())] = cachedGroups{groups: []uint32{424242}, read: now}
	if again := g.of(uint32(os.Getpid()), now.Add(groupsTTL/2)); !slices.Equal(again, []uint32{424242}) {
		t.Fatalf("within the TTL: %v, want the cached groups", again)
	}
	if fresh := g.of(uint32(os.Getpid()), now.Add(2*groupsTTL)); len(fresh) != len(want) {
		t.Fatalf("past the TTL: %v, want /proc's again", fresh)
	}
	if none := g.of(0, now); none != nil {
		t.Fatalf("pid 0: %v", none)
	}
}

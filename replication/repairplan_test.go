package replication

import (
	"testing"

	"shoal/meta"
)

// hashIn returns a hash in bucket b (its first byte), told apart by i.
func hashIn(b, i byte) meta.Hash {
	var h meta.Hash
	h[0], h[1] = b, i
	return h
}

func TestRepairPlan(t *testing.T) {
	a1, a2, a3 := hashIn(1, 1), hashIn(1, 2), hashIn(1, 3)
	b1 := hashIn(2, 1) // bucket 2 is equal everywhere
	primary := map[int][]meta.Hash{1: {a1, a2}, 2: {b1}}
	list := func(b int) []meta.Hash { return primary[b] }
	// Member 2 differs in bucket 1: it has a2 and a3 (which the primary
	// lacks) but not a1. Member 3 equals the primary everywhere.
	m2 := &holdings{id: 2, diff: []uint8{1}, held: map[meta.Hash]bool{a2: true, a3: true}}
	m3 := &holdings{id: 3}
	members := map[uint64]*holdings{2: m2, 3: m3}
	p := planRepair(1, members, list)

	if len(p.differ) != 1 || !p.differ[1] {
		t.Fatalf("differing buckets %v, want only 1", p.differ)
	}
	for h, want := range map[meta.Hash][]uint64{a1: {1}, a2: {1, 2}, a3: {2}} {
		got := p.holders[h]
		if len(got) != len(want) {
			t.Errorf("holders of %x: %v, want %v", h[:2], got, want)
		}
		for _, id := range want {
			if !got[id] {
				t.Errorf("holders of %x: %v, want %v", h[:2], got, want)
			}
		}
	}
	if _, ok := p.holders[b1]; ok {
		t.Error("a chunk of an equal bucket is in the round")
	}
	for _, tc := range []struct {
		m    *holdings
		h    meta.Hash
		want bool
	}{
		{m2, a1, true}, {m2, a2, false}, {m2, a3, false},
		{m3, a1, false}, {m3, a2, false}, {m3, a3, true}, // m3 holds what the primary holds
	} {
		if got := p.lacks(tc.m, tc.h); got != tc.want {
			t.Errorf("lacks(member %d, %x) = %v, want %v", tc.m.id, tc.h[:2], got, tc.want)
		}
	}

	none := func(meta.Hash) bool { return false }
	a1Failed := func(h meta.Hash) bool { return h == a1 }
	if !p.holdsAll(m2, none) || !p.holdsAll(m3, none) {
		t.Error("with every copy made, a member does not hold everything")
	}
	if p.holdsAll(m2, a1Failed) {
		t.Error("member 2 lacks a1, which could not be copied, yet holds everything")
	}
	if !p.holdsAll(m3, a1Failed) {
		t.Error("member 3 holds a1; a failed copy of it to another member counts against it")
	}

	var local [256]meta.BucketDigest
	local[1].Count, local[2].Count, local[7].Count = 2, 1, 5
	if got := p.underReplicated(1, []uint64{1, 2, 3}, members, local, a1Failed); got != 1 {
		t.Errorf("under-replicated with every voter up = %d, want 1 (the failed copy)", got)
	}
	if got := p.underReplicated(1, []uint64{1, 2, 3, 4}, members, local, none); got != 3+1+5 {
		t.Errorf("under-replicated with voter 4 down = %d, want %d: every chunk of the group", got, 3+1+5)
	}
}

package replication

import (
	"math/rand/v2"
	"testing"

	"shoal/meta"
)

func TestMajority(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{0, 1}, {1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 3}, {6, 4}, {7, 4},
	} {
		if got := Majority(tc.n); got != tc.want {
			t.Errorf("Majority(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestQuorumIndex(t *testing.T) {
	for _, tc := range []struct {
		name   string
		voters []uint64
		match  map[uint64]uint64
		want   uint64
	}{
		{"no voters", nil, map[uint64]uint64{1: 9}, 0},
		{"single voter", []uint64{1}, map[uint64]uint64{1: 7}, 7},
		{"single voter absent", []uint64{1}, map[uint64]uint64{2: 7}, 0},
		{"two voters need both", []uint64{1, 2}, map[uint64]uint64{1: 7, 2: 3}, 3},
		{"three voters middle", []uint64{1, 2, 3}, map[uint64]uint64{1: 9, 2: 4, 3: 6}, 6},
		{"three voters one absent", []uint64{1, 2, 3}, map[uint64]uint64{1: 9, 3: 6}, 6},
		{"three voters two absent", []uint64{1, 2, 3}, map[uint64]uint64{1: 9}, 0},
		{"non-voters do not count", []uint64{1, 2, 3}, map[uint64]uint64{1: 9, 4: 9, 5: 9}, 0},
		{"four voters need three", []uint64{1, 2, 3, 4}, map[uint64]uint64{1: 10, 2: 8, 3: 5, 4: 1}, 5},
		{"five voters need three", []uint64{1, 2, 3, 4, 5}, map[uint64]uint64{1: 10, 2: 8, 3: 5, 4: 1, 5: 2}, 5},
		{"all equal", []uint64{1, 2, 3}, map[uint64]uint64{1: 4, 2: 4, 3: 4}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := QuorumIndex(tc.voters, tc.match); got != tc.want {
				t.Errorf("QuorumIndex(%v, %v) = %d, want %d", tc.voters, tc.match, got, tc.want)
			}
			if ref := quorumIndexReference(tc.voters, tc.match); ref != tc.want {
				t.Errorf("reference(%v, %v) = %d, want %d", tc.voters, tc.match, ref, tc.want)
			}
		})
	}
}

// quorumIndexReference is the definition, computed by brute force: the
// largest index i such that at least a majority of the voters have a match
// index of i or more (0 when there are no voters).
func quorumIndexReference(voters []uint64, match map[uint64]uint64) uint64 {
	if len(voters) == 0 {
		return 0
	}
	var hi uint64
	for _, id := range voters {
		hi = max(hi, match[id])
	}
	for i := hi; i > 0; i-- {
		n := 0
		for _, id := range voters {
			if match[id] >= i {
				n++
			}
		}
		if n >= Majority(len(voters)) {
			return i
		}
	}
	return 0
}

func TestQuorumIndexMatchesReference(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	for range 5000 {
		nv := rng.IntN(8)
		var voters []uint64
		for i := range nv {
			voters = append(voters, uint64(i+1))
		}
		match := map[uint64]uint64{}
		for id := uint64(1); id <= uint64(nv)+2; id++ { // some non-voters too
			if rng.IntN(4) > 0 {
				match[id] = uint64(rng.IntN(12))
			}
		}
		if got, want := QuorumIndex(voters, match), quorumIndexReference(voters, match); got != want {
			t.Fatalf("seed %d: QuorumIndex(%v, %v) = %d, reference %d", seed, voters, match, got, want)
		}
	}
}

func TestLogNewer(t *testing.T) {
	b := func(term, node uint64) meta.Ballot { return meta.Ballot{Term: term, Node: node} }
	for _, tc := range []struct {
		a    meta.Ballot
		ai   uint64
		b    meta.Ballot
		bi   uint64
		want bool
	}{
		{b(2, 1), 1, b(1, 3), 100, true}, // a later last ballot beats a longer log
		{b(1, 3), 100, b(2, 1), 1, false},
		{b(2, 2), 5, b(2, 1), 9, true}, // the node breaks a term tie
		{b(2, 1), 6, b(2, 1), 5, true},
		{b(2, 1), 5, b(2, 1), 5, false},
		{b(0, 0), 0, b(0, 0), 0, false},
	} {
		if got := logNewer(tc.a, tc.ai, tc.b, tc.bi); got != tc.want {
			t.Errorf("logNewer(%s@%d, %s@%d) = %v, want %v", tc.a, tc.ai, tc.b, tc.bi, got, tc.want)
		}
	}
}

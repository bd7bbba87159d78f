package meta

import "testing"

func TestBallotCheck(t *testing.T) {
	for _, c := range []struct {
		term uint64
		ok   bool
	}{{0, true}, {1, true}, {MaxTerm, true}, {MaxTerm + 1, false}, {1<<64 - 1, false}} {
		err := Ballot{Term: c.term, Node: 3}.Check()
		if (err == nil) != c.ok {
			t.Errorf("Ballot{Term: %d}.Check() = %v, want ok %v", c.term, err, c.ok)
		}
	}
}

package nemesis

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Durability (no acknowledged write is lost) is checked as part of
// linearizability, not beside it. "The last acknowledged write to each
// path must be there at the end" is wrong in both directions: concurrent
// writes have no last one, a write with an unknown outcome may or may not
// count, and renames, copies and deletes move and remove values. Instead,
// once the faults have stopped and the cluster is quiescent, read every
// path once more and append those reads to the history, after everything
// else; the check then asks whether some order of all operations explains
// the final contents too. A lost acknowledged write leaves a final read
// that no order explains.
//
// If the final reads go through the Recorder (after every client has
// stopped), plain Check already does this; CheckFinal is for contents
// taken some other way.

// FinalState is what a quiescent read of one path found.
type FinalState struct {
	Present bool   `json:"present"`
	Value   string `json:"value,omitempty"`
}

// WithFinal returns a copy of events followed by one read per path of
// final, in path order, each invoked after the previous one answered and
// after every event of events, by a client of its own (one past the
// highest client of events).
func WithFinal(events []Event, final map[string]FinalState) []Event {
	out := append([]Event(nil), events...)
	var last int64
	client, id := 0, 0
	for _, e := range events {
		last = max(last, e.Time)
		client = max(client, e.Client+1)
		id = max(id, e.ID+1)
	}
	for _, p := range slices.Sorted(maps.Keys(final)) {
		f := final[p]
		res := NotFound()
		if f.Present {
			res = Found(f.Value)
		}
		op := Read(p)
		out = append(out,
			Event{Kind: EventInvoke, ID: id, Client: client, Time: last + 1, Op: op},
			Event{Kind: EventComplete, ID: id, Client: client, Time: last + 2, Op: op, Result: res})
		id++
		last += 2
	}
	return out
}

// CheckFinal checks events followed by the final contents (see WithFinal)
// within timeout. The error is nil when the whole is linearizable, and
// wraps ErrNotLinearizable, ErrCheckTimeout or ErrBadHistory otherwise;
// the result can write the report either way.
func CheckFinal(events []Event, final map[string]FinalState, timeout time.Duration) (CheckResult, error) {
	r, err := Check(WithFinal(events, final), timeout)
	if err != nil {
		return r, err
	}
	switch r.Verdict {
	case VerdictIllegal:
		return r, fmt.Errorf("%w: with the final reads of %d paths: %s", ErrNotLinearizable, len(final), r)
	case VerdictUnknown:
		return r, fmt.Errorf("%w after %s: %s", ErrCheckTimeout, timeout, r)
	}
	return r, nil
}

package nemesis

import (
	"strings"
	"testing"
	"time"
)

// The lock campaign's checks find each kind of violation in a made-up
// log, and pass a clean one.
func TestLockChecksCatchViolations(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	clean := func() *lockLog {
		return &lockLog{
			spans:  []lockSpan{{client: 0, token: 1, from: at(0), to: at(100)}, {client: 1, token: 2, from: at(150), to: at(300)}},
			grants: []lockSpan{{client: 0, token: 1, from: at(0)}, {client: 1, token: 2, from: at(150)}},
			writes: []fencedWrite{{client: 0, token: 1, value: 1, sent: at(50), acked: true}, {client: 1, token: 2, value: 2, sent: at(200), acked: true},
				{client: 0, token: 1, value: 2, sent: at(250), fenced: true}},
		}
	}
	if msg := checkLocks(clean(), 2); msg != "" {
		t.Fatalf("a clean log: %s", msg)
	}
	for _, c := range []struct {
		name string
		edit func(l *lockLog)
		want string
	}{
		{"overlapping holders", func(l *lockLog) { l.spans[1].from = at(90) }, "two holders at once"},
		{"a write after a newer grant", func(l *lockLog) { l.writes[2].acked = true; l.writes[2].value = 3 }, "accepted after token 2"},
		{"a lost increment", func(l *lockLog) { l.writes[1].value = 1 }, "lost increment"},
	} {
		l := clean()
		c.edit(l)
		if msg := checkLocks(l, 3); !strings.Contains(msg, c.want) {
			t.Errorf("%s: the check said %q, want %q", c.name, msg, c.want)
		}
	}
	if msg := checkLocks(clean(), 1); !strings.Contains(msg, "below the acknowledged") {
		t.Errorf("a counter below an acknowledged write: %q", msg)
	}
}

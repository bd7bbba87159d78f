package clock

import (
	"testing"
	"time"
)

func TestOffsetShiftsWallTime(t *testing.T) {
	defer SetOffset(0)
	for _, d := range []time.Duration{time.Hour, -time.Hour} {
		SetOffset(d)
		before := time.Now()
		got := Now()
		after := time.Now()
		if got.Before(before.Add(d).Round(0)) || got.After(after.Add(d).Round(0)) {
			t.Errorf("offset %v: Now() = %v, want between %v and %v", d, got, before.Add(d), after.Add(d))
		}
	}
	SetOffset(0)
	if d := time.Until(Now()); d > time.Second || d < -time.Second {
		t.Errorf("offset 0: Now() is %v from time.Now", d)
	}
}

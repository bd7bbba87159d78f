package nemesis

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stepClock is a fake clock that advances by step on every reading.
func stepClock(step time.Duration) func() time.Time {
	base := time.Unix(1000, 0)
	var n atomic.Int64
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * step) }
}

func TestRecorderTimesAndPairs(t *testing.T) {
	r := NewRecorder(stepClock(time.Millisecond)) // start reads the clock once
	a := r.Invoke(0, Write("/a", "1"))
	b := r.Invoke(1, Read("/a"))
	a.Complete(OK())
	b.Unknown()
	c := r.Invoke(0, Delete("/a"))
	_ = c // left pending

	h := r.History()
	want := []struct {
		kind   EventKind
		id     int
		client int
		time   int64
	}{
		{EventInvoke, 0, 0, int64(time.Millisecond)},
		{EventInvoke, 1, 1, int64(2 * time.Millisecond)},
		{EventComplete, 0, 0, int64(3 * time.Millisecond)},
		{EventUnknown, 1, 1, int64(4 * time.Millisecond)},
		{EventInvoke, 2, 0, int64(5 * time.Millisecond)},
	}
	if len(h) != len(want) {
		t.Fatalf("history has %d events, want %d: %+v", len(h), len(want), h)
	}
	for i, w := range want {
		e := h[i]
		if e.Kind != w.kind || e.ID != w.id || e.Client != w.client || e.Time != w.time {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
	}
	if h[2].Op != Write("/a", "1") || h[2].Result != OK() {
		t.Errorf("completion carries op %+v result %+v", h[2].Op, h[2].Result)
	}
}

func TestPendingEndsOnce(t *testing.T) {
	r := NewRecorder(stepClock(time.Microsecond))
	p := r.Invoke(3, Exists("/x"))
	p.Complete(Present(true))
	p.Unknown()
	p.Complete(Present(false))
	h := r.History()
	if len(h) != 2 || h[1].Kind != EventComplete || !h[1].Result.Present {
		t.Fatalf("history %+v: want one invoke and the first completion only", h)
	}
}

func TestHistoryIsACopy(t *testing.T) {
	r := NewRecorder(nil)
	r.Invoke(0, Read("/a")).Complete(NotFound())
	h := r.History()
	h[0].Client = 99
	if r.History()[0].Client != 0 {
		t.Fatal("History returned the recorder's own slice")
	}
}

func TestRecorderClockNeverGoesBack(t *testing.T) {
	base := time.Unix(0, 0)
	readings := []time.Duration{0, 10, 5, 20}
	i := 0
	r := NewRecorder(func() time.Time {
		d := readings[i]
		i++
		return base.Add(d)
	})
	r.Invoke(0, Read("/a")).Complete(NotFound()) // times 10, then 5 clamped to 10
	r.Invoke(0, Read("/a"))                      // 20
	var got []int64
	for _, e := range r.History() {
		got = append(got, e.Time)
	}
	if want := []int64{10, 10, 20}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("times %v, want %v", got, want)
	}
}

// Run with -race: many clients record at once; every operation must
// appear once as an invocation and once as an end after it, in time order.
func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder(nil)
	const clients, each = 8, 200
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				p := r.Invoke(c, Write("/a", "v"))
				if i%7 == 0 {
					p.Unknown()
				} else {
					p.Complete(OK())
				}
			}
		})
	}
	wg.Wait()
	h := r.History()
	if len(h) != 2*clients*each {
		t.Fatalf("%d events, want %d", len(h), 2*clients*each)
	}
	invokedAt := map[int]int{}
	for i, e := range h {
		if i > 0 && e.Time < h[i-1].Time {
			t.Fatalf("event %d at %d is before event %d at %d", i, e.Time, i-1, h[i-1].Time)
		}
		if e.Kind == EventInvoke {
			invokedAt[e.ID] = i
		} else if at, ok := invokedAt[e.ID]; !ok || at > i {
			t.Fatalf("event %d ends operation %d before its invocation", i, e.ID)
		}
	}
	if len(invokedAt) != clients*each {
		t.Fatalf("%d distinct operations, want %d", len(invokedAt), clients*each)
	}
	res, err := Check(h, 10*time.Second)
	if err != nil || res.Verdict != VerdictOK {
		t.Fatalf("Check = %v, %v; want ok", res, err)
	}
}

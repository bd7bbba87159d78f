package nemesis

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// histBuilder writes histories by hand, with explicit times.
type histBuilder struct {
	events []Event
	id     int
}

// op records an operation of client invoked at call and answered res at ret.
func (h *histBuilder) op(client int, call, ret int64, op Op, res Result) *histBuilder {
	h.events = append(h.events,
		Event{Kind: EventInvoke, ID: h.id, Client: client, Time: call, Op: op},
		Event{Kind: EventComplete, ID: h.id, Client: client, Time: ret, Op: op, Result: res})
	h.id++
	return h
}

// unknown records an operation invoked at call that timed out at end.
func (h *histBuilder) unknown(client int, call, end int64, op Op) *histBuilder {
	h.events = append(h.events,
		Event{Kind: EventInvoke, ID: h.id, Client: client, Time: call, Op: op},
		Event{Kind: EventUnknown, ID: h.id, Client: client, Time: end, Op: op})
	h.id++
	return h
}

// pending records an operation invoked at call that never ended.
func (h *histBuilder) pending(client int, call int64, op Op) *histBuilder {
	h.events = append(h.events, Event{Kind: EventInvoke, ID: h.id, Client: client, Time: call, Op: op})
	h.id++
	return h
}

func hist() *histBuilder { return &histBuilder{} }

const checkTimeout = 10 * time.Second

func TestLegalHistories(t *testing.T) {
	cases := map[string]*histBuilder{
		"concurrent writes, later reads agree on one": hist().
			op(0, 0, 10, Write("/a", "1"), OK()).
			op(1, 0, 10, Write("/a", "2"), OK()).
			op(2, 2, 4, Read("/a"), Found("2")).
			op(3, 5, 7, Read("/a"), Found("1")).
			op(2, 11, 12, Read("/a"), Found("1")).
			op(3, 13, 14, Read("/a"), Found("1")),
		"a read concurrent with a write sees either": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(1, 2, 10, Write("/a", "2"), OK()).
			op(2, 3, 4, Read("/a"), Found("1")).
			op(3, 3, 5, Read("/a"), Found("2")).
			op(2, 11, 12, Read("/a"), Found("2")),
		"a read before any write finds nothing": hist().
			op(0, 0, 1, Read("/a"), NotFound()).
			op(0, 2, 3, Exists("/a"), Present(false)).
			op(0, 4, 5, Exists("/a"), NotFound()). // HEAD's 404
			op(0, 6, 7, Write("/a", "1"), OK()).
			op(0, 8, 9, Exists("/a"), Present(true)),
		"an unknown write that later appears": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			unknown(1, 2, 5, Write("/a", "2")).
			op(2, 10, 11, Read("/a"), Found("1")).
			op(2, 12, 13, Read("/a"), Found("2")).
			op(2, 14, 15, Read("/a"), Found("2")),
		"an unknown write that never appears": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			unknown(1, 2, 5, Write("/a", "2")).
			pending(3, 3, Write("/a", "3")).
			op(2, 10, 11, Read("/a"), Found("1")).
			op(2, 20, 21, Read("/a"), Found("1")),
		"an unknown delete that lands late": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			unknown(1, 2, 3, Delete("/a")).
			op(2, 10, 11, Read("/a"), Found("1")).
			op(2, 12, 13, Read("/a"), NotFound()),
		"a failed write changes nothing": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(1, 2, 3, Write("/a", "2"), Failed("no_space")).
			op(2, 4, 5, Read("/a"), Found("1")),
		"rename and copy": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(0, 2, 3, Rename("/a", "/b"), OK()).
			op(1, 4, 5, Read("/a"), NotFound()).
			op(2, 4, 5, Read("/b"), Found("1")).
			op(0, 6, 7, Copy("/b", "/c"), OK()).
			op(1, 8, 9, Read("/b"), Found("1")).
			op(2, 8, 9, Read("/c"), Found("1")).
			op(0, 10, 11, Exists("/a"), Present(false)).
			op(0, 12, 13, Delete("/c"), OK()).
			op(0, 14, 15, Delete("/c"), NotFound()).
			op(0, 16, 17, Rename("/a", "/d"), NotFound()).
			op(0, 18, 19, Copy("/a", "/d"), NotFound()).
			op(0, 20, 21, Rename("/b", "/b"), OK()).
			op(0, 22, 23, Read("/b"), Found("1")).
			op(3, 0, 1, Write("/x", "9"), OK()). // another partition
			op(3, 2, 3, Read("/x"), Found("9")),
		"rename replaces its destination": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(0, 2, 3, Write("/b", "2"), OK()).
			op(0, 4, 5, Rename("/a", "/b"), OK()).
			op(0, 6, 7, Read("/b"), Found("1")),
		"a write concurrent with a rename of its path, write first": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(1, 2, 10, Rename("/a", "/b"), OK()).
			op(2, 3, 9, Write("/a", "2"), OK()).
			op(0, 11, 12, Read("/a"), NotFound()).
			op(0, 13, 14, Read("/b"), Found("2")),
		"a write concurrent with a rename of its path, rename first": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(1, 2, 10, Rename("/a", "/b"), OK()).
			op(2, 3, 9, Write("/a", "2"), OK()).
			op(0, 11, 12, Read("/a"), Found("2")).
			op(0, 13, 14, Read("/b"), Found("1")),
		"an unknown rename, seen through both paths": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			unknown(1, 2, 3, Rename("/a", "/b")).
			op(0, 4, 5, Read("/b"), NotFound()).
			op(0, 6, 7, Read("/b"), Found("1")).
			op(0, 8, 9, Read("/a"), NotFound()),
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Check(h.events, checkTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != VerdictOK {
				t.Fatalf("verdict %s, want ok", res)
			}
		})
	}
}

func TestIllegalHistories(t *testing.T) {
	cases := map[string]*histBuilder{
		"a stale read after an acknowledged write": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(0, 2, 3, Write("/a", "2"), OK()).
			op(1, 4, 5, Read("/a"), Found("1")),
		"a read of a value never written": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(1, 2, 3, Read("/a"), Found("zzz")),
		"a read of a write that definitely failed": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(0, 2, 3, Write("/a", "2"), Failed("no_space")).
			op(1, 4, 5, Read("/a"), Found("2")),
		"a read after a successful delete returns the old value": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(0, 2, 3, Delete("/a"), OK()).
			op(1, 4, 5, Read("/a"), Found("1")),
		"a delete of a present file answers not_found": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(1, 2, 3, Delete("/a"), NotFound()),
		"a renamed source still reads afterwards": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(0, 2, 3, Rename("/a", "/b"), OK()).
			op(1, 4, 5, Read("/a"), Found("1")),
		"a rename of an absent file succeeds": hist().
			op(0, 0, 1, Rename("/a", "/b"), OK()),
		"a copy loses its destination's new content": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(0, 2, 3, Copy("/a", "/b"), OK()).
			op(1, 4, 5, Read("/b"), NotFound()),
		"an unknown write seen, then unseen": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			unknown(1, 2, 5, Write("/a", "2")).
			op(2, 10, 11, Read("/a"), Found("2")).
			op(2, 12, 13, Read("/a"), Found("1")),
		"a write concurrent with a rename, both paths holding it": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(1, 2, 10, Rename("/a", "/b"), OK()).
			op(2, 3, 9, Write("/a", "2"), OK()).
			op(0, 11, 12, Read("/a"), Found("2")).
			op(0, 13, 14, Read("/b"), Found("2")),
		"an exists that misses an acknowledged write": hist().
			op(0, 0, 1, Write("/a", "1"), OK()).
			op(1, 2, 3, Exists("/a"), Present(false)),
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Check(h.events, checkTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != VerdictIllegal {
				t.Fatalf("verdict %s, want illegal", res)
			}
		})
	}
}

func TestPartitionsFollowRenames(t *testing.T) {
	h := hist().
		op(0, 0, 1, Write("/a", "1"), OK()).
		op(0, 2, 3, Copy("/a", "/b"), OK()).
		op(0, 4, 5, Rename("/c", "/b"), NotFound()). // joins /c to {/a, /b}
		op(1, 0, 1, Write("/x", "1"), OK()).
		op(2, 0, 1, Write("/y", "1"), OK()).
		op(2, 2, 3, Rename("/y", "/z"), OK())
	res, err := Check(h.events, checkTimeout)
	if err != nil || res.Verdict != VerdictOK {
		t.Fatalf("Check = %v, %v", res, err)
	}
	if res.Partitions != 3 || res.Ops != 6 {
		t.Fatalf("got %s, want 6 operations in 3 partitions", res)
	}
}

func TestBadHistories(t *testing.T) {
	ev := func(kind EventKind, id int, op Op, res Result, at int64) Event {
		return Event{Kind: kind, ID: id, Time: at, Op: op, Result: res}
	}
	w := Write("/a", "1")
	cases := map[string][]Event{
		"end without invocation": {ev(EventComplete, 0, w, OK(), 1)},
		"ended twice":            {ev(EventInvoke, 0, w, Result{}, 0), ev(EventComplete, 0, w, OK(), 1), ev(EventUnknown, 0, w, Result{}, 2)},
		"invoked twice":          {ev(EventInvoke, 0, w, Result{}, 0), ev(EventInvoke, 0, w, Result{}, 1)},
		"ends before it starts":  {ev(EventInvoke, 0, w, Result{}, 5), ev(EventComplete, 0, w, OK(), 1)},
		"write not_found":        {ev(EventInvoke, 0, w, Result{}, 0), ev(EventComplete, 0, w, NotFound(), 1)},
		"no status":              {ev(EventInvoke, 0, w, Result{}, 0), ev(EventComplete, 0, w, Result{}, 1)},
		"unknown op kind":        {ev(EventInvoke, 0, Op{Kind: "stat", Path: "/a"}, Result{}, 0)},
		"rename without target":  {ev(EventInvoke, 0, Op{Kind: OpRename, Path: "/a"}, Result{}, 0)},
		"unknown event kind":     {ev(EventInvoke, 0, w, Result{}, 0), ev("fail", 0, w, Result{}, 1)},
		"a path below another": {ev(EventInvoke, 0, w, Result{}, 0), ev(EventComplete, 0, w, OK(), 1),
			ev(EventInvoke, 1, Write("/a/b", "1"), Result{}, 2)},
	}
	for name, events := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Check(events, checkTimeout); !errors.Is(err, ErrBadHistory) {
				t.Fatalf("Check error %v, want ErrBadHistory", err)
			}
		})
	}
}

func TestCheckFinal(t *testing.T) {
	h := hist().
		op(0, 0, 1, Write("/a", "1"), OK()).
		op(0, 2, 3, Write("/b", "1"), OK()).
		unknown(1, 4, 5, Write("/b", "2")).
		op(1, 6, 7, Rename("/b", "/c"), OK())
	cases := []struct {
		name  string
		final map[string]FinalState
		want  error
	}{
		{"everything kept", map[string]FinalState{"/a": {true, "1"}, "/b": {}, "/c": {true, "1"}}, nil},
		{"the unknown write landed first", map[string]FinalState{"/a": {true, "1"}, "/b": {}, "/c": {true, "2"}}, nil},
		{"the unknown write landed last", map[string]FinalState{"/a": {true, "1"}, "/b": {true, "2"}, "/c": {true, "1"}}, nil},
		{"an acknowledged write lost", map[string]FinalState{"/a": {}, "/b": {}, "/c": {true, "1"}}, ErrNotLinearizable},
		{"a rename undone", map[string]FinalState{"/a": {true, "1"}, "/b": {true, "1"}, "/c": {}}, ErrNotLinearizable},
		{"a file from nowhere", map[string]FinalState{"/a": {true, "1"}, "/z": {true, "?"}}, ErrNotLinearizable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckFinal(h.events, c.final, checkTimeout)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("CheckFinal error %v, want %v", err, c.want)
			}
		})
	}
}

func TestWriteReport(t *testing.T) {
	h := hist().
		op(0, 0, 1, Write("/a", "1"), OK()).
		unknown(1, 1, 2, Write("/a", "2")).
		op(0, 2, 3, Delete("/a"), OK()).
		op(1, 4, 5, Read("/a"), Found("1"))
	res, err := Check(h.events, checkTimeout)
	if err != nil || res.Verdict != VerdictIllegal {
		t.Fatalf("Check = %v, %v; want illegal", res, err)
	}
	dir := filepath.Join(t.TempDir(), "report")
	paths, err := res.WriteReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("wrote %v, want history and visualisation", paths)
	}
	raw, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	var back []Event
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("history.json: %v", err)
	}
	if !reflect.DeepEqual(back, h.events) {
		t.Fatalf("history.json round trip:\n got %+v\nwant %+v", back, h.events)
	}
	html, err := os.ReadFile(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(html) < 1000 || !containsAll(string(html), `write(/a, \"2\") -\u003e unknown`, `read(/a) -\u003e \"1\"`) {
		t.Fatalf("visualisation (%d bytes) lacks the operations", len(html))
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

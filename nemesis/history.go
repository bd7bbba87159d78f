// Package nemesis runs fault campaigns against Shoal and checks the
// histories its clients record for linearizability.
package nemesis

import (
	"sync"
	"time"
)

// EventKind tags an Event: the invocation of an operation or how it ended.
type EventKind string

// An operation is one invoke event followed by at most one of the others.
const (
	EventInvoke   EventKind = "invoke"   // the client sent the operation
	EventComplete EventKind = "complete" // it answered; Result says how
	EventUnknown  EventKind = "unknown"  // it may or may not have taken effect
)

// Event is one entry of a history. ID pairs an invocation with its end;
// Client is the (zero-based) client that ran it, one operation at a time;
// Time is monotonic nanoseconds since the recorder started. Op is
// repeated on the end events so that the JSON history reads on its own;
// Result is set on EventComplete only.
type Event struct {
	Kind   EventKind `json:"kind"`
	ID     int       `json:"id"`
	Client int       `json:"client"`
	Time   int64     `json:"time"`
	Op     Op        `json:"op"`
	Result Result    `json:"result,omitzero"`
}

// Recorder logs the operations of concurrent clients as a history. It is
// safe for concurrent use. An operation still pending when History is
// called counts as unknown: it may take effect at any later time.
type Recorder struct {
	clock func() time.Time
	start time.Time

	// mu orders events: the clock is read under it, so event order and
	// time order agree, and a completion always follows its invocation.
	mu     sync.Mutex
	last   int64
	nextID int
	events []Event
}

// Pending is an invoked operation waiting for its end. Only the first
// Complete or Unknown counts; later calls are ignored, so a client may
// call Unknown in a deferred cleanup after Complete.
type Pending struct {
	r      *Recorder
	id     int
	client int
	op     Op
	done   bool // guarded by r.mu
}

// NewRecorder starts a recorder whose times come from clock (time.Now
// when nil). With time.Now, times are monotonic: they use Go's monotonic
// clock reading, not the wall clock.
func NewRecorder(clock func() time.Time) *Recorder {
	if clock == nil {
		clock = time.Now
	}
	return &Recorder{clock: clock, start: clock()}
}

// now is the time since start; it never goes back, even if an injected
// clock does. Callers hold r.mu.
func (r *Recorder) now() int64 {
	t := int64(r.clock().Sub(r.start))
	if t < r.last {
		t = r.last
	}
	r.last = t
	return t
}

// Invoke records that client is about to send op. Call it just before the
// request goes out, and end the returned Pending when the answer is known.
func (r *Recorder) Invoke(client int, op Op) *Pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &Pending{r: r, id: r.nextID, client: client, op: op}
	r.nextID++
	r.events = append(r.events, Event{Kind: EventInvoke, ID: p.id, Client: client, Time: r.now(), Op: op})
	return p
}

// Complete records that the operation ended with res: it happened (or,
// with StatusFailed, definitely did not).
func (p *Pending) Complete(res Result) { p.end(EventComplete, res) }

// Unknown records that the operation's outcome is not known (a timeout,
// a broken connection, an ambiguous 5xx): it may have taken effect, now
// or at any later time, or never.
func (p *Pending) Unknown() { p.end(EventUnknown, Result{}) }

func (p *Pending) end(kind EventKind, res Result) {
	r := p.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	r.events = append(r.events, Event{Kind: kind, ID: p.id, Client: p.client, Time: r.now(), Op: p.op, Result: res})
}

// History returns a copy of the events recorded so far, in time order.
func (r *Recorder) History() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

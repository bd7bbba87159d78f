package api

import "time"

// The values of Event.Kind.
const (
	EventJoined    = "joined"     // a node appeared in the gossip view
	EventSuspect   = "suspect"    // a probe of it failed; the cluster waits for it to answer
	EventAlive     = "alive"      // a suspected or failed node answers again
	EventFailed    = "failed"     // declared failed: it stopped answering
	EventLeft      = "left"       // it left the cluster gracefully
	EventReaped    = "reaped"     // a failed or departed node dropped out of the view
	EventPrimary   = "primary"    // a group has a new primary, or its primary a new term
	EventNoPrimary = "no_primary" // a group lost its primary; writes to it wait
	EventMember    = "member"     // a node began serving a group (replacement or scale-out)
	EventDeparted  = "departed"   // a node stopped serving a group
	EventGroup     = "group"      // a new group formed (scale-out)
)

// Event is one change a router saw in the cluster, from its gossip view.
// Message says it in a sentence with who, why and the term.
type Event struct {
	// Seq numbers the router's events from 1; GET /v1/events?after=SEQ
	// returns only newer ones. A restarted router counts from 1 again.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"` // UTC
	Kind    string    `json:"kind"`
	Node    string    `json:"node,omitempty"`
	Group   string    `json:"group,omitempty"`
	Term    uint64    `json:"term,omitempty"`
	Message string    `json:"message"`
}

// Events is the answer of GET /v1/events: the router's recent events,
// oldest first (it keeps the last few hundred).
type Events struct {
	Events []Event `json:"events"`
	// Last is the number of the router's newest event, 0 before its
	// first: below the after= asked for, the router restarted (and counts
	// from 1 again), so ask again from 0.
	Last uint64 `json:"last"`
}

// RouterStats is the answer of GET /v1/stats: the router's counters of
// the file API (/v1/fs) since it started, from which the console draws
// rates (the difference of two answers over their times). Requests,
// errors and seconds leave out the rest of the API (the console's own
// polling among it); the bytes count every answer.
type RouterStats struct {
	Time time.Time `json:"time"` // UTC
	// Metered is false when the router runs without --metrics: the
	// counters then stay zero.
	Metered  bool    `json:"metered"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`  // answered with a 5xx status
	Seconds  float64 `json:"seconds"` // the requests' time from arrival to the end of the answer, summed
	Received uint64  `json:"received_bytes"`
	Sent     uint64  `json:"sent_bytes"`
	InFlight int64   `json:"in_flight"` // every request being served, this one included
}

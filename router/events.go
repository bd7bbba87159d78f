package router

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"shoal/api"
	"shoal/gossip"
)

// maxEvents bounds the events a router keeps for GET /v1/events.
const maxEvents = 500

// eventPoll is how often the recorder compares gossip views: often enough
// to see a suspicion, which lasts seconds, and cheap (a few dozen members).
const eventPoll = 500 * time.Millisecond

// events turns changes of the gossip view into events: it logs each at
// INFO and keeps the last maxEvents for GET /v1/events and the console.
type events struct {
	log *slog.Logger

	mu   sync.Mutex
	seq  uint64
	ring []api.Event // oldest first
	// departed remembers, per node, when and why it stopped serving its
	// group, for GET /v1/cluster's departed list.
	departed map[string]api.Departed
	prev     view
}

// view is what the recorder compares: each member, and each group's
// primary and term as every node computes them (gossip.Elect).
type view struct {
	members   map[string]gossip.Member
	primaries map[string]primaryOf
}

type primaryOf struct {
	name string
	term uint64
}

func newEvents(log *slog.Logger) *events {
	return &events{log: log, departed: map[string]api.Departed{}}
}

// viewOf summarizes ms.
func viewOf(ms []gossip.Member) view {
	v := view{members: make(map[string]gossip.Member, len(ms)), primaries: map[string]primaryOf{}}
	for _, m := range ms {
		v.members[m.Name] = m
	}
	for _, m := range ms {
		if m.Group == "" {
			continue
		}
		if _, done := v.primaries[m.Group]; done {
			continue
		}
		d := gossip.Elect(ms, m.Group)
		p := primaryOf{term: d.MaxTerm}
		if d.Primary != nil {
			p = primaryOf{d.Primary.Name, d.Primary.Term}
		}
		v.primaries[m.Group] = p
	}
	return v
}

// observe compares ms with the last view observed and records what
// changed. The first call records only the view, not an event per member.
func (e *events) observe(now time.Time, ms []gossip.Member) {
	cur := viewOf(ms)
	e.mu.Lock()
	prev := e.prev
	e.prev = cur
	var recorded []api.Event
	if prev.members != nil {
		recorded = diffViews(prev, cur)
		for i := range recorded {
			recorded[i] = e.record(now, recorded[i])
		}
	}
	e.mu.Unlock()
	// Logged outside the lock: a slow log writer does not hold up
	// readers of /v1/events and /v1/cluster.
	for _, ev := range recorded {
		e.logEvent(ev)
	}
}

// logEvent logs ev at INFO with who, where and the term.
func (e *events) logEvent(ev api.Event) {
	attrs := []any{"kind", ev.Kind}
	if ev.Node != "" {
		attrs = append(attrs, "member", ev.Node)
	}
	if ev.Group != "" {
		attrs = append(attrs, "group", ev.Group)
	}
	if ev.Term != 0 {
		attrs = append(attrs, "term", ev.Term)
	}
	e.log.Info(ev.Message, attrs...)
}

// diffViews lists the events between two views, in an order a reader can
// follow: nodes first (names sorted), then groups.
func diffViews(prev, cur view) []api.Event {
	var out []api.Event
	for _, name := range slices.Sorted(maps.Keys(cur.members)) {
		m := cur.members[name]
		was, seen := prev.members[name]
		switch {
		case !seen:
			out = append(out, api.Event{Kind: api.EventJoined, Node: name, Group: m.Group, Term: m.Term,
				Message: fmt.Sprintf("%s joined the cluster as %s%s", name, m.Role, inGroup(m.Group))})
			continue
		case was.Status != m.Status:
			out = append(out, statusEvent(was, m))
		}
		if was.Group != m.Group {
			if was.Group != "" {
				out = append(out, api.Event{Kind: api.EventDeparted, Node: name, Group: was.Group, Term: m.Term,
					Message: fmt.Sprintf("%s stopped serving group %s: it is now %s%s", name, was.Group, m.Role, inGroup(m.Group))})
			}
			if m.Group != "" {
				out = append(out, memberEvent(m, prev))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(prev.members)) {
		if _, ok := cur.members[name]; !ok {
			m := prev.members[name]
			out = append(out, api.Event{Kind: api.EventReaped, Node: name, Group: m.Group, Term: m.Term,
				Message: fmt.Sprintf("%s (%s%s, %s) dropped out of the gossip view", name, m.Role, inGroup(m.Group), m.Status)})
		}
	}
	for _, g := range slices.Sorted(maps.Keys(cur.primaries)) {
		p, was := cur.primaries[g], prev.primaries[g]
		switch {
		case p == was || p.name == "" && was.name == "":
		case p.name == "":
			out = append(out, api.Event{Kind: api.EventNoPrimary, Group: g, Term: p.term,
				Message: fmt.Sprintf("group %s has no primary (highest term %d; %s): its writes wait for an election",
					g, p.term, lostWhy(was.name, cur))})
		case was.name == "":
			out = append(out, api.Event{Kind: api.EventPrimary, Node: p.name, Group: g, Term: p.term,
				Message: fmt.Sprintf("%s is the primary of group %s at term %d", p.name, g, p.term)})
		case was.name != p.name:
			out = append(out, api.Event{Kind: api.EventPrimary, Node: p.name, Group: g, Term: p.term,
				Message: fmt.Sprintf("%s took over group %s from %s at term %d (%s)", p.name, g, was.name, p.term, lostWhy(was.name, cur))})
		default:
			out = append(out, api.Event{Kind: api.EventPrimary, Node: p.name, Group: g, Term: p.term,
				Message: fmt.Sprintf("%s leads group %s again, at term %d (was %d)", p.name, g, p.term, was.term)})
		}
	}
	return out
}

// memberEvent is m, a node already in the view, beginning to serve its
// group: a new group (scale-out) when prev had no member of it, a member
// (a replacement, or a node added) otherwise. A node that joins the view
// already serving a group (a start, a restart) is only "joined".
func memberEvent(m gossip.Member, prev view) api.Event {
	if _, known := prev.primaries[m.Group]; !known {
		return api.Event{Kind: api.EventGroup, Node: m.Name, Group: m.Group, Term: m.Term,
			Message: fmt.Sprintf("group %s formed: %s serves it as %s (scale-out)", m.Group, m.Name, m.Role)}
	}
	return api.Event{Kind: api.EventMember, Node: m.Name, Group: m.Group, Term: m.Term,
		Message: fmt.Sprintf("%s serves group %s as %s", m.Name, m.Group, m.Role)}
}

// statusEvent is m's liveness changing from was's.
func statusEvent(was, m gossip.Member) api.Event {
	ev := api.Event{Node: m.Name, Group: m.Group, Term: m.Term}
	who := fmt.Sprintf("%s (%s%s, term %d)", m.Name, m.Role, inGroup(m.Group), m.Term)
	switch m.Status {
	case gossip.StatusSuspect:
		ev.Kind, ev.Message = api.EventSuspect, who+" is suspected: a probe got no answer; it is failed unless it answers within the suspicion timeout"
	case gossip.StatusAlive:
		ev.Kind, ev.Message = api.EventAlive, fmt.Sprintf("%s answers again (was %s)", who, was.Status)
	case gossip.StatusFailed:
		ev.Kind, ev.Message = api.EventFailed, who+" is declared failed: it stopped answering probes (crashed, stopped without leaving, or cut off)"
	case gossip.StatusLeft:
		ev.Kind, ev.Message = api.EventLeft, who+" left the cluster (stopped gracefully)"
	default:
		ev.Kind, ev.Message = api.EventFailed, fmt.Sprintf("%s is %s", who, m.Status)
	}
	return ev
}

// lostWhy says why a group's primary named old is no longer primary, as
// the view shows it.
func lostWhy(old string, cur view) string {
	m, ok := cur.members[old]
	switch {
	case old == "":
		return "there was none"
	case !ok:
		return old + " dropped out of the view"
	case !m.Live():
		return fmt.Sprintf("%s is %s", old, m.Status)
	case m.Role != gossip.RolePrimary:
		return fmt.Sprintf("%s stepped down to %s", old, m.Role)
	}
	return fmt.Sprintf("%s is behind a higher term", old)
}

func inGroup(g string) string {
	if g == "" {
		return ""
	}
	return " of group " + g
}

// record stamps ev, keeps it and returns it stamped; e.mu is held.
func (e *events) record(now time.Time, ev api.Event) api.Event {
	e.seq++
	ev.Seq, ev.Time = e.seq, now.UTC()
	if len(e.ring) == maxEvents {
		e.ring = slices.Delete(e.ring, 0, 1)
	}
	e.ring = append(e.ring, ev)
	switch ev.Kind {
	case api.EventDeparted, api.EventFailed, api.EventLeft:
		if ev.Group != "" {
			e.departed[ev.Node] = api.Departed{Name: ev.Node, Group: ev.Group, Since: ev.Time, Why: ev.Message}
		}
	case api.EventMember, api.EventGroup, api.EventAlive, api.EventReaped:
		delete(e.departed, ev.Node) // back in a group, or gone from the view (and from /v1/cluster)
	}
	return ev
}

// since returns the events numbered above after, oldest first, and the
// number of the newest event.
func (e *events) since(after uint64) ([]api.Event, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, _ := slices.BinarySearchFunc(e.ring, after, func(ev api.Event, after uint64) int {
		if ev.Seq <= after {
			return -1
		}
		return 1
	})
	return append([]api.Event{}, e.ring[i:]...), e.seq // [] rather than null before the first event
}

// departure returns when and why name stopped serving its group, as far
// as this router saw it.
func (e *events) departure(name string) (api.Departed, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.departed[name]
	return d, ok
}

// watch observes the gossip view every eventPoll until stop closes.
func (e *events) watch(members func() []gossip.Member, stop <-chan struct{}) {
	t := time.NewTicker(eventPoll)
	defer t.Stop()
	for {
		e.observe(time.Now(), members())
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// serveEvents answers GET /v1/events[?after=SEQ].
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	var after uint64
	if a := r.URL.Query().Get("after"); a != "" {
		var err error
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			writeError(w, fmt.Errorf("%w: after=%q is not an event number", ErrBadRequest, a))
			return
		}
	}
	evs, last := s.events.since(after)
	writeJSON(w, http.StatusOK, api.Events{Events: evs, Last: last})
}

package replication

// The protocol scripts' expectations, safety checks and transcript
// formatting (see script_test.go).

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"shoal/meta"
	"shoal/wire"
)

var scriptErrors = map[string]error{
	"deposed":     wire.ErrDeposed,
	"not-primary": wire.ErrNotPrimary,
	"not-ready":   wire.ErrNotReady,
	"no-quorum":   wire.ErrNoQuorum,
	"stale":       wire.ErrStaleBallot,
	"not-member":  wire.ErrNotMember,
	"bad-message": wire.ErrBadMessage,
	"no-space":    meta.ErrNoSpace,
}

func (s *script) expect(what string, args []string) {
	s.t.Helper()
	if len(args) == 0 {
		s.fatalf("expect %s: name a node", what)
	}
	var got string
	switch what {
	case "reply":
		if len(args) != 2 {
			s.fatalf("expect reply rN OUTCOME")
		}
		c := s.reqs[args[0]]
		if c == nil {
			s.fatalf("no request %s", args[0])
		}
		switch outcome := args[1]; {
		case !c.done:
			got = "pending"
		case c.err == nil:
			got = "ok"
		case outcome == "error":
			got = "error"
		case scriptErrors[outcome] != nil && errors.Is(c.err, scriptErrors[outcome]):
			got = outcome
		default:
			got = "error: " + c.err.Error()
		}
		if got != args[1] {
			s.errorf("request %s: got %s, want %s", args[0], got, args[1])
		}
		return
	case "queued":
		if got = strconv.Itoa(len(s.queue)); got != args[0] {
			s.errorf("%s messages in flight, want %s", got, args[0])
		}
		return
	}
	want := strings.Join(args[1:], " ")
	n := s.node(args[0])
	l := n.log
	var st Status
	if n.up {
		st = n.m.Status()
	} else if what != "log" && what != "snap" && what != "promise" && what != "applied" && what != "dirs" {
		s.errorf("expect %s %s: the node is down", what, n.name)
		return
	}
	switch what {
	case "role":
		got = st.Role.String()
	case "ready":
		got = strconv.FormatBool(st.Ready)
	case "insync":
		got = strconv.FormatBool(st.InSync)
	case "commit":
		got = strconv.FormatUint(st.Commit, 10)
	case "applied":
		got = strconv.FormatUint(l.applied, 10)
	case "log":
		var es []string
		for _, e := range l.entries {
			es = append(es, fmt.Sprintf("%d@%s", e.Index, e.Ballot))
		}
		got = strings.Join(es, " ")
	case "snap":
		got = fmt.Sprintf("%d@%s", l.snapIndex, l.snapBallot)
	case "promise":
		got = l.promised.String()
	case "leader":
		got = st.Leader
	case "voters":
		got = strings.ReplaceAll(fmtMembers(st.Voters), ",", " ")
	case "dirs":
		got = strings.ReplaceAll(fmtDirs(l.dirs), ",", " ")
		if got == "-" {
			got = ""
		}
	default:
		s.fatalf("expect: unknown %q", what)
	}
	if got != want {
		s.errorf("%s %s = %q, want %q", what, n.name, got, want)
	}
}

// checkSafety checks, after every block, that no two members applied
// different entries at an index and that nothing acknowledged was lost:
// every member that applied an acknowledged entry's index holds that
// entry, and so does the ready primary of the highest ballot.
func (s *script) checkSafety() {
	s.t.Helper()
	for i, a := range s.nodes {
		for _, b := range s.nodes[i+1:] {
			lo := max(a.log.snapIndex, b.log.snapIndex) + 1
			for x := lo; x <= min(a.log.applied, b.log.applied); x++ {
				if ea, eb := a.log.at(x), b.log.at(x); ea.Ballot != eb.Ballot {
					s.errorf("safety: %s applied %s and %s applied %s", a.name, fmtEntry(ea), b.name, fmtEntry(eb))
				}
			}
		}
	}
	var primary *simNode
	var best meta.Ballot
	for _, n := range s.nodes {
		if n.up {
			if st := n.m.Status(); st.Ready && best.Less(st.Ballot) {
				primary, best = n, st.Ballot
			}
		}
	}
	for _, e := range s.acked {
		for _, n := range s.nodes {
			l := n.log
			last, _ := l.last()
			mustHold := e.Index <= l.applied || n == primary
			if e.Index <= l.snapIndex || !mustHold {
				continue
			}
			if e.Index > last || l.at(e.Index).Ballot != e.Ballot {
				s.errorf("safety: acknowledged %s is missing from %s's log", fmtEntry(e), n.name)
			}
		}
	}
}

// ---- Formatting ----

func fmtOp(op meta.Op) string {
	switch op.Kind {
	case meta.OpNoop:
		return "noop"
	case meta.OpMkdir:
		return "mkdir " + op.Path
	case meta.OpDelete:
		return "rm " + op.Path
	case meta.OpConfig:
		if op.Forming {
			return "config " + fmtMembers(op.Members) + " forming"
		}
		return "config " + fmtMembers(op.Members)
	}
	return fmt.Sprintf("op%d %s", op.Kind, op.Path)
}

func fmtEntry(e meta.Entry) string { return fmt.Sprintf("%d@%s %s", e.Index, e.Ballot, fmtOp(e.Op)) }

func fmtEntries(es []meta.Entry) string {
	var out []string
	for _, e := range es {
		out = append(out, fmtEntry(e))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func fmtMembers(ms []meta.Member) string {
	if len(ms) == 0 {
		return "-"
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

func fmtDirs(dirs map[string]bool) string {
	if len(dirs) == 0 {
		return "-"
	}
	return strings.Join(slices.Sorted(maps.Keys(dirs)), ",")
}

func fmtFail(err error) string {
	if err == nil {
		return ""
	}
	return ": failed: " + err.Error()
}

// fmtNetMsg formats a message in flight; an answer is read against the
// request it answers.
func (s *script) fmtNetMsg(msg *netMsg) string {
	if msg.reply && msg.msg == nil {
		return "error: " + msg.replyErr.Error()
	}
	switch m := msg.msg.(type) {
	case *wire.Append:
		if m.Probe {
			return "probe " + m.Ballot.String()
		}
		out := fmt.Sprintf("append %s prev=%d@%s commit=%d", m.Ballot, m.PrevIndex, m.PrevBallot, m.Commit)
		if m.Snapshot {
			out = fmt.Sprintf("append %s snapshot=%d@%s commit=%d", m.Ballot, m.PrevIndex, m.PrevBallot, m.Commit)
		}
		if m.SyncedStart != 0 {
			out += fmt.Sprintf(" synced=%d", m.SyncedStart)
		}
		if len(m.Entries) > 0 {
			out += " " + fmtEntries(m.Entries)
		}
		return out
	case *wire.AppendResp:
		req, _ := msg.req.msg.(*wire.Append)
		room := ""
		if m.NoRoom {
			room = " no-room"
		}
		switch {
		case req.Ballot.Less(m.Promised):
			return "refused promised=" + m.Promised.String() + room
		case m.Installing:
			return "installing" + room
		case req.Probe && m.OK:
			return "ok" + room
		case m.OK:
			return fmt.Sprintf("ok last=%d%s", m.LastIndex, room)
		}
		return fmt.Sprintf("refused last=%d%s", m.LastIndex, room)
	case *wire.Promise:
		return "promise " + m.Ballot.String()
	case *wire.PromiseResp:
		if !m.OK {
			return "refused promised=" + m.Promised.String()
		}
		return fmt.Sprintf("promise-ok last=%d@%s", m.LastIndex, m.LastBallot)
	case *wire.FetchLog:
		return fmt.Sprintf("fetch %s from=%d", m.Ballot, m.From)
	case *wire.FetchLogResp:
		return fmt.Sprintf("log %s last=%d", fmtEntries(m.Entries), m.LastIndex)
	}
	return fmt.Sprintf("%T", msg.msg)
}

package replication

// The protocol scripts' simulator: members carrying out each Ready as
// driver.go does, and the network between them (see script_test.go).

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

func (n *simNode) member() meta.Member { return meta.Member{ID: n.id, Name: n.name, Addr: n.name} }

// startNode builds a Machine from the node's durable state, as a process
// start does.
func (s *script) startNode(n *simNode) {
	n.start++
	m, err := NewMachine(MachineConfig{
		Self:          n.member(),
		Group:         "g",
		GroupSize:     s.size,
		MaxBatchBytes: s.batch,
		Start:         n.start,
		Log:           n.log,
	}, n.log.promised)
	if err != nil {
		s.fatalf("start %s: %v", n.name, err)
	}
	n.m, n.up = m, true
	n.commit = m.Status().Commit
	n.holdApply = false
	n.waiters, n.pending, n.reads, n.restore = map[uint64]simWaiter{}, map[uint64]pendingReq{}, nil, ""
	n.shown = n.status()
	s.printf("%s", s.statusLine(n))
}

// crash stops a node: the requests waiting on it fail, and its Machine
// and everything else volatile is lost.
func (s *script) crash(n *simNode) {
	if !n.up {
		return
	}
	n.up, n.m = false, nil
	s.printf("%s: crashed", n.name)
	err := errors.New("node crashed")
	for _, req := range slices.Sorted(maps.Keys(n.pending)) {
		if c := n.pending[req].client; c != nil {
			s.finish(n, c, err, "")
		}
	}
	for _, i := range slices.Sorted(maps.Keys(n.waiters)) {
		s.finish(n, n.waiters[i].req, err, "")
	}
	for _, r := range n.reads {
		s.finish(n, r.req, err, "")
	}
	n.waiters, n.pending, n.reads, n.restore = nil, nil, nil, ""
}

// request registers a script request at n and returns the machine's
// request ID for it.
func (s *script) request(n *simNode, what string) uint64 {
	s.nreqs++
	c := &clientReq{label: fmt.Sprintf("r%d", s.nreqs), node: n.name}
	s.reqs[c.label] = c
	s.printf("%s: %s %s", n.name, c.label, what)
	return n.track(pendingReq{client: c})
}

func (n *simNode) track(p pendingReq) uint64 {
	n.nextReq++
	n.pending[n.nextReq] = p
	return n.nextReq
}

// step steps one input into n and carries out everything it leads to.
func (s *script) step(n *simNode, in Input) {
	s.carry(n, n.m.Step(in))
	s.settle(n)
}

// carry does the work of rd as driver.go's carry does, stepping the
// outcome of each durable write back, until a Ready asks for none.
func (s *script) carry(n *simNode, rd Ready) {
	for {
		if rd.Promise != nil {
			n.log.SetPromised(*rd.Promise)
			s.printf("%s: promise %s", n.name, *rd.Promise)
		}
		if rd.Deposed {
			s.printf("%s: deposed", n.name)
			for _, i := range slices.Sorted(maps.Keys(n.waiters)) {
				w := n.waiters[i]
				delete(n.waiters, i)
				s.finish(n, w.req, fmt.Errorf("entry %d: %w: the primary stepped down before the entry was applied", i, wire.ErrDeposed), "")
			}
		}
		if rd.Leading != nil {
			s.printf("%s: leading %s", n.name, *rd.Leading)
		}
		for _, w := range rd.Waits {
			if p, ok := n.pending[w.Req]; ok && p.client != nil {
				delete(n.pending, w.Req)
				n.waiters[w.Index] = simWaiter{req: p.client, ballot: w.Ballot}
				s.printf("%s: %s in the log at %d@%s", n.name, p.client.label, w.Index, w.Ballot)
			}
		}
		var next Input
		switch {
		case rd.Hold != nil:
			var err error
			if n.faults["hold"] {
				delete(n.faults, "hold")
				err = errors.New("chunk fetch failed")
			}
			s.printf("%s: hold chunks of %d..%d from %s%s", n.name, rd.Hold[0].Index, rd.Hold[len(rd.Hold)-1].Index, rd.HoldFrom, fmtFail(err))
			next = InHeld{Err: err}
		case rd.Entries != nil:
			var err error
			replacing := ""
			if last, _ := n.log.last(); rd.Entries[0].Index <= last {
				replacing = fmt.Sprintf(" (replacing %d..%d)", rd.Entries[0].Index, last)
			}
			if n.faults["store"] {
				delete(n.faults, "store")
				err = errors.New("disk write failed")
			} else {
				err = n.log.Append(rd.Entries)
			}
			s.printf("%s: write %s%s%s", n.name, fmtEntries(rd.Entries), replacing, fmtFail(err))
			next = InStored{Err: err}
		}
		s.dispatch(n, rd)
		if next == nil {
			return
		}
		rd = n.m.Step(next)
	}
}

// dispatch does the part of rd that needs no durable write first.
func (s *script) dispatch(n *simNode, rd Ready) {
	if rd.Commit > n.commit {
		n.commit = rd.Commit
		s.printf("%s: commit %d", n.name, rd.Commit)
	}
	if rd.Restore != "" {
		n.restore = rd.Restore
		s.printf("%s: snapshot transfer from %s pending", n.name, rd.Restore)
	}
	for _, snd := range rd.Send {
		s.send(n, snd)
	}
	for _, r := range rd.Replies {
		s.answer(n, r.Req, r.Msg, r.Err)
	}
	// The machine fails read rounds in map order: report them by request.
	reads := slices.Clone(rd.Reads)
	slices.SortFunc(reads, func(a, b ReadDone) int { return int(a.Req) - int(b.Req) })
	for _, r := range reads {
		p, ok := n.pending[r.Req]
		if !ok || p.client == nil {
			continue
		}
		delete(n.pending, r.Req)
		if r.Err != nil {
			s.finish(n, p.client, r.Err, "")
			continue
		}
		n.reads = append(n.reads, simRead{req: p.client, index: r.Index})
	}
	if rd.Repair {
		s.printf("%s: repair round wanted", n.name)
	}
}

// settle applies what is committed, unless applying is held back, serves
// the confirmed reads whose index is applied, and prints what changed in
// the node's status.
func (s *script) settle(n *simNode) {
	for n.up && !n.holdApply && n.commit > n.log.applied {
		upto := n.commit
		es, rs, err := n.log.Apply(upto)
		if err != nil {
			s.printf("%s: apply through %d: %v", n.name, upto, err)
			break
		}
		for i, e := range es {
			w, ok := n.waiters[e.Index]
			if !ok {
				continue
			}
			delete(n.waiters, e.Index)
			if w.ballot != e.Ballot {
				s.finish(n, w.req, fmt.Errorf("entry %d was replaced: %w", e.Index, wire.ErrDeposed), "")
				continue
			}
			s.acked = append(s.acked, e)
			res := ""
			if rs[i].Code != meta.CodeOK {
				res = " (" + string(rs[i].Code) + ")"
			}
			s.finish(n, w.req, nil, fmt.Sprintf(" at %d%s", e.Index, res))
		}
		if s.showApply {
			s.printf("%s: applied %d", n.name, upto)
		}
		s.carry(n, n.m.Step(InApplied{Index: upto}))
	}
	if n.up {
		var waiting []simRead
		for _, r := range n.reads {
			if r.index > n.log.applied {
				waiting = append(waiting, r)
				continue
			}
			s.finish(n, r.req, nil, fmt.Sprintf(" index %d dirs %s", r.index, fmtDirs(n.log.dirs)))
		}
		n.reads = waiting
		st := n.status()
		if d := st.diff(n.shown); d != "" {
			s.printf("%s: %s", n.name, d)
		}
		n.shown = st
	}
}

// finish answers a script request.
func (s *script) finish(n *simNode, c *clientReq, err error, detail string) {
	c.done, c.err = true, err
	if err != nil {
		s.printf("%s: %s error: %v", n.name, c.label, err)
		return
	}
	s.printf("%s: %s ok%s", n.name, c.label, detail)
}

// answer carries out a Reply: to a script request, or back to the peer
// whose message asked.
func (s *script) answer(n *simNode, req uint64, msg wire.Message, err error) {
	p, ok := n.pending[req]
	if !ok {
		return
	}
	delete(n.pending, req)
	if p.client != nil {
		s.finish(n, p.client, err, "")
		return
	}
	q := p.net
	if err != nil {
		msg = nil // the transport carries the error alone
	}
	s.seq++
	r := &netMsg{seq: s.seq, from: n.name, to: q.from, id: q.id, gen: q.gen, reply: true, req: q, replyErr: err}
	if msg != nil {
		r.msg = s.copyMsg(msg)
	}
	s.queue = append(s.queue, r)
	s.printf("%s -> %s #%d %s", r.from, r.to, r.seq, s.fmtNetMsg(r))
}

// send puts a message in flight, as an encoded copy, as a real transport
// would carry it.
func (s *script) send(n *simNode, snd Send) {
	s.seq++
	to := snd.Addr
	if to == "" {
		to = "?"
	}
	msg := &netMsg{seq: s.seq, from: n.name, to: to, id: snd.ID, gen: n.start, msg: s.copyMsg(snd.Msg)}
	s.queue = append(s.queue, msg)
	s.printf("%s -> %s #%d %s", msg.from, msg.to, msg.seq, s.fmtNetMsg(msg))
}

func (s *script) copyMsg(m wire.Message) wire.Message {
	b, err := wire.Encode(m)
	if err != nil {
		s.fatalf("encode %T: %v", m, err)
	}
	c, err := wire.Decode(b)
	if err != nil {
		s.fatalf("decode %T: %v", m, err)
	}
	return c
}

func (s *script) removeMsg(msg *netMsg) {
	s.queue = slices.DeleteFunc(s.queue, func(m *netMsg) bool { return m == msg })
}

// filter parses a message filter: #SEQ or FROM->TO, * matching any node.
func (s *script) filter(args []string) func(*netMsg) bool {
	if len(args) == 0 {
		return func(*netMsg) bool { return true }
	}
	if len(args) > 1 {
		s.fatalf("one filter: #SEQ or FROM->TO")
	}
	if seq, ok := strings.CutPrefix(args[0], "#"); ok {
		n := int(s.uint(seq))
		return func(m *netMsg) bool { return m.seq == n }
	}
	from, to, ok := strings.Cut(args[0], "->")
	if !ok {
		s.fatalf("filter %q: want #SEQ or FROM->TO", args[0])
	}
	for _, x := range []string{from, to} {
		if x != "*" {
			s.node(x)
		}
	}
	return func(m *netMsg) bool {
		return (from == "*" || m.from == from) && (to == "*" || m.to == to)
	}
}

const maxDeliveries = 10000

func (s *script) cmdDeliver(args []string) {
	match := s.filter(args)
	for range maxDeliveries {
		if len(args) == 0 {
			if n := s.transferPending(); n != nil {
				s.transfer(n)
				continue
			}
		}
		i := slices.IndexFunc(s.queue, match)
		if i < 0 {
			return
		}
		s.deliver(s.queue[i])
	}
	s.fatalf("deliver: still busy after %d deliveries", maxDeliveries)
}

func (s *script) transferPending() *simNode {
	for _, n := range s.nodes {
		if n.up && n.restore != "" {
			return n
		}
	}
	return nil
}

// deliver hands one message to its target: a request is stepped there
// and answered, an answer is stepped at the requester.
func (s *script) deliver(msg *netMsg) {
	s.removeMsg(msg)
	kind, _, _ := strings.Cut(s.fmtNetMsg(msg), " ")
	kind = strings.TrimSuffix(kind, ":")
	s.printf("deliver #%d %s -> %s %s", msg.seq, msg.from, msg.to, kind)
	s.indent++
	defer func() { s.indent-- }()
	if msg.reply {
		n := s.byName[msg.to]
		if !n.up || n.start != msg.gen {
			s.printf("discarded: %s restarted since it asked", n.name)
			return
		}
		if s.cut[[2]string{msg.from, msg.to}] {
			s.printf("dropped: partition")
			s.fail(msg)
			return
		}
		s.step(n, InResp{ID: msg.id, Resp: msg.msg, Err: msg.replyErr})
		return
	}
	n := s.byName[msg.to]
	switch {
	case n == nil:
		s.printf("dropped: no node at %s", msg.to)
		s.fail(msg)
		return
	case !n.up:
		s.printf("dropped: %s is down", n.name)
		s.fail(msg)
		return
	case s.cut[[2]string{msg.from, msg.to}]:
		s.printf("dropped: partition")
		s.fail(msg)
		return
	}
	req := n.track(pendingReq{net: msg})
	switch m := msg.msg.(type) {
	case *wire.Append:
		in := InAppend{Req: req, M: m}
		if n.view != nil {
			in.View, in.HasView = *n.view, true
		}
		s.step(n, in)
	case *wire.Promise:
		s.step(n, InPromise{Req: req, M: m})
	case *wire.FetchLog:
		s.step(n, InFetchLog{Req: req, M: m})
	default:
		s.fatalf("deliver: no input for %T", m)
	}
}

// fail tells the requester of a lost message that no answer will come.
func (s *script) fail(msg *netMsg) {
	requester := msg.from
	if msg.reply {
		requester = msg.to
	}
	n := s.byName[requester]
	if n == nil || !n.up || n.start != msg.gen {
		return
	}
	s.step(n, InResp{ID: msg.id, Err: errScriptUnreachable})
}

// transfer carries out n's pending snapshot transfer: n's state becomes a
// copy of the source's, keeping the higher promise.
func (s *script) transfer(n *simNode) {
	from := n.restore
	n.restore = ""
	src := s.byName[from]
	var err error
	switch {
	case n.faults["transfer"]:
		delete(n.faults, "transfer")
		err = errors.New("transfer failed")
	case src == nil || !src.up:
		err = fmt.Errorf("fetch snapshot from %s: %w", from, wire.ErrUnreachable)
	case s.cut[[2]string{n.name, from}] || s.cut[[2]string{from, n.name}]:
		err = fmt.Errorf("fetch snapshot from %s: %w", from, wire.ErrUnreachable)
	}
	if err == nil {
		n.log.install(src.log)
		n.commit = max(n.commit, n.log.applied)
		last, lastBallot := n.log.last()
		s.printf("%s: installed snapshot from %s: snap %d@%s applied %d last %d@%s", n.name, from, n.log.snapIndex, n.log.snapBallot, n.log.applied, last, lastBallot)
	} else {
		s.printf("%s: snapshot transfer from %s failed: %v", n.name, from, err)
	}
	s.step(n, InRestored{Promised: n.log.promised, Err: err})
}

func (n *simNode) status() shownStatus {
	st := n.m.Status()
	return shownStatus{role: st.Role, ready: st.Ready, forming: st.Forming, leader: st.Leader, voters: fmtMembers(st.Voters), insync: st.InSync}
}

// diff lists the fields of st that differ from old.
func (st shownStatus) diff(old shownStatus) string {
	var d []string
	if st.role != old.role {
		d = append(d, "role="+st.role.String())
	}
	if st.ready != old.ready {
		d = append(d, fmt.Sprintf("ready=%t", st.ready))
	}
	if st.forming != old.forming {
		d = append(d, fmt.Sprintf("forming=%t", st.forming))
	}
	if st.leader != old.leader {
		d = append(d, "leader="+st.leader)
	}
	if st.voters != old.voters {
		d = append(d, "voters="+st.voters)
	}
	if st.insync != old.insync {
		d = append(d, fmt.Sprintf("insync=%t", st.insync))
	}
	return strings.Join(d, " ")
}

func (s *script) statusLine(n *simNode) string {
	if !n.up {
		return n.name + ": down"
	}
	st := n.m.Status()
	forming := ""
	if st.Forming {
		forming = " forming=true"
	}
	return fmt.Sprintf("%s: role=%s ballot=%s ready=%t%s leader=%s commit=%d applied=%d last=%d voters=%s insync=%t",
		n.name, st.Role, st.Ballot, st.Ready, forming, st.Leader, st.Commit, n.log.applied, st.LastIndex, fmtMembers(st.Voters), st.InSync)
}

func (s *script) printLog(n *simNode) {
	l := n.log
	s.printf("%s: promise %s snap %d@%s applied %d dirs %s", n.name, l.promised, l.snapIndex, l.snapBallot, l.applied, fmtDirs(l.dirs))
	for _, e := range l.entries {
		s.printf("  %s", fmtEntry(e))
	}
}

// pick returns the named nodes, or all of them.
func (s *script) pick(names []string) []*simNode {
	if len(names) == 0 {
		return s.nodes
	}
	var ns []*simNode
	for _, a := range names {
		ns = append(ns, s.node(a))
	}
	return ns
}

func (s *script) uint(a string) uint64 {
	v, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		s.fatalf("%q is not a number", a)
	}
	return v
}

// ballot parses TERM/NODE, or TERM with node self.
func (s *script) ballot(a string, self uint64) meta.Ballot {
	t, n, ok := strings.Cut(a, "/")
	b := meta.Ballot{Term: s.uint(t), Node: self}
	if ok {
		b.Node = s.uint(n)
	} else if self == 0 {
		s.fatalf("ballot %q: want TERM/NODE", a)
	}
	return b
}

package replication

// Protocol scripts: deterministic runs of a group of Machines over a
// simulated network and in-memory logs (simLog), driven by the files
// under testdata/scripts. Nothing here sleeps, starts a goroutine or
// touches a socket or a disk; maps are visited in sorted order, so a
// script prints the same transcript on every run.
//
// A script is a sequence of blocks: command lines, a line "----", then the
// transcript the commands are expected to print, ending at a blank line.
// Lines starting with # are comments. Run with -rewrite to replace the
// expected transcripts with the ones printed; expect commands check
// state explicitly and fail the test in either mode, and so do the safety
// checks run after every block (see checkSafety).
//
// The simulator carries out each Ready the way driver.go's carry and
// dispatch do: the promise first, then the durable write (whose outcome
// is stepped back at once), the messages, replies and the commit index.
// Committed entries are applied right after the Ready unless a script
// holds applying back. A message stays in flight until the script
// delivers or drops it; a dropped message, or one that cannot reach its
// target, comes back to its sender as an unreachable error, as the real
// driver's call does after its timeout.
//
// Commands (nodes are named n1, n2, ...; IDs follow the order of nodes):
//
//	nodes n1 n2 n3 [voters=n1,n2,n3] [size=3] [batch=BYTES]
//	                      create members; voters seeds each voter's log with
//	                      1@1/1 config(voters), applied, and promise 1/1
//	promote n2 TERM[/NODE] step InPromote with that ballot
//	propose n1 mkdir /a [rm /b ...]
//	                      one InPropose with one request per op
//	forge n2 append|probe|promise|fetch TERM/NODE
//	                      a message from outside the group, stepped at n2
//	                      as a request (its answer is the request's reply)
//	read n1               InRead with one request
//	remove n1 n3          InRemove of n3 at n1
//	peers n1: n2 n3       n1's gossip view of live members (InPeers)
//	repaired n1 n3 ...    InRepaired: the members hold every chunk, in
//	                      their current process start
//	view n2 3/1|none      the primary's ballot in n2's gossip view
//	tick [n1 ...]         InTick (every live node without arguments)
//	stepdown n1           InStepDown
//	deliver [FILTER]      deliver the messages matching FILTER, including
//	                      those sent meanwhile, until none is left;
//	                      without FILTER, until nothing is in flight and no
//	                      snapshot transfer is pending
//	drop [FILTER]         drop the messages in flight matching FILTER
//	partition n1 [| n2 n3] cut every link between the sides (the second
//	                      side defaults to every other node)
//	heal                  restore every link
//	transfer n2           carry out n2's pending snapshot transfer now
//	crash n2              stop n2: its volatile state is lost
//	restart n2            build a new Machine from n2's log and promise
//	compact n1 INDEX      discard n1's entries through INDEX
//	apply n1 hold|release hold applying back, or apply now and resume
//	fail n2 hold|store|transfer  make n2's next such operation fail
//	status [n1 ...]       print status; log n1: print the log; net: print
//	                      the messages in flight
//
// FILTER is #SEQ, or FROM->TO where either side may be *.
//
// Expectations print nothing and fail the test when they do not hold:
//
//	expect role n1 primary|recovering|replica
//	expect ready|insync n1 true|false
//	expect commit|applied n1 INDEX
//	expect log n1 [INDEX@BALLOT ...]   the entries after the snapshot point
//	expect snap n1 INDEX@BALLOT
//	expect promise n1 BALLOT
//	expect leader n1 n2
//	expect voters n1 [n1 n2 ...]
//	expect dirs n1 [/a ...]            the applied namespace
//	expect reply r3 ok|pending|error|deposed|not-primary|not-ready|no-quorum|stale|not-member|bad-message
//	expect queued COUNT

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"shoal/meta"
	"shoal/wire"
)

var rewriteScripts = flag.Bool("rewrite", false, "rewrite the expected transcripts of the protocol scripts")

// TestScripts runs every protocol script under testdata/scripts.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/scripts/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts under testdata/scripts")
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "testdata/scripts/"), ".txt")
		t.Run(name, func(t *testing.T) { runScript(t, f) })
	}
}

// runScript runs one script file block by block, comparing or rewriting
// each block's transcript.
func runScript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	s := &script{t: t, file: path, byName: map[string]*simNode{}, cut: map[[2]string]bool{}, reqs: map[string]*clientReq{}}
	var out strings.Builder
	var cmds []scriptCmd
	for i := 0; i < len(lines); {
		line := strings.TrimSpace(lines[i])
		if line != "----" {
			out.WriteString(lines[i] + "\n")
			if line != "" && !strings.HasPrefix(line, "#") {
				cmds = append(cmds, scriptCmd{line: i + 1, text: line})
			}
			i++
			continue
		}
		got := s.runBlock(cmds)
		j := i + 1
		for j < len(lines) && lines[j] != "" {
			j++
		}
		want := strings.Join(lines[i+1:j], "\n")
		if !*rewriteScripts && got != want {
			t.Errorf("%s:%d: transcript differs (rerun with -rewrite to accept)\n--- want:\n%s\n--- got:\n%s", path, i+1, want, got)
		}
		out.WriteString("----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
		cmds = nil
		i = j
	}
	if len(cmds) > 0 {
		got := s.runBlock(cmds)
		if !*rewriteScripts {
			t.Errorf("%s: commands after the last ---- (rerun with -rewrite to add their transcript)", path)
		}
		out.WriteString("----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
	}
	if *rewriteScripts {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type scriptCmd struct {
	line int
	text string
}

// script is the state of one running script: the simulated group and
// the network between its members.
type script struct {
	t      *testing.T
	file   string
	line   int
	out    []string
	indent int
	// showApply: print each application (applying was held back).
	showApply bool

	nodes  []*simNode // by ID - 1
	byName map[string]*simNode
	size   int
	batch  int

	queue []*netMsg
	seq   int
	cut   map[[2]string]bool // directed from → to

	reqs  map[string]*clientReq
	nreqs int
	// acked are the proposals answered as applied, each exactly as it
	// was acknowledged: none may ever be lost.
	acked []meta.Entry
}

// simNode is one member: its durable log, which survives a crash, and
// the volatile state a restart throws away.
type simNode struct {
	id    uint64
	name  string
	log   *simLog
	m     *Machine
	start uint64 // process start, counting restarts
	up    bool
	view  *meta.Ballot

	commit    uint64 // the index to apply through (the driver's commitIdx)
	holdApply bool
	waiters   map[uint64]simWaiter
	reads     []simRead // confirmed, waiting for their index to apply
	pending   map[uint64]pendingReq
	nextReq   uint64
	restore   string // address of a pending snapshot transfer
	faults    map[string]bool
	shown     shownStatus
}

type simWaiter struct {
	req    *clientReq
	ballot meta.Ballot
}

type simRead struct {
	req   *clientReq
	index uint64
}

// pendingReq is who waits for the answer to a request the machine took:
// a script request, or a peer whose message was delivered.
type pendingReq struct {
	client *clientReq
	net    *netMsg
}

// clientReq is a request the script made (r1, r2, ...).
type clientReq struct {
	label string
	node  string
	done  bool
	err   error
}

// netMsg is a message in flight: a request, or the answer to one.
type netMsg struct {
	seq      int
	from, to string
	id       uint64 // the sender's Send.ID
	gen      uint64 // the requester's process start
	msg      wire.Message
	reply    bool
	req      *netMsg // for an answer: the request it answers
	replyErr error
}

// shownStatus is the part of a Status the transcript reports changes of.
type shownStatus struct {
	role   Role
	ready  bool
	leader string
	voters string
	insync bool
}

var errScriptUnreachable = fmt.Errorf("%w (dropped)", wire.ErrUnreachable)

func (s *script) printf(format string, args ...any) {
	s.out = append(s.out, strings.Repeat("  ", s.indent)+fmt.Sprintf(format, args...))
}

func (s *script) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

func (s *script) errorf(format string, args ...any) {
	s.t.Helper()
	s.t.Errorf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

// runBlock runs the commands of one block and returns their transcript.
// With more than one command that prints, each one's output follows the
// command, prefixed by ">".
func (s *script) runBlock(cmds []scriptCmd) string {
	s.out = nil
	echo := 0
	for _, c := range cmds {
		if !strings.HasPrefix(c.text, "expect ") {
			echo++
		}
	}
	for _, c := range cmds {
		s.line = c.line
		if echo > 1 && !strings.HasPrefix(c.text, "expect ") {
			s.printf("> %s", c.text)
		}
		s.run(c.text)
	}
	s.checkSafety()
	return strings.Join(s.out, "\n")
}

func (s *script) node(name string) *simNode {
	s.t.Helper()
	n := s.byName[strings.TrimSuffix(name, ":")]
	if n == nil {
		s.fatalf("no node %q", name)
	}
	return n
}

// live returns the named node, or nil after printing that it is down.
func (s *script) live(name string) *simNode {
	n := s.node(name)
	if !n.up {
		s.printf("%s is down", n.name)
		return nil
	}
	return n
}

func (s *script) run(text string) {
	f := strings.Fields(text)
	args := f[1:]
	need := func(k int) {
		if len(args) < k {
			s.fatalf("%s: want at least %d arguments", f[0], k)
		}
	}
	switch f[0] {
	case "nodes":
		s.cmdNodes(args)
	case "promote":
		need(2)
		if n := s.live(args[0]); n != nil {
			b := s.ballot(args[1], n.id)
			r := s.request(n, "promote "+b.String())
			s.step(n, InPromote{Req: r, Ballot: b})
		}
	case "propose":
		need(3)
		if n := s.live(args[0]); n != nil {
			in := InPropose{}
			for rest := args[1:]; len(rest) > 0; rest = rest[2:] {
				if len(rest) < 2 {
					s.fatalf("propose: an op is a kind and a path")
				}
				op := meta.Op{Kind: meta.OpMkdir, Path: rest[1]}
				switch rest[0] {
				case "mkdir":
				case "rm":
					op.Kind = meta.OpDelete
				default:
					s.fatalf("propose: unknown op %q (mkdir, rm)", rest[0])
				}
				in.Ops = append(in.Ops, op)
				in.Reqs = append(in.Reqs, s.request(n, "propose "+fmtOp(op)))
			}
			s.step(n, in)
		}
	case "forge":
		need(3)
		if n := s.live(args[0]); n != nil {
			b := s.ballot(args[2], 0)
			r := s.request(n, "forged "+args[1]+" "+b.String())
			switch args[1] {
			case "append":
				s.step(n, InAppend{Req: r, M: &wire.Append{Group: "g", Ballot: b, Leader: "forger"}})
			case "probe":
				s.step(n, InAppend{Req: r, M: &wire.Append{Group: "g", Ballot: b, Leader: "forger", Probe: true}})
			case "promise":
				s.step(n, InPromise{Req: r, M: &wire.Promise{Group: "g", Ballot: b}})
			case "fetch":
				s.step(n, InFetchLog{Req: r, M: &wire.FetchLog{Group: "g", Ballot: b, From: 1}})
			default:
				s.fatalf("forge: no message %q (append, probe, promise, fetch)", args[1])
			}
		}
	case "read":
		need(1)
		if n := s.live(args[0]); n != nil {
			s.step(n, InRead{Reqs: []uint64{s.request(n, "read")}})
		}
	case "remove":
		need(2)
		if n := s.live(args[0]); n != nil {
			id := s.node(args[1]).id
			s.step(n, InRemove{Req: s.request(n, "remove "+args[1]), ID: id})
		}
	case "peers":
		need(1)
		if n := s.live(args[0]); n != nil {
			var ps []meta.Member
			for _, a := range args[1:] {
				ps = append(ps, s.node(a).member())
			}
			s.step(n, InPeers{Peers: ps})
		}
	case "repaired":
		need(1)
		if n := s.live(args[0]); n != nil {
			synced := map[uint64]uint64{}
			for _, a := range args[1:] {
				o := s.node(a)
				synced[o.id] = o.start
			}
			s.step(n, InRepaired{Synced: synced})
		}
	case "view":
		need(2)
		n := s.node(args[0])
		if args[1] == "none" {
			n.view = nil
		} else {
			b := s.ballot(args[1], 0)
			n.view = &b
		}
	case "tick":
		for _, n := range s.pick(args) {
			if n.up {
				s.step(n, InTick{})
			}
		}
	case "stepdown":
		need(1)
		if n := s.live(args[0]); n != nil {
			s.step(n, InStepDown{Why: "told to"})
		}
	case "deliver":
		s.cmdDeliver(args)
	case "drop":
		match := s.filter(args)
		for _, msg := range slices.Clone(s.queue) {
			if match(msg) {
				s.removeMsg(msg)
				s.printf("drop #%d %s -> %s", msg.seq, msg.from, msg.to)
				s.indent++
				s.fail(msg)
				s.indent--
			}
		}
	case "partition":
		need(1)
		i := slices.Index(args, "|")
		side1, side2 := args, []string(nil)
		if i >= 0 {
			side1, side2 = args[:i], args[i+1:]
		} else {
			for _, n := range s.nodes {
				if !slices.Contains(side1, n.name) {
					side2 = append(side2, n.name)
				}
			}
		}
		for _, a := range side1 {
			for _, b := range side2 {
				s.node(a)
				s.node(b)
				s.cut[[2]string{a, b}], s.cut[[2]string{b, a}] = true, true
			}
		}
	case "heal":
		s.cut = map[[2]string]bool{}
	case "transfer":
		need(1)
		n := s.node(args[0])
		if n.restore == "" {
			s.fatalf("transfer: %s has no snapshot transfer pending", n.name)
		}
		s.transfer(n)
	case "crash":
		need(1)
		s.crash(s.node(args[0]))
	case "restart":
		need(1)
		n := s.node(args[0])
		if n.up {
			s.crash(n)
		}
		s.startNode(n)
	case "compact":
		need(2)
		n := s.node(args[0])
		if err := n.log.Compact(s.uint(args[1])); err != nil {
			s.printf("%s: compact: %v", n.name, err)
		} else {
			s.printf("%s: compacted through %d@%s", n.name, n.log.snapIndex, n.log.snapBallot)
		}
	case "apply":
		need(2)
		n := s.node(args[0])
		switch args[1] {
		case "hold":
			n.holdApply = true
		case "release":
			n.holdApply = false
			if n.up {
				s.showApply = true
				s.settle(n)
				s.showApply = false
			}
		default:
			s.fatalf("apply: hold or release")
		}
	case "fail":
		need(2)
		n := s.node(args[0])
		if !slices.Contains([]string{"hold", "store", "transfer"}, args[1]) {
			s.fatalf("fail: hold, store or transfer")
		}
		n.faults[args[1]] = true
	case "status":
		for _, n := range s.pick(args) {
			s.printf("%s", s.statusLine(n))
		}
	case "log":
		need(1)
		s.printLog(s.node(args[0]))
	case "net":
		for _, msg := range s.queue {
			s.printf("#%d %s -> %s %s", msg.seq, msg.from, msg.to, s.fmtNetMsg(msg))
		}
	case "expect":
		need(1)
		s.expect(args[0], args[1:])
	default:
		s.fatalf("unknown command %q", f[0])
	}
}

func (s *script) cmdNodes(args []string) {
	if len(s.nodes) > 0 {
		s.fatalf("nodes: the group exists already")
	}
	s.size, s.batch = 3, 4<<20
	var names, voters []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			names = append(names, a)
		case k == "voters":
			voters = strings.Split(v, ",")
		case k == "size":
			s.size = int(s.uint(v))
		case k == "batch":
			s.batch = int(s.uint(v))
		default:
			s.fatalf("nodes: unknown option %q", k)
		}
	}
	for i, name := range names {
		n := &simNode{id: uint64(i + 1), name: name, log: newSimLog(), faults: map[string]bool{}}
		s.nodes = append(s.nodes, n)
		s.byName[name] = n
	}
	var config []meta.Member
	for _, v := range voters {
		config = append(config, s.node(v).member())
	}
	for _, v := range voters {
		l := s.node(v).log
		b := meta.Ballot{Term: 1, Node: 1}
		l.promised = b
		if err := l.Append([]meta.Entry{{Index: 1, Ballot: b, Op: meta.Op{Kind: meta.OpConfig, Members: config}}}); err != nil {
			s.fatalf("seed %s: %v", v, err)
		}
		l.Apply(1)
	}
	for _, n := range s.nodes {
		s.startNode(n)
	}
}

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
	return shownStatus{role: st.Role, ready: st.Ready, leader: st.Leader, voters: fmtMembers(st.Voters), insync: st.InSync}
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
	return fmt.Sprintf("%s: role=%s ballot=%s ready=%t leader=%s commit=%d applied=%d last=%d voters=%s insync=%t",
		n.name, st.Role, st.Ballot, st.Ready, st.Leader, st.Commit, n.log.applied, st.LastIndex, fmtMembers(st.Voters), st.InSync)
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

// ---- Expectations and safety ----

var scriptErrors = map[string]error{
	"deposed":     wire.ErrDeposed,
	"not-primary": wire.ErrNotPrimary,
	"not-ready":   wire.ErrNotReady,
	"no-quorum":   wire.ErrNoQuorum,
	"stale":       wire.ErrStaleBallot,
	"not-member":  wire.ErrNotMember,
	"bad-message": wire.ErrBadMessage,
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
		switch {
		case req.Ballot.Less(m.Promised):
			return "refused promised=" + m.Promised.String()
		case m.Installing:
			return "installing"
		case req.Probe && m.OK:
			return "ok"
		case m.OK:
			return fmt.Sprintf("ok last=%d", m.LastIndex)
		}
		return fmt.Sprintf("refused last=%d", m.LastIndex)
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

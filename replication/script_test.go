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
//	room n2 BYTES|none    the room n2's disk has for new data above its
//	                      reserve (Log.Room); none: unbounded
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
//	expect reply r3 ok|pending|error|deposed|not-primary|not-ready|no-quorum|stale|not-member|bad-message|no-space
//	expect queued COUNT

import (
	"flag"
	"fmt"
	"math"
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
	role    Role
	ready   bool
	forming bool
	leader  string
	voters  string
	insync  bool
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
	case "room":
		need(2)
		n := s.node(args[0])
		n.log.room = math.MaxInt64
		if args[1] != "none" {
			b, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				s.fatalf("room: %v", err)
			}
			n.log.room = b
		}
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

package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// reconnectInterval is how often serf tries to reach a member it believes
// failed. After a partition heals, this (or gossip to the dead, for the
// first 30 s) is what merges the two halves again, so it is short.
const reconnectInterval = 5 * time.Second

// eventBuffer absorbs serf events sent after the event loop has stopped
// (serf may emit a few while shutting down), so no serf goroutine blocks.
const eventBuffer = 64

// Node is this process's membership in the cluster: serf over memberlist.
// It reports the view (Members, Changes) and publishes the node's own tags
// (SetTags); deciding anything from the view is the caller's job (Elect).
type Node struct {
	cfg     Config
	logger  *slog.Logger
	changes chan struct{}
	stop    chan struct{} // closed by Close: ends the join loop
	wg      sync.WaitGroup

	// serf is set once by Start and never cleared, so readers (Members,
	// Local) need no lock; after Close it still answers with the last view.
	serf atomic.Pointer[serf.Serf]

	// nextMu guards next, closed at the next change of the view and then
	// replaced (NextChange).
	nextMu sync.Mutex
	next   chan struct{}
	sc     *serf.Config // the config serf keeps and reads its tags from; set with serf, under mu

	// mu serializes Start, SetTags and Close: a tag update never races a
	// leave, and a closed node accepts no updates.
	mu      sync.Mutex
	started bool
	closed  bool
	tags    Tags // the latest tags passed to New or SetTags
}

// New validates cfg and returns a Node that has not started: no socket is
// open and no goroutine runs until Start.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Join = slices.Clone(cfg.Join)
	return &Node{
		cfg:     cfg,
		logger:  logger,
		changes: make(chan struct{}, 1),
		next:    make(chan struct{}),
		stop:    make(chan struct{}),
		tags:    cfg.Tags,
	}, nil
}

// Start binds the gossip port and starts serf, then joins the seeds in the
// background, retrying every JoinRetry until one answers or ctx ends. A
// node whose seeds do not answer yet (the first node of a cluster) works
// alone meanwhile. Start returns once the port is bound.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return fmt.Errorf("gossip: start: %w", ErrClosed)
	case n.started:
		return fmt.Errorf("gossip: start: %w", ErrStarted)
	}
	events := make(chan serf.Event, eventBuffer)
	sc, err := n.serfConfig(events)
	if err != nil {
		return err
	}
	s, err := serf.Create(sc)
	if err != nil {
		sc.MemberlistConfig.Transport.Shutdown()
		return fmt.Errorf("gossip: start on %s: %w: check the advertise address and the gossip keys", n.cfg.BindAddr, err)
	}
	n.serf.Store(s)
	n.sc = sc
	n.started = true

	n.wg.Add(1)
	go n.watchEvents(s, events)
	if seeds := n.otherSeeds(s); len(seeds) > 0 {
		n.wg.Add(1)
		go n.joinLoop(ctx, s, seeds)
	}
	n.logger.Info("gossip started", "name", n.cfg.Name, "addr", s.Memberlist().LocalNode().Address())
	return nil
}

// serfConfig translates Config into serf's and memberlist's settings.
func (n *Node) serfConfig(events chan<- serf.Event) (*serf.Config, error) {
	tags, err := n.tags.Encode()
	if err != nil {
		return nil, fmt.Errorf("gossip: encode tags: %w", err)
	}
	bindHost, bindPort, err := splitIPPort(n.cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	stdlog := stdLogger(n.logger)

	// serf.DefaultConfig panics only if os.Hostname fails; the name it
	// reads is replaced below.
	sc := serf.DefaultConfig()
	sc.NodeName = n.cfg.Name
	sc.Tags = tags
	sc.EventCh = events
	sc.Logger = stdlog
	sc.SnapshotPath = "" // membership is rebuilt from seeds, not from disk
	sc.DisableCoordinates = true
	// Leave waits up to BroadcastTimeout twice (serf's leave intent, then
	// memberlist's) and then LeavePropagateDelay, so this split keeps Close
	// within LeaveTimeout.
	sc.BroadcastTimeout = n.cfg.LeaveTimeout * 2 / 5
	sc.LeavePropagateDelay = n.cfg.LeaveTimeout / 5
	sc.ReconnectInterval = reconnectInterval
	sc.ReconnectTimeout = n.cfg.ReconnectTimeout
	sc.TombstoneTimeout = n.cfg.TombstoneTimeout

	// Names this node in what serf and memberlist report (see Events);
	// serf hands it on to memberlist.
	sc.MetricLabels = []gometrics.Label{{Name: nodeLabel, Value: n.cfg.Name}}
	suspicions.WithLabelValues(n.cfg.Name) // shown at 0 until it happens
	deaths.WithLabelValues(n.cfg.Name)

	mc := sc.MemberlistConfig
	mc.Logger = stdlog
	mc.LogOutput = nil
	var advertiseHost string
	advertisePort := bindPort
	if n.cfg.AdvertiseAddr != "" {
		host, port, err := splitIPPort(n.cfg.AdvertiseAddr)
		if err != nil {
			return nil, err
		}
		advertiseHost = host
		if port != 0 {
			advertisePort = port
		}
	}
	if len(n.cfg.Keys) > 0 || n.cfg.KeyringFile != "" {
		kr, err := n.keyring()
		if err != nil {
			return nil, err
		}
		if kr != nil && len(kr.GetKeys()) > 0 {
			mc.Keyring = kr
			mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
			sc.KeyringFile = n.cfg.KeyringFile
		}
	}
	mc.ProbeInterval = n.cfg.ProbeInterval
	mc.ProbeTimeout = n.cfg.ProbeTimeout
	mc.GossipInterval = n.cfg.GossipInterval
	mc.SuspicionMult = n.cfg.SuspicionMult
	if n.cfg.PushPullInterval > 0 {
		mc.PushPullInterval = n.cfg.PushPullInterval
	}
	mc.TCPTimeout = n.cfg.TCPTimeout
	// Gossip packets are a few hundred bytes of tags between machines
	// on one network: compressing each (LZW, a fresh table per packet)
	// cost an idle dev cluster about 0.08 of a core (BENCHMARKS.md).
	// Compressed packets from other nodes are still read.
	mc.EnableCompression = false

	// The sockets are opened last, so no error above leaves them open.
	t, err := listen(bindHost, bindPort, n.logger)
	if err != nil {
		return nil, fmt.Errorf("%w: check that the port is free and the address belongs to this host", err)
	}
	if advertisePort == 0 {
		advertisePort = t.port()
	}
	mc.Transport = t
	mc.BindAddr = bindHost
	mc.BindPort = t.port()
	mc.AdvertiseAddr = advertiseHost
	mc.AdvertisePort = advertisePort
	return sc, nil
}

// otherSeeds drops this node's own address from the seeds: joining
// oneself "succeeds" and would end the join loop before any real peer
// answered.
func (n *Node) otherSeeds(s *serf.Serf) []string {
	self := map[string]bool{
		n.cfg.BindAddr:                       true,
		n.cfg.AdvertiseAddr:                  true,
		s.Memberlist().LocalNode().Address(): true,
	}
	var seeds []string
	for _, seed := range n.cfg.Join {
		if !self[seed] {
			seeds = append(seeds, seed)
		}
	}
	return seeds
}

// joinLoop joins the seeds until one answers, ctx ends or the node closes.
func (n *Node) joinLoop(ctx context.Context, s *serf.Serf, seeds []string) {
	defer n.wg.Done()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-n.stop:
			return
		case <-retry.C:
		}
		contacted, err := s.Join(seeds, true)
		// A seed that resolves to this very node is "contacted" too, so
		// success also needs a second member in the view.
		if contacted > 0 && s.NumNodes() > 1 {
			n.logger.Info("gossip joined cluster", "seeds_contacted", contacted, "members", s.NumNodes(), "attempts", attempt)
			return
		}
		if err != nil && keyMismatch(err.Error()) && (attempt == 1 || attempt%60 == 0) {
			n.logger.Warn("gossip join refused: the seeds use another gossip key; check --gossip-key (or --insecure on both sides)",
				"seeds", seeds, "attempts", attempt, "err", err)
		} else {
			// Expected while this is the first node up: stay quiet.
			n.logger.Debug("gossip join failed, will retry", "seeds", seeds, "retry_in", n.cfg.JoinRetry, "err", err)
		}
		retry.Reset(n.cfg.JoinRetry)
	}
}

// watchEvents turns serf member events into coalesced Changes signals until
// serf shuts down. It must keep reading: serf sends events while holding
// its member lock, so a stalled reader would stall gossip.
func (n *Node) watchEvents(s *serf.Serf, events <-chan serf.Event) {
	defer n.wg.Done()
	for {
		select {
		case e := <-events:
			me, ok := e.(serf.MemberEvent)
			if !ok {
				continue
			}
			for _, m := range me.Members {
				if _, err := DecodeTags(m.Tags); err != nil {
					n.logger.Warn("gossip member has unreadable tags; it is left out of the view", "member", m.Name, "event", me.Type.String(), "err", err)
				}
			}
			select {
			case n.changes <- struct{}{}:
			default: // a signal is already pending; the reader sees this change too
			}
			n.nextMu.Lock()
			close(n.next)
			n.next = make(chan struct{})
			n.nextMu.Unlock()
		case <-s.ShutdownCh():
			return
		}
	}
}

// Members returns the current view, this node included, sorted by name.
// Members whose tags cannot be decoded are left out (and logged once per
// event). Before Start it returns nil; after Close, the last view.
func (n *Node) Members() []Member {
	s := n.serf.Load()
	if s == nil {
		return nil
	}
	suspect := make(map[string]bool)
	for _, m := range s.Memberlist().Members() {
		if m.State == memberlist.StateSuspect {
			suspect[m.Name] = true
		}
	}
	sm := s.Members()
	out := make([]Member, 0, len(sm))
	for _, m := range sm {
		if mem, ok := toMember(m, suspect[m.Name]); ok {
			out = append(out, mem)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Local returns this node as the view sees it. Before Start its Status is
// StatusUnknown and its Tags are the configured ones.
func (n *Node) Local() Member {
	if s := n.serf.Load(); s != nil {
		if m, ok := toMember(s.LocalMember(), false); ok {
			return m
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return Member{Name: n.cfg.Name, Tags: n.tags}
}

// GossipAddr returns the ip:port other nodes reach this node's gossip on
// (useful with port 0), or "" before Start.
func (n *Node) GossipAddr() string {
	s := n.serf.Load()
	if s == nil {
		return ""
	}
	return s.Memberlist().LocalNode().Address()
}

// toMember converts a serf member; ok is false when its tags are malformed.
func toMember(m serf.Member, suspect bool) (Member, bool) {
	t, err := DecodeTags(m.Tags)
	if err != nil {
		return Member{}, false
	}
	st := StatusUnknown
	switch m.Status {
	case serf.StatusAlive:
		st = StatusAlive
		if suspect {
			st = StatusSuspect
		}
	case serf.StatusLeaving, serf.StatusLeft:
		st = StatusLeft
	case serf.StatusFailed:
		st = StatusFailed
	}
	return Member{Name: m.Name, Tags: t, Status: st}, true
}

// SetTags replaces this node's tags and gossips them to every member. It
// waits up to 2/5 of LeaveTimeout for the update to go out; if peers are
// slow to take it, the tags are still set and reach them by anti-entropy,
// so that is not an error. Before Start, it replaces the tags Start uses.
func (n *Node) SetTags(t Tags) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("gossip: set tags: %w", err)
	}
	m, err := t.Encode()
	if err != nil {
		return fmt.Errorf("gossip: set tags: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("gossip: set tags: %w", ErrClosed)
	}
	s := n.serf.Load()
	if s == nil {
		n.tags = t
		return nil
	}
	// serf's own SetTags waits until the update has gone out to every
	// peer it is gossiped to (up to BroadcastTimeout, 50–100 ms here),
	// holding up whoever publishes: a promotion's claim, the role loop.
	// Set the tags serf reads (the *serf.Config it keeps) and queue the
	// update without waiting; it goes out with the next gossip round. The
	// only error UpdateNode returns is that wait's timeout.
	n.sc.Tags = m
	_ = s.Memberlist().UpdateNode(time.Nanosecond)
	n.tags = t
	return nil
}

// NextChange returns a channel closed at the next member join, leave,
// failure, update or reap. Unlike Changes it has any number of readers:
// each waiter calls NextChange, then reads Members again once it closes.
func (n *Node) NextChange() <-chan struct{} {
	n.nextMu.Lock()
	defer n.nextMu.Unlock()
	return n.next
}

// Changes is signalled after every member join, leave, failure, update or
// reap. Signals are coalesced (capacity 1, never blocking gossip): on a
// signal, read Members again rather than counting signals.
func (n *Node) Changes() <-chan struct{} { return n.changes }

// Close leaves the cluster gracefully (bounded by LeaveTimeout), so peers
// see this node as left rather than failed, then shuts gossip down and
// waits for the node's goroutines. It is idempotent.
func (n *Node) Close() error { return n.close(true) }

// close stops the node; graceful false skips the leave, which peers then
// see as a crash (tests use it to measure failure detection).
func (n *Node) close(graceful bool) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.wg.Wait()
		return nil
	}
	n.closed = true
	close(n.stop)
	n.mu.Unlock()

	var err error
	if s := n.serf.Load(); s != nil {
		if graceful {
			if lerr := s.Leave(); lerr != nil {
				n.logger.Warn("gossip leave failed; peers will see this node as failed", "err", lerr)
			}
		}
		if serr := s.Shutdown(); serr != nil {
			err = fmt.Errorf("gossip: shutdown: %w", serr)
		}
	}
	n.wg.Wait()
	return err
}

// splitIPPort splits an address already checked by Config.Validate.
func splitIPPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q is not ip:port: %w", ErrBadConfig, addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: port is not a number in 0-65535", ErrBadConfig, addr)
	}
	return host, int(p), nil
}

package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"shoal/gossip"
	"shoal/replication"
	"shoal/store"
)

// NodeConfig configures a storage node.
type NodeConfig struct {
	// Start is the role the node starts in: primary, replica or standby.
	Start gossip.Role
	// Group is the group a primary or replica serves.
	Group string
	// DataDir holds the node's durable state.
	DataDir string
	// Listen is the node-to-node RPC address; Advertise is how peers
	// reach it (default Listen).
	Listen, Advertise string
	// ID is the node's ID; 0 derives one and keeps it in DataDir.
	ID uint64
	// Name is the node's unique gossip name; "" derives one from the host
	// name and ID.
	Name string
	// Gossip configures membership (its Name and Tags are filled in here).
	Gossip gossip.Config
	// Replication holds the replication tunables (identity, store and
	// transport are filled in here).
	Replication replication.Config
	// PromoteBackoff is the pause after a failed promotion before this
	// node tries again.
	PromoteBackoff time.Duration
	// StartupGrace is how long a (re)started node waits before it may
	// promote itself in a group that already had a primary: until its
	// gossip view is complete it may not see the primary that exists, and
	// promoting would depose it for nothing (default 2s).
	StartupGrace time.Duration
	Logger       *slog.Logger
}

// Validate reports the first invalid field.
func (c NodeConfig) Validate() error {
	switch c.Start {
	case gossip.RolePrimary, gossip.RoleReplica:
		if c.Group == "" {
			return errors.New("--group is required for a primary or replica")
		}
	case gossip.RoleStandby:
	default:
		return fmt.Errorf("role %q cannot run a storage node", c.Start)
	}
	if c.DataDir == "" {
		return errors.New("--data is required: the directory that keeps this node's state")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT: %w", c.Listen, err)
	}
	return nil
}

// Node is a running storage node.
type Node struct {
	cfg    NodeConfig
	log    *slog.Logger
	db     *store.DB
	repl   *replication.Node
	gossip *gossip.Node
	tr     *replication.TCPTransport

	mu        sync.Mutex
	view      gossip.Decision
	promoting bool
	nextTry   time.Time // no promotion before: backoff after a failed one
	// graceUntil holds back promotion after a start until the gossip view
	// has shown a primary (or the grace ran out).
	graceUntil time.Time
	// leaderless is when the view last began to show neither a primary
	// nor a candidate (every member restarted, none known caught up).
	leaderless time.Time
}

// RunNode starts a storage node and serves until ctx ends.
func RunNode(ctx context.Context, cfg NodeConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	id, err := LoadID(cfg.DataDir, cfg.ID)
	if err != nil {
		return err
	}
	cfg.ID = id
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%x", host, id&0xffffff)
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Listen
	}
	if cfg.PromoteBackoff <= 0 {
		cfg.PromoteBackoff = 300 * time.Millisecond
	}
	if cfg.StartupGrace <= 0 {
		cfg.StartupGrace = 2 * time.Second
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.Name, "id", id)}
	return n.run(ctx)
}

func (n *Node) run(ctx context.Context) error {
	db, err := store.Open(n.cfg.DataDir)
	if err != nil {
		return err
	}
	n.db = db
	defer db.Close()
	n.tr = replication.NewTCPTransport()
	defer n.tr.Close()

	l, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for peers on %s: %w", n.cfg.Listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var handler replication.Handler = replication.HandlerFunc(func(context.Context, replication.Message) (replication.Message, error) {
		return nil, fmt.Errorf("%w: standby nodes serve no group yet", replication.ErrWrongGroup)
	})
	if n.cfg.Start != gossip.RoleStandby {
		rc := n.cfg.Replication
		rc.ID, rc.Name, rc.Addr, rc.Group = n.cfg.ID, n.cfg.Name, n.cfg.Advertise, n.cfg.Group
		rc.Store, rc.Transport, rc.Logger = db, n.tr, n.log
		rc.ViewPrimary = n.viewPrimary
		if n.repl, err = replication.New(rc); err != nil {
			l.Close()
			return err
		}
		n.repl.Run(ctx)
		defer n.repl.Close()
		handler = n.repl
	}
	srv := &replication.Server{Handler: handler, Logger: n.log}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	gc := n.cfg.Gossip
	gc.Name, gc.Logger, gc.Tags = n.cfg.Name, n.log, n.tags()
	g, err := gossip.New(gc)
	if err != nil {
		cancel()
		<-served
		return err
	}
	if err := g.Start(ctx); err != nil {
		cancel()
		<-served
		return err
	}
	n.gossip = g
	n.mu.Lock()
	n.graceUntil = time.Now().Add(n.cfg.StartupGrace)
	n.mu.Unlock()
	n.log.Info("node started", "role", n.cfg.Start, "group", n.cfg.Group, "listen", n.cfg.Listen, "gossip", gc.BindAddr, "data", n.cfg.DataDir)
	n.loop(ctx)
	// Leave gossip first so peers stop routing here, then stop serving.
	g.Close()
	cancel()
	<-served
	n.log.Info("node stopped")
	return nil
}

// tags is what this node publishes about itself.
func (n *Node) tags() gossip.Tags {
	t := gossip.Tags{ID: n.cfg.ID, Role: n.cfg.Start, Group: n.cfg.Group, Addr: n.cfg.Advertise, Boot: n.cfg.Start == gossip.RolePrimary}
	if n.repl == nil {
		t.Role, t.Group, t.Boot = gossip.RoleStandby, "", false
		return t
	}
	s := n.repl.Status()
	t.Term, t.InSync = s.Ballot.Term, s.InSync
	t.Role = gossip.RoleReplica
	n.mu.Lock()
	if s.Role != replication.Follower || n.promoting {
		t.Role = gossip.RolePrimary
	}
	n.mu.Unlock()
	return t
}

// viewPrimary is the ballot of the primary in this node's gossip view.
func (n *Node) viewPrimary() (store.Ballot, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.view.Primary; p != nil {
		return store.Ballot{Term: p.Term, Node: p.ID}, true
	}
	return store.Ballot{}, false
}

// loop re-runs the election whenever gossip or replication changes, and on
// a short tick in case an event was coalesced away.
func (n *Node) loop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var replChanged <-chan struct{}
	if n.repl != nil {
		replChanged = n.repl.Changed()
	}
	for {
		n.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.gossip.Changes():
		case <-replChanged:
		case <-tick.C:
		}
	}
}

// step applies one election outcome: follow the primary, step down before
// a higher ballot, or promote this node when it is the candidate.
func (n *Node) step(ctx context.Context) {
	if n.repl == nil {
		return
	}
	members := n.gossip.Members()
	d := gossip.Elect(members, n.cfg.Group)
	var peers []store.Member
	for _, m := range members {
		if m.Group == n.cfg.Group && m.Addr != "" && (m.Status == gossip.StatusAlive || m.Status == gossip.StatusSuspect) &&
			(m.Role == gossip.RolePrimary || m.Role == gossip.RoleReplica) {
			peers = append(peers, store.Member{ID: m.ID, Name: m.Name, Addr: m.Addr})
		}
	}
	n.repl.SetPeers(peers)
	st := n.repl.Status()
	n.mu.Lock()
	n.view = d
	if d.Primary != nil {
		n.graceUntil = time.Time{} // the view is complete enough to show a primary
	}
	promote := false
	now := time.Now()
	d.Candidate = n.fallbackCandidateLocked(d, members, now)
	if p := d.Primary; p != nil && p.ID != n.cfg.ID && st.Role != replication.Follower &&
		st.Ballot.Less(store.Ballot{Term: p.Term, Node: p.ID}) {
		n.repl.StepDown(fmt.Sprintf("gossip shows primary %s with term %d", p.Name, p.Term))
	}
	// A group that never had a primary (MaxTerm 0) needs no grace: nobody
	// can be deposed.
	if d.Primary == nil && d.Candidate != nil && d.Candidate.ID == n.cfg.ID &&
		!n.promoting && st.Role == replication.Follower && now.After(n.nextTry) && (d.MaxTerm == 0 || now.After(n.graceUntil)) {
		n.promoting, promote = true, true
	}
	n.mu.Unlock()
	if promote {
		b := store.Ballot{Term: max(d.MaxTerm, st.Ballot.Term) + 1, Node: n.cfg.ID}
		go n.promote(ctx, b)
	}
	if err := n.gossip.SetTags(n.tags()); err != nil && !errors.Is(err, gossip.ErrClosed) {
		n.log.Warn("publish tags", "err", err)
	}
}

// fallbackCandidateLocked keeps a group whose members all restarted from
// staying leaderless: nobody is in sync with a primary that no longer
// exists, so after the startup grace the highest-ID live member may
// promote. Safety does not depend on who promotes: recovery adopts the
// most up-to-date log of a majority.
func (n *Node) fallbackCandidateLocked(d gossip.Decision, members []gossip.Member, now time.Time) *gossip.Member {
	if d.Primary != nil || d.Candidate != nil || d.MaxTerm == 0 {
		n.leaderless = time.Time{}
		return d.Candidate
	}
	if n.leaderless.IsZero() {
		n.leaderless = now
	}
	if now.Sub(n.leaderless) < n.cfg.StartupGrace {
		return nil
	}
	var best *gossip.Member
	for i, m := range members {
		live := m.Status == gossip.StatusAlive || m.Status == gossip.StatusSuspect
		if live && m.Group == n.cfg.Group && (m.Role == gossip.RoleReplica || m.Role == gossip.RolePrimary) &&
			(best == nil || m.ID > best.ID) {
			best = &members[i]
		}
	}
	return best
}

// promote claims the primary role in gossip first, so no other member
// competes, then recovers the log from a majority.
func (n *Node) promote(ctx context.Context, b store.Ballot) {
	n.log.Info("promoting to primary", "ballot", b)
	// Publish the claim with the new term before recovering.
	t := n.tags()
	t.Role, t.Term = gossip.RolePrimary, b.Term
	if err := n.gossip.SetTags(t); err != nil {
		n.log.Warn("publish primary claim", "err", err)
	}
	err := n.repl.Promote(ctx, b)
	n.mu.Lock()
	n.promoting = false
	if err != nil {
		n.nextTry = time.Now().Add(n.cfg.PromoteBackoff)
	}
	n.mu.Unlock()
	if err != nil {
		n.log.Warn("promotion failed; will retry if still the candidate", "ballot", b, "err", err)
	}
	if err := n.gossip.SetTags(n.tags()); err != nil && !errors.Is(err, gossip.ErrClosed) {
		n.log.Warn("publish tags", "err", err)
	}
}

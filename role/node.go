package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"shoal/gossip"
	"shoal/meta"
	"shoal/replication"
	"shoal/secure"
	"shoal/store"
	"shoal/wire"
)

// keyringFile keeps the gossip keyring in the data directory, so a node
// restarted after a key rotation speaks the cluster's current key.
const keyringFile = "gossip.keyring"

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
	// node tries again (default 300ms).
	PromoteBackoff time.Duration
	// StartupGrace is how long a (re)started node waits before it may
	// promote itself in a group that already had a primary: until its
	// gossip view is complete it may not see the primary that exists, and
	// promoting would depose it for nothing (default 2s).
	StartupGrace time.Duration
	// MetaGroup is the group that keeps the namespace (default
	// meta.DefaultMetaGroup); every group asks it which chunks files
	// still reference.
	MetaGroup string
	// Capacity is how many bytes of data this node stores: chunks and
	// meta.db (the log, the namespace and small files kept inline); 0
	// means what it holds plus the free space of the data directory's
	// disk when the node starts, less MetaReserve.
	Capacity int64
	// MetaReserve is how many bytes of the data directory's file system
	// the node keeps free for metadata: new data is refused before the
	// disk's free space would fall under it, so promises, a new
	// primary's first entry, deletes and renames still find room on a
	// full disk. 0 means store.DefaultReserve of the disk's size (2%,
	// within 4 MiB and 256 MiB).
	MetaReserve int64
	// ReplaceAfter is how long a voting member may be dead before its
	// group's primary removes it and claims a standby in its place; a
	// group short of members for that long claims standbys too
	// (default 30s; negative disables replacement).
	ReplaceAfter time.Duration
	// HighWater is the fraction of capacity above which a group counts
	// as full: when every group is, the meta group's primary forms a new
	// group from standbys (default 0.9).
	HighWater float64
	// Security holds the node's certificate and the gossip key.
	Security Security
	Logger   *slog.Logger
	// Metrics, if set, is the process's metrics endpoint: the node
	// registers its Prometheus metrics there, each labelled with its name
	// (node="..."), and its readiness.
	Metrics *MetricsEndpoint
}

// DefaultNodeConfig returns a NodeConfig with the tunables set; Start,
// DataDir and, for a primary or replica, Group must still be given.
func DefaultNodeConfig() NodeConfig {
	return NodeConfig{
		Listen:         "0.0.0.0:7000",
		Gossip:         gossip.DefaultConfig(),
		Replication:    replication.DefaultConfig(),
		PromoteBackoff: 300 * time.Millisecond,
		StartupGrace:   2 * time.Second,
		MetaGroup:      meta.DefaultMetaGroup,
		ReplaceAfter:   30 * time.Second,
		HighWater:      0.9,
		Logger:         slog.Default(),
	}
}

// Validate reports the first invalid field, wrapped in ErrBadConfig. The
// gossip and replication settings are checked when they are complete,
// as the node starts them.
func (c NodeConfig) Validate() error {
	switch c.Start {
	case gossip.RolePrimary, gossip.RoleReplica:
		if c.Group == "" {
			return fmt.Errorf("%w: --group is required for a primary or replica", ErrBadConfig)
		}
	case gossip.RoleStandby:
	default:
		return fmt.Errorf("%w: Start: role %q cannot run a storage node", ErrBadConfig, c.Start)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: --data is required: the directory that keeps this node's state", ErrBadConfig)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("%w: --listen %q: want HOST:PORT: %w", ErrBadConfig, c.Listen, err)
	}
	switch {
	case c.Capacity < 0:
		return fmt.Errorf("%w: --capacity %d: must not be negative", ErrBadConfig, c.Capacity)
	case c.MetaReserve < 0:
		return fmt.Errorf("%w: --meta-reserve %d: must not be negative", ErrBadConfig, c.MetaReserve)
	case c.HighWater <= 0 || c.HighWater > 1:
		return fmt.Errorf("%w: --high-water %v: want a fraction above 0 and at most 1", ErrBadConfig, c.HighWater)
	case c.MetaGroup == "":
		return fmt.Errorf("%w: --meta-group is empty: name the group that keeps the namespace", ErrBadConfig)
	case c.StartupGrace <= 0:
		return fmt.Errorf("%w: --startup-grace %v: must be positive", ErrBadConfig, c.StartupGrace)
	case c.ReplaceAfter == 0:
		return fmt.Errorf("%w: --replace-after is 0: give how long a member may be dead before it is replaced, or a negative duration never to replace one", ErrBadConfig)
	case c.PromoteBackoff <= 0:
		return fmt.Errorf("%w: PromoteBackoff %v: must be positive", ErrBadConfig, c.PromoteBackoff)
	case c.Logger == nil:
		return fmt.Errorf("%w: Logger is nil", ErrBadConfig)
	}
	return nil
}

// Node is a running storage node.
type Node struct {
	cfg    NodeConfig
	sec    *secrets
	log    *slog.Logger
	db     *store.DB
	repl   *replication.Node
	gossip *gossip.Node
	tr     *wire.TCPTransport
	// claimMu makes concurrent claims take turns: one wins.
	claimMu sync.Mutex

	ctx context.Context // the node's lifetime, for a group joined by claim

	mu sync.Mutex
	// group is the group this node serves ("" for an unclaimed standby)
	// and boot whether it may bootstrap it; repl is nil until then.
	group string
	boot  bool
	view  gossip.Decision
	// gate is the promotion gate gossip.Decide keeps: the startup grace,
	// the backoff after a failed promotion, the leaderless fallback's
	// wait and a promotion under way.
	gate   gossip.Gate
	duties duties
	// pubUsed, pubCap and pubAt are the usage last published in gossip.
	pubUsed, pubCap uint64
	pubAt           time.Time
	// noRoom is whether this node last found its disk without room for
	// new data, so that it says so once each time that changes.
	noRoom bool
	// storeLost is set, by the loop goroutine only, when a corrupt
	// meta.db could not be replaced: the node serves nothing more.
	storeLost bool

	// tagsMu serializes publishing tags (the role loop, a promotion) and
	// guards the tags last published and when (see setTags).
	tagsMu   sync.Mutex
	lastTags gossip.Tags
	tagsAt   time.Time

	// gone is what this node, a follower, found out about its primary's
	// address (gone.go).
	gone goneProbe
	// metrics counts the work of the group's replication (nil: none).
	metrics *replication.Metrics
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
	sec, err := cfg.Security.load(secure.RoleNode)
	if err != nil {
		return err
	}
	n := &Node{cfg: cfg, sec: sec, log: cfg.Logger.With("node", cfg.Name, "id", id)}
	n.gone.done = make(chan struct{}, 1)
	return n.run(ctx)
}

func (n *Node) run(ctx context.Context) error {
	db, err := n.openStore()
	if err != nil {
		return err
	}
	n.db = db
	defer db.Close()
	if n.cfg.Metrics != nil {
		reg := nodeRegisterer(n.cfg.Metrics.Registry, n.cfg.Name)
		n.metrics = replication.NewMetrics()
		cs := append(n.metrics.Collectors(), nodeCollector{n})
		if err := registerAll(reg, cs...); err != nil {
			return err
		}
		defer unregisterAll(reg, cs...)
		defer n.cfg.Metrics.AddCheck(n.cfg.Name, n.ready)()
	}
	if err := n.setLimits(); err != nil {
		return err
	}
	n.tr = wire.NewTCPTransport()
	defer n.tr.Close()
	n.tr.TLS = n.sec.peerClient()

	l, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for peers on %s: %w", n.cfg.Listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.ctx = ctx
	defer n.closeGroup()

	group, boot := n.cfg.Group, n.cfg.Start == gossip.RolePrimary
	c, claimed, err := store.LoadClaim(n.cfg.DataDir)
	if err != nil {
		l.Close()
		return err
	}
	switch {
	case claimed && c.Released != "":
		group, boot = "", false
		n.log.Warn("this node was released from its group, which had its full size without it; serving as a standby (wipe the data directory to start it afresh)",
			"released_by", c.Released, "group_flag", n.cfg.Group)
		if st, err := n.db.State(); err != nil || st.LastIndex > 0 {
			// Released, but stopped before its copy was dropped.
			if err := n.db.Wipe(); err != nil {
				l.Close()
				return err
			}
		}
	case claimed:
		group, boot = c.Group, c.Boot
		if n.cfg.Start != gossip.RoleStandby && c.Group != n.cfg.Group {
			n.log.Warn("this node was claimed as a standby by another group; serving that group, not --group", "group", c.Group, "group_flag", n.cfg.Group)
		} else {
			n.log.Info("claimed by a group before this start", "group", c.Group)
		}
	case n.cfg.Start == gossip.RoleStandby:
		group, boot = "", false
	}
	if group != "" {
		if err := n.joinGroup(group, boot); err != nil {
			l.Close()
			return err
		}
	}
	srv := &wire.Server{Handler: n, Logger: n.log, TLS: n.sec.peerServer(), Addr: n.cfg.Advertise}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	gc := n.cfg.Gossip
	gc.Name, gc.Logger, gc.Tags = n.cfg.Name, n.log, n.tags()
	gc.Keys = n.sec.gossipKeys // none with --insecure
	if !n.sec.insecure {
		// Not with --insecure: a keyring left by a secure run would
		// turn encryption back on.
		gc.KeyringFile = filepath.Join(n.cfg.DataDir, keyringFile)
	}
	n.sec.warn(ctx, n.log, "this storage node serves its peer port in plain TCP and gossips in clear:")
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
	n.mu.Lock()
	n.gossip = g
	n.gate = gossip.NewGate(n.cfg.StartupGrace, n.cfg.PromoteBackoff, time.Now())
	n.mu.Unlock()
	n.log.Info("node started", "role", n.cfg.Start, "group", group, "listen", n.cfg.Listen, "gossip", gc.BindAddr,
		"data", n.cfg.DataDir, "capacity", n.db.Chunks.Limits().Capacity, "meta_reserve", n.db.Chunks.Limits().Reserve, "used", n.db.Usage().Used())
	n.loop(ctx)
	// Leave gossip first so peers stop routing here, then stop serving.
	g.Close()
	cancel()
	<-served
	n.log.Info("node stopped")
	return nil
}

// setLimits applies --capacity and --meta-reserve, or their defaults,
// measured on the data directory's disk as the node starts.
func (n *Node) setLimits() error {
	u := n.db.Usage()
	if u.Disk.Size == 0 && (n.cfg.Capacity == 0 || n.cfg.MetaReserve == 0) {
		_, err := store.OSFS{}.Statfs(n.cfg.DataDir)
		if err == nil {
			err = errors.New("its file system reports a size of 0")
		}
		return fmt.Errorf("measure the disk of %s for the default --capacity and --meta-reserve (or give both): %w", n.cfg.DataDir, err)
	}
	l := nodeLimits(n.cfg.Capacity, n.cfg.MetaReserve, u)
	n.db.SetLimits(l)
	if u.Disk.Free < l.Reserve {
		n.log.Warn("the disk has less free space than the reserve kept for metadata: this node takes no new data until files are deleted or the disk grows; reads, deletes and renames go on",
			"free", u.Disk.Free, "meta_reserve", l.Reserve)
	}
	return nil
}

// nodeLimits is the limits of a node given --capacity and --meta-reserve
// (0: the default) and what it measured at start.
func nodeLimits(capacity, reserve int64, u store.Usage) store.Limits {
	if reserve == 0 {
		reserve = store.DefaultReserve(u.Disk.Size)
	}
	if capacity == 0 {
		capacity = store.DefaultCapacity(u, reserve)
	}
	return store.Limits{Capacity: capacity, Reserve: reserve}
}

// joinGroup starts serving group: at start for a primary, a replica or a
// claimed standby, or when a claim arrives.
func (n *Node) joinGroup(group string, boot bool) error {
	rc := n.cfg.Replication
	rc.ID, rc.Name, rc.Addr, rc.Group = n.cfg.ID, n.cfg.Name, n.cfg.Advertise, group
	rc.Store, rc.Transport, rc.Logger = n.db, n.tr, n.log
	rc.ViewPrimary = n.viewPrimary
	rc.ChunkRefs = n.chunkRefs
	rc.Metrics = n.metrics
	r, err := replication.New(rc)
	if err != nil {
		return err
	}
	r.Start(n.ctx)
	n.mu.Lock()
	n.repl, n.group, n.boot = r, group, boot
	n.mu.Unlock()
	return nil
}

func (n *Node) closeGroup() {
	n.mu.Lock()
	r := n.repl
	n.mu.Unlock()
	if r != nil {
		r.Close()
	}
}

// replication returns the group's replication node, nil for a standby.
func (n *Node) replication() *replication.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.repl
}

// Handle serves node-to-node requests: claims here, the rest by the
// group's replication (a standby serves none of those).
func (n *Node) Handle(ctx context.Context, req wire.Message) (wire.Message, error) {
	switch m := req.(type) {
	case *wire.Claim:
		return n.handleClaim(m)
	case *wire.Release:
		return n.handleRelease(m)
	}
	r := n.replication()
	if r == nil {
		return nil, fmt.Errorf("%w: %s is a standby and serves no group yet", wire.ErrWrongGroup, n.cfg.Name)
	}
	return r.Handle(ctx, req)
}

// handleClaim makes a standby a member of the claiming group. It accepts
// one claim only (repeating that claim is fine), recorded durably first.
func (n *Node) handleClaim(c *wire.Claim) (wire.Message, error) {
	n.claimMu.Lock()
	defer n.claimMu.Unlock()
	n.mu.Lock()
	have := n.group
	n.mu.Unlock()
	if have == c.Group {
		return &wire.OKMsg{}, nil
	}
	if have != "" {
		return nil, fmt.Errorf("%w: %s serves group %q", wire.ErrClaimed, n.cfg.Name, have)
	}
	if err := store.CheckGroupName(c.Group); err != nil {
		return nil, fmt.Errorf("%w: claim: %v", wire.ErrBadMessage, err)
	}
	if st, err := n.db.State(); err != nil || st.LastIndex > 0 {
		return nil, fmt.Errorf("%w: %s holds another group's log; wipe its data directory to reuse it as a standby", wire.ErrClaimed, n.cfg.Name)
	}
	if err := store.SaveClaim(n.cfg.DataDir, store.Claim{Group: c.Group, Boot: c.Boot}); err != nil {
		return nil, err
	}
	if err := n.joinGroup(c.Group, c.Boot); err != nil {
		return nil, err
	}
	n.log.Info("claimed by a group; serving it from now on", "group", c.Group, "by", c.By, "boot", c.Boot)
	return &wire.OKMsg{}, nil
}

// handleRelease returns this node to the standby pool when its group's
// primary says the group does not need it. It stops replication first,
// so no entry can arrive meanwhile, then reads its own log: a node that is
// a voter there (its ack may have counted toward a commit) keeps its copy
// and rejoins. Otherwise it records the release durably, then drops its
// copy of the group, so a restart keeps it a standby.
func (n *Node) handleRelease(m *wire.Release) (wire.Message, error) {
	n.claimMu.Lock()
	defer n.claimMu.Unlock()
	n.mu.Lock()
	r, group, boot := n.repl, n.group, n.boot
	n.mu.Unlock()
	if r == nil || group != m.Group {
		return nil, fmt.Errorf("%w: %s does not serve group %q", wire.ErrWrongGroup, n.cfg.Name, m.Group)
	}
	if st := r.Status(); st.Role != replication.Follower || isVoter(st.Voters, n.cfg.ID) {
		return nil, fmt.Errorf("%w: %s is a voter of group %q in its own log (role %s); it stays", wire.ErrClaimed, n.cfg.Name, group, st.Role)
	}
	n.mu.Lock()
	n.repl = nil
	n.mu.Unlock()
	r.Close()
	voters, _, err := n.db.Config()
	if err == nil && isVoter(voters, n.cfg.ID) {
		err = fmt.Errorf("%w: %s became a voter of group %q before it stopped; it stays", wire.ErrClaimed, n.cfg.Name, group)
	}
	if err == nil {
		err = store.SaveClaim(n.cfg.DataDir, store.Claim{Released: group})
	}
	if err != nil {
		if jerr := n.joinGroup(group, boot); jerr != nil {
			n.log.Error("could not serve the group again after a refused release; restart the node", "group", group, "err", jerr)
		}
		return nil, err
	}
	if err := n.db.Wipe(); err != nil {
		n.log.Error("released from the group but could not drop its copy; restart the node to finish", "group", group, "err", err)
		return nil, err
	}
	n.mu.Lock()
	n.group, n.boot = "", false
	n.mu.Unlock()
	n.log.Warn("released by the group, which has its full size without this node; dropped its copy and returned to the standby pool", "group", group, "by", m.By)
	return &wire.OKMsg{}, nil
}

// chunkRefs asks the meta group's primary which chunks files reference
// in this node's group, for garbage collection.
func (n *Node) chunkRefs(ctx context.Context, hs []meta.Hash) ([]bool, error) {
	n.mu.Lock()
	g, group := n.gossip, n.group
	n.mu.Unlock()
	if g == nil {
		return nil, errors.New("gossip not started yet")
	}
	p := gossip.Elect(g.Members(), n.cfg.MetaGroup).Primary
	if p == nil {
		return nil, fmt.Errorf("meta group %q has no primary in this node's view", n.cfg.MetaGroup)
	}
	groups := []string{group}
	if group == n.cfg.MetaGroup {
		groups = append(groups, "") // files written before chunks named their group
	}
	rr, err := wire.Call[*wire.ReadResp](ctx, n.tr, p.Addr, &wire.Read{Group: n.cfg.MetaGroup, Kind: wire.ReadChunkRefs, Hashes: hs, Groups: groups})
	if err != nil {
		return nil, err
	}
	return rr.Referenced, nil
}

// tags is what this node publishes about itself.
func (n *Node) tags() gossip.Tags {
	n.mu.Lock()
	t := gossip.Tags{ID: n.cfg.ID, Role: gossip.RoleStandby, Addr: n.cfg.Advertise}
	// Usage changes with every write: publish it at most once a second
	// unless it moved by 1% of capacity, to keep gossip quiet. The
	// capacity published is no more than the disk holds above the
	// reserve, so a disk filled by anything shows as full.
	u := n.db.Usage()
	used, capacity := uint64(u.Used()), uint64(n.db.Chunks.Limits().ChunkCap(u))
	moved := func(a, b uint64) bool { return max(a, b)-min(a, b) >= capacity/100 }
	if moved(used, n.pubUsed) || moved(capacity, n.pubCap) || time.Since(n.pubAt) >= time.Second {
		n.pubUsed, n.pubCap, n.pubAt = used, capacity, time.Now()
		n.noteRoom(used, capacity)
	}
	t.Used, t.Cap = n.pubUsed, n.pubCap
	r, promoting := n.repl, n.gate.Promoting
	t.Group, t.Boot = n.group, n.boot
	n.mu.Unlock()
	if r == nil {
		return t
	}
	s := r.Status()
	// A member rebuilding its store may not lead, so it is not offered
	// as a voter to the election either.
	t.Term, t.InSync, t.Voter = s.Ballot.Term, s.InSync, isVoter(s.Voters, n.cfg.ID) && !s.Rebuilding
	t.Role = gossip.RoleReplica
	if s.Role != replication.Follower || promoting {
		t.Role = gossip.RolePrimary
	}
	return t
}

// noteRoom says when this node's disk runs out of room for new data, and
// when it has room again: its group refuses new data once a majority has
// none, so an operator wants to know which node is full before then.
// Called with n.mu held.
func (n *Node) noteRoom(used, capacity uint64) {
	full := n.db.Room() <= 0
	if full == n.noRoom {
		return
	}
	n.noRoom = full
	if full {
		n.log.Warn("this node's disk has no room left for new data above the reserve kept for metadata: it keeps serving reads, deletes and renames, and its group refuses new data once a majority of it is full; delete files, or free or add disk space",
			"used", used, "capacity", capacity, "data", n.cfg.DataDir)
		return
	}
	n.log.Info("this node's disk has room for new data again", "used", used, "capacity", capacity)
}

// viewPrimary is the ballot of the primary in this node's gossip view.
func (n *Node) viewPrimary() (meta.Ballot, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.view.Primary; p != nil {
		return meta.Ballot{Term: p.Term, Node: p.ID}, true
	}
	return meta.Ballot{}, false
}

// loop re-runs the election whenever gossip or replication changes, and on
// a short tick in case an event was coalesced away.
func (n *Node) loop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		n.step(ctx)
		var replChanged <-chan struct{}
		if r := n.replication(); r != nil {
			replChanged = r.Changed()
		}
		corrupted := n.db.Corrupted()
		if n.storeLost {
			corrupted = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-n.gossip.Changes():
		case <-replChanged:
		case <-tick.C:
		case <-n.gone.done:
		case <-corrupted:
			n.replaceStore()
		}
	}
}

// step gathers the inputs of gossip.Decide (the view, this node's
// replication state, its promotion gate and the time) and carries out its
// answer: step down, or promote; then, on a ready or forming primary, the
// group's duties (replacement, scale-out).
func (n *Node) step(ctx context.Context) {
	defer n.publishTags()
	r := n.replication()
	if r == nil {
		return
	}
	n.mu.Lock()
	group, boot := n.group, n.boot
	n.mu.Unlock()
	members := n.gossip.Members()
	var peers []meta.Member
	for _, m := range gossip.LiveMembers(members, group) {
		peers = append(peers, meta.Member{ID: m.ID, Name: m.Name, Addr: m.Addr})
	}
	r.SetPeers(peers)
	st := r.Status()
	self := gossip.Self{
		ID:         n.cfg.ID,
		Group:      group,
		Boot:       boot,
		Voter:      isVoter(st.Voters, n.cfg.ID) && !st.Rebuilding,
		Configured: len(st.Voters) > 0,
		Leading:    st.Role != replication.Follower,
		Term:       st.Ballot.Term,
		BallotNode: st.Ballot.Node,
		DiskFailed: st.DiskError != "",
	}
	if since, ok := r.SincePrimary(); ok && since < heardWithin*n.cfg.Replication.Heartbeat {
		self.HeardPrimary = true
	}
	if self.Gone = n.primaryGone(ctx, r, st, members, group); self.Gone != 0 {
		self.HeardPrimary = false // the proof came after its last append
	}
	now := time.Now()
	n.mu.Lock()
	wasHeld := !n.gate.Held.IsZero()
	prev := n.view.Primary
	a := gossip.Decide(members, self, n.gate, now)
	n.view, n.gate = a.Decision, a.Gate
	n.mu.Unlock()
	if a.Holding && !wasHeld {
		n.log.Info("gossip lost sight of the primary, but its appends still arrive: holding the promotion", "for_at_most", n.cfg.StartupGrace)
	}
	if a.StepDown {
		r.StepDown(fmt.Sprintf("gossip shows primary %s with term %d", a.Primary.Name, a.Primary.Term))
	}
	if a.Promote {
		go n.promote(ctx, r, meta.Ballot{Term: a.Term, Node: n.cfg.ID}, promotionWhy(prev, members, self.Gone))
	}
	if st.Role == replication.Leader && (st.Ready || st.Forming) {
		// A forming group has duties too: a member that stays dead, or
		// one that never came, is replaced from the standbys, or the
		// group could never form.
		n.runDuties(ctx, r, group, st, members, now)
	}
}

// publishTags sets this node's gossip tags from its current state.
func (n *Node) publishTags() {
	n.setTags(n.tags(), false)
}

// tagsRefresh is how often a node republishes tags that have not changed
// (a change goes out at once). Every publication is a new alive message
// with a higher incarnation that every peer decodes and passes on, and
// that wakes every peer's role loop: at 100 ms, an idle shoal dev spent
// 0.26 of a core, two thirds of it on these; at 5 s, about 0.09.
// Republishing is a backstop for a peer that missed an update: memberlist
// retransmits each one several times, its push-pull syncs whole states,
// and a restarted node refutes the older incarnation of itself that a
// peer sends it at join, publishing its current tags above it.
const tagsRefresh = 5 * time.Second

// setTags publishes t unless it equals what was published less than
// tagsRefresh ago (force publishes anyway). The step that runs on every
// gossip change would otherwise answer each peer's update with one of its
// own, and the peers again.
func (n *Node) setTags(t gossip.Tags, force bool) {
	n.tagsMu.Lock()
	defer n.tagsMu.Unlock()
	now := time.Now()
	if !force && t == n.lastTags && now.Sub(n.tagsAt) < tagsRefresh {
		return
	}
	if err := n.gossip.SetTags(t); err != nil {
		if !errors.Is(err, gossip.ErrClosed) {
			n.log.Warn("publish tags", "err", err)
		}
		return
	}
	n.lastTags, n.tagsAt = t, now
}

// heardWithin is how many heartbeats since this node last accepted an
// append from a primary still count as hearing from it (gossip.Self's
// HeardPrimary): a primary that was killed fell silent before gossip
// noticed it, so a real failover is not held back.
const heardWithin = 3

// promote claims the primary role in gossip first, so no other member
// competes, then recovers the log from a majority.
func (n *Node) promote(ctx context.Context, r *replication.Node, b meta.Ballot, why string) {
	n.mu.Lock()
	group := n.group
	n.mu.Unlock()
	n.log.Info("promoting to primary", "group", group, "ballot", b, "why", why)
	// Publish the claim with the new term before recovering.
	t := n.tags()
	t.Role, t.Term = gossip.RolePrimary, b.Term
	n.setTags(t, true)
	err := r.Promote(ctx, b)
	n.mu.Lock()
	n.gate = n.gate.PromotionEnded(err == nil, time.Now())
	n.mu.Unlock()
	if err != nil {
		n.log.Warn("promotion failed; will retry if still the candidate", "ballot", b, "err", err)
	}
	n.setTags(n.tags(), true)
}

package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"shoal/client"
	"shoal/secure"
)

// Spec describes a cluster to start: storage groups, standbys and one
// router, each a shoal process.
type Spec struct {
	// Binary is the shoal executable every process runs (see Build).
	Binary string
	// Dir holds every process's data directory (named after it), its log
	// (NAME.log) and the secrets. It must exist.
	Dir string
	// Groups are the storage groups, each started with its first member
	// as primary and the rest as replicas, and --group-size its Size (a
	// --group-size in NodeFlags overrides it). The first is the meta
	// group.
	Groups []Group
	// Standbys is how many standby nodes to start besides.
	Standbys int
	// NodeFlags and RouterFlags are added to the command line of every
	// storage node (standbys included) and of the router.
	NodeFlags, RouterFlags []string
	// Insecure runs every process with --insecure. Otherwise the cluster
	// is secure, as by default: its secrets are made with 'shoal secrets
	// init', as a user would.
	Insecure bool
	// Hosts, when set, runs each process on a host of its own: the
	// storage nodes in group order, then the standbys, then the router,
	// on the fixed ports PeerPort, GossipPort and HTTPPort. When nil,
	// every process runs here, on 127.0.0.1 and ports from Ports.
	Hosts []Host
	// Ports hands out the ports on 127.0.0.1; share one between the
	// clusters of a process. Nil gives the cluster its own.
	Ports *Ports
	// Logger receives a line per process started; nil discards them.
	Logger *slog.Logger
}

// Group is a storage group of a Spec.
type Group struct {
	Name string
	Size int
}

// Host is where a process of a Spec with Hosts runs.
type Host struct {
	// IP is the address the process binds and is reached at.
	IP string
	// Command makes the command that runs the process there (see
	// Proc.Command); nil means exec.Command.
	Command func(name string, args ...string) *exec.Cmd
}

// The ports of a process on a Host of its own.
const (
	PeerPort   = 7000 // storage node to storage node and router
	GossipPort = 7946
	HTTPPort   = 8080 // the router's API
)

// Validate says what to fix when s cannot be started.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Binary == "":
		return bad("no Binary: give the shoal executable")
	case s.Dir == "":
		return bad("no Dir: give a directory for data, logs and secrets")
	case len(s.Groups) == 0:
		return bad("no Groups: give at least the meta group")
	case s.Standbys < 0:
		return bad("Standbys %d: give 0 or more", s.Standbys)
	}
	n := s.Standbys + 1
	for _, g := range s.Groups {
		if g.Name == "" || g.Size < 1 {
			return bad("group %q of %d members: give a name and at least one member", g.Name, g.Size)
		}
		n += g.Size
	}
	if s.Hosts != nil && len(s.Hosts) != n {
		return bad("%d Hosts for %d processes: give one per storage node, standby and the router", len(s.Hosts), n)
	}
	return nil
}

// Cluster is the processes started from a Spec. Its fields are set by
// Start; a test may append to Nodes a process it made with NewProc (an
// intruder, say) so that it is listed with the others.
type Cluster struct {
	// Nodes are the storage nodes in group order, then the standbys.
	Nodes []*Proc
	// Router is the router; API its base URL.
	Router *Proc
	API    string
	// Dir is Spec.Dir.
	Dir string
	// Seed is the gossip address of the first storage node, which every
	// other process joins.
	Seed string
	// Secrets is the directory 'shoal secrets init' made ("" when
	// insecure), and Creds the admin's credentials, Router set to API.
	Secrets string
	Creds   client.Credentials

	spec  Spec
	ports *Ports
	log   *slog.Logger

	mu     sync.Mutex
	extra  []*Proc        // made by NewProc
	viewer *client.Client // the admin's, for View; made on first use
}

// Start makes the secrets and starts every process of spec; WaitHealthy
// says when the cluster serves. If a process cannot be started, Start
// kills those it started and returns the error.
func Start(ctx context.Context, spec Spec) (*Cluster, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{Dir: spec.Dir, spec: spec, ports: spec.Ports, log: spec.Logger}
	if c.ports == nil {
		c.ports = &Ports{}
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := c.makeSecrets(ctx); err != nil {
		return nil, err
	}
	if err := c.describe(); err != nil {
		return nil, err
	}
	for _, p := range c.Procs() {
		if err := p.Start(); err != nil {
			c.Stop(0)
			return nil, err
		}
	}
	return c, nil
}

// makeSecrets makes the cluster's secrets with the binary under test (the
// router's certificate also naming its host, if it has one) and keeps the
// admin's credentials.
func (c *Cluster) makeSecrets(ctx context.Context) error {
	if c.spec.Insecure {
		return nil
	}
	c.Secrets = filepath.Join(c.Dir, "secrets")
	args := []string{"secrets", "init", c.Secrets}
	if hs := c.spec.Hosts; hs != nil {
		args = append(args, "--ip", hs[len(hs)-1].IP)
	}
	if out, err := exec.CommandContext(ctx, c.spec.Binary, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("make the cluster's secrets: shoal secrets init: %w: %s", err, out)
	}
	d := secure.Dir(c.Secrets)
	tok, err := secure.LoadToken(d.AdminToken())
	if err != nil {
		return fmt.Errorf("make the cluster's secrets: %w", err)
	}
	c.Creds = client.Credentials{CA: d.CA(), Token: tok, Cert: d.Cert(secure.RoleClient), Key: d.Key(secure.RoleClient)}
	return nil
}

// describe makes every process of the spec, not started. Nodes get fixed
// IDs (group i, member j: 100*(i+1)+j; standby j: 900+j), so a node whose
// data directory is wiped comes back as the same member.
func (c *Cluster) describe() error {
	host := 0
	for gi, g := range c.spec.Groups {
		for j := range g.Size {
			role := "replica"
			if j == 0 {
				role = "primary"
			}
			size := []string{"--group-size", strconv.Itoa(g.Size)}
			if _, err := c.addNode(role, fmt.Sprintf("%s-n%d", g.Name, j), g.Name, uint64(100*(gi+1)+j), c.hostAt(host), size...); err != nil {
				return err
			}
			host++
		}
	}
	for j := range c.spec.Standbys {
		if _, err := c.addNode("standby", fmt.Sprintf("standby%d", j), "", uint64(900+j), c.hostAt(host)); err != nil {
			return err
		}
		host++
	}
	h := c.hostAt(host)
	httpAddr, err := c.addr(h, HTTPPort)
	if err != nil {
		return err
	}
	gossipAddr, err := c.addr(h, GossipPort)
	if err != nil {
		return err
	}
	c.API = "https://" + httpAddr
	if c.spec.Insecure {
		c.API = "http://" + httpAddr
	}
	c.Creds.Router = c.API
	c.Router = c.proc("router", h, append(append([]string{"router", "--name", "router", "--http", httpAddr,
		"--gossip", gossipAddr, "--join", c.Seed, "--meta-group", c.spec.Groups[0].Name},
		c.securityFlags()...), c.spec.RouterFlags...))
	return nil
}

// hostAt is the i-th host of the spec, or nil when processes run here.
func (c *Cluster) hostAt(i int) *Host {
	if c.spec.Hosts == nil {
		return nil
	}
	return &c.spec.Hosts[i]
}

// addr is an address for a listener of a process on h: its fixed port on
// a host of its own, a free port of 127.0.0.1 otherwise.
func (c *Cluster) addr(h *Host, fixed int) (string, error) {
	if h != nil {
		return h.IP + ":" + strconv.Itoa(fixed), nil
	}
	p, err := c.ports.Free()
	if err != nil {
		return "", fmt.Errorf("an address for a cluster process: %w", err)
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// AddNode describes one more storage node (a standby, say: role
// "standby" and no group), appends it to Nodes and returns it, not
// started. extra is added to its command line. It runs here, on
// 127.0.0.1, even when the spec has Hosts.
func (c *Cluster) AddNode(role, name, group string, id uint64, extra ...string) (*Proc, error) {
	p, err := c.addNode(role, name, group, id, nil)
	if err != nil {
		return nil, err
	}
	p.Args = append(p.Args, extra...)
	return p, nil
}

// addNode describes a storage node on h, with flags before the spec's
// NodeFlags; the first one's gossip address is the cluster's seed.
func (c *Cluster) addNode(role, name, group string, id uint64, h *Host, flags ...string) (*Proc, error) {
	listen, err := c.addr(h, PeerPort)
	if err != nil {
		return nil, err
	}
	gossipAddr, err := c.addr(h, GossipPort)
	if err != nil {
		return nil, err
	}
	if c.Seed == "" {
		c.Seed = gossipAddr
	}
	args := []string{role, "--name", name, "--id", strconv.FormatUint(id, 10),
		"--data", filepath.Join(c.Dir, name), "--listen", listen,
		"--gossip", gossipAddr, "--join", c.Seed, "--meta-group", c.spec.Groups[0].Name}
	if group != "" {
		args = append(args, "--group", group)
	}
	args = append(append(append(args, flags...), c.securityFlags()...), c.spec.NodeFlags...)
	p := c.proc(name, h, args)
	c.Nodes = append(c.Nodes, p)
	return p, nil
}

// securityFlags are the flags every server of the cluster takes.
func (c *Cluster) securityFlags() []string {
	if c.spec.Insecure {
		return []string{"--insecure"}
	}
	return []string{"--secrets", c.Secrets}
}

// proc describes a process of the cluster's binary on h.
func (c *Cluster) proc(name string, h *Host, args []string) *Proc {
	p := &Proc{Name: name, Args: append([]string{c.spec.Binary}, args...),
		Log: filepath.Join(c.Dir, name+".log"), log: c.log}
	if h != nil {
		p.Command = h.Command
	}
	return p
}

// NewProc describes a process of the cluster's binary (a mount, or an
// intruder with other secrets), run here and logged to Dir/NAME.log. args
// follow the binary. It is not started; Stop stops it with the rest.
func (c *Cluster) NewProc(name string, args ...string) *Proc {
	p := c.proc(name, nil, args)
	c.mu.Lock()
	c.extra = append(c.extra, p)
	c.mu.Unlock()
	return p
}

// Servers returns the storage nodes and the router.
func (c *Cluster) Servers() []*Proc {
	return append(append([]*Proc{}, c.Nodes...), c.Router)
}

// Procs returns every process of the cluster: the servers, then those
// made by NewProc (and not appended to Nodes).
func (c *Cluster) Procs() []*Proc {
	ps := c.Servers()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.extra {
		if !contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps
}

func contains(ps []*Proc, p *Proc) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// Node returns the storage node named name, or nil.
func (c *Cluster) Node(name string) *Proc {
	for _, p := range c.Nodes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// DataDir is where storage node p keeps its state.
func (c *Cluster) DataDir(p *Proc) string { return filepath.Join(c.Dir, p.Name) }

// Client returns a client of the router as the admin, with the client's
// per-request timeout and its budget for retrying 503 answers (negative:
// none).
func (c *Cluster) Client(timeout, retry503 time.Duration) (*client.Client, error) {
	cfg, err := c.Creds.Config()
	if err != nil {
		return nil, fmt.Errorf("a client of the cluster: %w", err)
	}
	cfg.Timeout, cfg.Retry503 = timeout, retry503
	return client.New(cfg)
}

// Stop stops every process, those made by NewProc first (a mount before
// the cluster it mounts), each with Proc.Stop(grace), all at once. It
// returns the errors of those that had to be killed.
func (c *Cluster) Stop(grace time.Duration) error {
	c.mu.Lock()
	extra := append([]*Proc{}, c.extra...)
	c.mu.Unlock()
	first := stopAll(extra, grace)
	var servers []*Proc
	for _, p := range c.Procs() {
		if !contains(extra, p) {
			servers = append(servers, p)
		}
	}
	return errors.Join(first, stopAll(servers, grace))
}

// CleanupTB is the part of testing.TB that StopAtEnd uses.
type CleanupTB interface {
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
}

// StopAtEnd stops c (at once, with kill -9) when t's test ends and, if the
// test failed, logs the last lines of every process's log.
func (c *Cluster) StopAtEnd(t CleanupTB) {
	t.Cleanup(func() {
		c.Stop(0)
		if t.Failed() {
			for _, p := range c.Procs() {
				t.Logf("--- last lines of %s ---\n%s", p.Name, p.Tail(25))
			}
		}
	})
}

// stopAll stops ps in parallel and joins the errors.
func stopAll(ps []*Proc, grace time.Duration) error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { errs[i] = p.Stop(grace) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

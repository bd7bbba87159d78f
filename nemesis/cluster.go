package nemesis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"shoal/client"
	"shoal/secure"
)

// Cluster is one group of storage nodes and a router, each a shoal
// process in a host of its own, so that faults hit real processes over
// real links.
type Cluster struct {
	Net    *Net
	Nodes  []*Proc // storage nodes, hosts 0..n-1
	Router *Proc   // the last host
	API    string  // the router's base URL, reachable from the test
	dir    string
	creds  client.Credentials // the admin's
}

// Proc is one shoal process that can be killed, paused and started again
// with the same arguments (so as the same node).
type Proc struct {
	Name string
	Host *Host
	args []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
}

// StartCluster starts n storage nodes of group g1 and a router on nt's
// hosts (it needs n+1 of them), with data and logs under dir.
func StartCluster(nt *Net, bin, dir string, n int, nodeFlags, routerFlags []string) (*Cluster, error) {
	if len(nt.Hosts) < n+1 {
		return nil, fmt.Errorf("nemesis: %d hosts for %d nodes and a router", len(nt.Hosts), n)
	}
	c := &Cluster{Net: nt, dir: dir}
	rh := nt.Hosts[n]
	sec, err := c.makeSecrets(bin, rh.IP)
	if err != nil {
		return nil, err
	}
	seed := nt.Hosts[0].IP + ":7946"
	for i := range n {
		h := nt.Hosts[i]
		role := "replica"
		if i == 0 {
			role = "primary"
		}
		name := fmt.Sprintf("n%d", i)
		args := append([]string{bin, role, "--group", "g1", "--name", name, "--id", fmt.Sprint(i + 1),
			"--data", filepath.Join(dir, name), "--listen", h.IP + ":7000", "--gossip", h.IP + ":7946",
			"--join", seed, "--secrets", sec}, nodeFlags...)
		c.Nodes = append(c.Nodes, &Proc{Name: name, Host: h, args: args, log: filepath.Join(dir, name+".log")})
	}
	c.Router = &Proc{Name: "router", Host: rh, log: filepath.Join(dir, "router.log"), args: append([]string{bin, "router",
		"--name", "router", "--http", rh.IP + ":8080", "--gossip", rh.IP + ":7946", "--join", seed, "--secrets", sec}, routerFlags...)}
	c.API = "https://" + rh.IP + ":8080"
	c.creds.Router = c.API
	for _, p := range append(c.Nodes, c.Router) {
		if err := c.Start(p); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// makeSecrets makes the cluster's secrets with the binary under test (the
// router's certificate naming its address) and returns their directory.
func (c *Cluster) makeSecrets(bin, routerIP string) (string, error) {
	dir := filepath.Join(c.dir, "secrets")
	if out, err := exec.Command(bin, "secrets", "init", dir, "--ip", routerIP).CombinedOutput(); err != nil {
		return "", fmt.Errorf("shoal secrets init: %v: %s", err, out)
	}
	d := secure.Dir(dir)
	tok, err := secure.LoadToken(d.AdminToken())
	if err != nil {
		return "", err
	}
	c.creds = client.Credentials{CA: d.CA(), Token: tok}
	return dir, nil
}

// Start runs p (again) in its host.
func (c *Cluster) Start(p *Proc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := c.Net.Command(p.Host, p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.done, p.paused = cmd, make(chan struct{}), false
	go func(done chan struct{}) {
		cmd.Wait()
		f.Close()
		close(done)
	}(p.done)
	return nil
}

// Kill sends SIGKILL (resuming a paused process first is not needed: a
// stopped process dies of SIGKILL) and waits until it is gone.
func (c *Cluster) Kill(p *Proc) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.paused = nil, false
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Pause freezes p with SIGSTOP; Resume thaws it.
func (c *Cluster) Pause(p *Proc) error  { return p.signal(syscall.SIGSTOP, true) }
func (c *Cluster) Resume(p *Proc) error { return p.signal(syscall.SIGCONT, false) }

func (p *Proc) signal(s syscall.Signal, paused bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.Name)
	}
	p.paused = paused
	return p.cmd.Process.Signal(s)
}

// Running reports whether p is started (possibly paused).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Log returns the last lines of p's log.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Restore resumes paused processes and starts dead ones.
func (c *Cluster) Restore() error {
	for _, p := range append(c.Nodes, c.Router) {
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			if err := c.Resume(p); err != nil {
				return err
			}
		}
		if err := c.Start(p); err != nil {
			return err
		}
	}
	return nil
}

// Stop kills every process.
func (c *Cluster) Stop() {
	for _, p := range append(c.Nodes, c.Router) {
		c.Kill(p)
	}
}

// DataDir is where node p keeps its state.
func (c *Cluster) DataDir(p *Proc) string { return filepath.Join(c.dir, p.Name) }

// Client returns a client of the router with the given per-request
// timeout and no retries: a campaign wants each attempt on the record.
func (c *Cluster) Client(timeout time.Duration) (*client.Client, error) {
	cfg, err := c.creds.Config()
	if err != nil {
		return nil, err
	}
	cfg.Timeout, cfg.Retry503 = timeout, -1
	return client.New(cfg)
}

// WaitHealthy waits until the router sees a primary of g1 and every node
// alive and in sync.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	cl, err := c.Client(time.Second)
	if err != nil {
		return err
	}
	var last string
	for {
		if cs, err := cl.Cluster(ctx); err == nil {
			insync := 0
			for _, n := range cs.Nodes {
				if n.Group == "g1" && n.InSync && n.Status == "alive" {
					insync++
				}
			}
			for _, g := range cs.Groups {
				if g.Name == "g1" && g.Primary != "" && insync == len(c.Nodes) {
					return nil
				}
			}
			last = fmt.Sprintf("%d of %d in sync", insync, len(c.Nodes))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not healthy: %s: %w", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Primary returns the node the router sees as g1's primary, or nil.
func (c *Cluster) Primary(ctx context.Context) *Proc {
	cl, err := c.Client(time.Second)
	if err != nil {
		return nil
	}
	cs, err := cl.Cluster(ctx)
	if err != nil {
		return nil
	}
	for _, g := range cs.Groups {
		if g.Name == "g1" {
			for _, p := range c.Nodes {
				if p.Name == g.Primary {
					return p
				}
			}
		}
	}
	return nil
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"shoal/client"
	"shoal/router"
	"shoal/secure"
)

// The local cluster: one group of three storage nodes, the meta group
// (its processes keep the default --meta-group).
const (
	localGroup = router.DefaultMetaGroup
	localNodes = 3
	stopGrace  = 5 * time.Second // from SIGTERM to SIGKILL
)

// localCluster is a cluster of shoal processes on 127.0.0.1, each with
// its data on disk and its log in the cluster's directory.
type localCluster struct {
	binary string
	dir    string
	remove bool // dir is ours to remove when done
	api    string
	// insecure runs every process with --insecure; otherwise secrets is
	// the directory 'shoal secrets init' made, and creds the admin's.
	insecure bool
	secrets  string
	creds    client.Credentials
	nodes    []*localProc
	router   *localProc
	log      *slog.Logger
	stderr   io.Writer    // told where the data is when it is kept
	ports    map[int]bool // handed out already: the kernel may offer one again before its process binds it
	// mountProc serves mountDir for the mount workload (mount.go).
	mountProc *localProc
	mountDir  string
}

// localProc is one process with fixed arguments, so that it can be
// killed and started again as the same node.
type localProc struct {
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// startLocal starts the processes of a local cluster; waitReady says
// when it can serve.
func startLocal(cfg Config, log *slog.Logger) (*localCluster, error) {
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = osExecutable(); err != nil {
			return nil, err
		}
	}
	parent := cfg.DataDir
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("local cluster: data directory: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "shoal-bench-")
	if err != nil {
		return nil, fmt.Errorf("local cluster: data directory: %w", err)
	}
	c := &localCluster{binary: bin, dir: dir, remove: !cfg.Keep, log: log, stderr: cfg.Stderr, ports: map[int]bool{}, insecure: cfg.Insecure}
	if err := c.launch(); err != nil {
		c.close(true)
		return nil, err
	}
	log.Debug("local cluster started", "dir", dir, "api", c.api)
	return c, nil
}

// secure makes the cluster's secrets with the binary under test and
// returns the flags every server takes.
func (c *localCluster) secure() ([]string, error) {
	if c.insecure {
		return []string{"--insecure"}, nil
	}
	c.secrets = filepath.Join(c.dir, "secrets")
	if out, err := exec.Command(c.binary, "secrets", "init", c.secrets).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("local cluster: make its secrets: %v: %s", err, out)
	}
	d := secure.Dir(c.secrets)
	tok, err := secure.LoadToken(d.AdminToken())
	if err != nil {
		return nil, err
	}
	c.creds = client.Credentials{CA: d.CA(), Token: tok, Cert: d.Cert(secure.RoleClient), Key: d.Key(secure.RoleClient)}
	return []string{"--secrets", c.secrets}, nil
}

// launch describes and starts every process.
func (c *localCluster) launch() error {
	secFlags, err := c.secure()
	if err != nil {
		return err
	}
	ports := make([]int, 2*localNodes+2)
	for i := range ports {
		p, err := c.freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	seed := addr(ports[1])
	for i := 1; i <= localNodes; i++ {
		role := "replica"
		if i == 1 {
			role = "primary"
		}
		name := fmt.Sprintf("%s-n%d", localGroup, i)
		c.nodes = append(c.nodes, &localProc{name: name, log: filepath.Join(c.dir, name+".log"), args: append([]string{
			role, "--group", localGroup, "--id", strconv.Itoa(i), "--name", name,
			"--data", filepath.Join(c.dir, name),
			"--listen", addr(ports[2*i-2]), "--gossip", addr(ports[2*i-1]), "--join", seed,
		}, secFlags...)})
	}
	httpAddr := addr(ports[2*localNodes])
	c.api = "https://" + httpAddr
	if c.insecure {
		c.api = "http://" + httpAddr
	}
	c.creds.Router = c.api
	c.router = &localProc{name: "router", log: filepath.Join(c.dir, "router.log"), args: append([]string{
		"router", "--name", "router", "--http", httpAddr,
		"--gossip", addr(ports[2*localNodes+1]), "--join", seed,
	}, secFlags...)}
	for _, p := range append(c.nodes, c.router) {
		if err := c.start(p); err != nil {
			return err
		}
	}
	return nil
}

// freePort returns a port that was free for TCP and UDP (gossip uses
// both) a moment ago and that no earlier call returned.
func (c *localCluster) freePort() (int, error) {
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("local cluster: find a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if c.ports[p] {
			continue
		}
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		u.Close()
		c.ports[p] = true
		return p, nil
	}
	return 0, errors.New("local cluster: no free port on 127.0.0.1 after 200 tries")
}

// start runs p, appending its output to its log. The child gets no
// SHOAL_* variables, so the cluster is the same whatever the shell sets
// for the user's own nodes.
func (c *localCluster) start(p *localProc) error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("local cluster: log of %s: %w", p.name, err)
	}
	cmd := exec.Command(c.binary, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOAL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Nor the user's credentials file: the mount gets this cluster's.
	cmd.Env = append(cmd.Env, "SHOAL_CREDENTIALS="+os.DevNull)
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("local cluster: start %s (%s): %w", p.name, c.binary, err)
	}
	c.log.Debug("started", "process", p.name, "pid", cmd.Process.Pid, "args", strings.Join(p.args, " "))
	p.cmd, p.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return nil
}

// node returns the storage process named name.
func (c *localCluster) node(name string) (*localProc, error) {
	for _, p := range c.nodes {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("local cluster has no storage node %q", name)
}

// kill sends SIGKILL to p and waits until it is gone.
func (c *localCluster) kill(p *localProc) {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// pause stops every process of the cluster (SIGSTOP) and resume lets
// them go on (SIGCONT), so that a cluster kept for later takes no CPU
// while another one is measured.
func (c *localCluster) pause() { c.signal(syscall.SIGSTOP) }

func (c *localCluster) resume() { c.signal(syscall.SIGCONT) }

func (c *localCluster) signal(sig syscall.Signal) {
	for _, p := range append(c.nodes, c.router) {
		if p != nil && p.cmd != nil {
			_ = p.cmd.Process.Signal(sig)
		}
	}
}

// waitReady polls the router until the group has a primary (other than
// notPrimary, if given) and every member alive and in sync.
func (c *localCluster) waitReady(ctx context.Context, cl *client.Client, notPrimary string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := "the router did not answer"
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		view, err := cl.Cluster(qctx)
		cancel()
		if err == nil {
			var ok bool
			if ok, last = groupReady(view, notPrimary); ok {
				return nil
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: group %s has no primary with %d in-sync members after %v (last: %s); see the logs in %s",
				ErrNotReady, localGroup, localNodes, limit, last, c.dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// groupReady reports whether view shows the local group with a primary
// (not notPrimary) and all its members alive and in sync, and otherwise
// what is missing.
func groupReady(view client.Cluster, notPrimary string) (bool, string) {
	inSync := 0
	for _, n := range view.Nodes {
		if n.Group == localGroup && n.InSync && n.Status == "alive" {
			inSync++
		}
	}
	primary := ""
	for _, g := range view.Groups {
		if g.Name == localGroup {
			primary = g.Primary
		}
	}
	switch {
	case primary == "" || primary == notPrimary:
		return false, fmt.Sprintf("no new primary yet, %d members in sync", inSync)
	case inSync < localNodes:
		return false, fmt.Sprintf("primary %s, %d of %d members in sync", primary, inSync, localNodes)
	}
	return true, ""
}

// close stops every process: SIGTERM, then SIGKILL for any still running
// after stopGrace. It removes the cluster's directory unless told to keep
// it or the run failed, in which case it says where the logs are.
func (c *localCluster) close(failed bool) error {
	c.resume() // a stopped process would not see SIGTERM until then
	c.unmount()
	var wg sync.WaitGroup
	for _, p := range append(c.nodes, c.router) {
		if p == nil || p.cmd == nil {
			continue
		}
		wg.Go(func() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopGrace):
				c.log.Warn("process did not stop in time; killing it", "process", p.name, "after", stopGrace)
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				<-p.done
			}
			p.cmd = nil
		})
	}
	wg.Wait()
	if failed || !c.remove {
		fmt.Fprintf(c.stderr, "shoal bench: the local cluster's data and logs are in %s (remove it when done)\n", c.dir)
		return nil
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove the local cluster's data %s: %w", c.dir, err)
	}
	return nil
}

// Package e2e tests the shoal binary as users run it: separate processes
// on 127.0.0.1, real sockets, real fsync, kill -9.
package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/client"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the shoal binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shoal")
		cmd := exec.Command("go", "build", "-o", binPath, "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a port that was free for both TCP and UDP a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u.Close()
		return p
	}
	t.Fatal("no free port")
	return 0
}

// proc is one shoal process with fixed arguments, so it can be killed and
// started again as the same node.
type proc struct {
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// cluster is a router and one group of storage nodes.
type cluster struct {
	t      *testing.T
	dir    string
	nodes  []*proc
	router *proc
	api    string // router base URL
	seeds  string
}

// newCluster starts n storage nodes of group g1 (the first as primary)
// and a router, and waits until the group has a primary and all members.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	bin := binary(t)
	c := &cluster{t: t, dir: t.TempDir()}
	gossipPorts := make([]int, n+1)
	for i := range gossipPorts {
		gossipPorts[i] = freePort(t)
	}
	c.seeds = fmt.Sprintf("127.0.0.1:%d", gossipPorts[0])
	for i := range n {
		role := "replica"
		if i == 0 {
			role = "primary"
		}
		name := fmt.Sprintf("node%d", i)
		p := &proc{name: name, log: filepath.Join(c.dir, name+".log"), args: []string{
			bin, role, "--group", "g1", "--name", name,
			"--data", filepath.Join(c.dir, name),
			"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"--gossip", fmt.Sprintf("127.0.0.1:%d", gossipPorts[i]),
			"--join", c.seeds,
		}}
		c.nodes = append(c.nodes, p)
	}
	httpPort := freePort(t)
	c.api = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	c.router = &proc{name: "router", log: filepath.Join(c.dir, "router.log"), args: []string{
		bin, "router", "--name", "router", "--http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--gossip", fmt.Sprintf("127.0.0.1:%d", gossipPorts[n]), "--join", c.seeds,
	}}
	t.Cleanup(func() {
		for _, p := range append(c.nodes, c.router) {
			c.kill(p)
		}
		if t.Failed() {
			for _, p := range append(c.nodes, c.router) {
				b, _ := os.ReadFile(p.log)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("--- last lines of %s ---\n%s", p.name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
	})
	for _, p := range c.nodes {
		c.start(p)
	}
	c.start(c.router)
	c.waitGroup(n, "")
	return c
}

func (c *cluster) start(p *proc) {
	c.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(p *proc) {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

func (c *cluster) client() *client.Client {
	c.t.Helper()
	cl, err := client.New(client.Config{Router: c.api, Timeout: 10 * time.Second, Retry503: 15 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

// waitGroup waits until the router sees a primary (other than notName, if
// given) and n in-sync members of g1.
func (c *cluster) waitGroup(n int, notName string) client.Group {
	c.t.Helper()
	cl := c.client()
	var g client.Group
	waitFor(c.t, 30*time.Second, fmt.Sprintf("group g1 with a primary and %d in-sync members", n), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cs, err := cl.Cluster(ctx)
		if err != nil {
			return false
		}
		insync := 0
		for _, nd := range cs.Nodes {
			if nd.Group == "g1" && nd.InSync && nd.Status == "alive" {
				insync++
			}
		}
		for _, gr := range cs.Groups {
			if gr.Name == "g1" && gr.Primary != "" && gr.Primary != notName && insync >= n {
				g = gr
				return true
			}
		}
		return false
	})
	return g
}

func (c *cluster) node(name string) *proc {
	for _, p := range c.nodes {
		if p.name == name {
			return p
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

// run executes the CLI against the cluster's router.
func (c *cluster) run(args ...string) (string, string, int) {
	cmd := exec.Command(binary(c.t), args...)
	cmd.Env = append(os.Environ(), "SHOAL_ROUTER="+c.api)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func itoa(i int) string { return strconv.Itoa(i) }
